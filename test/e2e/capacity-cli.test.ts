/**
 * `mqtt-sim capacity` as users run it: the built CLI as a child process. Its help, a bad --slo rejected
 * with exit 2 before anything runs, a tiny real ramp of two steps against the embedded broker that
 * writes capacity.json, report.html and each step's run.json and exits 0, and a ramp whose target goes
 * away after step 1: the report of step 1 is still written, with stop reason error, and the exit is 3.
 * (A target that goes away during a step: test/integration/simulator/capacity-outage.test.ts.)
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CapacityResult } from '../../simulator/capacity/types.js';
import type { RunResult } from '../../simulator/report/run-result.js';
import { startBroker } from '../helpers/broker.js';
import { killAllCli, requireBuilt, spawnCli } from '../helpers/cli-process.js';

const STACK_FRAME = /\n\s+at /;
const cleanups: Array<() => void> = [];

beforeAll(() => requireBuilt('cli/commands/capacity.js'));

afterEach(async () => {
  await killAllCli();
  for (const c of cleanups.splice(0).reverse()) c();
});

/**
 * A target that goes away: a TCP forwarder to a real broker that takes `clients` MQTT clients (connections
 * that send something) and drops every later one as soon as it sends its CONNECT (those already taken
 * keep working). Connections that send nothing, the ramp's reachability checks, are always accepted.
 * Deterministic, unlike stopping a broker when a progress line shows up, or counting accepted
 * connections: the check after step 1 and the one before step 2 follow each other at once.
 */
async function vanishingTarget(upstreamPort: number, clients: number): Promise<{ url: string; taken: () => number; dropped: () => number }> {
  let taken = 0;
  let dropped = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    client.on('close', () => sockets.delete(client));
    client.once('data', (first: Buffer) => {
      if (taken >= clients) {
        dropped++;
        client.destroy();
        return;
      }
      taken++;
      const upstream = net.connect({ host: '127.0.0.1', port: upstreamPort });
      sockets.add(upstream);
      upstream.on('error', () => undefined);
      for (const s of [client, upstream]) {
        s.on('close', () => {
          sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      upstream.write(first);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    server.close();
    for (const s of sockets) s.destroy();
  });
  return { url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`, taken: () => taken, dropped: () => dropped };
}

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
    // The epilogue wraps at the terminal width.
    const flat = help.replace(/\s+/g, ' ');
    expect(flat).toContain('error (a step after the first failed, e.g. the target went away, or the target stopped answering during a step, an outage and not a capacity limit: the report covers the steps before it');
    expect(flat).toContain('3 target unreachable (at the start of step 1: nothing written; at a later step, or during any step: after writing the report of the steps before it)');
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

  it('keeps the steps done when the target goes away at step 2: writes the report with stop reason error, then exits 3', async () => {
    const broker = await startBroker();
    cleanups.push(() => void broker.close());
    // Step 1's MQTT clients are its consumer and 2 devices; step 2's consumer is dropped.
    const target = await vanishingTarget(broker.port, 3);
    const dir = tempDir();
    const out = join(dir, 'out');
    const cli = spawnCli(['capacity', tinyScenario(dir), '--slo', 'latency.e2e.p99<5s,qos1.lost==0', '--start', '2', '--max-steps', '3', '--hold', '2s', '--workers', '1', '--target', target.url, '--report-dir', out]);
    const code = await cli.waitForExit(60_000);
    const stderr = cli.stderr();
    expect(code, stderr).toBe(3);
    expect(target.taken(), stderr).toBe(3);
    expect(target.dropped(), stderr).toBeGreaterThan(0);
    expect(stderr).toMatch(/step 1: SLO met, settled; /);
    expect(stderr).toContain('mqtt-sim capacity: step 2 could not reach the target, so the ramp stopped there: no consumer could connect and subscribe: sink-0: ');
    expect(stderr).toContain('mqtt-sim capacity: the report covers the 1 step before it; exit code 3 (target unreachable)');
    expect(stderr).not.toMatch(STACK_FRAME);

    const written = JSON.parse(readFileSync(join(out, 'capacity.json'), 'utf8')) as CapacityResult;
    expect(written.steps.map((s) => [s.index, s.devices, s.sloMet, s.stable])).toEqual([[1, 2, true, true]]);
    expect(written.stopReason).toBe('error');
    expect(written.error).toMatchObject({ step: 2, refining: false, devices: 4, offeredRate: 40, kind: 'target-unreachable' });
    expect(written.error!.message).toMatch(/^no consumer could connect and subscribe: sink-0: /);
    expect(written.knee).toMatchObject({ step: 1, devices: 2 });
    expect(existsSync(join(out, 'step-1', 'run.json'))).toBe(true);
    // The summary and the page say which step failed, why, and what the knee is worth.
    expect(cli.stdout()).toContain('Stopped (error): step 2 (4 devices, 40 msg/s offered) failed (the target became unreachable), so it measured nothing: no consumer could connect');
    expect(cli.stdout()).toContain('Knee: at least step 1, 2 devices, 20 msg/s offered');
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toContain('<span class="verdict fail">STEP 2 FAILED</span>');
    expect(html).toContain('The ramp stopped because step 2 failed: the target became unreachable');
  }, 90_000);
});
