/**
 * Per-device costs from the scale steps and their extrapolation to a million devices, with the capacity
 * cost model (simulator/capacity/cost-model.ts: fitLine, extrapolate): least-squares lines of RSS and CPU
 * against devices, per process. The simulator's lines are fitted per simulator process (one process held
 * N devices in the one-process steps); the broker's per broker kind. Only steps that passed count.
 * Pure: numbers in, numbers and sentences out.
 */
import { extrapolate, fitLine, type ShardLimits } from '../../simulator/capacity/cost-model.js';
import type { CostModel, Extrapolation, LinearFit } from '../../simulator/capacity/types.js';
import { spareFileDescriptors } from '../../simulator/orchestrator/environment.js';
import { DEVICES_PER_SOURCE_ADDRESS } from './scenario.js';
import type { StepResult } from './summary.js';

/** One process's usage at a device count: the points the lines are fitted through. */
export interface CostPoint {
  devices: number;
  rssBytes: number | null;
  cpuCores: number | null;
}

/**
 * Per simulator process: the one-process steps that passed (their summed figures are one process's). The
 * idle base run counts only when fewer than two steps passed: a short run's RSS still holds start-up
 * garbage that the first collections of a busy process free, so it sits above the line and would flatten it.
 */
export function simulatorPoints(steps: readonly StepResult[], base: CostPoint | null): CostPoint[] {
  const points: CostPoint[] = [];
  for (const s of steps) {
    if (!s.ok || s.simulatorProcesses !== 1) continue;
    points.push({ devices: s.devices, rssBytes: s.simulator.peakRssBytes, cpuCores: s.simulator.cpuCores });
  }
  return points.length < 2 && base !== null ? [base, ...points] : points;
}

/**
 * Per broker process: the one-broker steps that passed. Its idle RSS (right after start, at 0 devices)
 * counts only when fewer than two steps passed, for the same reason as the simulator's base run; no CPU
 * point at 0 devices (idle is not the workload).
 */
export function brokerPoints(steps: readonly StepResult[]): CostPoint[] {
  const passed = steps.filter((s) => s.ok && s.brokers === 1);
  const points: CostPoint[] = passed.map((s) => ({ devices: s.devices, rssBytes: s.broker.peakRssBytes, cpuCores: s.broker.cpuCores }));
  const idle = passed.map((s) => s.broker.idleRssBytes).filter((v): v is number => v !== null);
  if (points.length < 2 && idle.length > 0) points.unshift({ devices: 0, rssBytes: idle.reduce((a, b) => a + b, 0) / idle.length, cpuCores: null });
  return points;
}

function fitOf(points: readonly CostPoint[], pick: (p: CostPoint) => number | null): LinearFit | null {
  const usable = points.filter((p) => {
    const v = pick(p);
    return v !== null && Number.isFinite(v);
  });
  return fitLine(usable.map((p) => p.devices), usable.map((p) => pick(p)!));
}

/** The cost model of one broker kind with the simulator beside it. */
export function costModelOf(simulator: readonly CostPoint[], broker: readonly CostPoint[] | null, intervalSeconds: number): CostModel {
  const sim = { cpuCores: fitOf(simulator, (p) => p.cpuCores), rssBytes: fitOf(simulator, (p) => p.rssBytes) };
  const brk = broker === null ? null : { cpuCores: fitOf(broker, (p) => p.cpuCores), rssBytes: fitOf(broker, (p) => p.rssBytes) };
  const notes: string[] = [];
  if (sim.rssBytes === null) notes.push('the simulator was measured at fewer than 2 device counts: no simulator line');
  if (broker !== null && (brk?.rssBytes === null || brk?.cpuCores === null)) notes.push('the broker passed at too few device counts for a line');
  return {
    simulator: sim,
    broker: brk,
    perDevice: {
      simulatorCpuCores: sim.cpuCores?.slope ?? null,
      simulatorRssBytes: sim.rssBytes?.slope ?? null,
      brokerCpuCores: brk?.cpuCores?.slope ?? null,
      brokerRssBytes: brk?.rssBytes?.slope ?? null,
    },
    offeredRatePerDevice: 1 / intervalSeconds,
    notes,
  };
}

/** What a simulator shard may use on this machine: its open-file hard limit, one core, the machine's memory shared by its cores. */
export function shardLimitsHere(hardFileLimit: number | null, cpus: number, totalMemoryBytes: number): ShardLimits {
  return {
    fileDescriptorsPerProcess: hardFileLimit ?? Number.POSITIVE_INFINITY,
    cpuCoresPerShard: 1,
    memoryBytesPerShard: Math.floor(totalMemoryBytes / Math.max(1, cpus)),
  };
}

export interface MillionEstimate {
  /** The cost model's extrapolation (shards = simulator processes). */
  extrapolation: Extrapolation;
  /** Broker processes the open-file limit alone asks for (one socket per device), when one process cannot hold them. */
  brokerProcessesByFileLimit: number | null;
  /** Broker processes one core each would need at the fitted CPU line. */
  brokerProcessesByCpu: number | null;
  /** QoS 1 publishes per second the fleet offers, and as many deliveries to the consumers. */
  publishesPerSec: number;
  /** Source addresses needed at DEVICES_PER_SOURCE_ADDRESS devices each (binding slows past it, scenario.ts). */
  sourceAddresses: number;
  /** Assumptions of this benchmark, besides the cost model's own. */
  assumptions: string[];
}

