/**
 * `mqtt-sim run` with a chaos timeline: the built CLI as a child process kills its embedded broker
 * mid-run and brings it back on the same port; a broker action with --target is refused with exit 2.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunResult } from '../../simulator/report/run-result.js';
import { killAllCli, requireBuilt, spawnCli } from '../helpers/cli-process.js';

const STACK_FRAME = /\n\s+at /;
const cleanups: Array<() => void> = [];

beforeAll(() => requireBuilt('cli/commands/run.js'));

afterEach(async () => {
  await killAllCli();
  for (const c of cleanups.splice(0).reverse()) c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-chaos-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const crashScenario = `
name: crash-e2e
duration: 6s
phases: { rampUp: 500ms, rampDown: 500ms }
drain: 5s
x-persistent: &persistent
  session: { clean: false, expiry: 5m }
  reconnect: { initialDelay: 100ms, maxDelay: 1s }
fleets:
  - name: s
    <<: *persistent
    count: 20
    publish: { topic: "e/{id}", qos: 1, every: 200ms }
consumers:
  - name: c
    <<: *persistent
    subscribe: [{ topic: "e/#", qos: 1 }]
chaos:
  - { at: 2s, broker: kill }
expect:
  - reconnects > 0
  - fleets.c.reconnects >= 1
`;

describe('mqtt-sim run with chaos', () => {
  it('kills the embedded broker at 2 s, restarts it on the same port, and completes with every QoS 1 publish acknowledged', async () => {
    const dir = tempDir();
    const file = join(dir, 'crash.yaml');
    writeFileSync(file, crashScenario);
    const cli = spawnCli(['run', file, '--report-dir', dir, '--workers', '2']);
    const code = await cli.waitForExit(60_000);
    expect(code, cli.stderr()).toBe(0);
    expect(cli.stderr()).not.toMatch(STACK_FRAME);
    const started = /embedded reference broker (mqtt:\/\/[\d.]+:\d+) \(pid (\d+)\)/.exec(cli.stdout());
    expect(started, cli.stdout()).not.toBeNull();
    const [, url, firstPid] = started!;
    // The plain reporter printed the action as it happened.
    expect(cli.stdout()).toMatch(/\[ +2s\] chaos: broker kill \(downtime 1s\)/);
    expect(cli.stdout()).toMatch(/\] chaos: broker kill \(downtime 1s\): killed pid \d+ \(SIGKILL\), restarted after 1s as pid \d+/);

    const path = join(dir, 'run.json');
    expect(existsSync(path), `${path} was not written`).toBe(true);
    const run = JSON.parse(readFileSync(path, 'utf8')) as RunResult;
    expect(run.verdict).toBe('pass');
    expect(run.chaos).toHaveLength(1);
    const kill = run.chaos[0]!;
    expect(kill.action).toBe('broker-kill');
    expect(kill.outcome, kill.detail).toBe('ok');
    expect(kill.atMs).toBeGreaterThanOrEqual(2000);
    // Back on the port the run started with, as a new process.
    expect(kill.detail).toContain(`killed pid ${firstPid} (SIGKILL)`);
    expect(kill.detail).toContain(`on ${url}`);
    expect(run.target.urls).toEqual([url]);
    expect(run.broker?.pid).not.toBe(Number(firstPid));

    const t = run.totals;
    expect(t.reconnects).toBeGreaterThanOrEqual(21);
    expect(t.published[1]).toBeGreaterThan(0);
    expect(t.acknowledged[1]).toBe(t.published[1]);
    // The broker's CPU/RSS sampling followed the new process.
    const after = run.timeline.filter((p) => p.atMs > kill.endMs! && p.phase !== 'drain');
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((p) => (p.broker?.rssBytes ?? 0) > 0)).toBe(true);
  }, 90_000);

  it('refuses a broker action with --target (exit 2), pointing at exec', async () => {
    const dir = tempDir();
    const file = join(dir, 'crash.yaml');
    writeFileSync(file, crashScenario);
    const cli = spawnCli(['run', file, '--target', 'mqtt://127.0.0.1:1', '--no-report']);
    expect(await cli.waitForExit(15_000)).toBe(2);
    expect(cli.stderr()).toContain('chaos[0].broker: broker actions act on the embedded broker, but this run has a target (in the scenario or --target); for an external broker use exec');
    expect(cli.stderr()).not.toMatch(STACK_FRAME);
  });
});
