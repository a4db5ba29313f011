/**
 * The terminal dashboard as a pure view: `<Dashboard state now width height />` draws a DashboardState at
 * the wall time `now`. Finished phases and events go to ink's <Static> (printed once, scrolling above);
 * the live area below is redrawn on every frame and fits the terminal: no line is wider than `width`, and
 * panels are dropped (blank lines first, then the sparklines, then fleet rows) before it gets taller than
 * `height`, because ink clears the whole screen when its live area reaches the terminal's height.
 */
import { Box, Static, Text, useStdout } from 'ink';
import { formatBytes, formatCount, formatMs, formatMsValue, formatPercent } from '../report/summary.js';
import { clipLine, layoutTable, lineLength, type Cell, type Column, type Line, type Segment } from './columns.js';
import { sparkline } from './sparkline.js';
import { elapsedMs, faultTotals, fleetReconnects, liveQos, type DashboardState, type LogLine } from './state.js';

export interface DashboardProps {
  state: DashboardState;
  /** Wall time of this frame, ms (injected, so frames are reproducible). */
  now: number;
  /** Terminal columns; default: the output stream's. */
  width?: number;
  /** Terminal rows; default: the output stream's (unbounded when it has none). */
  height?: number;
}

const levelColor: Record<LogLine['level'], string | undefined> = { info: undefined, warn: 'yellow', error: 'red' };

