/**
 * The capacity cost model: what one more device costs the simulator and the broker, measured per ramp
 * step and fitted as straight lines over the steps that ran healthy, then extrapolated to a target fleet
 * (how many simulator shards of what size, and what the broker would need if it scales as measured).
 * Every number comes with the assumptions it rests on, in plain sentences, so a reader can judge it.
 * Pure functions of run and capacity results; the text summary is one too (no colors, no I/O).
 */
import { metricInfo } from '../report/assertions.js';
import type { RunResult, TimelinePoint } from '../report/run-result.js';
import { formatBytes, formatCount, formatMsValue, formatNumber, formatTable, type Align } from '../report/summary.js';
import { spareFileDescriptors } from '../orchestrator/environment.js';
import type { CapacityResult, CapacityStep, CapacityStepError, CostModel, Extrapolation, LinearFit, ProcessUsage } from './types.js';

// ---------------------------------------------------------------- one step

/**
 * Steady points left out of the CPU mean at the start of the steady phase. Each point's CPU covers the
 * interval since the previous point, so the first steady point still holds the end of the ramp-up: the
 * last connection handshakes (TLS, CONNECT/SUBSCRIBE) and the garbage they leave. One point (about a
 * second) covers it; it is kept when it is the only steady point. RSS is a level, not an interval, so the
 * peak is taken over every steady point.
 */
export const rampSettlePoints = 1;

type Usage = { cpu: number; rssBytes: number };

function usageOf(points: readonly TimelinePoint[], all: readonly TimelinePoint[], pick: (p: TimelinePoint) => Usage | undefined): ProcessUsage {
  const steady = points.filter((p) => pick(p) !== undefined);
  const forCpu = steady.length > rampSettlePoints ? steady.slice(rampSettlePoints) : steady;
  let weighted = 0;
  let weights = 0;
  for (const p of forCpu) {
    // Weight by the interval the sample covers (ticks are about a second apart, but a busy loop delays some).
    const previous = all[all.indexOf(p) - 1];
    const span = previous !== undefined && p.atMs > previous.atMs ? p.atMs - previous.atMs : 1000;
    weighted += pick(p)!.cpu * span;
    weights += span;
  }
  const rss = steady.map((p) => pick(p)!.rssBytes);
  return {
    cpuCores: weights > 0 ? weighted / weights : null,
    peakRssBytes: rss.length > 0 ? Math.max(...rss) : null,
  };
}

/**
 * The simulator's and the broker's CPU (mean over the steady phase, in cores, without its first
 * rampSettlePoints points) and peak RSS (over the steady phase) in one step's run. Nulls where nothing
 * was measured; `broker` is absent when no point of the run has broker data (a remote target).
 */
export function stepUsage(result: RunResult): { simulator: ProcessUsage; broker?: ProcessUsage } {
  const steady = result.timeline.filter((p) => p.phase === 'steady');
  const simulator = usageOf(steady, result.timeline, (p) => p.simulator);
  if (!result.timeline.some((p) => p.broker !== undefined)) return { simulator };
  return { simulator, broker: usageOf(steady, result.timeline, (p) => p.broker) };
}

// ---------------------------------------------------------------- fitting

/**
 * Ordinary least squares y = intercept + slope·x. r2 is null under 3 points (a line through 2 points
 * always fits); maxRelativeError is the largest |fitted − measured| / |measured| over points whose
 * measured value is not 0. Null under 2 points or when every x is the same (no slope to fit).
 */
export function fitLine(xs: readonly number[], ys: readonly number[]): LinearFit | null {
  if (xs.length !== ys.length) throw new RangeError(`fitLine: ${xs.length} x values but ${ys.length} y values`);
  const n = xs.length;
  if (n < 2) return null;
  const meanX = xs.reduce((a, b) => a + b, 0) / n;
  const meanY = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let ssTotal = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - meanX;
    const dy = ys[i]! - meanY;
    sxx += dx * dx;
    sxy += dx * dy;
    ssTotal += dy * dy;
  }
  if (!(sxx > 0)) return null;
  const slope = sxy / sxx;
  const intercept = meanY - slope * meanX;
  let ssResidual = 0;
  let maxRelativeError: number | null = null;
  for (let i = 0; i < n; i++) {
    const error = intercept + slope * xs[i]! - ys[i]!;
    ssResidual += error * error;
    if (ys[i] !== 0) maxRelativeError = Math.max(maxRelativeError ?? 0, Math.abs(error) / Math.abs(ys[i]!));
  }
  // Every y equal: the horizontal line through them is exact.
  const r2 = n < 3 ? null : ssTotal > 0 ? 1 - ssResidual / ssTotal : 1;
  return { intercept, slope, r2, maxRelativeError, points: n, xMin: Math.min(...xs), xMax: Math.max(...xs) };
}

