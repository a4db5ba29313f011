/**
 * The lean MQTT client: one per simulated device, thousands per shard worker.
 *
 * Memory is the design constraint. A client is one object with plain fields; it owns no
 * EventEmitter and no per-client listener closures: the socket listeners are module-level functions
 * that find their client through a symbol on the stream, and the callbacks live in one handler object
 * shared by every device of a model. Maps, sets and queues exist only while they hold something. At
 * most one timer runs per client; what it means follows from the state (connect timeout while
 * connecting, keepalive while connected, the backoff delay while waiting, the stop bound once closed).
 * The clients that share a ClientTimers (a shard's) share one underlying timer (timer-queue.ts).
 *
 * Lifecycle (one `state` field, moves checked by transition()):
 *
 *   idle ─start()→ connecting ─CONNACK ok→ connected
 *                      │  ↑                   │
 *            failure   │  └──── timer ─── waiting ←── link lost (reconnect enabled)
 *                      ↓
 *                    closed ←── stop(), destroy(), or any failure with reconnect disabled
 *
 * Packets from the broker go bytes → PacketParser → handlePacket() → one small named step per packet
 * type. Everything written in one tick leaves as one socket write (flushAll, shared by all clients).
 *
 * The broker's protocol violations are judged along the way, only where this side can be sure, and
 * reported through handler.onViolation (judgeDelivery, checkReceiveMaximum, the acknowledgement steps,
 * topic aliases, the parser's size limit); the connection is only ended where the spec says so.
 */
import type { Duplex } from 'node:stream';
import {
  PacketParser, ProtocolError, connackReturnCodeNames, encodePacket, encodePublish, encodePublishHeader,
  publishPacketIdOffset, reasonCodeName,
} from '../../protocol/index.js';
import type {
  ConnackPacket, ConnectPacket, Packet, Properties, PublishPacket, QoS, Subscription,
} from '../../protocol/index.js';
import { parseSharedFilter, topicMatches } from '../../protocol/topic.js';
import type { BrokerViolationKind, DisconnectCause } from '../metrics/types.js';
import { backoffDelay } from './backoff.js';
import { NOT_QUEUED, timerQueueFor, type TimerEntry } from './timer-queue.js';
import { openTransport, transportScheme } from './transport.js';
import type { ClientState, ClientTimers, LeanClientHandler, LeanClientOptions } from './types.js';

export type { ClientState, ClientTimers, LeanClientHandler, LeanClientOptions } from './types.js';

const transitions: Readonly<Record<ClientState, readonly ClientState[]>> = {
  idle: ['connecting', 'closed'],
  connecting: ['connected', 'waiting', 'closed'],
  connected: ['waiting', 'closed'],
  waiting: ['connecting', 'closed'],
  closed: [],
};

const defaultTimers: ClientTimers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** How long stop() waits for the socket to close before destroying it. */
const STOP_BOUND_MS = 2000;
const PINGREQ = Buffer.from([0xc0, 0x00]);
/** Joining small batches into one buffer beats a corked writev; above this, cork. */
const CONCAT_LIMIT = 65536;

/** Where an outbound QoS 1/2 message is in its flow. */
const enum Phase {
  /** Waiting in the queue for a connection or window space; no packet id yet. */
  Queued = 0,
  /** PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2). */
  Published = 1,
  /** QoS 2: PUBREC received, PUBREL sent; waiting for PUBCOMP. */
  Released = 2,
}

/** A QoS 1/2 message from publish() until its flow completes. */
class Outbound {
  packetId = 0;
  phase: Phase = Phase.Queued;

  constructor(
    /** The encoded PUBLISH header (packet id patched in at send time); dropped at PUBREC. */
    public header: Buffer | null,
    /** The caller's payload buffer, referenced (not copied) until the broker has it. */
    public payload: Buffer | null,
    readonly qos: 1 | 2,
    readonly token: number,
  ) {}
}

/** What a client subscribed to, created with its first subscribe(). */
class SubscriptionList {
  /** Every subscription asked for, in order; entries[0..confirmed) were acknowledged on the broker's current session. */
  readonly entries: Subscription[] = [];
  confirmed = 0;
  /**
   * Per entry: the filter topics are matched against (a shared filter without `$share/group/`),
   * computed once so judging an inbound PUBLISH allocates nothing.
   */
  readonly filters: string[] = [];
  /** Per entry: the SUBACK code on the broker's current session; -1 until then (or after a session loss). */
  readonly granted: number[] = [];
}

// ------------------------------------------------------------------------------------------------
// Socket listeners: shared functions, `this` is the stream; the stream carries its client.

const CLIENT = Symbol('leanClient');
type TaggedStream = Duplex & { [CLIENT]?: StreamOwner | null };

const enum StreamEvent { Ready, Data, Error, Close, End }

interface StreamOwner {
  streamEvent(stream: TaggedStream, kind: StreamEvent, arg: unknown): void;
}

function dispatch(stream: TaggedStream, kind: StreamEvent, arg: unknown): void {
  const owner = stream[CLIENT];
  if (owner != null) owner.streamEvent(stream, kind, arg);
}
function onStreamReady(this: TaggedStream): void { dispatch(this, StreamEvent.Ready, undefined); }
function onStreamData(this: TaggedStream, chunk: Buffer): void { dispatch(this, StreamEvent.Data, chunk); }
/** Stays attached after the client lets go of a stream, so a late error is never an unhandled 'error' event. */
function onStreamError(this: TaggedStream, err: Error): void { dispatch(this, StreamEvent.Error, err); }
function onStreamClose(this: TaggedStream): void { dispatch(this, StreamEvent.Close, undefined); }
function onStreamEnd(this: TaggedStream): void { dispatch(this, StreamEvent.End, undefined); }