/** "7s", "1m 05s", "1h 02m 03s": whole seconds, so the header changes once a second. */
export function formatClock(ms: number): string {
  const total = Math.floor(Math.max(0, ms) / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m ${String(s).padStart(2, '0')}s`;
  if (m > 0) return `${m}m ${String(s).padStart(2, '0')}s`;
  return `${s}s`;
}

function bar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}

const blank: Line = [];

// ---------------------------------------------------------------- sections (each a list of lines)

function headerLines(state: DashboardState, now: number, width: number): Line[] {
  const scenario = state.scenario;
  if (scenario === null) return [[{ text: 'mqtt-sim run: starting…', dim: true }]];
  const result = state.result;
  const elapsed = elapsedMs(state, now);
  const status: Segment =
    result !== null ? { text: result.outcome, color: result.outcome === 'completed' ? 'green' : 'red', bold: true }
    : state.stopping ? { text: 'stopping', color: 'yellow', bold: true }
    : { text: state.phase?.name ?? 'prepare', color: 'cyan', bold: true };
  const head: Line = [{ text: 'mqtt-sim run ', dim: true }, { text: scenario.name, bold: true }, { text: '  ' }, status];
  const timing = `  elapsed ${formatClock(elapsed)} of ${formatClock(scenario.durationMs)} + drain ≤ ${formatClock(scenario.drainMs)}`;
  const fits = lineLength(head) + timing.length + 10 <= width;
  head.push({ text: fits ? timing : `  ${formatClock(elapsed)}/${formatClock(scenario.durationMs)}` });
  const room = width - lineLength(head) - 2;
  const fraction = result !== null ? 1 : elapsed / Math.max(1, scenario.durationMs + scenario.drainMs);
  if (room >= 8) head.push({ text: '  ' }, { text: bar(fraction, Math.min(30, room)), color: result !== null ? 'green' : 'cyan' });
  const fleets = state.fleets.length;
  // The target last: it is the longest part and the one a narrow terminal cuts.
  const about = `${formatCount(state.devices)} devices in ${fleets} fleet${fleets === 1 ? '' : 's'} · ${formatCount(state.workers)} worker${state.workers === 1 ? '' : 's'} → ${state.targetDescription}`;
  return [head, [{ text: about, dim: true }]];
}

const fleetColumns: Column[] = [
  { header: 'fleet', align: 'left', drop: 0, shrinkTo: 6 },
  { header: 'connected', align: 'right', drop: 0 },
  { header: 'out/s', align: 'right', drop: 0 },
  { header: 'in/s', align: 'right', drop: 3 },
  { header: 'p50 ms', align: 'right', drop: 5 },
  { header: 'p99 ms', align: 'right', drop: 2 },
  { header: 'reconnects', align: 'right', drop: 4 },
];

function fleetLines(state: DashboardState, width: number, maxRows: number): Line[] {
  const p = state.latest;
  const rows: Cell[][] = state.fleets.map((f) => {
    const live = p?.fleets[f.name];
    const connected = live?.connected ?? 0;
    return [
      { text: f.name },
      { text: `${formatCount(connected)}/${formatCount(f.devices)}`, color: p !== null && connected < f.devices && state.phase?.name === 'steady' ? 'yellow' : undefined },
      { text: live === undefined ? '-' : formatCount(live.publishedPerSec) },
      { text: live === undefined ? '-' : formatCount(live.deliveredPerSec) },
      { text: formatMsValue(live?.e2eP50Ms) },
      { text: formatMsValue(live?.e2eP99Ms) },
      { text: formatCount(fleetReconnects(state, f.name)), color: fleetReconnects(state, f.name) > 0 ? 'yellow' : undefined },
    ];
  });
  let shown = rows;
  if (rows.length > maxRows) {
    const hidden = rows.length - (maxRows - 1);
    shown = [...rows.slice(0, Math.max(0, maxRows - 1)), [{ text: `+${hidden} more`, dim: true }]];
  }
  if (state.fleets.length > 1) {
    const reconnects = state.fleets.reduce((n, f) => n + fleetReconnects(state, f.name), 0);
    shown = [
      ...shown,
      [
        { text: 'total', bold: true },
        { text: `${formatCount(p?.connected ?? 0)}/${formatCount(state.devices)}`, bold: true },
        { text: p === null ? '-' : formatCount(p.publishedPerSec), bold: true },
        { text: p === null ? '-' : formatCount(p.deliveredPerSec), bold: true },
        { text: formatMsValue(p?.e2eP50Ms), bold: true },
        { text: formatMsValue(p?.e2eP99Ms), bold: true },
        { text: formatCount(reconnects), bold: true },
      ],
    ];
  }
  const table = layoutTable(fleetColumns, shown, width);
  return [table.header, ...table.rows];
}

const qosColumns: Column[] = [
  { header: ' ', align: 'left', drop: 0 },
  { header: 'qos', align: 'left', drop: 0 },
  { header: 'sent', align: 'right', drop: 0 },
  { header: 'acked', align: 'right', drop: 3 },
  { header: 'delivered', align: 'right', drop: 0 },
  { header: 'duplicated', align: 'right', drop: 0 },
  { header: 'reordered', align: 'right', drop: 0 },
  { header: 'lost', align: 'right', drop: 0 },
  { header: 'indeterminate', align: 'right', drop: 2 },
];

const pass: Cell = { text: '✓', color: 'green', bold: true };
const fail: Cell = { text: '✗', color: 'red', bold: true };
const unsure: Cell = { text: '?', color: 'yellow', bold: true };
const idle: Cell = { text: '·', dim: true };

/**
 * The QoS guarantees panel. During the run, from the live counters: duplicates at QoS 0 and 2 fail at
 * once, reordering is only suspect (shared subscriptions promise no order; the checker decides), loss
 * cannot be told before the drain. At the end, the delivery checker's classes and violations.
 */
function qosLines(state: DashboardState, width: number): Line[] {
  const checker = state.result?.checker;
  const lines: Line[] = [];
  const title: Line = [{ text: 'QoS guarantees', bold: true }];
  if (checker !== undefined) {
    const verdict: Segment =
      checker.verdict === 'pass' ? { text: 'PASS', color: 'green', bold: true }
      : checker.verdict === 'fail' ? { text: `FAIL (${formatCount(checker.violations.total)} violations)`, color: 'red', bold: true }
      : { text: 'UNCHECKED', color: 'yellow', bold: true };
    title.push({ text: '  delivery checker: ' }, verdict, { text: `  checked in ${formatMs(checker.checkMs)}`, dim: true });
  } else {
    title.push({ text: '  live · lost/indeterminate checked at the end', dim: true });
  }
  lines.push(title);

  const live = liveQos(state);
  const totals = state.result?.totals;
  const rows: Cell[][] = [0, 1, 2].map((q) => {
    const sent = totals?.published[q] ?? live?.published[q] ?? 0;
    const acked = totals?.acknowledged[q] ?? live?.acknowledged[q] ?? 0;
    const ackCell: Cell = { text: q === 0 ? '-' : formatCount(acked), dim: q === 0 };
    if (checker !== undefined) {
      const k = checker.byQos[q]!;
      const violations = checker.violations.byQos[q] ?? 0;
      const any = sent > 0 || Object.values(k).some((n) => n > 0);
      const mark = !any ? idle : violations > 0 ? fail : checker.verdict === 'unchecked' ? unsure : pass;
      const bad = (n: number, forbidden: boolean): Cell => ({ text: formatCount(n), color: n > 0 ? (forbidden ? 'red' : 'yellow') : undefined });
      return [
        mark, { text: `qos${q}` }, { text: formatCount(sent) }, ackCell, { text: formatCount(k.delivered) },
        bad(k.duplicated, q !== 1), bad(k.reordered, true), bad(k.lost, q !== 0), bad(k.indeterminate, false),
      ];
    }
    const delivered = live?.delivered[q] ?? 0;
    const dup = live?.duplicated[q] ?? 0;
    const reordered = live?.reordered[q] ?? 0;
    const forbiddenDup = q !== 1 && dup > 0;
    const mark = sent === 0 && delivered === 0 ? idle : forbiddenDup ? fail : reordered > 0 ? unsure : pass;
    const atEnd: Cell = { text: 'at end', dim: true };
    return [
      mark, { text: `qos${q}` }, { text: formatCount(sent) }, ackCell, { text: formatCount(delivered) },
      { text: formatCount(dup), color: dup > 0 ? (forbiddenDup ? 'red' : 'yellow') : undefined },
      { text: formatCount(reordered), color: reordered > 0 ? 'yellow' : undefined },
      atEnd, atEnd,
    ];
  });
  const table = layoutTable(qosColumns, rows, width);
  lines.push(table.header, ...table.rows);
  return lines;
}

function sparkLines(state: DashboardState, width: number): Line[] {
  const p = state.latest;
  const label = (text: string): Segment => ({ text: text.padEnd(11), dim: true });
  const valueWidth = Math.max(formatCount(state.devices).length * 2 + 1, 9);
  const chartWidth = Math.max(0, Math.min(state.history.published.length === 0 ? 60 : 120, width - 11 - 2 - valueWidth));
  if (chartWidth < 8) return [];
  const h = state.history;
  const rateMax = Math.max(0, ...h.published.slice(-chartWidth), ...h.delivered.slice(-chartWidth));
  return [
    [label('out/s'), { text: sparkline(h.published, chartWidth, rateMax), color: 'cyan' }, { text: `  ${p === null ? '-' : formatCount(p.publishedPerSec)}` }],
    [label('in/s'), { text: sparkline(h.delivered, chartWidth, rateMax), color: 'magenta' }, { text: `  ${p === null ? '-' : formatCount(p.deliveredPerSec)}` }],
    [label('connected'), { text: sparkline(h.connected, chartWidth, state.devices), color: 'green' }, { text: `  ${formatCount(p?.connected ?? 0)}/${formatCount(state.devices)}` }],
  ];
}

function healthLines(state: DashboardState): Line[] {
  const p = state.latest;
  const lines: Line[] = [];
  const label = (text: string): Segment => ({ text: text.padEnd(11), dim: true });
  if (p?.broker !== undefined) {
    lines.push([label('broker'), { text: `cpu ${formatPercent(p.broker.cpu)}  rss ${formatBytes(p.broker.rssBytes)}` }]);
  }
  if (p !== null) {
    const g = p.generator;
    const figures: Segment = { text: `cpu ${formatPercent(g.cpu)}  loop delay p99 ${formatMs(g.loopDelayP99Ms)}  schedule slip p99 ${formatMs(g.scheduleSlipP99Ms)}` };
    if (g.saturated) figures.color = 'yellow';
    lines.push([label('generator'), figures]);
    if (g.saturated) lines.push([{ text: "⚠ generator saturated: latencies may be the generator's, not the broker's", color: 'yellow', bold: true }]);
  }
  const faults = faultTotals(state);
  if (faults !== null) {
    lines.push([
      label('faults'),
      { text: `resets ${formatCount(faults.resets)}  half-open ${formatCount(faults.halfOpen)}  slow closes ${formatCount(faults.slowCloses)}  refused ${formatCount(faults.refused)}  stalls ${formatCount(faults.stalls)}` },
    ]);
  }
  return lines;
}

function footerLine(state: DashboardState): Line {
  if (state.result !== null) {
    return state.reportDir === null ? [{ text: 'no report written (--no-report)', dim: true }] : [{ text: `report: ${state.reportDir}/run.json`, dim: true }];
  }
  if (state.stopping) return [{ text: 'stopping: finishing the shards and writing the report… (Ctrl-C again quits at once)', color: 'yellow' }];
  return [{ text: 'Ctrl-C stops the run and still writes the report', dim: true }];
}

/**
 * Every line of the live area for this frame, fitted to `width` × `height`: blank separators go first,
 * then the sparklines, then fleet rows beyond the first few.
 */
export function liveLines(state: DashboardState, now: number, width: number, height = Infinity): Line[] {
  const budget = height - 1;
  const build = (blanks: boolean, sparks: boolean, maxFleetRows: number): Line[] => {
    const sections: Line[][] = state.scenario === null ? [headerLines(state, now, width), [footerLine(state)]] : [
      headerLines(state, now, width),
      fleetLines(state, width, maxFleetRows),
      qosLines(state, width),
      [...(sparks ? sparkLines(state, width) : []), ...healthLines(state)],
      [footerLine(state)],
    ].filter((s) => s.length > 0);
    const lines: Line[] = [];
    sections.forEach((s, i) => {
      if (blanks && i > 0) lines.push(blank);
      lines.push(...s);
    });
    return lines.map((l) => clipLine(l, width));
  };
  const fleets = state.fleets.length;
  let lines = build(true, true, fleets);
  if (lines.length > budget) lines = build(false, true, fleets);
  if (lines.length > budget) lines = build(false, false, fleets);
  if (lines.length > budget) lines = build(false, false, Math.max(2, fleets - (lines.length - budget)));
  return lines;
}

function LineView({ line }: { line: Line }) {
  if (line.length === 0) return <Text> </Text>;
  return (
    <Text wrap="truncate-end">
      {line.map((s, i) => (
        <Text key={i} color={s.color} bold={s.bold === true} dimColor={s.dim === true}>
          {s.text}
        </Text>
      ))}
    </Text>
  );
}

export function Dashboard({ state, now, width, height }: DashboardProps) {
  const { stdout } = useStdout();
  const columns = width ?? (stdout.columns > 0 ? stdout.columns : 80);
  const rows = height ?? (typeof stdout.rows === 'number' && stdout.rows > 0 ? stdout.rows : Infinity);
  const lines = liveLines(state, now, columns, rows);
  return (
    <>
      <Static items={state.log}>
        {(line: LogLine) => (
          <Text key={line.id} color={levelColor[line.level]}>
            {line.text}
          </Text>
        )}
      </Static>
      {/* No fixed width: after a resize ink lays the previous frame out at the new width, and its
          truncating Text keeps that in-between frame from wrapping too. */}
      <Box flexDirection="column">
        {lines.map((line, i) => (
          <LineView key={i} line={line} />
        ))}
      </Box>
    </>
  );
}
