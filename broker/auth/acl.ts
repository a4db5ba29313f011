/**
 * The ACL file (format in docs/security.md): which topics a client may publish to (write) and receive
 * from (read). An allow-list: with an ACL configured, nothing is allowed that no rule grants.
 *
 *   # global section: every client, anonymous ones included
 *   read public/#
 *   pattern readwrite devices/%c/#
 *
 *   user alice
 *   readwrite alice/#
 *   read $SYS/#
 *
 * This file is pure: parsing, the rules one client gets, and topic/filter checks. acl-guard.ts applies it
 * to connections.
 */
import { readFileSync } from 'node:fs';
import { topicFilterProblem, topicMatches } from '../../protocol/topic.js';
import { fileErrorReason } from './password-file.js';

export type Access = 'read' | 'write' | 'readwrite';

export interface AclRule {
  access: Access;
  filter: string;
  /** A pattern rule: `%u` and `%c` in the filter are replaced by the user name and client id. */
  pattern: boolean;
  /** 1-based line in the file, for messages. */
  line: number;
}

/** Who a client is, as far as the ACL is concerned. */
export interface AclIdentity {
  username?: string | undefined;
  clientId: string;
}

export class AclFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AclFileError';
  }
}

const ACCESS: ReadonlySet<string> = new Set(['read', 'write', 'readwrite']);

export class Acl {
  /** Rules for everyone (the lines before the first `user` line). */
  readonly global: readonly AclRule[];
  /** Rules per user name, in addition to the global ones. */
  readonly users: ReadonlyMap<string, readonly AclRule[]>;

  constructor(global: readonly AclRule[], users: ReadonlyMap<string, readonly AclRule[]>) {
    this.global = global;
    this.users = users;
  }

  /** Parses file text; `source` names the file in errors. Every problem is reported with its line. */
  static parse(text: string, source: string): Acl {
    const global: AclRule[] = [];
    const users = new Map<string, AclRule[]>();
    const problems: string[] = [];
    let section = global;
    const raw = text.split('\n');
    raw.forEach((rawLine, i) => {
      const line = rawLine.trim();
      if (line === '' || line.startsWith('#')) return;
      const at = `${source}:${i + 1}`;
      const [word, rest] = splitWord(line);
      if (word === 'user') {
        if (rest === '') {
          problems.push(`${at}: 'user' needs a user name ("user alice")`);
          return;
        }
        // Repeated sections for one user add up.
        section = users.get(rest) ?? [];
        users.set(rest, section);
        return;
      }
      const pattern = word === 'pattern';
      const [access, filter] = pattern ? splitWord(rest) : [word, rest];
      if (!ACCESS.has(access)) {
        problems.push(pattern
          ? `${at}: expected read, write or readwrite after 'pattern', got ${JSON.stringify(access)}`
          : `${at}: expected 'user NAME', 'read|write|readwrite FILTER' or 'pattern read|write|readwrite FILTER', got ${JSON.stringify(line)}`);
        return;
      }
      const problem = filter === '' ? 'a topic filter is missing' : ruleFilterProblem(filter);
      if (problem !== null) {
        problems.push(`${at}: ${problem}`);
        return;
      }
      section.push({ access: access as Access, filter, pattern, line: i + 1 });
    });
    if (problems.length > 0) throw new AclFileError(problems.join('\n'));
    return new Acl(global, users);
  }

  /** Reads and parses a file; unreadable files and bad lines throw AclFileError naming the path. */
  static load(path: string): Acl {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new AclFileError(`${path}: cannot read the ACL file: ${fileErrorReason(err)}`);
    }
    return Acl.parse(text, path);
  }

  get ruleCount(): number {
    let n = this.global.length;
    for (const rules of this.users.values()) n += rules.length;
    return n;
  }

  /** What one client may do: the global rules and its user's, patterns substituted. */
  permissionsFor(identity: AclIdentity): Permissions {
    const read: string[] = [];
    const write: string[] = [];
    const add = (rules: readonly AclRule[]): void => {
      for (const rule of rules) {
        const filter = rule.pattern ? substitute(rule.filter, identity) : rule.filter;
        if (filter === undefined) continue;
        if (rule.access !== 'write') read.push(filter);
        if (rule.access !== 'read') write.push(filter);
      }
    };
    add(this.global);
    if (identity.username !== undefined) add(this.users.get(identity.username) ?? []);
    return new Permissions(dedupe(read), dedupe(write));
  }
}

