/**
 * The broker's state and the paths every message takes: dispatch of inbound packets to handlers,
 * routing through the subscription trie, delivery into session queues within inflight windows,
 * retained messages, wills, session expiry and recovery from the store.
 */
import { encodePublishHeader, publishPacketIdOffset } from '../protocol/encoder.js';
import { ProtocolError } from '../protocol/errors.js';
import type { Packet, Properties, PublishPacket, QoS } from '../protocol/packets.js';
import { allowedReasonCodes } from '../protocol/reason-codes.js';
import { topicMatches } from '../protocol/topic.js';
import type { Connection } from './connection.js';
import { handleAuth } from './handlers/auth.js';
import { handleConnect } from './handlers/connect.js';
import { handleDisconnect } from './handlers/disconnect.js';
import { handlePuback, handlePubcomp, handlePubrec, handlePubrel } from './handlers/acks.js';
import { handlePublish } from './handlers/publish.js';
import { handleSubscribe } from './handlers/subscribe.js';
import { handleUnsubscribe } from './handlers/unsubscribe.js';
import { fromStoredMessage, toStoredMessage, wireKey, type Message } from './message.js';
import { createMetrics, type BrokerMetrics } from './metrics.js';
import { brokerLogger, connectionFields, hex, LimitLog, logClientConnected, logConnectionClosed, type Logger } from './log.js';
import type { BrokerOptions } from './options.js';
import { connectTimedOut } from './limits.js';
import { SubscriptionTrie } from './router/subscription-trie.js';
import type { AclGuard } from './auth/acl-guard.js';
import { Session, type OutEntry } from './session.js';
import type { Store, SubscriptionRecord, WillRecord } from './store/types.js';
import { parseSharedFilter } from '../protocol/topic.js';

/** What the trie holds for each subscription. */
export interface RouteSub {
  clientId: string;
  session: Session;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  subscriptionId: number | undefined;
  share: { group: string; filter: string } | undefined;
}

export interface BrokerEvents {
  onClientConnected?(clientId: string): void;
  onClientDisconnected?(clientId: string): void;
}

const NEVER = 0xffffffff;
const CONNECTION_SWEEP_MS = 250;

export class BrokerCore {
  readonly options: BrokerOptions;
  readonly metrics: BrokerMetrics = createMetrics();
  readonly store: Store;
  readonly sessions = new Map<string, Session>();
  readonly trie = new SubscriptionTrie<RouteSub>();
  readonly retained = new Map<string, Message>();
  readonly connections = new Set<Connection>();
  readonly startedAt: number;
  events: BrokerEvents = {};
  closing = false;
  /** The ACL, set by createBroker only when an ACL file is configured (docs/security.md). */
  acl: AclGuard | undefined;
  /** Structured log (log.ts); discards everything unless options.logger is set. */
  readonly log: Logger;
  /** Limit hits, logged at most once per interval per limit. */
  readonly limitLog: LimitLog;

  /** Round-robin position per shared group (keyed by the trie's member map). */
  private readonly shareCursor = new WeakMap<object, number>();
  private routeGeneration = 0;
  private readonly routed: RouteSub[] = [];
  private readonly routedQos: QoS[] = [];
  private readonly routedIds: (number[] | undefined)[] = [];
  private readonly routedRap: boolean[] = [];
  private routing: Message | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private connectionTimer: NodeJS.Timeout | undefined;

  /**
   * Connect timeouts and keepalives for every connection in one periodic sweep instead of a timer per
   * connection (a timer costs memory on each of a large fleet's idle connections). A connection is
   * closed at its deadline or up to one sweep interval later, never earlier.
   */
  private sweepConnections(): void {
    const now = this.now();
    const connectTimeoutMs = this.options.connectTimeout * 1000;
    for (const conn of this.connections) {
      if (conn.state === 'awaiting-connect') {
        // [MQTT-3.1.4-?] a connection that never sends CONNECT is closed after a bounded time (slowloris).
        if (connectTimeoutMs > 0 && now - conn.openedAt >= connectTimeoutMs) connectTimedOut(this, conn);
      } else if (conn.state === 'connected' && conn.keepalive > 0) {
        conn.checkKeepalive(now);
      }
    }
  }

  constructor(options: BrokerOptions, store: Store) {
    this.options = options;
    this.store = store;
    this.log = brokerLogger(options.logger, options.logLevel);
    this.limitLog = new LimitLog(this.log, () => this.now());
    this.startedAt = options.clock.now();
    this.recover();
    this.expiryTimer = setInterval(() => this.sweepExpiredSessions(), 1000);
    this.expiryTimer.unref?.();
    this.connectionTimer = setInterval(() => this.sweepConnections(), CONNECTION_SWEEP_MS);
    this.connectionTimer.unref?.();
  }

  now(): number {
    return this.options.clock.now();
  }

  // ---------------------------------------------------------------- dispatch

