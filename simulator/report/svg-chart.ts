/**
 * Line charts as inline SVG strings for report.html: no library, no script, no external resource. The
 * caller maps its data to numbers (a log axis is a linear axis over log10 values with its own tick
 * labels); the chart scales, draws axes with 1-2-5 ticks, series, shaded bands and event markers, and
 * escapes every text it writes. Colors come from CSS classes defined by the page (`.s0`..`.s5`, `.m-*`).
 */
import { escapeMarkup } from './escape.js';

export interface ChartSeries {
  name: string;
  points: ReadonlyArray<readonly [x: number, y: number]>;
  /** Palette slot 0..5 (CSS classes s0..s5). */
  color: number;
  dashed?: boolean;
  /** Draw as steps (hold the value until the next x) rather than straight segments. */
  step?: boolean;
}

/** A shaded x range with a caption at the top (phases, chaos actions that lasted). */
export interface ChartBand {
  x1: number;
  x2: number;
  label: string;
  className: string;
  /** Caption row from the top (0: first; use 1 for bands that overlap others, e.g. chaos over phases). */
  labelRow?: number;
}

export type MarkerKind = 'chaos' | 'violation' | 'reconnect';

/** A vertical event line with a glyph and a hover title. */
export interface ChartMarker {
  x: number;
  kind: MarkerKind;
  /** Hover text (SVG <title>). */
  title: string;
}

export interface AxisTick {
  value: number;
  label: string;
}

export interface LineChartSpec {
  /** Accessible name of the chart (aria-label). */
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly ChartSeries[];
  bands?: readonly ChartBand[];
  markers?: readonly ChartMarker[];
  /** Default: the extent of the data. */
  xDomain?: readonly [number, number];
  /** Default: nice ticks of the domain. */
  xTicks?: readonly AxisTick[];
  formatX?: (x: number) => string;
  formatY?: (y: number) => string;
  width?: number;
  height?: number;
}

const MARGIN = { top: 26, right: 16, bottom: 40, left: 62 };

/** Coordinates with one decimal: short, and the same text on every machine. */
const c = (n: number): string => (Math.round(n * 10) / 10).toFixed(1).replace(/\.0$/, '');

/** A 1-2-5 step giving about `count` ticks over [min, max]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** The upper end of a y axis starting at 0: the first nice tick at or above the largest value (1 when empty). */
export function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const ticks = niceTicks(0, max, 4);
  const last = ticks[ticks.length - 1]!;
  return last >= max ? last : last + (ticks[1]! - ticks[0]!);
}

function defaultFormat(n: number): string {
  if (Math.abs(n) >= 1000) return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return String(Number(n.toPrecision(4)));
}

function markerGlyph(kind: MarkerKind, x: number, top: number, bottom: number): string {
  switch (kind) {
    case 'chaos':
      return `<line x1="${c(x)}" y1="${c(top)}" x2="${c(x)}" y2="${c(bottom)}" class="m-line m-chaos" stroke-dasharray="4 3"/>`
        + `<path d="M${c(x - 5)} ${c(top - 9)}h10l-5 8z" class="m-chaos-fill"/>`;
    case 'violation':
      return `<line x1="${c(x)}" y1="${c(bottom - 14)}" x2="${c(x)}" y2="${c(bottom)}" class="m-line m-violation"/>`
        + `<path d="M${c(x - 5)} ${c(bottom)}h10l-5 -8z" class="m-violation-fill"/>`;
    case 'reconnect':
      return `<circle cx="${c(x)}" cy="${c(top + 5)}" r="4" class="m-reconnect-fill"/>`;
  }
}