/** Fits y(step) against devices over the steps where y was measured. */
function fitOver(steps: readonly CapacityStep[], y: (s: CapacityStep) => number | null | undefined): LinearFit | null {
  const measured = steps.filter((s) => {
    const v = y(s);
    return v !== null && v !== undefined && Number.isFinite(v);
  });
  return fitLine(measured.map((s) => s.devices), measured.map((s) => y(s)!));
}

/**
 * The cost model over the steps that ran healthy. A step is left out when
 * - it has more devices than the knee step: past the knee the broker is saturated, and a saturated
 *   process's CPU is capped at what it can get, so its cost per device would read too low;
 * - it did not settle (backlog or latency still growing): its usage is not a steady state;
 * - its generator saturated: the simulator is then capped the same way, and the broker did not receive
 *   the offered load, so neither side's cost is the cost of the offered workload.
 * With no knee (not even the first step met the SLO) the stable, unsaturated steps are still used: a
 * step can break a strict latency SLO while both processes run comfortably.
 * perDevice holds the slopes: the marginal cost of one more device. The intercepts are the fixed cost of
 * a process (runtime, buffers, the broker's store), which a step's usage ÷ devices would spread over its
 * devices and so overstate the cost of a large fleet.
 */
export function fitCostModel(steps: readonly CapacityStep[], kneeStep: number | null): CostModel {
  const knee = kneeStep === null ? undefined : steps.find((s) => s.index === kneeStep);
  const fitted: CapacityStep[] = [];
  const excludedSteps: Array<{ step: number; reason: string }> = [];
  for (const s of steps) {
    if (knee !== undefined && s.devices > knee.devices) {
      excludedSteps.push({ step: s.index, reason: `past the knee (${formatCount(s.devices)} > ${formatCount(knee.devices)} devices): a saturated process's CPU is capped, so its cost would read too low` });
    } else if (!s.stable) {
      excludedSteps.push({ step: s.index, reason: `did not settle${s.unstableReason === undefined ? '' : ` (${s.unstableReason})`}: not a steady state` });
    } else if (s.generatorSaturated) {
      excludedSteps.push({ step: s.index, reason: 'the generator saturated: the offered load was not generated' });
    } else {
      fitted.push(s);
    }
  }
  const simulator = {
    cpuCores: fitOver(fitted, (s) => s.simulator.cpuCores),
    rssBytes: fitOver(fitted, (s) => s.simulator.peakRssBytes),
  };
  const brokerMeasured = steps.some((s) => s.broker !== undefined);
  const broker = brokerMeasured
    ? { cpuCores: fitOver(fitted, (s) => s.broker?.cpuCores), rssBytes: fitOver(fitted, (s) => s.broker?.peakRssBytes) }
    : null;

  const notes: string[] = [];
  const distinctDevices = new Set(fitted.map((s) => s.devices)).size;
  if (fitted.length < 2) {
    notes.push(`Only ${fitted.length} step${fitted.length === 1 ? '' : 's'} ran healthy (settled, generator not saturated, not past the knee); a line needs 2 with different device counts.`);
  } else if (distinctDevices < 2) {
    notes.push(`Every healthy step had ${formatCount(fitted[0]!.devices)} devices (a rate ramp): a cost per device cannot be fitted from them.`);
  }
  const rates = fitted.filter((s) => s.devices > 0).map((s) => s.offeredRate / s.devices);
  return {
    simulator,
    broker,
    perDevice: {
      simulatorCpuCores: simulator.cpuCores?.slope ?? null,
      simulatorRssBytes: simulator.rssBytes?.slope ?? null,
      brokerCpuCores: broker?.cpuCores?.slope ?? null,
      brokerRssBytes: broker?.rssBytes?.slope ?? null,
    },
    fittedSteps: fitted.map((s) => s.index),
    excludedSteps,
    offeredRatePerDevice: rates.length > 0 ? rates.reduce((a, b) => a + b, 0) / rates.length : null,
    notes,
  };
}

// ---------------------------------------------------------------- extrapolation

/** What one simulator shard (an mqtt-sim process) may use. */
export interface ShardLimits {
  /** The open-file limit of a shard process (one socket per device); Infinity: unlimited. */
  fileDescriptorsPerProcess: number;
  /** CPU cores one shard may keep busy. */
  cpuCoresPerShard: number;
  /** Resident memory one shard may use, bytes. */
  memoryBytesPerShard: number;
}

/**
 * Linux's default ephemeral port range (32768-60999): how many connections one source address can open
 * to one broker address:port (see portRangeCheck in orchestrator/environment.ts).
 */
const defaultEphemeralPorts = 60999 - 32768;