// ------------------------------------------------------------------------------------------------
// Write coalescing: every client that wrote in this tick is flushed once, in one microtask for all.

interface Flushable { flushOutbox(): void }
let flushQueue: Flushable[] = [];
let flushScheduled = false;

function scheduleFlush(client: Flushable): void {
  flushQueue.push(client);
  if (!flushScheduled) {
    flushScheduled = true;
    queueMicrotask(flushAll);
  }
}

function flushAll(): void {
  flushScheduled = false;
  const queue = flushQueue;
  flushQueue = [];
  for (let i = 0; i < queue.length; i++) queue[i]!.flushOutbox();
}

/**
 * A parser holding no partial packet has no state, so the clients share one between packets (per protocol
 * version, or per Maximum Packet Size when they advertise one); a client keeps its own only while a
 * packet straddles chunks. A parser per client would cost ~140 bytes per idle device.
 */
const idleByVersion: Array<PacketParser | undefined> = [];
const idleBySize = new Map<number, PacketParser>();

function idleParser(version: 4 | 5, maxPacketSize: number | undefined): PacketParser {
  if (maxPacketSize === undefined) return (idleByVersion[version] ??= new PacketParser({ protocolVersion: version }));
  let parser = idleBySize.get(maxPacketSize);
  if (parser === undefined) {
    parser = new PacketParser({ protocolVersion: version, maxPacketSize });
    idleBySize.set(maxPacketSize, parser);
  }
  return parser;
}

/** The shared parser was taken by one client: the next chunk of any other gets a new one. */
function dropIdleParser(version: 4 | 5, maxPacketSize: number | undefined): void {
  if (maxPacketSize === undefined) idleByVersion[version] = undefined;
  else idleBySize.delete(maxPacketSize);
}

/** Parsed broker URLs, shared by every client of a fleet (parsed per connect attempt beyond 256 of them). */
const urlCache = new Map<string, URL>();
function parseUrl(href: string): URL {
  let url = urlCache.get(href);
  if (url === undefined) {
    url = new URL(href);
    if (urlCache.size < 256) urlCache.set(href, url);
  }
  return url;
}

function errorDetail(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return typeof code === 'string' ? code : err.message;
  }
  return String(err);
}

function reasonDetail(code: number): string {
  return `0x${code.toString(16).padStart(2, '0')} ${reasonCodeName(code)}`;
}

// ------------------------------------------------------------------------------------------------

export class LeanClient<Ctx> implements StreamOwner, Flushable, TimerEntry {
  private current: ClientState = 'idle';

  private stream: TaggedStream | null = null;
  /** This stream's own parser while a packet straddles chunks (or after a parse failure); null: the shared one (idleParser). */
  private parser: PacketParser | null = null;
  /**
   * The one timer (its meaning follows from the state): this client is its own entry in the timer queue
   * its ClientTimers share (timer-queue.ts), so arming it allocates nothing. @internal
   */
  atMs = 0;
  heapIndex = NOT_QUEUED;

  private outbox: Buffer[] | null = null;
  private outboxBytes = 0;

  /** The attempt's stream became writable (a connect timeout then means no CONNACK rather than no connection). */
  private opened = false;
  /** When the attempt began, before the TCP/TLS/WebSocket handshake: connectMs counts the whole connect. */
  private attemptAt = 0;
  private lastSentAt = 0;
  /** When the outstanding PINGREQ went out; -1: none outstanding (any inbound byte clears it). */
  private pingSentAt = -1;
  private keepaliveMs = 0;
  /** Reconnect attempts since the last successful CONNACK: the backoff exponent. */
  private attempt = 0;
  private everConnected = false;
  /** No connection attempt starts before this (timers.now()): the network is partitioned (see cut()). */
  private blockedUntil = 0;
  /** Outbound in-flight window for this connection: min(inflightWindow, server Receive Maximum, 65535). */
  private window = 0;
  private lastPacketId = 0;

  /** QoS 1/2 messages with a packet id, in send order (Map keeps insertion order) [MQTT-4.4.0-1]. */
  private inflight: Map<number, Outbound> | null = null;
  private queue: Array<Outbound | undefined> | null = null;
  private queueHead = 0;

  /** Every subscription asked for (null for a client that never subscribes: most devices only publish). */
  private subs: SubscriptionList | null = null;
  /** SUBSCRIBE packet id → the range [from, to) of subs it carried, until its SUBACK. */
  private pendingSubacks: Map<number, { from: number; to: number }> | null = null;
  /**
   * PUBACKs and PUBCOMPs written since the last flush: not on the wire yet, so the broker cannot have
   * them; with awaitingRel, the inbound QoS 1/2 messages the broker must count as unacknowledged.
   */
  private unflushedAcks = 0;
  /** Inbound QoS 2 packet ids delivered and awaiting PUBREL: a resent PUBLISH with one of them is not delivered again. */
  private awaitingRel: Set<number> | null = null;
  /** Inbound topic aliases (MQTT 5) of this connection. */
  private aliases: Map<number, string> | null = null;

  private stopping: { promise: Promise<void>; finish: (notify: boolean) => void } | null = null;

  constructor(
    readonly options: LeanClientOptions,
    private readonly handler: LeanClientHandler<Ctx>,
    readonly ctx: Ctx,
  ) {
    if (options.createStream === undefined) {
      const scheme = transportScheme(parseUrl(options.url));
      if (scheme instanceof Error) throw scheme;
    }
    // Encoding once here turns an invalid client id, will or credential into a throw at construction
    // instead of a failure inside a socket callback later.
    encodePacket(this.connectPacket(), options.protocolVersion);
  }