/** The chart as an `<svg>` element string with a viewBox, so it scales to its container. */
export function lineChart(spec: LineChartSpec): string {
  const width = spec.width ?? 920;
  const height = spec.height ?? 240;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const formatX = spec.formatX ?? defaultFormat;
  const formatY = spec.formatY ?? defaultFormat;

  const xs = spec.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = spec.series.flatMap((s) => s.points.map((p) => p[1]));
  const [x0, x1raw] = spec.xDomain ?? [xs.length > 0 ? Math.min(...xs) : 0, xs.length > 0 ? Math.max(...xs) : 1];
  const x1 = x1raw > x0 ? x1raw : x0 + 1;
  const yMax = niceMax(ys.length > 0 ? Math.max(...ys) : 0);
  const sx = (x: number): number => MARGIN.left + ((Math.min(Math.max(x, x0), x1) - x0) / (x1 - x0)) * plotW;
  const sy = (y: number): number => MARGIN.top + plotH - (Math.max(0, y) / yMax) * plotH;
  const top = MARGIN.top;
  const bottom = MARGIN.top + plotH;

  const out: string[] = [];
  out.push(`<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeMarkup(spec.title)}">`);

  for (const band of spec.bands ?? []) {
    const bx1 = sx(band.x1);
    const bx2 = sx(band.x2);
    if (bx2 - bx1 < 0.5) continue;
    out.push(`<rect x="${c(bx1)}" y="${c(top)}" width="${c(bx2 - bx1)}" height="${c(plotH)}" class="${escapeMarkup(band.className)}"><title>${escapeMarkup(band.label)}</title></rect>`);
    if (bx2 - bx1 > 40) out.push(`<text x="${c(bx1 + 4)}" y="${c(top + 11 + 12 * (band.labelRow ?? 0))}" class="band-label">${escapeMarkup(band.label)}</text>`);
  }

  // Grid and y axis.
  for (const t of niceTicks(0, yMax, 4)) {
    const y = sy(t);
    out.push(`<line x1="${MARGIN.left}" y1="${c(y)}" x2="${c(MARGIN.left + plotW)}" y2="${c(y)}" class="grid"/>`);
    out.push(`<text x="${MARGIN.left - 6}" y="${c(y + 4)}" class="tick" text-anchor="end">${escapeMarkup(formatY(t))}</text>`);
  }
  const xTicks = spec.xTicks ?? niceTicks(x0, x1, 8).map((value) => ({ value, label: formatX(value) }));
  for (const t of xTicks) {
    if (t.value < x0 || t.value > x1) continue;
    const x = sx(t.value);
    out.push(`<line x1="${c(x)}" y1="${c(bottom)}" x2="${c(x)}" y2="${c(bottom + 4)}" class="axis"/>`);
    out.push(`<text x="${c(x)}" y="${c(bottom + 16)}" class="tick" text-anchor="middle">${escapeMarkup(t.label)}</text>`);
  }
  out.push(`<line x1="${MARGIN.left}" y1="${c(bottom)}" x2="${c(MARGIN.left + plotW)}" y2="${c(bottom)}" class="axis"/>`);
  out.push(`<line x1="${MARGIN.left}" y1="${c(top)}" x2="${MARGIN.left}" y2="${c(bottom)}" class="axis"/>`);
  out.push(`<text x="${c(MARGIN.left + plotW / 2)}" y="${c(height - 6)}" class="axis-label" text-anchor="middle">${escapeMarkup(spec.xLabel)}</text>`);
  out.push(`<text x="14" y="${c(top + plotH / 2)}" class="axis-label" text-anchor="middle" transform="rotate(-90 14 ${c(top + plotH / 2)})">${escapeMarkup(spec.yLabel)}</text>`);

  for (const s of spec.series) {
    if (s.points.length === 0) continue;
    const d: string[] = [];
    s.points.forEach(([x, y], i) => {
      if (i === 0) d.push(`M${c(sx(x))} ${c(sy(y))}`);
      else if (s.step === true) d.push(`H${c(sx(x))}V${c(sy(y))}`);
      else d.push(`L${c(sx(x))} ${c(sy(y))}`);
    });
    const dash = s.dashed === true ? ' stroke-dasharray="6 4"' : '';
    out.push(`<path d="${d.join('')}" class="line s${s.color}"${dash}><title>${escapeMarkup(s.name)}</title></path>`);
    if (s.points.length === 1) {
      const [x, y] = s.points[0]!;
      out.push(`<circle cx="${c(sx(x))}" cy="${c(sy(y))}" r="3" class="dot s${s.color}"/>`);
    }
  }

  for (const m of spec.markers ?? []) {
    if (m.x < x0 || m.x > x1) continue;
    out.push(`<g class="marker">${markerGlyph(m.kind, sx(m.x), top, bottom)}<title>${escapeMarkup(m.title)}</title></g>`);
  }

  // Legend, top right, one entry per series.
  let lx = MARGIN.left + plotW;
  const legend: string[] = [];
  for (const s of [...spec.series].reverse()) {
    const w = 26 + s.name.length * 6.4;
    lx -= w;
    const dash = s.dashed === true ? ' stroke-dasharray="6 4"' : '';
    legend.push(`<line x1="${c(lx)}" y1="12" x2="${c(lx + 16)}" y2="12" class="line s${s.color}"${dash}/><text x="${c(lx + 20)}" y="16" class="legend">${escapeMarkup(s.name)}</text>`);
  }
  out.push(...legend.reverse());
  out.push('</svg>');
  return out.join('');
}