  dispatch(conn: Connection, packet: Packet): void {
    if (conn.state === 'awaiting-connect') {
      // [MQTT-3.1.0-1] the first packet from a client must be CONNECT.
      if (packet.type !== 'connect') {
        // No CONNECT came first, so there is no protocol version to answer in: a CONNECT later in the same
        // read may already have switched the parser to 5, and onProtocolError would then send a v5 CONNACK
        // to a client that never sent CONNECT (unreadable for a 3.1.1 client). Close without CONNACK.
        conn.parser.protocolVersion = 4;
        throw new ProtocolError(0x82, `expected CONNECT, got ${packet.type.toUpperCase()}`);
      }
      handleConnect(this, conn, packet);
      return;
    }
    if (conn.state !== 'connected') return;
    switch (packet.type) {
      case 'publish': handlePublish(this, conn, packet); return;
      case 'puback': handlePuback(this, conn, packet); return;
      case 'pubrec': handlePubrec(this, conn, packet); return;
      case 'pubrel': handlePubrel(this, conn, packet); return;
      case 'pubcomp': handlePubcomp(this, conn, packet); return;
      case 'subscribe': handleSubscribe(this, conn, packet); return;
      case 'unsubscribe': handleUnsubscribe(this, conn, packet); return;
      case 'pingreq': conn.write(PINGRESP); return;
      case 'disconnect': handleDisconnect(this, conn, packet); return;
      case 'auth': handleAuth(this, conn, packet); return;
      case 'connect':
        // [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
        throw new ProtocolError(0x82, 'second CONNECT on one connection');
      default:
        throw new ProtocolError(0x82, `a client must not send ${packet.type.toUpperCase()}`);
    }
  }

  onProtocolError(conn: Connection, err: ProtocolError): void {
    this.metrics.protocolErrors++;
    this.noteProtocolError(conn, err.reasonCode, err.message);
    if (conn.state === 'awaiting-connect' || conn.state === 'authenticating') {
      if (err.reasonCode === 0x84) {
        // [MQTT-3.1.2-2] unsupported protocol level: CONNACK 0x01 (3.1.1 form, which every level can read).
        conn.write(Buffer.from([0x20, 0x02, 0x00, 0x01]));
      } else if (conn.version === 5 && conn.state === 'authenticating') {
        conn.send({ type: 'connack', sessionPresent: false, reasonCode: err.reasonCode });
      } else if (this.looksLikeV5Connect(conn)) {
        conn.write(Buffer.from([0x20, 0x03, 0x00, err.reasonCode, 0x00]));
      }
      conn.end();
      return;
    }
    // Once connected the error goes out in a DISCONNECT, whose reason codes exclude CONNACK-only ones:
    // a second CONNECT naming an unsupported level (0x84 from the decoder) is a Protocol Error
    // [MQTT-3.1.0-2]. Encoding DISCONNECT 0x84 would throw out of the socket's data handler and crash.
    const code = allowedReasonCodes.disconnect.has(err.reasonCode) ? err.reasonCode : 0x82;
    this.disconnect(conn, code, err.message);
  }

  /** A malformed CONNECT from a v5 client still deserves a v5 CONNACK with the reason. */
  private looksLikeV5Connect(conn: Connection): boolean {
    return conn.parser.protocolVersion === 5;
  }

  onInternalError(conn: Connection, err: unknown): void {
    this.metrics.protocolErrors++;
    this.noteProtocolError(conn, 0x83, 'implementation specific error');
    // Never silent: without a logger it still reaches the process's warning output.
    if (this.options.logger !== undefined) this.log.error({ event: 'internal.error', ...connectionFields(conn), err }, 'internal error: please report it');
    else process.emitWarning(`mqtt-sim broker: internal error handling ${conn.clientId || 'a client'}: ${err instanceof Error ? err.stack : String(err)}`);
    this.disconnect(conn, 0x83, 'implementation specific error');
  }

  /** Counts a protocol error by reason code, records it as the connection's close reason and logs it. */
  private noteProtocolError(conn: Connection, reasonCode: number, message: string): void {
    const byReason = this.metrics.protocolErrorsByReason;
    byReason[reasonCode] = (byReason[reasonCode] ?? 0) + 1;
    conn.closeReason ??= { reason: message, reasonCode };
    this.log.warn({ event: 'protocol.error', ...connectionFields(conn), reasonCode: hex(reasonCode), error: message }, 'protocol error: closing the connection');
  }

  /** Sends a v5 DISCONNECT with the reason (3.x has none) and closes the connection. */
  disconnect(conn: Connection, reasonCode: number, reasonString?: string): void {
    if (conn.state === 'closing' || conn.state === 'closed') return;
    conn.closeReason ??= { reason: reasonString ?? 'disconnected by the server', reasonCode };
    if (conn.version === 5 && conn.state === 'connected') {
      const properties: Properties | undefined =
        reasonString !== undefined && conn.requestProblemInformation ? { reasonString } : undefined;
      conn.send(properties ? { type: 'disconnect', reasonCode, properties } : { type: 'disconnect', reasonCode });
    }
    conn.end();
  }

  // ---------------------------------------------------------------- connections and sessions

  attach(conn: Connection, session: Session): void {
    session.connection = conn;
    session.disconnectedAt = undefined;
    conn.session = session;
    this.metrics.clientsConnected++;
    if (session.willTimer !== undefined) {
      // [MQTT-3.1.3-9] a reconnect before the will delay elapses cancels the will.
      clearTimeout(session.willTimer);
      session.willTimer = undefined;
    }
    if (session.pendingWill !== undefined) {
      session.pendingWill = undefined;
      if (session.persistent) this.saveSession(session);
    }
    this.events.onClientConnected?.(session.clientId);
    conn.connectedAt = this.now();
    logClientConnected(this.log, conn, session.expiryInterval);
  }