/** Devices a budget allows at cost intercept + slope·devices; null when the cost does not grow with devices. */
function budgetBound(budget: number, fit: LinearFit | null): number | null {
  if (fit === null || !(fit.slope > 0)) return null;
  // The epsilon keeps a budget that is an exact multiple from losing a device to rounding (0.98 / 0.0005).
  return Math.max(0, Math.floor((budget - Math.max(0, fit.intercept)) / fit.slope + 1e-9));
}

/** The fitted line at `devices`; null when not fitted or not growing with devices (no sound estimate). */
function lineAt(fit: LinearFit | null, devices: number): number | null {
  return fit === null || !(fit.slope > 0) ? null : fit.intercept + fit.slope * devices;
}

/** A fleet total over `shards` processes: each pays the fixed cost once, every device its slope. */
function shardTotal(fit: LinearFit | null, shards: number, devices: number): number | null {
  return fit === null || !(fit.slope > 0) ? null : shards * Math.max(0, fit.intercept) + fit.slope * devices;
}

/** "simulator CPU r² 0.998, within 3.1%" or "simulator CPU through 2 steps only, error unknown"; null when not fitted. */
function fitQuality(what: string, fit: LinearFit | null): string | null {
  if (fit === null) return null;
  if (fit.points < 3) return `${what} through ${fit.points} steps only, error unknown (a line passes through any 2 points)`;
  const within = fit.maxRelativeError === null ? 'no nonzero value to compare' : `within ${formatPercent1(fit.maxRelativeError)}`;
  return `${what} r² ${fit.r2 === null ? '-' : fit.r2.toFixed(3)}, ${within}`;
}

/**
 * Sizes a fleet of `targetDevices` from the model: devices per shard = the least of what the shard's
 * file descriptors (minus spareFileDescriptors), its CPU budget and its memory budget allow — for CPU
 * and memory, (budget − the fitted fixed cost) ÷ the fitted cost per device, so the process's own
 * baseline counts against its budget; shards = ⌈target ÷ that⌉. Totals sum the shards' fixed costs and
 * every device's cost; the broker's need is its fitted line at the target. A resource that was not
 * measured, or did not grow with devices, bounds nothing and gets no total (null), and the assumptions
 * say so. Throws RangeError unless targetDevices is a positive integer (the CLI validates it first).
 */
/** How `mqtt-sim capacity` measures a step (stepUsage). */
const capacityMeasurement =
  'Simulator CPU is the mean over each step\'s steady phase (its first second left out, it still holds the ramp-up) for the whole process, every worker thread; memory is the peak resident set over the steady phase.';

/**
 * `measurement` replaces the sentence on how the per-step CPU and memory were read (the default describes
 * `mqtt-sim capacity`: stepUsage over each step's steady phase); bench/scale reads them its own way.
 */
export function extrapolate(model: CostModel, targetDevices: number, limits: ShardLimits, measurement: string = capacityMeasurement): Extrapolation {
  if (!Number.isSafeInteger(targetDevices) || targetDevices < 1) throw new RangeError(`extrapolate: targetDevices must be a positive integer, got ${targetDevices}`);
  const fd = limits.fileDescriptorsPerProcess;
  const sim = model.simulator;
  const bounds = {
    fileDescriptors: Number.isFinite(fd) ? Math.max(0, Math.floor(fd) - spareFileDescriptors) : null,
    cpu: budgetBound(limits.cpuCoresPerShard, sim.cpuCores),
    memory: budgetBound(limits.memoryBytesPerShard, sim.rssBytes),
  };
  const candidates = ([['file-descriptors', bounds.fileDescriptors], ['cpu', bounds.cpu], ['memory', bounds.memory]] as const)
    .filter((c): c is readonly [Extrapolation['shardLimitedBy'], number] => c[1] !== null);
  const binding = candidates.reduce<(typeof candidates)[number] | null>((best, c) => (best === null || c[1] < best[1] ? c : best), null);
  const shardLimitedBy = binding?.[0] ?? 'file-descriptors';
  const capacity = binding?.[1] ?? targetDevices;
  const devicesPerShard = Math.min(capacity, targetDevices);
  const shards = devicesPerShard > 0 ? Math.ceil(targetDevices / devicesPerShard) : 0;
  const brokerFits = model.broker;

  const simulatorTotal = shards > 0
    ? { cpuCores: shardTotal(sim.cpuCores, shards, targetDevices), rssBytes: shardTotal(sim.rssBytes, shards, targetDevices) }
    : { cpuCores: null, rssBytes: null };
  const broker = brokerFits === null ? null : { cpuCores: lineAt(brokerFits.cpuCores, targetDevices), rssBytes: lineAt(brokerFits.rssBytes, targetDevices) };

  return {
    targetDevices,
    devicesPerShard,
    shards,
    shardLimitedBy,
    simulatorTotal,
    broker,
    assumptions: assumptionsFor(model, targetDevices, limits, { bounds, binding: binding?.[0] ?? null, devicesPerShard, shards, brokerCpu: broker?.cpuCores ?? null }, measurement),
    bounds,
    limits: {
      fileDescriptorsPerProcess: Number.isFinite(fd) ? fd : null,
      cpuCoresPerShard: limits.cpuCoresPerShard,
      memoryBytesPerShard: limits.memoryBytesPerShard,
    },
  };
}

