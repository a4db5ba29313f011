/**
 * report.html: one self-contained page per run, a pure function of run.json. Inline CSS and inline SVG
 * charts drawn here (svg-chart.ts); no script, font, image or stylesheet is fetched, so the file can be
 * opened from a CI artifact offline. Every text from the run is escaped.
 */
import { escapeMarkup as esc } from './escape.js';
import { decadeLabel, percentileCurve, type PercentileCurve } from './percentile-curves.js';
import { collectReportEvents, type ReportEvent } from './report-events.js';
import type { LatencySummary, RunResult } from './run-result.js';
import {
  describeTarget, formatBytes, formatCount, formatDuration, formatMs, formatMsValue, formatNumber, formatPercent, indeterminateText, metricText, runDurationMs, verdictLine,
} from './summary.js';
import { lineChart, type ChartBand, type ChartMarker, type ChartSeries } from './svg-chart.js';

export const htmlReportFileName = 'report.html';

type Cell = string | { text: string; className?: string; title?: string };

const sum3 = (v: readonly [number, number, number]): number => v[0] + v[1] + v[2];

function cell(c: Cell, tag: 'td' | 'th', numeric: boolean): string {
  const text = typeof c === 'string' ? c : c.text;
  const classes = [numeric ? 'num' : '', typeof c === 'string' ? '' : (c.className ?? '')].filter((x) => x !== '').join(' ');
  const title = typeof c !== 'string' && c.title !== undefined ? ` title="${esc(c.title)}"` : '';
  return `<${tag}${classes === '' ? '' : ` class="${classes}"`}${title}>${esc(text)}</${tag}>`;
}

/** A table; columns listed in `textColumns` are left-aligned, the others are numbers (right-aligned). */
function table(head: readonly string[], rows: readonly (readonly Cell[])[], textColumns: readonly number[] = [0]): string {
  const numeric = (i: number): boolean => !textColumns.includes(i);
  return [
    '<div class="table-wrap"><table>',
    `<thead><tr>${head.map((h, i) => cell(h, 'th', numeric(i))).join('')}</tr></thead>`,
    `<tbody>${rows.map((r) => `<tr>${r.map((c, i) => cell(c, 'td', numeric(i))).join('')}</tr>`).join('\n')}</tbody>`,
    '</table></div>',
  ].join('\n');
}

function keyValueTable(rows: ReadonlyArray<readonly [string, string]>): string {
  return `<table class="kv"><tbody>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('\n')}</tbody></table>`;
}

function section(id: string, title: string, body: string, note?: string): string {
  return `<section id="${id}">\n<h2>${esc(title)}</h2>\n${note === undefined ? '' : `<p class="note">${esc(note)}</p>\n`}${body}\n</section>`;
}

// ---------------------------------------------------------------- header and key figures

/** Messages per second: whole numbers from 100 up, two decimals at most below. */
const formatRate = (n: number): string => (n >= 100 ? formatCount(n) : formatNumber(n));

function header(result: RunResult): string {
  const pass = result.verdict === 'pass';
  const description = result.scenario.description === undefined ? '' : `<p class="description">${esc(result.scenario.description)}</p>`;
  return [
    '<header>',
    `<div class="title-row"><h1>${esc(result.scenario.name)}</h1><span class="verdict ${pass ? 'pass' : 'fail'}">${pass ? 'PASS' : 'FAIL'}</span></div>`,
    description,
    `<p class="verdict-line">${esc(verdictLine(result))}</p>`,
    `<p class="meta">${esc(`${result.outcome} in ${formatDuration(runDurationMs(result))} · ${result.startedAt} → ${result.finishedAt} · ${describeTarget(result)} · seed ${result.scenario.seed}`)}</p>`,
    '</header>',
  ].join('\n');
}

function card(label: string, value: string, className = ''): string {
  return `<div class="card${className === '' ? '' : ` ${className}`}"><div class="card-value">${esc(value)}</div><div class="card-label">${esc(label)}</div></div>`;
}

