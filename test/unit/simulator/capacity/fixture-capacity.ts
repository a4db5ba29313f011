/**
 * Capacity ramp fixtures for the cost model and report tests: steps whose usage lies on known lines
 * (so the fits have known answers), a knee, and the CapacityResult a ramp would produce from them.
 */
import { fitCostModel, extrapolate } from '../../../../simulator/capacity/cost-model.js';
import { capacityResultSchemaVersion, type CapacityResult, type CapacityStep } from '../../../../simulator/capacity/types.js';

export const MiB = 1024 * 1024;
export const KiB = 1024;

/** The lines the fixture's usage lies on: cost = fixed + perDevice · devices. */
export const lines = {
  simulatorCpu: { fixed: 0.02, perDevice: 0.0005 },
  simulatorRss: { fixed: 60 * MiB, perDevice: 10 * KiB },
  brokerCpu: { fixed: 0.01, perDevice: 0.0003 },
  brokerRss: { fixed: 40 * MiB, perDevice: 6 * KiB },
} as const;

const at = (line: { fixed: number; perDevice: number }, devices: number, noise = 0): number => (line.fixed + line.perDevice * devices) * (1 + noise);

/** One step on the fixture lines, 1 msg/s offered per device, SLO latency.e2e.p99 < 250ms met below 250 ms. */
export function step(index: number, devices: number, overrides: Partial<CapacityStep> = {}, noise = 0): CapacityStep {
  const p99 = 20 + devices / 10;
  return {
    index,
    devices,
    offeredRate: devices,
    publishedPerSec: devices,
    deliveredPerSec: devices * 2,
    e2eP99Ms: p99,
    slo: [
      { source: 'latency.e2e.p99<250ms', metric: 'latency.e2e.p99', actual: p99, passed: p99 < 250, message: `latency.e2e.p99 was ${p99} ms, needed < 250 ms` },
      { source: 'qos1.lost==0', metric: 'qos1.lost', actual: 0, passed: true, message: 'qos1.lost was 0' },
    ],
    sloMet: p99 < 250,
    stable: true,
    generatorSaturated: false,
    generatorReasons: [],
    simulator: { cpuCores: at(lines.simulatorCpu, devices, noise), peakRssBytes: Math.round(at(lines.simulatorRss, devices, noise)) },
    broker: { cpuCores: at(lines.brokerCpu, devices, noise), peakRssBytes: Math.round(at(lines.brokerRss, devices, noise)) },
    runJson: `step-${index}/run.json`,
    ...overrides,
  };
}

/** Steps of 400, 1,000, 1,600 and 2,400 devices: the fourth (e2e p99 260 ms) breaks the SLO, the third is the knee. */
export function capacityResult(name = 'pipeline'): CapacityResult {
  const steps = [step(1, 400), step(2, 1000), step(3, 1600), step(4, 2400)];
  const knee = steps[2]!;
  const costModel = fitCostModel(steps, knee.index);
  return {
    schemaVersion: capacityResultSchemaVersion,
    tool: { name: 'mqtt-sim', version: '0.1.0' },
    scenario: { name, sourceFile: '/work/scenarios/pipeline.yaml' },
    slo: 'latency.e2e.p99<250ms,qos1.lost==0',
    target: { embedded: true, urls: ['mqtt://127.0.0.1:40123'] },
    startedAt: '2025-03-01T10:00:00.000Z',
    finishedAt: '2025-03-01T10:04:00.000Z',
    steps,
    stopReason: 'slo-broken',
    stopDetail: 'step 4 (2,400 devices) broke the SLO: latency.e2e.p99 was 260 ms, needed < 250 ms',
    knee: { step: knee.index, devices: knee.devices, offeredRate: knee.offeredRate, deliveredPerSec: knee.deliveredPerSec },
    costModel,
    extrapolation: extrapolate(costModel, 1_000_000, { fileDescriptorsPerProcess: 20_000, cpuCoresPerShard: 1, memoryBytesPerShard: 2 * 1024 * MiB }),
  };
}

/** The ramp of capacityResult() stopped by an error: steps 1 and 2 ran, step 3 could not reach the target. */
export function errorCapacityResult(): CapacityResult {
  const base = capacityResult();
  const steps = base.steps.slice(0, 2);
  const knee = steps[1]!;
  const message = 'target mqtt://127.0.0.1:40123 is unreachable: ECONNREFUSED. It answered the steps before, so it went down or stopped accepting connections since; check the broker and its log.';
  return {
    ...base,
    steps,
    stopReason: 'error',
    stopDetail: `step 3 (1,600 devices, 1,600 msg/s offered) failed (the target became unreachable), so it measured nothing: ${message}`,
    error: { step: 3, refining: false, devices: 1600, offeredRate: 1600, kind: 'target-unreachable', message },
    knee: { step: knee.index, devices: knee.devices, offeredRate: knee.offeredRate, deliveredPerSec: knee.deliveredPerSec },
    costModel: fitCostModel(steps, knee.index),
  };
}

/** The ramp of capacityResult() stopped by an outage: steps 1 and 2 ran, the target stopped answering during step 3. */
export function outageCapacityResult(): CapacityResult {
  const base = errorCapacityResult();
  const message = 'the target stopped answering during step 3: after the step, target mqtt://127.0.0.1:40123 is unreachable: ECONNREFUSED';
  return {
    ...base,
    stopDetail: `step 3 (1,600 devices, 1,600 msg/s offered) ran into an outage, not a capacity limit, so it is left out (its run.json is in step-3/): ${message}`,
    error: { step: 3, refining: false, devices: 1600, offeredRate: 1600, kind: 'target-unreachable', message, duringStep: true, runJson: 'step-3/run.json' },
  };
}
