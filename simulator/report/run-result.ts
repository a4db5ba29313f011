/**
 * run.json: the versioned result of one run. Reporters (plain, later dashboard/HTML/JUnit) and
 * `compare` read only this shape. Bump runResultSchemaVersion on any incompatible change.
 */
import type { ChaosAction, Scenario } from '../scenario/types.js';
import type { BrokerViolationExample, BrokerViolationKind, DisconnectCause, FleetCounters } from '../metrics/types.js';
import type { CheckerResult } from '../verify/checker.js';
import type { SerializedLedgers } from '../verify/ledger.js';

export const runResultSchemaVersion = 1;

/** Percentiles of one latency histogram, milliseconds. */
export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
}

/** One point per snapshot interval (about a second). Rates are per second over the interval. */
export interface TimelinePoint {
  atMs: number;
  phase: 'prepare' | 'ramp-up' | 'steady' | 'ramp-down' | 'drain';
  connected: number;
  publishedPerSec: number;
  deliveredPerSec: number;
  /** Interval latencies, ms (null when nothing was delivered in the interval). */
  e2eP50Ms: number | null;
  e2eP99Ms: number | null;
  fleets: Record<string, { connected: number; publishedPerSec: number; deliveredPerSec: number; reconnects: number; e2eP50Ms: number | null; e2eP99Ms: number | null }>;
  generator: { loopDelayP99Ms: number; scheduleSlipP99Ms: number; cpu: number; saturated: boolean };
  /** The broker process when it is local: embedded, or given by --broker-pid. cpu in cores. */
  broker?: { cpu: number; rssBytes: number };
  /** This simulator process (every worker thread): cpu in cores, resident memory. Absent in older files. */
  simulator?: { cpu: number; rssBytes: number };
}

export interface LedgerSummary {
  streams: number;
  published: [number, number, number];
  acknowledged: [number, number, number];
  /** Distinct (subscriber, stream, seq) deliveries. */
  received: [number, number, number];
  duplicates: [number, number, number];
  reordered: [number, number, number];
}

export interface AssertionResult {
  source: string;
  metric: string;
  /** null when the metric is unknown or had no data. */
  actual: number | null;
  passed: boolean;
  message: string;
}

/** One action of the chaos timeline as it happened. */
export interface ChaosRecord {
  /** When it started, ms from the start of the timeline. */
  atMs: number;
  action: ChaosAction['kind'];
  /** ok: done as asked; failed: it could not be done or the command failed (detail says why); the run went on. */
  outcome: 'ok' | 'failed';
  /** What happened: pids, the fleet and its devices, the command's exit code and first lines of output. */
  detail: string;
  /** When it was over (broker back, partition lifted, command exited), ms from the start of the timeline. */
  endMs?: number;
}

/**
 * Protocol violations by the broker, as the simulated clients saw them on their connections (kept apart
 * from the delivery checker's `checker`: they are observed live per packet, not derived from ledgers).
 */
export interface BrokerViolations {
  total: number;
  byKind: Record<BrokerViolationKind, number>;
  /** Per fleet or consumer whose clients saw them. */
  byFleet: Record<string, number>;
  /** The first ones, earliest first (a few per shard, at most maxBrokerViolationExamples). */
  examples: BrokerViolationExample[];
}

/**
 * What one slice of a distributed run saw of the traffic from each slice (itself included), written with
 * `shard` so `mqtt-sim merge` can estimate the clock offsets between the slices' machines and correct
 * end-to-end latencies (simulator/orchestrator/clock-offsets.ts).
 */
export interface SliceClockRecord {
  /** Keyed by the publishing slice's index ("1".."n"); only slices this one received stamped messages from. */
  fromSlice: Record<string, SliceLatencySample>;
}

/** Deliveries from one publishing slice to the slice that recorded them. */
export interface SliceLatencySample {
  /** Smallest raw end-to-end latency (the receiver's clock minus the publisher's stamp), ms; negative when the publisher's clock is ahead. */
  minE2eMs: number;
  count: number;
  /** e2e.qos0|1|2 histograms of the raw latencies of 0 and above (µs, as the run's e2e histograms). */
  histograms: Record<string, string>;
  /** Histograms of the magnitudes of negative raw latencies (a publisher's clock ahead of the receiver's), by the same names. */
  negativeHistograms: Record<string, string>;
}