/** The topic filters one client may read and write. */
export class Permissions {
  readonly read: readonly string[];
  readonly write: readonly string[];

  constructor(read: readonly string[], write: readonly string[]) {
    this.read = read;
    this.write = write;
  }

  /** May the client receive a message on this topic? '#' and '+/...' rules do not match `$` topics [MQTT-4.7.2-1]. */
  canRead(topic: string): boolean {
    for (const f of this.read) if (topicMatches(f, topic)) return true;
    return false;
  }

  canWrite(topic: string): boolean {
    for (const f of this.write) if (topicMatches(f, topic)) return true;
    return false;
  }

  /**
   * May the client subscribe to this filter? Only if every topic the filter can match is readable, which
   * is checked as: one read rule covers the whole filter. For `$share/{group}/{filter}` the inner filter counts.
   */
  canSubscribe(filter: string): boolean {
    const inner = filter.startsWith('$share/') ? filter.slice(filter.indexOf('/', 7) + 1) : filter;
    for (const f of this.read) if (filterCovers(f, inner)) return true;
    return false;
  }
}

/**
 * True when every topic `specific` matches is also matched by `general` (both valid, non-shared filters).
 * 'a/#' covers 'a', 'a/b' and 'a/+/c'; 'a/+' covers 'a/b' but not 'a/#'; '#' and '+' cover no filter that
 * can match a `$` topic, since they do not match those topics [MQTT-4.7.2-1].
 */
export function filterCovers(general: string, specific: string): boolean {
  const g = general.split('/');
  const s = specific.split('/');
  for (let i = 0; ; i++) {
    const gl = g[i];
    const sl = s[i];
    if (gl === '#') {
      // '#' also matches the parent level, so it covers `specific` ending right here.
      return !(i === 0 && sl !== undefined && isDollarLiteral(sl));
    }
    if (sl === undefined) return gl === undefined;
    if (gl === undefined || sl === '#') return false;
    if (sl === '+') {
      if (gl !== '+') return false;
    } else if (gl === '+') {
      if (i === 0 && isDollarLiteral(sl)) return false;
    } else if (gl !== sl) {
      return false;
    }
  }
}

function isDollarLiteral(level: string): boolean {
  return level.startsWith('$');
}

/**
 * A pattern rule's filter for one client, or undefined when the rule grants it nothing: the client has
 * no user name (for %u), or the value could widen the filter — it is empty, holds '+', '#' or '/' (a wildcard
 * or another level), U+0000, or starts with '$' (it could name $SYS at the start of a filter).
 */
export function substitute(filter: string, identity: AclIdentity): string | undefined {
  let unsafe = false;
  const out = filter.replace(/%[uc]/g, (token) => {
    const value = token === '%u' ? identity.username : identity.clientId;
    if (value === undefined || !safeValue(value)) {
      unsafe = true;
      return '';
    }
    return value;
  });
  return unsafe ? undefined : out;
}

function safeValue(value: string): boolean {
  return value.length > 0 && !/[+#/\u0000]/.test(value) && !value.startsWith('$');
}

/** Why a rule's filter is unusable, or null. Rules name topics, so `$share/` is refused. */
function ruleFilterProblem(filter: string): string | null {
  if (filter.startsWith('$share/')) return `'${filter}': a rule names topics, not shared subscriptions; write the filter after $share/{group}/`;
  const problem = topicFilterProblem(filter);
  return problem === null ? null : `'${filter}': ${problem}`;
}

function splitWord(s: string): [string, string] {
  const m = /^(\S+)\s*(.*)$/.exec(s);
  return m === null ? ['', ''] : [m[1]!, m[2]!.trim()];
}

function dedupe(list: string[]): string[] {
  return [...new Set(list)];
}
