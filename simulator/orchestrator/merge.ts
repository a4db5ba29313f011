/**
 * `mqtt-sim merge`: combines the run.json files of the slices of one distributed run (`mqtt-sim run
 * --shard i/n`) into the run.json of the whole run. Counters and histograms add up, timelines are merged
 * point by point, the slices' raw ledgers are merged and the delivery checker and the scenario's assertions
 * run on them exactly as at the end of a whole run (judgeRun).
 */
import { packageVersion } from '../../cli/version.js';
import { mergeBrokerViolations } from '../metrics/aggregator.js';
import { addCounters, emptyFleetCounters, sumFleets } from '../metrics/counters.js';
import { createHistogram, encodeAll, mergeInto, percentileMs, summarizeHistogram, type Histogram } from '../metrics/histograms.js';
import { disconnectCauses, histogramNames, type DisconnectCause, type FleetCounters } from '../metrics/types.js';
import { runResultSchemaVersion, type LatencySummary, type RunResult, type TimelinePoint } from '../report/run-result.js';
import { emptyCheckerResult } from '../verify/checker.js';
import { mergeLedgers, summarizeLedgers, type SerializedLedgers } from '../verify/ledger.js';
import { decideClockCorrection, shiftCheckerTimes } from './clock-offsets.js';
import { judgeRun } from './judge.js';

/** The slices do not belong together (or are not slices): exit code 2. */
export class MergeInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MergeInputError';
  }
}

/** A slice's run.json as read from disk, with the name to show in errors. */
export interface SliceFile {
  path: string;
  result: RunResult;
}

export const timelineLatencyNote =
  'timeline latencies (e2eP50Ms, e2eP99Ms per point) are the maximum over the slices: percentiles cannot be merged; the run latencies come from the merged histograms';

type SliceResult = RunResult & { shard: { index: number; count: number }; ledgers: SerializedLedgers };

/** Checks that the files are every slice of one run, once each; returns them in slice order. */
export function checkSlices(files: readonly SliceFile[]): SliceResult[] {
  if (files.length === 0) throw new MergeInputError('no run.json given: pass the run.json of every slice (mqtt-sim run --shard i/n)');
  const slices: Array<{ path: string; result: SliceResult }> = [];
  for (const f of files) {
    const r = f.result;
    if (r.shard === undefined) throw new MergeInputError(`${f.path} is the run.json of a whole run, not of a slice: merge only reads run.json files written by mqtt-sim run --shard i/n`);
    if (r.ledgers === undefined) throw new MergeInputError(`${f.path} has no ledgers: it cannot be merged (written by an mqtt-sim without merge support?)`);
    slices.push({ path: f.path, result: r as SliceResult });
  }
  const first = slices[0]!;
  const { name, seed } = first.result.scenario;
  const count = first.result.shard.count;
  for (const s of slices.slice(1)) {
    const r = s.result;
    if (r.scenario.name !== name) throw new MergeInputError(`${s.path} is from scenario "${r.scenario.name}", ${first.path} from "${name}": merge the slices of one run only`);
    if (r.scenario.seed !== seed) throw new MergeInputError(`${s.path} ran with seed ${r.scenario.seed}, ${first.path} with seed ${seed}: the slices of one run must use the same seed`);
    if (r.shard.count !== count) throw new MergeInputError(`${s.path} is slice ${r.shard.index}/${r.shard.count}, ${first.path} is slice ${first.result.shard.index}/${count}: every slice must split the run into the same number of slices`);
  }
  const byIndex = new Map<number, string>();
  for (const s of slices) {
    const seen = byIndex.get(s.result.shard.index);
    if (seen !== undefined) throw new MergeInputError(`slice ${s.result.shard.index}/${count} is given twice (${seen} and ${s.path})`);
    byIndex.set(s.result.shard.index, s.path);
  }
  const missing = [...Array(count).keys()].map((i) => i + 1).filter((i) => !byIndex.has(i));
  if (missing.length > 0) throw new MergeInputError(`slice(s) ${missing.map((i) => `${i}/${count}`).join(', ')} missing: pass the run.json of every slice`);
  return slices.map((s) => s.result).sort((a, b) => a.shard.index - b.shard.index);
}

const maxOrNull = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : Math.max(a, b));
const round3 = (n: number): number => Math.round(n * 1000) / 1000;