function keyFigures(result: RunResult): string {
  const e2e = result.latency['e2e'];
  const violations = result.checker?.violations.total;
  const checkerVerdict = result.checker?.verdict;
  const cards = [
    card('published', formatCount(sum3(result.totals.published))),
    card('delivered', formatCount(sum3(result.totals.delivered))),
    card('published/s (steady)', metricText(result, 'throughput.published', formatRate)),
    card('delivered/s (steady)', metricText(result, 'throughput.delivered', formatRate)),
    card('e2e p50', formatMs(e2e?.count ? e2e.p50 : null)),
    card('e2e p99', formatMs(e2e?.count ? e2e.p99 : null)),
    card('connect failures', formatCount(result.totals.connectFailures), result.totals.connectFailures > 0 ? 'warn' : ''),
    card('reconnects', formatCount(result.totals.reconnects)),
    card('violations', violations === undefined || checkerVerdict === 'unchecked' ? 'unchecked' : formatCount(violations), violations !== undefined && violations > 0 ? 'bad' : ''),
  ];
  return `<div class="cards">${cards.join('')}</div>`;
}

function callouts(result: RunResult): string {
  const out: string[] = [];
  if (result.generator.saturated) {
    const reasons = result.generator.reasons.length > 0 ? result.generator.reasons.join('; ') : 'no reason recorded';
    out.push(`<div class="callout warn"><strong>Generator saturated</strong>: latencies may be the generator's, not the broker's. ${esc(reasons)}</div>`);
  }
  if (result.errors.length > 0) {
    // Under network faults most errors are expected disconnects: the first ten, and run.json keeps them all.
    const shown = result.errors.slice(0, 10).map((e) => `<li>${esc(e)}</li>`).join('');
    const more = result.errors.length > 10 ? `<li>… and ${result.errors.length - 10} more in run.json (errors)</li>` : '';
    out.push(`<div class="callout bad"><strong>Errors</strong><ul>${shown}${more}</ul></div>`);
  }
  // How to read the numbers: a slice, or a merged run with its clock offsets between machines.
  if (result.notes !== undefined && result.notes.length > 0) {
    out.push(`<div class="callout"><strong>Notes</strong><ul>${result.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul></div>`);
  }
  return out.join('\n');
}

// ---------------------------------------------------------------- charts

const seconds = (ms: number): number => ms / 1000;

function timelineDomain(result: RunResult): [number, number] {
  const last = result.timeline.length > 0 ? result.timeline[result.timeline.length - 1]!.atMs : 0;
  return [0, seconds(Math.max(last, result.scenario.durationMs, 1000))];
}

function phaseBands(result: RunResult, end: number): ChartBand[] {
  const { rampUpMs, steadyMs, rampDownMs } = result.scenario.phases;
  const bands: ChartBand[] = [];
  let t = 0;
  const add = (ms: number, label: string, className: string): void => {
    if (ms > 0) bands.push({ x1: seconds(t), x2: seconds(t + ms), label, className });
    t += ms;
  };
  add(rampUpMs, 'ramp-up', 'band-ramp');
  add(steadyMs, 'steady', 'band-steady');
  add(rampDownMs, 'ramp-down', 'band-ramp');
  if (end > seconds(t)) bands.push({ x1: seconds(t), x2: end, label: 'drain', className: 'band-drain' });
  return bands;
}

function eventOverlay(events: readonly ReportEvent[]): { bands: ChartBand[]; markers: ChartMarker[] } {
  const bands: ChartBand[] = [];
  const markers: ChartMarker[] = [];
  for (const e of events) {
    const when = formatDuration(e.atMs);
    markers.push({ x: seconds(e.atMs), kind: e.kind, title: `${when}: ${e.label}: ${e.detail}` });
    if (e.endMs !== undefined && e.endMs > e.atMs) bands.push({ x1: seconds(e.atMs), x2: seconds(e.endMs), label: e.label, className: 'band-chaos', labelRow: 1 });
  }
  return { bands, markers };
}

const formatSeconds = (s: number): string => `${formatNumber(s)}s`;

