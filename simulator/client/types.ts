/**
 * The lean MQTT client's public surface. One instance per simulated device; built for memory
 * (no EventEmitter, callbacks in one handler object shared by all devices of a model) and for
 * measuring (every callback carries what a metric needs).
 */
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import type { QoS } from '../../protocol/packets.js';
import type { BrokerViolationKind, DisconnectCause } from '../metrics/types.js';

export interface ClientTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface LeanClientOptions {
  /** mqtt://host:port, mqtts://, ws://host:port/path, wss:// */
  url: string;
  protocolVersion: 4 | 5;
  clientId: string;
  username?: string;
  password?: string;
  clean: boolean;
  /** v5 Session Expiry Interval; ignored at 3.1.1 (a persistent session there is clean=false). */
  sessionExpirySec: number;
  keepaliveSec: number;
  will?: { topic: string; payload: Buffer; qos: QoS; retain: boolean; delaySec: number };
  /** Outbound in-flight window (QoS 1/2 sent, not yet completed); min'd with the server's Receive Maximum. */
  inflightWindow: number;
  /** v5 Receive Maximum we advertise. */
  receiveMaximum: number;
  /** v5 Topic Alias Maximum we advertise (inbound aliases the broker may use). Optional; default 0: none. */
  topicAliasMaximum?: number;
  /**
   * v5 Maximum Packet Size we advertise (bytes, the whole packet). Optional; default: not advertised
   * (the protocol's limit). A larger packet from the broker is a `packet-too-large` violation, and the
   * client disconnects with 0x95 Packet too large.
   */
  maximumPacketSize?: number;
  /** QoS 1/2 messages waiting for window space or a connection; beyond this publish() refuses. */
  maxQueued: number;
  tls?: ConnectionOptions;
  localAddress?: string;
  connectTimeoutMs: number;
  reconnect: { enabled: boolean; initialDelayMs: number; maxDelayMs: number; multiplier: number };
  /** Seeded PRNG in [0, 1). */
  random: () => number;
  timers?: ClientTimers;
  /**
   * Opens the byte stream to the broker instead of the default for the URL scheme — the hook where
   * network faults (a per-device link) plug in. Must emit 'connect' (or 'secureConnect'/'open' mapped to
   * 'connect') once bytes can flow.
   */
  createStream?: (url: URL, options: LeanClientOptions) => Duplex;
}

export interface LeanClientHandler<Ctx> {
  /** CONNACK success. connectMs: start of the attempt (before the TCP/TLS/WebSocket handshake) → CONNACK. reconnect: not the first successful connect. */
  onConnect(ctx: Ctx, sessionPresent: boolean, connectMs: number, reconnect: boolean): void;
  /** A connection attempt or an established connection ended. willRetry: a reconnect is scheduled. */
  onDisconnect(ctx: Ctx, cause: DisconnectCause, detail: string, wasConnected: boolean, willRetry: boolean): void;
  /**
   * An application message arrived, at PUBLISH time for every QoS; a QoS 2 packet id is delivered once
   * until its PUBREL. `payload` may be a view of the socket chunk: copy it to keep it past the callback.
   */
  onMessage(ctx: Ctx, topic: string, payload: Buffer, qos: QoS, retain: boolean, dup: boolean): void;
  /** A QoS 1/2 publish completed (PUBACK / PUBCOMP); reasonCode < 0x80 is success. token: as given to publish(). */
  onAck(ctx: Ctx, token: number, qos: 1 | 2, reasonCode: number): void;
  /** SUBACK: granted QoS or failure codes (>= 0x80) in request order. */
  onSubscribed?(ctx: Ctx, granted: number[]): void;
  /** Bytes written / read on the wire, for counters. */
  onBytes?(ctx: Ctx, out: number, inb: number): void;
  /**
   * The broker broke the protocol on this connection (see BrokerViolationKind for what each kind
   * means and lean-client.ts for exactly what is checked). The client carries on unless the spec
   * makes it disconnect (packet-too-large, topic-alias-misuse); then onDisconnect follows with 'protocol'.
   */
  onViolation?(ctx: Ctx, kind: BrokerViolationKind, detail: string): void;
}

export type ClientState = 'idle' | 'connecting' | 'connected' | 'waiting' | 'closed';
