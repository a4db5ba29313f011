/**
 * Everything the broker can be told, with the defaults it runs with. config.ts validates user input
 * (broker.yaml and flags) into this shape; tests and the simulator pass it to createBroker directly.
 */
import type { ProtocolVersion } from '../protocol/packets.js';
import type { Store } from './store/types.js';

export interface AuthRequest {
  clientId: string;
  username?: string;
  password?: Buffer;
  protocolVersion: ProtocolVersion;
  remoteAddress?: string;
}

/** true accepts; false refuses as bad credentials; an object refuses with a specific MQTT 5 reason code. */
export type AuthResult = boolean | { reasonCode: number };
export type Authenticator = (request: AuthRequest) => AuthResult | Promise<AuthResult>;

export type QueueDropPolicy = 'drop-new' | 'drop-oldest';

export interface Clock {
  now(): number;
}

export interface BrokerOptions {
  /** Largest packet accepted from clients, in bytes (fixed header included). */
  maxPacketSize: number;
  /** MQTT 5 Receive Maximum announced to clients: QoS 1/2 publishes a client may have unacknowledged. */
  receiveMaximum: number;
  /** Upper bound on unacknowledged QoS 1/2 deliveries to any one client (also bounded by its Receive Maximum). */
  maxInflight: number;
  /** MQTT 5 Topic Alias Maximum announced to clients; 0 disables inbound aliases. */
  topicAliasMaximum: number;
  /** Keepalive ceiling in seconds for MQTT 5 clients: one asking for more (or for 0) is told Server Keep Alive. 0 = no ceiling. 3.x clients cannot be told and keep their own. */
  maxKeepalive: number;
  /** Seconds a new connection may take to send CONNECT. */
  connectTimeout: number;
  /** Messages queued per session (offline or over its inflight window) before the drop policy applies. */
  maxQueuedMessages: number;
  /** Payload bytes queued per session before the drop policy applies. */
  maxQueuedBytes: number;
  queueDropPolicy: QueueDropPolicy;
  /** Queue QoS 0 messages for offline persistent sessions (MQTT allows either). */
  queueQos0: boolean;
  /** Bytes buffered for one client's socket before it counts as a slow consumer. */
  writeBufferLimit: number;
  /** Seconds a slow consumer may stay over writeBufferLimit before it is disconnected. */
  slowConsumerTimeout: number;
  /** Seconds between $SYS updates; 0 disables them. */
  sysInterval: number;
  /** Longest session expiry granted, in seconds (0xFFFFFFFF = no cap). */
  maxSessionExpiry: number;
  authenticate?: Authenticator;
  store?: Store;
  clock: Clock;
}

export const defaultBrokerOptions: BrokerOptions = {
  maxPacketSize: 1024 * 1024,
  receiveMaximum: 1024,
  maxInflight: 1024,
  topicAliasMaximum: 64,
  maxKeepalive: 0,
  connectTimeout: 10,
  maxQueuedMessages: 10_000,
  maxQueuedBytes: 64 * 1024 * 1024,
  queueDropPolicy: 'drop-new',
  queueQos0: false,
  writeBufferLimit: 4 * 1024 * 1024,
  slowConsumerTimeout: 30,
  sysInterval: 5,
  maxSessionExpiry: 0xffffffff,
  clock: { now: () => Date.now() },
};