function timelineCharts(result: RunResult, events: readonly ReportEvent[]): string {
  if (result.timeline.length === 0) return '<p class="note">The run has no timeline (it ended before the devices started).</p>';
  const domain = timelineDomain(result);
  const overlay = eventOverlay(events);
  const bands = [...phaseBands(result, domain[1]), ...overlay.bands];
  const pts = (f: (p: RunResult['timeline'][number]) => number | null): Array<[number, number]> =>
    result.timeline.flatMap((p) => {
      const v = f(p);
      return v === null ? [] : [[seconds(p.atMs), v] as [number, number]];
    });
  const common = { xDomain: domain, bands, markers: overlay.markers, xLabel: 'time since start (s)', formatX: formatSeconds };
  const throughput = lineChart({
    ...common,
    title: 'Throughput over time',
    yLabel: 'messages/s',
    series: [
      { name: 'published/s', points: pts((p) => p.publishedPerSec), color: 0 },
      { name: 'delivered/s', points: pts((p) => p.deliveredPerSec), color: 1 },
    ],
  });
  const connected = lineChart({
    ...common,
    title: 'Connected devices over time',
    yLabel: 'devices',
    height: 200,
    series: [{ name: 'connected', points: pts((p) => p.connected), color: 2 }],
  });
  const latency = lineChart({
    ...common,
    title: 'End-to-end latency per interval',
    yLabel: 'ms',
    height: 200,
    series: [
      { name: 'e2e p50', points: pts((p) => p.e2eP50Ms), color: 3 },
      { name: 'e2e p99', points: pts((p) => p.e2eP99Ms), color: 4 },
    ],
  });
  return [
    '<figure>', throughput, '<figcaption>Published and delivered messages per second, per snapshot interval.</figcaption>', '</figure>',
    '<figure>', connected, '<figcaption>Devices connected at each snapshot.</figcaption>', '</figure>',
    '<figure>', latency, '<figcaption>End-to-end latency (scheduled send → delivery) of the messages delivered in each interval.</figcaption>', '</figure>',
    legendOfMarkers(),
  ].join('\n');
}

function legendOfMarkers(): string {
  return '<p class="marker-legend"><span class="key key-chaos"></span>chaos action (shaded while it lasted)'
    + '<span class="key key-violation"></span>delivery violation (when its message was published)'
    + '<span class="key key-reconnect"></span>reconnect spike'
    + '<span class="key key-phase"></span>ramp / drain phase</p>';
}

/** Curves drawn in the HDR plot: all deliveries, then per QoS; acknowledgements dashed. */
const distributionHistograms: ReadonlyArray<{ name: string; color: number; dashed?: boolean }> = [
  { name: 'e2e', color: 0 },
  { name: 'e2e.qos0', color: 1 },
  { name: 'e2e.qos1', color: 2 },
  { name: 'e2e.qos2', color: 3 },
  { name: 'ack.qos1', color: 4, dashed: true },
  { name: 'ack.qos2', color: 5, dashed: true },
];

function latencyDistribution(result: RunResult): string {
  const curves: Array<{ curve: PercentileCurve; color: number; dashed?: boolean }> = [];
  const undecodable: string[] = [];
  for (const h of distributionHistograms) {
    const encoded = result.histograms[h.name];
    if (encoded === undefined) continue;
    const curve = percentileCurve(h.name, encoded);
    if (curve === null) undecodable.push(h.name);
    else curves.push({ curve, color: h.color, ...(h.dashed === true ? { dashed: true } : {}) });
  }
  const problems = undecodable.length > 0 ? `<p class="note">Could not decode the histogram${undecodable.length === 1 ? '' : 's'} ${esc(undecodable.join(', '))}.</p>` : '';
  if (curves.length === 0) return `<p class="note">No latency histograms in this run.json.</p>${problems}`;
  const decades = Math.max(2, Math.ceil(Math.max(...curves.map((c) => c.curve.points[c.curve.points.length - 1]![0])) - 1e-9));
  const series: ChartSeries[] = curves.map(({ curve, color, dashed }) => ({
    name: `${curve.name} (${formatCount(curve.count)})`,
    points: curve.points,
    color,
    step: true,
    ...(dashed === true ? { dashed: true } : {}),
  }));
  const chart = lineChart({
    title: 'Latency by percentile',
    xLabel: 'percentile',
    yLabel: 'latency (ms)',
    series,
    xDomain: [0, decades],
    xTicks: Array.from({ length: decades + 1 }, (_, d) => ({ value: d, label: decadeLabel(d) })),
    height: 280,
  });
  return `<figure>${chart}<figcaption>HDR percentile distribution from the recorded histograms (x axis: 1/(1−p) on a log scale; count in parentheses).</figcaption></figure>${problems}`;
}

