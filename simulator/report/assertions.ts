/**
 * `expect:` entries: `<metric> <op> <value>`, e.g. `latency.e2e.p99 < 500ms`, `qos2.duplicated == 0`.
 * parseAssertion reads the syntax, metricProblem checks a metric name when the scenario is loaded, and
 * evaluateAssertions judges them as a pure function of a RunResult.
 */
import { closestMatch } from '../../common/edit-distance.js';
import type { BrokerViolationKind, DisconnectCause, FleetCounters } from '../metrics/types.js';
import { brokerViolationKinds, disconnectCauses } from '../metrics/types.js';
import type { AssertionSpec } from '../scenario/types.js';
import { violationKinds, type ViolationKind } from '../verify/checker.js';
import type { AssertionResult, LatencySummary, RunResult } from './run-result.js';

export type MetricUnit = 'ms' | 'count' | 'msg/s' | 'flag';

export interface MetricInfo {
  name: string;
  unit: MetricUnit;
}

export const latencyHistograms = ['e2e', 'e2e.qos0', 'e2e.qos1', 'e2e.qos2', 'ack.qos1', 'ack.qos2', 'connect', 'reconnect'] as const;
export const latencyStats = ['min', 'mean', 'p50', 'p90', 'p95', 'p99', 'p999', 'max', 'count'] as const;
type LatencyStat = (typeof latencyStats)[number];

/** Per-QoS counters: `qos1.delivered` reads totals.delivered[1] (`duplicated` reads duplicates). */
const qosCounters = ['published', 'acknowledged', 'rejected', 'delivered', 'duplicated', 'reordered'] as const;
type QosCounter = (typeof qosCounters)[number];
const qosField: Record<QosCounter, 'published' | 'acknowledged' | 'rejected' | 'delivered' | 'duplicates' | 'reordered'> = {
  published: 'published', acknowledged: 'acknowledged', rejected: 'rejected', delivered: 'delivered', duplicated: 'duplicates', reordered: 'reordered',
};

/**
 * Per-QoS classes from the delivery checker (RunResult.checker, by effective QoS). `duplicated` stays
 * with the counters above: they count duplicates at the QoS of the delivery, which is the effective QoS.
 */
const checkerQosCounters = ['lost', 'expired', 'indeterminate'] as const;
type CheckerQosCounter = (typeof checkerQosCounters)[number];
/** Checker totals: the classes summed over QoS, `violations` (every breach of the MQTT contract) and `violations.<kind>`. */
const checkerTotals = [...checkerQosCounters, 'violations', ...violationKinds.map((k) => `violations.${k}` as const)] as const;

/** Totals (summed over QoS where the counter is per QoS; `brokerViolations` over the kinds of `violations.<kind>`). */
const totalCounters = [
  'published', 'acknowledged', 'rejected', 'delivered', 'duplicated', 'reordered', 'connectAttempts', 'connects', 'connectFailures',
  'reconnects', 'disconnects', 'droppedOffline', 'foreign', 'retainedReceived', 'bytesOut', 'bytesIn', 'brokerViolations',
] as const;
type TotalCounter = (typeof totalCounters)[number];

/** Every counter that exists both for the whole run and per fleet (`fleets.<name>.<counter>`). */
const counterMetrics: string[] = [
  ...totalCounters,
  ...[0, 1, 2].flatMap((q) => qosCounters.map((c) => `qos${q}.${c}`)),
  ...disconnectCauses.map((cause) => `disconnects.${cause}`),
  ...brokerViolationKinds.map((kind) => `violations.${kind}`),
  ...checkerTotals,
  ...[0, 1, 2].flatMap((q) => checkerQosCounters.map((c) => `qos${q}.${c}`)),
];

/** The catalog of metric names (besides `fleets.<fleet>.<counter>`, which takes every counter name). */
export const knownMetrics: readonly MetricInfo[] = [
  ...latencyHistograms.flatMap((h) => latencyStats.map((s): MetricInfo => ({ name: `latency.${h}.${s}`, unit: s === 'count' ? 'count' : 'ms' }))),
  ...counterMetrics.map((name): MetricInfo => ({ name, unit: 'count' })),
  { name: 'throughput.published', unit: 'msg/s' },
  { name: 'throughput.delivered', unit: 'msg/s' },
  { name: 'connected.max', unit: 'count' },
  { name: 'generator.saturated', unit: 'flag' },
];