  onConnectionClosed(conn: Connection, wasConnected: boolean): void {
    this.connections.delete(conn);
    logConnectionClosed(this.log, conn, conn.connectedAt !== undefined, conn.closeReason);
    if (conn.blockedBy !== undefined) {
      for (const session of conn.blockedBy) session.blockedPublishers?.delete(conn);
      conn.blockedBy = undefined;
    }
    if (wasConnected) this.detach(conn);
  }

  /** Separates a connection from its session: will, shared-subscription hand-over, session end or persistence. */
  detach(conn: Connection): void {
    const session = conn.session;
    if (session === null || session.connection !== conn) return;
    session.connection = null;
    conn.session = null;
    this.metrics.clientsConnected--;
    session.disconnectedAt = this.now();
    this.events.onClientDisconnected?.(session.clientId);
    // An offline queue no longer drains: it is bounded by the queue limits, not by pausing publishers.
    this.releasePublishers(session);
    this.handOverShared(session);

    // A broker shutting down does not publish wills; persistent sessions keep them for after the restart.
    const will = conn.normalDisconnect ? undefined : conn.will;
    if (this.closing) {
      if (!session.persistent) this.endSessionQuietly(session);
      else {
        if (will !== undefined) session.pendingWill = { ...will, dueAt: this.now() + conn.willDelay * 1000 };
        this.saveSession(session);
      }
      return;
    }
    conn.will = undefined;
    if (!session.persistent) {
      this.endSession(session);
      if (will !== undefined) this.publishWill(will, session.clientId);
      return;
    }
    if (will !== undefined) {
      const delay = Math.min(conn.willDelay, session.expiryInterval);
      if (delay <= 0) {
        this.publishWill(will, session.clientId);
      } else {
        // [MQTT-3.1.3-9] held until the delay passes or the session ends, whichever is first.
        session.pendingWill = { ...will, dueAt: this.now() + delay * 1000 };
        this.armWillTimer(session);
      }
    }
    this.saveSession(session);
  }

  armWillTimer(session: Session): void {
    const will = session.pendingWill;
    if (will === undefined || will.dueAt === undefined) return;
    const wait = Math.max(0, will.dueAt - this.now());
    session.willTimer = setTimeout(() => {
      session.willTimer = undefined;
      const due = session.pendingWill;
      if (due === undefined || session.connection !== null) return;
      session.pendingWill = undefined;
      this.saveSession(session);
      this.publishWill(due, session.clientId);
    }, Math.min(wait, 2 ** 31 - 1));
    session.willTimer.unref?.();
  }

  publishWill(will: WillRecord, clientId: string): void {
    this.metrics.willsPublished++;
    const message: Message = { topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, publisherId: clientId };
    const { properties, expiresAt } = forwardableProperties(will.properties, this.now());
    if (properties !== undefined) message.properties = properties;
    if (expiresAt !== undefined) message.expiresAt = expiresAt;
    this.publish(message);
  }

  /** Ends a session: its subscriptions leave the trie, its state leaves the store, a pending will is published. */
  endSession(session: Session): void {
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
    for (const sub of session.subscriptions.values()) this.removeFromTrie(session.clientId, sub.filter);
    session.subscriptions.clear();
    if (session.willTimer !== undefined) clearTimeout(session.willTimer);
    const will = session.pendingWill;
    session.pendingWill = undefined;
    this.handOverShared(session);
    session.inflight.clear();
    session.drainPending();
    this.store.deleteSession(session.clientId);
    if (will !== undefined) this.publishWill(will, session.clientId);
  }

  /** Ends a session during shutdown: state leaves the store, nothing is published. */
  private endSessionQuietly(session: Session): void {
    session.pendingWill = undefined;
    this.endSession(session);
  }

  saveSession(session: Session): void {
    const record = {
      clientId: session.clientId,
      protocolVersion: session.protocolVersion,
      expiryInterval: session.expiryInterval,
      ...(session.disconnectedAt !== undefined && session.connection === null ? { disconnectedAt: session.disconnectedAt } : {}),
      ...(session.pendingWill !== undefined ? { will: session.pendingWill } : {}),
    };
    this.store.saveSession(record);
  }

  private sweepExpiredSessions(): void {
    const now = this.now();
    for (const session of this.sessions.values()) {
      if (session.connection !== null || session.disconnectedAt === undefined) continue;
      if (session.expiryInterval === NEVER) continue;
      if (now >= session.disconnectedAt + session.expiryInterval * 1000) {
        this.metrics.sessionsExpired++;
        this.endSession(session);
      }
    }
  }

  // ---------------------------------------------------------------- subscriptions

