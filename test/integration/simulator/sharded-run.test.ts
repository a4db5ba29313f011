/**
 * Distributed runs on one scenario: the same scenario run whole (one slice of one) and as 4 slices
 * against the same in-process broker, concurrently, then merged with the function `mqtt-sim merge` uses.
 * Counts of published messages depend on timing, so the test compares what must hold in both: every
 * QoS 1 publish acknowledged, received once by each subscriber, and the checker finding nothing lost or
 * duplicated; plus equal device and connect totals.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runMerge } from '../../../cli/commands/merge.js';
import { planDevices } from '../../../simulator/orchestrator/plan.js';
import { runScenario } from '../../../simulator/orchestrator/run.js';
import type { RunResult } from '../../../simulator/report/run-result.js';
import { parseScenario } from '../../../simulator/scenario/load.js';
import type { Scenario } from '../../../simulator/scenario/types.js';
import { mergeLedgers, type SerializedLedgers } from '../../../simulator/verify/ledger.js';
import { startBroker, type TestBroker } from '../../helpers/broker.js';
import { requireBuilt } from '../../helpers/cli-process.js';
import { quietReporter, workerFile } from '../../helpers/run-scenario.js';

beforeAll(() => requireBuilt('simulator/shard/worker.js'));

let broker: TestBroker | undefined;
afterEach(async () => {
  await broker?.close();
  broker = undefined;
});
const tmp = mkdtempSync(join(tmpdir(), 'mqtt-sim-sharded-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const SUBSCRIBERS = 2;

function scenarioFor(url: string): Scenario {
  return parseScenario(`
name: sharded
seed: 7
target: ${url}
phases: { rampUp: 300ms, steady: 1500ms }
drain: 3s
fleets:
  - name: s
    count: 12
    publish: { topic: "sh/{id}", qos: 1, every: 200ms }
consumers:
  - name: c
    count: ${SUBSCRIBERS}
    subscribe: [{ topic: "sh/#", qos: 1 }]
`);
}

/** A start barrier for `count` runs: each run's startAt resolves, once all have asked, with one t=0 shortly ahead. */
function sharedStart(count: number): () => Promise<number> {
  let waiting: Array<(epochMs: number) => void> = [];
  return () =>
    new Promise<number>((resolve) => {
      waiting.push(resolve);
      if (waiting.length === count) {
        const epochMs = Date.now() + 300;
        for (const r of waiting) r(epochMs);
        waiting = [];
      }
    });
}

function streamSize(flat: readonly number[]): number {
  let n = 0;
  for (let i = 0; i < flat.length; i += 2) n += flat[i + 1]! - flat[i]! + 1;
  return n;
}

/** Every stream's published sequences arrived at every subscriber, once. */
function expectEveryStreamReceived(ledgers: SerializedLedgers): void {
  expect(ledgers.streams.length).toBe(12);
  for (const s of ledgers.streams) {
    const published = streamSize(s.published);
    expect(published).toBeGreaterThan(0);
    expect(streamSize(s.acknowledged)).toBe(published);
    const receivers = ledgers.receivers.filter((r) => r.stream === s.stream);
    expect(receivers.length).toBe(SUBSCRIBERS);
    for (const r of receivers) {
      expect(streamSize(r.received)).toBe(published);
      expect(r.duplicates).toBe(0);
    }
  }
}

function expectInvariants(result: RunResult): void {
  expect(result.outcome).toBe('completed');
  const published = result.totals.published[1];
  expect(published).toBeGreaterThan(0);
  expect(result.totals.acknowledged[1]).toBe(published);
  expect(result.ledger.published[1]).toBe(published);
  expect(result.ledger.acknowledged[1]).toBe(published);
  expect(result.ledger.received[1]).toBe(published * SUBSCRIBERS);
  const checker = result.checker!;
  expect(checker.byQos[1].lost).toBe(0);
  expect(checker.byQos[1].duplicated).toBe(0);
  expect(checker.byQos[1].delivered).toBe(published * SUBSCRIBERS);
  expect(checker.violations.total).toBe(0);
  expect(result.verdict).toBe('pass');
}

