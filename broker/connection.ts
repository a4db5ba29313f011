/**
 * One client connection: a duplex stream, its parser, a batched writer and the connection's own
 * state machine. Packet handling lives in handlers/; this file only moves bytes and enforces the
 * per-connection timers (connect timeout, keepalive, slow consumer).
 */
import type { Duplex } from 'node:stream';
import { encodePacket } from '../protocol/encoder.js';
import { ProtocolError } from '../protocol/errors.js';
import type { Packet, ProtocolVersion } from '../protocol/packets.js';
import { PacketParser } from '../protocol/parser.js';
import type { BrokerCore } from './core.js';
import type { CloseReason } from './log.js';
import type { Session } from './session.js';
import type { WillRecord } from './store/types.js';
import type { TokenBucket } from './token-bucket.js';

export type ConnectionState = 'awaiting-connect' | 'authenticating' | 'connected' | 'closing' | 'closed';

const transitions: Record<ConnectionState, readonly ConnectionState[]> = {
  'awaiting-connect': ['authenticating', 'connected', 'closing', 'closed'],
  authenticating: ['connected', 'closing', 'closed'],
  connected: ['closing', 'closed'],
  closing: ['closed'],
  closed: [],
};

export class Connection {
  state: ConnectionState = 'awaiting-connect';
  readonly stream: Duplex;
  readonly parser: PacketParser;
  readonly core: BrokerCore;
  readonly remoteAddress: string | undefined;
  /** Subject CN of the client certificate verified by a TLS or WSS listener (mutual TLS). */
  certificateCommonName: string | undefined;
  version: ProtocolVersion = 4;
  clientId = '';
  session: Session | null = null;
  /** The will of this connection, published if it ends without a normal DISCONNECT. */
  will: WillRecord | undefined;
  willDelay = 0;

  // Limits the client announced (MQTT 5), applied to what we send it.
  clientReceiveMaximum = 65535;
  clientMaxPacketSize = 0;
  clientTopicAliasMaximum = 0;
  requestProblemInformation = true;
  /** Topic aliases the client set (MQTT 5), created on first use. */
  inboundAliases: Map<number, string> | undefined;
  outboundAliases: Map<string, number> | undefined;
  /** v5 session expiry requested at CONNECT (a DISCONNECT may not raise it from 0). */
  connectSessionExpiry = 0;

  keepalive = 0;
  lastActivity = 0;
  /** When the connection was accepted (broker clock): the connect timeout counts from here. */
  readonly openedAt: number;
  private slowTimer: NodeJS.Timeout | undefined;
  private readonly outbox: Buffer[] = [];
  private outboxBytes = 0;
  /** Packets that arrived while an asynchronous authentication was running. */
  backlog: Packet[] | undefined;
  /** The subscriber sessions whose long queues keep this publisher paused (flow control). */
  blockedBy: Set<Session> | undefined;
  /** Set when the client sent DISCONNECT with reason 0x00: the will is discarded [MQTT-3.1.2-10]. */
  normalDisconnect = false;
  /** When CONNECT was accepted (the broker clock); undefined for a connection that never became a client. */
  connectedAt: number | undefined;
  /** Why the connection ended, for the log; set by whoever ends it first. */
  closeReason: CloseReason | undefined;
  /** The publishRateLimit token bucket, created at the first PUBLISH when the limit is set. */
  publishBucket: TokenBucket | undefined;

  constructor(core: BrokerCore, stream: Duplex, remoteAddress: string | undefined) {
    this.core = core;
    this.stream = stream;
    this.remoteAddress = remoteAddress;
    this.parser = new PacketParser({ maxPacketSize: core.options.maxPacketSize });
    this.lastActivity = core.now();
    this.openedAt = this.lastActivity;
    // Module-level listeners that find the connection on the stream: no closures per connection.
    (stream as ConnectionStream)[kConnection] = this;
    stream.on('data', onStreamData);
    stream.on('error', onStreamError);
    stream.on('close', onStreamClosed);
    // The client half-closed: flush what is queued for it, then close our side.
    stream.on('end', onStreamEnd);
    stream.on('drain', onStreamDrain);
  }

  /** True once the connection is closing or closed (a method, so type narrowing does not stale it). */
  isEnding(): boolean {
    return this.state === 'closing' || this.state === 'closed';
  }

  transition(next: ConnectionState): void {
    if (!transitions[this.state].includes(next)) {
      throw new Error(`connection ${this.clientId || '(no id)'}: illegal transition ${this.state} → ${next}`);
    }
    this.state = next;
  }

