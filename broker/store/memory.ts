/**
 * The in-memory Store: the reference backend for the Store contract, and the default when no
 * persistence is configured. Everything lives in Maps held by a MemoryStoreData object; a new
 * MemoryStore over the same data object sees everything an earlier one wrote, which is how tests
 * (and the broker's own restart simulation) model a restart without a disk.
 *
 * Records are copied on the way in and on the way out, so callers can never alias the stored state.
 * Messages are stored once and reference-counted by queue entries and the retained table; a message
 * whose last reference goes away is deleted.
 *
 * Hot path: putMessage, enqueue, updateQueueEntry and dequeue are O(1) (Map lookups only; no scans).
 */
import type { Properties } from '../../protocol/packets.js';
import type {
  DeliveryState,
  LoadedQueueEntry,
  QueueEntry,
  SessionRecord,
  Store,
  StoredMessage,
  SubscriptionRecord,
  WillRecord,
} from './types.js';

/** A stored message and the number of queue entries and retained slots that reference it. */
export interface MessageSlot {
  message: StoredMessage;
  refs: number;
}

/** The state behind a MemoryStore. Share one between stores to simulate a restart. */
export class MemoryStoreData {
  /** Session records by client id. */
  readonly sessions = new Map<string, SessionRecord>();
  /** Subscriptions by client id, then by filter (including any `$share/{group}/` prefix). */
  readonly subscriptions = new Map<string, Map<string, SubscriptionRecord>>();
  /** Messages by id with their reference counts. */
  readonly messages = new Map<number, MessageSlot>();
  /** Retained message id by topic. */
  readonly retained = new Map<string, number>();
  /** Queue entries by client id, then by seq. Maps keep insertion order, which is seq order in practice. */
  readonly queues = new Map<string, Map<number, QueueEntry>>();
  /** Packet ids of inbound QoS 2 messages awaiting PUBREL, by client id. */
  readonly inboundQos2 = new Map<string, Set<number>>();
  /** The next message id to hand out; never reused. */
  nextMessageId = 1;
}

export class MemoryStore implements Store {
  readonly kind = 'memory';
  readonly durable = false;
  readonly data: MemoryStoreData;
  private closed = false;

