/**
 * Clock offsets between slices: the NTP-style estimator (pure), the per-source recorder of a shard, the
 * correction of e2e histograms and of the checker's times, and what merge decides and says.
 */
import { describe, expect, it } from 'vitest';
import {
  addShifted,
  decideClockCorrection,
  estimateClockOffsets,
  MAX_CLOCK_SLICES,
  mergeSliceClockRecords,
  shiftCheckerTimes,
  SliceLatencyRecorder,
  streamSliceOf,
  type DirectedMin,
  type SliceClockInput,
} from '../../../../simulator/orchestrator/clock-offsets.js';
import { createHistogram, decodeHistogram, summarizeHistogram } from '../../../../simulator/metrics/histograms.js';
import { parseScenario } from '../../../../simulator/scenario/load.js';
import type { SerializedLedgers } from '../../../../simulator/verify/ledger.js';

/** The fastest deliveries both ways between slices whose clocks are `offsets` (clock − slice 1's) over a path of `delayMs`. */
function minsFor(offsets: readonly number[], delayMs: (from: number, to: number) => number, pairs: ReadonlyArray<[number, number]>): DirectedMin[] {
  return pairs.map(([from, to]) => ({ from, to, minMs: delayMs(from, to) + offsets[to - 1]! - offsets[from - 1]!, count: 100 }));
}

describe('estimateClockOffsets', () => {
  it('recovers +40 ms on slice 2 from the fastest delivery each way', () => {
    const mins = minsFor([0, 40], () => 1.2, [[1, 2], [2, 1]]);
    expect(mins.map((m) => m.minMs)).toEqual([41.2, -38.8]);
    const e = estimateClockOffsets(2, mins);
    expect(e.offsetsMs[0]).toBe(0);
    expect(e.offsetsMs[1]).toBeCloseTo(40, 6);
    expect(e.pairs).toEqual([{ slices: [1, 2], minE2eMs: [41.2, -38.8], counts: [100, 100], offsetMs: 40 }]);
  });

  it('gives 0 for slices on one clock, whatever the path delay', () => {
    const all: Array<[number, number]> = [[1, 2], [2, 1], [1, 3], [3, 1], [2, 3], [3, 2]];
    const e = estimateClockOffsets(3, minsFor([0, 0, 0], (a, b) => 0.5 + a + b, all));
    expect(e.offsetsMs).toEqual([0, 0, 0]);
  });

  it('fits every pair by least squares when the pairs disagree', () => {
    // True offsets 0, 40, -15; the 2↔3 path is asymmetric by 6 ms, which puts 3 ms of error on that pair alone.
    const all: Array<[number, number]> = [[1, 2], [2, 1], [1, 3], [3, 1], [2, 3], [3, 2]];
    const mins = minsFor([0, 40, -15], (a, b) => (a === 2 && b === 3 ? 7 : 1), all);
    const e = estimateClockOffsets(3, mins);
    const pair23 = e.pairs.find((p) => p.slices[0] === 2 && p.slices[1] === 3)!;
    expect(pair23.offsetMs).toBeCloseTo(-55 + 3, 6);
    // Least squares over the triangle spreads the 3 ms misfit: each offset moves by 1 ms.
    expect(e.offsetsMs[1]).toBeCloseTo(39, 6);
    expect(e.offsetsMs[2]).toBeCloseTo(-14, 6);
  });

  it('chains pairs: a slice that only talks both ways with slice 2 is placed through it', () => {
    const mins = minsFor([0, 10, 25], () => 2, [[1, 2], [2, 1], [2, 3], [3, 2], [3, 1]]);
    const e = estimateClockOffsets(3, mins);
    expect(e.offsetsMs[1]).toBeCloseTo(10, 6);
    expect(e.offsetsMs[2]).toBeCloseTo(25, 6);
  });

  it('has no estimate for a slice with deliveries only one way, or none', () => {
    // 3 only publishes to 1; 4 hears nothing and says nothing; 5 and 6 talk both ways but not with 1..2.
    const mins = minsFor([0, 5, 0, 0, 0, 0], () => 1, [[1, 2], [2, 1], [3, 1], [5, 6], [6, 5]]);
    const e = estimateClockOffsets(6, mins);
    expect(e.offsetsMs[1]).toBeCloseTo(5, 6);
    expect(e.offsetsMs.slice(2)).toEqual([null, null, null, null]);
    expect(e.pairs.map((p) => p.slices)).toEqual([[1, 2], [5, 6]]);
  });

  it('ignores self-deliveries and empty entries, and keeps the fastest of duplicates', () => {
    const e = estimateClockOffsets(2, [
      { from: 1, to: 1, minMs: 0.1, count: 9 },
      { from: 1, to: 2, minMs: 30, count: 3 },
      { from: 1, to: 2, minMs: 21, count: 2 },
      { from: 2, to: 1, minMs: 19, count: 0 },
      { from: 2, to: 1, minMs: -19, count: 4 },
    ]);
    expect(e.offsetsMs[1]).toBeCloseTo(20, 6);
    expect(e.pairs[0]!.counts).toEqual([5, 4]);
  });
});

