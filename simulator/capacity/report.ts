/**
 * The capacity report folder's own files: capacity.json (the CapacityResult, the machine-readable
 * record) and report.html (one self-contained page: load and latency per step with the knee marked,
 * CPU and memory against devices with the fitted lines, the extrapolation with its assumptions). The
 * page reuses the run report's building blocks (report/html.ts, svg-chart.ts), so both look alike, and
 * is a pure function of the result; every text from the run is escaped. Each step's own run.json and
 * report.html sit in step-<k>/ beside them, written by the run.
 */
import { makeDirectory } from '../../common/make-directory.js';
import { dirname, join } from 'node:path';
import { metricInfo, parseAssertion } from '../report/assertions.js';
import { escapeMarkup as esc } from '../report/escape.js';
import { htmlCard, htmlKeyValueTable, htmlSection, htmlTable, reportCss } from '../report/html.js';
import { formatBytes, formatCount, formatNumber } from '../report/summary.js';
import { lineChart, niceMax, type ChartBand, type ChartSeries } from '../report/svg-chart.js';
import { writeTextAtomically } from '../report/write-reports.js';
import {
  capacityStepNotes, capacityStepTable, costModelTable, describeCapacityTarget, extrapolationRows, fittedStepsText, kneeSentence, stepErrorSentence,
} from './cost-model.js';
import type { CapacityResult, CapacityStep, LinearFit } from './types.js';

export const capacityFileName = 'capacity.json';
export const capacityHtmlFileName = 'report.html';

const MiB = 1024 * 1024;

// ---------------------------------------------------------------- charts against devices

/** A series of (devices, value) over the steps where the value is known. */
function perStep(steps: readonly CapacityStep[], value: (s: CapacityStep) => number | null | undefined): Array<[number, number]> {
  return steps.flatMap((s) => {
    const v = value(s);
    return v === null || v === undefined || !Number.isFinite(v) ? [] : [[s.devices, v] as [number, number]];
  });
}

/** The x axis of every step chart: 0 to a nice number above the largest step, so fixed costs show at 0. */
function devicesDomain(result: CapacityResult): [number, number] {
  return [0, niceMax(Math.max(1, ...result.steps.map((s) => s.devices)))];
}

/** A step broke the SLO or did not settle: the ramp found the limit (also when a refinement step then failed with an error). */
function sloBroke(result: CapacityResult): boolean {
  return result.stopReason === 'slo-broken' || (result.stopReason === 'error' && result.steps.some((s) => !s.sloMet || !s.stable));
}

/** The knee as a vertical line as high as the chart's data, and, when a step broke the SLO, the load past it shaded. */
function kneeOverlay(result: CapacityResult, domain: readonly [number, number], dataMax: number): { series: ChartSeries[]; bands: ChartBand[] } {
  const k = result.knee;
  if (k === null) return { series: [], bands: [] };
  const top = dataMax > 0 ? dataMax : 1;
  return {
    series: [{ name: `knee: ${formatCount(k.devices)} devices`, points: [[k.devices, 0], [k.devices, top]], color: 4 }],
    bands: sloBroke(result) ? [{ x1: k.devices, x2: domain[1], label: 'past the knee', className: 'band-beyond' }] : [],
  };
}

const maxY = (series: readonly ChartSeries[]): number => Math.max(0, ...series.flatMap((s) => s.points.map((p) => p[1])));

/** A fitted line drawn across the whole x axis, dashed, in the color of what it fits. */
function fitSeries(name: string, fit: LinearFit | null | undefined, domain: readonly [number, number], color: number, scale = 1): ChartSeries[] {
  if (fit === null || fit === undefined) return [];
  const y = (x: number): number => (fit.intercept + fit.slope * x) / scale;
  return [{ name, points: [[domain[0], y(domain[0])], [domain[1], y(domain[1])]], color, dashed: true }];
}

function figure(chart: string, caption: string): string {
  return `<figure>${chart}<figcaption>${esc(caption)}</figcaption></figure>`;
}