  /**
   * Opens a store over `data` (fresh data when omitted). Reopening existing data models a restart:
   * messages that were stored but never referenced by a queue entry or the retained table are dropped.
   */
  constructor(data?: MemoryStoreData) {
    this.data = data ?? new MemoryStoreData();
    if (data) {
      for (const [id, slot] of this.data.messages) {
        if (slot.refs <= 0) this.data.messages.delete(id);
      }
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Recovery

  loadSessions(): SessionRecord[] {
    this.check();
    return Array.from(this.data.sessions.values(), cloneSession);
  }

  loadSubscriptions(): SubscriptionRecord[] {
    this.check();
    const out: SubscriptionRecord[] = [];
    for (const byFilter of this.data.subscriptions.values()) {
      for (const sub of byFilter.values()) out.push(cloneSubscription(sub));
    }
    return out;
  }

  loadRetained(): Array<{ messageId: number; message: StoredMessage }> {
    this.check();
    const out: Array<{ messageId: number; message: StoredMessage }> = [];
    for (const messageId of this.data.retained.values()) {
      out.push({ messageId, message: cloneMessage(this.slot(messageId).message) });
    }
    return out;
  }

  loadQueue(clientId: string): LoadedQueueEntry[] {
    this.check();
    const queue = this.data.queues.get(clientId);
    if (!queue) return [];
    const out: LoadedQueueEntry[] = [];
    for (const entry of queue.values()) {
      out.push({ ...cloneEntry(entry), message: cloneMessage(this.slot(entry.messageId).message) });
    }
    // Insertion order is seq order unless the broker enqueued out of order; recovery is not hot.
    return out.sort((a, b) => a.seq - b.seq);
  }

  loadInboundQos2(clientId: string): number[] {
    this.check();
    const ids = this.data.inboundQos2.get(clientId);
    return ids ? [...ids] : [];
  }

  // ----------------------------------------------------------------------------------------------
  // Sessions

  saveSession(session: SessionRecord): void {
    this.check();
    this.data.sessions.set(session.clientId, cloneSession(session));
  }

  deleteSession(clientId: string): void {
    this.check();
    this.data.sessions.delete(clientId);
    this.data.subscriptions.delete(clientId);
    this.data.inboundQos2.delete(clientId);
    const queue = this.data.queues.get(clientId);
    if (queue) {
      this.data.queues.delete(clientId);
      for (const entry of queue.values()) this.release(entry.messageId);
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Subscriptions

  saveSubscription(sub: SubscriptionRecord): void {
    this.check();
    let byFilter = this.data.subscriptions.get(sub.clientId);
    if (!byFilter) {
      byFilter = new Map();
      this.data.subscriptions.set(sub.clientId, byFilter);
    }
    byFilter.set(sub.filter, cloneSubscription(sub));
  }

  deleteSubscription(clientId: string, filter: string): void {
    this.check();
    const byFilter = this.data.subscriptions.get(clientId);
    if (!byFilter) return;
    byFilter.delete(filter);
    if (byFilter.size === 0) this.data.subscriptions.delete(clientId);
  }

  // ----------------------------------------------------------------------------------------------
  // Messages and the retained table

  putMessage(message: StoredMessage): number {
    this.check();
    const id = this.data.nextMessageId++;
    this.data.messages.set(id, { message: cloneMessage(message), refs: 0 });
    return id;
  }

  setRetained(topic: string, messageId: number | null): void {
    this.check();
    // Take the new reference before dropping the old one so re-setting the same id is safe.
    if (messageId !== null) this.slot(messageId).refs++;
    const previous = this.data.retained.get(topic);
    if (messageId === null) this.data.retained.delete(topic);
    else this.data.retained.set(topic, messageId);
    if (previous !== undefined) this.release(previous);
  }

  // ----------------------------------------------------------------------------------------------
  // Queues

  enqueue(clientId: string, entry: QueueEntry): void {
    this.check();
    let queue = this.data.queues.get(clientId);
    if (!queue) {
      queue = new Map();
      this.data.queues.set(clientId, queue);
    } else if (queue.has(entry.seq)) {
      throw new Error(`queue entry ${entry.seq} already exists for client ${JSON.stringify(clientId)}`);
    }
    this.slot(entry.messageId).refs++;
    queue.set(entry.seq, cloneEntry(entry));
  }

  /** Sets the entry's state, and its packet id when one is given (an omitted packet id is kept). */
  updateQueueEntry(clientId: string, seq: number, change: { state: DeliveryState; packetId?: number }): void {
    this.check();
    const entry = this.data.queues.get(clientId)?.get(seq);
    if (!entry) return;
    entry.state = change.state;
    if (change.packetId !== undefined) entry.packetId = change.packetId;
  }

  dequeue(clientId: string, seq: number): void {
    this.check();
    const queue = this.data.queues.get(clientId);
    const entry = queue?.get(seq);
    if (!queue || !entry) return;
    queue.delete(seq);
    this.release(entry.messageId);
  }

  // ----------------------------------------------------------------------------------------------
  // Inbound QoS 2

  addInboundQos2(clientId: string, packetId: number): void {
    this.check();
    let ids = this.data.inboundQos2.get(clientId);
    if (!ids) {
      ids = new Set();
      this.data.inboundQos2.set(clientId, ids);
    }
    ids.add(packetId);
  }

  removeInboundQos2(clientId: string, packetId: number): void {
    this.check();
    const ids = this.data.inboundQos2.get(clientId);
    if (!ids) return;
    ids.delete(packetId);
    if (ids.size === 0) this.data.inboundQos2.delete(clientId);
  }

  // ----------------------------------------------------------------------------------------------
  // Metrics, commits, lifecycle

  messageCount(): number {
    this.check();
    return this.data.messages.size;
  }

  /** Memory commits instantly, so the effect runs now. */
  afterCommit(effect: () => void): void {
    this.check();
    effect();
  }

  flush(): void {
    this.check();
  }

  /** Marks this store closed; every later call (except close) throws. The data object is untouched. */
  close(): void {
    this.closed = true;
  }

  // ----------------------------------------------------------------------------------------------

  private check(): void {
    if (this.closed) throw new Error('store is closed');
  }

  private slot(messageId: number): MessageSlot {
    const slot = this.data.messages.get(messageId);
    if (!slot) throw new Error(`unknown message id ${messageId}`);
    return slot;
  }

  private release(messageId: number): void {
    const slot = this.data.messages.get(messageId);
    if (!slot) return;
    if (--slot.refs <= 0) this.data.messages.delete(messageId);
  }
}

// ------------------------------------------------------------------------------------------------
// Copies. Buffers are copied byte for byte; arrays and nested objects are copied; undefined fields
// are left out.

function cloneEntry(entry: QueueEntry): QueueEntry {
  const out: QueueEntry = {
    seq: entry.seq,
    messageId: entry.messageId,
    qos: entry.qos,
    state: entry.state,
    retain: entry.retain,
  };
  if (entry.packetId !== undefined) out.packetId = entry.packetId;
  if (entry.subscriptionIds !== undefined) out.subscriptionIds = [...entry.subscriptionIds];
  return out;
}

function cloneMessage(message: StoredMessage): StoredMessage {
  const out: StoredMessage = {
    topic: message.topic,
    payload: Buffer.from(message.payload),
    qos: message.qos,
    retain: message.retain,
  };
  if (message.properties !== undefined) out.properties = cloneProperties(message.properties);
  if (message.expiresAt !== undefined) out.expiresAt = message.expiresAt;
  if (message.publisherId !== undefined) out.publisherId = message.publisherId;
  return out;
}

function cloneWill(will: WillRecord): WillRecord {
  const out: WillRecord = {
    topic: will.topic,
    payload: Buffer.from(will.payload),
    qos: will.qos,
    retain: will.retain,
  };
  if (will.properties !== undefined) out.properties = cloneProperties(will.properties);
  if (will.dueAt !== undefined) out.dueAt = will.dueAt;
  return out;
}

function cloneSession(session: SessionRecord): SessionRecord {
  const out: SessionRecord = {
    clientId: session.clientId,
    protocolVersion: session.protocolVersion,
    expiryInterval: session.expiryInterval,
  };
  if (session.disconnectedAt !== undefined) out.disconnectedAt = session.disconnectedAt;
  if (session.will !== undefined) out.will = cloneWill(session.will);
  return out;
}

function cloneSubscription(sub: SubscriptionRecord): SubscriptionRecord {
  const out: SubscriptionRecord = {
    clientId: sub.clientId,
    filter: sub.filter,
    qos: sub.qos,
    noLocal: sub.noLocal,
    retainAsPublished: sub.retainAsPublished,
    retainHandling: sub.retainHandling,
  };
  if (sub.subscriptionId !== undefined) out.subscriptionId = sub.subscriptionId;
  return out;
}

/** Properties are copied generically so that fields added to the type later are copied too. */
function cloneProperties(properties: Properties): Properties {
  return deepCopy(properties);
}

function deepCopy<T>(value: T): T {
  if (value instanceof Uint8Array) return Buffer.from(value) as T;
  if (Array.isArray(value)) return value.map((item: unknown) => deepCopy(item)) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      if (item !== undefined) out[key] = deepCopy(item);
    }
    return out as T;
  }
  return value;
}
