/**
 * The end-of-run summary as plain text: a pure function of run.json (no colors, no I/O), so the same
 * text is printed after a run, by `mqtt-sim report`, and pinned in tests. The number formatters are
 * shared with the plain progress reporter.
 */
import type { FleetCounters } from '../metrics/types.js';
import { violationKinds, type CheckerResult } from '../verify/checker.js';
import type { AssertionResult, LatencySummary, RunResult } from './run-result.js';
import { resolveMetric } from './assertions.js';

// ---------------------------------------------------------------- number formatting

/** An integer with thousands separators, independent of the locale: 1234567 → "1,234,567". */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const sign = n < 0 ? '-' : '';
  return sign + Math.round(Math.abs(n)).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Any number: integers with separators, fractions with two decimals at most ("612.35", "0.5"). */
export function formatNumber(n: number): string {
  if (Number.isInteger(n)) return formatCount(n);
  const [whole, fraction] = Math.abs(n).toFixed(2).split('.') as [string, string];
  const trimmed = fraction.replace(/0+$/, '');
  return `${n < 0 ? '-' : ''}${formatCount(Number(whole))}${trimmed === '' ? '' : `.${trimmed}`}`;
}

/** Milliseconds without the unit, precision by magnitude: "0.42", "3.1", "18", "1,204"; "-" for no data. */
export function formatMsValue(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1) return ms.toFixed(2);
  if (ms < 10) return ms.toFixed(1);
  return formatCount(ms);
}

/** "3.1 ms"; "-" for no data. */
export function formatMs(ms: number | null | undefined): string {
  const value = formatMsValue(ms);
  return value === '-' ? value : `${value} ms`;
}

/** Binary units with one decimal: "85.2 MiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${formatCount(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** "850 ms", "12.3 s", "1m 05s", "1h 02m 03s". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}h ${String(m).padStart(2, '0')}m ${s}s` : `${m}m ${s}s`;
}

/** A fraction as a percentage without decimals: 0.193 → "19%". */
export function formatPercent(fraction: number): string {
  return `${Math.round(fraction * 100)}%`;
}

// ---------------------------------------------------------------- tables

export type Align = 'left' | 'right';

/** Fixed-width columns separated by two spaces; the first column left-aligned unless `align` says otherwise. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[], align?: readonly Align[], indent = '  '): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const alignOf = (i: number): Align => align?.[i] ?? (i === 0 ? 'left' : 'right');
  const line = (cells: readonly string[]): string =>
    indent + widths.map((w, i) => (alignOf(i) === 'left' ? (cells[i] ?? '').padEnd(w) : (cells[i] ?? '').padStart(w))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

// ---------------------------------------------------------------- the summary

const sum3 = (v: readonly [number, number, number]): number => v[0] + v[1] + v[2];

function protocolName(version: 4 | 5): string {
  return version === 5 ? 'MQTT 5.0' : 'MQTT 3.1.1';
}

/** The target as one line: URLs and protocol, and the broker version when it was embedded. */
export function describeTarget(result: RunResult): string {
  const urls = result.target.urls.join(', ');
  const protocol = protocolName(result.target.protocolVersion);
  if (!result.target.embedded) return `${urls} (${protocol})`;
  const version = result.broker?.version !== undefined ? ` ${result.broker.version}` : '';
  return `embedded reference broker${version}, ${urls} (${protocol})`;
}

/** Wall time of the whole run (prepare and drain included), 0 when the timestamps are unusable. */
export function runDurationMs(result: RunResult): number {
  const ms = Date.parse(result.finishedAt) - Date.parse(result.startedAt);
  return Number.isFinite(ms) && ms >= 0 ? ms : 0;
}

/** A metric from the assertion catalog, formatted, or '-' when the run has no data for it. */
export function metricText(result: RunResult, name: string, format: (n: number) => string): string {
  const found = resolveMetric(name, result);
  return 'value' in found ? format(found.value) : '-';
}