function loadCharts(result: CapacityResult): string {
  if (result.steps.length === 0) return '<p class="note">No step ran.</p>';
  const domain = devicesDomain(result);
  const common = { xDomain: domain, xLabel: 'devices' } as const;

  const throughput: ChartSeries[] = [
    { name: 'offered/s', points: perStep(result.steps, (s) => s.offeredRate), color: 3, dashed: true },
    { name: 'published/s', points: perStep(result.steps, (s) => s.publishedPerSec), color: 0 },
    { name: 'delivered/s', points: perStep(result.steps, (s) => s.deliveredPerSec), color: 1 },
  ];
  const kneeT = kneeOverlay(result, domain, maxY(throughput));

  // e2e p99 of each step, and every other latency clause of the SLO with its threshold.
  const latency: ChartSeries[] = [{ name: 'e2e p99', points: perStep(result.steps, (s) => s.e2eP99Ms ?? s.slo.find((a) => a.metric === 'latency.e2e.p99')?.actual), color: 0 }];
  const clauses = result.steps[0]?.slo.filter((c) => metricInfo(c.metric)?.unit === 'ms') ?? [];
  for (const clause of clauses) {
    if (clause.metric !== 'latency.e2e.p99') latency.push({ name: clause.metric, points: perStep(result.steps, (s) => s.slo.find((a) => a.source === clause.source)?.actual), color: 2 });
  }
  // A threshold far above every measured value would flatten the measurements: it is named in the caption instead.
  const measuredMax = maxY(latency);
  const offScale: string[] = [];
  for (const clause of clauses) {
    const threshold = sloThreshold(clause.source);
    if (threshold === null) continue;
    if (measuredMax > 0 && threshold > offScaleFactor * measuredMax) offScale.push(clause.source);
    else latency.push({ name: `SLO ${clause.source}`, points: [[domain[0], threshold], [domain[1], threshold]], color: 5, dashed: true });
  }
  const kneeL = kneeOverlay(result, domain, maxY(latency));
  const offScaleNote = offScale.length === 0 ? '' : ` The SLO threshold${offScale.length === 1 ? '' : 's'} ${offScale.join(', ')} ${offScale.length === 1 ? 'is' : 'are'} far above every step, off the chart.`;

  return [
    figure(
      lineChart({ ...common, title: 'Throughput per step', yLabel: 'messages/s', series: [...throughput, ...kneeT.series], bands: kneeT.bands }),
      'Offered, published and delivered messages per second over each step\'s steady phase; delivered counts every subscriber\'s copy.',
    ),
    figure(
      lineChart({ ...common, title: 'End-to-end latency per step', yLabel: 'ms', height: 220, series: [...latency, ...kneeL.series], bands: kneeL.bands }),
      `End-to-end p99 of each step (scheduled send to delivery), the SLO's latency clauses and their thresholds (dashed).${offScaleNote}`,
    ),
  ].join('\n');
}

/** How far above the largest measured latency an SLO threshold may be and still be drawn. */
const offScaleFactor = 4;

/** The threshold of a latency clause like "latency.e2e.p99<250ms", in ms; null when it does not parse. */
function sloThreshold(source: string): number | null {
  try {
    return parseAssertion(source).value;
  } catch {
    return null;
  }
}

function usageCharts(result: CapacityResult): string {
  if (result.steps.length === 0) return '';
  const domain = devicesDomain(result);
  const model = result.costModel;
  const hasBroker = result.steps.some((s) => s.broker !== undefined);
  const common = { xDomain: domain, xLabel: 'devices', height: 240 } as const;

  const cpu: ChartSeries[] = [
    { name: 'simulator', points: perStep(result.steps, (s) => s.simulator.cpuCores), color: 0 },
    ...fitSeries('simulator fit', model.simulator.cpuCores, domain, 0),
    ...(hasBroker ? [{ name: 'broker', points: perStep(result.steps, (s) => s.broker?.cpuCores), color: 2 }] : []),
    ...(hasBroker ? fitSeries('broker fit', model.broker?.cpuCores, domain, 2) : []),
  ];
  const rss: ChartSeries[] = [
    { name: 'simulator', points: perStep(result.steps, (s) => (s.simulator.peakRssBytes === null ? null : s.simulator.peakRssBytes / MiB)), color: 0 },
    ...fitSeries('simulator fit', model.simulator.rssBytes, domain, 0, MiB),
    ...(hasBroker ? [{ name: 'broker', points: perStep(result.steps, (s) => (s.broker?.peakRssBytes == null ? null : s.broker.peakRssBytes / MiB)), color: 2 }] : []),
    ...(hasBroker ? fitSeries('broker fit', model.broker?.rssBytes, domain, 2, MiB) : []),
  ];
  const kneeC = kneeOverlay(result, domain, maxY(cpu));
  const kneeR = kneeOverlay(result, domain, maxY(rss));
  const who = hasBroker ? 'the simulator and the broker' : 'the simulator (the broker was not measured)';
  return [
    figure(
      lineChart({ ...common, title: 'CPU against devices', yLabel: 'CPU (cores)', series: [...cpu, ...kneeC.series], bands: kneeC.bands }),
      `Mean CPU of ${who} over each step's steady phase, in cores, and the least-squares lines (dashed) fitted over the healthy steps.`,
    ),
    figure(
      lineChart({ ...common, title: 'Memory against devices', yLabel: 'RSS (MiB)', series: [...rss, ...kneeR.series], bands: kneeR.bands }),
      `Peak resident memory of ${who} over each step's steady phase, and the fitted lines (dashed).`,
    ),
  ].join('\n');
}

