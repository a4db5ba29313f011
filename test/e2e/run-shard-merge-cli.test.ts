/**
 * Two slices of one scenario as two `mqtt-sim run --shard i/2` processes against one broker, then
 * `mqtt-sim merge`: the merged run.json carries both slices and the checker's verdict over them.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunResult } from '../../simulator/report/run-result.js';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { killAllCli, repoRoot, requireBuilt, spawnCli } from '../helpers/cli-process.js';

const smoke = join(repoRoot, 'scenarios', 'smoke.yaml');
let broker: TestBroker | undefined;
const dirs: string[] = [];

beforeAll(() => requireBuilt('cli/commands/merge.js'));

afterEach(async () => {
  await killAllCli();
  await broker?.close();
  broker = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function readRun(dir: string): RunResult {
  const path = join(dir, 'run.json');
  expect(existsSync(path), `${path} was not written`).toBe(true);
  return JSON.parse(readFileSync(path, 'utf8')) as RunResult;
}

describe('mqtt-sim run --shard i/n and mqtt-sim merge', () => {
  it('runs two slices against one broker and merges them into one checked run', async () => {
    broker = await startBroker();
    const base = mkdtempSync(join(tmpdir(), 'mqtt-sim-shards-'));
    dirs.push(base);
    const slices = [1, 2].map((i) =>
      spawnCli(['run', smoke, '--target', broker!.url, '--shard', `${i}/2`, '--workers', '1', '--report-dir', join(base, `s${i}`)]),
    );
    for (const s of slices) expect(await s.waitForExit(60_000), s.stderr()).toBe(0);
    const [a, b] = [readRun(join(base, 's1')), readRun(join(base, 's2'))];
    expect(a.shard).toEqual({ index: 1, count: 2 });
    expect(b.shard).toEqual({ index: 2, count: 2 });
    // A slice cannot judge deliveries received in another slice: it leaves that to merge.
    expect(a.assertions).toEqual([]);
    expect(a.notes?.join(' ')).toMatch(/slice 1 of 2: the delivery checker and the assertions run when mqtt-sim merge/);

    const merge = spawnCli(['merge', join(base, 's1', 'run.json'), join(base, 's2', 'run.json'), '--out', join(base, 'merged')]);
    expect(await merge.waitForExit(30_000), merge.stderr()).toBe(0);
    const merged = readRun(join(base, 'merged'));
    for (const q of [0, 1, 2] as const) expect(merged.totals.published[q]).toBe(a.totals.published[q] + b.totals.published[q]);
    expect(merged.totals.connects).toBe(a.totals.connects + b.totals.connects);
    // The checker ran over both slices' ledgers: a stream published in one slice and received in the
    // other (the consumers sit in different slices) is judged, and nothing is lost.
    expect(merged.checker?.verdict).toBe('pass');
    expect(merged.checker?.violations.total).toBe(0);
    expect(merged.verdict).toBe('pass');
    expect(existsSync(join(base, 'merged', 'report.html'))).toBe(true);
  }, 90_000);
});