  addToTrie(session: Session, rec: SubscriptionRecord): void {
    const shared = parseSharedFilter(rec.filter);
    const route: RouteSub = {
      clientId: session.clientId,
      session,
      qos: rec.qos,
      noLocal: rec.noLocal,
      retainAsPublished: rec.retainAsPublished,
      subscriptionId: rec.subscriptionId,
      share: shared === null ? undefined : { group: shared.group, filter: shared.filter },
    };
    if (shared === null) this.trie.add(rec.filter, undefined, route);
    else this.trie.add(shared.filter, shared.group, route);
  }

  removeFromTrie(clientId: string, filter: string): void {
    const shared = parseSharedFilter(filter);
    if (shared === null) this.trie.remove(filter, undefined, clientId);
    else this.trie.remove(shared.filter, shared.group, clientId);
  }

  // ---------------------------------------------------------------- routing

  /**
   * Routes a message to every matching subscription: one delivery per session at the highest
   * matching QoS with all matching subscription identifiers [MQTT-3.3.4-2], [MQTT-3.3.4-3];
   * one member per shared group [MQTT-4.8.2-?]. Returns the number of deliveries.
   */
  publish(message: Message): number {
    this.publishDepth++;
    try {
      return this.route(message);
    } finally {
      if (--this.publishDepth === 0 && this.deferredDequeues.length > 0) {
        const list = this.deferredDequeues;
        this.deferredDequeues = [];
        for (let i = 0; i < list.length; i += 2) this.store.dequeue(list[i] as string, list[i + 1] as number);
      }
    }
  }

  /**
   * Removes a delivery from the store. During a fan-out the removal waits until every subscriber's
   * entry exists: a message is stored once and deleted with its last reference, so dropping the first
   * subscriber's entry (too large for it, expired) must not delete it under the next one.
   */
  private dequeue(clientId: string, seq: number): void {
    if (this.publishDepth > 0) this.deferredDequeues.push(clientId, seq);
    else this.store.dequeue(clientId, seq);
  }

  private publishDepth = 0;
  private deferredDequeues: Array<string | number> = [];

  private route(message: Message): number {
    if (message.retain) this.updateRetained(message);
    const gen = ++this.routeGeneration;
    this.routing = message;
    this.routeGen = gen;
    const routed = this.routed;
    routed.length = 0;
    this.trie.match(message.topic, this.onRouteSub, this.onRouteShared);
    this.routing = undefined;
    const n = routed.length;
    for (let i = 0; i < n; i++) {
      const sub = routed[i]!;
      const qos = (message.qos < this.routedQos[i]! ? message.qos : this.routedQos[i]!) as QoS;
      // [MQTT-3.3.1-9] (3.1.1) / [MQTT-3.3.1-12] (5.0): RETAIN is cleared on normal forwarding unless retain-as-published.
      const retain = this.routedRap[i]! && message.retain;
      this.deliver(sub.session, message, qos, retain, this.routedIds[i], sub.share);
    }
    routed.length = 0;
    return n;
  }

  private routeGen = 0;

  private readonly onRouteSub = (sub: RouteSub): void => {
    const message = this.routing!;
    // [MQTT-3.8.3-3] no-local: not to the publisher's own subscription.
    if (sub.noLocal && message.publisherId === sub.clientId) return;
    this.collect(sub);
  };

  private collect(sub: RouteSub): void {
    const session = sub.session;
    if (session.routeGen === this.routeGen) {
      const i = session.routeIndex;
      if (sub.qos > this.routedQos[i]!) this.routedQos[i] = sub.qos;
      if (sub.retainAsPublished) this.routedRap[i] = true;
      if (sub.subscriptionId !== undefined) {
        const ids = this.routedIds[i];
        if (ids === undefined) this.routedIds[i] = [sub.subscriptionId];
        else if (!ids.includes(sub.subscriptionId)) ids.push(sub.subscriptionId);
      }
      return;
    }
    const index = this.routed.length;
    session.routeGen = this.routeGen;
    session.routeIndex = index;
    this.routed.push(sub);
    this.routedQos[index] = sub.qos;
    this.routedRap[index] = sub.retainAsPublished;
    this.routedIds[index] = sub.subscriptionId === undefined ? undefined : [sub.subscriptionId];
  }

  private readonly onRouteShared = (_group: string, _filter: string, members: ReadonlyMap<string, RouteSub>): void => {
    const chosen = this.pickSharedMember(members, undefined);
    if (chosen === undefined) return;
    // A shared delivery is its own delivery even if the session also matched a non-shared filter.
    const index = this.routed.length;
    this.routed.push(chosen);
    this.routedQos[index] = chosen.qos;
    this.routedRap[index] = chosen.retainAsPublished;
    this.routedIds[index] = chosen.subscriptionId === undefined ? undefined : [chosen.subscriptionId];
  };

  /** Round-robin over connected members with room in their window, then any connected, then any persistent. */
  private pickSharedMember(members: ReadonlyMap<string, RouteSub>, exclude: Session | undefined): RouteSub | undefined {
    const list = [...members.values()].filter((m) => m.session !== exclude);
    if (list.length === 0) return undefined;
    const start = (this.shareCursor.get(members) ?? 0) % list.length;
    let fallback: RouteSub | undefined;
    let offline: RouteSub | undefined;
    for (let k = 0; k < list.length; k++) {
      const m = list[(start + k) % list.length]!;
      const conn = m.session.connection;
      if (conn !== null && conn.state === 'connected') {
        if (m.session.pendingCount === 0 && m.session.inflight.size < this.window(conn)) {
          this.shareCursor.set(members, start + k + 1);
          return m;
        }
        fallback ??= m;
      } else if (m.session.persistent) {
        offline ??= m;
      }
    }
    this.shareCursor.set(members, start + 1);
    return fallback ?? offline;
  }

