/**
 * A simulated device: one lean client, the streams it publishes, and what it does with what it
 * receives. The behaviour of each model (sensor, plc, gateway, consumer) is only which publications it
 * owns (models.ts) and whether it answers commands; everything else is shared.
 */
import type { QoS } from '../../protocol/packets.js';
import type { LeanClient } from '../client/lean-client.js';
import type { FleetCounters } from '../metrics/types.js';
import type { FleetSpec } from '../scenario/types.js';
import type { DeviceAssignment } from '../shard/messages.js';
import type { ShardRuntime } from '../shard/runtime.js';
import type { Timed } from '../shard/scheduler.js';

/** Everything a publication needs from its shard: when it fires it calls back into the runtime. */
export interface PublicationHost {
  firePublication(pub: Publication, nowMs: number): void;
}

/** One stream: a periodic telemetry series, a PLC's replies, or a consumer's commands. */
export class Publication implements Timed {
  atMs = 0;
  heapIndex = -1;
  /** Next sequence number of the stream (the first message is 0). */
  seq = 0;
  active = false;

  constructor(
    readonly host: PublicationHost,
    readonly device: Device,
    /** Global stream id. */
    readonly stream: number,
    /** Index among the device's streams (part of the ack token). */
    readonly local: number,
    /** Fixed topic, or a function for commands whose topic names the next target. */
    readonly topic: string | (() => string),
    readonly qos: QoS,
    readonly retain: boolean,
    /** 0 for event-driven streams (PLC replies). */
    readonly intervalMs: number,
    readonly jitter: number,
    /** The body of every message: a fixed Buffer (never modified), or built per message at its scheduled time. */
    readonly body: Buffer | ((nowMs: number) => Buffer),
  ) {}

  fire(nowMs: number): void {
    this.host.firePublication(this, nowMs);
  }

  /** The next scheduled time: one interval later, drawn in interval × [1 - jitter, 1 + jitter]. Fixed cadence, independent of when the last one actually went out. */
  advance(random: () => number): void {
    const j = this.jitter > 0 ? 1 + this.jitter * (2 * random() - 1) : 1;
    this.atMs += this.intervalMs * j;
  }
}

/** What a device publishes before it is set up (one array for all). */
const NO_PUBLICATIONS: readonly Publication[] = [];

/** Device lifecycle, one field instead of flags. */
export type DeviceState = 'planned' | 'connecting' | 'running' | 'stopping' | 'stopped';

export class Device {
  state: DeviceState = 'planned';
  client!: LeanClient<Device>;
  publications: readonly Publication[] = NO_PUBLICATIONS;
  /** PLC: the stream its replies go to. */
  reply: Publication | null = null;
  /** Ack token → time the publish was handed to the client (for publish→ack latency); created on first use. */
  pending: Map<number, number> | null = null;
  /** When the last established connection dropped (for reconnect time); 0 when connected. */
  lostAtMs = 0;
  /** Last time bytes arrived from the broker: a lost subscription may have ended at the broker any time after it. */
  lastInboundMs = 0;
  everConnected = false;
  /** SUBACK seen since start (consumers report readiness on it). */
  subscribed = false;
  random: () => number;
  /** The shard running the device (set when it connects). */
  runtime: ShardRuntime | null = null;
  /** Consumers during prepare: called once when connected and subscribed, or with the reason it failed. */
  onReady: ((error?: string) => void) | null = null;
  hasSubscriptions = false;
  /**
   * Until this time (preciseNowMs) a disconnect or failed connect is one the device's network profile
   * injected: counted like any other, but not reported as an error.
   */
  faultUntilMs = 0;

  constructor(
    readonly assignment: DeviceAssignment,
    readonly fleet: FleetSpec,
    readonly counters: FleetCounters,
    random: () => number,
  ) {
    this.random = random;
  }

  get outstanding(): number {
    return this.pending === null ? 0 : this.pending.size;
  }
}

/** Ack tokens pack the device-local stream index and the sequence into one number (both < 2^32, product < 2^53). */
export const TOKEN_STRIDE = 0x1_0000_0000;

export function ackToken(pub: Publication, seq: number): number {
  return pub.local * TOKEN_STRIDE + seq;
}

export function tokenLocal(token: number): number {
  return Math.floor(token / TOKEN_STRIDE);
}

export function tokenSeq(token: number): number {
  return token % TOKEN_STRIDE;
}
