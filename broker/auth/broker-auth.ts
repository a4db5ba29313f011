/**
 * Authentication and authorisation as configured: the password file, anonymous access and the ACL,
 * loaded from their paths, applied at CONNECT, and reloaded (SIGHUP) by swapping in freshly parsed files
 * only when every one of them is valid. See docs/security.md.
 */
import { ConfigError } from '../config.js';
import type { BrokerCore } from '../core.js';
import type { AuthRequest, AuthResult, Authenticator } from '../options.js';
import { Acl, AclFileError } from './acl.js';
import { AclGuard } from './acl-guard.js';
import { PasswordFile, PasswordFileError } from './password-file.js';

export interface AuthConfig {
  /** Path of the password file (docs/security.md); omitted: no passwords are checked. */
  passwordFile?: string | undefined;
  /** Path of the ACL file; omitted: every client may publish and subscribe to everything. */
  aclFile?: string | undefined;
  /** Whether clients without a user name may connect; omitted: true without a password file, false with one. */
  allowAnonymous?: boolean | undefined;
  /** A verified client certificate's CN is the user name, and the certificate its credential (no password asked). */
  useCommonNameAsUsername?: boolean | undefined;
}

/** What a reload read, for the log line. */
export interface AuthReloadResult {
  passwordFile?: { path: string; users: number };
  aclFile?: { path: string; rules: number };
}

/** A reload that failed: the files' problems, one per line; the previous configuration stays in force. */
export class AuthReloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthReloadError';
  }
}

const NOT_AUTHORIZED: AuthResult = { reasonCode: 0x87 };

export class BrokerAuth {
  readonly passwordFile: string | undefined;
  readonly aclFile: string | undefined;
  readonly allowAnonymous: boolean;
  private readonly certificateIsCredential: boolean;
  /** Present exactly when an ACL file is configured. */
  readonly acl: AclGuard | undefined;
  private passwords: PasswordFile | undefined;

  private constructor(config: AuthConfig, passwords: PasswordFile | undefined, acl: Acl | undefined) {
    this.passwordFile = config.passwordFile;
    this.aclFile = config.aclFile;
    this.allowAnonymous = config.allowAnonymous ?? config.passwordFile === undefined;
    this.certificateIsCredential = config.useCommonNameAsUsername === true;
    this.passwords = passwords;
    this.acl = acl === undefined ? undefined : new AclGuard(acl);
  }

  /**
   * Loads the configured files; undefined when nothing is configured (the broker then authenticates no
   * one and authorises everything). Invalid or unreadable files throw ConfigError listing every problem.
   */
  static load(config: AuthConfig): BrokerAuth | undefined {
    if (config.passwordFile === undefined && config.aclFile === undefined && config.allowAnonymous === undefined) return undefined;
    const { passwords, acl, problems } = readFiles(config);
    if (problems.length > 0) throw new ConfigError(problems.map((message) => ({ key: '', message })));
    return new BrokerAuth(config, passwords, acl);
  }

  /**
   * The CONNECT check: anonymous clients per allowAnonymous (refused: not authorized, 3.1.1 code 5 /
   * v5 0x87); with a password file a user name must come with its password (else bad user name or
   * password, 4 / 0x86 — unknown users and wrong passwords alike) unless the user name is the CN of a
   * verified client certificate under useCommonNameAsUsername. A hook given to createBroker runs
   * after these checks pass and has the last word.
   */
  authenticator(next: Authenticator | undefined): Authenticator {
    return (request) => {
      const own = this.check(request);
      if (own === true) return next === undefined ? true : next(request);
      if (own instanceof Promise) return own.then((result) => (result === true && next !== undefined ? next(request) : result));
      return own;
    };
  }

  private check(request: AuthRequest): AuthResult | Promise<AuthResult> {
    if (request.username === undefined) {
      // MQTT 5 allows a password without a user name; we have nothing to check it against.
      if (request.password !== undefined && this.passwords !== undefined) return false;
      return this.allowAnonymous ? true : NOT_AUTHORIZED;
    }
    const passwords = this.passwords;
    if (passwords === undefined) return true;
    // The TLS listener verified the certificate this user name came from (useCommonNameAsUsername).
    if (this.certificateIsCredential && request.certificateCommonName === request.username) return true;
    if (request.password === undefined) return false;
    return passwords.verify(request.username, request.password);
  }

  /**
   * Re-reads the password file and the ACL and swaps both in at once; connections stay up. When either is
   * invalid or unreadable nothing changes and AuthReloadError says why.
   */
  reload(core: BrokerCore): AuthReloadResult {
    const { passwords, acl, problems } = readFiles(this);
    if (problems.length > 0) throw new AuthReloadError(problems.join('\n'));
    const result: AuthReloadResult = {};
    if (passwords !== undefined && this.passwordFile !== undefined) {
      this.passwords = passwords;
      result.passwordFile = { path: this.passwordFile, users: passwords.size };
    }
    if (acl !== undefined && this.acl !== undefined && this.aclFile !== undefined) {
      this.acl.replace(acl, core);
      result.aclFile = { path: this.aclFile, rules: acl.ruleCount };
    }
    return result;
  }
}

function readFiles(config: AuthConfig): { passwords?: PasswordFile; acl?: Acl; problems: string[] } {
  const problems: string[] = [];
  let passwords: PasswordFile | undefined;
  let acl: Acl | undefined;
  if (config.passwordFile !== undefined) {
    try {
      passwords = PasswordFile.load(config.passwordFile);
    } catch (err) {
      if (!(err instanceof PasswordFileError)) throw err;
      problems.push(...err.message.split('\n'));
    }
  }
  if (config.aclFile !== undefined) {
    try {
      acl = Acl.load(config.aclFile);
    } catch (err) {
      if (!(err instanceof AclFileError)) throw err;
      problems.push(...err.message.split('\n'));
    }
  }
  return { ...(passwords !== undefined ? { passwords } : {}), ...(acl !== undefined ? { acl } : {}), problems };
}
