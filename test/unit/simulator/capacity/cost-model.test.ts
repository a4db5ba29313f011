import { describe, expect, it } from 'vitest';
import { extrapolate, fitCostModel, fitLine, formatCapacityText, stepUsage } from '../../../../simulator/capacity/cost-model.js';
import type { CapacityResult, CostModel, LinearFit } from '../../../../simulator/capacity/types.js';
import { spareFileDescriptors } from '../../../../simulator/orchestrator/environment.js';
import type { RunResult, TimelinePoint } from '../../../../simulator/report/run-result.js';
import { fixture } from '../dashboard/fixture-run.js';
import { capacityResult, errorCapacityResult, KiB, lines, MiB, outageCapacityResult, step } from './fixture-capacity.js';

const GiB = 1024 * MiB;

// ---------------------------------------------------------------- stepUsage

type Usage = { cpu: number; rssBytes: number };

/** A timeline point of the fixture run at `atMs` in `phase`, with the given process usage (none when omitted). */
function point(atMs: number, phase: TimelinePoint['phase'], simulator?: Usage, broker?: Usage): TimelinePoint {
  const { broker: _b, simulator: _s, ...base } = fixture().timeline[2]!;
  return { ...base, atMs, phase, ...(simulator === undefined ? {} : { simulator }), ...(broker === undefined ? {} : { broker }) };
}

function runWith(timeline: TimelinePoint[]): RunResult {
  return { ...fixture(), timeline };
}

const u = (cpu: number, rssMiB: number): Usage => ({ cpu, rssBytes: rssMiB * MiB });

describe('stepUsage', () => {
  it('averages CPU over the steady phase without its first point, and takes the peak RSS over every steady point', () => {
    const result = runWith([
      point(9_000, 'ramp-up', u(0.9, 300)),
      point(10_000, 'ramp-up', u(0.9, 300)),
      // The first steady point still holds the end of the ramp-up: left out of the CPU mean, not of the RSS peak.
      point(11_000, 'steady', u(0.8, 120)),
      point(12_000, 'steady', u(0.2, 100)),
      point(13_000, 'steady', u(0.3, 110)),
      point(14_000, 'steady', u(0.4, 105)),
      point(15_000, 'ramp-down', u(0.05, 500)),
    ]);
    const usage = stepUsage(result);
    expect(usage.simulator.cpuCores).toBeCloseTo(0.3, 12);
    expect(usage.simulator.peakRssBytes).toBe(120 * MiB);
    expect(usage.broker).toBeUndefined();
  });

  it('weights each CPU sample by the interval it covers', () => {
    const result = runWith([
      point(10_000, 'steady', u(0.9, 100)),
      point(11_000, 'steady', u(0.2, 100)),
      point(13_000, 'steady', u(0.5, 100)), // a tick delayed by a busy loop covers 2 s
    ]);
    expect(stepUsage(result).simulator.cpuCores).toBeCloseTo((0.2 * 1 + 0.5 * 2) / 3, 12);
  });

  it('keeps a lone steady point rather than measuring nothing', () => {
    const result = runWith([point(9_000, 'ramp-up', u(0.9, 50)), point(10_000, 'steady', u(0.25, 80))]);
    expect(stepUsage(result).simulator).toEqual({ cpuCores: 0.25, peakRssBytes: 80 * MiB });
  });

  it('measures the broker from the points that carry it, and says null where it was not measured', () => {
    const result = runWith([
      point(10_000, 'steady', u(0.5, 100), u(0.9, 70)),
      point(11_000, 'steady', u(0.5, 100), u(0.1, 60)),
      point(12_000, 'steady', u(0.5, 100)), // the broker was down (chaos): no sample
      point(13_000, 'steady', u(0.5, 100), u(0.3, 65)),
    ]);
    expect(stepUsage(result).broker).toEqual({ cpuCores: expect.closeTo(0.2, 12), peakRssBytes: 70 * MiB });

    const brokerOnlyInRampUp = runWith([point(9_000, 'ramp-up', undefined, u(0.1, 50)), point(10_000, 'steady'), point(11_000, 'steady')]);
    expect(stepUsage(brokerOnlyInRampUp)).toEqual({
      simulator: { cpuCores: null, peakRssBytes: null },
      broker: { cpuCores: null, peakRssBytes: null },
    });
  });

  it('has no broker when no point of the run carries broker data (a remote target)', () => {
    const result = runWith([point(10_000, 'steady', u(0.5, 100)), point(11_000, 'steady', u(0.5, 100))]);
    expect('broker' in stepUsage(result)).toBe(false);
  });
});

