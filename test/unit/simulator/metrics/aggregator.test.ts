/** RunAggregator from synthetic snapshots and results, with exact expected numbers. */
import { describe, expect, it } from 'vitest';
import { RunAggregator } from '../../../../simulator/metrics/aggregator.js';
import { emptyFleetCounters } from '../../../../simulator/metrics/counters.js';
import { createHistogram, HistogramSet, summarizeHistogram } from '../../../../simulator/metrics/histograms.js';
import type { EncodedHistograms, FleetCounters, GeneratorHealth } from '../../../../simulator/metrics/types.js';
import type { ShardResult, ShardSnapshot } from '../../../../simulator/shard/messages.js';
import { ShardLedger } from '../../../../simulator/verify/ledger.js';

const calm: GeneratorHealth = { loopDelayP99Ms: 1, loopDelayMaxMs: 2, scheduleSlipP99Ms: 0.5, scheduleSlipMaxMs: 1, cpu: 0.2 };

function counters(patch: Partial<FleetCounters>): FleetCounters {
  return { ...emptyFleetCounters(), ...patch };
}

function histograms(values: Record<string, number[]>): EncodedHistograms {
  const set = new HistogramSet();
  for (const [name, list] of Object.entries(values)) for (const v of list) set.record(name, v);
  return set.takeInterval();
}

function snapshot(atMs: number, fleets: Record<string, FleetCounters>, interval: EncodedHistograms = {}, health: GeneratorHealth = calm): ShardSnapshot {
  return { atMs, fleets, interval, health };
}