const byName = new Map(knownMetrics.map((m) => [m.name, m]));
const FLEET_PREFIX = 'fleets.';

/** Splits `fleets.<fleet>.<counter>`; the fleet name may itself contain dots. */
function splitFleetMetric(metric: string): { fleet: string; counter: string } | undefined {
  if (!metric.startsWith(FLEET_PREFIX)) return undefined;
  const rest = metric.slice(FLEET_PREFIX.length);
  let best: { fleet: string; counter: string } | undefined;
  for (const counter of counterMetrics) {
    if (rest.length > counter.length + 1 && rest.endsWith('.' + counter) && (best === undefined || counter.length > best.counter.length)) {
      best = { fleet: rest.slice(0, rest.length - counter.length - 1), counter };
    }
  }
  return best;
}

export function metricInfo(metric: string): MetricInfo | undefined {
  const direct = byName.get(metric);
  if (direct !== undefined) return direct;
  const split = splitFleetMetric(metric);
  return split === undefined ? undefined : { name: metric, unit: 'count' };
}

export function isKnownMetric(name: string): boolean {
  return metricInfo(name) !== undefined;
}

/** The candidate closest to `name`, or undefined when none is reasonably close. */
export function closest(name: string, candidates: readonly string[], maxDistance = Math.max(3, Math.floor(name.length / 3))): string | undefined {
  return closestMatch(name, candidates, maxDistance);
}

/**
 * Null when the metric exists (and, given the scenario's fleet names, names a real fleet); otherwise the
 * reason with the closest known metric.
 */
export function metricProblem(metric: string, fleetNames?: readonly string[]): string | null {
  if (byName.has(metric)) return null;
  const split = splitFleetMetric(metric);
  if (split !== undefined) {
    if (fleetNames === undefined || fleetNames.includes(split.fleet)) return null;
    const near = closest(split.fleet, fleetNames);
    return `unknown fleet ${JSON.stringify(split.fleet)} in ${metric}; ${near !== undefined ? `did you mean fleets.${near}.${split.counter}? ` : ''}the fleets and consumers are ${fleetNames.join(', ')}`;
  }
  if (metric.startsWith(FLEET_PREFIX)) {
    const rest = metric.slice(FLEET_PREFIX.length);
    const fleet = fleetNames?.find((f) => rest.startsWith(f + '.'));
    const counter = fleet === undefined ? rest.slice(rest.indexOf('.') + 1) : rest.slice(fleet.length + 1);
    const near = closest(counter, counterMetrics);
    return `unknown metric ${metric}; fleets.<fleet>.<counter> takes a counter like published, qos1.delivered or disconnects.error${near !== undefined ? ` (did you mean ${near}?)` : ''}`;
  }
  const near = closest(metric, knownMetrics.map((m) => m.name));
  return `unknown metric ${metric}; ${near !== undefined ? `did you mean ${near}? ` : ''}see the metric list in docs/scenarios.md`;
}

export class AssertionSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssertionSyntaxError';
  }
}

const ASSERTION = /^\s*([A-Za-z0-9_.@$-]+)\s*(<=|>=|==|!=|<|>|=)\s*(-?(?:\d+(?:\.\d*)?|\.\d+))\s*(ms|s|m|h|%)?\s*$/;
const unitFactor: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, '%': 0.01 };

/**
 * `<metric> <op> <value>` → AssertionSpec. Durations (ms, s, m, h) become milliseconds, `%` a fraction.
 * Throws AssertionSyntaxError with the fix. Does not check the metric name (see metricProblem).
 */
export function parseAssertion(text: string): AssertionSpec {
  const match = ASSERTION.exec(text);
  if (match === null) {
    throw new AssertionSyntaxError(`expected "<metric> <op> <value>" like "latency.e2e.p99 < 500ms" or "qos2.duplicated == 0" (op is <, <=, >, >=, == or !=), got ${JSON.stringify(text)}`);
  }
  const [, metric, op, number, unit] = match;
  if (op === '=') throw new AssertionSyntaxError(`"${text}": use == for equality, e.g. ${metric} == ${number}${unit ?? ''}`);
  return {
    source: text.trim(),
    metric: metric!,
    op: op as AssertionSpec['op'],
    value: Number(number) * (unit === undefined ? 1 : unitFactor[unit]!),
  };
}

/**
 * Null when the value's unit suits the metric: durations only on latency metrics (a plain number there
 * is milliseconds), no duration on counters.
 */