  /** A departing shared-subscription member's unacknowledged messages go to another member. */
  private handOverShared(session: Session): void {
    for (const [id, entry] of session.inflight) {
      // [MQTT-4.8.2-4], [MQTT-4.8.2-5]: a QoS 2 delivery already sent stays with this member — completed when it
      // reconnects, never sent to another member.
      if (entry.share === undefined || entry.qos === 2) continue;
      if (!this.handOverEntry(session, entry)) continue;
      session.inflight.delete(id);
    }
    if (session.pendingCount > 0) {
      const keep: OutEntry[] = [];
      for (const entry of session.drainPending()) {
        if (entry.share === undefined || !this.handOverEntry(session, entry)) keep.push(entry);
      }
      for (const entry of keep) session.pushPending(entry);
    }
  }

  /**
   * Delivers one of a departing member's shared entries to another member of its group. Returns false when there
   * is none: the entry then stays in the departing session, to be resent if it resumes [MQTT-4.4.0-1].
   */
  private handOverEntry(session: Session, entry: OutEntry): boolean {
    const share = entry.share!;
    let target: RouteSub | undefined;
    this.trie.match(entry.message.topic, noop, (group, filter, members) => {
      if (group === share.group && filter === share.filter) target = this.pickSharedMember(members, session);
    });
    if (target === undefined) return false;
    // A delivery that was not persisted holds no store reference, so the stored copy its message once
    // had may be gone (deleted with its last reference, e.g. a persistent member acknowledged it): a
    // persistent target must store the message afresh, or enqueue() meets an unknown message id and
    // throws. A copy without the id, so the original (maybe the retained message) keeps its own.
    let message = entry.message;
    if (!entry.persisted && message.storeId !== undefined) {
      const { storeId: _stale, ...unstored } = message;
      message = unstored;
    }
    // [MQTT-4.8.2-3] the new member gets the message as its own subscription grants it: its QoS, its
    // subscription identifier [MQTT-3.3.4-3], its retain-as-published option [MQTT-3.3.1-12].
    const qos = (message.qos < target.qos ? message.qos : target.qos) as QoS;
    const ids = target.subscriptionId === undefined ? undefined : [target.subscriptionId];
    this.deliver(target.session, message, qos, target.retainAsPublished && message.retain, ids, share);
    // Released only now: the store deletes a message nothing references, and the new delivery may reference it.
    if (entry.persisted) this.dequeue(session.clientId, entry.seq);
    return true;
  }

  // ---------------------------------------------------------------- delivery

  window(conn: Connection): number {
    return conn.clientReceiveMaximum < this.options.maxInflight ? conn.clientReceiveMaximum : this.options.maxInflight;
  }

  deliver(
    session: Session, message: Message, qos: QoS, retain: boolean,
    subscriptionIds: number[] | undefined, share: { group: string; filter: string } | undefined,
  ): void {
    const conn = session.connection;
    const online = conn !== null && conn.state === 'connected';
    if (qos === 0) {
      if (online) {
        if (conn.canWrite()) this.writePublish(conn, message, 0, retain, subscriptionIds, 0, false);
        else this.metrics.dropped.slowConsumer++;
        return;
      }
      if (!session.persistent || !this.options.queueQos0) return;
    }
    const entry: OutEntry = {
      seq: session.nextSeq++, message, qos, retain, packetId: 0, state: 'queued', persisted: session.persistent,
    };
    if (subscriptionIds !== undefined) entry.subscriptionIds = subscriptionIds;
    if (share !== undefined) entry.share = share;
    if (online && qos > 0 && session.inflight.size >= this.window(conn)) this.metrics.inflightWindowFull++;
    if (online && qos > 0 && session.pendingCount === 0 && session.inflight.size < this.window(conn) && conn.canWrite()) {
      // Sent at once: stored in its 'sent' state by sendEntry, one row write instead of two.
      this.sendEntry(conn, session, entry, false, false);
      return;
    }
    if (!this.admit(session, entry)) return;
    if (entry.persisted) this.persistEntry(session, entry);
    session.pushPending(entry);
    const limit = this.options.publisherBackpressure;
    if (online && limit > 0 && session.pendingCount >= limit && this.publishingConnection !== undefined) {
      this.blockPublisher(this.publishingConnection, session);
    }
  }

  /** The connection whose PUBLISH is being routed right now (for flow control). */
  publishingConnection: Connection | undefined;

  /**
   * Flow control: stop reading from a publisher while a connected subscriber it feeds has a long
   * queue, so a fan-in faster than the subscriber is slowed at TCP instead of acknowledged and then
   * dropped by the queue limits. Counted in metrics.publishersPaused.
   */
  private blockPublisher(conn: Connection, session: Session): void {
    if (conn.session === session) return;
    const blockers = (conn.blockedBy ??= new Set());
    if (blockers.has(session)) return;
    blockers.add(session);
    const blocked = (session.blockedPublishers ??= new Set());
    if (blocked.size === 0) {
      session.blockedSince = this.now();
      this.armBackpressureTimeout(session);
    }
    blocked.add(conn);
    if (blockers.size === 1) {
      conn.stream.pause();
      this.metrics.publishersPaused++;
    }
  }