describe('sharded runs (run --shard i/n, merge)', () => {
  it('plans disjoint slices that cover every device, consumers included', () => {
    const scenario = scenarioFor('mqtt://127.0.0.1:1883');
    const whole = planDevices(scenario, 1).shards.flat().map((a) => a.device);
    const parts = [1, 2, 3, 4].map((index) => planDevices(scenario, 2, { index, count: 4 }).shards.flat().map((a) => a.device));
    for (const [i, part] of parts.entries()) expect(part.every((d) => d % 4 === i)).toBe(true);
    expect(parts.flat().sort((a, b) => a - b)).toEqual(whole);
    // Consumers (devices 12 and 13) land in slices 1 and 2; both workers of a slice get devices.
    for (const index of [1, 2, 3, 4]) expect(planDevices(scenario, 2, { index, count: 4 }).shards.every((s) => s.length > 0)).toBe(true);
  });

  it('gives the same message invariants and checker totals as 1 shard and as 4 merged slices', async () => {
    broker = await startBroker();
    const scenario = scenarioFor(broker.url);

    const whole = await runScenario(scenario, { workers: 1, reporter: quietReporter(), reportDir: join(tmp, 'whole'), workerFile, slice: { index: 1, count: 1 } });
    expectInvariants(whole.result);
    expect(whole.result.shard).toEqual({ index: 1, count: 1 });
    expectEveryStreamReceived(whole.result.ledgers!);

    // The slices share one t=0, as `run --processes` gives them. Started on their own, a slice whose
    // publishers start late may still publish after a consumer's slice has finished, and the exact
    // counts asserted below would not hold (the checker rightly calls such messages not owed).
    const startAt = sharedStart(4);
    const slices = await Promise.all(
      [1, 2, 3, 4].map((index) => runScenario(scenario, { workers: 1, reporter: quietReporter(), reportDir: join(tmp, `shard-${index}`), workerFile, slice: { index, count: 4 }, startAt })),
    );
    for (const [i, s] of slices.entries()) {
      expect(s.result.shard).toEqual({ index: i + 1, count: 4 });
      expect(s.result.ledgers).toBeDefined();
      expect(s.reportPath).not.toBeNull();
    }
    const out: string[] = [];
    const { result: merged, exitCode } = runMerge(
      { files: slices.map((s) => s.reportPath!), out: join(tmp, 'merged') },
      { stdout: (t) => out.push(t), stderr: (t) => out.push(t) },
    );
    expect(exitCode).toBe(0);
    expectInvariants(merged);
    const sum = (pick: (r: RunResult) => number): number => slices.reduce((n, s) => n + pick(s.result), 0);
    expect(merged.totals.published[1]).toBe(sum((r) => r.totals.published[1]));
    expect(merged.totals.acknowledged[1]).toBe(sum((r) => r.totals.acknowledged[1]));
    expect(merged.totals.delivered[1]).toBe(sum((r) => r.totals.delivered[1]));
    expectEveryStreamReceived(mergeLedgers(slices.map((s) => s.result.ledgers!)));
    // The same devices ran, and connected, in both forms.
    expect(merged.totals.devices).toBe(14);
    expect(merged.totals.devices).toBe(whole.result.totals.devices);
    expect(merged.totals.connects).toBe(whole.result.totals.connects);
    expect(merged.fleets['s']!.devices).toBe(12);
    expect(merged.fleets['c']!.devices).toBe(SUBSCRIBERS);
    expect(merged.shard).toBeUndefined();
    expect(merged.ledgers).toBeUndefined();
    expect(merged.notes?.some((n) => n.includes('synchronized clocks'))).toBe(true);
    expect(merged.latency['e2e']?.count).toBe(merged.totals.published[1] * SUBSCRIBERS);
    expect(merged.timeline.length).toBeGreaterThan(0);
  }, 60_000);

  it('refuses slices that do not belong together', async () => {
    broker = await startBroker();
    const scenario = scenarioFor(broker.url);
    const a = await runScenario(scenario, { workers: 1, reporter: quietReporter(), reportDir: join(tmp, 'bad-1'), workerFile, slice: { index: 1, count: 2 } });
    const io = { stdout: () => undefined, stderr: () => undefined };
    expect(() => runMerge({ files: [a.reportPath!] }, io)).toThrow(/slice\(s\) 2\/2 missing/);
    expect(() => runMerge({ files: [a.reportPath!, a.reportPath!] }, io)).toThrow(/given twice/);
    await expect(runScenario({ ...scenario, target: null }, { workers: 1, reporter: quietReporter(), reportDir: null, workerFile, slice: { index: 1, count: 2 } })).rejects.toThrow(/needs a target/);
    await expect(runScenario(scenario, { workers: 1, reporter: quietReporter(), reportDir: null, workerFile, slice: { index: 3, count: 2 } })).rejects.toThrow(/slice index/);
  }, 30_000);
});