// ---------------------------------------------------------------- fitLine

describe('fitLine', () => {
  it('recovers an exact line, with r² 1 and no error', () => {
    const xs = [100, 200, 400, 800, 1600];
    const fit = fitLine(xs, xs.map((x) => 3 + 2 * x))!;
    expect(fit.slope).toBeCloseTo(2, 12);
    expect(fit.intercept).toBeCloseTo(3, 9);
    expect(fit.r2).toBeCloseTo(1, 12);
    expect(fit.maxRelativeError).toBeCloseTo(0, 12);
    expect(fit).toMatchObject({ points: 5, xMin: 100, xMax: 1600 });
  });

  it('computes least squares, r² and the largest relative error on scattered points', () => {
    // mean x 2, mean y 3, Sxx 10, Sxy 8: slope 0.8, intercept 1.4; fitted 1.4 2.2 3.0 3.8 4.6;
    // residuals 0.4 -0.8 1 -1.2 0.6: SSres 3.6, SStot 10, r² 0.64; relative errors 0.4 0.27 0.5 0.24 0.15.
    const fit = fitLine([0, 1, 2, 3, 4], [1, 3, 2, 5, 4])!;
    expect(fit.slope).toBeCloseTo(0.8, 12);
    expect(fit.intercept).toBeCloseTo(1.4, 12);
    expect(fit.r2).toBeCloseTo(0.64, 12);
    expect(fit.maxRelativeError).toBeCloseTo(0.5, 12);
  });

  it('stays close to the true cost line under a few percent of noise, and reports that noise as its error', () => {
    const xs = [500, 1000, 1500, 2000, 2500, 3000];
    const noise = [0.02, -0.015, 0.01, -0.02, 0.015, -0.01];
    const ys = xs.map((x, i) => (lines.simulatorRss.fixed + lines.simulatorRss.perDevice * x) * (1 + noise[i]!));
    const fit = fitLine(xs, ys)!;
    expect(Math.abs(fit.slope / lines.simulatorRss.perDevice - 1)).toBeLessThan(0.1);
    expect(fit.r2!).toBeGreaterThan(0.9);
    expect(fit.r2!).toBeLessThan(1);
    expect(fit.maxRelativeError!).toBeGreaterThan(0.005);
    expect(fit.maxRelativeError!).toBeLessThan(0.05);
  });

  it('has no r² through 2 points (any line fits them)', () => {
    const fit = fitLine([10, 20], [1, 3])!;
    expect(fit).toMatchObject({ slope: 0.2, intercept: -1, r2: null, points: 2 });
    expect(fit.maxRelativeError).toBeCloseTo(0, 12);
  });

  it('fits nothing under 2 points or when every x is the same', () => {
    expect(fitLine([], [])).toBeNull();
    expect(fitLine([5], [1])).toBeNull();
    expect(fitLine([300, 300, 300], [1, 2, 3])).toBeNull();
  });

  it('gives r² 1 for a flat line and no relative error when every measured value is 0', () => {
    expect(fitLine([1, 2, 3], [5, 5, 5])).toMatchObject({ slope: 0, intercept: 5, r2: 1, maxRelativeError: 0 });
    expect(fitLine([1, 2, 3], [0, 0, 0])).toMatchObject({ slope: 0, r2: 1, maxRelativeError: null });
  });

  it('refuses x and y of different lengths', () => {
    expect(() => fitLine([1, 2], [1])).toThrow('fitLine: 2 x values but 1 y values');
  });
});

// ---------------------------------------------------------------- fitCostModel