interface Sizing {
  bounds: NonNullable<Extrapolation['bounds']>;
  binding: Extrapolation['shardLimitedBy'] | null;
  devicesPerShard: number;
  shards: number;
  brokerCpu: number | null;
}

function assumptionsFor(model: CostModel, target: number, limits: ShardLimits, sizing: Sizing, measurement: string): string[] {
  const out: string[] = [];
  const sim = model.simulator;
  const fits = [sim.cpuCores, sim.rssBytes, model.broker?.cpuCores ?? null, model.broker?.rssBytes ?? null].filter((f): f is LinearFit => f !== null);

  // The range the lines were measured over, and how far the estimate reaches beyond it.
  if (fits.length === 0) {
    out.push(`Nothing could be fitted (${model.notes?.[0] ?? 'no step measured usage'}): the shard size below rests on the file-descriptor limit alone and no total can be estimated.`);
  } else {
    const low = Math.min(...fits.map((f) => f.xMin ?? Number.POSITIVE_INFINITY));
    const high = Math.max(...fits.map((f) => f.xMax ?? 0));
    const steps = model.fittedSteps?.length ?? Math.max(...fits.map((f) => f.points));
    const reach = high > 0 && target > high
      ? `×${formatFactor(target / high)} beyond the largest measured step`
      : 'within the measured range';
    out.push(`Costs grow linearly with devices: lines fitted over ${formatCount(low)}..${formatCount(high)} devices (${steps} steps) are assumed to hold up to ${formatCount(target)} devices, ${reach}.`);
  }
  const rate = model.offeredRatePerDevice;
  out.push(
    `Every device behaves as in the scenario${rate === null || rate === undefined ? '' : ` (${formatSignificant(rate)} msg/s offered per device)`}: ` +
      'another publish rate, QoS, payload size or fan-out changes the cost per device.',
  );

  // Shard sizing, one sentence per limit.
  if (sizing.shards === 0) {
    out.push(`A shard of ${formatCores(limits.cpuCoresPerShard)} and ${formatBytes(limits.memoryBytesPerShard)} cannot hold a single device: its budget is below the process's measured fixed cost. Give shards more (--shard-cores, --shard-memory).`);
  }
  out.push(`A shard is one mqtt-sim process (\`mqtt-sim run --shard i/n\`) on one CPU budget of ${formatCores(limits.cpuCoresPerShard)} (one shard per core by default) and ${formatBytes(limits.memoryBytesPerShard)} of memory, on machines like this one.`);
  out.push(
    sizing.bounds.fileDescriptors === null
      ? 'File descriptors: the open-file limit is unlimited, so it bounds nothing.'
      : `File descriptors: one socket per device; a limit of ${formatCount(limits.fileDescriptorsPerProcess)} open files less ${spareFileDescriptors} kept for stdio, reports and worker threads allows ${formatCount(sizing.bounds.fileDescriptors)} devices per shard.`,
  );
  out.push(budgetSentence('CPU', sim.cpuCores, sizing.bounds.cpu, formatCores(limits.cpuCoresPerShard), formatCores, (v) => `${formatMillicores(v)}/device`));
  out.push(budgetSentence('Memory', sim.rssBytes, sizing.bounds.memory, formatBytes(limits.memoryBytesPerShard), formatBytes, (v) => `${formatBytes(v)}/device`));
  if (sizing.binding !== null && sizing.devicesPerShard > 0) {
    out.push(`So a shard holds ${formatCount(sizing.devicesPerShard)} devices, bounded by ${boundName[sizing.binding]}, and ${formatCount(target)} devices need ${formatCount(sizing.shards)} shard${sizing.shards === 1 ? '' : 's'}.`);
  } else if (sizing.binding === null) {
    out.push('No limit bounds a shard (unlimited open files, CPU and memory not measured): the one-shard answer is not an estimate.');
  }
  if (sizing.devicesPerShard > defaultEphemeralPorts) {
    out.push(`More than ${formatCount(defaultEphemeralPorts)} connections from one source address to one broker address:port exhaust Linux's default local port range: give each shard's fleets several source addresses (sourceAddresses) or widen net.ipv4.ip_local_port_range.`);
  }
  out.push(measurement);

  const qualities = [fitQuality('simulator CPU', sim.cpuCores), fitQuality('simulator memory', sim.rssBytes), fitQuality('broker CPU', model.broker?.cpuCores ?? null), fitQuality('broker memory', model.broker?.rssBytes ?? null)]
    .filter((q): q is string => q !== null);
  if (qualities.length > 0) {
    out.push(`Fit error over the measured steps: ${qualities.join('; ')}. Expect at least that error in the estimate, and more the further it reaches.`);
  }

  // The broker.
  if (model.broker === null) {
    out.push('The broker was not measured (a remote target without --broker-pid): there is no estimate of what it would need.');
  } else {
    out.push(
      'The broker was measured as one process on this machine; its need is its fitted line at the target, as if one process kept scaling as measured. ' +
        'Kernel socket buffers are not in its resident memory, so the machine needs more than that.',
    );
    if (sizing.brokerCpu !== null && sizing.brokerCpu > 1) {
      out.push(`A broker that runs one event loop (the reference broker, Mosquitto) cannot use more than one core: ${formatCores(sizing.brokerCpu)} means at least ${Math.ceil(sizing.brokerCpu)} such brokers (a cluster, or bridged brokers sharing the fleet), each with the measured cost per device.`);
    }
    if (model.broker.cpuCores === null || model.broker.rssBytes === null) {
      out.push('Part of the broker\'s usage could not be fitted (not measured in enough healthy steps): no estimate for it.');
    }
  }
  const named = [
    ['simulator CPU', sim.cpuCores, formatMillicores],
    ['simulator memory', sim.rssBytes, formatSignedBytes],
    ['broker CPU', model.broker?.cpuCores ?? null, formatMillicores],
    ['broker memory', model.broker?.rssBytes ?? null, formatSignedBytes],
  ] as const;
  for (const [what, fit, format] of named) {
    if (fit === null) continue;
    if (!(fit.slope > 0)) {
      out.push(`The ${what} did not grow with devices over the measured range (${format(fit.slope)}/device): it gives no estimate; ramp over a wider range.`);
    } else if (fit.r2 !== null && fit.r2 < poorFitR2) {
      out.push(`The ${what} line fits poorly (r² ${fit.r2.toFixed(2)}): the measurements vary more than the cost grows over the measured range, so its estimate is rough; ramp over a wider range or hold each step longer.`);
    }
  }
  return out;
}

