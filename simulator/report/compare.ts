/**
 * `mqtt-sim compare`: a baseline run against a candidate, metric by metric, for a CI regression gate.
 * Any metric of the assertion catalog (assertions.ts) can be compared; each has a direction (higher
 * latency is worse, lower throughput is worse, lost messages and violations must stay at 0) and a
 * threshold (relative `10%` or absolute `5ms`, `3`), from `--max-regression` or a default. Pure: runs
 * in, a Comparison out, and printers of it.
 */
import { metricInfo, metricProblem, resolveMetric, knownMetrics, type MetricUnit } from './assertions.js';
import type { RunResult } from './run-result.js';
import { formatCount, formatMs, formatNumber, formatTable } from './summary.js';

/** Bad input for compare (not a run.json, unknown metric, bad threshold): exit 2 with this message. */
export class CompareInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CompareInputError';
  }
}

export type Direction = 'lower-is-better' | 'higher-is-better' | 'neutral';

export type Threshold = { kind: 'relative'; fraction: number } | { kind: 'absolute'; value: number };

export interface ThresholdRule {
  /** `*`, a metric name, or a prefix of metric names (`throughput`, `latency.e2e`, `fleets.historian`). */
  key: string;
  threshold: Threshold;
  /** As written: `latency.e2e.p99=10%`. */
  source: string;
}

/** Compared when no metric list is given. */
export const defaultCompareMetrics: readonly string[] = [
  'latency.e2e.p50', 'latency.e2e.p99', 'latency.ack.qos1.p99',
  'throughput.published', 'throughput.delivered',
  'connectFailures', 'qos1.lost', 'qos2.lost', 'qos2.duplicated', 'violations',
];

// ---------------------------------------------------------------- directions and defaults

/** The counter part of a metric: `fleets.a.b.qos1.lost` → `qos1.lost`. */
function counterPart(metric: string, fleetNames: readonly string[] = []): string {
  if (!metric.startsWith('fleets.')) return metric;
  const rest = metric.slice('fleets.'.length);
  const fleet = fleetNames.filter((f) => rest.startsWith(`${f}.`)).sort((a, b) => b.length - a.length)[0];
  if (fleet !== undefined) return rest.slice(fleet.length + 1);
  // Without fleet names: the longest catalog counter the name ends with.
  const counters = knownMetrics.map((m) => m.name).filter((n) => rest.endsWith(`.${n}`)).sort((a, b) => b.length - a.length);
  return counters[0] ?? rest;
}

/** Counters that a healthy run keeps at 0: any increase is a regression by default. */
const mustStayZero = /^(qos[012]\.lost|lost|violations|qos[02]\.duplicated|connectFailures|generator\.saturated)$/;
const lowerIsBetter = /(^|\.)(lost|violations|duplicated|reordered|rejected|expired|indeterminate|connectFailures|reconnects|droppedOffline|foreign)$|^disconnects\.(server|error|timeout|refused|protocol)$|^generator\.saturated$/;
const higherIsBetter = /(^|\.)(delivered|acknowledged|connects)$|^connected\.max$/;

export function metricDirection(metric: string, fleetNames?: readonly string[]): Direction {
  if (metric.startsWith('latency.')) return metric.endsWith('.count') ? 'neutral' : 'lower-is-better';
  if (metric.startsWith('throughput.')) return 'higher-is-better';
  const counter = counterPart(metric, fleetNames);
  if (lowerIsBetter.test(counter)) return 'lower-is-better';
  if (higherIsBetter.test(counter)) return 'higher-is-better';
  return 'neutral';
}

export function defaultThreshold(metric: string, fleetNames?: readonly string[]): Threshold {
  if (mustStayZero.test(counterPart(metric, fleetNames))) return { kind: 'absolute', value: 0 };
  if (metric.startsWith('latency.')) return { kind: 'relative', fraction: 0.2 };
  return { kind: 'relative', fraction: 0.1 };
}

// ---------------------------------------------------------------- parsing

const THRESHOLD = /^(\d+(?:\.\d+)?|\.\d+)\s*(%|ms|s)?$/;

function isKeyKnown(key: string): boolean {
  if (key === '*') return true;
  if (metricInfo(key) !== undefined) return true;
  if (/^fleets\.[^.]/.test(key)) return true;
  return knownMetrics.some((m) => m.name.startsWith(`${key}.`));
}

/**
 * `latency.e2e.p99=10%,throughput=5%` (comma-separated, or several strings): a relative limit in %,
 * an absolute one in ms or s (latency metrics) or in the metric's unit (a plain number).
 */