describe('fitCostModel', () => {
  it('fits every resource over the steps up to the knee; perDevice is the slope', () => {
    const steps = [step(1, 400), step(2, 1000), step(3, 1600), step(4, 2400)];
    const model = fitCostModel(steps, 3);
    expect(model.fittedSteps).toEqual([1, 2, 3]);
    expect(model.perDevice.simulatorCpuCores).toBeCloseTo(lines.simulatorCpu.perDevice, 12);
    expect(model.perDevice.simulatorRssBytes).toBeCloseTo(lines.simulatorRss.perDevice, 6);
    expect(model.perDevice.brokerCpuCores).toBeCloseTo(lines.brokerCpu.perDevice, 12);
    expect(model.perDevice.brokerRssBytes).toBeCloseTo(lines.brokerRss.perDevice, 6);
    expect(model.simulator.cpuCores!.intercept).toBeCloseTo(lines.simulatorCpu.fixed, 9);
    expect(model.broker!.rssBytes!.intercept / MiB).toBeCloseTo(lines.brokerRss.fixed / MiB, 6);
    expect(model.simulator.cpuCores).toMatchObject({ points: 3, xMin: 400, xMax: 1600 });
    expect(model.offeredRatePerDevice).toBe(1);
  });

  it('leaves out the step past the knee, whose saturated broker CPU would flatten the slope', () => {
    // Past the knee the broker is pinned at one core: fitted with it, its cost per device would read low.
    const steps = [step(1, 400), step(2, 1000), step(3, 1600), step(4, 5000, { sloMet: false, broker: { cpuCores: 1, peakRssBytes: 100 * MiB } })];
    const model = fitCostModel(steps, 3);
    expect(model.perDevice.brokerCpuCores).toBeCloseTo(lines.brokerCpu.perDevice, 12);
    expect(model.excludedSteps).toEqual([{ step: 4, reason: expect.stringMatching(/^past the knee \(5,000 > 1,600 devices\)/) }]);
    // Had it been fitted, the slope would be visibly lower: the exclusion is what keeps the estimate honest.
    const naive = fitLine(steps.map((s) => s.devices), steps.map((s) => s.broker!.cpuCores!))!;
    expect(naive.slope).toBeLessThan(lines.brokerCpu.perDevice * 0.75);
  });

  it('judges "past the knee" by devices, so a refined step between the knee and the failed step counts', () => {
    // Steps 1-3 ramped, step 3 broke the SLO; refinement step 4 (1,300 devices) met it and is the knee.
    const steps = [step(1, 400), step(2, 1000), step(3, 1600, { sloMet: false }), step(4, 1300)];
    const model = fitCostModel(steps, 4);
    expect(model.fittedSteps).toEqual([1, 2, 4]);
    expect(model.excludedSteps!.map((e) => e.step)).toEqual([3]);
  });

  it('leaves out steps that did not settle and steps whose generator saturated, saying why', () => {
    const steps = [
      step(1, 400),
      step(2, 800, { stable: false, unstableReason: 'delivered/s fell behind published/s' }),
      step(3, 1200, { generatorSaturated: true, generatorReasons: ['event-loop delay p99 120 ms'] }),
      step(4, 1600),
      step(5, 2000),
    ];
    const model = fitCostModel(steps, 5);
    expect(model.fittedSteps).toEqual([1, 4, 5]);
    expect(model.excludedSteps).toEqual([
      { step: 2, reason: 'did not settle (delivered/s fell behind published/s): not a steady state' },
      { step: 3, reason: 'the generator saturated: the offered load was not generated' },
    ]);
  });

  it('without a knee still fits the healthy steps (a strict latency SLO can fail while both processes run comfortably)', () => {
    const steps = [step(1, 400, { sloMet: false }), step(2, 800, { sloMet: false }), step(3, 1200, { sloMet: false, stable: false })];
    const model = fitCostModel(steps, null);
    expect(model.fittedSteps).toEqual([1, 2]);
    expect(model.perDevice.simulatorCpuCores).toBeCloseTo(lines.simulatorCpu.perDevice, 12);
  });

  it('fits around unmeasured values and has no broker model for a remote target', () => {
    const { broker: _b, ...remote } = step(1, 400);
    const steps = [remote, { ...remote, index: 2, devices: 800, simulator: { cpuCores: null, peakRssBytes: 70 * MiB } }, { ...remote, index: 3, devices: 1200, simulator: { cpuCores: 0.62, peakRssBytes: 72 * MiB } }];
    const model = fitCostModel(steps, 3);
    expect(model.broker).toBeNull();
    expect(model.perDevice.brokerCpuCores).toBeNull();
    expect(model.simulator.cpuCores).toMatchObject({ points: 2, xMin: 400, xMax: 1200 });
    expect(model.simulator.rssBytes).toMatchObject({ points: 3 });
  });

  it('has broker fits of null when the broker was measured but not in enough healthy steps', () => {
    const steps = [step(1, 400), step(2, 800, { broker: { cpuCores: null, peakRssBytes: null } })];
    const model = fitCostModel(steps, 2);
    expect(model.broker).toEqual({ cpuCores: null, rssBytes: null });
    expect(model.perDevice.simulatorCpuCores).not.toBeNull();
  });

  it('says why nothing could be fitted: one healthy step, or a rate ramp at one device count', () => {
    expect(fitCostModel([step(1, 400)], 1).notes).toEqual([expect.stringMatching(/^Only 1 step ran healthy/)]);
    const rateRamp = fitCostModel([step(1, 500, { offeredRate: 500 }), step(2, 500, { offeredRate: 1000 })], 2);
    expect(rateRamp.simulator).toEqual({ cpuCores: null, rssBytes: null });
    expect(rateRamp.notes).toEqual(['Every healthy step had 500 devices (a rate ramp): a cost per device cannot be fitted from them.']);
    expect(rateRamp.offeredRatePerDevice).toBe(1.5);
  });
});

