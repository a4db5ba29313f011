/**
 * Clock offsets between the slices of a distributed run (`mqtt-sim run --shard i/n` on several machines).
 *
 * End-to-end latency is the subscriber's clock minus the publisher's stamp, so when a message crosses
 * from slice A to slice B its latency also holds clockB − clockA. The offsets are estimated from the
 * traffic itself, the way NTP does it: the fastest message A→B took d + (clockB − clockA), the fastest
 * B→A took d + (clockA − clockB), so clockB − clockA ≈ (minAB − minBA) / 2 — if the fastest path takes
 * as long each way (a message crosses publisher→broker→subscriber, so A→B and B→A use the same two
 * links, each in the other direction). Each pair of slices with traffic both ways gives one such
 * difference; the offsets relative to slice 1 are their least-squares fit.
 *
 * Three parts, used in three places:
 * - the shard records, per publishing slice, the minimum raw latency and e2e.qos0|1|2 histograms
 *   (SliceLatencyRecorder; raw latencies can be negative, so negatives get their own histograms);
 * - the orchestrator merges its shards' records into the slice's run.json (mergeSliceClockRecords);
 * - `mqtt-sim merge` estimates the offsets (estimateClockOffsets), shifts each per-source histogram by the
 *   offset difference before adding them into e2e and e2e.qos0|1|2 (correctedLatencyHistograms), and
 *   moves the delivery checker's times of every slice onto slice 1's clock (shiftCheckerTimes).
 */
import type { QoS } from '../../protocol/packets.js';
import { createHistogram, decodeHistogram, encodeHistogram, MAX_MICROS, MIN_MICROS, type Histogram } from '../metrics/histograms.js';
import { histogramNames } from '../metrics/types.js';
import type { ClockOffsets, SliceClockRecord, SliceLatencySample } from '../report/run-result.js';
import type { Scenario } from '../scenario/types.js';
import type { SerializedLedgers } from '../verify/ledger.js';
import { fleetLayout, fleetOfStream, streamsPerDevice, type RunSlice } from './plan.js';

/**
 * Slices beyond which nothing is recorded: each slice would keep up to 3 histograms per publishing
 * slice and per shard, and the estimate solves a system of one equation per slice.
 */
export const MAX_CLOCK_SLICES = 64;

export const clockAssumption = 'the fastest message between two slices takes as long each way (symmetric minimum path delay through the broker)';

/** The histograms a per-source sample holds, by the QoS of the publish. */
const qosNames = [histogramNames.e2eQos(0), histogramNames.e2eQos(1), histogramNames.e2eQos(2)] as const;

// ---------------------------------------------------------------- recording (shard)

/** Whether a slice records its deliveries per publishing slice: 2 to MAX_CLOCK_SLICES slices. */
export function recordsSliceClock(slice: RunSlice | undefined): slice is RunSlice {
  return slice !== undefined && slice.count > 1 && slice.count <= MAX_CLOCK_SLICES;
}

/** stream id → the 1-based slice whose device publishes it (d % count + 1, as plan.ts slices), undefined for a foreign id. */
export function streamSliceOf(scenario: Scenario, count: number): (stream: number) => number | undefined {
  const layout = fleetLayout(scenario);
  const perDevice = scenario.fleets.map(streamsPerDevice);
  return (stream) => {
    const f = fleetOfStream(layout.streamRanges, stream);
    if (f === undefined) return undefined;
    const device = layout.fleetDeviceOffsets[f]! + Math.floor((stream - layout.streamRanges[f]!.first) / perDevice[f]!);
    return (device % count) + 1;
  };
}

interface SourceSlot {
  minMicros: number;
  count: number;
  positive: Array<Histogram | undefined>;
  negative: Array<Histogram | undefined>;
}

/**
 * One shard's deliveries per publishing slice: the minimum raw e2e latency, the count, and cumulative
 * e2e.qos0|1|2 histograms (created on first use; at most 3 × 2 per publishing slice).
 */
export class SliceLatencyRecorder {
  private readonly sources: Array<SourceSlot | undefined>;
  private readonly sliceOf: (stream: number) => number | undefined;

  constructor(scenario: Scenario, count: number) {
    this.sources = new Array<SourceSlot | undefined>(count + 1);
    this.sliceOf = streamSliceOf(scenario, count);
  }