  /** A subscriber that stays behind longer than slowConsumerTimeout no longer holds publishers back. */
  private armBackpressureTimeout(session: Session): void {
    const seconds = this.options.slowConsumerTimeout;
    if (seconds <= 0) return;
    // The episode is identified by its start: a timer from an earlier episode must not end a later one,
    // and the check must not compare clocks (a timer may fire a millisecond before Date.now() agrees).
    const since = session.blockedSince;
    const timer = setTimeout(() => {
      if (session.blockedPublishers !== undefined && session.blockedPublishers.size > 0 && session.blockedSince === since) {
        this.releasePublishers(session);
      }
    }, seconds * 1000);
    timer.unref?.();
  }

  releasePublishers(session: Session): void {
    const blocked = session.blockedPublishers;
    if (blocked === undefined || blocked.size === 0) return;
    session.blockedPublishers = undefined;
    for (const conn of blocked) {
      const blockers = conn.blockedBy;
      if (blockers === undefined) continue;
      blockers.delete(session);
      if (blockers.size === 0) {
        conn.blockedBy = undefined;
        conn.lastActivity = this.now();
        if (!conn.isEnding()) conn.stream.resume();
      }
    }
  }

  /** Applies the per-session queue limits and drop policy; every drop is counted. */
  private admit(session: Session, entry: OutEntry): boolean {
    const o = this.options;
    const size = entry.message.payload.length;
    while (session.pendingCount >= o.maxQueuedMessages || session.queuedBytes + size > o.maxQueuedBytes) {
      this.limitLog.hit('maxQueued', { clientId: session.clientId, queued: session.pendingCount, queuedBytes: session.queuedBytes, policy: o.queueDropPolicy }, 'session queue full: message dropped');
      // Queue limits are the server's own (MQTT 5.0 section 4.1, storage limits of session state): a message
      // larger than the whole byte limit can never be queued, so it is dropped alone rather than
      // evicting every older message first (drop-oldest would otherwise empty the queue for nothing).
      if (o.queueDropPolicy === 'drop-new' || session.pendingCount === 0 || size > o.maxQueuedBytes) {
        this.metrics.dropped.queueFull++;
        session.dropped++;
        return false;
      }
      const oldest = session.shiftPending()!;
      if (oldest.persisted) this.dequeue(session.clientId, oldest.seq);
      this.metrics.dropped.queueFull++;
      session.dropped++;
    }
    return true;
  }

  private persistEntry(session: Session, entry: OutEntry): void {
    const message = entry.message;
    if (message.storeId === undefined) message.storeId = this.store.putMessage(toStoredMessage(message));
    this.store.enqueue(session.clientId, {
      seq: entry.seq, messageId: message.storeId, qos: entry.qos, state: entry.state, retain: entry.retain,
      ...(entry.packetId !== 0 ? { packetId: entry.packetId } : {}),
      ...(entry.subscriptionIds !== undefined ? { subscriptionIds: entry.subscriptionIds } : {}),
    });
  }

  /** Sends queued deliveries while the client's window and socket have room. */
  pump(session: Session): void {
    const conn = session.connection;
    if (conn === null || conn.state !== 'connected') return;
    const window = this.window(conn);
    while (session.pendingCount > 0 && session.inflight.size < window) {
      if (!conn.canWrite()) break;
      const entry = session.shiftPending()!;
      if (entry.qos === 0) {
        this.writePublish(conn, entry.message, 0, entry.retain, entry.subscriptionIds, 0, false);
        if (entry.persisted) this.dequeue(session.clientId, entry.seq);
        continue;
      }
      this.sendEntry(conn, session, entry, false);
    }
    if (session.blockedPublishers !== undefined && session.pendingCount * 2 <= this.options.publisherBackpressure) {
      this.releasePublishers(session);
    }
  }

  /** `stored`: the entry already has its row (queued earlier); otherwise it is written here, already sent. */
  private sendEntry(conn: Connection, session: Session, entry: OutEntry, dup: boolean, stored = true): void {
    const message = entry.message;
    if (message.expiresAt !== undefined && message.expiresAt <= this.now()) {
      // Expired messages leave the queue without being sent [MQTT-3.3.2-5].
      this.metrics.dropped.expired++;
      session.dropped++;
      if (entry.persisted && stored) this.dequeue(session.clientId, entry.seq);
      return;
    }
    entry.packetId = session.allocatePacketId();
    entry.state = 'sent';
    session.inflightMap().set(entry.packetId, entry);
    if (entry.persisted) {
      if (stored) this.store.updateQueueEntry(session.clientId, entry.seq, { state: 'sent', packetId: entry.packetId });
      else this.persistEntry(session, entry);
    }
    if (!this.writePublish(conn, message, entry.qos, entry.retain, entry.subscriptionIds, entry.packetId, dup)) {
      // Too large for this client: behave as if it was delivered [MQTT-3.1.2-25].
      this.complete(session, entry);
    }
  }

