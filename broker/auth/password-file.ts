/**
 * The broker's password file: one `user:$scrypt$N$r$p$salt$hash` line per user (docs/security.md).
 *
 *   # comments and blank lines are kept as they are
 *   alice:$scrypt$16384$8$1$9J1Qw0m6I0c0g9oX8e4r0A$3x5...   (salt and hash in unpadded base64)
 *
 * N (a power of two), r and p are the scrypt cost parameters the hash was made with; each line keeps its
 * own, so raising the defaults later does not invalidate existing lines. Passwords are hashed as the
 * bytes the client sends (MQTT passwords are binary data; the passwd command stores UTF-8).
 * Verification runs scrypt on libuv's thread pool, never on the event loop, and compares in constant time.
 */
import { randomBytes, scrypt, scryptSync, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface ScryptParams {
  /** CPU/memory cost: a power of two. */
  N: number;
  /** Block size. */
  r: number;
  /** Parallelisation. */
  p: number;
}

/** ~16 MiB and tens of milliseconds per hash: the OWASP minimum for scrypt. */
export const defaultScryptParams: ScryptParams = { N: 16384, r: 8, p: 1 };

const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Bounds on parameters read from a file, so one line cannot make every CONNECT cost seconds or gigabytes. */
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;
const MAX_MEMORY = 256 * 1024 * 1024;

export interface PasswordHash extends ScryptParams {
  salt: Buffer;
  hash: Buffer;
}

type Line =
  | { kind: 'text'; text: string }
  | { kind: 'user'; user: string; hash: PasswordHash; text: string };

/** A problem in a password file, with the file and line it is on ("passwd.txt:3: ..."). */
export class PasswordFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PasswordFileError';
  }
}

/** Why a user name cannot be stored in a password file, or undefined when it can. */
export function userNameProblem(user: string): string | undefined {
  if (user.length === 0) return 'the user name is empty';
  if (user.includes(':')) return "a user name must not contain ':' (it separates the name from the hash)";
  if (/[\u0000-\u001f\u007f]/.test(user)) return 'a user name must not contain control characters or line breaks';
  if (user.startsWith('#')) return "a user name must not start with '#' (that line would be a comment)";
  if (user.trim() !== user) return 'a user name must not start or end with white space';
  return undefined;
}

function b64(buf: Buffer): string {
  return buf.toString('base64').replace(/=+$/, '');
}

const BASE64 = /^[A-Za-z0-9+/]+$/;

/** Parses `$scrypt$N$r$p$salt$hash`; returns a reason when it is not one we accept. */
export function parseHash(text: string): PasswordHash | string {
  const parts = text.split('$');
  if (parts.length !== 7 || parts[0] !== '' || parts[1] !== 'scrypt') return 'expected $scrypt$N$r$p$salt$hash after the user name';
  const [N, r, p] = parts.slice(2, 5).map((s) => (/^\d{1,10}$/.test(s!) ? Number(s) : NaN)) as [number, number, number];
  if (!(N >= 2 && N <= MAX_N && (N & (N - 1)) === 0)) return `scrypt N must be a power of two from 2 to ${MAX_N}, got ${parts[2]}`;
  if (!(r >= 1 && r <= MAX_R)) return `scrypt r must be from 1 to ${MAX_R}, got ${parts[3]}`;
  if (!(p >= 1 && p <= MAX_P)) return `scrypt p must be from 1 to ${MAX_P}, got ${parts[4]}`;
  if (128 * N * r * p > MAX_MEMORY) return `scrypt parameters N=${N} r=${r} p=${p} need more than ${MAX_MEMORY / 1024 / 1024} MiB per hash`;
  const [salt, hash] = [parts[5]!, parts[6]!];
  if (!BASE64.test(salt) || !BASE64.test(hash)) return 'salt and hash must be base64';
  const saltBytes = Buffer.from(salt, 'base64');
  const hashBytes = Buffer.from(hash, 'base64');
  if (saltBytes.length < 8) return 'the salt must be at least 8 bytes';
  if (hashBytes.length < 16 || hashBytes.length > 64) return 'the hash must be 16 to 64 bytes';
  return { N, r, p, salt: saltBytes, hash: hashBytes };
}

export function formatHash(h: PasswordHash): string {
  return `$scrypt$${h.N}$${h.r}$${h.p}$${b64(h.salt)}$${b64(h.hash)}`;
}

function scryptOptions(h: ScryptParams): ScryptOptions {
  return { N: h.N, r: h.r, p: h.p, maxmem: 128 * h.N * h.r * h.p + 1024 * 1024 };
}

/** Hashes a password with a fresh random salt (synchronous: for the passwd command, not the broker). */
export function hashPassword(password: string | Buffer, params: ScryptParams = defaultScryptParams): PasswordHash {
  const salt = randomBytes(SALT_BYTES);
  const hash = scryptSync(password, salt, HASH_BYTES, scryptOptions(params));
  return { ...params, salt, hash };
}