  get state(): ClientState {
    return this.current;
  }

  /** QoS 1/2 messages sent and not yet completed (PUBACK / PUBCOMP). */
  get inflightCount(): number {
    return this.inflight?.size ?? 0;
  }

  /** QoS 1/2 messages waiting for a connection or for window space. */
  get queuedCount(): number {
    return this.queue === null ? 0 : this.queue.length - this.queueHead;
  }

  /** Connects; reconnects after a failure or a lost link when options.reconnect.enabled. */
  start(): void {
    if (this.current !== 'idle') return;
    this.transition('connecting');
    this.openStream();
  }

  /**
   * Subscribes now when connected; in any case the subscriptions are remembered and sent again after
   * every CONNACK that says the broker has no session for us. Throws for an invalid topic filter.
   */
  subscribe(subs: Array<{ topic: string; qos: QoS; noLocal?: boolean; retainAsPublished?: boolean; retainHandling?: 0 | 1 | 2 }>): void {
    if (this.current === 'closed' || subs.length === 0) return;
    const added: Subscription[] = subs.map((s) => {
      const sub: Subscription = { topic: s.topic, qos: s.qos };
      // MQTT 5 subscription options; 3.1.1 has none to send.
      if (this.options.protocolVersion === 5) {
        if (s.noLocal === true) sub.noLocal = true;
        if (s.retainAsPublished === true) sub.retainAsPublished = true;
        if (s.retainHandling !== undefined && s.retainHandling !== 0) sub.retainHandling = s.retainHandling;
      }
      return sub;
    });
    // Validate now, so a bad filter throws to the caller rather than inside a reconnect.
    encodePacket({ type: 'subscribe', packetId: 1, subscriptions: added }, this.options.protocolVersion);
    const list = (this.subs ??= new SubscriptionList());
    const all = list.entries;
    const from = all.length;
    for (const s of added) {
      all.push(s);
      list.filters.push(parseSharedFilter(s.topic)?.filter ?? s.topic);
      list.granted.push(-1);
    }
    if (this.current === 'connected') this.sendSubscribe(from, all.length);
  }

  /**
   * Publishes, or queues a QoS 1/2 message until there is a connection and window space. Returns false
   * when refused: QoS 0 while not connected, the queue full, or the client closed. The payload buffer is
   * referenced until the broker has the message: do not modify it. Throws for an invalid topic.
   */
  publish(topic: string, payload: Buffer, qos: QoS, retain: boolean, token: number): boolean {
    if (this.current === 'closed') return false;
    const version = this.options.protocolVersion;
    if (qos === 0) {
      if (this.current !== 'connected') return false;
      this.write(encodePublish({ type: 'publish', topic, payload, qos: 0, retain, dup: false }, version));
      return true;
    }
    const sendNow = this.current === 'connected' && this.queuedCount === 0 && this.inflightCount < this.window;
    if (!sendNow && this.queuedCount >= this.options.maxQueued) return false;
    // The header is encoded once with a placeholder id; send() patches the real one in.
    const header = encodePublishHeader({ type: 'publish', topic, payload, qos, retain, dup: false, packetId: 1 }, version);
    const message = new Outbound(header, payload, qos, token);
    if (sendNow) {
      const id = this.allocatePacketId();
      if (id !== 0) {
        this.send(message, id);
        return true;
      }
      if (this.queuedCount >= this.options.maxQueued) return false;
    }
    (this.queue ??= []).push(message);
    return true;
  }

  /**
   * Ends the client: DISCONNECT (reason 0x00) when connected and graceful, then the socket closes; no
   * reconnect. Resolves once the socket closed, at most ~2 s later. The last callback is
   * onDisconnect(ctx, 'normal', 'stopped', wasConnected, false).
   */
  stop(graceful: boolean): Promise<void> {
    if (this.stopping !== null) return this.stopping.promise;
    if (this.current === 'closed') return Promise.resolve();
    const wasConnected = this.current === 'connected';
    this.clearTimer();
    this.transition('closed');
    const stream = this.stream;
    if (stream === null) {
      this.handler.onDisconnect(this.ctx, 'normal', 'stopped', wasConnected, false);
      return Promise.resolve();
    }
    let resolve!: () => void;
    const promise = new Promise<void>((r) => { resolve = r; });
    this.stopping = {
      promise,
      finish: (notify) => {
        this.stopping = null;
        this.clearTimer();
        this.releaseStream();
        if (notify) this.handler.onDisconnect(this.ctx, 'normal', 'stopped', wasConnected, false);
        resolve();
      },
    };
    if (graceful && wasConnected && !stream.destroyed) {
      // 0x00 Normal disconnection: the broker discards the will [MQTT-3.14.4-3].
      this.write(encodePacket({ type: 'disconnect', reasonCode: 0 }, this.options.protocolVersion));
      this.flushOutbox();
      stream.end();
    } else {
      // Connecting (or not graceful): nothing to say; closing the socket is all. 'close' follows.
      stream.destroy();
    }
    this.setTimer(STOP_BOUND_MS);
    return promise;
  }

  /** Drops the link at once: no DISCONNECT, no reconnect, no callback (a crash or a cut cable). */
  destroy(): void {
    if (this.stopping !== null) {
      this.stopping.finish(false);
      return;
    }
    if (this.current === 'closed') return;
    this.clearTimer();
    this.transition('closed');
    this.releaseStream();
  }

