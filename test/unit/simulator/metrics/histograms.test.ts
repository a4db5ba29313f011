/** HistogramSet recording, interval/cumulative encoding, and merging across shards. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  createHistogram, decodeHistogram, encodeHistogram, HistogramSet, MAX_MICROS, mergeInto, summarizeHistogram, type Histogram,
} from '../../../../simulator/metrics/histograms.js';

const percentiles = [0, 50, 90, 95, 99, 99.9, 100];

function percentilesOf(h: Histogram): number[] {
  return percentiles.map((p) => h.getValueAtPercentile(p));
}

function single(values: readonly number[]): Histogram {
  const h = createHistogram();
  for (const v of values) h.recordValue(v);
  return h;
}

describe('HistogramSet', () => {
  it('takeInterval encodes only the histograms recorded since the last call, then resets them', () => {
    const set = new HistogramSet();
    set.record('e2e', 1000);
    set.record('e2e', 2000);
    set.record('connect', 500);
    const first = set.takeInterval();
    expect(Object.keys(first).sort()).toEqual(['connect', 'e2e']);
    expect(decodeHistogram(first['e2e']!).totalCount).toBe(2);
    set.record('e2e', 3000);
    const second = set.takeInterval();
    expect(Object.keys(second)).toEqual(['e2e']);
    expect(decodeHistogram(second['e2e']!).totalCount).toBe(1);
    expect(set.takeInterval()).toEqual({});
  });

  it('cumulative keeps everything, including values not taken by takeInterval yet', () => {
    const set = new HistogramSet();
    set.record('e2e', 1000);
    set.takeInterval();
    set.record('e2e', 9000);
    const all = decodeHistogram(set.cumulative()['e2e']!);
    expect(all.totalCount).toBe(2);
    expect(summarizeHistogram(all).max).toBeGreaterThanOrEqual(9);
    expect(summarizeHistogram(all).max).toBeLessThan(9.01);
    set.takeInterval(); // the pending value is folded once, not twice
    expect(decodeHistogram(set.cumulative()['e2e']!).totalCount).toBe(2);
  });

  it('rounds and clamps to [1 µs, 1 h] and ignores NaN', () => {
    const set = new HistogramSet();
    set.record('x', 0);
    set.record('x', -5);
    set.record('x', 0.4);
    set.record('x', 1e12);
    set.record('x', Infinity);
    set.record('x', NaN);
    const h = decodeHistogram(set.cumulative()['x']!);
    expect(h.totalCount).toBe(5);
    expect(h.minNonZeroValue).toBe(1);
    expect(h.getValueAtPercentile(40)).toBe(1);
    expect(h.maxValue).toBeGreaterThanOrEqual(MAX_MICROS);
    expect(h.maxValue).toBeLessThan(MAX_MICROS * 1.001);
  });

  it('a bound recorder records into the same histogram as record()', () => {
    const set = new HistogramSet();
    const rec = set.recorder('e2e@sensors');
    rec(100);
    set.record('e2e@sensors', 200);
    expect(decodeHistogram(set.takeInterval()['e2e@sensors']!).totalCount).toBe(2);
  });
});

describe('encode, decode, merge', () => {
  it('decode(encode(h)) keeps counts and percentiles', () => {
    const h = single([5, 50, 500, 5000, 50_000, 500_000, 5_000_000]);
    const back = decodeHistogram(encodeHistogram(h));
    expect(back.totalCount).toBe(7);
    expect(percentilesOf(back)).toEqual(percentilesOf(h));
  });

  it('merged percentiles of two sets equal those of recording everything in one', () => {
    const arbMicros = fc.integer({ min: 1, max: 3_600_000_000 });
    fc.assert(
      fc.property(fc.array(arbMicros, { minLength: 1, maxLength: 200 }), fc.array(arbMicros, { maxLength: 200 }), (a, b) => {
        const sa = new HistogramSet();
        const sb = new HistogramSet();
        for (const v of a) sa.record('e2e', v);
        for (const v of b) sb.record('e2e', v);
        const merged = new Map<string, Histogram>();
        mergeInto(merged, sa.cumulative());
        mergeInto(merged, sb.cumulative());
        const one = single([...a, ...b]);
        const m = merged.get('e2e')!;
        expect(m.totalCount).toBe(a.length + b.length);
        expect(percentilesOf(m)).toEqual(percentilesOf(one));
        expect(summarizeHistogram(m)).toEqual(summarizeHistogram(one));
      }),
      { numRuns: 50 },
    );
  });

  it('mergeInto creates missing names and adds to existing ones', () => {
    const target = new Map<string, Histogram>();
    mergeInto(target, { a: encodeHistogram(single([10])) });
    mergeInto(target, { a: encodeHistogram(single([20, 30])), b: encodeHistogram(single([40])) });
    expect(target.get('a')!.totalCount).toBe(3);
    expect(target.get('b')!.totalCount).toBe(1);
  });
});

describe('summarizeHistogram', () => {
  it('reports milliseconds with 3 decimals', () => {
    const values = Array.from({ length: 1000 }, (_, i) => (i + 1) * 1000); // 1..1000 ms
    const s = summarizeHistogram(single(values));
    expect(s.count).toBe(1000);
    expect(s.min).toBe(1);
    expect(s.p50).toBeCloseTo(500, 0);
    expect(s.p99).toBeCloseTo(990, -1);
    expect(s.max).toBeCloseTo(1000, -1);
    expect(s.mean).toBeCloseTo(500.5, 0);
    for (const v of Object.values(s)) expect(Math.round(v * 1000) / 1000).toBe(v);
  });

  it('is all zeros for an empty histogram', () => {
    expect(summarizeHistogram(createHistogram())).toEqual({ count: 0, min: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 });
  });
});