export function assertionUnitProblem(text: string, metric: string): string | null {
  const info = metricInfo(metric);
  if (info === undefined) return null;
  const unit = ASSERTION.exec(text)?.[4];
  if (unit === undefined || unit === '%') return null;
  if (info.unit === 'ms') return null;
  const what = info.unit === 'msg/s' ? 'is in messages per second' : info.unit === 'flag' ? 'is 0 or 1' : 'is a count';
  return `${metric} ${what}, not a duration; drop the "${unit}"`;
}

// ---- evaluation ----

const noDataReason: Record<string, string> = {
  e2e: 'nothing was delivered',
  'e2e.qos0': 'no QoS 0 message was delivered',
  'e2e.qos1': 'no QoS 1 message was delivered',
  'e2e.qos2': 'no QoS 2 message was delivered',
  'ack.qos1': 'no QoS 1 message was acknowledged',
  'ack.qos2': 'no QoS 2 message was acknowledged',
  connect: 'no device connected',
  reconnect: 'no device reconnected',
};

/** A metric's value in a run, or why there is none (no data in this run; not a metric). */
export type MetricLookup = { value: number } | { noData: string } | { unknown: string };
type Lookup = MetricLookup;

function sum(values: readonly number[]): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}

function counterValue(counters: FleetCounters, counter: string): number | undefined {
  const qos = /^qos([012])\.(.+)$/.exec(counter);
  if (qos !== null) {
    const name = qos[2] as QosCounter;
    if (!qosCounters.includes(name)) return undefined;
    return counters[qosField[name]][Number(qos[1])];
  }
  if (counter.startsWith('disconnects.')) {
    const cause = counter.slice('disconnects.'.length) as DisconnectCause;
    return disconnectCauses.includes(cause) ? (counters.disconnects[cause] ?? 0) : undefined;
  }
  if (counter.startsWith('violations.')) {
    // Counters from before broker violations were counted have none: 0.
    const kind = counter.slice('violations.'.length) as BrokerViolationKind;
    return brokerViolationKinds.includes(kind) ? (counters.violations?.[kind] ?? 0) : undefined;
  }
  const name = counter as TotalCounter;
  switch (name) {
    case 'published':
    case 'acknowledged':
    case 'rejected':
    case 'delivered':
    case 'reordered':
      return sum(counters[name]);
    case 'duplicated':
      return sum(counters.duplicates);
    case 'brokerViolations':
      return counters.violations === undefined ? 0 : sum(Object.values(counters.violations));
    case 'disconnects':
      return sum(Object.values(counters.disconnects));
    case 'connectAttempts':
    case 'connects':
    case 'connectFailures':
    case 'reconnects':
    case 'droppedOffline':
    case 'foreign':
    case 'retainedReceived':
    case 'bytesOut':
    case 'bytesIn':
      return counters[name];
    default:
      return undefined;
  }
}

/**
 * A delivery-checker metric (`lost`, `qos1.indeterminate`, `violations`, ...) for the run or one
 * subscriber fleet; undefined when `counter` is not one.
 */
function checkerValue(result: RunResult, fleet: string | undefined, counter: string): Lookup | undefined {
  const qos = /^qos([012])\.(.+)$/.exec(counter);
  const name = qos === null ? counter : qos[2]!;
  const isChecker = qos === null ? (checkerTotals as readonly string[]).includes(name) : (checkerQosCounters as readonly string[]).includes(name);
  if (!isChecker) return undefined;
  const checker = result.checker;
  if (checker === undefined) return { noData: `no data for ${counter} (this run.json has no delivery checker result)` };
  if (fleet !== undefined && checker.subscribers[fleet] === undefined) return { value: 0 }; // the fleet subscribes to nothing
  const byQos = fleet === undefined ? checker.byQos : checker.subscribers[fleet]!.byQos;
  if (name === 'violations') return { value: fleet === undefined ? checker.violations.total : checker.subscribers[fleet]!.violations };
  if (name.startsWith('violations.')) {
    const kind = name.slice('violations.'.length) as ViolationKind;
    return { value: fleet === undefined ? (checker.violations.byKind[kind] ?? 0) : (checker.subscribers[fleet]!.byKind?.[kind] ?? 0) };
  }
  const cls = name as CheckerQosCounter;
  if (qos !== null) return { value: byQos[Number(qos[1])]![cls] };
  return { value: byQos[0][cls] + byQos[1][cls] + byQos[2][cls] };
}