  /** @internal */
  onData(chunk: Buffer): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.core.metrics.bytesReceived += chunk.length;
    this.lastActivity = this.core.now();
    let packets: Packet[];
    let parseError: ProtocolError | undefined;
    try {
      packets = this.parser.push(chunk);
    } catch (err) {
      // Whole packets before the bad bytes in this chunk were sent first: handle them, then the error.
      parseError = err as ProtocolError;
      packets = this.parser.completedBeforeFailure;
    }
    for (let i = 0; i < packets.length; i++) {
      if (this.isEnding()) return;
      if (this.backlog !== undefined) {
        this.backlog.push(packets[i]!);
        continue;
      }
      try {
        this.core.dispatch(this, packets[i]!);
      } catch (err) {
        if (err instanceof ProtocolError) this.core.onProtocolError(this, err);
        else this.core.onInternalError(this, err);
        return;
      }
    }
    if (parseError !== undefined && !this.isEnding()) this.core.onProtocolError(this, parseError);
  }

  /**
   * Queues bytes for the client. Everything queued in one tick leaves as one write: small batches
   * are joined into a single buffer, larger ones go out as one corked writev.
   */
  write(buf: Buffer): void {
    if (this.state === 'closed') return;
    if (this.outbox.length === 0) {
      // Durability rule: with a durable store nothing leaves before the writes of this turn are
      // committed, so the batch is flushed by the store's commit instead of the next tick.
      if (this.core.store.durable) this.core.store.afterCommit(() => this.flush());
      else process.nextTick(flushOutbox, this);
    }
    this.outbox.push(buf);
    this.outboxBytes += buf.length;
    this.core.metrics.bytesSent += buf.length;
  }

  /** @internal */
  flush(): void {
    const outbox = this.outbox;
    const n = outbox.length;
    if (n === 0 || this.stream.destroyed) {
      outbox.length = 0;
      this.outboxBytes = 0;
      return;
    }
    if (n === 1) this.stream.write(outbox[0]!);
    else if (this.outboxBytes <= 65536) this.stream.write(Buffer.concat(outbox, this.outboxBytes));
    else {
      this.stream.cork();
      for (let i = 0; i < n; i++) this.stream.write(outbox[i]!);
      this.stream.uncork();
    }
    outbox.length = 0;
    this.outboxBytes = 0;
  }

  send(packet: Packet): void {
    this.write(encodePacket(packet, this.version));
  }

  /** True while the socket buffer is under the limit; QoS 0 is dropped and QoS 1/2 waits otherwise. */
  canWrite(): boolean {
    const buffered = this.stream.writableLength + this.outboxBytes;
    if (buffered < this.core.options.writeBufferLimit) return true;
    this.startSlowConsumerTimer();
    return false;
  }

  private startSlowConsumerTimer(): void {
    if (this.slowTimer !== undefined || this.core.options.slowConsumerTimeout <= 0) return;
    this.slowTimer = setTimeout(() => {
      this.slowTimer = undefined;
      if (this.stream.writableLength >= this.core.options.writeBufferLimit && this.state === 'connected') {
        this.core.metrics.slowConsumerDisconnects++;
        this.core.disconnect(this, 0x97, 'slow consumer: the client did not read its messages in time');
      }
    }, this.core.options.slowConsumerTimeout * 1000);
    this.slowTimer.unref?.();
  }

  /** @internal */
  onDrain(): void {
    if (this.slowTimer !== undefined) {
      clearTimeout(this.slowTimer);
      this.slowTimer = undefined;
    }
    if (this.state === 'connected' && this.session !== null) this.core.pump(this.session);
  }

  /** Keepalive: the server closes a connection silent for 1.5 × keepalive [MQTT-3.1.2-24]. */
  startKeepalive(seconds: number): void {
    // Checked by the broker's connection sweep (BrokerCore.sweepConnections): no timer per connection.
    this.keepalive = seconds;
  }

  /** @internal Called by the connection sweep for connected clients with a keepalive. */
  checkKeepalive(now: number): void {
    const limit = this.keepalive * 1500;
    // A publisher paused by flow control is not read, so its silence is ours, not its own.
    if (this.blockedBy !== undefined) this.lastActivity = now;
    if (now - this.lastActivity >= limit) {
      this.core.metrics.keepaliveTimeouts++;
      this.core.disconnect(this, 0x8d, 'keep alive timeout');
    }
  }

  /** Flushes what is buffered and closes the socket. */
  end(): void {
    if (this.state === 'closed') return;
    if (this.state !== 'closing') this.transition('closing');
    if (this.core.store.durable) this.core.store.afterCommit(() => this.finishEnd());
    else this.finishEnd();
  }

  private finishEnd(): void {
    this.flush();
    if (this.stream.destroyed) return;
    this.stream.end();
    // A peer that never reads would keep the socket half-open: force it after a short grace.
    const t = setTimeout(() => this.stream.destroy(), 1000);
    t.unref?.();
  }

  destroy(): void {
    this.stream.destroy();
    this.onClosed();
  }

  /** @internal */
  onClosed(): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected' || this.state === 'closing';
    this.state = 'closed';
    clearTimeout(this.slowTimer);
    if (!this.stream.destroyed) this.stream.destroy();
    this.core.onConnectionClosed(this, wasConnected);
  }
}

const kConnection = Symbol('mqtt-sim connection');
type ConnectionStream = Duplex & { [kConnection]: Connection };

function onStreamData(this: Duplex, chunk: Buffer): void {
  (this as ConnectionStream)[kConnection].onData(chunk);
}
function onStreamClosed(this: Duplex): void {
  (this as ConnectionStream)[kConnection].onClosed();
}
function onStreamError(this: Duplex, err: Error): void {
  const conn = (this as ConnectionStream)[kConnection];
  conn.closeReason ??= { reason: `socket error: ${err.message}` };
  conn.onClosed();
}
function onStreamEnd(this: Duplex): void {
  const conn = (this as ConnectionStream)[kConnection];
  conn.closeReason ??= { reason: 'connection closed by the client' };
  conn.end();
}
function onStreamDrain(this: Duplex): void {
  (this as ConnectionStream)[kConnection].onDrain();
}

function flushOutbox(conn: Connection): void {
  conn.flush();
}