  /** A delivery of `stream` published at `qos`, `rawMicros` = receive clock − stamp (may be negative). */
  record(stream: number, qos: QoS, rawMicros: number): void {
    if (rawMicros !== rawMicros) return;
    const source = this.sliceOf(stream);
    if (source === undefined) return;
    let slot = this.sources[source];
    if (slot === undefined) {
      slot = { minMicros: Infinity, count: 0, positive: [undefined, undefined, undefined], negative: [undefined, undefined, undefined] };
      this.sources[source] = slot;
    }
    slot.count++;
    if (rawMicros < slot.minMicros) slot.minMicros = rawMicros;
    const side = rawMicros >= 0 ? slot.positive : slot.negative;
    const h = (side[qos] ??= createHistogram());
    h.recordValue(clampMagnitude(rawMicros));
  }

  /** The record for run.json (every publishing slice seen so far). */
  toRecord(): SliceClockRecord {
    const fromSlice: Record<string, SliceLatencySample> = {};
    this.sources.forEach((slot, source) => {
      if (slot === undefined || slot.count === 0) return;
      fromSlice[String(source)] = {
        minE2eMs: round3(slot.minMicros / 1000),
        count: slot.count,
        histograms: encodeSide(slot.positive),
        negativeHistograms: encodeSide(slot.negative),
      };
    });
    return { fromSlice };
  }
}

function clampMagnitude(micros: number): number {
  const m = Math.round(Math.abs(micros));
  return m < MIN_MICROS ? MIN_MICROS : m > MAX_MICROS ? MAX_MICROS : m;
}

function encodeSide(side: ReadonlyArray<Histogram | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  side.forEach((h, qos) => {
    if (h !== undefined && h.totalCount > 0) out[qosNames[qos]!] = encodeHistogram(h);
  });
  return out;
}

const round3 = (n: number): number => Math.round(n * 1000) / 1000;

/** Adds encoded histograms into `into` by name (decoded; created when missing). */
function addEncoded(into: Map<string, Histogram>, encoded: Readonly<Record<string, string>>): void {
  for (const [name, text] of Object.entries(encoded)) {
    const h = decodeHistogram(text);
    const old = into.get(name);
    if (old === undefined) into.set(name, h);
    else old.add(h);
  }
}

function encodeMap(map: ReadonlyMap<string, Histogram>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [...map.keys()].sort()) {
    const h = map.get(name)!;
    if (h.totalCount > 0) out[name] = encodeHistogram(h);
  }
  return out;
}

/** The shards' records of one slice as one: minimum of the minimums, counts and histograms added. */
export function mergeSliceClockRecords(records: readonly SliceClockRecord[]): SliceClockRecord {
  const acc = new Map<string, { min: number; count: number; positive: Map<string, Histogram>; negative: Map<string, Histogram> }>();
  for (const r of records) {
    for (const [source, s] of Object.entries(r.fromSlice)) {
      let a = acc.get(source);
      if (a === undefined) {
        a = { min: Infinity, count: 0, positive: new Map(), negative: new Map() };
        acc.set(source, a);
      }
      a.min = Math.min(a.min, s.minE2eMs);
      a.count += s.count;
      addEncoded(a.positive, s.histograms);
      addEncoded(a.negative, s.negativeHistograms);
    }
  }
  const fromSlice: Record<string, SliceLatencySample> = {};
  for (const source of [...acc.keys()].sort((a, b) => Number(a) - Number(b))) {
    const a = acc.get(source)!;
    fromSlice[source] = { minE2eMs: a.min, count: a.count, histograms: encodeMap(a.positive), negativeHistograms: encodeMap(a.negative) };
  }
  return { fromSlice };
}

// ---------------------------------------------------------------- estimating (merge)

/** The fastest delivery from one slice to another (1-based indexes), as a receiving slice recorded it. */
export interface DirectedMin {
  from: number;
  to: number;
  minMs: number;
  count: number;
}

export interface ClockEstimate {
  /** offsetsMs[i - 1]: clock of slice i minus clock of slice 1, ms; null when it cannot be estimated. Slice 1 is 0. */
  offsetsMs: Array<number | null>;
  pairs: ClockOffsets['pairs'];
}

/**
 * Least-squares clock offsets relative to slice 1 from the fastest deliveries each way. A pair (a, b)
 * with deliveries both ways says clock_b − clock_a ≈ (min a→b − min b→a) / 2; the offsets minimize the
 * squared misfit over every such pair. A slice with no chain of two-way pairs to slice 1 (deliveries
 * only one way, or none) has no estimate: null. Pure: the same mins give the same offsets.
 */