  /** The final acknowledgement of a delivery: it leaves the session and the store. */
  complete(session: Session, entry: OutEntry): void {
    session.inflight.delete(entry.packetId);
    if (entry.persisted) this.dequeue(session.clientId, entry.seq);
  }

  /** On resume: unacknowledged PUBLISH resent with DUP and PUBREL resent, in original order [MQTT-4.4.0-1]. */
  resume(conn: Connection, session: Session): void {
    for (const entry of session.inflight.values()) {
      if (entry.state === 'pubrec-received') {
        conn.send({ type: 'pubrel', packetId: entry.packetId });
      } else {
        if (!this.writePublish(conn, entry.message, entry.qos, entry.retain, entry.subscriptionIds, entry.packetId, true)) {
          this.complete(session, entry);
        }
      }
    }
    this.pump(session);
  }

  /**
   * Writes a PUBLISH: header then payload, the payload never copied. Headers without per-client
   * parts are encoded once per message and wire shape and shared across the fan-out.
   * Returns false when the packet exceeds the client's Maximum Packet Size or the ACL does not let
   * the client read the topic (it is not sent).
   */
  writePublish(
    conn: Connection, message: Message, qos: QoS, retain: boolean,
    subscriptionIds: number[] | undefined, packetId: number, dup: boolean,
  ): boolean {
    // Every delivery passes here (routed, retained, queued, resent, shared), so this one check keeps
    // unreadable topics from every client whatever its subscription; no ACL, no cost.
    if (this.acl !== undefined && !this.acl.allowDelivery(conn, message.topic)) return false;
    const version = conn.version;
    let header: Buffer;
    let aliasesBefore = 0;
    const perClient = version === 5 && (subscriptionIds !== undefined || message.expiresAt !== undefined || conn.clientTopicAliasMaximum > 0);
    if (!perClient) {
      const key = wireKey(version, qos, retain);
      let shared = message.headerKey === key ? message.header : message.moreHeaders?.get(key);
      if (shared === undefined) {
        shared = encodePublishHeader(
          { type: 'publish', topic: message.topic, payload: message.payload, qos, retain, dup: false, ...(qos > 0 ? { packetId: 1 } : {}), ...(message.properties ? { properties: message.properties } : {}) },
          version,
        );
        if (message.headerKey === undefined) {
          message.headerKey = key;
          message.header = shared;
        } else {
          (message.moreHeaders ??= new Map()).set(key, shared);
        }
      }
      if (qos === 0) header = shared;
      else {
        header = Buffer.allocUnsafe(shared.length);
        shared.copy(header);
        const at = publishPacketIdOffset(header);
        header[at] = packetId >> 8;
        header[at + 1] = packetId & 0xff;
        if (dup) header[0] = header[0]! | 0x08;
      }
    } else {
      aliasesBefore = conn.outboundAliases?.size ?? 0;
      header = this.encodePerClientHeader(conn, message, qos, retain, subscriptionIds, packetId, dup);
    }
    if (conn.clientMaxPacketSize > 0 && header.length + message.payload.length > conn.clientMaxPacketSize) {
      // [MQTT-3.1.2-25] the packet is discarded unsent, so an alias it would have set was never announced:
      // forget it, or later packets would use an alias the client does not know (3.3.2.3.4).
      if (conn.outboundAliases !== undefined && conn.outboundAliases.size > aliasesBefore) conn.outboundAliases.delete(message.topic);
      this.metrics.dropped.packetTooLarge++;
      return false;
    }
    conn.write(header);
    if (message.payload.length > 0) conn.write(message.payload);
    this.metrics.messagesSent++;
    this.metrics.publishSent[qos]++;
    return true;
  }

  private encodePerClientHeader(
    conn: Connection, message: Message, qos: QoS, retain: boolean,
    subscriptionIds: number[] | undefined, packetId: number, dup: boolean,
  ): Buffer {
    const properties: Properties = { ...message.properties };
    if (message.expiresAt !== undefined) {
      // [MQTT-3.3.2-6] the expiry interval sent is what remains of it.
      properties.messageExpiryInterval = Math.max(0, Math.ceil((message.expiresAt - this.now()) / 1000));
    }
    if (subscriptionIds !== undefined) properties.subscriptionIdentifiers = subscriptionIds;
    let topic = message.topic;
    if (conn.clientTopicAliasMaximum > 0) {
      const aliases = (conn.outboundAliases ??= new Map());
      const alias = aliases.get(topic);
      if (alias !== undefined) {
        properties.topicAlias = alias;
        topic = '';
      } else if (aliases.size < conn.clientTopicAliasMaximum) {
        // [MQTT-3.3.2-?] a new alias is sent together with its topic name once.
        const next = aliases.size + 1;
        aliases.set(topic, next);
        properties.topicAlias = next;
      }
    }
    const packet: PublishPacket = { type: 'publish', topic, payload: message.payload, qos, retain, dup };
    if (qos > 0) packet.packetId = packetId;
    if (Object.keys(properties).length > 0) packet.properties = properties;
    return encodePublishHeader(packet, conn.version);
  }