// ---------------------------------------------------------------- sections

/** With stop reason `error`: which step failed, why, and what that means for the knee, in a red box. */
function stepErrorCallout(result: CapacityResult): string {
  const sentence = stepErrorSentence(result);
  const e = result.error;
  if (sentence === null || e === undefined) return '';
  const name = `${e.refining ? 'refinement step' : 'step'} ${e.step}`;
  const title = e.duringStep === true
    ? `The ramp stopped because the target stopped answering during ${name}: an outage, not a capacity limit`
    : `The ramp stopped because ${name} failed${e.kind === 'target-unreachable' ? ': the target became unreachable' : ''}`;
  const runJson = e.runJson === undefined ? '' : `<p>Its run, with the disconnects and errors it saw: <a href="${esc(e.runJson)}">${esc(e.runJson)}</a> · <a href="${esc(join(dirname(e.runJson), 'report.html'))}">${esc(join(dirname(e.runJson), 'report.html'))}</a></p>`;
  return `<div class="callout bad"><strong>${esc(title)}</strong><p>${esc(e.message)}</p><p>${esc(sentence)}</p>${runJson}</div>`;
}

function header(result: CapacityResult): string {
  const k = result.knee;
  const failed = result.stopReason === 'error' && result.error !== undefined ? ` <span class="verdict fail">${esc(`STEP ${result.error.step} FAILED`)}</span>` : '';
  return [
    '<header>',
    `<div class="title-row"><h1>${esc(`Capacity: ${result.scenario.name}`)}</h1><span class="verdict ${k === null ? 'fail' : 'pass'}">${esc(k === null ? 'NO KNEE' : `KNEE ${formatCount(k.devices)} DEVICES`)}</span>${failed}</div>`,
    `<p class="verdict-line">${esc(kneeSentence(result))}</p>`,
    stepErrorCallout(result),
    `<p class="meta">${esc(`Stopped (${result.stopReason}): ${result.stopDetail}`)}</p>`,
    `<p class="meta">${esc(`SLO ${result.slo} · ${describeCapacityTarget(result)} · ${result.startedAt} → ${result.finishedAt}`)}</p>`,
    '</header>',
  ].filter((part) => part !== '').join('\n');
}

function keyFigures(result: CapacityResult): string {
  const k = result.knee;
  const p = result.costModel.perDevice;
  const x = result.extrapolation;
  const cards = [
    htmlCard('knee (devices)', k === null ? 'none' : formatCount(k.devices), k === null ? 'bad' : ''),
    htmlCard('delivered/s at the knee', k === null ? '-' : formatCount(k.deliveredPerSec)),
    htmlCard('steps', formatCount(result.steps.length)),
    htmlCard('simulator per device', p.simulatorCpuCores === null && p.simulatorRssBytes === null ? '-' : `${p.simulatorCpuCores === null ? '-' : `${formatNumber(p.simulatorCpuCores * 1000)} mcore`} · ${p.simulatorRssBytes === null ? '-' : formatBytes(p.simulatorRssBytes)}`),
    htmlCard('broker per device', p.brokerCpuCores === null && p.brokerRssBytes === null ? '-' : `${p.brokerCpuCores === null ? '-' : `${formatNumber(p.brokerCpuCores * 1000)} mcore`} · ${p.brokerRssBytes === null ? '-' : formatBytes(p.brokerRssBytes)}`),
    ...(x === undefined ? [] : [htmlCard(`shards for ${formatCount(x.targetDevices)} devices`, formatCount(x.shards))]),
  ];
  return `<div class="cards">${cards.join('')}</div>`;
}

function stepsSection(result: CapacityResult): string {
  if (result.steps.length === 0) return `<p class="note">${result.error?.duringStep === true ? 'No step completed.' : 'No step ran.'}</p>`;
  const t = capacityStepTable(result);
  const notes = capacityStepNotes(result);
  const links = result.steps
    .filter((s) => s.runJson !== undefined)
    .map((s) => {
      const json = s.runJson!;
      const html = join(dirname(json), 'report.html');
      return `<li>step ${s.index}: <a href="${esc(json)}">${esc(json)}</a> · <a href="${esc(html)}">${esc(html)}</a></li>`;
    });
  return [
    htmlTable(t.header, t.rows, [0]),
    '<p class="note">Per-device columns: the step\'s usage ÷ its devices (the process\'s fixed cost included); the cost model below separates the two.</p>',
    notes.length === 0 ? '' : `<ul class="notes">${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`,
    links.length === 0 ? '' : `<h3>Each step's run</h3><ul class="notes">${links.join('')}</ul>`,
  ].filter((part) => part !== '').join('\n');
}