  /**
   * Chaos: drops the link at once like a cut cable — no DISCONNECT, so the broker fires the will — and
   * reconnects with the usual backoff. onDisconnect reports `cause` when a connection or an attempt was
   * cut. With holdMs > 0 the network stays unreachable that long: no attempt starts before it is back
   * (also for a client not started yet), then the reconnect waits its backoff jitter.
   */
  cut(cause: DisconnectCause, detail: string, holdMs = 0): void {
    if (this.current === 'closed') return;
    if (holdMs > 0) this.blockedUntil = Math.max(this.blockedUntil, this.timers.now() + holdMs);
    if (this.stream !== null) this.connectionLost(cause, detail);
  }

  // ---------------------------------------------------------------------------------- state machine

  private transition(to: ClientState): void {
    if (!transitions[this.current].includes(to)) {
      throw new Error(`lean client ${this.options.clientId}: illegal state change ${this.current} → ${to}`);
    }
    this.current = to;
  }

  private get timers(): ClientTimers {
    return this.options.timers ?? defaultTimers;
  }

  private setTimer(ms: number): void {
    timerQueueFor(this.timers).arm(this, ms);
  }

  private clearTimer(): void {
    if (this.heapIndex !== NOT_QUEUED) timerQueueFor(this.timers).disarm(this);
  }

  /** @internal Called by the timer queue when the one timer is due. */
  onTimer(): void {
    try {
      switch (this.current) {
        case 'connecting':
          this.connectionLost('timeout', !this.opened
            ? `no connection within ${this.options.connectTimeoutMs} ms`
            : `no CONNACK within ${this.options.connectTimeoutMs} ms`);
          break;
        case 'connected':
          this.keepaliveTick();
          break;
        case 'waiting':
          this.transition('connecting');
          this.openStream();
          break;
        case 'closed':
          // stop() waited long enough for the socket to close.
          this.stopping?.finish(true);
          break;
        case 'idle':
          break;
      }
    } catch (err) {
      this.internalError(err);
    }
  }

  // ---------------------------------------------------------------------------------- connection

  private openStream(): void {
    const now = this.timers.now();
    if (now < this.blockedUntil) {
      // Partitioned: nothing to try until the network is back; then the backoff jitter, so a fleet
      // coming back from a partition does not reconnect in lockstep.
      this.transition('waiting');
      this.setTimer(this.blockedUntil - now + backoffDelay(this.attempt++, this.options.reconnect, this.options.random));
      return;
    }
    this.opened = false;
    this.attemptAt = this.timers.now();
    let stream: TaggedStream;
    let readyEvent: string;
    try {
      const opened = openTransport(parseUrl(this.options.url), this.options);
      stream = opened.stream;
      readyEvent = opened.readyEvent;
    } catch (err) {
      // A throwing createStream hook is a failed attempt like any other.
      this.attemptFailed('error', errorDetail(err), false);
      return;
    }
    stream[CLIENT] = this;
    this.stream = stream;
    this.parser = null;
    stream.on(readyEvent, onStreamReady);
    stream.on('data', onStreamData);
    stream.on('error', onStreamError);
    stream.on('end', onStreamEnd);
    stream.on('close', onStreamClose);
    // One bound for both the transport and the CONNACK.
    this.setTimer(this.options.connectTimeoutMs);
  }

  /** @internal Called by the shared stream listeners. */
  streamEvent(stream: TaggedStream, kind: StreamEvent, arg: unknown): void {
    if (this.stream !== stream) return;
    if (this.current === 'closed') {
      // stop() is waiting for this socket to go away; everything else it says is ignored.
      if (kind === StreamEvent.Close) this.stopping?.finish(true);
      else if (kind === StreamEvent.End) stream.destroy();
      return;
    }
    try {
      switch (kind) {
        case StreamEvent.Ready:
          this.opened = true;
          this.write(encodePacket(this.connectPacket(), this.options.protocolVersion));
          break;
        case StreamEvent.Data:
          this.onData(stream, arg as Buffer);
          break;
        case StreamEvent.Error:
          this.connectionLost('error', errorDetail(arg));
          break;
        case StreamEvent.End:
        case StreamEvent.Close:
          this.connectionLost('server', 'connection closed by the broker');
          break;
      }
    } catch (err) {
      this.internalError(err);
    }
  }

  private connectPacket(): ConnectPacket {
    const o = this.options;
    const v5 = o.protocolVersion === 5;
    let properties: Properties | undefined;
    if (v5) {
      properties = {};
      if (o.sessionExpirySec > 0) properties.sessionExpiryInterval = o.sessionExpirySec;
      if (o.receiveMaximum < 65535) properties.receiveMaximum = o.receiveMaximum;
      if ((o.topicAliasMaximum ?? 0) > 0) properties.topicAliasMaximum = o.topicAliasMaximum;
      if (o.maximumPacketSize !== undefined) properties.maximumPacketSize = o.maximumPacketSize;
    }
    const packet: ConnectPacket = {
      type: 'connect',
      protocolVersion: o.protocolVersion,
      protocolName: 'MQTT',
      clean: o.clean,
      keepalive: o.keepaliveSec,
      clientId: o.clientId,
    };
    if (properties !== undefined) packet.properties = properties;
    if (o.will !== undefined) {
      packet.will = { topic: o.will.topic, payload: o.will.payload, qos: o.will.qos, retain: o.will.retain };
      if (v5 && o.will.delaySec > 0) packet.will.properties = { willDelayInterval: o.will.delaySec };
    }
    if (o.username !== undefined) packet.username = o.username;
    if (o.password !== undefined) packet.password = Buffer.from(o.password, 'utf8');
    return packet;
  }