const scenario = parseScenario(`
name: clocks
seed: 3
duration: 10s
target: mqtt://127.0.0.1:1883
fleets:
  - name: s
    count: 5
    publish: [{ topic: "a/{id}", every: 1s }, { topic: "b/{id}", qos: 1, every: 1s }]
consumers:
  - name: c
    count: 2
    subscribe: "#"
`);

describe('SliceLatencyRecorder', () => {
  it('attributes a stream to the slice of its publishing device (d % count + 1)', () => {
    const sliceOf = streamSliceOf(scenario, 3);
    // Device d owns streams 2d and 2d + 1.
    expect([0, 1, 2, 3, 4, 5, 8, 9].map(sliceOf)).toEqual([1, 1, 2, 2, 3, 3, 2, 2]);
    expect(sliceOf(10)).toBeUndefined();
  });

  it('keeps the minimum raw latency, negatives included, and histograms per source and QoS', () => {
    const r = new SliceLatencyRecorder(scenario, 2);
    // Streams 0 (device 0 → slice 1, QoS 0) and 3 (device 1 → slice 2, QoS 1).
    r.record(0, 0, 1500);
    r.record(0, 0, 900);
    r.record(3, 1, -38_000);
    r.record(3, 1, 2_000);
    r.record(99, 1, 5); // not a stream of the scenario
    const rec = r.toRecord();
    expect(Object.keys(rec.fromSlice)).toEqual(['1', '2']);
    expect(rec.fromSlice['1']).toMatchObject({ minE2eMs: 0.9, count: 2 });
    expect(Object.keys(rec.fromSlice['1']!.histograms)).toEqual(['e2e.qos0']);
    expect(rec.fromSlice['1']!.negativeHistograms).toEqual({});
    expect(rec.fromSlice['2']).toMatchObject({ minE2eMs: -38, count: 2 });
    expect(decodeHistogram(rec.fromSlice['2']!.negativeHistograms['e2e.qos1']!).totalCount).toBe(1);
    expect(decodeHistogram(rec.fromSlice['2']!.histograms['e2e.qos1']!).totalCount).toBe(1);
  });

  it('merges the records of several shards', () => {
    const a = new SliceLatencyRecorder(scenario, 2);
    const b = new SliceLatencyRecorder(scenario, 2);
    a.record(3, 1, 4_000);
    b.record(3, 1, 3_000);
    b.record(2, 1, 7_000);
    const merged = mergeSliceClockRecords([a.toRecord(), b.toRecord()]);
    expect(merged.fromSlice['2']).toMatchObject({ minE2eMs: 3, count: 3 });
    expect(decodeHistogram(merged.fromSlice['2']!.histograms['e2e.qos1']!).totalCount).toBe(3);
  });
});

describe('addShifted', () => {
  it('keeps every percentile with a shift of 0 and moves them by the shift otherwise', () => {
    const h = createHistogram();
    for (let v = 1000; v <= 50_000; v += 37) h.recordValue(v);
    const same = createHistogram();
    addShifted(same, h, 0);
    expect(summarizeHistogram(same)).toEqual(summarizeHistogram(h));
    const moved = createHistogram();
    addShifted(moved, h, 10_000);
    expect(summarizeHistogram(moved).p50).toBeCloseTo(summarizeHistogram(h).p50 + 10, 0);
    const mirrored = createHistogram();
    addShifted(mirrored, h, 60_000, -1); // 60 ms − v
    expect(summarizeHistogram(mirrored).max).toBeCloseTo(59, 0);
    expect(mirrored.totalCount).toBe(h.totalCount);
  });
});

/**
 * Two slices on machines whose clocks differ by `skewMs` (slice 2 ahead), a true latency of 2..6 ms:
 * what each slice's shards would record, and the e2e counts its run.json would hold.
 */
function twoSlices(skewMs: number, oneWay = false): SliceClockInput[] {
  const receivers = [new SliceLatencyRecorder(scenario, 2), new SliceLatencyRecorder(scenario, 2)];
  const counts = [0, 0];
  for (let i = 0; i < 200; i++) {
    const trueMs = 2 + (i % 5);
    for (const [stream, from] of [[1, 1], [3, 2]] as const) {
      for (const to of [1, 2]) {
        if (oneWay && from === 1 && to === 2) continue;
        const skew = (to === 2 ? skewMs : 0) - (from === 2 ? skewMs : 0);
        receivers[to - 1]!.record(stream, 1, (trueMs + skew) * 1000);
        counts[to - 1]!++;
      }
    }
  }
  return receivers.map((r, i) => ({ index: i + 1, count: 2, clock: r.toRecord(), e2eCounts: { e2e: counts[i]!, 'e2e.qos1': counts[i]! } }));
}

