/**
 * "Encode in the worker, merge in the main thread", for real: two piscina worker threads run the
 * metrics-worker fixture (built modules from dist/), post snapshots over their MessagePorts in lockstep
 * rounds, and return ShardResults; the main-thread RunAggregator merges them. Merged counters and
 * histogram totals must equal the sums of what each shard reported, and merged percentiles those of one
 * histogram holding every value.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunAggregator } from '../../../simulator/metrics/aggregator.js';
import { addCounters, emptyFleetCounters } from '../../../simulator/metrics/counters.js';
import { createHistogram, decodeHistogram, summarizeHistogram } from '../../../simulator/metrics/histograms.js';
import type { FleetCounters } from '../../../simulator/metrics/types.js';
import type { FromShard, ShardResult } from '../../../simulator/shard/messages.js';
import { requireBuilt } from '../../helpers/cli-process.js';
import { withTimeout } from '../../helpers/broker.js';

/** The fixture's own exports (it is plain JS, so typed here). */
interface FixtureModule {
  ROUNDS: number;
  PER_ROUND: number;
  STREAMS: number;
  SEQS_PER_ROUND: number;
  fleetOf(shard: number): string;
  latency(shard: number, round: number, i: number): number;
  publishedPerRound(shard: number): number;
  deliveredPerRound(shard: number): number;
}

const fixtureUrl = new URL('../../fixtures/simulator/metrics-worker.mjs', import.meta.url).href;
const SHARDS = 2;
const FLEETS = ['sensors', 'plcs', 'consumers'];


interface Run {
  fixture: FixtureModule;
  agg: RunAggregator;
  results: ShardResult[];
  threads: Set<string>;
  snapshotsPerShard: number[];
}

let pool: Piscina | undefined;
let run: Run;

beforeAll(async () => {
  for (const file of ['simulator/metrics/histograms.js', 'simulator/metrics/counters.js', 'simulator/metrics/loop-health.js', 'simulator/verify/ledger.js']) {
    requireBuilt(file);
  }
  const fixture = (await import(fixtureUrl)) as FixtureModule;
  pool = new Piscina({ filename: fixtureUrl, minThreads: SHARDS, maxThreads: SHARDS });
  const agg = new RunAggregator(FLEETS, SHARDS);
  const threads = new Set<string>();
  const snapshotsPerShard = new Array<number>(SHARDS).fill(0);
  const ports: MessagePort[] = [];
  let roundsDone = 0;
  let resolveAll!: () => void;
  const allRounds = new Promise<void>((resolve) => (resolveAll = resolve));

  const onMessage = (msg: FromShard): void => {
    if (msg.type === 'event') {
      threads.add(msg.message);
      return;
    }
    if (msg.type !== 'snapshot') return;
    agg.addSnapshot(msg.shard, msg.snapshot);
    snapshotsPerShard[msg.shard]!++;
    // Lockstep: when every shard has posted round k, make the point and let them go on.
    if (snapshotsPerShard.every((n) => n > roundsDone)) {
      roundsDone++;
      agg.point(roundsDone * 1000, 'steady');
      if (roundsDone === fixture.ROUNDS) resolveAll();
      else for (const p of ports) p.postMessage({ type: 'next' });
    }
  };

  const tasks: Array<Promise<ShardResult>> = [];
  for (let shard = 0; shard < SHARDS; shard++) {
    const { port1, port2 } = new MessageChannel();
    port1.on('message', onMessage);
    ports.push(port1);
    tasks.push(pool.run({ shard, shardCount: SHARDS, port: port2 }, { transferList: [port2] }) as Promise<ShardResult>);
  }
  const results = await withTimeout(Promise.all(tasks), 20_000, 'the two metrics shards never returned their results');
  await withTimeout(allRounds, 5_000, `not every snapshot arrived: ${snapshotsPerShard.join(', ')} per shard`);
  for (const p of ports) p.close();
  run = { fixture, agg, results, threads, snapshotsPerShard };
});

afterAll(async () => {
  await pool?.destroy();
});