describe('RunAggregator.point', () => {
  it('computes rates from counter deltas over the elapsed time, summed over shards and per fleet', () => {
    const agg = new RunAggregator(['sensors', 'consumers'], 2);
    agg.addSnapshot(0, snapshot(1000, { sensors: counters({ connected: 10, published: [100, 50, 0] }) }));
    agg.addSnapshot(1, snapshot(1000, {
      sensors: counters({ connected: 5, published: [0, 0, 30] }),
      consumers: counters({ connected: 2, delivered: [100, 50, 20] }),
    }));
    const p1 = agg.point(1000, 'steady');
    expect(p1).toMatchObject({ atMs: 1000, phase: 'steady', connected: 17, publishedPerSec: 180, deliveredPerSec: 170 });
    expect(p1.fleets).toEqual({
      sensors: { connected: 15, publishedPerSec: 180, deliveredPerSec: 0, reconnects: 0, e2eP50Ms: null, e2eP99Ms: null },
      consumers: { connected: 2, publishedPerSec: 0, deliveredPerSec: 170, reconnects: 0, e2eP50Ms: null, e2eP99Ms: null },
    });

    // Two seconds later; shard 1 also sends an intermediate snapshot, only its latest counts.
    agg.addSnapshot(1, snapshot(2000, {
      sensors: counters({ connected: 5, published: [0, 0, 60] }),
      consumers: counters({ connected: 2, delivered: [200, 100, 40] }),
    }));
    agg.addSnapshot(0, snapshot(3000, { sensors: counters({ connected: 8, published: [400, 150, 0], reconnects: 2 }) }));
    agg.addSnapshot(1, snapshot(3000, {
      sensors: counters({ connected: 5, published: [0, 0, 90] }),
      consumers: counters({ connected: 1, delivered: [300, 200, 90], reconnects: 3 }),
    }));
    const p2 = agg.point(3000, 'steady');
    // published: (550 + 90) - (150 + 30) = 460 over 2 s; delivered: 590 - 170 = 420 over 2 s.
    expect(p2).toMatchObject({ connected: 14, publishedPerSec: 230, deliveredPerSec: 210 });
    expect(p2.fleets['sensors']).toMatchObject({ connected: 13, publishedPerSec: 230, reconnects: 2 });
    expect(p2.fleets['consumers']).toMatchObject({ connected: 1, deliveredPerSec: 210, reconnects: 3 });
    expect(agg.timeline).toEqual([p1, p2]);
  });

  it('keeps a silent shard at its latest counters and ignores an older, late snapshot', () => {
    const agg = new RunAggregator(['f'], 2);
    agg.addSnapshot(0, snapshot(1000, { f: counters({ connected: 3, published: [10, 0, 0] }) }));
    agg.addSnapshot(1, snapshot(1000, { f: counters({ connected: 4, published: [20, 0, 0] }) }));
    agg.point(1000, 'steady');
    agg.addSnapshot(0, snapshot(2000, { f: counters({ connected: 3, published: [40, 0, 0] }) }));
    agg.addSnapshot(1, snapshot(500, { f: counters({ connected: 0, published: [0, 0, 0] }) })); // late and stale
    const p = agg.point(2000, 'steady');
    expect(p.connected).toBe(7);
    expect(p.publishedPerSec).toBe(30);
  });

  it('has zero rates for a first point before t=0 and measures the next one from it', () => {
    const agg = new RunAggregator(['f'], 1);
    agg.addSnapshot(0, snapshot(-500, { f: counters({ connected: 2, connects: 2 }) }));
    const prep = agg.point(-500, 'prepare');
    expect(prep).toMatchObject({ connected: 2, publishedPerSec: 0, deliveredPerSec: 0 });
    agg.addSnapshot(0, snapshot(500, { f: counters({ connected: 2, published: [25, 0, 0] }) }));
    expect(agg.point(500, 'ramp-up').publishedPerSec).toBe(25);
  });

  it('reports interval e2e percentiles overall and per publishing fleet, then clears them', () => {
    const agg = new RunAggregator(['a', 'b'], 2);
    // Below 2048 µs every microsecond is its own bucket, so the percentiles are exact.
    const a = [100, 200, 300, 400];
    const b = [1000, 1100, 1200, 1300, 1400, 1500];
    agg.addSnapshot(0, snapshot(1000, {}, histograms({ e2e: a, 'e2e@a': a })));
    agg.addSnapshot(1, snapshot(1000, {}, histograms({ e2e: b, 'e2e@b': b })));
    const p = agg.point(1000, 'steady');
    const all = createHistogram();
    for (const v of [...a, ...b]) all.recordValue(v);
    expect(p.e2eP50Ms).toBe(summarizeHistogram(all).p50);
    expect(p.e2eP99Ms).toBe(summarizeHistogram(all).p99);
    expect(p.e2eP50Ms).toBe(1); // 5th of 10 values
    expect(p.e2eP99Ms).toBe(1.5);
    expect(p.fleets['a']).toMatchObject({ e2eP50Ms: 0.2, e2eP99Ms: 0.4 });
    expect(p.fleets['b']).toMatchObject({ e2eP50Ms: 1.2, e2eP99Ms: 1.5 });
    const next = agg.point(2000, 'steady');
    expect(next.e2eP50Ms).toBeNull();
    expect(next.fleets['a']!.e2eP99Ms).toBeNull();
  });

  it('reports the worst shard health and saturation, and passes broker figures through', () => {
    const agg = new RunAggregator(['f'], 2);
    agg.addSnapshot(0, snapshot(1000, {}, {}, { ...calm, loopDelayP99Ms: 12 }));
    agg.addSnapshot(1, snapshot(1000, {}, {}, { ...calm, cpu: 0.95 }));
    const p = agg.point(1000, 'steady', { cpu: 0.5, rssBytes: 1234 });
    expect(p.generator).toEqual({ loopDelayP99Ms: 12, scheduleSlipP99Ms: 0.5, cpu: 0.95, saturated: true });
    expect(p.broker).toEqual({ cpu: 0.5, rssBytes: 1234 });
    agg.addSnapshot(1, snapshot(2000, {}, {}, calm));
    const q = agg.point(2000, 'steady');
    expect(q.generator.saturated).toBe(false);
    expect(q.broker).toBeUndefined();
  });

  it('rejects a shard number outside the pool', () => {
    const agg = new RunAggregator(['f'], 2);
    expect(() => agg.addSnapshot(2, snapshot(0, {}))).toThrow(/shard 2 is outside 0..1/);
  });
});

