/**
 * Everything the broker can be told, with the defaults it runs with. config.ts validates user input
 * (broker.yaml and flags) into this shape; tests and the simulator pass it to createBroker directly.
 */
import type { ProtocolVersion } from '../protocol/packets.js';
import type { Logger, LogLevel } from './log.js';
import type { Store } from './store/types.js';

export interface AuthRequest {
  clientId: string;
  username?: string;
  password?: Buffer;
  protocolVersion: ProtocolVersion;
  remoteAddress?: string;
  /** Subject CN of the client certificate a TLS or WSS listener verified (mutual TLS); absent without one. */
  certificateCommonName?: string;
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
  /**
   * Messages waiting in a connected subscriber's queue at which the publishers feeding it stop being
   * read (TCP backpressure) until it drains to half; 0 disables. A subscriber that stays blocked longer
   * than slowConsumerTimeout releases its publishers and the queue limits apply instead.
   */
  publisherBackpressure: number;
  /** Seconds between $SYS updates; 0 disables them. */
  sysInterval: number;
  /** Longest session expiry granted, in seconds (0xFFFFFFFF = no cap). */
  maxSessionExpiry: number;
  /**
   * A client with a verified certificate (mutual TLS) connects as the certificate's subject CN: it
   * replaces the user name from CONNECT for authentication, ACLs and everything after. Clients
   * without a certificate keep the user name they sent.
   */
  useCommonNameAsUsername: boolean;
  /**
   * Password file (`user:$scrypt$...` lines, docs/security.md), read by createBroker and again by
   * Broker.reloadAuth(). Unset: user names are not checked. With it, `authenticate` runs after it accepts.
   */
  passwordFile?: string | undefined;
  /** ACL file (docs/security.md), read by createBroker and again by Broker.reloadAuth(). Unset: no topic restrictions. */
  aclFile?: string | undefined;
  /** Clients without a user name may connect. Unset: true without a password file, false with one. */
  allowAnonymous?: boolean | undefined;
  /** Open connections (including those that have not sent CONNECT yet) beyond which new ones are closed on accept; 0 = no limit. */
  maxConnections: number;
  /** PUBLISH packets per second one connection may send (token bucket, burst of one second's worth); over it the client is disconnected (v5: 0x96). 0 = no limit. */
  publishRateLimit: number;
  /** TCP port of the Prometheus /metrics HTTP endpoint, started by listen() on the same host; 0 = off. */
  metricsPort: number;
  /** The least severe level the broker logs through `logger`. */
  logLevel: LogLevel;
  /** Where log records go (pino); without one the broker logs nothing. */
  logger?: Logger;
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
  publisherBackpressure: 1000,
  sysInterval: 5,
  maxSessionExpiry: 0xffffffff,
  useCommonNameAsUsername: false,
  passwordFile: undefined,
  aclFile: undefined,
  allowAnonymous: undefined,
  maxConnections: 0,
  publishRateLimit: 0,
  metricsPort: 0,
  logLevel: 'info',
  clock: { now: () => Date.now() },
};