  /** Lets go of the current stream: later events from it are ignored (its error listener stays). */
  private releaseStream(): void {
    const stream = this.stream;
    this.stream = null;
    this.parser = null;
    this.outbox = null;
    this.outboxBytes = 0;
    this.pendingSubacks = null;
    this.aliases = null;
    this.unflushedAcks = 0;
    this.pingSentAt = -1;
    if (stream !== null) {
      stream[CLIENT] = null;
      stream.destroy();
    }
  }

  /** The attempt or the connection is over: tell the handler, then wait and retry or close. */
  private connectionLost(cause: DisconnectCause, detail: string): void {
    if (this.stream === null) return;
    const wasConnected = this.current === 'connected';
    this.clearTimer();
    this.releaseStream();
    this.attemptFailed(cause, detail, wasConnected);
  }

  private attemptFailed(cause: DisconnectCause, detail: string, wasConnected: boolean): void {
    const willRetry = this.options.reconnect.enabled;
    if (willRetry) {
      this.transition('waiting');
      this.setTimer(backoffDelay(this.attempt++, this.options.reconnect, this.options.random));
    } else {
      this.transition('closed');
    }
    this.handler.onDisconnect(this.ctx, cause, detail, wasConnected, willRetry);
  }

  /** A bug in the client or in the handler's callbacks: end the connection visibly rather than throw out of a socket callback. */
  private internalError(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (this.stream !== null && this.current !== 'closed') this.connectionLost('error', `internal error: ${message}`);
  }

  // ---------------------------------------------------------------------------------- reading

  private onData(stream: TaggedStream, chunk: Buffer): void {
    this.handler.onBytes?.(this.ctx, 0, chunk.length);
    // Any byte from the broker shows the link is alive: the PINGREQ needs no PINGRESP in particular.
    this.pingSentAt = -1;
    const own = this.parser;
    const version = this.options.protocolVersion;
    const maxPacket = version === 5 ? this.options.maximumPacketSize : undefined;
    const parser = own ?? idleParser(version, maxPacket);
    let packets: Packet[];
    let failure: ProtocolError | null = null;
    try {
      packets = parser.push(chunk);
    } catch (err) {
      failure = err instanceof ProtocolError ? err : new ProtocolError(0x81, String(err));
      packets = parser.completedBeforeFailure;
    }
    if (own === null) {
      // The shared parser now holds the start of this stream's next packet (or has failed): it becomes
      // this client's own, and the others get a fresh one.
      if (failure !== null || parser.hasPartialPacket) {
        this.parser = parser;
        dropIdleParser(version, maxPacket);
      }
    } else if (failure === null && !parser.hasPartialPacket) {
      this.parser = null;
    }
    for (let i = 0; i < packets.length; i++) {
      this.handlePacket(packets[i]!);
      // A callback may have stopped or destroyed the client, or the packet ended the connection.
      if (this.stream !== stream) return;
    }
    if (failure === null) return;
    if (failure.reasonCode === 0x95 && this.options.maximumPacketSize !== undefined && this.options.protocolVersion === 5) {
      // [MQTT-3.1.2-25] the broker must not send a packet above our Maximum Packet Size; receiving one,
      // the client disconnects with 0x95 Packet too large (4.13).
      this.violation('packet-too-large', failure.message);
      if (this.stream !== stream) return;
      this.disconnectWith(0x95, failure.message);
      return;
    }
    this.connectionLost('protocol', failure.message);
  }

  private violation(kind: BrokerViolationKind, detail: string): void {
    this.handler.onViolation?.(this.ctx, kind, detail);
  }

  /** A protocol error the spec answers with DISCONNECT: say why (v5), put it on the wire, and end the connection. */
  private disconnectWith(reasonCode: number, detail: string): void {
    if (this.options.protocolVersion === 5) {
      this.write(encodePacket({ type: 'disconnect', reasonCode }, 5));
      this.flushOutbox();
    }
    this.connectionLost('protocol', `sent DISCONNECT ${reasonDetail(reasonCode)}: ${detail}`);
  }

  private handlePacket(p: Packet): void {
    if (this.current === 'connecting' && p.type !== 'connack') {
      this.connectionLost('protocol', `${p.type.toUpperCase()} before CONNACK`);
      return;
    }
    switch (p.type) {
      case 'connack': return this.onConnack(p);
      case 'publish': return this.onPublish(p);
      case 'puback': return this.onPuback(p.packetId, p.reasonCode ?? 0);
      case 'pubrec': return this.onPubrec(p.packetId, p.reasonCode ?? 0);
      case 'pubrel': return this.onPubrel(p.packetId);
      case 'pubcomp': return this.onPubcomp(p.packetId, p.reasonCode ?? 0);
      case 'suback': return this.onSuback(p.packetId, p.reasonCodes);
      case 'unsuback':
        // This client never unsubscribes: no UNSUBACK can be owed.
        this.violation('unknown-packet-id', `UNSUBACK for packet id ${p.packetId}, but no UNSUBSCRIBE was sent`);
        return;
      case 'pingresp':
        return;
      case 'disconnect': {
        const reason = p.reasonCode ?? 0;
        const text = p.properties?.reasonString;
        this.connectionLost('server', `DISCONNECT ${reasonDetail(reason)}${text !== undefined ? ` (${text})` : ''}`);
        return;
      }
      default:
        // CONNECT, SUBSCRIBE, PINGREQ... travel client → server only; AUTH was never asked for.
        this.connectionLost('protocol', `unexpected ${p.type.toUpperCase()} from the broker`);
    }
  }

  // ---------------------------------------------------------------------------------- CONNACK