describe('RunAggregator.finish', () => {
  function result(shard: number, fleets: Record<string, FleetCounters>, values: Record<string, number[]>, ledger: ShardLedger, errors: string[] = []): ShardResult {
    const set = new HistogramSet();
    for (const [name, list] of Object.entries(values)) for (const v of list) set.record(name, v);
    return { shard, fleets, histograms: set.cumulative(), ledgers: ledger.serialize(), errors };
  }

  it('takes counters from the results, merges histograms and ledgers, and judges the generator', () => {
    const agg = new RunAggregator(['sensors', 'consumers'], 2);
    agg.addSnapshot(0, snapshot(1000, { sensors: counters({ published: [1, 0, 0] }) }, {}, { ...calm, loopDelayMaxMs: 70 }));
    agg.addSnapshot(1, snapshot(1000, { consumers: counters({ delivered: [1, 0, 0] }) }, {}, { ...calm, scheduleSlipP99Ms: 150 }));

    const pub = new ShardLedger();
    for (let seq = 0; seq < 10; seq++) pub.published(1, seq, 1);
    for (let seq = 0; seq < 8; seq++) pub.acknowledged(1, seq);
    const sub = new ShardLedger();
    for (let seq = 0; seq < 9; seq++) sub.received(500, 1, seq, 1);
    sub.received(500, 1, 3, 1);

    const out = agg.finish([
      result(1, { consumers: counters({ devices: 1, connected: 0, delivered: [0, 10, 0], duplicates: [0, 1, 0] }) }, { e2e: [300, 400], slip: [1000] }, sub, ['shard 1: a warning']),
      result(0, { sensors: counters({ devices: 2, published: [0, 10, 0], acknowledged: [0, 8, 0] }) }, { e2e: [100, 200], slip: [2000] }, pub),
    ]);

    expect(out.fleets['sensors']).toEqual(counters({ devices: 2, published: [0, 10, 0], acknowledged: [0, 8, 0] }));
    expect(out.fleets['consumers']).toEqual(counters({ devices: 1, delivered: [0, 10, 0], duplicates: [0, 1, 0] }));
    expect(out.totals).toEqual(counters({ devices: 3, published: [0, 10, 0], acknowledged: [0, 8, 0], delivered: [0, 10, 0], duplicates: [0, 1, 0] }));
    expect(Object.keys(out.latency)).toEqual(['e2e', 'slip']);
    expect(out.latency['e2e']).toEqual({ count: 4, min: 0.1, mean: 0.25, p50: 0.2, p90: 0.4, p95: 0.4, p99: 0.4, p999: 0.4, max: 0.4 });
    expect(Object.keys(out.histograms)).toEqual(['e2e', 'slip']);
    expect(out.ledger).toEqual({ streams: 1, published: [0, 10, 0], acknowledged: [0, 8, 0], received: [0, 9, 0], duplicates: [0, 1, 0], reordered: [0, 0, 0] });
    expect(out.ledgers.receivers).toEqual([{ subscriber: 500, stream: 1, received: [0, 8], duplicates: 1, reordered: 0 }]);
    expect(out.generator).toEqual({
      saturated: true,
      reasons: ['schedule slip p99 150 ms > 100 ms'],
      loopDelayMaxMs: 70,
      scheduleSlipP99Ms: 2, // from the merged slip histogram
    });
    expect(out.errors).toEqual(['shard 1: a warning']);
  });

  it('falls back to the last snapshot of a shard without a result, and says so', () => {
    const agg = new RunAggregator(['f'], 3);
    agg.addSnapshot(1, snapshot(4000, { f: counters({ published: [7, 0, 0] }) }));
    const out = agg.finish([result(0, { f: counters({ published: [5, 0, 0] }) }, {}, new ShardLedger())]);
    expect(out.totals.published).toEqual([12, 0, 0]);
    expect(out.errors).toEqual([
      'shard 1 returned no result: its counters are from its last snapshot (t=4000 ms); its histograms and ledger are missing',
      'shard 2 returned no result and sent no snapshot: its devices are not counted',
    ]);
    expect(out.generator).toEqual({ saturated: false, reasons: [], loopDelayMaxMs: 2, scheduleSlipP99Ms: 0.5 });
  });
});

