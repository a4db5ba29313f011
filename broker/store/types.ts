/**
 * The broker's persistence interface. The broker keeps its working state in memory and writes
 * through to a Store so that sessions, subscriptions, retained messages and queues survive a restart.
 *
 * Writes are synchronous calls grouped into one commit per event-loop turn by durable backends.
 * Anything externally visible that depends on a write (PUBACK, PUBREC, delivery, SUBACK) is passed to
 * `afterCommit`, which runs it once the writes made before it are committed (the durability rule in
 * ../shared/DESIGN.md). The memory backend commits instantly and runs effects synchronously.
 */
import type { Properties, ProtocolVersion, QoS } from '../../protocol/packets.js';

/** A message as stored once and referenced by every queue that holds it. */
export interface StoredMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: Properties;
  /** Epoch ms after which the message must not be delivered (v5 message expiry), if any. */
  expiresAt?: number;
  /** Client id of the publisher (for no-local), if known. */
  publisherId?: string;
}

export interface WillRecord {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: Properties;
  /** Epoch ms when a delayed will is due (v5 will delay interval). */
  dueAt?: number;
}

export interface SessionRecord {
  clientId: string;
  protocolVersion: ProtocolVersion;
  /** Seconds; 0xFFFFFFFF never expires. 3.1.1 persistent sessions use 0xFFFFFFFF. */
  expiryInterval: number;
  /** Epoch ms of the last disconnect; undefined while connected. */
  disconnectedAt?: number;
  /** A will waiting for its delay (or for the session to end) while the client is away. */
  will?: WillRecord;
}

export interface SubscriptionRecord {
  clientId: string;
  /** The filter as subscribed, including any `$share/{group}/` prefix. */
  filter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  subscriptionId?: number;
}

/** Where an outgoing QoS 1/2 message is in its flow to one subscriber. */
export type DeliveryState = 'queued' | 'sent' | 'pubrec-received';

export interface QueueEntry {
  /** Order of the entry within the session's queue; assigned by the broker, increasing. */
  seq: number;
  messageId: number;
  /** QoS of this delivery (the message's QoS capped by the subscription's). */
  qos: QoS;
  state: DeliveryState;
  packetId?: number;
  /** The RETAIN flag as it must be delivered (retain-as-published). */
  retain: boolean;
  subscriptionIds?: number[];
}

export interface LoadedQueueEntry extends QueueEntry {
  message: StoredMessage;
}

export interface Store {
  readonly kind: string;
  /** True when writes survive a process kill; such stores group commits and defer effects. */
  readonly durable: boolean;

  // Recovery
  loadSessions(): SessionRecord[];
  loadSubscriptions(): SubscriptionRecord[];
  loadRetained(): Array<{ messageId: number; message: StoredMessage }>;
  loadQueue(clientId: string): LoadedQueueEntry[];
  loadInboundQos2(clientId: string): number[];

  // Sessions: deleting a session deletes its subscriptions, queue and inbound QoS 2 ids too.
  saveSession(session: SessionRecord): void;
  deleteSession(clientId: string): void;

  saveSubscription(sub: SubscriptionRecord): void;
  deleteSubscription(clientId: string, filter: string): void;

  /** Stores a message once; returns its id. It lives while a queue entry or the retained table references it. */
  putMessage(message: StoredMessage): number;
  /** Sets (or, with null, clears) the retained message of a topic. */
  setRetained(topic: string, messageId: number | null): void;

  enqueue(clientId: string, entry: QueueEntry): void;
  updateQueueEntry(clientId: string, seq: number, change: { state: DeliveryState; packetId?: number }): void;
  /** Removes one entry; the message is deleted once nothing references it. */
  dequeue(clientId: string, seq: number): void;

  addInboundQos2(clientId: string, packetId: number): void;
  removeInboundQos2(clientId: string, packetId: number): void;

  /** Number of stored messages (for metrics and the "stored once" and no-leak checks). */
  messageCount(): number;

  /** Runs `effect` after every write made so far is committed. */
  afterCommit(effect: () => void): void;
  /** Commits pending writes now. */
  flush(): void;
  close(): void;
}