/** Below this r² a line explains too little of the measured variation to extrapolate with confidence. */
const poorFitR2 = 0.8;

const boundName: Record<Extrapolation['shardLimitedBy'], string> = { 'file-descriptors': 'file descriptors', cpu: 'CPU', memory: 'memory' };

function budgetSentence(
  what: string,
  fit: LinearFit | null,
  bound: number | null,
  budget: string,
  formatFixed: (v: number) => string,
  formatPerDevice: (v: number) => string,
): string {
  if (fit === null) return `${what}: the simulator's ${what === 'CPU' ? 'CPU' : 'memory'} was not measured or could not be fitted, so it bounds nothing here and the shard may be sized too large.`;
  if (bound === null) return `${what}: the simulator's usage did not grow with devices, so it bounds nothing here.`;
  return `${what}: ${budget} less the process's fixed ${formatFixed(Math.max(0, fit.intercept))}, at ${formatPerDevice(fit.slope)} (the fitted slope), allows ${formatCount(bound)} devices per shard.`;
}

// ---------------------------------------------------------------- number formatting

/** Three significant digits, with separators from 1,000 up: 0.000423, 2.5, 312, 41,250. */
function formatSignificant(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 1000) return formatCount(n);
  return String(Number(n.toPrecision(3)));
}

function formatCores(cores: number): string {
  return `${formatSignificant(cores)} core${cores === 1 ? '' : 's'}`;
}

/** CPU per device reads best in thousandths of a core. */
function formatMillicores(cores: number): string {
  return `${formatSignificant(cores * 1000)} mcore`;
}

function formatFactor(factor: number): string {
  return factor >= 10 ? formatCount(factor) : String(Number(factor.toPrecision(2)));
}

/** A relative error as a percentage: "3.1%", "0.4%", "<0.1%", "0%". */
function formatPercent1(fraction: number): string {
  const percent = fraction * 100;
  if (percent === 0) return '0%';
  if (percent < 0.1) return '<0.1%';
  return `${percent < 10 ? percent.toFixed(1) : Math.round(percent)}%`;
}

// ---------------------------------------------------------------- tables (text summary and report.html)

const perDevice = (value: number | null | undefined, devices: number, format: (v: number) => string): string =>
  value === null || value === undefined || devices <= 0 ? '-' : format(value / devices);

const kib = (bytes: number): string => formatSignificant(bytes / 1024);
const mcore = (cores: number): string => formatSignificant(cores * 1000);
const round2 = (n: number): number => Math.round(n * 100) / 100;