function header(result: RunResult): string[] {
  const env = result.environment;
  return [
    `mqtt-sim run "${result.scenario.name}": ${result.outcome} in ${formatDuration(runDurationMs(result))}`,
    `  target     ${describeTarget(result)}`,
    `  period     ${result.startedAt} → ${result.finishedAt}`,
    `  generator  ${formatCount(env.workers)} worker${env.workers === 1 ? '' : 's'}, node ${env.node} on ${env.platform} ${env.arch}, ` +
      `${env.cpus} cpus (${env.cpuModel}), seed ${result.scenario.seed}`,
  ];
}

function fleetRow(name: string, c: FleetCounters, e2e: LatencySummary | undefined): string[] {
  return [
    name,
    formatCount(c.devices),
    formatCount(c.connects),
    formatCount(c.reconnects),
    formatCount(c.published[0]),
    formatCount(c.published[1]),
    formatCount(c.published[2]),
    formatCount(sum3(c.acknowledged)),
    formatCount(sum3(c.delivered)),
    formatCount(sum3(c.duplicates)),
    formatMsValue(e2e?.p50),
    formatMsValue(e2e?.p99),
  ];
}

function fleetTable(result: RunResult): string[] {
  const names = result.scenario.fleets.map((f) => f.name).filter((n) => result.fleets[n] !== undefined);
  // Fleets the result has but the scenario does not list (should not happen) still show, after the others.
  for (const n of Object.keys(result.fleets)) if (!names.includes(n)) names.push(n);
  const rows = names.map((n) => fleetRow(n, result.fleets[n]!, result.latency[`e2e@${n}`]));
  rows.push(fleetRow('total', result.totals, result.latency['e2e']));
  const head = ['fleet', 'devices', 'connects', 'reconnects', 'pub q0', 'pub q1', 'pub q2', 'acked', 'delivered', 'dup', 'e2e p50', 'e2e p99'];
  return ['Fleets (latency in ms)', ...formatTable(head, rows)];
}

const latencyRows: ReadonlyArray<[key: string, label: string]> = [
  ['e2e', 'e2e'],
  ['e2e.qos0', 'e2e qos0'],
  ['e2e.qos1', 'e2e qos1'],
  ['e2e.qos2', 'e2e qos2'],
  ['ack.qos1', 'ack qos1'],
  ['ack.qos2', 'ack qos2'],
  ['connect', 'connect'],
  ['reconnect', 'reconnect'],
];

function latencyTable(result: RunResult): string[] {
  const rows = latencyRows
    .filter(([key]) => result.latency[key] !== undefined)
    .map(([key, label]) => {
      const l = result.latency[key]!;
      return [label, formatCount(l.count), formatMsValue(l.p50), formatMsValue(l.p90), formatMsValue(l.p99), formatMsValue(l.max)];
    });
  if (rows.length === 0) return ['Latency: no data'];
  return ['Latency (ms)', ...formatTable(['metric', 'count', 'p50', 'p90', 'p99', 'max'], rows)];
}

/** The label column of the one-line health sections. */
const label = (name: string): string => name.padEnd(13);

function generatorLine(result: RunResult): string {
  const g = result.generator;
  const figures = `event-loop delay max ${formatMs(g.loopDelayMaxMs)}, schedule slip p99 ${formatMs(g.scheduleSlipP99Ms)}`;
  if (!g.saturated) return `${label('Generator')}healthy: ${figures}`;
  const reasons = g.reasons.length > 0 ? g.reasons.join('; ') : 'no reason recorded';
  return `${label('Generator')}SATURATED, latencies may be the generator's, not the broker's: ${reasons} (${figures})`;
}

function brokerLine(result: RunResult): string | null {
  const b = result.broker;
  if (b === undefined) return null;
  const seconds = runDurationMs(result) / 1000;
  const average = seconds > 0 ? ` (${formatPercent(b.cpuSeconds / seconds)} of one core on average)` : '';
  return `${label('Broker')}pid ${b.pid}, CPU ${b.cpuSeconds.toFixed(1)} s${average}, peak RSS ${formatBytes(b.peakRssBytes)}`;
}

function disconnectsLine(result: RunResult): string | null {
  const causes = Object.entries(result.disconnectCauses).filter(([, n]) => n > 0);
  if (causes.length === 0) return null;
  return `${label('Disconnects')}${causes.map(([cause, n]) => `${cause} ${formatCount(n)}`).join(', ')}`;
}