export function estimateClockOffsets(count: number, mins: readonly DirectedMin[]): ClockEstimate {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`estimateClockOffsets: count must be a whole number of at least 1, got ${count}`);
  const fastest = new Map<string, DirectedMin>();
  for (const m of mins) {
    if (m.count <= 0 || m.from === m.to || !Number.isFinite(m.minMs)) continue;
    if (m.from < 1 || m.from > count || m.to < 1 || m.to > count) continue;
    const key = `${m.from}>${m.to}`;
    const old = fastest.get(key);
    if (old === undefined) fastest.set(key, { ...m });
    else fastest.set(key, { ...m, minMs: Math.min(old.minMs, m.minMs), count: old.count + m.count });
  }
  const pairs: ClockOffsets['pairs'] = [];
  const neighbours: number[][] = Array.from({ length: count + 1 }, () => []);
  for (let a = 1; a <= count; a++) {
    for (let b = a + 1; b <= count; b++) {
      const ab = fastest.get(`${a}>${b}`);
      const ba = fastest.get(`${b}>${a}`);
      if (ab === undefined || ba === undefined) continue;
      pairs.push({ slices: [a, b], minE2eMs: [ab.minMs, ba.minMs], counts: [ab.count, ba.count], offsetMs: round3((ab.minMs - ba.minMs) / 2) });
      neighbours[a]!.push(b);
      neighbours[b]!.push(a);
    }
  }
  // The slices joined to slice 1 by two-way pairs; only their offsets relative to slice 1 are defined.
  const reached = new Set<number>([1]);
  const queue = [1];
  while (queue.length > 0) {
    for (const n of neighbours[queue.shift()!]!) {
      if (!reached.has(n)) {
        reached.add(n);
        queue.push(n);
      }
    }
  }
  const unknowns = [...reached].filter((i) => i !== 1).sort((a, b) => a - b);
  const column = new Map(unknowns.map((slice, k) => [slice, k]));
  // Normal equations of min Σ (o_b − o_a − y_ab)²: the graph Laplacian with o_1 = 0 removed.
  const n = unknowns.length;
  const matrix = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  const rhs = new Array<number>(n).fill(0);
  for (const p of pairs) {
    const [a, b] = p.slices;
    if (!reached.has(a)) continue;
    const y = (p.minE2eMs[0] - p.minE2eMs[1]) / 2;
    const ka = column.get(a);
    const kb = column.get(b);
    if (ka !== undefined) {
      matrix[ka]![ka]! += 1;
      rhs[ka]! -= y;
    }
    if (kb !== undefined) {
      matrix[kb]![kb]! += 1;
      rhs[kb]! += y;
    }
    if (ka !== undefined && kb !== undefined) {
      matrix[ka]![kb]! -= 1;
      matrix[kb]![ka]! -= 1;
    }
  }
  const solution = solve(matrix, rhs);
  const offsetsMs: Array<number | null> = Array.from({ length: count }, (_, i) => (i === 0 ? 0 : null));
  // + 0 turns a rounded -0 into 0.
  unknowns.forEach((slice, k) => (offsetsMs[slice - 1] = round3(solution[k]!) + 0));
  return { offsetsMs, pairs };
}

/** Gaussian elimination with partial pivoting; the system is symmetric positive definite (a connected graph's reduced Laplacian). */
function solve(matrix: number[][], rhs: number[]): number[] {
  const n = rhs.length;
  const a = matrix.map((row, i) => [...row, rhs[i]!]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[pivot]![col]!)) pivot = r;
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    const p = a[col]![col]!;
    for (let r = col + 1; r < n; r++) {
      const f = a[r]![col]! / p;
      if (f === 0) continue;
      for (let c = col; c <= n; c++) a[r]![c]! -= f * a[col]![c]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = a[r]![n]!;
    for (let c = r + 1; c < n; c++) s -= a[r]![c]! * x[c]!;
    x[r] = s / a[r]![r]!;
  }
  return x;
}

/** The directed minimums of every slice's record (receiving slice `to`). */
export function directedMins(records: ReadonlyArray<{ index: number; clock: SliceClockRecord }>): DirectedMin[] {
  return records.flatMap((r) => Object.entries(r.clock.fromSlice).map(([from, s]) => ({ from: Number(from), to: r.index, minMs: s.minE2eMs, count: s.count })));
}

// ---------------------------------------------------------------- correcting (merge)