function eventsTable(events: readonly ReportEvent[]): string {
  if (events.length === 0) return '<p class="note">No chaos actions, delivery violations or reconnect spikes.</p>';
  const kindLabel = { chaos: 'chaos', violation: 'violation', reconnect: 'reconnect spike' } as const;
  return table(
    ['time', 'kind', 'what', 'detail'],
    events.map((e) => [
      { text: e.endMs !== undefined ? `${formatDuration(e.atMs)} – ${formatDuration(e.endMs)}` : formatDuration(e.atMs), className: 'nowrap' },
      { text: kindLabel[e.kind], className: `kind-${e.kind}` },
      e.label,
      e.detail,
    ]),
    [0, 1, 2, 3],
  );
}

// ---------------------------------------------------------------- tables

function summaryTable(result: RunResult): string {
  const devices = result.scenario.fleets.reduce((n, f) => n + f.count, 0);
  return keyValueTable([
    ['verdict', verdictLine(result)],
    ['outcome', result.outcome],
    ['duration', `${formatDuration(runDurationMs(result))} (timeline ${formatDuration(result.scenario.durationMs)}, drain up to ${formatDuration(result.scenario.drainMs)})`],
    ['target', describeTarget(result)],
    ['devices', `${formatCount(devices)} in ${result.scenario.fleets.length} fleet${result.scenario.fleets.length === 1 ? '' : 's'}`],
    ['published', `${formatCount(sum3(result.totals.published))} (QoS 0/1/2: ${result.totals.published.map(formatCount).join(' / ')})`],
    ['acknowledged', formatCount(sum3(result.totals.acknowledged))],
    ['delivered', `${formatCount(sum3(result.totals.delivered))} (duplicates ${formatCount(sum3(result.totals.duplicates))})`],
    ['connects', `${formatCount(result.totals.connects)} of ${formatCount(result.totals.connectAttempts)} attempts, ${formatCount(result.totals.connectFailures)} failed, ${formatCount(result.totals.reconnects)} reconnects`],
    ['disconnects', Object.entries(result.disconnectCauses).filter(([, n]) => n > 0).map(([cause, n]) => `${cause} ${formatCount(n)}`).join(', ') || 'none'],
    ['scenario file', result.scenario.sourceFile ?? '-'],
  ]);
}

function fleetsTable(result: RunResult): string {
  const names = result.scenario.fleets.map((f) => f.name).filter((n) => result.fleets[n] !== undefined);
  for (const n of Object.keys(result.fleets)) if (!names.includes(n)) names.push(n);
  const model = (n: string): string => result.scenario.fleets.find((f) => f.name === n)?.model ?? '';
  const row = (name: string, kind: string, c: RunResult['totals'], e2e: LatencySummary | undefined): Cell[] => [
    name, kind, formatCount(c.devices), formatCount(c.connects), formatCount(c.reconnects), formatCount(c.connectFailures),
    formatCount(c.published[0]), formatCount(c.published[1]), formatCount(c.published[2]), formatCount(sum3(c.acknowledged)),
    formatCount(sum3(c.delivered)), formatCount(sum3(c.duplicates)), formatMsValue(e2e?.p50), formatMsValue(e2e?.p99),
  ];
  const rows = names.map((n) => row(n, model(n), result.fleets[n]!, result.latency[`e2e@${n}`]));
  rows.push(row('total', '', result.totals, result.latency['e2e']).map((c) => ({ text: typeof c === 'string' ? c : c.text, className: 'total' })));
  return table(
    ['fleet', 'model', 'devices', 'connects', 'reconnects', 'conn. failures', 'pub q0', 'pub q1', 'pub q2', 'acked', 'delivered', 'dup', 'p50', 'p99'],
    rows,
    [0, 1],
  );
}

const latencyLabels: ReadonlyArray<[string, string]> = [
  ['e2e', 'e2e'], ['e2e.qos0', 'e2e qos0'], ['e2e.qos1', 'e2e qos1'], ['e2e.qos2', 'e2e qos2'],
  ['ack.qos1', 'ack qos1'], ['ack.qos2', 'ack qos2'], ['connect', 'connect'], ['reconnect', 'reconnect'],
];

