/**
 * The ACL applied to live connections. The broker holds one guard only when an ACL file is configured
 * (BrokerCore.acl), so a broker without one pays nothing on the hot path.
 *
 * Each connection is bound to its identity (user name, client id) at CONNECT. Read and write decisions are
 * cached per connection and topic in small bounded maps; replacing the ACL (SIGHUP) bumps a generation
 * and every connection recomputes its permissions on its next check, so a reload applies at once without
 * dropping anyone.
 */
import type { Connection } from '../connection.js';
import type { BrokerCore } from '../core.js';
import type { Session } from '../session.js';
import type { Acl, AclIdentity, Permissions } from './acl.js';

/** Topics remembered per connection and direction; beyond this the oldest decision is forgotten. */
const CACHE_LIMIT = 256;

interface ClientAccess {
  identity: AclIdentity;
  generation: number;
  permissions: Permissions;
  read: Map<string, boolean>;
  write: Map<string, boolean>;
}

/** What the ACL refused, for operators and tests. */
export interface AclDenials {
  publish: number;
  subscribe: number;
  delivery: number;
  will: number;
}

export class AclGuard {
  private acl: Acl;
  private generation = 0;
  private readonly clients = new WeakMap<Connection, ClientAccess>();
  /** Identities of sessions, so a reload can re-check wills waiting for their delay. */
  private readonly sessionIdentities = new WeakMap<Session, AclIdentity>();
  readonly denied: AclDenials = { publish: 0, subscribe: 0, delivery: 0, will: 0 };

  constructor(acl: Acl) {
    this.acl = acl;
  }

  get current(): Acl {
    return this.acl;
  }

  /** Binds a connection (and its session) to the identity it connected with. */
  bind(conn: Connection, session: Session, identity: AclIdentity): void {
    this.clients.set(conn, this.access(identity));
    this.sessionIdentities.set(session, identity);
  }

  /** May this connection publish to the topic? Unbound connections may do nothing. */
  allowPublish(conn: Connection, topic: string): boolean {
    if (this.mayWrite(conn, topic)) return true;
    this.denied.publish++;
    return false;
  }

  /** May this connection receive a message on the topic? Checked for every delivery, whatever its route. */
  allowDelivery(conn: Connection, topic: string): boolean {
    const access = this.fresh(conn);
    if (access !== undefined && decide(access.read, topic, access.permissions, true)) return true;
    this.denied.delivery++;
    return false;
  }

  /** May this connection subscribe to the filter (every topic it can match readable)? */
  allowSubscribe(conn: Connection, filter: string): boolean {
    const access = this.fresh(conn);
    if (access !== undefined && access.permissions.canSubscribe(filter)) return true;
    this.denied.subscribe++;
    return false;
  }

  /** May this connection leave a will on the topic? Checked at CONNECT and again when the ACL is replaced. */
  allowWill(conn: Connection, topic: string): boolean {
    if (this.mayWrite(conn, topic)) return true;
    this.denied.will++;
    return false;
  }

  private mayWrite(conn: Connection, topic: string): boolean {
    const access = this.fresh(conn);
    return access !== undefined && decide(access.write, topic, access.permissions, false);
  }

  /**
   * Swaps in a new ACL. Wills already accepted are re-checked against it: a connected client's will and a
   * disconnected session's delayed will on a topic its owner may no longer write are discarded.
   */
  replace(acl: Acl, core: BrokerCore): void {
    this.acl = acl;
    this.generation++;
    for (const conn of core.connections) {
      if (conn.will !== undefined && this.clients.has(conn) && !this.allowWill(conn, conn.will.topic)) conn.will = undefined;
    }
    for (const session of core.sessions.values()) {
      const will = session.pendingWill;
      const identity = this.sessionIdentities.get(session);
      // Sessions restored from the store after a restart have no identity here (it is not stored).
      if (will === undefined || identity === undefined || session.connection !== null) continue;
      if (acl.permissionsFor(identity).canWrite(will.topic)) continue;
      session.pendingWill = undefined;
      if (session.willTimer !== undefined) {
        clearTimeout(session.willTimer);
        session.willTimer = undefined;
      }
      if (session.persistent) core.saveSession(session);
      this.denied.will++;
    }
  }

  private access(identity: AclIdentity): ClientAccess {
    return {
      identity,
      generation: this.generation,
      permissions: this.acl.permissionsFor(identity),
      read: new Map(),
      write: new Map(),
    };
  }

  private fresh(conn: Connection): ClientAccess | undefined {
    let access = this.clients.get(conn);
    if (access !== undefined && access.generation !== this.generation) {
      access = this.access(access.identity);
      this.clients.set(conn, access);
    }
    return access;
  }
}

function decide(cache: Map<string, boolean>, topic: string, permissions: Permissions, read: boolean): boolean {
  const cached = cache.get(topic);
  if (cached !== undefined) return cached;
  const allowed = read ? permissions.canRead(topic) : permissions.canWrite(topic);
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  cache.set(topic, allowed);
  return allowed;
}