  // ---------------------------------------------------------------- retained messages

  private updateRetained(message: Message): void {
    const topic = message.topic;
    // [MQTT-3.3.1-6], [MQTT-3.3.1-7]: an empty retained payload clears the topic and is not stored.
    if (message.payload.length === 0) {
      if (this.retained.delete(topic)) this.store.setRetained(topic, null);
      return;
    }
    if (message.storeId === undefined) message.storeId = this.store.putMessage(toStoredMessage(message));
    this.retained.set(topic, message);
    this.store.setRetained(topic, message.storeId);
  }

  /** Retained messages matching a (non-shared) filter, expired ones purged on the way. */
  matchRetained(filter: string): Message[] {
    const now = this.now();
    const out: Message[] = [];
    for (const [topic, message] of this.retained) {
      if (!topicMatches(filter, topic)) continue;
      if (message.expiresAt !== undefined && message.expiresAt <= now) {
        this.retained.delete(topic);
        this.store.setRetained(topic, null);
        continue;
      }
      out.push(message);
    }
    return out;
  }

  // ---------------------------------------------------------------- recovery

  /** Rebuilds sessions, subscriptions, queues and retained messages from the store. */
  private recover(): void {
    const store = this.store;
    const now = this.now();
    for (const { messageId, message } of store.loadRetained()) {
      if (message.expiresAt !== undefined && message.expiresAt <= now) {
        store.setRetained(message.topic, null);
        continue;
      }
      this.retained.set(message.topic, fromStoredMessage(message, messageId));
    }
    const messages = new Map<number, Message>();
    for (const rec of store.loadSessions()) {
      const session = new Session(rec.clientId, rec.protocolVersion);
      session.expiryInterval = rec.expiryInterval;
      // Time while the broker was down counts towards expiry from the moment it comes back at the latest.
      session.disconnectedAt = rec.disconnectedAt ?? now;
      if (rec.will !== undefined) {
        session.pendingWill = rec.will;
      }
      if (rec.expiryInterval !== NEVER && now >= session.disconnectedAt + rec.expiryInterval * 1000) {
        store.deleteSession(rec.clientId);
        if (rec.will !== undefined) this.deferredWills.push({ will: rec.will, clientId: rec.clientId });
        continue;
      }
      for (const entry of store.loadQueue(rec.clientId)) {
        let message = messages.get(entry.messageId);
        if (message === undefined) {
          message = fromStoredMessage(entry.message, entry.messageId);
          messages.set(entry.messageId, message);
        }
        const out: OutEntry = {
          seq: entry.seq, message, qos: entry.qos, retain: entry.retain, packetId: entry.packetId ?? 0,
          state: entry.state, persisted: true,
        };
        if (entry.subscriptionIds !== undefined) out.subscriptionIds = entry.subscriptionIds;
        if (entry.state !== 'queued' && entry.packetId !== undefined) session.inflightMap().set(entry.packetId, out);
        else session.pushPending(out);
        if (entry.seq >= session.nextSeq) session.nextSeq = entry.seq + 1;
      }
      for (const id of store.loadInboundQos2(rec.clientId)) session.inboundQos2.add(id);
      this.sessions.set(rec.clientId, session);
    }
    for (const sub of store.loadSubscriptions()) {
      const session = this.sessions.get(sub.clientId);
      if (session === undefined) continue;
      session.subscriptionMap().set(sub.filter, sub);
      this.addToTrie(session, sub);
    }
    for (const session of this.sessions.values()) if (session.pendingWill !== undefined) this.armWillTimer(session);
  }

  /** Wills of sessions that expired while the broker was down; published once the broker listens. */
  readonly deferredWills: Array<{ will: WillRecord; clientId: string }> = [];

  close(): void {
    this.closing = true;
    clearInterval(this.expiryTimer);
    clearInterval(this.connectionTimer);
    for (const session of this.sessions.values()) if (session.willTimer !== undefined) clearTimeout(session.willTimer);
  }
}

/** Properties a broker forwards with a message; the expiry interval becomes an absolute deadline. */
export function forwardableProperties(props: Properties | undefined, now: number): { properties?: Properties; expiresAt?: number } {
  if (props === undefined) return {};
  const out: Properties = {};
  let any = false;
  let expiresAt: number | undefined;
  if (props.payloadFormatIndicator !== undefined) { out.payloadFormatIndicator = props.payloadFormatIndicator; any = true; }
  if (props.contentType !== undefined) { out.contentType = props.contentType; any = true; }
  if (props.responseTopic !== undefined) { out.responseTopic = props.responseTopic; any = true; }
  if (props.correlationData !== undefined) { out.correlationData = Buffer.from(props.correlationData); any = true; }
  if (props.userProperties !== undefined) { out.userProperties = props.userProperties; any = true; }
  if (props.messageExpiryInterval !== undefined) expiresAt = now + props.messageExpiryInterval * 1000;
  const result: { properties?: Properties; expiresAt?: number } = {};
  if (any) result.properties = out;
  if (expiresAt !== undefined) result.expiresAt = expiresAt;
  return result;
}

const PINGRESP = Buffer.from([0xd0, 0x00]);
function noop(): void {}
