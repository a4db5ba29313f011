/**
 * Latency histograms (hdr-histogram-js, pure-JS implementation so it runs in any worker thread).
 * Values are integer MICROSECONDS clamped to [1, 3_600_000_000] (1 µs .. 1 h) at 3 significant digits;
 * summaries are in milliseconds. Shards encode (compressed base64), the main thread decodes and merges.
 */
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';
import type { LatencySummary } from '../report/run-result.js';
import type { EncodedHistograms } from './types.js';

export type { Histogram } from 'hdr-histogram-js';

export const MIN_MICROS = 1;
export const MAX_MICROS = 3_600_000_000;
const SIGNIFICANT_DIGITS = 3;

/**
 * An empty histogram with the layout every histogram of the simulator shares (lowest 1 µs, 3 digits,
 * auto-resizing), so any two can be added and give exact merged percentiles. 64-bit counts: cumulative
 * histograms of a long run can exceed 2^31 in one bucket.
 */
export function createHistogram(): Histogram {
  return build({
    bitBucketSize: 64,
    autoResize: true,
    lowestDiscernibleValue: 1,
    numberOfSignificantValueDigits: SIGNIFICANT_DIGITS,
    useWebAssembly: false,
  });
}

/** Rounds and clamps a latency in microseconds; NaN gives NaN (callers drop it). */
export function clampMicros(micros: number): number {
  if (micros < MIN_MICROS) return MIN_MICROS;
  if (micros > MAX_MICROS) return MAX_MICROS;
  return Math.round(micros);
}

export function encodeHistogram(h: Histogram): string {
  return encodeIntoCompressedBase64(h);
}

export function decodeHistogram(encoded: string): Histogram {
  const h = decodeFromCompressedBase64(encoded, 64, false);
  h.autoResize = true;
  return h;
}

/** Decodes each histogram of `encoded` and adds it to the one of the same name in `target` (created if missing). */
export function mergeInto(target: Map<string, Histogram>, encoded: EncodedHistograms): void {
  for (const [name, text] of Object.entries(encoded)) {
    const h = decodeHistogram(text);
    const into = target.get(name);
    if (into === undefined) target.set(name, h);
    else into.add(h);
  }
}

/** Encodes every non-empty histogram of a map. */
export function encodeAll(map: ReadonlyMap<string, Histogram>): EncodedHistograms {
  const out: EncodedHistograms = {};
  for (const [name, h] of map) if (h.totalCount > 0) out[name] = encodeHistogram(h);
  return out;
}

const microsToMs = (micros: number): number => Math.round(micros) / 1000;

/**
 * Milliseconds with 3 decimals (1 µs resolution), all zeros for an empty histogram. min and max are the
 * bucket-equivalent values (percentile 0 and 100, within 0.1% of the exact ones), because encoding and
 * merging keep only buckets: the summary is then the same before and after a round trip or a merge.
 */
export function summarizeHistogram(h: Histogram): LatencySummary {
  if (h.totalCount === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 };
  return {
    count: h.totalCount,
    min: microsToMs(h.getValueAtPercentile(0)),
    mean: microsToMs(h.mean),
    p50: microsToMs(h.getValueAtPercentile(50)),
    p90: microsToMs(h.getValueAtPercentile(90)),
    p95: microsToMs(h.getValueAtPercentile(95)),
    p99: microsToMs(h.getValueAtPercentile(99)),
    p999: microsToMs(h.getValueAtPercentile(99.9)),
    max: microsToMs(h.getValueAtPercentile(100)),
  };
}

/** A percentile in ms (3 decimals), or null when the histogram is missing or empty. */
export function percentileMs(h: Histogram | undefined, percentile: number): number | null {
  if (h === undefined || h.totalCount === 0) return null;
  return microsToMs(h.getValueAtPercentile(percentile));
}

interface Slot {
  interval: Histogram;
  cumulative: Histogram;
  /** Values recorded into `interval` since the last takeInterval(). */
  pending: number;
}

/**
 * The histograms of one shard. record() writes the interval histogram only (one bucket increment);
 * takeInterval() folds the interval into the cumulative one, encodes it and resets it, once a second.
 */
export class HistogramSet {
  private readonly slots = new Map<string, Slot>();
  private lastName = '';
  private lastSlot: Slot | undefined;

  private slot(name: string): Slot {
    if (name === this.lastName && this.lastSlot !== undefined) return this.lastSlot;
    let s = this.slots.get(name);
    if (s === undefined) {
      s = { interval: createHistogram(), cumulative: createHistogram(), pending: 0 };
      this.slots.set(name, s);
    }
    this.lastName = name;
    this.lastSlot = s;
    return s;
  }

  /** Records a latency in microseconds (rounded, clamped to [1 µs, 1 h]; NaN is ignored). */
  record(name: string, micros: number): void {
    if (micros !== micros) return;
    const s = this.slot(name);
    s.interval.recordValue(clampMicros(micros));
    s.pending++;
  }

  /**
   * A recorder bound to one histogram, for hot paths that would otherwise build the name per message
   * (e.g. `e2e@<fleet>`).
   */
  recorder(name: string): (micros: number) => void {
    const s = this.slot(name);
    return (micros: number) => {
      if (micros !== micros) return;
      s.interval.recordValue(clampMicros(micros));
      s.pending++;
    };
  }

  /** Encodes the histograms recorded since the last call (non-empty ones only), then resets them. */
  takeInterval(): EncodedHistograms {
    const out: EncodedHistograms = {};
    for (const [name, s] of this.slots) {
      if (s.pending === 0) continue;
      out[name] = encodeHistogram(s.interval);
      s.cumulative.add(s.interval);
      s.interval.reset();
      s.pending = 0;
    }
    return out;
  }

  /** Encodes the cumulative histograms (including values not yet taken by takeInterval), non-empty ones only. */
  cumulative(): EncodedHistograms {
    const out: EncodedHistograms = {};
    for (const [name, s] of this.slots) {
      if (s.pending === 0) {
        if (s.cumulative.totalCount > 0) out[name] = encodeHistogram(s.cumulative);
        continue;
      }
      const all = createHistogram();
      all.add(s.cumulative);
      all.add(s.interval);
      out[name] = encodeHistogram(all);
    }
    return out;
  }

  /** Names of the histograms recorded so far. */
  names(): string[] {
    return [...this.slots.keys()];
  }
}
