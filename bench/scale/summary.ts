/**
 * From the raw material of a step (step.ts: /proc readings, NDJSON times, the run.json) to the figures the
 * benchmark prints: devices connected, connect rate, QoS 1 counts from the delivery checker, and RSS and
 * CPU per device on the simulator side and the broker side. Pure, so it is unit-tested on fixtures.
 */
import type { RunResult } from '../../simulator/report/run-result.js';
import type { ProcReading } from './sampler.js';
import { DEVICE_FLEET } from './scenario.js';
import type { StepRaw } from './step.js';

export interface ResourceFigures {
  processes: number;
  /** Summed RSS before any device: brokers right after start, simulators the idle base run's RSS per process × processes. */
  idleRssBytes: number | null;
  /** Summed RSS at the end of the steady phase (every device connected and publishing). */
  steadyRssBytes: number | null;
  /** Highest summed RSS reading during the steady window. */
  peakRssBytes: number | null;
  /** (steady − idle) / devices. */
  rssBytesPerDevice: number | null;
  /** Mean CPU over the steady window, summed over the processes, in cores (1 = one core busy). */
  cpuCores: number | null;
  cpuCoresPerDevice: number | null;
  /** CPU time spent from the first connect to the last, per device: the cost of connecting one. */
  connectCpuMsPerDevice: number | null;
}

export interface StepResult {
  label: string;
  /** Which broker: "reference broker (sqlite)" or "mosquitto". */
  brokerName: string;
  brokers: number;
  simulatorProcesses: number;
  workersPerProcess: number;
  devices: number;
  /** Every device connected at once, nothing lost, every publish acknowledged and delivered, no process died. */
  ok: boolean;
  failures: string[];
  /** Worth a look but not a failure: run errors, a saturated generator. */
  warnings: string[];
  connected: {
    /** Most devices of the fleet connected at once (merged timeline). */
    max: number;
    expected: number;
    /** Seconds from the first device's connect (timeline t=0) to all connected, interpolated between the timeline points (1 s apart) around it. */
    secondsToAll: number | null;
  };
  connectRate: {
    offeredPerSec: number;
    /** devices / secondsToAll. */
    perSec: number | null;
    /** From the brokers' descriptor count polled every 200 ms: sockets gained between the first poll above the idle count and the first with all / time between them. */
    brokerSidePerSec: number | null;
    latencyP50Ms: number | null;
    latencyP99Ms: number | null;
    connectFailures: number;
    reconnects: number;
  };
  qos1: { published: number; acknowledged: number; delivered: number; lost: number | null; duplicated: number | null; indeterminate: number | null };
  verdict: RunResult['verdict'] | null;
  outcome: RunResult['outcome'] | null;
  generatorSaturated: boolean | null;
  /** Length of the window CPU and RSS are read over: all connected → end of the steady phase. */
  steadyWindowSeconds: number | null;
  simulator: ResourceFigures;
  broker: ResourceFigures;
  wallSeconds: number;
  processExits: string[];
}

/** Usage of one process over [from, to] (bench-clock ms): mean CPU and the RSS at the end and at its highest. */
export function windowUsage(readings: readonly ProcReading[], from: number, to: number): { cpuCores: number; rssEndBytes: number; rssPeakBytes: number } | null {
  const inside = readings.filter((r) => r.t >= from && r.t <= to);
  if (inside.length < 2) return null;
  const first = inside[0]!;
  const last = inside.at(-1)!;
  const seconds = (last.t - first.t) / 1000;
  if (seconds < 1.5) return null;
  return {
    cpuCores: (last.cpuSeconds - first.cpuSeconds) / seconds,
    rssEndBytes: last.rssBytes,
    rssPeakBytes: Math.max(...inside.map((r) => r.rssBytes)),
  };
}

/** CPU seconds a process spent between two bench-clock times: the last reading at or before `from` (else the first) to the first at or after `to`. */
export function cpuBetween(readings: readonly ProcReading[], from: number, to: number): number | null {
  if (readings.length === 0) return null;
  let a = readings[0]!;
  for (const r of readings) if (r.t <= from) a = r;
  const b = readings.find((r) => r.t >= to);
  if (b === undefined || b.t <= a.t) return null;
  return b.cpuSeconds - a.cpuSeconds;
}

function sumOrNull(values: ReadonlyArray<number | null>): number | null {
  let total = 0;
  for (const v of values) {
    if (v === null || !Number.isFinite(v)) return null;
    total += v;
  }
  return total;
}

function perDevice(value: number | null, devices: number): number | null {
  return value === null || devices <= 0 ? null : value / devices;
}

const round = (x: number | null, decimals = 0): number | null => (x === null ? null : Math.round(x * 10 ** decimals) / 10 ** decimals);

interface Window {
  from: number;
  to: number;
  connectFrom: number | null;
  connectTo: number | null;
}