/** The SLO clause metrics of the step table: the clauses of the first step, by position (every step has the same SLO). */
function sloColumns(steps: readonly CapacityStep[]): string[] {
  return steps[0]?.slo.map((a) => a.metric) ?? [];
}

const sloHeader = (metric: string): string => (metricInfo(metric)?.unit === 'ms' ? `${metric} ms` : metric);

function sloValue(metric: string, actual: number | null | undefined): string {
  if (actual === null || actual === undefined) return '-';
  return metricInfo(metric)?.unit === 'ms' ? formatMsValue(actual) : formatNumber(actual);
}

/** A table as text cells: the terminal summary aligns them, report.html puts them in a <table>. */
export interface TextTable {
  header: string[];
  rows: string[][];
}

/**
 * One row per step: load, the SLO clauses' values, ✓/✗, whether it settled and whether the generator
 * kept up, and usage per device as measured (the step's usage ÷ its devices, fixed cost included).
 */
export function capacityStepTable(result: CapacityResult): TextTable {
  const steps = result.steps;
  const slo = sloColumns(steps);
  const showP99 = !slo.includes('latency.e2e.p99') && steps.some((s) => s.e2eP99Ms !== undefined);
  const hasBroker = steps.some((s) => s.broker !== undefined);
  const header = [
    'step', 'devices', 'offered/s', 'published/s', 'delivered/s', ...(showP99 ? ['e2e p99 ms'] : []), ...slo.map(sloHeader), 'SLO', 'stable', 'generator',
    'sim mcore/dev', 'sim KiB/dev', ...(hasBroker ? ['broker mcore/dev', 'broker KiB/dev'] : []),
  ];
  const rows = steps.map((s) => [
    String(s.index) + (result.knee?.step === s.index ? ' knee' : ''),
    formatCount(s.devices),
    formatNumber(round2(s.offeredRate)),
    formatNumber(round2(s.publishedPerSec)),
    formatNumber(round2(s.deliveredPerSec)),
    ...(showP99 ? [formatMsValue(s.e2eP99Ms)] : []),
    ...slo.map((metric, i) => sloValue(metric, s.slo[i]?.actual)),
    s.sloMet ? '✓' : '✗',
    s.stable ? 'yes' : 'no',
    s.generatorSaturated ? 'saturated' : 'ok',
    perDevice(s.simulator.cpuCores, s.devices, mcore),
    perDevice(s.simulator.peakRssBytes, s.devices, kib),
    ...(hasBroker ? [perDevice(s.broker?.cpuCores, s.devices, mcore), perDevice(s.broker?.peakRssBytes, s.devices, kib)] : []),
  ]);
  return { header, rows };
}

/** Why each step that failed failed: broken SLO clauses, not settled, generator saturated, and the step that ended the ramp with an error. */
export function capacityStepNotes(result: CapacityResult): string[] {
  const out: string[] = [];
  for (const s of result.steps) {
    const failed = s.slo.filter((a) => !a.passed);
    if (failed.length > 0) out.push(`step ${s.index}: SLO broken: ${failed.map((a) => a.message).join('; ')}`);
    if (!s.stable) out.push(`step ${s.index}: did not settle${s.unstableReason === undefined ? '' : `: ${s.unstableReason}`}`);
    if (s.generatorSaturated) out.push(`step ${s.index}: generator saturated${s.generatorReasons.length > 0 ? `: ${s.generatorReasons.join('; ')}` : ''}`);
  }
  const e = result.stopReason === 'error' ? result.error : undefined;
  if (e !== undefined && e.duringStep === true) out.push(`${failedStepName(e)}: left out, the target stopped answering during it (an outage, not a capacity limit); the ramp stopped there`);
  else if (e !== undefined) out.push(`${failedStepName(e)}: no result, ${e.kind === 'target-unreachable' ? 'the target became unreachable' : 'it failed with an error'}; the ramp stopped there`);
  return out;
}

function formatSignedBytes(bytes: number): string {
  return bytes < 0 ? `-${formatBytes(-bytes)}` : formatBytes(bytes);
}

function fitRow(label: string, fit: LinearFit | null, formatSlope: (v: number) => string, formatIntercept: (v: number) => string): string[] {
  if (fit === null) return [label, 'not fitted', '-', '-'];
  const range = fit.xMin === undefined || fit.xMax === undefined ? `${fit.points} steps` : `${fit.points} steps, ${formatCount(fit.xMin)}..${formatCount(fit.xMax)} devices`;
  const quality = fit.points < 3 ? 'error unknown (2 points)' : `r² ${fit.r2?.toFixed(3) ?? '-'}, max error ${fit.maxRelativeError === null ? '-' : formatPercent1(fit.maxRelativeError)}`;
  return [label, `${formatSlope(fit.slope)}/device + ${formatIntercept(fit.intercept)}`, range, quality];
}