function costModelSection(result: CapacityResult): string {
  const model = result.costModel;
  const t = costModelTable(model);
  const left = [...(model.excludedSteps ?? []).map((e) => `left out: step ${e.step}, ${e.reason}`), ...(model.notes ?? [])];
  return [
    `<p class="note">${esc(`Least-squares lines against devices ${fittedStepsText(model)}. The slope is what one more device costs; the fixed part is the process's own cost, paid once per process.`)}</p>`,
    usageCharts(result),
    htmlTable(t.header, t.rows, [0, 1, 2, 3]),
    left.length === 0 ? '' : `<ul class="notes">${left.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`,
  ].filter((part) => part !== '').join('\n');
}

function extrapolationSection(result: CapacityResult): string {
  const x = result.extrapolation;
  if (x === undefined) return '<p class="note">No extrapolation (no --target-devices).</p>';
  return [
    '<div class="beside">',
    `<div>${htmlKeyValueTable(extrapolationRows(x))}</div>`,
    `<div><h3>Assumptions</h3><ul class="assumptions">${x.assumptions.map((a) => `<li>${esc(a)}</li>`).join('')}</ul></div>`,
    '</div>',
  ].join('\n');
}

const capacityCss = `
svg .band-beyond { fill: #fee2e2; fill-opacity: .55; }
#steps table { font-size: 12.5px; } #steps th, #steps td { padding: 4px 5px; }
.beside { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1.3fr); gap: 20px; align-items: start; }
.beside table.kv th { width: 140px; }
ul.assumptions { margin: 0; padding-left: 18px; } ul.assumptions li { margin: 0 0 5px; }
@media (max-width: 800px) { .beside { grid-template-columns: 1fr; } }
`;

/** The page: a pure function of the capacity result, byte for byte the same for the same capacity.json. */
export function formatCapacityHtml(result: CapacityResult): string {
  const nav = [['steps', 'Steps'], ['cost-model', 'Cost model'], ['extrapolation', 'Extrapolation']]
    .map(([id, name]) => `<a href="#${id}">${name}</a>`).join('');
  const body = [
    header(result),
    `<nav>${nav}</nav>`,
    keyFigures(result),
    htmlSection('steps', 'Steps', `${loadCharts(result)}\n${stepsSection(result)}`),
    htmlSection('cost-model', 'Cost model', costModelSection(result)),
    htmlSection('extrapolation', result.extrapolation === undefined ? 'Extrapolation' : `Extrapolation to ${formatCount(result.extrapolation.targetDevices)} devices`, extrapolationSection(result)),
    `<footer>${esc(`Generated by mqtt-sim ${result.tool.version} from capacity.json (schema ${result.schemaVersion}). Self-contained: no network needed to view it.`)}</footer>`,
  ];
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(`${result.scenario.name}: capacity · mqtt-sim report`)}</title>`,
    `<style>${reportCss}${capacityCss}</style>`,
    '</head>',
    '<body>',
    '<main>',
    ...body,
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------- writing

function reason(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== undefined && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

/**
 * Writes capacity.json, then report.html, into `dir` (created if missing), each atomically. Never
 * throws: a file that cannot be written (an unwritable folder, a full disk, a render bug) becomes one
 * sentence in `problems` with the path and why, and the other file is still attempted — the caller has
 * the result in memory and can print it (`--json`). `jsonPath` is where capacity.json is (or would be).
 */
export function writeCapacityReport(dir: string, result: CapacityResult): { jsonPath: string; problems: string[] } {
  const jsonPath = join(dir, capacityFileName);
  const htmlPath = join(dir, capacityHtmlFileName);
  const problems: string[] = [];
  let folder = true;
  try {
    makeDirectory(dir);
  } catch (err) {
    folder = false;
    problems.push(`cannot create the report folder ${dir}: ${reason(err)}; capacity.json and report.html were not written (use --json to get the result on stdout)`);
  }
  if (!folder) return { jsonPath, problems };

  let jsonWritten = false;
  try {
    writeTextAtomically(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
    jsonWritten = true;
  } catch (err) {
    problems.push(`cannot write ${jsonPath}: ${reason(err)} (use --json to get the result on stdout)`);
  }
  let html: string;
  try {
    html = formatCapacityHtml(result);
  } catch (err) {
    problems.push(`cannot render ${htmlPath}: ${reason(err)} (an mqtt-sim bug; please report it${jsonWritten ? ` with ${jsonPath}, which is complete` : ''})`);
    return { jsonPath, problems };
  }
  try {
    writeTextAtomically(htmlPath, html);
  } catch (err) {
    problems.push(`cannot write ${htmlPath}: ${reason(err)}${jsonWritten ? `; ${jsonPath} is complete` : ''}`);
  }
  return { jsonPath, problems };
}
