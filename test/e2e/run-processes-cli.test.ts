/**
 * `mqtt-sim run SCENARIO --processes N`: the built CLI as a real process starts the embedded broker once,
 * runs N slice processes of itself on one timeline, runs broker chaos once, and merges the slices'
 * run.json files into the run's; bad flags exit 2, a slice that dies fails the run with exit 4.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunResult } from '../../simulator/report/run-result.js';
import { killAllCli, requireBuilt, spawnCli } from '../helpers/cli-process.js';
import { waitUntil } from '../helpers/wait.js';

const STACK_FRAME = /\n\s+at /;
const cleanups: Array<() => void> = [];

beforeAll(() => requireBuilt('simulator/orchestrator/local-processes.js'));

afterEach(async () => {
  await killAllCli();
  for (const c of cleanups.splice(0).reverse()) c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-processes-e2e-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function scenarioFile(dir: string, text: string): string {
  const file = join(dir, 'scenario.yaml');
  writeFileSync(file, text);
  return file;
}

function readRun(dir: string): RunResult {
  const path = join(dir, 'run.json');
  expect(existsSync(path), `${path} was not written`).toBe(true);
  return JSON.parse(readFileSync(path, 'utf8')) as RunResult;
}

/** Pids whose parent is `pid`, with their command lines (from /proc). */
function childrenOf(pid: number): Array<{ pid: number; args: string[] }> {
  const out: Array<{ pid: number; args: string[] }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The fields after the command name (which may hold spaces) start after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      out.push({ pid: Number(entry), args: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0') });
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

const qos1Scenario = `
name: processes-e2e
seed: 11
phases: { rampUp: 500ms, steady: 2500ms }
drain: 3s
fleets:
  - name: s
    count: 10
    publish: { topic: "p/{id}", qos: 1, every: 200ms }
consumers:
  - name: c
    count: 2
    subscribe: [{ topic: "p/#", qos: 1 }]
expect:
  - qos1.lost == 0
  - qos1.delivered > 0
`;

const crashScenario = `
name: processes-crash-e2e
seed: 5
duration: 8s
phases: { rampUp: 500ms, rampDown: 500ms }
drain: 5s
x-persistent: &persistent
  session: { clean: false, expiry: 5m }
  reconnect: { initialDelay: 100ms, maxDelay: 1s }
fleets:
  - name: s
    <<: *persistent
    count: 10
    publish: { topic: "k/{id}", qos: 1, every: 200ms }
consumers:
  - name: c
    <<: *persistent
    count: 2
    subscribe: [{ topic: "k/#", qos: 1 }]
chaos:
  - { at: 2s, broker: kill }
expect:
  - reconnects > 0
  - qos1.lost == 0
  - violations.session-lost == 0
`;

describe('mqtt-sim run --processes N', () => {
  it('runs 2 slice processes against one embedded broker on one timeline and merges them into one checked run', async () => {
    const dir = tempDir();
    const file = scenarioFile(dir, qos1Scenario);
    const cli = spawnCli(['run', file, '--processes', '2', '--report-dir', dir, '--progress-interval', '1']);
    expect(await cli.waitForExit(60_000), cli.stderr()).toBe(0);
    expect(cli.stderr()).not.toMatch(STACK_FRAME);
    // One broker for the run, started by the parent; live progress summed over both slices.
    expect(cli.stdout()).toMatch(/12 devices in 2 fleets → embedded reference broker mqtt:\/\/127\.0\.0\.1:\d+ \(pid \d+\)/);
    expect(cli.stdout()).toContain('2 simulator process(es), 1 worker thread(s) each');
    expect(cli.stdout()).toMatch(/\] connected 12\/12 /);

    const run = readRun(dir);
    expect(run.notes).toContain('merged from 2 slice(s) of 2');
    expect(run.notes?.join(' ')).toContain('mqtt-sim run --processes 2');
    expect(run.shard).toBeUndefined();
    expect(run.target.embedded).toBe(true);
    expect(run.broker?.embedded).toBe(true);
    expect(run.broker!.cpuSeconds).toBeGreaterThan(0);
    expect(run.environment.workers).toBe(2);
    const t = run.totals;
    expect(t.published[1]).toBeGreaterThan(0);
    expect(t.acknowledged[1]).toBe(t.published[1]);
    // Each of the 2 consumers (one per slice) got every QoS 1 message of both slices' publishers.
    expect(run.ledger.received[1]).toBe(2 * run.ledger.acknowledged[1]);
    expect(run.checker?.verdict).toBe('pass');
    expect(run.checker?.violations.total).toBe(0);
    expect(run.verdict).toBe('pass');
    expect(existsSync(join(dir, 'report.html'))).toBe(true);
    // The timeline points hold both slices' devices and the parent's broker samples.
    const steady = run.timeline.filter((p) => p.phase === 'steady');
    expect(steady.length).toBeGreaterThan(0);
    expect(steady.some((p) => p.connected === 12)).toBe(true);
    expect(steady.every((p) => (p.broker?.rssBytes ?? 0) > 0)).toBe(true);

    // The slices' own run.json files, which started their timelines at the same instant.
    const slices = [1, 2].map((i) => readRun(join(dir, 'shards', `shard-${i}`)));
    expect(slices.map((s) => s.shard)).toEqual([{ index: 1, count: 2 }, { index: 2, count: 2 }]);
    expect(slices.map((s) => s.fleets['s']!.devices)).toEqual([5, 5]);
    expect(slices[0]!.timelineStartedAt).toBeDefined();
    expect(slices[1]!.timelineStartedAt).toBe(slices[0]!.timelineStartedAt);
    expect(run.timelineStartedAt).toBe(slices[0]!.timelineStartedAt);
  }, 60_000);

  it('kills the embedded broker once (in the parent) under 2 slices with persistent QoS 1 sessions, and passes', async () => {
    const dir = tempDir();
    const file = scenarioFile(dir, crashScenario);
    const cli = spawnCli(['run', file, '--processes', '2', '--report-dir', dir]);
    expect(await cli.waitForExit(60_000), cli.stderr()).toBe(0);
    expect(cli.stdout()).toMatch(/\] chaos: broker kill \(downtime 1s\): killed pid \d+ \(SIGKILL\), restarted after 1s as pid \d+/);

    const run = readRun(dir);
    expect(run.chaos).toHaveLength(1);
    const kill = run.chaos[0]!;
    expect(kill.action).toBe('broker-kill');
    expect(kill.outcome, kill.detail).toBe('ok');
    expect(kill.atMs).toBeGreaterThanOrEqual(2000);
    expect(kill.detail).toMatch(/^killed pid \d+/);
    // The slices left the broker action to the parent.
    for (const i of [1, 2]) expect(readRun(join(dir, 'shards', `shard-${i}`)).chaos).toEqual([]);
    expect(run.broker?.pid).not.toBeUndefined();

    // Every device came back after the kill; each consumer's persistent session was owed and resumed.
    const t = run.totals;
    expect(t.reconnects).toBeGreaterThanOrEqual(12);
    const sessions = run.checker?.sessions;
    expect(sessions?.owedReconnects).toBeGreaterThanOrEqual(2);
    expect(sessions?.resumed).toBe(sessions?.owedReconnects);
    expect(sessions?.forgotten).toBe(0);
    expect(t.published[1]).toBeGreaterThan(0);
    expect(t.acknowledged[1]).toBe(t.published[1]);
    expect(run.ledger.received[1]).toBe(2 * run.ledger.acknowledged[1]);
    expect(run.checker?.verdict).toBe('pass');
    expect(run.verdict).toBe('pass');
  }, 60_000);

  it('refuses --processes 0 and --processes with --shard (exit 2, one clear line)', async () => {
    const dir = tempDir();
    const file = scenarioFile(dir, qos1Scenario);
    const zero = spawnCli(['run', file, '--processes', '0', '--no-report']);
    const both = spawnCli(['run', file, '--processes', '2', '--shard', '1/2', '--target', 'mqtt://127.0.0.1:1', '--no-report']);
    expect(await zero.waitForExit(20_000)).toBe(2);
    expect(zero.stderr()).toContain('mqtt-sim: --processes: expected a whole number from 1 to 64, got 0');
    expect(await both.waitForExit(20_000)).toBe(2);
    expect(both.stderr()).toContain('mqtt-sim: --processes 2 and --shard 1/2 do not go together');
    expect(both.stderr()).toContain('Give one of the two.');
    for (const c of [zero, both]) expect(c.stderr()).not.toMatch(STACK_FRAME);
  }, 30_000);

  it.runIf(process.platform === 'linux')('fails with exit 4 naming the slice when a slice process dies, and stops the others and the broker', async () => {
    const dir = tempDir();
    const file = scenarioFile(dir, qos1Scenario.replace('steady: 2500ms', 'steady: 30s'));
    const cli = spawnCli(['run', file, '--processes', '2', '--report-dir', dir]);
    const [, brokerPid] = (await cli.waitForLine(/embedded reference broker \S+ \(pid (\d+)\)/, 30_000));
    await cli.waitForLine(/phase steady/, 30_000);
    const slices = childrenOf(cli.child.pid!).filter((c) => c.args.includes('--shard'));
    const second = slices.find((c) => c.args.includes('2/2'));
    const first = slices.find((c) => c.args.includes('1/2'));
    expect(second, JSON.stringify(slices)).toBeDefined();
    process.kill(second!.pid, 'SIGKILL');

    expect(await cli.waitForExit(45_000), cli.stderr()).toBe(4);
    expect(cli.stderr()).toContain(`mqtt-sim: slice 2/2 (pid ${second!.pid}) was killed by SIGKILL`);
    expect(cli.stderr()).toContain('The other slices were stopped');
    expect(cli.stderr()).not.toMatch(STACK_FRAME);
    // Slice 1 stopped gracefully (its partial report is there); nothing of the run is left running.
    expect(readRun(join(dir, 'shards', 'shard-1')).outcome).toBe('aborted');
    await waitUntil(() => !existsSync(`/proc/${first!.pid}`) && !existsSync(`/proc/${brokerPid}`), 5000, 'slice 1 and the broker to be gone');
  }, 60_000);
});