/**
 * What the checker's indeterminate messages are made of, in words, or null when there are none (or the
 * run.json predates the breakdown). Shared by the summary, summary.md and report.html.
 */
export function indeterminateText(c: CheckerResult): string | null {
  const causes = c.indeterminateCauses;
  if (causes === undefined) return null;
  const unacked = causes.reduce((n, k) => n + k.unacknowledged, 0);
  const boundary = causes.reduce((n, k) => n + k.boundary, 0);
  if (unacked + boundary === 0) return null;
  const parts: string[] = [];
  if (unacked > 0) parts.push(`${formatCount(unacked)} QoS 1/2 publish${unacked === 1 ? '' : 'es'} the broker never acknowledged (still with the publisher at the end, or sent as its link failed): not owed to anyone`);
  if (boundary > 0) parts.push(`${formatCount(boundary)} sent while a subscriber was subscribing, losing its link or the run was ending: owed or not, the records cannot tell`);
  return `indeterminate: ${parts.join('; ')}`;
}

/** Examples printed under the guarantees table (run.json keeps more). */
const SUMMARY_EXAMPLES = 5;

/** The delivery checker's verdict, its classes per effective QoS and the first violations; none for an older run.json. */
function guaranteeLines(result: RunResult): string[] | null {
  const c = result.checker;
  if (c === undefined) return null;
  const v = c.violations;
  const kinds = violationKinds.filter((k) => (v.byKind[k] ?? 0) > 0).map((k) => `${k} ${formatCount(v.byKind[k])}`);
  const how = `checked in ${formatMs(c.checkMs)}, margin ${formatDuration(c.marginMs)}`;
  const head =
    c.verdict === 'pass' ? `PASS: no breach of the MQTT delivery contract (${how})`
    : c.verdict === 'fail' ? `FAIL: ${formatCount(v.total)} violation${v.total === 1 ? '' : 's'} (${kinds.join(', ')}; ${how})`
    : `UNCHECKED: ${c.notes[0] ?? 'no records to judge'}`;
  const rows = c.byQos
    .map((k, q) => [`qos${q}`, formatCount(k.delivered), formatCount(k.lost), formatCount(k.duplicated), formatCount(k.reordered), formatCount(k.expired), formatCount(k.indeterminate)])
    .filter((_, q) => Object.values(c.byQos[q]!).some((n) => n > 0));
  const lines = [`${label('Guarantees')}${head}`];
  if (rows.length > 0) lines.push(...formatTable(['qos', 'delivered', 'lost', 'dup', 'reordered', 'expired', 'indeterminate'], rows));
  const why = indeterminateText(c);
  if (why !== null) lines.push(`  ${why}`);
  const sj = c.sessions;
  if (sj !== undefined && sj.owedReconnects > 0) {
    lines.push(`  persistent sessions: ${formatCount(sj.owedReconnects)} reconnect${sj.owedReconnects === 1 ? '' : 's'} owed the session, ${formatCount(sj.resumed)} resumed, ${formatCount(sj.forgotten)} forgotten by the broker`);
  }
  const rj = c.retained;
  if (rj !== undefined && rj.subscribes > 0) {
    lines.push(`  retained: ${formatCount(rj.subscribes)} subscribe${rj.subscribes === 1 ? '' : 's'} to retained topics, ${formatCount(rj.replays)} replays, ${formatCount(rj.judged)} topic values judged (${formatCount(rj.missing)} missing, ${formatCount(rj.stale)} stale${rj.unjudged > 0 ? `, ${formatCount(rj.unjudged)} not judged: connection lost right after the SUBACK` : ''})`);
  }
  const shown = c.examples.slice(0, SUMMARY_EXAMPLES);
  if (shown.length > 0) {
    lines.push(`  first violations${v.total > shown.length ? ` (${shown.length} of ${formatCount(v.total)}; more in run.json)` : ''}:`);
    for (const e of shown) {
      const to = e.group ?? e.subscriberClientId ?? '?';
      if (e.kind === 'session-lost') lines.push(`    ${e.kind} ${to}: ${e.detail}`);
      else lines.push(`    ${e.kind} qos${e.qos} ${e.publisherClientId} → ${to} ${e.topic}${e.seq === null ? '' : ` seq ${e.seq}`}: ${e.detail}`);
    }
  }
  return lines;
}