// ---------------------------------------------------------------- extrapolate

/** A model whose simulator costs lie on the given lines, fitted over 400..1,600 devices. */
function modelWith(cpu: { fixed: number; perDevice: number } | null, rss: { fixed: number; perDevice: number } | null, broker = true): CostModel {
  const xs = [400, 1000, 1600];
  const fit = (line: { fixed: number; perDevice: number } | null): LinearFit | null => (line === null ? null : fitLine(xs, xs.map((x) => line.fixed + line.perDevice * x)));
  const simulator = { cpuCores: fit(cpu), rssBytes: fit(rss) };
  const brokerFits = broker ? { cpuCores: fit(lines.brokerCpu), rssBytes: fit(lines.brokerRss) } : null;
  return {
    simulator,
    broker: brokerFits,
    perDevice: {
      simulatorCpuCores: simulator.cpuCores?.slope ?? null,
      simulatorRssBytes: simulator.rssBytes?.slope ?? null,
      brokerCpuCores: brokerFits?.cpuCores?.slope ?? null,
      brokerRssBytes: brokerFits?.rssBytes?.slope ?? null,
    },
    fittedSteps: [1, 2, 3],
    excludedSteps: [],
    offeredRatePerDevice: 1,
    notes: [],
  };
}

const million = 1_000_000;
const limits = { fileDescriptorsPerProcess: 20_000, cpuCoresPerShard: 1, memoryBytesPerShard: 2 * GiB };

