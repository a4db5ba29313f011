/**
 * Knee finding against a deliberately rate-limited broker: a real reference broker behind a proxy that
 * lets 110 PUBLISH packets per second through, all clients together (test/helpers/rate-limited-proxy.ts).
 * The ramp multiplies the devices by 1.5 per step (40, 60, 90, 135 msg/s offered), so the limit falls
 * between steps 3 and 4: steps 1-3 settle, step 4 builds a backlog that grows without bound. The knee
 * must land on step 3, the last step below the limit, and the ramp must stop at step 4 as slo-broken
 * because it did not settle. The SLO is generous (e2e p99 under 10 s) so that CPU load from other test
 * files can never break a step below the limit; the stability rule is what finds the limit.
 *
 * --refine against a second proxy at 210 PUBLISH/s: steps of 4 and 30 devices (40 and 300 msg/s) bracket
 * the limit widely, so the one bisection step lands at 17 devices (170 msg/s), below it by as much as
 * step 3 above is below 110; it must settle and become the knee. The margins on both sides of each
 * limit (about 20 % below, 27-43 % above) keep the judgement away from the noise of a short hold.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSlo, runCapacityRamp } from '../../../simulator/capacity/ramp.js';
import type { CapacityResult } from '../../../simulator/capacity/types.js';
import type { RunResult } from '../../../simulator/report/run-result.js';
import { parseScenario } from '../../../simulator/scenario/load.js';
import { startBroker, type TestBroker } from '../../helpers/broker.js';
import { requireBuilt } from '../../helpers/cli-process.js';
import { startRateLimitedProxy, type RateLimitedProxy } from '../../helpers/rate-limited-proxy.js';
import { workerFile } from '../../helpers/run-scenario.js';

const LIMIT = 110;
const SLO = 'latency.e2e.p99<10s,connectFailures==0';

let broker: TestBroker;
let proxy: RateLimitedProxy;
let dir: string;

beforeAll(async () => {
  requireBuilt('simulator/shard/worker.js');
  broker = await startBroker();
  proxy = await startRateLimitedProxy({ host: '127.0.0.1', port: broker.port }, LIMIT);
  dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-capacity-'));
});

afterAll(async () => {
  await proxy?.close();
  await broker?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function scenarioText(url: string): string {
  return `
name: knee-fixture
seed: 7
target: { url: "${url}", protocol: 5 }
phases: { steady: 1s }
drain: 4s
fleets:
  - name: meters
    model: sensor
    count: 4
    connect: 200/s
    publish: { topic: "knee/{id}", qos: 0, every: 100ms, payload: { size: 32 } }
consumers:
  - name: sink
    subscribe: [{ topic: "knee/#", qos: 0 }]
`;
}

describe('mqtt-sim capacity against a rate-limited broker', () => {
  let result: CapacityResult;

  beforeAll(async () => {
    const scenario = parseScenario(scenarioText(proxy.url), join(dir, 'knee.yaml'));
    const text = SLO;
    ({ result } = await runCapacityRamp(scenario, {
      schedule: { mode: 'devices', start: 4, factor: 1.5, maxSteps: 6 },
      holdMs: 6000,
      slo: { text, specs: parseSlo(text, scenario.fleets.map((f) => f.name)) },
      workers: 1,
      workerFile,
      snapshotIntervalMs: 500,
      reportDir: join(dir, 'report'),
      shardLimits: { fileDescriptorsPerProcess: 1024, cpuCoresPerShard: 1, memoryBytesPerShard: 2 ** 31 },
    }));
  }, 90_000);

  it('lands the knee on the last step below the limit and stops at the first step above it, which did not settle', () => {
    const summary = result.steps.map((s) => `step ${s.index}: ${s.devices} devices, ${s.offeredRate} offered, ${s.deliveredPerSec.toFixed(1)} delivered/s, sloMet ${s.sloMet}, stable ${s.stable} ${s.unstableReason ?? ''}, saturated ${s.generatorSaturated}`).join('\n');
    expect(result.steps.map((s) => s.devices), summary).toEqual([4, 6, 9, 14]);
    expect(result.steps.map((s) => s.offeredRate), summary).toEqual([40, 60, 90, 140]);
    // Below the limit every step met the SLO and settled; the generator kept up throughout.
    for (const s of result.steps.slice(0, 3)) {
      expect(s.sloMet && s.stable, summary).toBe(true);
    }
    for (const s of result.steps) expect(s.generatorSaturated, summary).toBe(false);
    const above = result.steps[3]!;
    expect(above.offeredRate).toBeGreaterThan(LIMIT);
    expect(above.stable, summary).toBe(false);
    expect(above.unstableReason, summary).toMatch(/deliveries fell behind|kept rising/);
    // The proxy let no more than the limit through, so that is all the subscriber can have received.
    expect(above.deliveredPerSec, summary).toBeLessThan(LIMIT * 1.1);

    expect(result.stopReason, summary).toBe('slo-broken');
    expect(result.stopDetail).toMatch(/^step 4 /);
    expect(result.knee, summary).toEqual({ step: 3, devices: 9, offeredRate: 90, deliveredPerSec: result.steps[2]!.deliveredPerSec });
    expect(result.knee!.offeredRate).toBeLessThan(LIMIT);
  });

  it('writes each step as an ordinary run with the SLO as its assertions, and capacity.json with the same result', () => {
    const json = JSON.parse(readFileSync(join(dir, 'report', 'capacity.json'), 'utf8')) as CapacityResult;
    expect(json.knee).toEqual(result.knee);
    expect(json.steps).toHaveLength(4);
    const step4 = JSON.parse(readFileSync(join(dir, 'report', result.steps[3]!.runJson!), 'utf8')) as RunResult;
    expect(step4.scenario.fleets.find((f) => f.name === 'meters')!.count).toBe(14);
    // Consumers keep their count in every step.
    expect(step4.scenario.fleets.find((f) => f.name === 'sink')!.count).toBe(1);
    expect(step4.assertions.map((a) => a.source)).toEqual(['latency.e2e.p99<10s', 'connectFailures==0']);
    expect(step4.scenario.phases.steadyMs).toBe(6000);
  });
});

describe('mqtt-sim capacity --refine against a rate-limited broker', () => {
  const REFINE_LIMIT = 210;
  let refineProxy: RateLimitedProxy;
  let result: CapacityResult;
  const started: Array<{ index: number; devices: number; refining: boolean }> = [];

  beforeAll(async () => {
    refineProxy = await startRateLimitedProxy({ host: '127.0.0.1', port: broker.port }, REFINE_LIMIT);
    const scenario = parseScenario(scenarioText(refineProxy.url), join(dir, 'refine.yaml'));
    ({ result } = await runCapacityRamp(scenario, {
      schedule: { mode: 'devices', start: 4, step: 26, maxSteps: 2 },
      holdMs: 4000,
      slo: { text: SLO, specs: parseSlo(SLO, scenario.fleets.map((f) => f.name)) },
      refine: 1,
      workers: 1,
      workerFile,
      snapshotIntervalMs: 500,
      reportDir: join(dir, 'refine-report'),
      shardLimits: { fileDescriptorsPerProcess: 1024, cpuCoresPerShard: 1, memoryBytesPerShard: 2 ** 31 },
      onStepStart: (s) => started.push({ index: s.index, devices: s.devices, refining: s.refining }),
    }));
  }, 90_000);

  afterAll(async () => {
    await refineProxy?.close();
  });

  it('runs a bisection step between the last good and the first bad load, and moves the knee onto it', () => {
    const summary = result.steps.map((s) => `step ${s.index}: ${s.devices} devices, ${s.offeredRate} offered, ${s.deliveredPerSec.toFixed(1)} delivered/s, sloMet ${s.sloMet}, stable ${s.stable} ${s.unstableReason ?? ''}, saturated ${s.generatorSaturated}`).join('\n');
    expect(started, summary).toEqual([
      { index: 1, devices: 4, refining: false },
      { index: 2, devices: 30, refining: false },
      { index: 3, devices: 17, refining: true },
    ]);
    expect(result.steps.map((s) => [s.devices, s.offeredRate]), summary).toEqual([[4, 40], [30, 300], [17, 170]]);
    const [first, above, refined] = result.steps;
    expect(first!.sloMet && first!.stable, summary).toBe(true);
    expect(above!.stable, summary).toBe(false);
    expect(above!.deliveredPerSec, summary).toBeLessThan(REFINE_LIMIT * 1.1);
    // The bisection step is below the limit: it met the SLO and settled, delivering what was offered.
    expect(refined!.sloMet && refined!.stable, summary).toBe(true);
    for (const s of result.steps) expect(s.generatorSaturated, summary).toBe(false);

    expect(result.stopReason, summary).toBe('slo-broken');
    expect(result.stopDetail).toMatch(/^step 2 .*; 1 refinement step\(s\) narrowed the knee to between 17 devices and 30 devices$/);
    expect(result.knee, summary).toEqual({ step: 3, devices: 17, offeredRate: 170, deliveredPerSec: refined!.deliveredPerSec });
    // The refined knee is in capacity.json too, with the refinement step's own run.json beside it.
    const json = JSON.parse(readFileSync(join(dir, 'refine-report', 'capacity.json'), 'utf8')) as CapacityResult;
    expect(json.knee).toEqual(result.knee);
    const step3 = JSON.parse(readFileSync(join(dir, 'refine-report', refined!.runJson!), 'utf8')) as RunResult;
    expect(step3.scenario.fleets.find((f) => f.name === 'meters')!.count).toBe(17);
  });
});