/** How this benchmark reads a step's CPU and memory (it replaces the capacity command's sentence in the extrapolation). */
const measuredHow =
  'Simulator lines are per process, over the one-process steps that passed (ours and Mosquitto alike; the idle base run only when fewer than two passed); RSS is the highest reading over the steady window (all devices connected → end of the steady phase), CPU its mean over that window, read from /proc every second.';

/** Linux's default ephemeral port range 32768-60999. */
const EPHEMERAL_PORTS = 60999 - 32768;

/** The cost model's extrapolation to `target` devices plus what it implies for brokers and addresses on this machine. */
export function estimateFor(model: CostModel, target: number, limits: ShardLimits, intervalSeconds: number, devicesPerSource = DEVICES_PER_SOURCE_ADDRESS): MillionEstimate {
  const extrapolation = extrapolate(model, target, limits, measuredHow);
  const fd = limits.fileDescriptorsPerProcess;
  // A broker process holds one socket per device, its consumer and its own files.
  const perBroker = Number.isFinite(fd) ? Math.max(1, Math.floor(fd) - spareFileDescriptors - 1) : null;
  const brokerCpu = extrapolation.broker?.cpuCores ?? null;
  return {
    extrapolation,
    brokerProcessesByFileLimit: perBroker === null ? null : Math.ceil(target / perBroker),
    // The epsilon keeps a fitted 20.000000001 cores from asking for a 21st process.
    brokerProcessesByCpu: brokerCpu === null ? null : Math.max(1, Math.ceil(brokerCpu - 1e-9)),
    publishesPerSec: Math.round(target / intervalSeconds),
    sourceAddresses: Math.ceil(target / devicesPerSource),
    assumptions: [
      `Workload: every device sends one QoS 1 message every ${intervalSeconds} s (${Math.round(target / intervalSeconds).toLocaleString('en-US')} msg/s for ${target.toLocaleString('en-US')} devices), delivered once to one consumer; the CPU lines are for this rate and grow with it.`,
      'Broker lines are per process, over the one-broker steps that passed (its idle RSS at 0 devices only when fewer than two passed); the two-broker step is not fitted, it checks the model (modelCheck). The slope is the cost of one more device; the per-step figures (steady − idle) / devices also carry start-up garbage freed by the first collections, so they read low at small sizes.',
      `Shards here: ${Number.isFinite(fd) ? `${fd.toLocaleString('en-US')} open files (the hard limit, not raisable without privileges)` : 'unlimited open files'}, 1 core and ${(limits.memoryBytesPerShard / 2 ** 30).toFixed(1)} GiB (the machine's memory over its cores) per simulator process.`,
      perBroker === null
        ? 'Broker processes are not bounded by open files here.'
        : `One broker process holds at most ${perBroker.toLocaleString('en-US')} connections under the same open-file limit: ${Math.ceil(target / perBroker).toLocaleString('en-US')} broker processes (or one broker with a raised limit, if its single event loop keeps up).`,
      `Connections from one source address to one broker port are bounded by the ephemeral port range (${EPHEMERAL_PORTS.toLocaleString('en-US')} ports), and binding slows well before that: at ${devicesPerSource.toLocaleString('en-US')} devices per source address (sourceAddresses), as this benchmark ran, ${Math.ceil(target / devicesPerSource).toLocaleString('en-US')} addresses.`,
    ],
  };
}

export interface ModelCheck {
  devices: number;
  simulatorProcesses: number;
  brokers: number;
  predicted: { simulatorRssBytes: number | null; simulatorCpuCores: number | null; brokerRssBytes: number | null; brokerCpuCores: number | null };
  measured: { simulatorRssBytes: number | null; simulatorCpuCores: number | null; brokerRssBytes: number | null; brokerCpuCores: number | null };
}

function at(fit: LinearFit | null, devices: number, processes: number): number | null {
  return fit === null ? null : processes * fit.intercept + fit.slope * devices;
}

/** The model's prediction for a step split over several processes (devices even over them) next to what the step measured. */
export function checkModel(model: CostModel, step: StepResult): ModelCheck {
  const k = step.simulatorProcesses;
  const b = step.brokers;
  return {
    devices: step.devices,
    simulatorProcesses: k,
    brokers: b,
    predicted: {
      simulatorRssBytes: at(model.simulator.rssBytes, step.devices, k),
      simulatorCpuCores: at(model.simulator.cpuCores, step.devices, k),
      brokerRssBytes: at(model.broker?.rssBytes ?? null, step.devices, b),
      brokerCpuCores: at(model.broker?.cpuCores ?? null, step.devices, b),
    },
    measured: {
      simulatorRssBytes: step.simulator.peakRssBytes,
      simulatorCpuCores: step.simulator.cpuCores,
      brokerRssBytes: step.broker.peakRssBytes,
      brokerCpuCores: step.broker.cpuCores,
    },
  };
}