export function parseThresholds(input: string | readonly string[]): ThresholdRule[] {
  const parts = (typeof input === 'string' ? [input] : input).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  return parts.map((part): ThresholdRule => {
    const eq = part.indexOf('=');
    const key = eq < 0 ? '' : part.slice(0, eq).trim();
    const value = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (key === '' || value === '') {
      throw new CompareInputError(`--max-regression: expected METRIC=LIMIT like latency.e2e.p99=10% or throughput=5%, got ${JSON.stringify(part)}`);
    }
    if (!isKeyKnown(key)) {
      throw new CompareInputError(`--max-regression ${part}: ${metricProblem(key) ?? `unknown metric ${key}`} (a prefix such as latency, throughput or qos1, or * for every metric, also works)`);
    }
    const m = THRESHOLD.exec(value);
    if (m === null) {
      throw new CompareInputError(`--max-regression ${part}: expected a limit like 10% (relative), 5ms or 2s (latency), or a plain number (absolute, in the metric's unit), got ${JSON.stringify(value)}`);
    }
    const n = Number(m[1]);
    const unit = m[2];
    if (unit === '%') return { key, threshold: { kind: 'relative', fraction: n / 100 }, source: part };
    if (unit === 'ms' || unit === 's') {
      const info = metricInfo(key);
      const isLatency = key.startsWith('latency') || key === '*';
      if ((info !== undefined && info.unit !== 'ms') || (info === undefined && !isLatency)) {
        throw new CompareInputError(`--max-regression ${part}: ${key} is not a latency, so its limit cannot be a duration; use a % or a plain number`);
      }
      return { key, threshold: { kind: 'absolute', value: unit === 's' ? n * 1000 : n }, source: part };
    }
    return { key, threshold: { kind: 'absolute', value: n }, source: part };
  });
}

/** The rule for a metric: an exact key, else the longest prefix, else `*`. */
function ruleFor(metric: string, rules: readonly ThresholdRule[]): ThresholdRule | undefined {
  let best: ThresholdRule | undefined;
  let bestLength = -1;
  for (const r of rules) {
    const length = r.key === metric ? Number.MAX_SAFE_INTEGER : metric.startsWith(`${r.key}.`) ? r.key.length : r.key === '*' ? 0 : -1;
    if (length >= bestLength && length >= 0) {
      best = r;
      bestLength = length;
    }
  }
  return best;
}

// ---------------------------------------------------------------- comparing

export type CompareStatus = 'regressed' | 'worse' | 'same' | 'better' | 'changed' | 'new' | 'no data';

export interface MetricComparison {
  metric: string;
  unit: MetricUnit;
  direction: Direction;
  baseline: number | null;
  candidate: number | null;
  /** (candidate - baseline) / baseline; null when either is missing or the baseline is 0. */
  change: number | null;
  threshold: Threshold;
  /** `default` or the --max-regression entry that set it. */
  thresholdSource: string;
  status: CompareStatus;
  /** Why it regressed, or why there is no value. */
  reason: string;
}

export interface RunIdentity {
  label: string;
  scenario: string;
  startedAt: string;
  hostname: string;
  cpus: string;
  verdict: RunResult['verdict'];
}

export interface Comparison {
  baseline: RunIdentity;
  candidate: RunIdentity;
  rows: MetricComparison[];
  regressions: MetricComparison[];
  notes: string[];
}

export interface CompareOptions {
  /** Metrics to compare (default: defaultCompareMetrics); exact metric names of --max-regression are added. */
  metrics?: readonly string[];
  thresholds?: readonly ThresholdRule[];
  /** How the runs are called in the output (their paths). */
  labels?: { baseline: string; candidate: string };
}

function identity(result: RunResult, label: string): RunIdentity {
  const env = result.environment;
  return { label, scenario: result.scenario.name, startedAt: result.startedAt, hostname: env.hostname, cpus: `${env.cpus} × ${env.cpuModel}`, verdict: result.verdict };
}

function valueOf(metric: string, result: RunResult): { value: number | null; why: string } {
  const found = resolveMetric(metric, result);
  if ('value' in found) return { value: found.value, why: '' };
  return { value: null, why: 'noData' in found ? found.noData : found.unknown };
}

const EPSILON = 1e-9;