/** The steady window every slice agrees on: after the last slice had all its devices (and its steady phase began), before the first slice's steady phase ended. */
export function steadyWindow(raw: Pick<StepRaw, 'sims'>): Window | null {
  const sims = raw.sims;
  if (sims.length === 0 || sims.some((s) => s.steadyStartAt === null || s.steadyEndAt === null)) return null;
  const from = Math.max(...sims.map((s) => Math.max(s.steadyStartAt!, s.allConnectedAt ?? s.steadyStartAt!)));
  const to = Math.min(...sims.map((s) => s.steadyEndAt!));
  const zeros = sims.map((s) => s.timelineZeroAt).filter((t): t is number => t !== null);
  const alls = sims.map((s) => s.allConnectedAt);
  const connectTo = alls.every((t) => t !== null) ? Math.max(...(alls as number[])) : null;
  return { from, to, connectFrom: zeros.length > 0 ? Math.min(...zeros) : null, connectTo };
}

function resources(raw: StepRaw, names: string[], idleRss: number | null, window: Window | null): ResourceFigures {
  const devices = raw.spec.devices;
  const usage = names.map((n) => (window === null ? null : windowUsage(raw.readings[n] ?? [], window.from, window.to)));
  const steadyRss = sumOrNull(usage.map((u) => u?.rssEndBytes ?? null));
  const peakRss = sumOrNull(usage.map((u) => u?.rssPeakBytes ?? null));
  const cpu = sumOrNull(usage.map((u) => u?.cpuCores ?? null));
  const connectCpu = window === null || window.connectFrom === null || window.connectTo === null
    ? null
    : sumOrNull(names.map((n) => cpuBetween(raw.readings[n] ?? [], window.connectFrom!, window.connectTo!)));
  return {
    processes: names.length,
    idleRssBytes: idleRss,
    steadyRssBytes: steadyRss,
    peakRssBytes: peakRss,
    rssBytesPerDevice: round(steadyRss === null || idleRss === null ? null : perDevice(steadyRss - idleRss, devices)),
    cpuCores: round(cpu, 4),
    cpuCoresPerDevice: cpu === null ? null : Number((cpu / devices).toPrecision(4)),
    connectCpuMsPerDevice: round(perDevice(connectCpu === null ? null : connectCpu * 1000, devices), 4),
  };
}

/**
 * Most devices of the sensor fleet connected at one timeline point, and when all of them first were (s):
 * points are a second apart, so the moment is interpolated linearly between the last point below the
 * expected count and the first at it (connects at a steady rate fill the second evenly).
 */
export function connectedFromTimeline(result: RunResult, expected: number): { max: number; secondsToAll: number | null } {
  let max = 0;
  let secondsToAll: number | null = null;
  let previous = { atMs: 0, connected: 0 };
  for (const p of result.timeline) {
    const c = p.fleets[DEVICE_FLEET]?.connected ?? 0;
    if (c > max) max = c;
    if (secondsToAll === null && c >= expected) {
      const span = p.atMs - previous.atMs;
      const gained = c - previous.connected;
      const atMs = gained > 0 && span > 0 ? previous.atMs + (span * (expected - previous.connected)) / gained : p.atMs;
      secondsToAll = Math.round(atMs) / 1000;
    }
    previous = { atMs: p.atMs, connected: c };
  }
  return { max, secondsToAll };
}

/**
 * The figures of one step. `simulatorIdleRssBytes`: RSS of one idle simulator process (the base run),
 * null when unknown (no per-device simulator RSS then).
 */