/** Protocol violations by the broker seen by the clients, with the first examples; none for an older run.json. */
function brokerViolationLines(result: RunResult): string[] | null {
  const b = result.brokerViolations;
  if (b === undefined) return null;
  if (b.total === 0) return [`${label('Protocol')}PASS: the clients saw no protocol violation by the broker`];
  const kinds = Object.entries(b.byKind).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${formatCount(n)}`);
  const lines = [`${label('Protocol')}FAIL: ${formatCount(b.total)} broker violation${b.total === 1 ? '' : 's'} seen by the clients (${kinds.join(', ')})`];
  const shown = b.examples.slice(0, SUMMARY_EXAMPLES);
  if (shown.length > 0) {
    lines.push(`  first violations${b.total > shown.length ? ` (${shown.length} of ${formatCount(b.total)}; more in run.json)` : ''}:`);
    for (const e of shown) lines.push(`    ${e.kind} ${e.clientId} at ${formatDuration(Math.max(0, e.atMs))}: ${e.detail}`);
  }
  return lines;
}

function assertionLines(assertions: readonly AssertionResult[]): string[] {
  if (assertions.length === 0) return ['Assertions: none'];
  const width = Math.max(...assertions.map((a) => a.source.length));
  return [
    'Assertions',
    ...assertions.map((a) => {
      const actual = a.actual === null ? 'no data' : formatNumber(a.actual);
      const line = `  ${a.passed ? '✓' : '✗'} ${a.source.padEnd(width)}  actual ${actual}`;
      return !a.passed && a.message !== '' ? `${line}  (${a.message})` : line;
    }),
  ];
}

/** `PASS`, or `FAIL: ` with why: failed assertions and/or a run that did not complete. */
export function verdictLine(result: RunResult): string {
  const failed = result.assertions.filter((a) => !a.passed).length;
  const reasons: string[] = [];
  if (failed > 0) reasons.push(`${failed} of ${result.assertions.length} assertions failed`);
  if (result.outcome !== 'completed') reasons.push(`the run ended ${result.outcome}`);
  const broker = result.brokerViolations?.total ?? 0;
  if (broker > 0) reasons.push(`${formatCount(broker)} protocol violation${broker === 1 ? '' : 's'} by the broker`);
  if (result.verdict === 'pass' && reasons.length === 0) return 'PASS';
  return `FAIL: ${reasons.length > 0 ? reasons.join(', ') : 'see errors above'}`;
}

/** The first few errors; under network faults most are expected disconnects, and run.json keeps them all. */
const SUMMARY_ERRORS = 5;

function errorLines(errors: readonly string[]): string[] {
  const lines = ['Errors', ...errors.slice(0, SUMMARY_ERRORS).map((e) => `  ${e}`)];
  if (errors.length > SUMMARY_ERRORS) lines.push(`  … and ${errors.length - SUMMARY_ERRORS} more in run.json (errors)`);
  return lines;
}

export function formatSummary(result: RunResult): string {
  const sections: string[][] = [header(result), fleetTable(result), latencyTable(result)];
  const guarantees = guaranteeLines(result);
  if (guarantees !== null) sections.push(guarantees);
  const protocol = brokerViolationLines(result);
  if (protocol !== null) sections.push(protocol);
  const health = [generatorLine(result), brokerLine(result), disconnectsLine(result)].filter((l): l is string => l !== null);
  sections.push(health);
  if (result.errors.length > 0) sections.push(errorLines(result.errors));
  if (result.notes !== undefined && result.notes.length > 0) sections.push(['Notes', ...result.notes.map((n) => `  ${n}`)]);
  sections.push(assertionLines(result.assertions));
  sections.push([verdictLine(result)]);
  return `${sections.map((s) => s.join('\n')).join('\n\n')}\n`;
}
