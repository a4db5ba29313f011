/**
 * The main-thread merger: shards post cumulative counters and interval histograms (encoded) about once
 * a second; the orchestrator calls point() once per interval to append a timeline point, and finish()
 * with the shards' results at the end.
 */
import type { ShardResult, ShardSnapshot } from '../shard/messages.js';
import type { BrokerViolations, LatencySummary, LedgerSummary, RunResult, SliceClockRecord, TimelinePoint } from '../report/run-result.js';
import { mergeSliceClockRecords } from '../orchestrator/clock-offsets.js';
import { mergeLedgers, summarizeLedgers, type SerializedLedgers } from '../verify/ledger.js';
import { addCounters, cloneCounters, emptyFleetCounters, emptyViolationCounts, sumFleets } from './counters.js';
import { createHistogram, encodeAll, mergeInto, percentileMs, summarizeHistogram, type Histogram } from './histograms.js';
import { saturationReasons } from './loop-health.js';
import { brokerViolationKinds, histogramNames, type BrokerViolationExample, type EncodedHistograms, type FleetCounters, type GeneratorHealth } from './types.js';

/** At most this many error lines are kept in finish(). */
export const maxRunErrors = 100;
/** At most this many broker violation examples are kept in finish(). */
export const maxBrokerViolationExamples = 20;

export interface RunAggregate {
  totals: FleetCounters;
  fleets: Record<string, FleetCounters>;
  latency: Record<string, LatencySummary>;
  histograms: EncodedHistograms;
  ledgers: SerializedLedgers;
  ledger: LedgerSummary;
  generator: RunResult['generator'];
  errors: string[];
  brokerViolations: BrokerViolations;
  /** A slice's deliveries per publishing slice, merged over its shards (present when the shards recorded them). */
  clock?: SliceClockRecord;
}

type FleetPoint = TimelinePoint['fleets'][string];

const sum3 = (t: readonly [number, number, number]): number => t[0] + t[1] + t[2];
const round3 = (n: number): number => Math.round(n * 1000) / 1000;

function emptyHealth(): GeneratorHealth {
  return { loopDelayP99Ms: 0, loopDelayMaxMs: 0, scheduleSlipP99Ms: 0, scheduleSlipMaxMs: 0, cpu: 0 };
}

/** Field-wise maximum: the worst of each measure. */
function worseHealth(into: GeneratorHealth, h: GeneratorHealth): void {
  into.loopDelayP99Ms = Math.max(into.loopDelayP99Ms, h.loopDelayP99Ms);
  into.loopDelayMaxMs = Math.max(into.loopDelayMaxMs, h.loopDelayMaxMs);
  into.scheduleSlipP99Ms = Math.max(into.scheduleSlipP99Ms, h.scheduleSlipP99Ms);
  into.scheduleSlipMaxMs = Math.max(into.scheduleSlipMaxMs, h.scheduleSlipMaxMs);
  into.cpu = Math.max(into.cpu, h.cpu);
}

export class RunAggregator {
  /** One point per point() call, in call order. */
  readonly timeline: TimelinePoint[] = [];
  private readonly fleetNames: string[];
  private readonly shardCount: number;
  /** Latest cumulative counters per shard (by snapshot atMs). */
  private readonly latest: Array<{ atMs: number; fleets: Record<string, FleetCounters> } | undefined>;
  /** Latest health per shard. */
  private readonly health: Array<GeneratorHealth | undefined>;
  /** The worst of every health sample of the run. */
  private readonly worst: GeneratorHealth = emptyHealth();
  /** Interval histograms received since the previous point. */
  private pending = new Map<string, Histogram>();
  /** Every interval histogram received (live cumulative view; finish() uses the shards' own). */
  private readonly running = new Map<string, Histogram>();
  private previous: { atMs: number; fleets: Record<string, FleetCounters> } | undefined;

  constructor(fleetNames: string[], shardCount: number) {
    if (!Number.isInteger(shardCount) || shardCount < 1) throw new RangeError(`RunAggregator: shardCount must be a positive integer, got ${shardCount}`);
    this.fleetNames = [...fleetNames];
    this.shardCount = shardCount;
    this.latest = new Array<undefined>(shardCount).fill(undefined);
    this.health = new Array<undefined>(shardCount).fill(undefined);
  }