  private onConnack(p: ConnackPacket): void {
    if (this.current !== 'connecting') {
      this.connectionLost('protocol', 'a second CONNACK');
      return;
    }
    const o = this.options;
    if (p.reasonCode !== 0) {
      const detail = o.protocolVersion === 5
        ? reasonDetail(p.reasonCode)
        : `${p.reasonCode} ${connackReturnCodeNames[p.reasonCode] ?? 'Unknown return code'}`;
      this.connectionLost('refused', detail);
      return;
    }
    const now = this.timers.now();
    const props = p.properties;
    this.window = Math.max(1, Math.min(o.inflightWindow, props?.receiveMaximum ?? 65535, 65535));
    // The broker may impose its own keepalive [MQTT-3.2.2-21].
    this.keepaliveMs = (props?.serverKeepAlive ?? o.keepaliveSec) * 1000;
    const reconnect = this.everConnected;
    this.everConnected = true;
    // Backoff restarts after a successful CONNACK rather than after the link stayed up a while: the
    // CONNACK proves the broker takes us, needs no extra timer or timestamp per device, and a broker
    // that accepts and then drops at once is still retried no faster than initialDelay × random().
    this.attempt = 0;
    this.transition('connected');
    this.lastSentAt = now;
    this.pingSentAt = -1;
    if (!p.sessionPresent) {
      // The broker has nothing of ours: no subscriptions, no QoS 2 ids awaiting PUBREL.
      this.awaitingRel = null;
      if (this.subs !== null) {
        this.subs.confirmed = 0;
        this.subs.granted.fill(-1);
      }
    }
    this.resubscribe();
    this.resendInflight(p.sessionPresent);
    this.drain();
    if (this.keepaliveMs > 0) this.setTimer(this.keepaliveMs);
    else this.clearTimer();
    this.handler.onConnect(this.ctx, p.sessionPresent, now - this.attemptAt, reconnect);
  }

  private resubscribe(): void {
    const subs = this.subs;
    if (subs !== null && subs.confirmed < subs.entries.length) this.sendSubscribe(subs.confirmed, subs.entries.length);
  }

  private sendSubscribe(from: number, to: number): void {
    const id = this.allocatePacketId();
    if (id === 0) return;
    (this.pendingSubacks ??= new Map()).set(id, { from, to });
    const subscriptions = this.subs!.entries.slice(from, to);
    this.write(encodePacket({ type: 'subscribe', packetId: id, subscriptions }, this.options.protocolVersion));
  }

  /**
   * Session present: resend every unacknowledged PUBLISH with DUP=1 and every PUBREL, with their
   * original packet ids and in their original order [MQTT-4.4.0-1]. No session: the device still wants
   * its messages delivered, so unacknowledged PUBLISHes go again as fresh ones (DUP=0, same ids).
   * A PUBREL goes again either way: the broker acknowledged the PUBLISH with PUBREC, and its PUBCOMP
   * (v5: 0x92 Packet Identifier not found when the session is gone) completes the flow.
   */
  private resendInflight(sessionPresent: boolean): void {
    const inflight = this.inflight;
    if (inflight === null) return;
    for (const m of inflight.values()) {
      if (m.phase === Phase.Released) {
        this.write(encodePacket({ type: 'pubrel', packetId: m.packetId }, this.options.protocolVersion));
        continue;
      }
      const old = m.header!;
      const header = Buffer.from(old);
      // [MQTT-3.3.1-1] DUP=1 on a re-delivery attempt; a fresh publish on a new session has DUP=0.
      header[0] = sessionPresent ? old[0]! | 0x08 : old[0]! & ~0x08;
      m.header = header;
      this.write(header);
      this.write(m.payload!);
    }
  }

  // ---------------------------------------------------------------------------------- outbound QoS 1/2

  /** Packet ids 1..65535, round robin, skipping ids in use; 0 when all are taken. */
  private allocatePacketId(): number {
    const inflight = this.inflight;
    const subacks = this.pendingSubacks;
    for (let tries = 0; tries < 65535; tries++) {
      const id = this.lastPacketId >= 65535 ? 1 : this.lastPacketId + 1;
      this.lastPacketId = id;
      if (inflight?.has(id) !== true && subacks?.has(id) !== true) return id;
    }
    return 0;
  }

  private send(m: Outbound, id: number): void {
    m.packetId = id;
    m.phase = Phase.Published;
    const header = m.header!;
    header.writeUInt16BE(id, publishPacketIdOffset(header));
    (this.inflight ??= new Map()).set(id, m);
    this.write(header);
    this.write(m.payload!);
  }