export function summarizeStep(raw: StepRaw, simulatorIdleRssBytes: number | null): StepResult {
  const spec = raw.spec;
  const N = spec.devices;
  const failures: string[] = [...raw.errors];
  const warnings: string[] = [];
  const r = raw.result;
  const fromTimeline = r === null ? { max: 0, secondsToAll: null } : connectedFromTimeline(r, N);
  const maxConnected = Math.max(fromTimeline.max, r === null ? raw.sims.reduce((n, s) => n + s.maxConnected, 0) : 0);
  const fleet = r?.fleets[DEVICE_FLEET];
  const checker = r?.checker;
  const q = {
    published: fleet?.published[1] ?? 0,
    acknowledged: fleet?.acknowledged[1] ?? 0,
    delivered: checker?.byQos[1].delivered ?? 0,
    lost: checker?.byQos[1].lost ?? null,
    duplicated: checker?.byQos[1].duplicated ?? null,
    indeterminate: checker?.byQos[1].indeterminate ?? null,
  };

  if (r === null) failures.push('no run result');
  else {
    if (r.outcome !== 'completed') failures.push(`the run ended ${r.outcome}`);
    if (maxConnected < N) failures.push(`only ${maxConnected} of ${N} devices were connected at once`);
    if (checker === undefined || checker.verdict === 'unchecked') failures.push('the delivery checker did not judge the run');
    if (q.lost !== null && q.lost > 0) failures.push(`${q.lost} acknowledged QoS 1 message(s) lost`);
    if (q.published < N) failures.push(`${q.published} QoS 1 publishes for ${N} devices: not every device published`);
    if (q.acknowledged < q.published) failures.push(`${q.published - q.acknowledged} of ${q.published} QoS 1 publishes never acknowledged`);
    if (q.delivered < q.acknowledged) failures.push(`${q.acknowledged - q.delivered} acknowledged QoS 1 message(s) never delivered to the consumer`);
    for (const a of r.assertions) if (!a.passed) failures.push(`assertion failed: ${a.message}`);
    if ((r.brokerViolations?.total ?? 0) > 0) failures.push(`${r.brokerViolations!.total} broker protocol violation(s) seen by the clients`);
    for (const e of r.errors) warnings.push(e);
    if (r.generator.saturated) warnings.push(`the simulator saturated: ${r.generator.reasons.join('; ')}`);
  }
  for (const s of raw.sims) {
    for (const e of s.events) warnings.push(`simulator ${s.slice}: ${e}`);
    if (s.interrupted) failures.push(`simulator ${s.slice} had to be interrupted`);
    else if (s.exitCode !== 0 && s.exitCode !== 1) failures.push(`simulator ${s.slice} ended with ${s.exit}: ${lastLine(s.stderrTail)}`);
  }
  for (const b of raw.brokers) if (b.diedDuringRun !== null && !failures.some((f) => f.startsWith(b.name))) failures.push(`${b.name} died during the run (${b.diedDuringRun})`);

  const window = steadyWindow(raw);
  if (window !== null && window.to - window.from < 5000) warnings.push(`steady window only ${Math.round((window.to - window.from) / 100) / 10} s long: CPU and RSS figures are rough`);
  const simNames = raw.sims.map((s) => `sim-${s.slice}`);
  const brokerNames = raw.brokers.map((b) => b.name);
  const brokerIdle = sumOrNull(raw.brokers.map((b) => b.idle?.rssBytes ?? null));
  const fd = raw.fd;
  const brokerSideRate = fd.first !== null && fd.all !== null && fd.all.t > fd.first.t ? (fd.all.fds - fd.first.fds) / ((fd.all.t - fd.first.t) / 1000) : null;
  const connectLatency = r?.latency['connect'];

  return {
    label: spec.label,
    brokerName: spec.broker === 'ours' ? `reference broker (${spec.persistence})` : 'mosquitto',
    brokers: spec.brokers,
    simulatorProcesses: spec.simulatorProcesses,
    workersPerProcess: spec.workers,
    devices: N,
    ok: failures.length === 0,
    failures,
    warnings,
    connected: { max: maxConnected, expected: N, secondsToAll: fromTimeline.secondsToAll },
    connectRate: {
      offeredPerSec: spec.connectRatePerSec,
      perSec: round(fromTimeline.secondsToAll === null || fromTimeline.secondsToAll <= 0 ? null : N / fromTimeline.secondsToAll),
      brokerSidePerSec: round(brokerSideRate),
      latencyP50Ms: connectLatency?.p50 ?? null,
      latencyP99Ms: connectLatency?.p99 ?? null,
      connectFailures: fleet?.connectFailures ?? 0,
      reconnects: fleet?.reconnects ?? 0,
    },
    qos1: q,
    verdict: r?.verdict ?? null,
    outcome: r?.outcome ?? null,
    generatorSaturated: r?.generator.saturated ?? null,
    steadyWindowSeconds: window === null ? null : Math.round((window.to - window.from) / 100) / 10,
    simulator: resources(raw, simNames, simulatorIdleRssBytes === null ? null : simulatorIdleRssBytes * raw.sims.length, window),
    broker: resources(raw, brokerNames, brokerIdle, window),
    wallSeconds: raw.wallSeconds,
    processExits: raw.sims.map((s) => `sim-${s.slice}: ${s.exit}`),
  };
}

function lastLine(text: string): string {
  return text.split('\n').filter((l) => l.trim() !== '').slice(-2).join(' | ') || '(no output)';
}

export interface RampSummary {
  /** Devices of the largest step that passed, every smaller step having passed too; null when the first failed. */
  maxDevices: number | null;
  /** The first step that failed, and why. */
  firstFailure: { devices: number; failures: string[] } | null;
}

/** Steps run in increasing size and stop at the first failure: the most reached is the last passing one. */
export function summarizeRamp(steps: readonly StepResult[]): RampSummary {
  let maxDevices: number | null = null;
  for (const s of steps) {
    if (!s.ok) return { maxDevices, firstFailure: { devices: s.devices, failures: s.failures } };
    maxDevices = s.devices;
  }
  return { maxDevices, firstFailure: null };
}