/** One row per fitted line: cost per device + fixed cost, the range it was fitted over, its error. */
export function costModelTable(model: CostModel): TextTable {
  return {
    header: ['', 'cost (per device + fixed)', 'fitted over', 'fit'],
    rows: [
      fitRow('simulator CPU', model.simulator.cpuCores, formatMillicores, formatCores),
      fitRow('simulator memory', model.simulator.rssBytes, formatSignedBytes, formatSignedBytes),
      ...(model.broker === null
        ? [['broker', 'not measured (remote target without --broker-pid)', '-', '-']]
        : [fitRow('broker CPU', model.broker.cpuCores, formatMillicores, formatCores), fitRow('broker memory', model.broker.rssBytes, formatSignedBytes, formatSignedBytes)]),
    ],
  };
}

/** " (alone: CPU 47,000, memory 230,000)": what the other limits would allow. */
function boundsText(bounds: NonNullable<Extrapolation['bounds']>, binding: Extrapolation['shardLimitedBy']): string {
  const others = ([['file-descriptors', bounds.fileDescriptors], ['cpu', bounds.cpu], ['memory', bounds.memory]] as const)
    .filter(([name, value]) => name !== binding && value !== null)
    .map(([name, value]) => `${boundName[name]} ${formatCount(value!)}`);
  return others.length === 0 ? '' : ` (alone: ${others.join(', ')})`;
}

/** The extrapolation's numbers as label/value rows (its assumptions are listed beside them by the callers). */
export function extrapolationRows(x: Extrapolation): Array<[string, string]> {
  const both = (cpu: number | null, rss: number | null): string => `${cpu === null ? '-' : formatCores(cpu)} CPU, ${rss === null ? '-' : formatBytes(rss)} memory`;
  const rows: Array<[string, string]> = [
    ['target', `${formatCount(x.targetDevices)} devices`],
    ['devices per shard', x.shards === 0 ? '0 (a shard cannot hold one device)' : `${formatCount(x.devicesPerShard)}, bounded by ${boundName[x.shardLimitedBy]}${x.bounds === undefined ? '' : boundsText(x.bounds, x.shardLimitedBy)}`],
    ['shards', formatCount(x.shards)],
    ['simulator total', both(x.simulatorTotal.cpuCores, x.simulatorTotal.rssBytes)],
    ['broker', x.broker === null ? 'not measured' : `${both(x.broker.cpuCores, x.broker.rssBytes)}, if one process scales as measured`],
  ];
  if (x.limits !== undefined) {
    const fd = x.limits.fileDescriptorsPerProcess;
    rows.push(['shard limits', `${fd === null ? 'unlimited' : formatCount(fd)} open files, ${formatCores(x.limits.cpuCoresPerShard)}, ${formatBytes(x.limits.memoryBytesPerShard)}`]);
  }
  return rows;
}

/** Where the ramp ran, in a few words. */
export function describeCapacityTarget(result: CapacityResult): string {
  const where = result.target.embedded ? 'the embedded reference broker' : result.target.urls.join(', ');
  return result.target.brokerPid === undefined ? where : `${where} (broker pid ${result.target.brokerPid} measured)`;
}

/** "step 2 (60 devices, 600 msg/s offered)" or "refinement step 5 (...)": the step that failed with an error. */
function failedStepName(error: CapacityStepError): string {
  return `${error.refining ? 'refinement step' : 'step'} ${error.step} (${formatCount(error.devices)} devices, ${formatNumber(round2(error.offeredRate))} msg/s offered)`;
}

/** The first step that broke the SLO or did not settle (what bounds the knee from above), if any. */
function firstBrokenStep(result: CapacityResult): CapacityStep | undefined {
  return result.steps.find((s) => !s.sloMet || !s.stable);
}

/**
 * With stop reason `error`: that the ramp stopped early, at which step, and what that means for the
 * knee, in a plain sentence (the error's message is in stopDetail and result.error); null for every
 * other stop reason. Shown beside the stop detail in the text summary and the HTML.
 */
export function stepErrorSentence(result: CapacityResult): string | null {
  const e = result.error;
  if (result.stopReason !== 'error' || e === undefined) return null;
  const why = e.kind === 'target-unreachable' ? 'the target became unreachable' : 'it failed with an error';
  const done = result.steps.length;
  const broken = firstBrokenStep(result);
  const meaning = result.knee === null
    ? 'no step before it met the SLO and settled, so there is no knee'
    : broken !== undefined
      ? `the SLO had broken already at step ${broken.index}, so the knee stands, but the bisection did not narrow it further`
      : 'the knee is the largest step that passed before it, a lower bound: the load where the SLO breaks was not reached';
  const what = e.duringStep === true
    ? `the target stopped answering during ${failedStepName(e)}, so that step shows an outage, not the target's capacity, and is left out: it does not bound the knee`
    : `${failedStepName(e)} measured nothing because ${why}`;
  if (done === 0) return `The ramp stopped early: ${what}. No step completed before it, so there is no knee.`;
  return `The ramp stopped early: ${what}. The report covers the ${done} step${done === 1 ? '' : 's'} that completed; ${meaning}.`;
}