function lookup(metric: string, result: RunResult): Lookup {
  const latency = /^latency\.(.+)\.([a-z0-9]+)$/.exec(metric);
  if (latency !== null && (latencyHistograms as readonly string[]).includes(latency[1]!) && (latencyStats as readonly string[]).includes(latency[2]!)) {
    const histogram = latency[1]!;
    const summary: LatencySummary | undefined = result.latency[histogram];
    if (summary === undefined || summary.count === 0) {
      if (latency[2] === 'count') return { value: 0 };
      return { noData: `no data for latency.${histogram} (${noDataReason[histogram]})` };
    }
    return { value: summary[latency[2] as LatencyStat] };
  }
  if (metric === 'throughput.published' || metric === 'throughput.delivered') {
    const steady = result.timeline.filter((p) => p.phase === 'steady');
    const points = steady.length > 0 ? steady : result.timeline;
    if (points.length === 0) return { noData: `no data for ${metric} (the run has no timeline)` };
    const field = metric === 'throughput.published' ? 'publishedPerSec' : 'deliveredPerSec';
    return { value: sum(points.map((p) => p[field])) / points.length };
  }
  if (metric === 'connected.max') {
    if (result.timeline.length === 0) return { noData: 'no data for connected.max (the run has no timeline)' };
    return { value: Math.max(...result.timeline.map((p) => p.connected)) };
  }
  if (metric === 'generator.saturated') return { value: result.generator.saturated ? 1 : 0 };
  const fleet = splitFleetMetric(metric);
  if (fleet !== undefined) {
    const counters = result.fleets[fleet.fleet];
    if (counters === undefined) return { unknown: `the run has no fleet named ${JSON.stringify(fleet.fleet)}` };
    const checked = checkerValue(result, fleet.fleet, fleet.counter);
    if (checked !== undefined) return checked;
    const value = counterValue(counters, fleet.counter);
    return value === undefined ? { unknown: `unknown metric ${metric}` } : { value };
  }
  const checked = byName.has(metric) ? checkerValue(result, undefined, metric) : undefined;
  if (checked !== undefined) return checked;
  const value = byName.has(metric) ? counterValue(result.totals, metric) : undefined;
  return value === undefined ? { unknown: metricProblem(metric) ?? `unknown metric ${metric}` } : { value };
}

/** The value of any catalog metric in a run: the resolver behind `expect:` and `mqtt-sim compare`. */
export function resolveMetric(metric: string, result: RunResult): MetricLookup {
  return lookup(metric, result);
}

function compare(actual: number, op: AssertionSpec['op'], expected: number): boolean {
  switch (op) {
    case '<': return actual < expected;
    case '<=': return actual <= expected;
    case '>': return actual > expected;
    case '>=': return actual >= expected;
    case '==': return actual === expected;
    case '!=': return actual !== expected;
  }
}

/** A number for a message: integers as they are, others with 1 decimal (2 below 10). */
export function formatNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return String(Number(n.toFixed(Math.abs(n) < 10 ? 2 : 1)));
}

function withUnit(n: number, unit: MetricUnit): string {
  switch (unit) {
    case 'ms': return `${formatNumber(n)} ms`;
    case 'msg/s': return `${formatNumber(n)} msg/s`;
    default: return formatNumber(n);
  }
}

/** Judges every assertion against the run result; pure, in the given order. */
export function evaluateAssertions(specs: AssertionSpec[], result: RunResult): AssertionResult[] {
  return specs.map((spec): AssertionResult => {
    const found = lookup(spec.metric, result);
    const unit = metricInfo(spec.metric)?.unit ?? 'count';
    const expected = `${spec.op} ${withUnit(spec.value, unit)}`;
    if ('unknown' in found) {
      return { source: spec.source, metric: spec.metric, actual: null, passed: false, message: `${spec.metric} ${expected} ✗: ${found.unknown}` };
    }
    if ('noData' in found) {
      return { source: spec.source, metric: spec.metric, actual: null, passed: false, message: `${spec.metric} ${expected} ✗: ${found.noData}` };
    }
    const passed = compare(found.value, spec.op, spec.value);
    return {
      source: spec.source,
      metric: spec.metric,
      actual: found.value,
      passed,
      message: `${spec.metric} = ${withUnit(found.value, unit)} ${expected} ${passed ? '✓' : '✗'}`,
    };
  });
}