function judge(direction: Direction, threshold: Threshold, base: number, cand: number): { status: CompareStatus; reason: string } {
  if (Math.abs(cand - base) <= EPSILON * Math.max(1, Math.abs(base))) return { status: 'same', reason: '' };
  if (direction === 'neutral') return { status: 'changed', reason: '' };
  // How much worse the candidate is, in the metric's unit (negative: better).
  const worseBy = direction === 'lower-is-better' ? cand - base : base - cand;
  if (worseBy < 0) return { status: 'better', reason: '' };
  if (threshold.kind === 'absolute') {
    if (worseBy > threshold.value + EPSILON) {
      return { status: 'regressed', reason: threshold.value === 0 ? `${direction === 'lower-is-better' ? 'rose' : 'fell'} from ${formatNumber(base)} to ${formatNumber(cand)}` : `worse by ${formatNumber(worseBy)}, more than ${formatNumber(threshold.value)}` };
    }
    return { status: 'worse', reason: '' };
  }
  if (base === 0) return { status: 'regressed', reason: `rose from 0 to ${formatNumber(cand)}` };
  const fraction = worseBy / Math.abs(base);
  if (fraction > threshold.fraction + EPSILON) return { status: 'regressed', reason: `${formatPercentChange(fraction * (direction === 'lower-is-better' ? 1 : -1))}, beyond ${formatNumber(threshold.fraction * 100)}%` };
  return { status: 'worse', reason: '' };
}

/** Compares two runs; throws CompareInputError for an unknown metric. */
export function compareRuns(baseline: RunResult, candidate: RunResult, options: CompareOptions = {}): Comparison {
  const rules = options.thresholds ?? [];
  const fleetNames = [...new Set([...Object.keys(baseline.fleets), ...Object.keys(candidate.fleets)])];
  const metrics = [...(options.metrics ?? defaultCompareMetrics)];
  for (const r of rules) if (metricInfo(r.key) !== undefined && !metrics.includes(r.key)) metrics.push(r.key);
  for (const m of metrics) {
    const problem = metricProblem(m, fleetNames);
    if (problem !== null) throw new CompareInputError(problem);
  }
  const rows = metrics.map((metric): MetricComparison => {
    const direction = metricDirection(metric, fleetNames);
    const rule = ruleFor(metric, rules);
    const threshold = rule?.threshold ?? defaultThreshold(metric, fleetNames);
    const b = valueOf(metric, baseline);
    const c = valueOf(metric, candidate);
    const row = {
      metric, unit: metricInfo(metric)?.unit ?? 'count', direction, baseline: b.value, candidate: c.value, change: null as number | null,
      threshold, thresholdSource: rule?.source ?? 'default',
    };
    if (b.value === null && c.value === null) return { ...row, status: 'no data', reason: c.why };
    if (b.value === null) return { ...row, status: 'new', reason: `baseline: ${b.why}` };
    if (c.value === null) {
      return direction === 'neutral' ? { ...row, status: 'no data', reason: c.why } : { ...row, status: 'regressed', reason: `candidate: ${c.why}` };
    }
    const change = b.value === 0 ? null : (c.value - b.value) / Math.abs(b.value);
    return { ...row, change, ...judge(direction, threshold, b.value, c.value) };
  });
  const notes: string[] = [];
  if (baseline.scenario.name !== candidate.scenario.name) notes.push(`the runs are of different scenarios (${baseline.scenario.name} vs ${candidate.scenario.name}); the comparison may mean little`);
  const be = baseline.environment;
  const ce = candidate.environment;
  if (be.cpuModel !== ce.cpuModel || be.cpus !== ce.cpus) {
    notes.push(`the runs are from different machines (${be.cpus} × ${be.cpuModel} vs ${ce.cpus} × ${ce.cpuModel}): absolute latency and throughput differ between machines; use generous thresholds or a baseline from the same runner type`);
  }
  if (candidate.generator.saturated && !baseline.generator.saturated) notes.push('the candidate generator was saturated: its latencies may be the generator\'s, not the broker\'s');
  if (candidate.outcome !== 'completed') notes.push(`the candidate run ended ${candidate.outcome}`);
  if (candidate.verdict === 'fail') notes.push('the candidate run failed its own verdict (see its summary); compare judges only the metrics above');
  return { baseline: identity(baseline, options.labels?.baseline ?? 'baseline'), candidate: identity(candidate, options.labels?.candidate ?? 'candidate'), rows, regressions: rows.filter((r) => r.status === 'regressed'), notes };
}

// ---------------------------------------------------------------- printing

function formatValue(value: number | null, unit: MetricUnit): string {
  if (value === null) return '-';
  if (unit === 'ms') return formatMs(value);
  if (unit === 'msg/s') return `${value >= 100 ? formatCount(value) : formatNumber(value)}/s`;
  return Number.isInteger(value) ? formatCount(value) : formatNumber(value);
}

