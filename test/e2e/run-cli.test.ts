/**
 * `mqtt-sim run` as users run it: the built CLI as a child process, the smoke scenario against the
 * embedded reference broker and against Mosquitto, and the exit codes CI branches on.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBroker as startBenchBroker, type RunningBroker } from '../../bench/broker/brokers.js';
import type { RunResult } from '../../simulator/report/run-result.js';
import { REFUSED_PORT } from '../helpers/broker.js';
import { killAllCli, repoRoot, requireBuilt, spawnCli } from '../helpers/cli-process.js';
import { mosquittoBrokerPath, requireProgram } from '../helpers/external.js';

const smoke = join(repoRoot, 'scenarios', 'smoke.yaml');
const STACK_FRAME = /\n\s+at /;
const cleanups: Array<() => void | Promise<void>> = [];

beforeAll(() => requireBuilt('cli/commands/run.js'));

afterEach(async () => {
  await killAllCli();
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-run-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function readRun(dir: string): RunResult {
  const path = join(dir, 'run.json');
  expect(existsSync(path), `${path} was not written`).toBe(true);
  return JSON.parse(readFileSync(path, 'utf8')) as RunResult;
}

function expectHealthySmokeRun(run: RunResult): void {
  expect(run.schemaVersion).toBe(1);
  expect(run.outcome).toBe('completed');
  expect(run.verdict).toBe('pass');
  expect(run.assertions.length).toBeGreaterThan(0);
  for (const a of run.assertions) expect(a.passed, a.message).toBe(true);
  const t = run.totals;
  // Every QoS was published and delivered, nothing duplicated at QoS 2, every QoS 1/2 publish acknowledged.
  expect(t.published[0]).toBeGreaterThan(0);
  expect(t.published[1]).toBeGreaterThan(0);
  expect(t.published[2]).toBeGreaterThan(0);
  expect(t.acknowledged[1]).toBe(t.published[1]);
  expect(t.acknowledged[2]).toBe(t.published[2]);
  expect(t.delivered[1]).toBeGreaterThan(0);
  expect(t.duplicates[2]).toBe(0);
  expect(t.connectFailures).toBe(0);
  // The ledger agrees with the counters, and run.json carries the latency histograms.
  expect(run.ledger.published).toEqual(t.published);
  expect(run.ledger.acknowledged[1]).toBe(t.acknowledged[1]);
  expect(run.latency['e2e']!.count).toBeGreaterThan(0);
  expect(run.timeline.length).toBeGreaterThan(2);
  expect(Object.keys(run.fleets).sort()).toEqual(run.scenario.fleets.map((f) => f.name).sort());
}

describe('mqtt-sim run', () => {
  it('runs the smoke scenario against the embedded broker, passes its assertions and writes run.json', async () => {
    const dir = tempDir();
    const cli = spawnCli(['run', smoke, '--report-dir', dir, '--workers', '2']);
    const code = await cli.waitForExit(60_000);
    expect(code, cli.stderr()).toBe(0);
    expect(cli.stdout()).toMatch(/PASS/);
    expect(cli.stderr()).not.toMatch(STACK_FRAME);
    const run = readRun(dir);
    expectHealthySmokeRun(run);
    expect(run.target.embedded).toBe(true);
    expect(run.broker?.peakRssBytes).toBeGreaterThan(0);
    expect(run.environment.workers).toBe(2);
  }, 90_000);

  describe('against Mosquitto', () => {
    const available = requireProgram('mosquitto (broker)', () => mosquittoBrokerPath() !== undefined || 'mosquitto is not installed (apt-get install mosquitto)');
    let mosquitto: RunningBroker | undefined;
    afterEach(async () => {
      await mosquitto?.stop();
      mosquitto = undefined;
    });
    it.skipIf(!available)('runs the smoke scenario against Mosquitto given as --target', async () => {
      mosquitto = await startBenchBroker('mosquitto');
      const dir = tempDir();
      const cli = spawnCli(['run', smoke, '--target', `mqtt://127.0.0.1:${mosquitto.port}`, '--report-dir', dir, '--workers', '1']);
      const code = await cli.waitForExit(60_000);
      expect(code, cli.stderr()).toBe(0);
      const run = readRun(dir);
      expectHealthySmokeRun(run);
      expect(run.target).toMatchObject({ embedded: false, urls: [`mqtt://127.0.0.1:${mosquitto.port}`] });
    }, 90_000);
  });

  it('exits 2 naming the YAML path of an invalid scenario, without a stack trace', async () => {
    const dir = tempDir();
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'name: bad\nduration: 2s\nfleets:\n  - name: a\n    count: 1\n    publish: { topic: t, qos: 3, every: 1s }\n');
    const cli = spawnCli(['run', file]);
    expect(await cli.waitForExit(15_000)).toBe(2);
    expect(cli.stderr()).toMatch(/fleets\[0\]\.publish\.qos/);
    expect(cli.stderr()).not.toMatch(STACK_FRAME);
  });

  it('exits 3 within a few seconds when the target is unreachable', async () => {
    // Not a port freed by closing a listener: another test file's broker could be given it meanwhile.
    const port = REFUSED_PORT;
    const base = tempDir();
    const cli = spawnCli(['run', smoke, '--target', `mqtt://127.0.0.1:${port}`, '--report-dir', join(base, 'reports', 'r')]);
    // The bound is the "within a few seconds"; the check itself gives up after 5 s at most.
    expect(await cli.waitForExit(15_000)).toBe(3);
    expect(cli.stderr()).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}.*unreachable`));
    expect(cli.stderr()).not.toMatch(STACK_FRAME);
    // The report folder made at the start for a run that never got going is gone again, parents too.
    expect(existsSync(join(base, 'reports'))).toBe(false);
  });

  it('says at the start when the report folder cannot be written (exit 2), and prints the summary when run.json cannot be kept at the end (exit 4)', async () => {
    const base = tempDir();
    const file = join(base, 'tiny.yaml');
    writeFileSync(file, 'name: tiny\nphases: { rampUp: 500ms, steady: 1500ms }\ndrain: 1s\nfleets:\n  - name: s\n    count: 2\n    publish: { topic: "tiny/{id}", qos: 1, every: 200ms }\n');
    writeFileSync(join(base, 'a-file'), 'x');
    // A file where a folder should be: refused before anything runs.
    const early = spawnCli(['run', file, '--report-dir', join(base, 'a-file', 'r')]);
    expect(await early.waitForExit(15_000)).toBe(2);
    expect(early.stderr()).toContain(`the report folder ${join(base, 'a-file', 'r')} cannot be written: a part of the path is a file, not a folder (ENOTDIR)`);
    expect(early.stderr()).not.toMatch(STACK_FRAME);

    // Writable at the start, gone by the end (as a disk that fills up during the run): the summary is still printed.
    const dir = join(base, 'r');
    const late = spawnCli(['run', file, '--report-dir', dir, '--progress-interval', '1']);
    await late.waitForLine(/phase steady/, 30_000);
    rmSync(dir, { recursive: true, force: true });
    writeFileSync(dir, 'in the way');
    expect(await late.waitForExit(30_000), late.stderr()).toBe(4);
    expect(late.stderr()).toContain(`cannot write the run report ${join(dir, 'run.json')}: a file is in the way (EEXIST). run.json was not kept: the summary above is what is left of this run`);
    expect(late.stderr()).not.toMatch(STACK_FRAME);
    expect(late.stdout()).toContain('Fleets (latency in ms)');
  }, 60_000);

  it('rejects --workers 0 with exit 2', async () => {
    const cli = spawnCli(['run', smoke, '--workers', '0']);
    expect(await cli.waitForExit(15_000)).toBe(2);
    expect(cli.stderr()).toMatch(/--workers: expected a whole number of at least 1/);
  });
});