  private checkShard(shard: number): void {
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.shardCount) {
      throw new RangeError(`RunAggregator: shard ${shard} is outside 0..${this.shardCount - 1}`);
    }
  }

  addSnapshot(shard: number, s: ShardSnapshot): void {
    this.checkShard(shard);
    const prev = this.latest[shard];
    // Counters are cumulative: a late, older snapshot must not roll them back.
    if (prev === undefined || s.atMs >= prev.atMs) {
      this.latest[shard] = { atMs: s.atMs, fleets: s.fleets };
      this.health[shard] = s.health;
    }
    worseHealth(this.worst, s.health);
    mergeInto(this.pending, s.interval);
    mergeInto(this.running, s.interval);
  }

  /** Every fleet name: the configured ones first, then any a shard reported that was not configured. */
  private allFleetNames(extra: Iterable<Record<string, FleetCounters>>): string[] {
    const names = [...this.fleetNames];
    const seen = new Set(names);
    for (const rec of extra) {
      for (const name of Object.keys(rec)) {
        if (!seen.has(name)) {
          seen.add(name);
          names.push(name);
        }
      }
    }
    return names;
  }

  /** Current cumulative counters per fleet, summed over the shards' latest snapshots. */
  latestCounters(): Record<string, FleetCounters> {
    const reported = this.latest.filter((l) => l !== undefined).map((l) => l.fleets);
    const out: Record<string, FleetCounters> = {};
    for (const name of this.allFleetNames(reported)) out[name] = emptyFleetCounters();
    for (const rec of reported) for (const [name, c] of Object.entries(rec)) addCounters(out[name]!, c);
    return out;
  }

  /** Live cumulative latencies from the interval histograms received so far. */
  runningLatency(): Record<string, LatencySummary> {
    const out: Record<string, LatencySummary> = {};
    for (const name of [...this.running.keys()].sort()) out[name] = summarizeHistogram(this.running.get(name)!);
    return out;
  }

  /**
   * Appends one timeline point. Rates are counter deltas since the previous point divided by the elapsed
   * seconds (for the first point: since t=0 when atMs > 0, else 0); `reconnects` per fleet is the delta.
   * Interval latencies come from the histograms received since the previous point, which are then cleared.
   */
  point(atMs: number, phase: TimelinePoint['phase'], broker?: { cpu: number; rssBytes: number }): TimelinePoint {
    const current = this.latestCounters();
    const base = this.previous ?? { atMs: atMs > 0 ? 0 : atMs, fleets: {} };
    const elapsedS = (atMs - base.atMs) / 1000;
    const rate = (delta: number): number => (elapsedS > 0 ? round3(Math.max(0, delta) / elapsedS) : 0);

    const fleets: Record<string, FleetPoint> = {};
    let connected = 0;
    let publishedDelta = 0;
    let deliveredDelta = 0;
    for (const [name, c] of Object.entries(current)) {
      const p = base.fleets[name] ?? emptyFleetCounters();
      const pub = sum3(c.published) - sum3(p.published);
      const del = sum3(c.delivered) - sum3(p.delivered);
      connected += c.connected;
      publishedDelta += pub;
      deliveredDelta += del;
      const e2e = this.pending.get(histogramNames.e2eFleet(name));
      fleets[name] = {
        connected: c.connected,
        publishedPerSec: rate(pub),
        deliveredPerSec: rate(del),
        reconnects: Math.max(0, c.reconnects - p.reconnects),
        e2eP50Ms: percentileMs(e2e, 50),
        e2eP99Ms: percentileMs(e2e, 99),
      };
    }

    const worstNow = emptyHealth();
    for (const h of this.health) if (h !== undefined) worseHealth(worstNow, h);
    const e2e = this.pending.get(histogramNames.e2e);
    const point: TimelinePoint = {
      atMs,
      phase,
      connected,
      publishedPerSec: rate(publishedDelta),
      deliveredPerSec: rate(deliveredDelta),
      e2eP50Ms: percentileMs(e2e, 50),
      e2eP99Ms: percentileMs(e2e, 99),
      fleets,
      generator: {
        loopDelayP99Ms: worstNow.loopDelayP99Ms,
        scheduleSlipP99Ms: worstNow.scheduleSlipP99Ms,
        cpu: worstNow.cpu,
        saturated: saturationReasons(worstNow).length > 0,
      },
    };
    if (broker !== undefined) point.broker = { cpu: broker.cpu, rssBytes: broker.rssBytes };
    this.timeline.push(point);
    this.pending = new Map();
    const snapshot: Record<string, FleetCounters> = {};
    for (const [name, c] of Object.entries(current)) snapshot[name] = cloneCounters(c);
    this.previous = { atMs, fleets: snapshot };
    return point;
  }

  /**
   * Whether the generator was saturated over the run. One slow second (a GC pause, a burst of TLS
   * handshakes) does not make a run saturated: it takes at least max(2, 5 %) of the timeline points
   * during ramp-up, steady and ramp-down; prepare and drain do not count. Without timeline points (a run
   * stopped before its first point), the worst shard sample decides.
   */
  private judgeSaturation(): { saturated: boolean; reasons: string[] } {
    const active = this.timeline.filter((p) => p.phase === 'ramp-up' || p.phase === 'steady' || p.phase === 'ramp-down');
    if (active.length === 0) {
      const reasons = saturationReasons(this.worst);
      return { saturated: reasons.length > 0, reasons };
    }
    const hot = active.filter((p) => p.generator.saturated);
    if (hot.length < Math.max(2, Math.ceil(active.length * 0.05))) return { saturated: false, reasons: [] };
    const worst = emptyHealth();
    for (const p of hot) {
      worseHealth(worst, { ...emptyHealth(), loopDelayP99Ms: p.generator.loopDelayP99Ms, scheduleSlipP99Ms: p.generator.scheduleSlipP99Ms, cpu: p.generator.cpu });
    }
    return { saturated: true, reasons: [`${hot.length} of ${active.length} seconds saturated`, ...saturationReasons(worst).map((r) => `up to ${r}`)] };
  }

  /**
   * The run's final numbers. Counters come from the shards' results (authoritative); a shard without a
   * result falls back to its last snapshot, with an error line saying so. Histograms are the shards'
   * cumulative ones, merged; ledgers are merged and summarized.
   */
  finish(results: ShardResult[]): RunAggregate {
    const errors: string[] = [];
    const byShard = new Map<number, ShardResult>();
    for (const r of results) {
      if (byShard.has(r.shard)) errors.push(`shard ${r.shard} returned two results; the second was ignored`);
      else byShard.set(r.shard, r);
    }
    const counterSources: Array<Record<string, FleetCounters>> = [];
    for (let shard = 0; shard < this.shardCount; shard++) {
      const r = byShard.get(shard);
      if (r !== undefined) {
        counterSources.push(r.fleets);
        continue;
      }
      const last = this.latest[shard];
      if (last !== undefined) {
        counterSources.push(last.fleets);
        errors.push(`shard ${shard} returned no result: its counters are from its last snapshot (t=${last.atMs} ms); its histograms and ledger are missing`);
      } else {
        errors.push(`shard ${shard} returned no result and sent no snapshot: its devices are not counted`);
      }
    }
    for (const r of byShard.values()) {
      if (r.shard < 0 || r.shard >= this.shardCount) {
        counterSources.push(r.fleets);
        errors.push(`a result came from shard ${r.shard}, outside 0..${this.shardCount - 1}; it was counted anyway`);
      }
    }

    const fleets: Record<string, FleetCounters> = {};
    for (const name of this.allFleetNames(counterSources)) fleets[name] = emptyFleetCounters();
    for (const rec of counterSources) for (const [name, c] of Object.entries(rec)) addCounters(fleets[name]!, c);
    const totals = sumFleets(fleets);

    const merged = new Map<string, Histogram>();
    for (const r of byShard.values()) mergeInto(merged, r.histograms);
    const latency: Record<string, LatencySummary> = {};
    const sortedNames = [...merged.keys()].sort();
    const sorted = new Map<string, Histogram>();
    for (const name of sortedNames) {
      const h = merged.get(name)!;
      sorted.set(name, h);
      latency[name] = summarizeHistogram(h);
    }
    const histograms = encodeAll(sorted);

    const ledgers = mergeLedgers([...byShard.values()].map((r) => r.ledgers));
    const ledger = summarizeLedgers(ledgers);

    const { saturated, reasons } = this.judgeSaturation();
    const slip = merged.get(histogramNames.slip) ?? createHistogram();
    const generator: RunResult['generator'] = {
      saturated,
      reasons,
      loopDelayMaxMs: this.worst.loopDelayMaxMs,
      scheduleSlipP99Ms: percentileMs(slip, 99) ?? this.worst.scheduleSlipP99Ms,
    };

    const seen = new Set<string>();
    for (const r of byShard.values()) for (const e of r.errors) errors.push(e);
    const unique = errors.filter((e) => (seen.has(e) ? false : (seen.add(e), true)));
    const bounded = unique.length > maxRunErrors ? [...unique.slice(0, maxRunErrors), `... ${unique.length - maxRunErrors} more errors`] : unique;

    const brokerViolations = mergeBrokerViolations(fleets, [...byShard.values()].map((r) => r.brokerViolations ?? []));
    const aggregate: RunAggregate = { totals, fleets, latency, histograms, ledgers, ledger, generator, errors: bounded, brokerViolations };
    const clocks = [...byShard.values()].flatMap((r) => (r.clock === undefined ? [] : [r.clock]));
    if (clocks.length > 0) aggregate.clock = mergeSliceClockRecords(clocks);
    return aggregate;
  }
}

/** Counts from the merged fleet counters; examples from every shard, earliest first, bounded. */
export function mergeBrokerViolations(fleets: Readonly<Record<string, FleetCounters>>, examples: ReadonlyArray<readonly BrokerViolationExample[]>): BrokerViolations {
  const byKind = emptyViolationCounts();
  const byFleet: Record<string, number> = {};
  let total = 0;
  for (const [name, c] of Object.entries(fleets)) {
    let n = 0;
    for (const k of brokerViolationKinds) {
      const v = c.violations?.[k] ?? 0;
      byKind[k] += v;
      n += v;
    }
    byFleet[name] = n;
    total += n;
  }
  const all = examples.flat().sort((a, b) => a.atMs - b.atMs || (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  return { total, byKind, byFleet, examples: all.slice(0, maxBrokerViolationExamples) };
}