/** Checks a password against a hash off the event loop; the comparison takes the same time wherever they differ. */
export function verifyPassword(password: Buffer, h: PasswordHash): Promise<boolean> {
  return new Promise((resolve, reject) => {
    scrypt(password, h.salt, h.hash.length, scryptOptions(h), (err, derived) => {
      if (err !== null) reject(err);
      else resolve(timingSafeEqual(derived, h.hash));
    });
  });
}

/**
 * Checked for unknown users so they take as long as known ones (no user enumeration by timing). Random
 * bytes at the default cost: no password matches them, and making them costs no scrypt run.
 */
const decoy: PasswordHash = { ...defaultScryptParams, salt: randomBytes(SALT_BYTES), hash: randomBytes(HASH_BYTES) };

/** A parsed password file: the users and every other line verbatim, so rewriting it keeps comments. */
export class PasswordFile {
  private readonly lines: Line[];
  private readonly users = new Map<string, PasswordHash>();

  private constructor(lines: Line[]) {
    this.lines = lines;
    for (const line of lines) if (line.kind === 'user') this.users.set(line.user, line.hash);
  }

  static empty(): PasswordFile {
    return new PasswordFile([]);
  }

  /** Parses file text; `source` names the file in errors. Every problem is reported, one per line. */
  static parse(text: string, source: string): PasswordFile {
    const lines: Line[] = [];
    const problems: string[] = [];
    const seen = new Map<string, number>();
    const raw = text.split('\n');
    if (raw.at(-1) === '') raw.pop();
    raw.forEach((rawLine, i) => {
      const text = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
      const at = `${source}:${i + 1}`;
      const trimmed = text.trim();
      if (trimmed === '' || trimmed.startsWith('#')) {
        lines.push({ kind: 'text', text });
        return;
      }
      const colon = text.indexOf(':');
      if (colon < 0) {
        problems.push(`${at}: expected user:$scrypt$N$r$p$salt$hash (or a # comment), got a line without ':'`);
        return;
      }
      const user = text.slice(0, colon);
      const userProblem = userNameProblem(user);
      if (userProblem !== undefined) {
        problems.push(`${at}: ${userProblem}`);
        return;
      }
      const hash = parseHash(text.slice(colon + 1));
      if (typeof hash === 'string') {
        problems.push(`${at}: user ${JSON.stringify(user)}: ${hash}`);
        return;
      }
      const first = seen.get(user);
      if (first !== undefined) {
        problems.push(`${at}: user ${JSON.stringify(user)} is already defined on line ${first}; keep one line per user`);
        return;
      }
      seen.set(user, i + 1);
      lines.push({ kind: 'user', user, hash, text });
    });
    if (problems.length > 0) throw new PasswordFileError(problems.join('\n'));
    return new PasswordFile(lines);
  }

  /** Reads and parses a file; unreadable files and bad lines throw PasswordFileError naming the path. */
  static load(path: string): PasswordFile {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new PasswordFileError(`${path}: cannot read the password file: ${fileErrorReason(err)}`);
    }
    return PasswordFile.parse(text, path);
  }

  get size(): number {
    return this.users.size;
  }

  has(user: string): boolean {
    return this.users.has(user);
  }

  /** True when the user exists and the password matches. Unknown users cost one scrypt too. */
  async verify(user: string, password: Buffer): Promise<boolean> {
    const hash = this.users.get(user);
    if (hash === undefined) {
      await verifyPassword(password, decoy);
      return false;
    }
    return verifyPassword(password, hash);
  }

  /** A copy with the user's hash set: an existing line is replaced in place, a new user is appended. */
  withUser(user: string, hash: PasswordHash): PasswordFile {
    const problem = userNameProblem(user);
    if (problem !== undefined) throw new PasswordFileError(problem);
    const line: Line = { kind: 'user', user, hash, text: `${user}:${formatHash(hash)}` };
    const lines = this.lines.map((l) => (l.kind === 'user' && l.user === user ? line : l));
    if (!this.users.has(user)) lines.push(line);
    return new PasswordFile(lines);
  }

  /** A copy without the user's line. */
  withoutUser(user: string): PasswordFile {
    return new PasswordFile(this.lines.filter((l) => !(l.kind === 'user' && l.user === user)));
  }

  toString(): string {
    return this.lines.map((l) => `${l.text}\n`).join('');
  }
}

export function fileErrorReason(err: unknown): string {
  switch ((err as NodeJS.ErrnoException | null)?.code) {
    case 'ENOENT': return 'it does not exist';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'EISDIR': return 'it is a directory';
    default: return err instanceof Error ? err.message : String(err);
  }
}