describe('metrics merged from 2 worker threads', () => {
  it('ran the shards on two threads, each posting every snapshot', () => {
    expect(run.threads.size).toBe(2);
    expect(run.snapshotsPerShard).toEqual([run.fixture.ROUNDS, run.fixture.ROUNDS]);
  });

  it('merged counters equal the sum of what each shard reported', () => {
    const out = run.agg.finish(run.results);
    const expected: Record<string, FleetCounters> = {};
    for (const name of FLEETS) expected[name] = emptyFleetCounters();
    for (const r of run.results) for (const [name, c] of Object.entries(r.fleets)) addCounters(expected[name]!, c);
    expect(out.fleets).toEqual(expected);
    const { ROUNDS, publishedPerRound, deliveredPerRound } = run.fixture;
    expect(out.totals.published).toEqual([0, ROUNDS * (publishedPerRound(0) + publishedPerRound(1)), 0]);
    expect(out.totals.delivered).toEqual([0, ROUNDS * (deliveredPerRound(0) + deliveredPerRound(1)), 0]);
    expect(out.totals.devices).toBe(4);
    expect(out.errors).toEqual(['shard 0: done', 'shard 1: done']);
  });

  it('timeline points have exact rates from the snapshot deltas', () => {
    const { publishedPerRound, deliveredPerRound, ROUNDS } = run.fixture;
    expect(run.agg.timeline.map((p) => p.atMs)).toEqual(Array.from({ length: ROUNDS }, (_, i) => (i + 1) * 1000));
    for (const p of run.agg.timeline) {
      expect(p.connected).toBe(4);
      expect(p.publishedPerSec).toBe(publishedPerRound(0) + publishedPerRound(1));
      expect(p.deliveredPerSec).toBe(deliveredPerRound(0) + deliveredPerRound(1));
      expect(p.fleets['sensors']!.publishedPerSec).toBe(publishedPerRound(0));
      expect(p.fleets['plcs']!.publishedPerSec).toBe(publishedPerRound(1));
      expect(p.e2eP50Ms).not.toBeNull();
    }
  });

  it('interval e2e percentiles of each point equal one histogram of that round', () => {
    const { ROUNDS, PER_ROUND, latency } = run.fixture;
    for (let round = 1; round <= ROUNDS; round++) {
      const one = createHistogram();
      for (let shard = 0; shard < SHARDS; shard++) for (let i = 0; i < PER_ROUND; i++) one.recordValue(latency(shard, round, i));
      const s = summarizeHistogram(one);
      const p = run.agg.timeline[round - 1]!;
      expect([p.e2eP50Ms, p.e2eP99Ms]).toEqual([s.p50, s.p99]);
    }
  });

  it('merged histogram totals equal the sum of the shards, and percentiles those of one histogram of every value', () => {
    const { ROUNDS, PER_ROUND, latency, fleetOf } = run.fixture;
    const out = run.agg.finish(run.results);
    const perShardTotal = run.results.reduce((n, r) => n + decodeHistogram(r.histograms['e2e']!).totalCount, 0);
    expect(perShardTotal).toBe(SHARDS * ROUNDS * PER_ROUND);
    expect(out.latency['e2e']!.count).toBe(perShardTotal);
    expect(decodeHistogram(out.histograms['e2e']!).totalCount).toBe(perShardTotal);

    const all = createHistogram();
    const byFleet = new Map<string, ReturnType<typeof createHistogram>>();
    for (let shard = 0; shard < SHARDS; shard++) {
      const fleet = createHistogram();
      for (let round = 1; round <= ROUNDS; round++) {
        for (let i = 0; i < PER_ROUND; i++) {
          all.recordValue(latency(shard, round, i));
          fleet.recordValue(latency(shard, round, i));
        }
      }
      byFleet.set(fleetOf(shard), fleet);
    }
    expect(out.latency['e2e']).toEqual(summarizeHistogram(all));
    expect(out.latency['e2e@sensors']).toEqual(summarizeHistogram(byFleet.get('sensors')!));
    expect(out.latency['e2e@plcs']).toEqual(summarizeHistogram(byFleet.get('plcs')!));
    // The live view merged from interval snapshots agrees with the shards' cumulative histograms.
    expect(run.agg.runningLatency()['e2e']).toEqual(out.latency['e2e']);
    expect(out.latency['slip']!.count).toBe(SHARDS * ROUNDS);
  });

  it('merges the ledgers: streams published in one shard and received in the other', () => {
    const { ROUNDS, STREAMS, SEQS_PER_ROUND } = run.fixture;
    const out = run.agg.finish(run.results);
    const perShard = STREAMS * ROUNDS * SEQS_PER_ROUND;
    expect(out.ledger).toEqual({
      streams: SHARDS * STREAMS,
      published: [0, SHARDS * perShard, 0],
      acknowledged: [0, SHARDS * perShard, 0],
      received: [0, SHARDS * perShard, 0],
      duplicates: [0, 0, 0],
      reordered: [0, 0, 0],
    });
    for (const s of out.ledgers.streams) expect(s.published).toEqual([0, ROUNDS * SEQS_PER_ROUND - 1]);
  });

  it('reports generator health measured inside the workers', () => {
    const out = run.agg.finish(run.results);
    expect(out.generator.scheduleSlipP99Ms).toBe(1.5); // the fixture's `slip` histograms hold 0.5, 1 and 1.5 ms
    for (const p of run.agg.timeline) {
      expect(p.generator.scheduleSlipP99Ms).toBe(1); // recordSlip(i % 2): half 0 ms, half 1 ms
      expect(p.generator.cpu).toBeGreaterThanOrEqual(0);
    }
  });
});