  /** Sends queued messages while connected and the window has room. */
  private drain(): void {
    const queue = this.queue;
    if (queue === null) return;
    while (this.current === 'connected' && this.queueHead < queue.length && this.inflightCount < this.window) {
      const id = this.allocatePacketId();
      if (id === 0) break;
      const m = queue[this.queueHead]!;
      queue[this.queueHead++] = undefined;
      this.send(m, id);
    }
    if (this.queueHead >= queue.length) {
      this.queue = null;
      this.queueHead = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > queue.length) {
      queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  private complete(m: Outbound, reasonCode: number): void {
    const inflight = this.inflight!;
    inflight.delete(m.packetId);
    if (inflight.size === 0) this.inflight = null;
    const stream = this.stream;
    this.handler.onAck(this.ctx, m.token, m.qos, reasonCode);
    if (this.stream === stream) this.drain();
  }

  private onPuback(id: number, reasonCode: number): void {
    const m = this.inflight?.get(id);
    if (m === undefined || m.qos !== 1) {
      this.violation('unknown-packet-id', `PUBACK for packet id ${id}, ${m === undefined ? 'which has no publish in flight' : 'a QoS 2 publish'}`);
      return;
    }
    this.complete(m, reasonCode);
  }

  private onPubrec(id: number, reasonCode: number): void {
    const m = this.inflight?.get(id);
    if (m === undefined || m.qos !== 2) {
      this.violation('unknown-packet-id', `PUBREC for packet id ${id}, ${m === undefined ? 'which has no publish in flight' : 'a QoS 1 publish'}`);
      return;
    }
    if (reasonCode >= 0x80) {
      // A failed PUBREC ends the flow: no PUBREL, the id is free again [MQTT-4.3.3].
      this.complete(m, reasonCode);
      return;
    }
    // [MQTT-4.3.3-4] PUBREL after PUBREC (again for a repeated PUBREC). The broker owns the message now.
    m.phase = Phase.Released;
    m.header = null;
    m.payload = null;
    this.write(encodePacket({ type: 'pubrel', packetId: id }, this.options.protocolVersion));
  }

  private onPubcomp(id: number, reasonCode: number): void {
    const m = this.inflight?.get(id);
    if (m === undefined || m.phase !== Phase.Released) {
      this.violation('unknown-packet-id', `PUBCOMP for packet id ${id}, ${m === undefined ? 'which has no publish in flight' : 'before its PUBREC (no PUBREL was sent)'}`);
      return;
    }
    this.complete(m, reasonCode);
  }

  private onSuback(id: number, reasonCodes: number[]): void {
    const range = this.pendingSubacks?.get(id);
    if (range === undefined) {
      this.violation('unknown-packet-id', `SUBACK for packet id ${id}, which has no SUBSCRIBE outstanding`);
      return;
    }
    this.pendingSubacks!.delete(id);
    if (this.pendingSubacks!.size === 0) this.pendingSubacks = null;
    const list = this.subs!;
    const granted = list.granted;
    const n = Math.min(range.to - range.from, reasonCodes.length);
    for (let i = 0; i < n; i++) granted[range.from + i] = reasonCodes[i]!;
    if (range.to > list.confirmed) list.confirmed = range.to;
    this.handler.onSubscribed?.(this.ctx, reasonCodes);
  }

  // ---------------------------------------------------------------------------------- inbound

  private onPublish(p: PublishPacket): void {
    const stream = this.stream;
    const o = this.options;
    let topic = p.topic;
    const alias = p.properties?.topicAlias;
    if (alias !== undefined) {
      // Inbound topic aliases (MQTT 5, 3.3.2.3.4): a topic with an alias sets it, an empty topic uses it.
      const max = o.topicAliasMaximum ?? 0;
      if (alias > max) {
        // [MQTT-3.1.2-27] no alias at all when we advertised none, [MQTT-3.3.2-10] none above what we
        // advertised: a Protocol Error, answered with DISCONNECT 0x94 Topic Alias invalid.
        const detail = `PUBLISH on ${topic === '' ? '(empty topic)' : topic} with topic alias ${alias}, above the Topic Alias Maximum of ${max} we sent`;
        this.violation('topic-alias-misuse', detail);
        if (this.stream === stream) this.disconnectWith(0x94, detail);
        return;
      }
      const aliases = (this.aliases ??= new Map());
      if (topic.length > 0) {
        aliases.set(alias, topic);
      } else {
        const known = aliases.get(alias);
        if (known === undefined) {
          // An empty topic needs a mapping this connection set before: a Protocol Error otherwise.
          const detail = `PUBLISH with an empty topic and topic alias ${alias}, which this connection never set`;
          this.violation('topic-alias-misuse', detail);
          if (this.stream === stream) this.disconnectWith(0x82, detail);
          return;
        }
        topic = known;
      }
    }
    const qos = p.qos;
    if (qos > 0 || p.retain) {
      this.judgeDelivery(topic, qos, p.retain);
      if (this.stream !== stream) return;
    }
    const version = o.protocolVersion;
    switch (qos) {
      case 0:
        this.handler.onMessage(this.ctx, topic, p.payload, 0, p.retain, false);
        return;
      case 1:
        // Before our PUBACK is written, this message and every one whose ack is still unflushed are
        // unacknowledged at the broker for certain [MQTT-3.3.4-9].
        if (version === 5) this.checkReceiveMaximum(this.unflushedAcks + (this.awaitingRel?.size ?? 0) + 1, topic);
        if (this.stream !== stream) return;
        this.write(encodePacket({ type: 'puback', packetId: p.packetId! }, version));
        this.unflushedAcks++;
        this.handler.onMessage(this.ctx, topic, p.payload, 1, p.retain, p.dup);
        return;
      case 2: {
        const id = p.packetId!;
        const awaiting = (this.awaitingRel ??= new Set());
        // Exactly once: the id is held from the first PUBLISH until PUBREL; a resent PUBLISH with it
        // (DUP=1, or the broker resending) is acknowledged again but not delivered again [MQTT-4.3.3].
        const first = !awaiting.has(id);
        if (first) {
          awaiting.add(id);
          // A QoS 2 message is unacknowledged at the broker until our PUBCOMP [MQTT-3.3.4-9].
          if (version === 5) this.checkReceiveMaximum(this.unflushedAcks + awaiting.size, topic);
          if (this.stream !== stream) return;
        }
        this.write(encodePacket({ type: 'pubrec', packetId: id }, version));
        if (first) this.handler.onMessage(this.ctx, topic, p.payload, 2, p.retain, p.dup);
        return;
      }
    }
  }

  private checkReceiveMaximum(unacknowledged: number, topic: string): void {
    const max = Math.min(this.options.receiveMaximum, 65535);
    if (unacknowledged > max) {
      this.violation('receive-maximum-exceeded', `QoS 1/2 PUBLISH on ${topic} with ${unacknowledged - 1} earlier ones still unacknowledged by us, above the Receive Maximum of ${max} we sent`);
    }
  }

  /**
   * Judges a QoS 1/2 or retained delivery against the subscriptions whose filter matches its topic,
   * only when the broker has acknowledged every one of them on its current session (their granted
   * QoS and options are then known). One pass over the subscriptions, no allocation.
   *
   * - qos-above-granted: the QoS exceeds the granted QoS of every matching subscription [MQTT-3.8.4-8]
   *   (overlapping subscriptions allow the highest of them).
   * - retain-misuse (MQTT 5): RETAIN=1 although every matching subscription has Retain As Published
   *   off [MQTT-3.3.1-12] and none can cause a retained replay: a shared subscription (retained messages
   *   are not sent for shared subscriptions, 4.8.2) or one with Retain Handling 2 [MQTT-3.3.1-11]. A
   *   non-shared subscription with Retain Handling 0 or 1 legitimately receives RETAIN=1 for the replay
   *   at subscribe time [MQTT-3.3.1-9], which the client cannot tell from a live message, so it is not judged.
   */
  private judgeDelivery(topic: string, qos: QoS, retain: boolean): void {
    const list = this.subs;
    if (list === null) return;
    const subs = list.entries;
    const filters = list.filters;
    const granted = list.granted;
    let maxGranted = -1;
    let matched = false;
    let retainAllowed = false;
    for (let i = 0; i < subs.length; i++) {
      if (!topicMatches(filters[i]!, topic)) continue;
      const g = granted[i]!;
      if (g < 0) return; // not confirmed on this session yet: nothing to judge against
      if (g >= 0x80) continue; // refused: no subscription
      matched = true;
      if (g > maxGranted) maxGranted = g;
      const sub = subs[i]!;
      // A non-shared subscription matches by its own topic filter; only those get a retained replay.
      if (sub.retainAsPublished === true || (sub.retainHandling !== 2 && filters[i] === sub.topic)) retainAllowed = true;
    }
    if (!matched) return;
    if (qos > maxGranted) {
      this.violation('qos-above-granted', `QoS ${qos} PUBLISH on ${topic}, but the matching subscription${subs.length === 1 ? ' was' : 's were'} granted at most QoS ${maxGranted}`);
    }
    if (retain && !retainAllowed && this.options.protocolVersion === 5) {
      this.violation('retain-misuse', `PUBLISH with RETAIN=1 on ${topic}, but the matching subscriptions have Retain As Published off and cannot replay retained messages (shared, or Retain Handling 2)`);
    }
  }

  private onPubrel(id: number): void {
    const awaiting = this.awaitingRel;
    const known = awaiting?.delete(id) === true;
    if (awaiting !== null && awaiting.size === 0) this.awaitingRel = null;
    // PUBCOMP either way [MQTT-4.3.3-11]; v5 says when the id was unknown. An unknown id is no
    // violation: the broker may resend PUBREL after a reconnect for a flow we completed already.
    const v5 = this.options.protocolVersion === 5;
    this.write(encodePacket({ type: 'pubcomp', packetId: id, ...(v5 && !known ? { reasonCode: 0x92 } : {}) }, this.options.protocolVersion));
    // Until it is on the wire, the message stays unacknowledged at the broker.
    if (known) this.unflushedAcks++;
  }

  // ---------------------------------------------------------------------------------- keepalive

  /**
   * PINGREQ when nothing was sent for keepalive seconds [MQTT-3.1.2-23]; the link is dead when no byte
   * arrives within 1.5 × keepalive of it. One timer, re-armed for whichever comes next.
   */
  private keepaliveTick(): void {
    const ka = this.keepaliveMs;
    if (ka <= 0) return;
    const now = this.timers.now();
    if (this.pingSentAt >= 0) {
      const deadline = this.pingSentAt + ka * 1.5;
      if (now >= deadline) {
        this.connectionLost('timeout', `no packet within ${ka * 1.5} ms of PINGREQ`);
        return;
      }
      this.setTimer(deadline - now);
      return;
    }
    const due = this.lastSentAt + ka;
    if (now >= due) {
      this.write(PINGREQ);
      this.pingSentAt = now;
      this.lastSentAt = now;
      this.setTimer(ka);
      return;
    }
    this.setTimer(due - now);
  }

  // ---------------------------------------------------------------------------------- writing

  private write(buf: Buffer): void {
    if (this.stream === null) return;
    if (this.outbox === null) {
      this.outbox = [buf];
      this.outboxBytes = buf.length;
      scheduleFlush(this);
    } else {
      this.outbox.push(buf);
      this.outboxBytes += buf.length;
    }
  }

  /** @internal Writes what this tick queued as one socket write. */
  flushOutbox(): void {
    const box = this.outbox;
    const stream = this.stream;
    if (box === null || stream === null) return;
    const bytes = this.outboxBytes;
    this.outbox = null;
    this.outboxBytes = 0;
    this.unflushedAcks = 0;
    if (stream.destroyed) return;
    try {
      if (box.length === 1) stream.write(box[0]!);
      else if (bytes <= CONCAT_LIMIT) stream.write(Buffer.concat(box, bytes));
      else {
        stream.cork();
        for (let i = 0; i < box.length; i++) stream.write(box[i]!);
        stream.uncork();
      }
      this.lastSentAt = this.timers.now();
      if (this.current !== 'closed') this.handler.onBytes?.(this.ctx, bytes, 0);
    } catch (err) {
      this.internalError(err);
    }
  }
}
