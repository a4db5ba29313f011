/**
 * `mqtt-sim capacity` as users run it: the built CLI as a child process. Its help, a bad --slo rejected
 * with exit 2 before anything runs, and a tiny real ramp of two steps against the embedded broker that
 * writes capacity.json, report.html and each step's run.json and exits 0.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CapacityResult } from '../../simulator/capacity/types.js';
import type { RunResult } from '../../simulator/report/run-result.js';
import { killAllCli, requireBuilt, spawnCli } from '../helpers/cli-process.js';

const STACK_FRAME = /\n\s+at /;
const cleanups: Array<() => void> = [];

beforeAll(() => requireBuilt('cli/commands/capacity.js'));

afterEach(async () => {
  await killAllCli();
  for (const c of cleanups.splice(0).reverse()) c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-capacity-cli-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Two sensors at 10 msg/s each (QoS 1) and one subscriber: cheap enough to ramp in a test. */
function tinyScenario(dir: string): string {
  const path = join(dir, 'tiny.yaml');
  writeFileSync(
    path,
    `name: tiny
seed: 5
phases: { steady: 2s }
drain: 2s
fleets:
  - name: meters
    model: sensor
    count: 2
    connect: 100/s
    publish: { topic: "tiny/{id}", qos: 1, every: 100ms, payload: { size: 16 } }
consumers:
  - name: sink
    subscribe: [{ topic: "tiny/#", qos: 1 }]
expect:
  - qos1.delivered < 0
`,
  );
  return path;
}

describe('mqtt-sim capacity', () => {
  it('--help lists the options, the stop reasons and the exit codes', async () => {
    const cli = spawnCli(['capacity', '--help']);
    expect(await cli.waitForExit(10_000)).toBe(0);
    const help = cli.stdout();
    for (const flag of ['--slo', '--ramp', '--start', '--step', '--factor', '--max-steps', '--hold', '--refine', '--target', '--broker-pid', '--target-devices', '--shard-cores', '--shard-memory', '--workers', '--seed', '--report-dir', '--json']) {
      expect(help).toContain(flag);
    }
    expect(help).toMatch(/replaces the scenario's expect/);
    expect(help).toMatch(/generator-saturated/);
    expect(help).toMatch(/Exit codes: 0 the ramp found a knee/);
  });

  it('rejects a bad --slo with exit 2 and the fix, before anything runs', async () => {
    const dir = tempDir();
    const scenario = tinyScenario(dir);
    const syntax = spawnCli(['capacity', scenario, '--slo', 'latency.e2e.p99 << 5', '--report-dir', join(dir, 'out')]);
    expect(await syntax.waitForExit(10_000)).toBe(2);
    expect(syntax.stderr()).toMatch(/mqtt-sim: --slo: expected "<metric> <op> <value>" like "latency.e2e.p99 < 500ms"/);
    expect(syntax.stderr()).not.toMatch(STACK_FRAME);

    const unknown = spawnCli(['capacity', scenario, '--slo', 'latency.e2e.p99<250ms,qos1.lots==0', '--report-dir', join(dir, 'out')]);
    expect(await unknown.waitForExit(10_000)).toBe(2);
    expect(unknown.stderr()).toMatch(/--slo "qos1.lots==0": unknown metric qos1.lots; did you mean qos1.lost\?/);
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('ramps two steps against the embedded broker, writes capacity.json, report.html and each run.json, and exits 0', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const cli = spawnCli(['capacity', tinyScenario(dir), '--slo', 'latency.e2e.p99<5s,qos1.lost==0', '--start', '2', '--max-steps', '2', '--hold', '3s', '--workers', '1', '--report-dir', out, '--json']);
    const code = await cli.waitForExit(90_000);
    expect(code, cli.stderr()).toBe(0);
    expect(cli.stderr()).not.toMatch(STACK_FRAME);
    // One progress line per step start and per step result.
    expect(cli.stderr()).toMatch(/step 1\/2: 2 devices, 20 msg\/s offered \(ramp-up 1s, hold 3s\)/);
    expect(cli.stderr()).toMatch(/step 2\/2: 4 devices, 40 msg\/s offered/);
    expect(cli.stderr()).toMatch(/step 2: SLO met, settled; /);

    const written = JSON.parse(readFileSync(join(out, 'capacity.json'), 'utf8')) as CapacityResult;
    expect(JSON.parse(cli.stdout())).toEqual(written);
    expect(written.steps.map((s) => [s.devices, s.offeredRate, s.sloMet, s.stable])).toEqual([[2, 20, true, true], [4, 40, true, true]]);
    expect(written.stopReason).toBe('max-steps');
    expect(written.knee).toMatchObject({ step: 2, devices: 4, offeredRate: 40 });
    expect(written.slo).toBe('latency.e2e.p99<5s,qos1.lost==0');
    expect(written.target.embedded).toBe(true);
    // The embedded broker was measured in every step, so the cost model has a broker side.
    expect(written.steps.every((s) => s.broker !== undefined)).toBe(true);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toMatch(/^<!DOCTYPE html>/i);

    // Each step is an ordinary run whose assertions are the SLO, not the scenario's expect: (which would fail).
    const step2 = JSON.parse(readFileSync(join(out, written.steps[1]!.runJson!), 'utf8')) as RunResult;
    expect(step2.assertions.map((a) => a.source)).toEqual(['latency.e2e.p99<5s', 'qos1.lost==0']);
    expect(step2.verdict).toBe('pass');
    expect(step2.scenario.fleets.map((f) => f.count)).toEqual([4, 1]);
  }, 120_000);
});