describe('RunAggregator saturation over the run', () => {
  const hot: GeneratorHealth = { ...calm, loopDelayP99Ms: 80, loopDelayMaxMs: 120 };

  function run(saturatedAt: number[], phases: Array<'prepare' | 'ramp-up' | 'steady' | 'drain'>): ReturnType<RunAggregator['finish']> {
    const agg = new RunAggregator(['f'], 1);
    phases.forEach((phase, i) => {
      agg.addSnapshot(0, snapshot((i + 1) * 1000, { f: counters({}) }, {}, saturatedAt.includes(i) ? hot : calm));
      agg.point((i + 1) * 1000, phase);
    });
    return agg.finish([{ shard: 0, fleets: { f: counters({}) }, histograms: {}, ledgers: new ShardLedger().serialize(), errors: [] }]);
  }

  it('does not call a run saturated for one slow second, nor for slow prepare and drain seconds', () => {
    expect(run([3], ['ramp-up', 'steady', 'steady', 'steady', 'steady', 'steady']).generator.saturated).toBe(false);
    expect(run([0, 1, 6, 7], ['prepare', 'prepare', 'ramp-up', 'steady', 'steady', 'steady', 'drain', 'drain']).generator.saturated).toBe(false);
  });

  it('calls it saturated when at least two timeline seconds were, and says how many and how bad', () => {
    const out = run([2, 4], ['ramp-up', 'steady', 'steady', 'steady', 'steady', 'steady']);
    expect(out.generator.saturated).toBe(true);
    expect(out.generator.reasons).toEqual(['2 of 6 seconds saturated', 'up to event-loop delay p99 80 ms > 50 ms']);
  });
});

describe('RunAggregator.finish: broker violations', () => {
  const example = (clientId: string, atMs: number): NonNullable<ShardResult['brokerViolations']>[number] =>
    ({ kind: 'qos-above-granted', clientId, fleet: 'c', at: new Date(1_700_000_000_000 + atMs).toISOString(), atMs, detail: 'd' });

  it('sums the counts per kind and fleet over shards and merges the examples earliest first', () => {
    const agg = new RunAggregator(['s', 'c'], 2);
    const withViolations = (n: number): FleetCounters => {
      const c = emptyFleetCounters();
      c.violations!['qos-above-granted'] = n;
      c.violations!['unknown-packet-id'] = 1;
      return c;
    };
    const out = agg.finish([
      { shard: 0, fleets: { c: withViolations(2), s: emptyFleetCounters() }, histograms: {}, ledgers: new ShardLedger().serialize(), errors: [], brokerViolations: [example('c-0', 300)] },
      // A shard from before violations were shipped: no examples, counters without the field.
      { shard: 1, fleets: { c: withViolations(5) }, histograms: {}, ledgers: new ShardLedger().serialize(), errors: [], brokerViolations: [example('c-1', 100)] },
    ]);
    expect(out.brokerViolations.total).toBe(9);
    expect(out.brokerViolations.byKind).toMatchObject({ 'qos-above-granted': 7, 'unknown-packet-id': 2, 'retain-misuse': 0 });
    expect(out.brokerViolations.byFleet).toEqual({ s: 0, c: 9 });
    expect(out.brokerViolations.examples.map((e) => e.clientId)).toEqual(['c-1', 'c-0']);
  });

  it('is all zeros for shards that saw none (or predate the field)', () => {
    const agg = new RunAggregator(['f'], 1);
    const old = emptyFleetCounters();
    delete old.violations;
    const out = agg.finish([{ shard: 0, fleets: { f: old }, histograms: {}, ledgers: new ShardLedger().serialize(), errors: [] }]);
    expect(out.brokerViolations).toMatchObject({ total: 0, byFleet: { f: 0 }, examples: [] });
  });
});
