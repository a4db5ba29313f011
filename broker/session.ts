/**
 * A session: what the broker remembers about a client id across connections — subscriptions,
 * the outbound queue (inflight QoS 1/2 deliveries and messages waiting for a window), QoS 2 packet ids
 * received but not yet released, expiry and a delayed will.
 */
import type { ProtocolVersion, QoS } from '../protocol/packets.js';
import type { Connection } from './connection.js';
import type { Message } from './message.js';
import type { DeliveryState, SubscriptionRecord, WillRecord } from './store/types.js';

export interface OutEntry {
  seq: number;
  message: Message;
  qos: QoS;
  retain: boolean;
  subscriptionIds?: number[];
  packetId: number;
  state: DeliveryState;
  /** Set when the message reached this session through a shared subscription. */
  share?: { group: string; filter: string };
  /** Whether the entry is written to the store (persistent sessions only). */
  persisted: boolean;
}

/** An empty map shared by many sessions: reading is fine, adding to it is a bug and throws. */
class SharedEmptyMap<K, V> extends Map<K, V> {
  override set(): this {
    throw new Error('internal: write to a shared empty session map (use inflightMap()/subscriptionMap())');
  }
}
const NO_INFLIGHT: Map<number, OutEntry> = new SharedEmptyMap();
const NO_SUBSCRIPTIONS: Map<string, SubscriptionRecord> = new SharedEmptyMap();

export class Session {
  readonly clientId: string;
  protocolVersion: ProtocolVersion;
  /** Seconds; 0 ends the session with the connection; 0xFFFFFFFF never expires. */
  expiryInterval = 0;
  connection: Connection | null = null;
  disconnectedAt: number | undefined;
  /** A will waiting for its delay (or for the session to end) after the connection is gone. */
  pendingWill: WillRecord | undefined;
  willTimer: NodeJS.Timeout | undefined;

  /** Shared empty map until the first subscription (most idle sessions of a large fleet have few). */
  subscriptions: Map<string, SubscriptionRecord> = NO_SUBSCRIPTIONS;
  /** QoS 1/2 deliveries sent and not yet completed, by packet id, in send order. */
  /** Shared empty map until the first QoS 1/2 delivery; write through inflightMap(). */
  inflight: Map<number, OutEntry> = NO_INFLIGHT;
  /** Deliveries waiting for a window or for the client to come back, in order. */
  pending: OutEntry[] = [];
  pendingHead = 0;
  queuedBytes = 0;
  /** QoS 2 packet ids received (PUBREC sent) and not yet released by PUBREL. */
  private inboundQos2Ids: Set<number> | undefined;
  /** Created on first use: most sessions never receive QoS 2. */
  get inboundQos2(): Set<number> {
    return (this.inboundQos2Ids ??= new Set<number>());
  }
  nextSeq = 1;
  private nextPacketId = 1;
  /** Publisher connections paused because this session's queue is too long (flow control). */
  blockedPublishers: Set<Connection> | undefined;
  blockedSince = 0;
  /** Scratch for the router: the publish generation that last matched this session, and its slot. */
  routeGen = 0;
  routeIndex = 0;
  /** Messages dropped from this session's queue (limits and expiry), for operators. */
  dropped = 0;

  constructor(clientId: string, protocolVersion: ProtocolVersion) {
    this.clientId = clientId;
    this.protocolVersion = protocolVersion;
  }

  /** The session's own inflight map, created on first use. */
  inflightMap(): Map<number, OutEntry> {
    if (this.inflight === NO_INFLIGHT) this.inflight = new Map();
    return this.inflight;
  }

  /** The session's own subscription map, created on first use. */
  subscriptionMap(): Map<string, SubscriptionRecord> {
    if (this.subscriptions === NO_SUBSCRIPTIONS) this.subscriptions = new Map();
    return this.subscriptions;
  }

  get persistent(): boolean {
    return this.expiryInterval > 0;
  }

  get pendingCount(): number {
    return this.pending.length - this.pendingHead;
  }

  pushPending(entry: OutEntry): void {
    this.pending.push(entry);
    this.queuedBytes += entry.message.payload.length;
  }

  shiftPending(): OutEntry | undefined {
    if (this.pendingHead >= this.pending.length) return undefined;
    const entry = this.pending[this.pendingHead]!;
    this.pending[this.pendingHead] = undefined as unknown as OutEntry;
    this.pendingHead++;
    // Compact once the consumed prefix dominates, so the array does not grow without bound.
    if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.pendingHead);
      this.pendingHead = 0;
    }
    this.queuedBytes -= entry.message.payload.length;
    return entry;
  }

  peekPending(): OutEntry | undefined {
    return this.pendingHead < this.pending.length ? this.pending[this.pendingHead] : undefined;
  }

  /** Removes and returns every pending entry (for re-routing or clearing). */
  drainPending(): OutEntry[] {
    const rest = this.pending.slice(this.pendingHead);
    this.pending = [];
    this.pendingHead = 0;
    this.queuedBytes = 0;
    return rest;
  }

  /** The next free packet identifier (1..65535, never one still inflight). */
  allocatePacketId(): number {
    for (let i = 0; i < 65535; i++) {
      const id = this.nextPacketId;
      this.nextPacketId = id === 65535 ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
    throw new Error('no free packet identifier: 65535 messages inflight');
  }
}