function formatPercentChange(fraction: number): string {
  const pct = fraction * 100;
  const text = Math.abs(pct) >= 100 ? pct.toFixed(0) : pct.toFixed(1);
  return `${pct > 0 ? '+' : pct < 0 ? '' : '±'}${text}%`;
}

function changeText(r: MetricComparison): string {
  if (r.baseline === null || r.candidate === null) return '-';
  if (r.change !== null) return formatPercentChange(r.change);
  return r.candidate === r.baseline ? '±0.0%' : 'from 0';
}

function thresholdText(r: MetricComparison): string {
  if (r.direction === 'neutral') return '-';
  const t = r.threshold;
  if (t.kind === 'relative') return `${formatNumber(t.fraction * 100)}%`;
  if (t.value === 0) return r.direction === 'lower-is-better' ? 'any rise' : 'any fall';
  return r.unit === 'ms' ? formatMs(t.value) : formatNumber(t.value);
}

function statusText(r: MetricComparison): string {
  switch (r.status) {
    case 'regressed': return 'REGRESSED';
    case 'worse': return 'ok (worse)';
    case 'better': return 'ok (better)';
    case 'same': return 'ok';
    case 'changed': return 'changed';
    case 'new': return 'new';
    case 'no data': return 'no data';
  }
}

function cells(r: MetricComparison): string[] {
  return [r.metric, formatValue(r.baseline, r.unit), formatValue(r.candidate, r.unit), changeText(r), thresholdText(r), statusText(r)];
}

const tableHead = ['metric', 'baseline', 'candidate', 'change', 'threshold', 'status'];

/** The verdict line: OK, or REGRESSED with each metric and why. */
export function comparisonVerdict(c: Comparison): string {
  if (c.regressions.length === 0) return `OK: no metric regressed beyond its threshold (${c.rows.length} compared)`;
  return `REGRESSED: ${c.regressions.length} of ${c.rows.length} metrics beyond their threshold: ${c.regressions.map((r) => `${r.metric} (${r.reason})`).join('; ')}`;
}

function runLine(role: string, r: RunIdentity): string {
  return `${role} ${r.label}: ${r.scenario}, ${r.startedAt} on ${r.hostname} (${r.cpus}), verdict ${r.verdict}`;
}

export function formatComparisonTable(c: Comparison): string {
  const lines = [
    runLine('baseline ', c.baseline),
    runLine('candidate', c.candidate),
    '',
    ...formatTable(tableHead, c.rows.map(cells), ['left', 'right', 'right', 'right', 'right', 'left']),
    '',
  ];
  if (c.notes.length > 0) lines.push(...c.notes.map((n) => `note: ${n}`), '');
  lines.push(comparisonVerdict(c));
  return `${lines.join('\n')}\n`;
}

const mdCell = (s: string): string => s.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function formatComparisonMarkdown(c: Comparison): string {
  const ok = c.regressions.length === 0;
  const lines = [
    `## ${ok ? '✅' : '❌'} mqtt-sim compare: ${ok ? 'no regression' : `${c.regressions.length} regression${c.regressions.length === 1 ? '' : 's'}`}`,
    '',
    `- baseline: \`${mdCell(c.baseline.label)}\` (${mdCell(c.baseline.scenario)}, ${mdCell(c.baseline.startedAt)}, ${mdCell(c.baseline.cpus)})`,
    `- candidate: \`${mdCell(c.candidate.label)}\` (${mdCell(c.candidate.scenario)}, ${mdCell(c.candidate.startedAt)}, ${mdCell(c.candidate.cpus)})`,
    '',
    `| ${tableHead.join(' | ')} |`,
    '| --- | ---: | ---: | ---: | ---: | --- |',
    ...c.rows.map((r) => {
      const [metric, ...rest] = cells(r);
      const status = r.status === 'regressed' ? `**${statusText(r)}** ${mdCell(r.reason)}` : statusText(r);
      return `| \`${mdCell(metric!)}\` | ${rest.slice(0, 4).map(mdCell).join(' | ')} | ${status} |`;
    }),
    '',
  ];
  if (c.notes.length > 0) lines.push(...c.notes.map((n) => `> ${mdCell(n)}`), '');
  lines.push(`**${mdCell(comparisonVerdict(c))}**`);
  return `${lines.join('\n')}\n`;
}

export function formatComparisonJson(c: Comparison): string {
  return `${JSON.stringify({ regressed: c.regressions.length > 0, verdict: comparisonVerdict(c), baseline: c.baseline, candidate: c.candidate, metrics: c.rows, notes: c.notes }, null, 2)}\n`;
}