/** "failed with an error", or after an outage "ran into an outage of the target": what happened to the step that ended the ramp. */
function failedHow(error: CapacityStepError): string {
  return error.duringStep === true ? 'ran into an outage of the target' : 'failed with an error';
}

/** The sentence about the knee, with what it means for each stop reason. */
export function kneeSentence(result: CapacityResult): string {
  const k = result.knee;
  if (k === null) {
    return result.stopReason === 'error' && result.error !== undefined
      ? `Knee: none, no step met the SLO and settled before ${failedStepName(result.error)} ${result.error.duringStep === true ? 'ran into an outage of the target' : 'failed'}.`
      : 'Knee: none, not even the first step met the SLO and settled.';
  }
  const what = `step ${k.step}, ${formatCount(k.devices)} devices, ${formatNumber(round2(k.offeredRate))} msg/s offered, ${formatNumber(round2(k.deliveredPerSec))} delivered/s`;
  switch (result.stopReason) {
    case 'generator-saturated':
      return `Knee: at least ${what} (a lower bound: the simulator saturated before the SLO broke, the broker was not the limit).`;
    case 'max-steps':
      return `Knee: at least ${what} (every step met the SLO; ramp further to find the limit).`;
    case 'aborted':
      return `Knee: at least ${what} (the ramp was interrupted).`;
    case 'error': {
      const failed = result.error === undefined ? 'a later step failed with an error' : `${failedStepName(result.error)} ${failedHow(result.error)}`;
      return firstBrokenStep(result) !== undefined
        ? `Knee: ${what} (not narrowed further: ${failed}).`
        : `Knee: at least ${what} (a lower bound: ${failed} before the SLO broke).`;
    }
    case 'slo-broken':
      return `Knee: ${what}.`;
  }
}

/** "over steps 1, 2, 3" (or "(no step was usable)") for the cost model's heading. */
export function fittedStepsText(model: CostModel): string {
  const fitted = model.fittedSteps ?? [];
  return fitted.length === 0 ? '(no step was usable)' : `over step${fitted.length === 1 ? '' : 's'} ${fitted.join(', ')}`;
}

// ---------------------------------------------------------------- the terminal summary

/**
 * The terminal summary of a capacity ramp: the step table, why the ramp stopped, the knee, the fitted
 * cost model and the extrapolation with its assumptions. Plain aligned text, no colors.
 */
export function formatCapacityText(result: CapacityResult): string {
  const out: string[] = [];
  out.push(`Capacity of ${result.scenario.name} against ${describeCapacityTarget(result)}, SLO ${result.slo}`);
  out.push('');
  if (result.steps.length === 0) {
    out.push(result.error?.duringStep === true ? '  No step completed.' : '  No step ran.');
  } else {
    const steps = capacityStepTable(result);
    out.push(...formatTable(steps.header, steps.rows, steps.header.map((_, i): Align => (i === 0 ? 'left' : 'right'))));
    out.push('  Per-device columns: the step\'s usage ÷ its devices (the process\'s fixed cost included); the cost model below separates the two.');
    out.push(...capacityStepNotes(result).map((n) => `  ${n}`));
  }
  out.push('');
  out.push(`Stopped (${result.stopReason}): ${result.stopDetail}`);
  const failure = stepErrorSentence(result);
  if (failure !== null) out.push(failure);
  out.push(kneeSentence(result));
  out.push('');

  const model = result.costModel;
  out.push(`Cost model: least-squares lines against devices ${fittedStepsText(model)}; the slope is what one more device costs.`);
  const fits = costModelTable(model);
  out.push(...formatTable(fits.header, fits.rows, ['left', 'left', 'left', 'left']).slice(1));
  for (const e of model.excludedSteps ?? []) out.push(`  left out: step ${e.step}, ${e.reason}`);
  for (const n of model.notes ?? []) out.push(`  note: ${n}`);

  const x = result.extrapolation;
  if (x !== undefined) {
    out.push('');
    out.push(`Extrapolation to ${formatCount(x.targetDevices)} devices`);
    out.push(...formatTable(['', ''], extrapolationRows(x).slice(1), ['left', 'left']).slice(1));
    out.push('  Assumptions:');
    for (const a of x.assumptions) out.push(`    - ${a}`);
  }
  return `${out.join('\n')}\n`;
}
