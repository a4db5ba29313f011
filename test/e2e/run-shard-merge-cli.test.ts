/**
 * Two slices of one scenario as two `mqtt-sim run --shard i/2` processes against one broker, then
 * `mqtt-sim merge`: the merged run.json carries both slices and the checker's verdict over them. With
 * the same `--start-at TIME` the slices share t=0, so nothing is indeterminate for a staggered start.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

const STACK_FRAME = /\n\s+at /;

/** 6 publishers and 2 consumers (device numbers 6 and 7): each slice of 2 has 3 publishers and 1 consumer, so traffic crosses the slices both ways. */
const crossScenario = `
name: shared-start-e2e
seed: 3
phases: { rampUp: 500ms, steady: 2s }
drain: 2s
fleets:
  - name: s
    count: 6
    publish: { topic: "shared-start/{id}", qos: 1, every: 200ms }
consumers:
  - name: c
    count: 2
    subscribe: [{ topic: "shared-start/#", qos: 1 }]
`;

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-shards-'));
  dirs.push(dir);
  return dir;
}

function crossScenarioFile(dir: string): string {
  const file = join(dir, 'scenario.yaml');
  writeFileSync(file, crossScenario);
  return file;
}

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
    // Started without --start-at, each slice began its timeline when it was ready: merge says so.
    if (a.timelineStartedAt !== b.timelineStartedAt) expect(merged.notes?.join(' ')).toContain('the slices did not share one t=0');
  }, 90_000);

  it('gives slices started separately one t=0 with the same --start-at, so merge finds nothing indeterminate', async () => {
    broker = await startBroker();
    const base = tempDir();
    const file = crossScenarioFile(base);
    // Time enough for both CLIs to start and subscribe their consumers; one slice gets it as ISO 8601, the other as ms.
    const startAt = Date.now() + 10_000;
    const shared = new Date(startAt).toISOString();
    const slices = [shared, String(startAt)].map((time, i) =>
      spawnCli(['run', file, '--target', broker!.url, '--shard', `${i + 1}/2`, '--workers', '1', '--report-dir', join(base, `s${i + 1}`), '--start-at', time]),
    );
    for (const s of slices) expect(await s.waitForExit(60_000), s.stderr()).toBe(0);
    const [a, b] = [readRun(join(base, 's1')), readRun(join(base, 's2'))];
    // Both timelines begin at TIME itself, whichever notation each slice was given.
    expect(a.timelineStartedAt).toBe(shared);
    expect(b.timelineStartedAt).toBe(shared);

    const merge = spawnCli(['merge', join(base, 's1', 'run.json'), join(base, 's2', 'run.json'), '--out', join(base, 'merged')]);
    expect(await merge.waitForExit(30_000), merge.stderr()).toBe(0);
    const merged = readRun(join(base, 'merged'));
    expect(merged.timelineStartedAt).toBe(shared);
    expect(merged.notes?.join(' ')).not.toContain('did not share one t=0');
    // Every consumer was subscribed before the first publish of either slice and stayed to the end.
    expect(merged.checker?.byQos[1].delivered).toBeGreaterThan(0);
    expect(merged.checker?.byQos[1].indeterminate).toBe(0);
    expect(merged.checker?.byQos[1].lost).toBe(0);
    expect(merged.checker?.verdict).toBe('pass');
  }, 90_000);

  it('prints a progress line while it waits for --start-at, and Ctrl-C then stops it cleanly', async () => {
    broker = await startBroker();
    const base = tempDir();
    const run = spawnCli(['run', crossScenarioFile(base), '--target', broker.url, '--shard', '1/2', '--workers', '1', '--report-dir', join(base, 's1'), '--start-at', new Date(Date.now() + 90_000).toISOString()]);
    await run.waitForLine(/consumers subscribed; waiting for the shared start at \S+Z \(in \d+ s\)/, 30_000);
    run.child.kill('SIGINT');
    expect(await run.waitForExit(30_000), run.stderr()).toBe(1);
    expect(run.stderr()).toContain('the run was interrupted');
    expect(run.stderr()).not.toMatch(STACK_FRAME);
    const r = readRun(join(base, 's1'));
    expect(r.outcome).toBe('aborted');
    expect(r.timelineStartedAt).toBeUndefined();
  }, 60_000);

  it('ready after --start-at (within the bound): starts at once on that t=0, says how late in run.json, and merge keeps the note', async () => {
    broker = await startBroker();
    const base = tempDir();
    // Already due when the run starts, so it is ready only after it.
    const startAt = Date.now() - 500;
    const run = spawnCli(['run', crossScenarioFile(base), '--target', broker.url, '--shard', '1/1', '--workers', '1', '--report-dir', join(base, 'r'), '--start-at', String(startAt)]);
    expect(await run.waitForExit(60_000), run.stderr()).toBe(0);
    const r = readRun(join(base, 'r'));
    expect(r.timelineStartedAt).toBe(new Date(startAt).toISOString());
    const late = /this run started \d+ ms after its shared t=0 \(\S+Z\), on that t=0 all the same: devices due to connect in those \d+ ms connected at once/;
    expect(r.notes?.join(' ')).toMatch(late);
    expect(run.stdout()).toMatch(/warn: this process started its timeline \d+ ms after the shared t=0/);
    // The merged run says it too, marked with the slice.
    const merge = spawnCli(['merge', join(base, 'r', 'run.json'), '--out', join(base, 'merged')]);
    expect(await merge.waitForExit(30_000), merge.stderr()).toBe(0);
    const slice = readRun(join(base, 'merged')).notes?.find((n) => n.startsWith('slice 1/1: '));
    expect(slice).toMatch(late);
  }, 60_000);

  it.each([
    ['garbage', () => ['--start-at', 'soon'], '--start-at: expected an ISO 8601 time with a zone such as 2026-11-26T10:00:00Z'],
    ['a time long past', () => ['--start-at', String(Date.now() - 3_600_000)], 'more than the 10 s a run may start late'],
    ['a time days ahead', () => ['--start-at', new Date(Date.now() + 3 * 86_400_000).toISOString()], 'more than the 24 h a run may wait'],
    ['--processes', () => ['--processes', '2', '--start-at', new Date(Date.now() + 60_000).toISOString()], '--processes 2 and --start-at do not go together'],
  ])('refuses --start-at with %s: exit 2, the problem and the fix, no stack', async (_what, flags, message) => {
    const run = spawnCli(['run', smoke, '--no-report', ...flags()]);
    expect(await run.waitForExit(20_000), run.stderr()).toBe(2);
    expect(run.stderr()).toContain(message);
    expect(run.stderr()).not.toMatch(STACK_FRAME);
  });
});
