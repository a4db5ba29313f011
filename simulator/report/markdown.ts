/**
 * summary.md: the run as GitHub-flavoured Markdown (a job summary, a PR comment, a wiki page), a pure
 * function of run.json. Text from the run is escaped so a fleet name or an error cannot break a table
 * or inject HTML.
 */
import { collectReportEvents } from './report-events.js';
import type { RunResult } from './run-result.js';
import { describeTarget, formatBytes, formatCount, formatDuration, formatMs, formatMsValue, formatNumber, indeterminateText, metricText, runDurationMs, verdictLine } from './summary.js';

export const markdownReportFileName = 'summary.md';

const sum3 = (v: readonly [number, number, number]): number => v[0] + v[1] + v[2];

/** Plain text for Markdown: no HTML, no emphasis or links, no table breaks, one line. */
export function mdText(text: string): string {
  return text
    .replace(/\r?\n/g, ' ')
    .replace(/[\\`*_[\]|#~]/g, (c) => `\\${c}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

/** A code span for a table cell (`|` escaped, backticks replaced, since a code span cannot hold them safely). */
function mdCode(text: string): string {
  return `\`${text.replace(/\r?\n/g, ' ').replace(/`/g, "'").replace(/\|/g, '\\|')}\``;
}

type Align = 'l' | 'r';

function mdTable(head: readonly string[], rows: readonly (readonly string[])[], align?: readonly Align[]): string[] {
  const al = (i: number): Align => align?.[i] ?? (i === 0 ? 'l' : 'r');
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map((_, i) => (al(i) === 'r' ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

function headline(result: RunResult): string[] {
  const pass = result.verdict === 'pass';
  const lines = [`# ${pass ? '✅' : '❌'} ${mdText(result.scenario.name)}: ${pass ? 'PASS' : 'FAIL'}`, ''];
  if (result.scenario.description !== undefined) lines.push(`_${mdText(result.scenario.description)}_`, '');
  lines.push(`**${mdText(verdictLine(result))}**`, '');
  lines.push(
    `${mdText(result.outcome)} in ${formatDuration(runDurationMs(result))} against ${mdText(describeTarget(result))}; ` +
      `${mdText(result.startedAt)} → ${mdText(result.finishedAt)}, seed ${result.scenario.seed}.`,
  );
  return lines;
}

function keyFigures(result: RunResult): string[] {
  const e2e = result.latency['e2e'];
  const c = result.checker;
  const violations = c === undefined || c.verdict === 'unchecked' ? 'unchecked' : formatCount(c.violations.total);
  return [
    '## Key figures',
    '',
    ...mdTable(
      ['published', 'delivered', 'published/s', 'delivered/s', 'e2e p50', 'e2e p99', 'connect failures', 'reconnects', 'violations'],
      [[
        formatCount(sum3(result.totals.published)), formatCount(sum3(result.totals.delivered)),
        metricText(result, 'throughput.published', formatNumber), metricText(result, 'throughput.delivered', formatNumber),
        formatMs(e2e?.count ? e2e.p50 : null), formatMs(e2e?.count ? e2e.p99 : null),
        formatCount(result.totals.connectFailures), formatCount(result.totals.reconnects), violations,
      ]],
      ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
    'Throughput is the steady-state average per second.',
  ];
}

function warnings(result: RunResult): string[] {
  const lines: string[] = [];
  if (result.generator.saturated) {
    lines.push(`> ⚠️ **Generator saturated**: latencies may be the generator's, not the broker's. ${mdText(result.generator.reasons.join('; ') || 'no reason recorded')}`, '');
  }
  if (result.errors.length > 0) {
    lines.push('> **Errors**', '>');
    for (const e of result.errors) lines.push(`> - ${mdText(e)}`);
    lines.push('');
  }
  // How to read the numbers: a slice, or a merged run with its clock offsets between machines.
  if (result.notes !== undefined && result.notes.length > 0) {
    lines.push('> **Notes**', '>');
    for (const n of result.notes) lines.push(`> - ${mdText(n)}`);
    lines.push('');
  }
  return lines.length > 0 ? lines.slice(0, -1) : lines;
}

function assertions(result: RunResult): string[] {
  if (result.assertions.length === 0) return ['## Assertions', '', 'The scenario has no `expect:` assertions.'];
  return [
    '## Assertions',
    '',
    ...mdTable(
      ['', 'assertion', 'actual', 'message'],
      result.assertions.map((a) => [a.passed ? '✅' : '❌', mdCode(a.source), a.actual === null ? 'no data' : formatNumber(a.actual), a.passed ? '' : mdText(a.message)]),
      ['l', 'l', 'r', 'l'],
    ),
  ];
}

function fleets(result: RunResult): string[] {
  const names = result.scenario.fleets.map((f) => f.name).filter((n) => result.fleets[n] !== undefined);
  for (const n of Object.keys(result.fleets)) if (!names.includes(n)) names.push(n);
  const row = (name: string, c: RunResult['totals'], key: string): string[] => [
    name, formatCount(c.devices), formatCount(c.connects), formatCount(c.reconnects), formatCount(sum3(c.published)),
    formatCount(sum3(c.acknowledged)), formatCount(sum3(c.delivered)), formatCount(sum3(c.duplicates)),
    formatMsValue(result.latency[key]?.p50), formatMsValue(result.latency[key]?.p99),
  ];
  const rows = names.map((n) => row(mdText(n), result.fleets[n]!, `e2e@${n}`));
  rows.push(row('**total**', result.totals, 'e2e'));
  return ['## Fleets', '', ...mdTable(['fleet', 'devices', 'connects', 'reconnects', 'published', 'acked', 'delivered', 'dup', 'e2e p50 ms', 'e2e p99 ms'], rows)];
}

const latencyRows: ReadonlyArray<[string, string]> = [
  ['e2e', 'e2e'], ['e2e.qos0', 'e2e qos0'], ['e2e.qos1', 'e2e qos1'], ['e2e.qos2', 'e2e qos2'],
  ['ack.qos1', 'ack qos1'], ['ack.qos2', 'ack qos2'], ['connect', 'connect'], ['reconnect', 'reconnect'],
];

function latency(result: RunResult): string[] {
  const rows = latencyRows
    .filter(([key]) => result.latency[key] !== undefined)
    .map(([key, name]) => {
      const l = result.latency[key]!;
      return [name, formatCount(l.count), formatMsValue(l.p50), formatMsValue(l.p90), formatMsValue(l.p99), formatMsValue(l.p999), formatMsValue(l.max)];
    });
  if (rows.length === 0) return ['## Latency', '', 'No latency data.'];
  return ['## Latency (ms)', '', ...mdTable(['metric', 'count', 'p50', 'p90', 'p99', 'p99.9', 'max'], rows)];
}

function guarantees(result: RunResult): string[] {
  const c = result.checker;
  if (c === undefined) return ['## Delivery guarantees', '', 'This run.json has no delivery checker result.'];
  const v = c.violations;
  const head = c.verdict === 'pass' ? '✅ PASS: no breach of the MQTT delivery contract'
    : c.verdict === 'fail' ? `❌ FAIL: ${formatCount(v.total)} violation${v.total === 1 ? '' : 's'} (lost ${formatCount(v.byKind.lost)}, duplicated ${formatCount(v.byKind.duplicated)}, reordered ${formatCount(v.byKind.reordered)})`
    : `⚠️ UNCHECKED: ${mdText(c.notes[0] ?? 'no records to judge')}`;
  const rows = c.byQos
    .map((k, q) => [`qos${q}`, formatCount(k.delivered), formatCount(k.lost), formatCount(k.duplicated), formatCount(k.reordered), formatCount(k.expired), formatCount(k.indeterminate), formatCount(v.byQos[q as 0 | 1 | 2])])
    .filter((_, q) => Object.values(c.byQos[q]!).some((n) => n > 0));
  const lines = ['## Delivery guarantees', '', `**${head}**`];
  if (rows.length > 0) lines.push('', ...mdTable(['qos', 'delivered', 'lost', 'duplicated', 'reordered', 'expired', 'indeterminate', 'violations'], rows));
  const why = indeterminateText(c);
  if (why !== null) lines.push('', mdText(why.charAt(0).toUpperCase() + why.slice(1)));
  const shown = c.examples.slice(0, 10);
  if (shown.length > 0) {
    lines.push('', `First violations${v.total > shown.length ? ` (${shown.length} of ${formatCount(v.total)}; more in run.json)` : ''}:`, '');
    for (const e of shown) {
      lines.push(`- ${e.kind} qos${e.qos} ${mdCode(e.publisherClientId)} → ${mdCode(e.group ?? e.subscriberClientId ?? '?')} ${mdCode(e.topic)}${e.seq === null ? '' : ` seq ${e.seq}`}: ${mdText(e.detail)}`);
    }
  }
  return lines;
}

function events(result: RunResult): string[] {
  const chaos = collectReportEvents(result).filter((e) => e.kind !== 'violation');
  if (chaos.length === 0) return [];
  return [
    '## Chaos and reconnect spikes',
    '',
    ...mdTable(
      ['time', 'event', 'detail'],
      chaos.map((e) => [e.endMs !== undefined ? `${formatDuration(e.atMs)} – ${formatDuration(e.endMs)}` : formatDuration(e.atMs), mdText(e.label), mdText(e.detail)]),
      ['l', 'l', 'l'],
    ),
  ];
}

function environment(result: RunResult): string[] {
  const env = result.environment;
  const rows: string[][] = [
    ['mqtt-sim', mdText(result.tool.version)],
    ['node', mdText(`${env.node} on ${env.platform} ${env.arch}`)],
    ['cpus', mdText(`${env.cpus} × ${env.cpuModel}`)],
    ['memory', formatBytes(env.totalMemoryBytes)],
    ['hostname', mdText(env.hostname)],
    ['workers', formatCount(env.workers)],
    ['generator', result.generator.saturated ? '**saturated**' : 'healthy'],
  ];
  if (result.broker !== undefined) rows.push(['broker', `CPU ${result.broker.cpuSeconds.toFixed(1)} s, peak RSS ${formatBytes(result.broker.peakRssBytes)}`]);
  return ['## Environment', '', ...mdTable(['', ''], rows, ['l', 'l'])];
}

export function formatMarkdownReport(result: RunResult): string {
  const sections = [headline(result), warnings(result), keyFigures(result), assertions(result), guarantees(result), fleets(result), latency(result), events(result), environment(result)];
  return `${sections.filter((s) => s.length > 0).map((s) => s.join('\n')).join('\n\n')}\n`;
}