/** Points with the same atMs are summed (rates, connected, reconnects); latencies and generator health take the worst. */
export function mergeTimelines(timelines: ReadonlyArray<readonly TimelinePoint[]>): TimelinePoint[] {
  const byAt = new Map<number, TimelinePoint>();
  for (const timeline of timelines) {
    for (const p of timeline) {
      const into = byAt.get(p.atMs);
      if (into === undefined) {
        byAt.set(p.atMs, structuredClone(p));
        continue;
      }
      into.connected += p.connected;
      into.publishedPerSec = round3(into.publishedPerSec + p.publishedPerSec);
      into.deliveredPerSec = round3(into.deliveredPerSec + p.deliveredPerSec);
      // Percentiles of parts cannot be combined into the percentile of the whole: the worst slice stands for it.
      into.e2eP50Ms = maxOrNull(into.e2eP50Ms, p.e2eP50Ms);
      into.e2eP99Ms = maxOrNull(into.e2eP99Ms, p.e2eP99Ms);
      for (const [name, f] of Object.entries(p.fleets)) {
        const g = into.fleets[name];
        if (g === undefined) {
          into.fleets[name] = { ...f };
          continue;
        }
        g.connected += f.connected;
        g.publishedPerSec = round3(g.publishedPerSec + f.publishedPerSec);
        g.deliveredPerSec = round3(g.deliveredPerSec + f.deliveredPerSec);
        g.reconnects += f.reconnects;
        g.e2eP50Ms = maxOrNull(g.e2eP50Ms, f.e2eP50Ms);
        g.e2eP99Ms = maxOrNull(g.e2eP99Ms, f.e2eP99Ms);
      }
      into.generator = {
        loopDelayP99Ms: Math.max(into.generator.loopDelayP99Ms, p.generator.loopDelayP99Ms),
        scheduleSlipP99Ms: Math.max(into.generator.scheduleSlipP99Ms, p.generator.scheduleSlipP99Ms),
        cpu: Math.max(into.generator.cpu, p.generator.cpu),
        saturated: into.generator.saturated || p.generator.saturated,
      };
      // Slices are separate simulator processes: their CPU and memory add up.
      if (p.simulator !== undefined) {
        into.simulator = into.simulator === undefined ? { ...p.simulator } : { cpu: round3(into.simulator.cpu + p.simulator.cpu), rssBytes: into.simulator.rssBytes + p.simulator.rssBytes };
      }
      if (p.broker !== undefined) {
        into.broker = into.broker === undefined ? { ...p.broker } : { cpu: Math.max(into.broker.cpu, p.broker.cpu), rssBytes: Math.max(into.broker.rssBytes, p.broker.rssBytes) };
      }
    }
  }
  return [...byAt.values()].sort((a, b) => a.atMs - b.atMs);
}

const earliest = (values: readonly string[]): string => [...values].sort()[0]!;
const latest = (values: readonly string[]): string => [...values].sort().at(-1)!;

/**
 * A note when the slices' timelines did not start at one t=0 (each started when it was ready, without a
 * shared `run --start-at TIME`), or null when they did. Times are ISO strings of one format, so equal
 * strings are equal instants.
 */
export function staggeredStartNote(slices: ReadonlyArray<{ shard: { index: number; count: number }; timelineStartedAt?: string }>): string | null {
  const started = slices.filter((r) => r.timelineStartedAt !== undefined);
  const times = started.map((r) => r.timelineStartedAt!);
  if (new Set(times).size <= 1) return null;
  const spreadMs = Date.parse(latest(times)) - Date.parse(earliest(times));
  const firstSlice = started.find((r) => r.timelineStartedAt === earliest(times))!.shard;
  const lastSlice = started.find((r) => r.timelineStartedAt === latest(times))!.shard;
  return (
    `the slices did not share one t=0: their timelines started up to ${spreadMs} ms apart (slice ${firstSlice.index}/${firstSlice.count} at ${earliest(times)}, ` +
    `slice ${lastSlice.index}/${lastSlice.count} at ${latest(times)}), so deliveries between slices near the start and the end may be indeterminate ` +
    '(a subscriber in one slice not yet, or no longer, subscribed while another published); start every slice with the same --start-at TIME'
  );
}

/**
 * The run.json of the whole run from the run.json files of all its slices (checked with checkSlices).
 * The result has no `shard` and no raw `ledgers`; it carries `clockOffsets` and `notes` on how far its
 * latencies compare across the slices' machines.
 */