describe('decideClockCorrection', () => {
  it('corrects e2e across slices by the estimated offset and says so with the assumption', () => {
    const d = decideClockCorrection(twoSlices(40));
    expect(d.clockOffsets.offsetsMs['1']).toBe(0);
    expect(d.clockOffsets.offsetsMs['2']).toBeCloseTo(40, 0);
    expect(d.clockOffsets.corrected).toEqual(['e2e', 'e2e.qos1', 'checker times']);
    expect(d.checkerOffsetsMs![1]).toBeCloseTo(40, 0);
    const e2e = summarizeHistogram(d.histograms!.get('e2e')!);
    expect(e2e.count).toBe(800);
    // Every delivery back at its true 2..6 ms: nothing near −38 or 46 ms.
    expect(e2e.min).toBeGreaterThanOrEqual(1.9);
    expect(e2e.max).toBeLessThanOrEqual(6.1);
    expect(d.notes.join(' ')).toMatch(/^clock offsets relative to slice 1: slice 2 \+40\.0 ms, estimated .*symmetric minimum path delay.*; corrected by them: the e2e, e2e\.qos1 latencies and the delivery checker's times/);
  });

  it('finds offsets of about 0 for slices on one clock and changes no latency', () => {
    const d = decideClockCorrection(twoSlices(0));
    expect(d.clockOffsets.offsetsMs).toEqual({ '1': 0, '2': 0 });
    // Exactly what the slices recorded: the same buckets, so the same summary as the values recorded directly.
    const direct = createHistogram();
    for (let i = 0; i < 800; i++) direct.recordValue((2 + ((i >> 2) % 5)) * 1000);
    expect(summarizeHistogram(d.histograms!.get('e2e')!)).toEqual(summarizeHistogram(direct));
  });

  it('keeps the uncorrected latencies and names the slices when one cannot be estimated', () => {
    const d = decideClockCorrection(twoSlices(40, true));
    expect(d.clockOffsets.offsetsMs).toEqual({ '1': 0, '2': null });
    expect(d.histograms).toBeNull();
    expect(d.checkerOffsetsMs).toBeNull();
    expect(d.clockOffsets.corrected).toEqual([]);
    expect(d.notes).toHaveLength(1);
    expect(d.notes[0]).toMatch(/^latency across slices is not comparable unless the machines running them had synchronized clocks: no clock offset could be estimated for slice 2 \(.*deliveries one way/);
  });

  it('does not rebuild e2e from records that miss deliveries of the slice', () => {
    const slices = twoSlices(40);
    slices[0]!.e2eCounts = { e2e: 401, 'e2e.qos1': 401 };
    const d = decideClockCorrection(slices);
    expect(d.histograms).toBeNull();
    expect(d.checkerOffsetsMs).not.toBeNull();
    expect(d.notes[0]).toMatch(/slice 1 do not cover all of its deliveries/);
  });

  it('says why when slices recorded nothing: an older run.json, or too many slices', () => {
    const old = twoSlices(0);
    old[1]!.clock = undefined;
    expect(decideClockCorrection(old).notes[0]).toMatch(/slice 2 recorded no per-slice latencies/);
    const many: SliceClockInput[] = Array.from({ length: MAX_CLOCK_SLICES + 1 }, (_, i) => ({ index: i + 1, count: MAX_CLOCK_SLICES + 1, clock: undefined, e2eCounts: {} }));
    expect(decideClockCorrection(many).notes[0]).toMatch(/more than 64 slices/);
    const one: SliceClockInput[] = [{ index: 1, count: 1, clock: undefined, e2eCounts: {} }];
    expect(decideClockCorrection(one)).toMatchObject({ notes: [], histograms: null, clockOffsets: { offsetsMs: { '1': 0 } } });
  });
});

describe('shiftCheckerTimes', () => {
  it("moves a slice's publish brackets and session events onto slice 1's clock, widening outward", () => {
    const ledgers: SerializedLedgers = {
      version: 1,
      streams: [],
      receivers: [],
      checker: {
        version: 1,
        times: [{ stream: 4, points: [0, 1000, 1010, 32, 2000, -1] }],
        sessions: [{ device: 7, events: [{ kind: 'subscribed', atMs: 900, granted: [1] }, { kind: 'lost', atMs: 3000, quietSinceMs: 2990 }] }],
      },
    };
    const shifted = shiftCheckerTimes(ledgers, 40.5);
    expect(shifted.checker!.times[0]!.points).toEqual([0, 959, 970, 32, 1959, -1]);
    expect(shifted.checker!.sessions[0]!.events).toEqual([{ kind: 'subscribed', atMs: 860, granted: [1] }, { kind: 'lost', atMs: 2960, quietSinceMs: 2949 }]);
    // The input is untouched.
    expect(ledgers.checker!.times[0]!.points[1]).toBe(1000);
  });
});
