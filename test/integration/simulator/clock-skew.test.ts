/**
 * Clock offsets between slices, for real: two slices of one scenario run concurrently against one
 * broker, once on one clock and once with slice 2's clock skewed on purpose (RunOptions.clockSkewMs, the
 * hidden `run --clock-skew-ms`), then merged. Both slices publish and subscribe, so there is traffic both
 * ways and merge can estimate the offset: about 0 on one clock, about the skew otherwise, and the
 * corrected e2e latencies of the skewed run look like the unskewed run's instead of carrying the skew.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mergeRunResults } from '../../../simulator/orchestrator/merge.js';
import { runScenario } from '../../../simulator/orchestrator/run.js';
import { createHistogram, mergeInto, summarizeHistogram } from '../../../simulator/metrics/histograms.js';
import type { RunResult } from '../../../simulator/report/run-result.js';
import { parseScenario } from '../../../simulator/scenario/load.js';
import type { Scenario } from '../../../simulator/scenario/types.js';
import { startBroker, type TestBroker } from '../../helpers/broker.js';
import { requireBuilt } from '../../helpers/cli-process.js';
import { quietReporter, workerFile } from '../../helpers/run-scenario.js';

beforeAll(() => requireBuilt('simulator/shard/worker.js'));

let broker: TestBroker | undefined;
afterEach(async () => {
  await broker?.close();
  broker = undefined;
});
const tmp = mkdtempSync(join(tmpdir(), 'mqtt-sim-clock-skew-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * Slice 2's clock is this far ahead: far beyond loopback latency even on a loaded machine, and beyond the
 * checker's 1 s margin, so the checker's times must be corrected too.
 */
const SKEW_MS = 2000;

/**
 * 6 publishers (devices 0..5) and 2 consumers (devices 6, 7): each of the 2 slices has 3 publishers and 1
 * consumer. The slices start independently (each its own t=0), so messages sent while only one consumer
 * is subscribed are indeterminate for the other: the test checks what the clocks change, not that count.
 */
function scenarioFor(name: string, url: string): Scenario {
  return parseScenario(`
name: ${name}
seed: 11
target: ${url}
phases: { rampUp: 200ms, steady: 2500ms }
drain: 3s
fleets:
  - name: s
    count: 6
    publish: { topic: "${name}/{id}", qos: 1, every: 100ms }
consumers:
  - name: c
    count: 2
    subscribe: [{ topic: "${name}/#", qos: 1 }]
`);
}

async function runSlices(scenario: Scenario, skew2: number): Promise<RunResult[]> {
  const outcomes = await Promise.all(
    [1, 2].map((index) =>
      runScenario(scenario, {
        workers: 1,
        reporter: quietReporter(),
        reportDir: join(tmp, `${scenario.name}-${index}`),
        workerFile,
        slice: { index, count: 2 },
        ...(index === 2 && skew2 !== 0 ? { clockSkewMs: skew2 } : {}),
      }),
    ),
  );
  return outcomes.map((o) => o.result);
}

const merge = (slices: RunResult[]): RunResult => mergeRunResults(slices.map((result, i) => ({ path: `slice-${i + 1}`, result })));

/** What merge gave before clock offsets existed: the slices' own e2e histograms added up. */
function uncorrectedE2e(slices: RunResult[]): ReturnType<typeof summarizeHistogram> {
  const map = new Map<string, ReturnType<typeof createHistogram>>();
  for (const s of slices) mergeInto(map, { e2e: s.histograms['e2e']! });
  return summarizeHistogram(map.get('e2e')!);
}

function expectCheckedAndComplete(merged: RunResult): void {
  const delivered = merged.totals.delivered[1];
  expect(delivered).toBeGreaterThan(0);
  expect(merged.checker?.byQos[1].lost).toBe(0);
  expect(merged.checker?.byQos[1].delivered).toBe(delivered);
  expect(merged.verdict).toBe('pass');
  // The corrected e2e is rebuilt from the per-source records: every delivery of every slice is in it.
  expect(merged.latency['e2e']?.count).toBe(delivered);
  expect(merged.latency['e2e.qos1']?.count).toBe(delivered);
}

describe('clock offsets between slices (run --shard i/n with a skewed clock, merge)', () => {
  it('estimates about 0 on one clock and about the skew on a skewed one, and corrects e2e by it', async () => {
    broker = await startBroker();
    const [plain, skewed] = await Promise.all([runSlices(scenarioFor('clk-plain', broker.url), 0), runSlices(scenarioFor('clk-skew', broker.url), SKEW_MS)]);

    // Each slice recorded its deliveries per publishing slice; the skew shows in the raw minimums.
    for (const s of [...plain, ...skewed]) expect(Object.keys(s.sliceClock?.fromSlice ?? {}).sort()).toEqual(['1', '2']);
    expect(skewed[1]!.sliceClock!.fromSlice['1']!.minE2eMs).toBeGreaterThan(SKEW_MS - 100);
    expect(skewed[0]!.sliceClock!.fromSlice['2']!.minE2eMs).toBeLessThan(-(SKEW_MS - 100));

    const one = merge(plain);
    expectCheckedAndComplete(one);
    expect(one.clockOffsets?.offsetsMs['1']).toBe(0);
    expect(Math.abs(one.clockOffsets!.offsetsMs['2']!)).toBeLessThan(50);
    expect(one.clockOffsets?.pairs.map((p) => p.slices)).toEqual([[1, 2]]);
    expect(one.clockOffsets?.corrected).toEqual(['e2e', 'e2e.qos1', 'checker times']);

    const two = merge(skewed);
    expectCheckedAndComplete(two);
    const offset = two.clockOffsets!.offsetsMs['2']!;
    expect(Math.abs(offset - SKEW_MS)).toBeLessThan(50);
    const note = two.notes!.find((n) => n.startsWith('clock offsets relative to slice 1'));
    expect(note).toContain(`slice 2 +${offset.toFixed(1)} ms, estimated NTP-style`);
    expect(note).toMatch(/symmetric minimum path delay/);

    // Uncorrected, the deliveries slice 1 → slice 2 carry the whole skew (and those 2 → 1 are clamped at
    // 0); corrected, the skewed run's latencies look like the run on one clock, measured at the same time.
    const reference = one.latency['e2e']!;
    const e2e = two.latency['e2e']!;
    const uncorrected = uncorrectedE2e(skewed);
    expect(uncorrected.max).toBeGreaterThan(SKEW_MS - 100);
    expect(Math.abs(e2e.mean - reference.mean)).toBeLessThan(SKEW_MS / 10);
    expect(Math.abs(e2e.p50 - reference.p50)).toBeLessThan(SKEW_MS / 10);
    expect(e2e.max).toBeLessThan(reference.max + SKEW_MS / 2);
  }, 60_000);

  it('refuses a clock skew that is not a number of ms within an hour', async () => {
    const scenario = scenarioFor('clk-bad', 'mqtt://127.0.0.1:1');
    for (const clockSkewMs of [Number.NaN, 3_600_001]) {
      await expect(runScenario(scenario, { workers: 1, reporter: quietReporter(), reportDir: null, workerFile, slice: { index: 1, count: 2 }, clockSkewMs })).rejects.toThrow(/--clock-skew-ms: expected a number of milliseconds from -3600000 to 3600000/);
    }
  });
});