export function mergeRunResults(files: readonly SliceFile[]): RunResult {
  const slices = checkSlices(files);
  const first = slices[0]!;
  const label = (r: SliceResult): string => `slice ${r.shard.index}/${r.shard.count}`;

  const fleets: Record<string, FleetCounters> = {};
  for (const r of slices) {
    for (const [name, c] of Object.entries(r.fleets)) addCounters((fleets[name] ??= emptyFleetCounters()), c);
  }
  const totals = sumFleets(fleets);

  const merged = new Map<string, Histogram>();
  for (const r of slices) mergeInto(merged, r.histograms);
  // The slices' machines may disagree on the time: estimate by how much from the traffic both ways, and
  // correct e2e latencies and the checker's times when every slice has an estimate (clock-offsets.ts).
  const clock = decideClockCorrection(
    slices.map((r) => ({
      index: r.shard.index,
      count: r.shard.count,
      clock: r.sliceClock,
      e2eCounts: Object.fromEntries(Object.entries(r.latency).filter(([name]) => name === 'e2e' || name.startsWith('e2e.qos')).map(([name, l]) => [name, l.count])),
    })),
  );
  if (clock.histograms !== null) for (const [name, h] of clock.histograms) merged.set(name, h);
  const sorted = new Map<string, Histogram>([...merged.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const latency: Record<string, LatencySummary> = {};
  for (const [name, h] of sorted) latency[name] = summarizeHistogram(h);

  const offsets = clock.checkerOffsetsMs;
  const ledgers = mergeLedgers(slices.map((r) => (offsets === null ? r.ledgers : shiftCheckerTimes(r.ledgers, offsets[r.shard.index - 1]!))));
  const slip = merged.get(histogramNames.slip) ?? createHistogram();
  const generator: RunResult['generator'] = {
    saturated: slices.some((r) => r.generator.saturated),
    reasons: slices.flatMap((r) => r.generator.reasons.map((reason) => `${label(r)}: ${reason}`)),
    loopDelayMaxMs: Math.max(...slices.map((r) => r.generator.loopDelayMaxMs)),
    scheduleSlipP99Ms: percentileMs(slip, 99) ?? Math.max(...slices.map((r) => r.generator.scheduleSlipP99Ms)),
  };
  const disconnects = Object.fromEntries(disconnectCauses.map((c) => [c, slices.reduce((n, r) => n + (r.disconnectCauses[c] ?? 0), 0)])) as Record<DisconnectCause, number>;
  const outcome = slices.find((r) => r.outcome !== 'completed')?.outcome ?? 'completed';
  const timelineStarts = slices.flatMap((r) => (r.timelineStartedAt === undefined ? [] : [r.timelineStartedAt]));
  const staggered = staggeredStartNote(slices);

  const result: RunResult = {
    schemaVersion: runResultSchemaVersion,
    tool: { name: 'mqtt-sim', version: packageVersion() },
    scenario: first.scenario,
    environment: { ...first.environment, workers: slices.reduce((n, r) => n + r.environment.workers, 0) },
    target: first.target,
    startedAt: earliest(slices.map((r) => r.startedAt)),
    ...(timelineStarts.length > 0 ? { timelineStartedAt: earliest(timelineStarts) } : {}),
    finishedAt: latest(slices.map((r) => r.finishedAt)),
    outcome,
    totals,
    fleets,
    latency,
    histograms: encodeAll(sorted),
    timeline: mergeTimelines(slices.map((r) => r.timeline)),
    ledger: summarizeLedgers(ledgers),
    checker: emptyCheckerResult(),
    brokerViolations: mergeBrokerViolations(fleets, slices.map((r) => r.brokerViolations?.examples ?? [])),
    generator,
    assertions: [],
    verdict: 'fail',
    errors: slices.flatMap((r) => r.errors.map((e) => `${label(r)}: ${e}`)),
    disconnectCauses: disconnects,
    chaos: slices.flatMap((r) => r.chaos.map((c) => ({ ...c, detail: `${label(r)}: ${c.detail}` }))).sort((a, b) => a.atMs - b.atMs),
    notes: [
      `merged from ${slices.length} slice(s) of ${first.shard.count}`,
      ...(staggered === null ? [] : [staggered]),
      // What a slice said about itself (e.g. that it started late on the shared t=0), marked with its slice.
      ...slices.flatMap((r) => (r.notes ?? []).map((n) => `${label(r)}: ${n}`)),
      ...clock.notes,
      timelineLatencyNote,
    ],
    clockOffsets: clock.clockOffsets,
  };
  // The checker needs the scenario with its target (slices always have one: --target or the scenario's).
  const scenario = first.scenario.target === null ? { ...first.scenario, target: { urls: first.target.urls, protocolVersion: first.target.protocolVersion, connectTimeoutMs: 10_000 } } : first.scenario;
  return judgeRun(result, scenario, ledgers);
}
