/**
 * Percentile distributions for the HDR latency plot: each encoded histogram of run.json decoded and
 * sampled along x = log10(1 / (1 - p)), so 0 is the median's left end (0%), 1 is 90%, 2 is 99%, 3 is
 * 99.9%, ... The curve stops where the histogram runs out of samples (p = 1 - 1/count) and ends at the
 * maximum.
 */
import { decodeHistogram } from '../metrics/histograms.js';

export interface PercentileCurve {
  /** Histogram name in run.json (`e2e`, `e2e.qos1`, `ack.qos2`, ...). */
  name: string;
  count: number;
  /** [log10(1/(1-p)), latency ms]. */
  points: Array<[number, number]>;
}

/** Samples per decade of the x axis. */
const STEPS_PER_DECADE = 20;
/** The last decade drawn: 99.9999%. */
const MAX_DECADES = 6;

/** Decodes one histogram into its curve; null when it is empty or not a valid encoded histogram. */
export function percentileCurve(name: string, encoded: string): PercentileCurve | null {
  let histogram;
  try {
    histogram = decodeHistogram(encoded);
  } catch {
    return null;
  }
  const count = histogram.totalCount;
  if (!(count > 0)) return null;
  const ms = (micros: number): number => Math.round(micros) / 1000;
  const decades = Math.min(MAX_DECADES, Math.log10(Math.max(count, 1)));
  const points: Array<[number, number]> = [];
  const last = Math.floor(decades * STEPS_PER_DECADE);
  for (let i = 0; i <= last; i++) {
    const x = i / STEPS_PER_DECADE;
    const percentile = 100 * (1 - 10 ** -x);
    points.push([x, ms(histogram.getValueAtPercentile(percentile))]);
  }
  const end = Math.max(decades, points.length > 0 ? points[points.length - 1]![0] : 0);
  points.push([Number(end.toFixed(4)), ms(histogram.getValueAtPercentile(100))]);
  return { name, count, points };
}

/** The x axis label of a decade: 0 → "0%", 1 → "90%", 3 → "99.9%". */
export function decadeLabel(decade: number): string {
  if (decade <= 0) return '0%';
  return `${(100 * (1 - 10 ** -decade)).toFixed(Math.max(0, decade - 2))}%`;
}
