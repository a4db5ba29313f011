/**
 * Everything that crosses between the orchestrator (main thread) and a shard (piscina worker, or a
 * separate process later) — one discriminated union per direction, declared here and nowhere else.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Scenario } from '../scenario/types.js';
import type { BrokerViolationExample, EncodedHistograms, FleetCounters, GeneratorHealth } from '../metrics/types.js';
import type { SerializedLedgers } from '../verify/ledger.js';
import type { RunSlice } from '../orchestrator/plan.js';
import type { SliceClockRecord } from '../report/run-result.js';

/** One device as the orchestrator assigns it to a shard. */
export interface DeviceAssignment {
  fleet: number;          // index into scenario.fleets
  index: number;          // index within the fleet
  /** Global device number (fleet offset + index): the subscriber id in ledgers. */
  device: number;
  clientId: string;
  url: string;            // broker URL this device connects to
  localAddress?: string;
  /** First stream id of this device; it owns streamCount consecutive ids. */
  streamBase: number;
  streamCount: number;
  /** Offset from the start of ramp-up at which the device connects, ms. */
  connectAtMs: number;
  /** Offset from the start of the timeline at which the device stops publishing and disconnects, ms (ramp-down). */
  stopAtMs: number;
}

/** The task piscina runs: one long-lived shard. The port is transferred with it. */
export interface ShardTask {
  shard: number;
  shardCount: number;
  scenario: Scenario;
  devices: DeviceAssignment[];
  /** Interval of snapshot messages, ms. */
  snapshotIntervalMs: number;
  port: MessagePort;
  /** The slice of a distributed run this shard belongs to (`--shard index/count`); absent for a whole run. */
  slice?: RunSlice;
  /** Added to every clock reading of the shard (stamps, receive times, checker times): a test aid that stands for a machine whose clock is off (`--clock-skew-ms`). */
  clockSkewMs?: number;
}

/** Orchestrator → shard. */
export type ToShard =
  /** Connect consumers first: every device of a consumer fleet connects and subscribes, then the shard answers `ready`. */
  | { type: 'prepare' }
  /** Start the timeline; `epochMs` is the wall-clock (Date.now()) of t=0 shared by all shards. */
  | { type: 'start'; epochMs: number }
  /** The timeline is over: stop publishing and wait (up to drainMs) until this shard's own publishes are acknowledged; then answer `drained`. */
  | { type: 'stop' }
  /** Everyone drained and deliveries went quiet: disconnect every device and resolve the task with the result. */
  | { type: 'finish' }
  /** Abort at once (Ctrl-C, fatal error elsewhere): disconnect and return what was recorded. */
  | { type: 'abort' }
  /** A chaos action on this shard's devices of one fleet (see ShardChaos). */
  | { type: 'chaos'; action: ShardChaos };

/**
 * What a shard does for a chaos entry. Both cut every connection of the fleet's devices in the shard at
 * once, without DISCONNECT (the broker fires their wills). `partition`: no device of the fleet connects
 * before `untilMs` (timeline time, ms from t=0), then they reconnect with their backoff. `storm`: they
 * reconnect at once, with their backoff jitter.
 */
export type ShardChaos =
  | { kind: 'partition'; fleet: string; untilMs: number }
  | { kind: 'storm'; fleet: string };

/** Shard → orchestrator. */
export type FromShard =
  | { type: 'ready'; shard: number; connected: number; failed: number; firstError?: string }
  | { type: 'snapshot'; shard: number; snapshot: ShardSnapshot }
  /** After `stop`: outstanding = QoS 1/2 publishes still unacknowledged when the shard gave up waiting (0 = fully drained). */
  | { type: 'drained'; shard: number; outstanding: number }
  /** Something the user should know (a connect failure reason, a refused subscription), rate-limited by the shard. */
  | { type: 'event'; shard: number; atMs: number; level: 'info' | 'warn' | 'error'; message: string };

export interface ShardSnapshot {
  /** Ms since t=0 (or since prepare, negative, before the start). */
  atMs: number;
  /** Cumulative counters per fleet name. */
  fleets: Record<string, FleetCounters>;
  /** Histograms of the interval since the previous snapshot only. */
  interval: EncodedHistograms;
  health: GeneratorHealth;
}

/** What the shard task resolves to. */
export interface ShardResult {
  shard: number;
  fleets: Record<string, FleetCounters>;
  /** Cumulative histograms over the whole run. */
  histograms: EncodedHistograms;
  ledgers: SerializedLedgers;
  /** First errors worth showing (bounded). */
  errors: string[];
  /** The first protocol violations by the broker its clients saw (bounded; the counts are in `fleets`). */
  brokerViolations?: BrokerViolationExample[];
  /** A slice of 2 to 64: its deliveries per publishing slice, for the clock offsets of `mqtt-sim merge`. */
  clock?: SliceClockRecord;
}