/**
 * Adds `h` into `into` with every value v moved to sign × v + shiftMicros (clamped to the histogram
 * range: a corrected latency below 1 µs counts as 1 µs). Values are bucket midpoints, so a shift of 0
 * leaves every value in its bucket.
 */
export function addShifted(into: Histogram, h: Histogram, shiftMicros: number, sign: 1 | -1 = 1): void {
  const js = h as unknown as { countsArrayLength: number; getCountAtIndex(i: number): number; valueFromIndex(i: number): number; medianEquivalentValue(v: number): number };
  for (let i = 0; i < js.countsArrayLength; i++) {
    const count = js.getCountAtIndex(i);
    if (count <= 0) continue;
    const value = sign * js.medianEquivalentValue(js.valueFromIndex(i)) + shiftMicros;
    into.recordValueWithCount(value < MIN_MICROS ? MIN_MICROS : value > MAX_MICROS ? MAX_MICROS : Math.round(value), count);
  }
}

/**
 * e2e and e2e.qos0|1|2 of the whole run rebuilt from the slices' per-source histograms, each shifted by
 * −(offset of the receiving slice − offset of the publishing slice): the latencies as one clock would
 * have measured them. `offsetsMs[i - 1]` is slice i's offset (all known).
 */
export function correctedLatencyHistograms(records: ReadonlyArray<{ index: number; clock: SliceClockRecord }>, offsetsMs: readonly number[]): Map<string, Histogram> {
  const out = new Map<string, Histogram>();
  const target = (name: string): Histogram => {
    let h = out.get(name);
    if (h === undefined) {
      h = createHistogram();
      out.set(name, h);
    }
    return h;
  };
  for (const r of records) {
    for (const [from, s] of Object.entries(r.clock.fromSlice)) {
      const shiftMicros = -(offsetsMs[r.index - 1]! - offsetsMs[Number(from) - 1]!) * 1000;
      for (const [sign, side] of [[1, s.histograms], [-1, s.negativeHistograms]] as const) {
        for (const [name, text] of Object.entries(side)) {
          const h = decodeHistogram(text);
          addShifted(target(name), h, shiftMicros, sign);
          addShifted(target(histogramNames.e2e), h, shiftMicros, sign);
        }
      }
    }
  }
  return out;
}

/** Deliveries per e2e histogram name in a slice's record (to check it covers every delivery of the slice). */
export function recordedCounts(clock: SliceClockRecord): Record<string, number> {
  const counts: Record<string, number> = { [histogramNames.e2e]: 0 };
  for (const s of Object.values(clock.fromSlice)) {
    for (const side of [s.histograms, s.negativeHistograms]) {
      for (const [name, text] of Object.entries(side)) {
        const n = decodeHistogram(text).totalCount;
        counts[name] = (counts[name] ?? 0) + n;
        counts[histogramNames.e2e]! += n;
      }
    }
  }
  return counts;
}

/**
 * The delivery checker's records of one slice moved onto slice 1's clock (every time minus the slice's
 * offset): publish brackets widen outward (lo floored, hi ceiled), unknown (-1) stays unknown. A new
 * object; the input is not changed.
 */
export function shiftCheckerTimes(ledgers: SerializedLedgers, offsetMs: number): SerializedLedgers {
  const records = ledgers.checker;
  if (records === undefined || offsetMs === 0) return ledgers;
  const times = records.times.map((t) => {
    const points = t.points.slice();
    for (let i = 0; i + 2 < points.length; i += 3) {
      points[i + 1] = Math.floor(points[i + 1]! - offsetMs);
      if (points[i + 2]! >= 0) points[i + 2] = Math.ceil(points[i + 2]! - offsetMs);
    }
    return { stream: t.stream, points };
  });
  const sessions = records.sessions.map((s) => ({
    device: s.device,
    events: s.events.map((e) => {
      const moved = { ...e, atMs: Math.round(e.atMs - offsetMs) };
      if (e.quietSinceMs !== undefined) moved.quietSinceMs = Math.floor(e.quietSinceMs - offsetMs);
      return moved;
    }),
  }));
  return { ...ledgers, checker: { ...records, times, sessions } };
}

// ---------------------------------------------------------------- the merge's decision

export interface SliceClockInput {
  index: number;
  count: number;
  /** The slice's record; undefined when its run.json has none (more than MAX_CLOCK_SLICES slices, or an older mqtt-sim). */
  clock: SliceClockRecord | undefined;
  /** The slice's own e2e histogram counts by name (run.json latency[name].count), to check the record covers them. */
  e2eCounts: Record<string, number>;
}