describe('extrapolate', () => {
  it('is bounded by file descriptors when devices are cheap: 19,936 per shard, 51 shards for a million', () => {
    const x = extrapolate(modelWith({ fixed: 0.02, perDevice: 0.00002 }, lines.simulatorRss), million, limits);
    expect(x.bounds).toEqual({ fileDescriptors: 20_000 - spareFileDescriptors, cpu: 49_000, memory: 203_571 });
    expect(x).toMatchObject({ targetDevices: million, shardLimitedBy: 'file-descriptors', devicesPerShard: 19_936, shards: 51 });
  });

  it('is bounded by CPU when a device costs half a millicore: 1,960 per shard, 511 shards', () => {
    const x = extrapolate(modelWith(lines.simulatorCpu, lines.simulatorRss), million, limits);
    // (1 core − 0.02 fixed) / 0.0005 per device = 1,960.
    expect(x).toMatchObject({ shardLimitedBy: 'cpu', devicesPerShard: 1960, shards: 511 });
  });

  it('is bounded by memory when a device costs 100 KiB: 9,871 per shard in 1 GiB, 102 shards', () => {
    const x = extrapolate(modelWith({ fixed: 0.02, perDevice: 0.00002 }, { fixed: 60 * MiB, perDevice: 100 * KiB }), million, { ...limits, memoryBytesPerShard: GiB });
    // (1,024 MiB − 60 MiB fixed) / 100 KiB per device = 9,871.36.
    expect(x).toMatchObject({ shardLimitedBy: 'memory', devicesPerShard: 9871, shards: 102 });
  });

  it('totals each shard\'s fixed cost plus every device\'s, and the broker\'s fitted line at the target', () => {
    const x = extrapolate(modelWith(lines.simulatorCpu, lines.simulatorRss), million, limits);
    expect(x.simulatorTotal.cpuCores).toBeCloseTo(511 * 0.02 + 0.0005 * million, 6);
    expect(x.simulatorTotal.rssBytes! / MiB).toBeCloseTo((511 * 60 * MiB + 10 * KiB * million) / MiB, 3);
    expect(x.broker!.cpuCores).toBeCloseTo(0.01 + 0.0003 * million, 6);
    expect(x.broker!.rssBytes! / MiB).toBeCloseTo((40 * MiB + 6 * KiB * million) / MiB, 3);
  });

  it('lists its assumptions: the measured range and how far beyond it, the workload, each limit, the fit error, the broker', () => {
    const x = extrapolate(modelWith(lines.simulatorCpu, lines.simulatorRss), million, limits);
    const text = x.assumptions.join('\n');
    expect(text).toContain('lines fitted over 400..1,600 devices (3 steps) are assumed to hold up to 1,000,000 devices, ×625 beyond the largest measured step');
    expect(text).toContain('(1 msg/s offered per device)');
    expect(text).toContain('a limit of 20,000 open files less 64 kept for stdio, reports and worker threads allows 19,936 devices per shard');
    expect(text).toContain('CPU: 1 core less the process\'s fixed 0.02 cores, at 0.5 mcore/device (the fitted slope), allows 1,960 devices per shard');
    expect(text).toContain('So a shard holds 1,960 devices, bounded by CPU, and 1,000,000 devices need 511 shards.');
    expect(text).toContain('Fit error over the measured steps: simulator CPU r² 1.000, within');
    expect(text).toContain('The broker was measured as one process on this machine');
    // 300 cores for one broker: a single event loop cannot do that.
    expect(text).toContain('cannot use more than one core: 300 cores means at least 301 such brokers');
    expect(text).not.toContain('local port range');
  });

  it('says when a shard would exceed the local ports of one source address', () => {
    const x = extrapolate(modelWith({ fixed: 0.02, perDevice: 0.00001 }, { fixed: 60 * MiB, perDevice: 5 * KiB }), million, { ...limits, fileDescriptorsPerProcess: 1_048_576, memoryBytesPerShard: 4 * GiB });
    expect(x.devicesPerShard).toBe(98_000);
    expect(x.assumptions.join('\n')).toContain('exhaust Linux\'s default local port range');
  });

  it('says when the fit rests on 2 steps, so its error is unknown', () => {
    const model = modelWith(lines.simulatorCpu, lines.simulatorRss);
    model.simulator.cpuCores = fitLine([400, 1600], [0.22, 0.82]);
    expect(extrapolate(model, million, limits).assumptions.join('\n')).toContain('simulator CPU through 2 steps only, error unknown');
  });

  it('without broker measurements gives no broker need and says so', () => {
    const x = extrapolate(modelWith(lines.simulatorCpu, lines.simulatorRss, false), million, limits);
    expect(x.broker).toBeNull();
    expect(x.assumptions).toContain('The broker was not measured (a remote target without --broker-pid): there is no estimate of what it would need.');
  });

  it('without a CPU fit sizes by the other limits and says the CPU bound is missing', () => {
    const x = extrapolate(modelWith(null, lines.simulatorRss), million, limits);
    expect(x.bounds!.cpu).toBeNull();
    expect(x).toMatchObject({ shardLimitedBy: 'file-descriptors', devicesPerShard: 19_936 });
    expect(x.simulatorTotal.cpuCores).toBeNull();
    expect(x.simulatorTotal.rssBytes).not.toBeNull();
    expect(x.assumptions.join('\n')).toContain('CPU: the simulator\'s CPU was not measured or could not be fitted, so it bounds nothing here');
  });

  it('with nothing measured and unlimited open files says its one shard is not an estimate, and stays valid JSON', () => {
    const nothing: CostModel = { simulator: { cpuCores: null, rssBytes: null }, broker: null, perDevice: { simulatorCpuCores: null, simulatorRssBytes: null, brokerCpuCores: null, brokerRssBytes: null } };
    const x = extrapolate(nothing, million, { ...limits, fileDescriptorsPerProcess: Number.POSITIVE_INFINITY });
    expect(x).toMatchObject({ devicesPerShard: million, shards: 1, simulatorTotal: { cpuCores: null, rssBytes: null }, broker: null });
    expect(x.limits!.fileDescriptorsPerProcess).toBeNull();
    expect(x.assumptions.join('\n')).toContain('the one-shard answer is not an estimate');
    expect(JSON.parse(JSON.stringify(x))).toEqual(x);
  });

  it('says when a shard\'s budget is below the process\'s fixed cost', () => {
    const x = extrapolate(modelWith(lines.simulatorCpu, lines.simulatorRss), million, { ...limits, memoryBytesPerShard: 50 * MiB });
    expect(x).toMatchObject({ devicesPerShard: 0, shards: 0, shardLimitedBy: 'memory', simulatorTotal: { cpuCores: null, rssBytes: null } });
    expect(x.assumptions.join('\n')).toContain('cannot hold a single device');
  });

  it('ignores a cost that did not grow with devices, and says so', () => {
    const model = modelWith(lines.simulatorCpu, { fixed: 90 * MiB, perDevice: -100 });
    const x = extrapolate(model, million, limits);
    expect(x.bounds!.memory).toBeNull();
    expect(x.simulatorTotal.rssBytes).toBeNull();
    expect(x.assumptions.join('\n')).toContain('The simulator memory did not grow with devices over the measured range (-100 B/device)');
  });

  it('warns when a line explains little of the measurements', () => {
    const model = modelWith(lines.simulatorCpu, lines.simulatorRss);
    model.broker!.rssBytes = fitLine([400, 1000, 1600], [140 * MiB, 128 * MiB, 150 * MiB]);
    expect(model.broker!.rssBytes!.r2!).toBeLessThan(0.8);
    const text = extrapolate(model, million, limits).assumptions.join('\n');
    expect(text).toMatch(/The broker memory line fits poorly \(r² 0\.\d\d\): the measurements vary more than the cost grows/);
    expect(text).not.toContain('The simulator CPU line fits poorly');
  });

  it('refuses a target that is not a positive integer', () => {
    const model = modelWith(lines.simulatorCpu, lines.simulatorRss);
    expect(() => extrapolate(model, 0, limits)).toThrow(RangeError);
    expect(() => extrapolate(model, 1.5, limits)).toThrow('targetDevices must be a positive integer, got 1.5');
  });
});

