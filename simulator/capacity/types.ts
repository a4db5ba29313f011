/**
 * `mqtt-sim capacity`: the shapes shared by the ramp (ramp.ts: runs the steps, finds the knee), the cost
 * model (cost-model.ts: fits resource use per device and extrapolates to a target fleet) and the
 * capacity report (capacity.json, report.html). Bump capacityResultSchemaVersion on any incompatible change.
 */
import type { AssertionResult } from '../report/run-result.js';

export const capacityResultSchemaVersion = 1;

/** Resource use of one process over a step's steady phase; null fields: not measured. */
export interface ProcessUsage {
  /** Mean CPU over the steady phase, in cores (1.0 = one core busy). */
  cpuCores: number | null;
  /** Highest resident set size seen during the steady phase, bytes. */
  peakRssBytes: number | null;
}

/** One load step of the ramp as it ran. */
export interface CapacityStep {
  /** 1-based. */
  index: number;
  /** Devices in the step (consumers not counted). */
  devices: number;
  /** Steady publish rate the scenario asked for in the step, msg/s (expectedPublishRates). */
  offeredRate: number;
  /** Publishes per second measured over the steady phase. */
  publishedPerSec: number;
  /** Deliveries per second measured over the steady phase. */
  deliveredPerSec: number;
  /** End-to-end p99 of the whole step run, ms (null: nothing delivered); absent in older files. */
  e2eP99Ms?: number | null;
  /** Every SLO clause, evaluated on the step's run result. */
  slo: AssertionResult[];
  sloMet: boolean;
  /** Whether the step settled: delivered keeps up with published and latency stops growing over the hold. */
  stable: boolean;
  /** Why it is not stable (absent when stable). */
  unstableReason?: string;
  /** The simulator could not keep its schedule (generator saturated). */
  generatorSaturated: boolean;
  generatorReasons: string[];
  /** The simulator process (all its worker threads). */
  simulator: ProcessUsage;
  /** The broker process: embedded, or --broker-pid; absent when not local. */
  broker?: ProcessUsage;
  /** The step's run.json, relative to the capacity report folder (absent with --no-report). */
  runJson?: string;
}

export type CapacityStopReason =
  /** A step broke the SLO (or did not settle): the knee is the step before it. */
  | 'slo-broken'
  /** The simulator itself saturated before the SLO broke: the knee is a lower bound, the broker was not the limit. */
  | 'generator-saturated'
  /** Every planned step met the SLO: the knee is at least the last step. */
  | 'max-steps'
  /** Interrupted (Ctrl-C). */
  | 'aborted'
  /**
   * The target stopped answering during a step (an outage, not a capacity limit), or a step after the
   * first failed with an error (the target went away, a run threw): the knee is from the steps before it.
   */
  | 'error';

/**
 * The step that ended the ramp with stopReason 'error': its run failed with an error instead of
 * measuring anything, or (duringStep) the target stopped answering while it ran.
 */
export interface CapacityStepError {
  /** The index the step had (it is not in steps). */
  step: number;
  /** It was a bisection step (--refine), run after the SLO broke. */
  refining: boolean;
  /** The load it was to run. */
  devices: number;
  offeredRate: number;
  /**
   * target-unreachable: the target refused or stopped answering, before or during the step (or the
   * --broker-pid process is gone);
   * internal: anything else (a run that threw, a full disk). The CLI exits 3 or 4 on them.
   */
  kind: 'target-unreachable' | 'internal';
  /** What happened: the error's message (for a target unreachable at a later step, with advice that fits a ramp), or the signs of the outage. */
  message: string;
  /**
   * The step ran, but the target stopped answering during it (the target unreachable after it, the
   * broker process gone, or nothing delivered at the end of the hold): its numbers show the outage, not
   * the target's capacity, so it is left out of steps. Absent when the step failed before measuring anything.
   */
  duringStep?: true;
  /** With duringStep: the step's run.json, relative to the capacity report folder (absent with --no-report). */
  runJson?: string;
}

/** A least-squares line y = intercept + slope·x with its fit quality. */
export interface LinearFit {
  intercept: number;
  slope: number;
  /** Coefficient of determination (1 = perfect); null with fewer than 3 points. */
  r2: number | null;
  /** Largest |fitted − measured| / measured over the points, 0..1 (null when every measured value is 0). */
  maxRelativeError: number | null;
  points: number;
  /** The smallest and largest x the line was fitted over (the measured range). */
  xMin?: number;
  xMax?: number;
}

export interface CostModel {
  /** What x is: devices. Each fit is per resource and side. */
  simulator: { cpuCores: LinearFit | null; rssBytes: LinearFit | null };
  broker: { cpuCores: LinearFit | null; rssBytes: LinearFit | null } | null;
  /** Marginal cost per device: the slopes of the fits (null when not fitted). */
  perDevice: { simulatorCpuCores: number | null; simulatorRssBytes: number | null; brokerCpuCores: number | null; brokerRssBytes: number | null };
  /** Steps (index) the fits were made over. */
  fittedSteps?: number[];
  /** Steps left out of the fits and why (past the knee, did not settle, generator saturated). */
  excludedSteps?: Array<{ step: number; reason: string }>;
  /** Offered msg/s per device over the fitted steps (the workload the costs hold for); null when unknown. */
  offeredRatePerDevice?: number | null;
  /** Why a fit is missing or weak, in plain sentences (e.g. every fitted step had the same device count). */
  notes?: string[];
}

export interface Extrapolation {
  targetDevices: number;
  /** Devices one simulator shard (process) should hold: the least of its limits below. */
  devicesPerShard: number;
  shards: number;
  /** What bounds a shard: file descriptors per process, CPU (one shard per core budget) or memory. */
  shardLimitedBy: 'file-descriptors' | 'cpu' | 'memory';
  simulatorTotal: { cpuCores: number | null; rssBytes: number | null };
  /** What the broker would need if it scales as measured (null when the broker was not measured). */
  broker: { cpuCores: number | null; rssBytes: number | null } | null;
  /** Printed beside the numbers: every assumption the extrapolation rests on. */
  assumptions: string[];
  /** Devices one shard could hold under each limit alone; null: that limit does not bound it (unlimited or not measured). */
  bounds?: { fileDescriptors: number | null; cpu: number | null; memory: number | null };
  /** The limits the shards were sized with; fileDescriptorsPerProcess null: unlimited. */
  limits?: { fileDescriptorsPerProcess: number | null; cpuCoresPerShard: number; memoryBytesPerShard: number };
}

export interface CapacityResult {
  schemaVersion: typeof capacityResultSchemaVersion;
  tool: { name: 'mqtt-sim'; version: string };
  scenario: { name: string; sourceFile?: string };
  /** The SLO as given, e.g. "latency.e2e.p99<250ms,qos1.lost==0". */
  slo: string;
  target: { embedded: boolean; urls: string[]; brokerPid?: number };
  startedAt: string;
  finishedAt: string;
  steps: CapacityStep[];
  stopReason: CapacityStopReason;
  /** Human sentence: which step stopped the ramp and why. */
  stopDetail: string;
  /** With stopReason 'error': the step that failed and the error. */
  error?: CapacityStepError;
  /** The largest step that met the SLO and settled; null when even the first did not. */
  knee: { step: number; devices: number; offeredRate: number; deliveredPerSec: number } | null;
  costModel: CostModel;
  extrapolation?: Extrapolation;
}