export interface ClockDecision {
  clockOffsets: ClockOffsets;
  /** Replacement e2e histograms (corrected) when every offset is known; null: keep the uncorrected merge. */
  histograms: Map<string, Histogram> | null;
  /** Offset per slice (index − 1) to move the checker's times by; null: leave them. */
  checkerOffsetsMs: number[] | null;
  notes: string[];
}

const formatOffset = (ms: number): string => `${ms >= 0 ? '+' : '−'}${Math.abs(ms).toFixed(1)} ms`;
const sliceList = (slices: readonly number[]): string => `${slices.length === 1 ? 'slice' : 'slices'} ${slices.join(', ')}`;

/**
 * What `mqtt-sim merge` does about clocks: estimate the offsets; when every slice has one, correct e2e
 * and e2e.qos0|1|2 and the checker's times and say so with the offsets; otherwise keep the uncorrected
 * numbers and name the slices whose latency is not comparable.
 */
export function decideClockCorrection(slices: readonly SliceClockInput[]): ClockDecision {
  const count = slices[0]?.count ?? 1;
  const offsetsMs: Record<string, number | null> = {};
  const base: ClockOffsets = { method: 'min-e2e-both-ways', assumption: clockAssumption, offsetsMs, pairs: [], corrected: [] };
  const uncomparable = (why: string): ClockDecision => ({
    clockOffsets: base,
    histograms: null,
    checkerOffsetsMs: null,
    notes: [`latency across slices is not comparable unless the machines running them had synchronized clocks: ${why}; the latencies are uncorrected`],
  });
  for (const s of slices) offsetsMs[String(s.index)] = s.index === 1 ? 0 : null;
  if (count === 1) return { clockOffsets: base, histograms: null, checkerOffsetsMs: null, notes: [] };
  if (count > MAX_CLOCK_SLICES) return uncomparable(`with more than ${MAX_CLOCK_SLICES} slices the slices record no per-slice latencies, so no clock offset is estimated`);
  const without = slices.filter((s) => s.clock === undefined).map((s) => s.index);
  if (without.length > 0) return uncomparable(`${sliceList(without)} recorded no per-slice latencies (run.json written by an older mqtt-sim), so no clock offset is estimated`);
  const records = slices.map((s) => ({ index: s.index, clock: s.clock! }));
  const estimate = estimateClockOffsets(count, directedMins(records));
  estimate.offsetsMs.forEach((o, i) => (offsetsMs[String(i + 1)] = o));
  base.pairs = estimate.pairs;
  const unknown = estimate.offsetsMs.flatMap((o, i) => (o === null ? [i + 1] : []));
  if (unknown.length > 0) {
    return uncomparable(`no clock offset could be estimated for ${sliceList(unknown)} (an offset needs deliveries both ways between a slice and slice 1, or a chain of such slices; there were only deliveries one way, or none)`);
  }
  const known = estimate.offsetsMs as number[];
  const offsetsText = known.slice(1).map((o, i) => `slice ${i + 2} ${formatOffset(o)}`).join(', ');
  const estimated = `clock offsets relative to slice 1: ${offsetsText}, estimated NTP-style from the fastest delivery each way between ${estimate.pairs.length} pair(s) of slices, assuming ${clockAssumption}`;
  // The record must cover every delivery of the slice, or rebuilding e2e from it would drop some.
  const gaps = slices.filter((s) => {
    const recorded = recordedCounts(s.clock!);
    return [histogramNames.e2e, ...qosNames].some((name) => (recorded[name] ?? 0) !== (s.e2eCounts[name] ?? 0));
  });
  if (gaps.length > 0) {
    base.corrected = ['checker times'];
    return { clockOffsets: base, histograms: null, checkerOffsetsMs: known, notes: [`${estimated}; the delivery checker's times were corrected by them, but not the latencies: the per-slice latencies of ${sliceList(gaps.map((s) => s.index))} do not cover all of its deliveries (stamps from outside the scenario), so e2e latencies across slices are uncorrected and only comparable with synchronized clocks`] };
  }
  const histograms = correctedLatencyHistograms(records, known);
  base.corrected = [...[...histograms.keys()].sort(), 'checker times'];
  return {
    clockOffsets: base,
    histograms,
    checkerOffsetsMs: known,
    notes: [`${estimated}; corrected by them: the ${[...histograms.keys()].sort().join(', ')} latencies and the delivery checker's times; not corrected: the per-fleet e2e@<fleet> latencies and the timeline points`],
  };
}