function latencyTable(result: RunResult): string {
  const rows = latencyLabels
    .filter(([key]) => result.latency[key] !== undefined)
    .map(([key, name]) => {
      const l = result.latency[key]!;
      return [name, formatCount(l.count), formatMsValue(l.min), formatMsValue(l.mean), formatMsValue(l.p50), formatMsValue(l.p90), formatMsValue(l.p95), formatMsValue(l.p99), formatMsValue(l.p999), formatMsValue(l.max)];
    });
  if (rows.length === 0) return '<p class="note">No latency data.</p>';
  return table(['metric', 'count', 'min', 'mean', 'p50', 'p90', 'p95', 'p99', 'p99.9', 'max'], rows);
}

function guaranteesSection(result: RunResult): string {
  const c = result.checker;
  if (c === undefined) return '<p class="note">This run.json has no delivery checker result (written before the checker existed).</p>';
  const v = c.violations;
  const head = c.verdict === 'pass' ? 'PASS: no breach of the MQTT delivery contract'
    : c.verdict === 'fail' ? `FAIL: ${formatCount(v.total)} violation${v.total === 1 ? '' : 's'} (lost ${formatCount(v.byKind.lost)}, duplicated ${formatCount(v.byKind.duplicated)}, reordered ${formatCount(v.byKind.reordered)})`
    : `UNCHECKED: ${c.notes[0] ?? 'no records to judge'}`;
  const verdictClass = c.verdict === 'pass' ? 'pass' : c.verdict === 'fail' ? 'fail' : 'unchecked';
  const rows = c.byQos
    .map((k, q): Cell[] => [
      `qos${q}`, formatCount(k.delivered),
      { text: formatCount(k.lost), className: q > 0 && k.lost > 0 ? 'bad' : '' },
      { text: formatCount(k.duplicated), className: q !== 1 && k.duplicated > 0 ? 'bad' : '' },
      formatCount(k.reordered), formatCount(k.expired), formatCount(k.indeterminate), formatCount(v.byQos[q as 0 | 1 | 2]),
    ])
    .filter((_, q) => Object.values(c.byQos[q]!).some((n) => n > 0));
  const parts = [
    `<p class="checker-verdict ${verdictClass}">${esc(head)}</p>`,
    `<p class="note">${esc(`Checked in ${formatMs(c.checkMs)} with a presence margin of ${formatDuration(c.marginMs)}. Violations: lost at QoS 1/2, duplicated at QoS 0/2, reordered on non-shared subscriptions.`)}</p>`,
  ];
  if (rows.length > 0) parts.push(table(['qos', 'delivered', 'lost', 'duplicated', 'reordered', 'expired', 'indeterminate', 'violations'], rows));
  const why = indeterminateText(c);
  if (why !== null) parts.push(`<p class="note">${esc(why.charAt(0).toUpperCase() + why.slice(1))}</p>`);
  const subscribers = Object.entries(c.subscribers);
  if (subscribers.length > 0) {
    parts.push('<h3>Per subscriber fleet</h3>');
    parts.push(table(
      ['fleet', 'delivered', 'lost', 'duplicated', 'reordered', 'indeterminate', 'violations'],
      subscribers.map(([name, s]) => [
        name, formatCount(sum3(s.byQos.map((k) => k.delivered) as [number, number, number])), formatCount(sum3(s.byQos.map((k) => k.lost) as [number, number, number])),
        formatCount(sum3(s.byQos.map((k) => k.duplicated) as [number, number, number])), formatCount(sum3(s.byQos.map((k) => k.reordered) as [number, number, number])),
        formatCount(sum3(s.byQos.map((k) => k.indeterminate) as [number, number, number])), { text: formatCount(s.violations), className: s.violations > 0 ? 'bad' : '' },
      ]),
    ));
  }
  if (c.examples.length > 0) {
    parts.push(`<h3>Violation examples${v.total > c.examples.length ? ` (${c.examples.length} of ${formatCount(v.total)})` : ''}</h3>`);
    parts.push(table(
      ['kind', 'qos', 'publisher', 'subscriber', 'topic', 'seq', 'detail'],
      c.examples.map((e) => [e.kind, `${e.qos}${e.publishedQos !== e.qos ? ` (sent ${e.publishedQos})` : ''}`, e.publisherClientId, e.group ?? e.subscriberClientId ?? '?', e.topic, e.seq === null ? '-' : String(e.seq), e.detail]),
      [0, 2, 3, 4, 6],
    ));
  }
  if (c.notes.length > 0) parts.push(`<ul class="notes">${c.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
  return parts.join('\n');
}

function assertionsTable(result: RunResult): string {
  if (result.assertions.length === 0) return '<p class="note">The scenario has no expect: assertions.</p>';
  return table(
    ['', 'assertion', 'actual', 'message'],
    result.assertions.map((a) => [
      { text: a.passed ? '✓' : '✗', className: a.passed ? 'pass' : 'fail' },
      { text: a.source, className: 'code' },
      a.actual === null ? 'no data' : formatNumber(a.actual),
      a.message,
    ]),
    [0, 1, 3],
  );
}

function environmentTable(result: RunResult): string {
  const env = result.environment;
  const rows: Array<[string, string]> = [
    ['mqtt-sim', result.tool.version],
    ['node', env.node],
    ['platform', `${env.platform} ${env.arch}`],
    ['cpus', `${env.cpus} × ${env.cpuModel}`],
    ['memory', formatBytes(env.totalMemoryBytes)],
    ['hostname', env.hostname],
    ['workers', formatCount(env.workers)],
    ['open-file limit', env.fileLimit === null ? 'unknown' : formatCount(env.fileLimit)],
    ['generator', `${result.generator.saturated ? 'SATURATED' : 'healthy'}: event-loop delay max ${formatMs(result.generator.loopDelayMaxMs)}, schedule slip p99 ${formatMs(result.generator.scheduleSlipP99Ms)}`],
  ];
  const b = result.broker;
  if (b !== undefined) {
    const s = runDurationMs(result) / 1000;
    rows.push(['broker', `pid ${b.pid}, CPU ${b.cpuSeconds.toFixed(1)} s${s > 0 ? ` (${formatPercent(b.cpuSeconds / s)} of one core)` : ''}, peak RSS ${formatBytes(b.peakRssBytes)}`]);
  }
  return keyValueTable(rows);
}

// ---------------------------------------------------------------- page

const css = `
:root { --fg:#1f2937; --muted:#6b7280; --line:#e5e7eb; --bg:#ffffff; --soft:#f9fafb; --pass:#15803d; --fail:#b91c1c; --warn:#b45309; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 1080px; margin: 0 auto; padding: 24px 20px 48px; }
header { border-bottom: 1px solid var(--line); padding-bottom: 12px; margin-bottom: 16px; }
.title-row { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
h1 { font-size: 24px; margin: 0; word-break: break-all; }
h2 { font-size: 17px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 16px 0 6px; }
.description, .meta, .note, figcaption { color: var(--muted); }
.meta { font-size: 12.5px; margin: 4px 0 0; }
.verdict { font-weight: 700; font-size: 13px; padding: 3px 10px; border-radius: 999px; color: #fff; letter-spacing: .04em; }
.verdict.pass { background: var(--pass); } .verdict.fail { background: var(--fail); }
.verdict-line { font-weight: 600; margin: 6px 0 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(145px, 1fr)); gap: 8px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; background: var(--soft); }
.card-value { font-size: 18px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card-label { color: var(--muted); font-size: 12px; }
.card.bad .card-value { color: var(--fail); } .card.warn .card-value { color: var(--warn); }
.callout { border-radius: 8px; padding: 8px 12px; margin: 8px 0; }
.callout.warn { background: #fffbeb; border: 1px solid #fcd34d; } .callout.bad { background: #fef2f2; border: 1px solid #fca5a5; }
.callout ul { margin: 4px 0 0; padding-left: 20px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { background: var(--soft); font-weight: 600; font-size: 12.5px; white-space: nowrap; }
td.num, th.num { text-align: right; }
td.total { font-weight: 600; background: var(--soft); }
table.kv th { width: 170px; color: var(--muted); font-weight: 500; }
td.pass, .checker-verdict.pass { color: var(--pass); font-weight: 600; } td.fail, .checker-verdict.fail, td.bad { color: var(--fail); font-weight: 600; }
.checker-verdict.unchecked { color: var(--warn); font-weight: 600; }
td.code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
td.nowrap, tbody td:first-child { white-space: nowrap; }
#fleets table { font-size: 12.5px; } #fleets th, #fleets td { padding: 4px 5px; }
td.kind-chaos { color: #c2410c; } td.kind-violation { color: var(--fail); } td.kind-reconnect { color: #a16207; }
figure { margin: 10px 0 18px; } figcaption { font-size: 12px; margin-top: 2px; }
svg.chart { width: 100%; height: auto; display: block; }
svg .grid { stroke: #eef0f3; } svg .axis { stroke: #9ca3af; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: #4b5563; }
svg .axis-label { fill: #6b7280; } svg .legend { fill: #374151; } svg .band-label { fill: #9ca3af; font-size: 10px; }
svg .line { fill: none; stroke-width: 2; stroke-linejoin: round; }
svg .s0 { stroke: #2563eb; fill: #2563eb; } svg .s1 { stroke: #16a34a; fill: #16a34a; } svg .s2 { stroke: #7c3aed; fill: #7c3aed; }
svg .s3 { stroke: #0891b2; fill: #0891b2; } svg .s4 { stroke: #db2777; fill: #db2777; } svg .s5 { stroke: #65a30d; fill: #65a30d; }
svg path.line { fill: none; }
svg .band-ramp { fill: #f3f4f6; } svg .band-steady { fill: none; } svg .band-drain { fill: #e5e7eb; } svg .band-chaos { fill: #fed7aa; fill-opacity: .45; }
svg .m-line { stroke-width: 1.5; } svg .m-chaos { stroke: #ea580c; } svg .m-violation { stroke: #dc2626; }
svg .m-chaos-fill { fill: #ea580c; } svg .m-violation-fill { fill: #dc2626; } svg .m-reconnect-fill { fill: #ca8a04; }
.marker-legend { font-size: 12px; color: var(--muted); }
.key { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 5px 0 14px; vertical-align: -1px; }
.key:first-child { margin-left: 0; }
.key-chaos { background: #ea580c; } .key-violation { background: #dc2626; } .key-reconnect { background: #ca8a04; border-radius: 50%; } .key-phase { background: #e5e7eb; }
nav { font-size: 12.5px; margin: 8px 0 0; } nav a { color: #2563eb; text-decoration: none; margin-right: 12px; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
@media print { main { max-width: none; } section { break-inside: avoid; } }
`;

/** The page: a pure function of the run, byte for byte the same for the same run.json. */
export function formatHtmlReport(result: RunResult): string {
  const events = collectReportEvents(result);
  const nav = [['timeline', 'Timeline'], ['latency-distribution', 'Latency'], ['events', 'Events'], ['summary', 'Summary'], ['fleets', 'Fleets'], ['latency', 'Latency table'], ['guarantees', 'Guarantees'], ['assertions', 'Assertions'], ['environment', 'Environment']]
    .map(([id, name]) => `<a href="#${id}">${name}</a>`).join('');
  const body = [
    header(result),
    `<nav>${nav}</nav>`,
    keyFigures(result),
    callouts(result),
    section('timeline', 'Timeline', timelineCharts(result, events)),
    section('latency-distribution', 'Latency distribution', latencyDistribution(result)),
    section('events', 'Events', eventsTable(events)),
    section('summary', 'Summary', summaryTable(result)),
    section('fleets', 'Fleets', fleetsTable(result), 'p50 and p99: end-to-end latency in ms of the messages the fleet published.'),
    section('latency', 'Latency (ms)', latencyTable(result)),
    section('guarantees', 'Delivery guarantees', guaranteesSection(result)),
    section('assertions', 'Assertions', assertionsTable(result)),
    section('environment', 'Environment', environmentTable(result)),
    `<footer>${esc(`Generated by mqtt-sim ${result.tool.version} from run.json (schema ${result.schemaVersion}). Self-contained: no network needed to view it.`)}</footer>`,
  ];
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(`${result.scenario.name}: ${result.verdict === 'pass' ? 'PASS' : 'FAIL'} · mqtt-sim report`)}</title>`,
    `<style>${css}</style>`,
    '</head>',
    '<body>',
    '<main>',
    ...body.filter((b) => b !== ''),
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** The page's building blocks, shared with the capacity report (simulator/capacity/report.ts) so both look alike. */
export { css as reportCss, table as htmlTable, keyValueTable as htmlKeyValueTable, section as htmlSection, card as htmlCard, type Cell as HtmlCell };