/** The clock offsets `mqtt-sim merge` estimated between slices, and what it corrected with them. */
export interface ClockOffsets {
  /** How they were estimated: from the minimum end-to-end latency both ways between pairs of slices (NTP-style), least squares over the pairs. */
  method: 'min-e2e-both-ways';
  /** The assumption the estimate rests on. */
  assumption: string;
  /** Per slice ("1".."n"): its clock minus slice 1's clock, ms; null when it could not be estimated. */
  offsetsMs: Record<string, number | null>;
  /** The pairs of slices with traffic both ways: minimum latency a→b and b→a, message counts, and the offset (clock b − clock a) this pair alone gives. */
  pairs: Array<{ slices: [number, number]; minE2eMs: [number, number]; counts: [number, number]; offsetMs: number }>;
  /** What was corrected with the offsets (histogram names, `checker times`); empty when nothing was. */
  corrected: string[];
}

export interface RunResult {
  schemaVersion: number;
  tool: { name: 'mqtt-sim'; version: string };
  scenario: Scenario;
  environment: {
    node: string;
    platform: string;
    arch: string;
    cpus: number;
    cpuModel: string;
    totalMemoryBytes: number;
    hostname: string;
    workers: number;
    fileLimit: number | null;
  };
  target: { embedded: boolean; urls: string[]; protocolVersion: 4 | 5 };
  startedAt: string;
  /** Wall-clock time of t=0 of the timeline (every atMs counts from it); absent when the timeline never started. */
  timelineStartedAt?: string;
  finishedAt: string;
  /** How the run ended. */
  outcome: 'completed' | 'aborted' | 'unreachable' | 'error';
  /** Total (all fleets) and per fleet, cumulative at the end. */
  totals: FleetCounters;
  fleets: Record<string, FleetCounters>;
  latency: Record<string, LatencySummary>;
  /** hdr-histogram-js compressed base64 of each histogram, so later tools can re-merge or re-plot. */
  histograms: Record<string, string>;
  timeline: TimelinePoint[];
  ledger: LedgerSummary;
  /**
   * The delivery-guarantee checker's classification per QoS and subscriber fleet (simulator/verify/checker.ts).
   * Always written by runs since the checker exists; absent in older run.json files (same schema version).
   */
  checker?: CheckerResult;
  /** Protocol violations by the broker seen by the clients; any makes the verdict fail. Absent in older run.json files. */
  brokerViolations?: BrokerViolations;
  generator: { saturated: boolean; reasons: string[]; loopDelayMaxMs: number; scheduleSlipP99Ms: number };
  broker?: { embedded: true; pid: number; cpuSeconds: number; peakRssBytes: number; version: string };
  /** The chaos timeline as it happened, in start order. */
  chaos: ChaosRecord[];
  assertions: AssertionResult[];
  /** 'pass' when every assertion passed, the run completed and the clients saw no broker violation. */
  verdict: 'pass' | 'fail';
  errors: string[];
  disconnectCauses: Record<DisconnectCause, number>;
  /** The slice this run.json covers (`mqtt-sim run --shard index/count`, index 1-based); absent for a whole run. */
  shard?: { index: number; count: number };
  /** The slice's raw merged ledgers, written only with `shard`, so `mqtt-sim merge` can check deliveries across slices. */
  ledgers?: SerializedLedgers;
  /** The slice's deliveries per publishing slice, for the clock offsets of `mqtt-sim merge`; written with `shard` when the run has 2 to 64 slices. */
  sliceClock?: SliceClockRecord;
  /** Remarks on how to read the result (e.g. a merged run: latency across machines needs synchronized clocks). */
  notes?: string[];
  /** A merged run: the clock offsets estimated between its slices and what they corrected (absent for a whole run). */
  clockOffsets?: ClockOffsets;
}