// ---------------------------------------------------------------- formatCapacityText

describe('formatCapacityText', () => {
  it('prints the step table aligned, the stop reason, the knee, the model and the extrapolation with its assumptions', () => {
    const result = capacityResult();
    const text = formatCapacityText(result);
    const lines = text.split('\n');
    const headerAt = lines.findIndex((l) => l.startsWith('  step '));
    const table = lines.slice(headerAt, headerAt + 5);
    expect(table[0]!.split(/\s{2,}/).filter((c) => c !== '')).toEqual([
      'step', 'devices', 'offered/s', 'published/s', 'delivered/s', 'latency.e2e.p99 ms', 'qos1.lost', 'SLO', 'stable', 'generator',
      'sim mcore/dev', 'sim KiB/dev', 'broker mcore/dev', 'broker KiB/dev',
    ]);
    // Right-aligned columns: every row ends where the header ends.
    expect(new Set(table.map((l) => l.length)).size).toBe(1);
    expect(table[3]).toMatch(/^ {2}3 knee +1,600 +1,600 +1,600 +3,200 +180 +0 +✓ +yes +ok +0\.513 +48\.4 +0\.306 +31\.6$/);
    expect(table[4]).toMatch(/^ {2}4 +2,400 .* 260 +0 +✗ +yes +ok /);
    expect(text).toContain('  step 4: SLO broken: latency.e2e.p99 was 260 ms, needed < 250 ms\n');
    expect(text).toContain(`Stopped (slo-broken): ${result.stopDetail}\n`);
    expect(text).toContain('Knee: step 3, 1,600 devices, 1,600 msg/s offered, 3,200 delivered/s.\n');
    expect(text).toMatch(/\n {2}simulator CPU +0\.5 mcore\/device \+ 0\.02 cores +3 steps, 400\.\.1,600 devices +r² 1\.000, max error <0\.1%\n/);
    expect(text).toMatch(/\n {2}broker memory +6\.0 KiB\/device \+ 40\.0 MiB /);
    expect(text).toContain('  left out: step 4, past the knee (2,400 > 1,600 devices)');
    expect(text).toContain('Extrapolation to 1,000,000 devices\n');
    expect(text).toMatch(/\n {2}devices per shard +1,960, bounded by CPU \(alone: file descriptors 19,936, memory 203,571\)\n/);
    expect(text).toMatch(/\n {2}shards +511\n/);
    for (const a of result.extrapolation!.assumptions) expect(text).toContain(`    - ${a}\n`);
    expect(text).not.toMatch(/\u001b\[/);
  });

  it('drops the broker columns for a remote target and says the knee is a lower bound when the generator saturated', () => {
    const base = capacityResult();
    const steps = base.steps.slice(0, 3).map(({ broker: _b, ...s }) => s);
    steps[2] = { ...steps[2]!, generatorSaturated: true, generatorReasons: ['event-loop delay p99 140 ms'] };
    const result: CapacityResult = {
      ...base,
      target: { embedded: false, urls: ['mqtt://127.0.0.1:1883'] },
      steps,
      stopReason: 'generator-saturated',
      stopDetail: 'step 3: the simulator saturated (event-loop delay p99 140 ms)',
      knee: { step: 2, devices: 1000, offeredRate: 1000, deliveredPerSec: 2000 },
      costModel: fitCostModel(steps, 2),
    };
    delete result.extrapolation;
    const text = formatCapacityText(result);
    expect(text).toContain('Capacity of pipeline against mqtt://127.0.0.1:1883, SLO');
    expect(text).not.toContain('broker mcore/dev');
    expect(text).toContain('  step 3: generator saturated: event-loop delay p99 140 ms\n');
    expect(text).toContain('Knee: at least step 2, 1,000 devices, 1,000 msg/s offered, 2,000 delivered/s (a lower bound: the simulator saturated before the SLO broke, the broker was not the limit).');
    expect(text).toMatch(/\n {2}broker +not measured \(remote target without --broker-pid\)/);
    expect(text).toMatch(/\n {2}simulator CPU +0\.5 mcore\/device \+ 0\.02 cores +2 steps, 400\.\.1,000 devices +error unknown \(2 points\)\n/);
    expect(text).not.toContain('Extrapolation');
  });

  it('says plainly that a step failed with an error, why, and that the knee from the steps before it is a lower bound', () => {
    const text = formatCapacityText(errorCapacityResult());
    expect(text).toContain('  step 3 (1,600 devices, 1,600 msg/s offered): no result, the target became unreachable; the ramp stopped there\n');
    expect(text).toContain('Stopped (error): step 3 (1,600 devices, 1,600 msg/s offered) failed (the target became unreachable), so it measured nothing: target mqtt://127.0.0.1:40123 is unreachable: ECONNREFUSED.');
    expect(text).toContain('The ramp stopped early: step 3 (1,600 devices, 1,600 msg/s offered) measured nothing because the target became unreachable. The report covers the 2 steps that completed; the knee is the largest step that passed before it, a lower bound: the load where the SLO breaks was not reached.\n');
    expect(text).toContain('Knee: at least step 2, 1,000 devices, 1,000 msg/s offered, 2,000 delivered/s (a lower bound: step 3 (1,600 devices, 1,600 msg/s offered) failed with an error before the SLO broke).');
  });

  it('says that the target stopped answering during a step, that the step is left out, and that the knee before it is a lower bound', () => {
    const text = formatCapacityText(outageCapacityResult());
    expect(text).toContain('  step 3 (1,600 devices, 1,600 msg/s offered): left out, the target stopped answering during it (an outage, not a capacity limit); the ramp stopped there\n');
    expect(text).toContain('Stopped (error): step 3 (1,600 devices, 1,600 msg/s offered) ran into an outage, not a capacity limit, so it is left out (its run.json is in step-3/): the target stopped answering during step 3: after the step, target mqtt://127.0.0.1:40123 is unreachable: ECONNREFUSED\n');
    expect(text).toContain("The ramp stopped early: the target stopped answering during step 3 (1,600 devices, 1,600 msg/s offered), so that step shows an outage, not the target's capacity, and is left out: it does not bound the knee. The report covers the 2 steps that completed; the knee is the largest step that passed before it, a lower bound: the load where the SLO breaks was not reached.\n");
    expect(text).toContain('Knee: at least step 2, 1,000 devices, 1,000 msg/s offered, 2,000 delivered/s (a lower bound: step 3 (1,600 devices, 1,600 msg/s offered) ran into an outage of the target before the SLO broke).');
    expect(text).not.toContain('measured nothing');
  });

  it('says there is no knee when the target stopped answering during step 1', () => {
    const base = outageCapacityResult();
    const result: CapacityResult = { ...base, steps: [], knee: null, costModel: fitCostModel([], null), error: { ...base.error!, step: 1, devices: 400, offeredRate: 400 } };
    delete result.extrapolation;
    const text = formatCapacityText(result);
    expect(text).toContain('  No step completed.\n');
    expect(text).toContain('The ramp stopped early: the target stopped answering during step 1 (400 devices, 400 msg/s offered), so that step shows an outage, not the target\'s capacity, and is left out: it does not bound the knee. No step completed before it, so there is no knee.\n');
    expect(text).toContain('Knee: none, no step met the SLO and settled before step 1 (400 devices, 400 msg/s offered) ran into an outage of the target.');
  });

  it('keeps the knee of a broken SLO when a refinement step then failed, and says it was not narrowed', () => {
    const base = capacityResult();
    const result: CapacityResult = {
      ...base,
      stopReason: 'error',
      error: { step: 5, refining: true, devices: 2000, offeredRate: 2000, kind: 'internal', message: 'ENOSPC: no space left on device, write' },
    };
    const text = formatCapacityText(result);
    expect(text).toContain('  refinement step 5 (2,000 devices, 2,000 msg/s offered): no result, it failed with an error; the ramp stopped there\n');
    expect(text).toContain('because it failed with an error. The report covers the 4 steps that completed; the SLO had broken already at step 4, so the knee stands, but the bisection did not narrow it further.');
    expect(text).toContain('Knee: step 3, 1,600 devices, 1,600 msg/s offered, 3,200 delivered/s (not narrowed further: refinement step 5 (2,000 devices, 2,000 msg/s offered) failed with an error).');
  });

  it('says when no step ran and there is no knee', () => {
    const result: CapacityResult = { ...capacityResult(), steps: [], knee: null, stopReason: 'aborted', stopDetail: 'interrupted before the first step finished', costModel: fitCostModel([], null) };
    delete result.extrapolation;
    const text = formatCapacityText(result);
    expect(text).toContain('  No step ran.\n');
    expect(text).toContain('Knee: none, not even the first step met the SLO and settled.');
    expect(text).toContain('least-squares lines against devices (no step was usable)');
  });
});
