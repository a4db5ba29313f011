/**
 * The pure parts of bench/scale: the generated scenario (parsed and planned by the real simulator code),
 * the open-file plan for children, the NDJSON line splitter, the step summary and ramp summary on
 * fixtures, the cost lines and their extrapolation, and option parsing.
 */
import { describe, expect, it } from 'vitest';
import { brokerPoints, checkModel, costModelOf, estimateFor, shardLimitsHere, simulatorPoints } from '../../../bench/scale/costs.js';
import { devicesPerProcessLimit, estimateWallSeconds, parseArgs, sizeProblems } from '../../../bench/scale/main.js';
import { planFileLimit, withFileLimit } from '../../../bench/scale/processes.js';
import type { ProcReading } from '../../../bench/scale/sampler.js';
import {
  DEVICE_FLEET, scaleScenarioYaml, scaleTiming, sliceShare, SourceAddressPool, sourceAddressesNeeded, STEADY_MARGIN_S,
} from '../../../bench/scale/scenario.js';
import { lineSplitter, wantedLine, type StepRaw } from '../../../bench/scale/step.js';
import { connectedFromTimeline, cpuBetween, summarizeRamp, summarizeStep, windowUsage, type StepResult } from '../../../bench/scale/summary.js';
import { topicMatches } from '../../../protocol/topic.js';
import { deviceVars, planDevices, sliceDeviceCounts } from '../../../simulator/orchestrator/plan.js';
import type { RunResult } from '../../../simulator/report/run-result.js';
import { parseScenario } from '../../../simulator/scenario/load.js';
import { compileTemplate } from '../../../simulator/scenario/templates.js';

const urls = ['mqtt://127.0.0.1:1883', 'mqtt://127.0.0.1:1884'];

describe('the scale scenario', () => {
  const yaml = scaleScenarioYaml({
    name: 'bench-scale-test', devices: 101, brokerUrls: urls, connectRatePerSec: 50, intervalSeconds: 60, sourceAddresses: ['127.0.0.2', '127.0.0.3', '127.0.0.4'],
  });
  const scenario = parseScenario(yaml);

  it('is a valid scenario: one fleet of N sensors at QoS 1 every interval, one consumer per broker, qos1.lost == 0', () => {
    const fleet = scenario.fleets[0]!;
    expect(fleet.name).toBe(DEVICE_FLEET);
    expect(fleet.model).toBe('sensor');
    expect(fleet.count).toBe(101);
    expect(fleet.connectRatePerSec).toBe(50);
    expect(fleet.publish).toHaveLength(1);
    expect(fleet.publish[0]!.qos).toBe(1);
    expect(fleet.publish[0]!.intervalMs).toBe(60_000);
    expect(fleet.localAddresses).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    expect(scenario.fleets.slice(1).map((f) => [f.name, f.model, f.count, f.targetUrls, f.subscribe.map((s) => [s.topic, s.qos])])).toEqual([
      ['consumer-b1', 'consumer', 1, [urls[0]], [['scale/b1/#', 1]]],
      ['consumer-b2', 'consumer', 1, [urls[1]], [['scale/b2/#', 1]]],
    ]);
    expect(scenario.target?.urls).toEqual(urls);
    expect(scenario.expect.map((a) => a.source)).toEqual(['qos1.lost == 0']);
  });

  it('sends every device to the broker whose consumer subscribes to its topic, and only that consumer', () => {
    const plan = planDevices(scenario, 2);
    const devices = plan.shards.flat().filter((a) => a.fleet === 0);
    expect(devices).toHaveLength(101);
    const fleet = scenario.fleets[0]!;
    const consumers = scenario.fleets.slice(1);
    for (const a of devices) {
      // The topic as the device renders it, and the consumer on the broker the device connects to.
      const vars = deviceVars(scenario, fleet, a.index);
      const topic = compileTemplate(fleet.publish[0]!.topic, Object.keys(vars))(vars);
      const matching = consumers.filter((c) => c.subscribe.some((sub) => topicMatches(sub.topic, topic)));
      expect(matching).toHaveLength(1);
      expect(matching[0]!.targetUrls).toEqual([a.url]);
    }
    expect(new Set(devices.map((a) => a.url)).size).toBe(2);
    const consumerPlans = plan.shards.flat().filter((a) => a.fleet > 0);
    expect(consumerPlans.map((a) => a.url).sort()).toEqual([...urls].sort());
    // Source addresses round-robin, so no address carries more than its share.
    const perSource = new Map<string, number>();
    for (const a of devices) perSource.set(a.localAddress!, (perSource.get(a.localAddress!) ?? 0) + 1);
    expect([...perSource.values()].sort()).toEqual([33, 34, 34]);
  });

  it('gives the steady phase one interval plus a margin after the last connect', () => {
    const t = scaleTiming(19_800, 2000, 60);
    expect(t.rampUpMs).toBe(9_900 + 2_000);
    expect(t.steadyMs).toBe((60 + STEADY_MARGIN_S) * 1000);
    expect(t.durationMs).toBe(t.rampUpMs + t.steadyMs);
    const lastConnectMs = (19_800 - 1) / 2000 * 1000;
    expect(t.durationMs - lastConnectMs).toBeGreaterThanOrEqual(65_000);
    expect(scenario.phases).toMatchObject({ rampUpMs: scaleTiming(101, 50, 60).rampUpMs, steadyMs: 65_000, rampDownMs: 0 });
    expect(scaleTiming(10, 2000, 60, 6).steadyMs).toBe(6000);
  });

  it('counts the devices of each slice as plan.ts does', () => {
    for (const [n, k] of [[101, 3], [36_000, 3], [2_000, 3], [10, 4], [5, 7]] as const) {
      const y = scaleScenarioYaml({ name: 's', devices: n, brokerUrls: urls, connectRatePerSec: 1000, intervalSeconds: 60, sourceAddresses: [] });
      const s = parseScenario(y);
      let total = 0;
      for (let i = 1; i <= k; i++) {
        const counted = sliceDeviceCounts(s, { index: i, count: k });
        expect(sliceShare(n, i, k)).toBe(counted.devices - counted.consumers);
        total += sliceShare(n, i, k);
      }
      expect(total).toBe(n);
    }
  });

  it('hands out fresh loopback source addresses, never 127.0.0.1, 5,000 devices each at most', () => {
    const pool = new SourceAddressPool();
    expect(pool.take(2)).toEqual(['127.0.0.2', '127.0.0.3']);
    expect(pool.take(1)).toEqual(['127.0.0.4']);
    const many = pool.take(300);
    expect(many).not.toContain('127.0.0.1');
    expect(many).toContain('127.0.0.254');
    expect(sourceAddressesNeeded(19_800)).toBe(4);
    expect(sourceAddressesNeeded(36_000)).toBe(8);
    expect(sourceAddressesNeeded(10)).toBe(1);
    expect(sourceAddressesNeeded(5_000)).toBe(1);
    expect(sourceAddressesNeeded(5_001)).toBe(2);
  });
});

describe('open files of the children', () => {
  it('leaves the limit alone when the soft limit suffices', () => {
    expect(planFileLimit(19_865, { soft: 20_000, hard: 20_000 })).toEqual({ raiseTo: null });
    expect(withFileLimit('node', ['a.js'], { raiseTo: null })).toEqual({ command: 'node', args: ['a.js'] });
  });

  it('raises the soft limit to the hard one through sh -c ulimit -n ... exec', () => {
    const plan = planFileLimit(19_865, { soft: 1024, hard: 20_000 });
    expect(plan).toEqual({ raiseTo: 20_000 });
    const w = withFileLimit('/usr/bin/node', ['cli.js', 'run', 'a b.yaml'], plan);
    expect(w.command).toBe('sh');
    // exec keeps the pid (what the benchmark samples); "$0" "$@" keeps arguments with spaces intact.
    expect(w.args).toEqual(['-c', 'ulimit -n 20000 && exec "$0" "$@"', '/usr/bin/node', 'cli.js', 'run', 'a b.yaml']);
  });

  it('refuses when even the hard limit is too low, naming the numbers', () => {
    const plan = planFileLimit(25_000, { soft: 1024, hard: 20_000 });
    expect(plan.raiseTo).toBeNull();
    expect(plan.problem).toMatch(/needs 25000 open files but the hard limit is 20000/);
  });

  it('unknown limits (not Linux) change nothing', () => {
    expect(planFileLimit(50_000, null)).toEqual({ raiseTo: null });
  });
});

describe('the NDJSON line splitter', () => {
  it('hands on point, phase and event lines split anywhere, and skips the result line without keeping it', () => {
    const seen: string[] = [];
    const feed = lineSplitter(wantedLine, (l) => seen.push(l));
    const text = [
      '{"type":"start","scenario":"x"}',
      '{"type":"phase","phase":"ramp-up","atMs":0}',
      '{"type":"point","point":{"atMs":1000}}',
      `{"type":"result","result":{"big":"${'x'.repeat(5000)}"}}`,
      '{"type":"event","level":"warn","message":"m"}',
      '',
    ].join('\n');
    for (let i = 0; i < text.length; i += 7) feed(text.slice(i, i + 7));
    expect(seen).toEqual([
      '{"type":"phase","phase":"ramp-up","atMs":0}',
      '{"type":"point","point":{"atMs":1000}}',
      '{"type":"event","level":"warn","message":"m"}',
    ]);
  });

  it('keeps a wanted line that arrives in one piece with others', () => {
    const seen: string[] = [];
    const feed = lineSplitter(wantedLine, (l) => seen.push(l));
    feed('{"type":"phase","phase":"steady","atMs":4000}\n{"type":"phase","phase":"drain","atMs":9000}\n{"type":"res');
    feed('ult"}\n');
    expect(seen).toHaveLength(2);
  });
});

// ----------------------------------------------------------------- step summary fixtures

function readings(t0: number, points: Array<[number, number, number]>): ProcReading[] {
  return points.map(([dt, cpuSeconds, rssMb]) => ({ t: t0 + dt, cpuSeconds, rssBytes: rssMb * 2 ** 20 }));
}

function runResult(devices: number, over: { connectedMax?: number; lost?: number; acknowledged?: number; delivered?: number } = {}): RunResult {
  const published = devices + 500;
  const acknowledged = over.acknowledged ?? published;
  const connectedMax = over.connectedMax ?? devices;
  const timeline = [0, 1000, 2000, 3000, 4000].map((atMs, i) => ({
    atMs,
    fleets: { [DEVICE_FLEET]: { connected: Math.min(connectedMax, [0, devices / 2, devices - 10, devices, devices][i]!) } },
  }));
  const fleet = { published: [0, published, 0], acknowledged: [0, acknowledged, 0], connectFailures: 0, reconnects: 0 };
  const classes = { delivered: over.delivered ?? acknowledged, lost: over.lost ?? 0, duplicated: 0, reordered: 0, expired: 0, indeterminate: 0 };
  return {
    outcome: 'completed',
    verdict: (over.lost ?? 0) > 0 ? 'fail' : 'pass',
    timeline,
    fleets: { [DEVICE_FLEET]: fleet },
    checker: { verdict: (over.lost ?? 0) > 0 ? 'fail' : 'pass', byQos: [classes, classes, classes] },
    assertions: [{ source: 'qos1.lost == 0', metric: 'qos1.lost', actual: over.lost ?? 0, passed: (over.lost ?? 0) === 0, message: `qos1.lost == 0 (got ${over.lost ?? 0})` }],
    brokerViolations: { total: 0, byKind: {}, byFleet: {}, examples: [] },
    errors: [],
    generator: { saturated: false, reasons: [], loopDelayMaxMs: 0, scheduleSlipP99Ms: 0 },
    latency: { connect: { count: devices, min: 0.1, mean: 1, p50: 0.8, p90: 2, p95: 3, p99: 7.5, p999: 9, max: 12 } },
  } as unknown as RunResult;
}

/** One process each side; the devices connect during 0..3 s, steady from 4 s to 14 s. */
function stepRaw(devices: number, result: RunResult | null): StepRaw {
  const t0 = 10_000;
  return {
    spec: {
      label: `ours-${devices}`, broker: 'ours', brokers: 1, devices, simulatorProcesses: 1, workers: 1, connectRatePerSec: 2000,
      intervalSeconds: 60, persistence: 'sqlite', sourceAddresses: [], mosquittoBin: null,
    },
    startedAt: '2026-01-01T00:00:00.000Z',
    wallSeconds: 80,
    brokers: [{ name: 'ours-1', pid: 1, port: 1883, url: urls[0]!, idle: { t: t0 - 2000, cpuSeconds: 1, rssBytes: 100 * 2 ** 20 }, idleFds: 30, diedDuringRun: null, logTail: '' }],
    sims: [{
      slice: 1, share: devices, pid: 2, exit: 'exit code 0', exitCode: 0, timelineZeroAt: t0, allConnectedAt: t0 + 3000, steadyStartAt: t0 + 4000, steadyEndAt: t0 + 14_000,
      maxConnected: devices, interrupted: false, events: [], stderrTail: '', runJson: '/x/run.json',
    }],
    readings: {
      // Broker: 0.5 cores over the steady window (5 s of CPU in 10 s), RSS 100 → 120 MiB.
      'ours-1': readings(t0, [[0, 1, 100], [3000, 2, 110], [4000, 3, 115], [9000, 5.5, 118], [14_000, 8, 120], [15_000, 9, 120]]),
      // Simulator: 0.2 cores, 150 MiB at the end of the steady window.
      'sim-1': readings(t0, [[0, 0.5, 90], [3000, 1.5, 140], [4000, 2, 145], [9000, 3, 149], [14_000, 4, 150], [15_000, 4.5, 150]]),
    },
    fd: { first: { t: t0 + 200, fds: 35 }, all: { t: t0 + 2200, fds: 31 + devices }, max: 31 + devices, base: 31, expected: devices },
    result,
    merge: null,
    errors: [],
  };
}

describe('windowUsage and cpuBetween', () => {
  const r = readings(0, [[0, 0, 10], [1000, 0.5, 12], [2000, 1, 15], [4000, 2, 11]]);

  it('takes the mean CPU between the first and last reading inside the window, the last RSS and the peak', () => {
    expect(windowUsage(r, 500, 4000)).toEqual({ cpuCores: 0.5, rssEndBytes: 11 * 2 ** 20, rssPeakBytes: 15 * 2 ** 20 });
  });

  it('gives nothing for a window with fewer than two readings or under 1.5 s', () => {
    expect(windowUsage(r, 3000, 5000)).toBeNull();
    expect(windowUsage(r, 1000, 2000)).toBeNull();
  });

  it('counts CPU from the last reading at or before the start to the first at or after the end', () => {
    expect(cpuBetween(r, 1500, 1900)).toBe(0.5);
    expect(cpuBetween(r, 0, 5000)).toBeNull();
  });
});

describe('summarizeStep', () => {
  it('computes connect rate, QoS 1 counts and RSS and CPU per device on both sides', () => {
    const s = summarizeStep(stepRaw(10_000, runResult(10_000)), 80 * 2 ** 20);
    expect(s.ok).toBe(true);
    expect(s.failures).toEqual([]);
    // The last 10 devices arrived between the 2 s and the 3 s point.
    expect(s.connected).toEqual({ max: 10_000, expected: 10_000, secondsToAll: 3 });
    expect(s.connectRate.perSec).toBe(3333);
    // (31 + 10,000 − 35) descriptors in 2 s.
    expect(s.connectRate.brokerSidePerSec).toBe(4998);
    expect(s.connectRate.latencyP50Ms).toBe(0.8);
    expect(s.connectRate.latencyP99Ms).toBe(7.5);
    expect(s.qos1).toEqual({ published: 10_500, acknowledged: 10_500, delivered: 10_500, lost: 0, duplicated: 0, indeterminate: 0 });
    expect(s.steadyWindowSeconds).toBe(10);
    expect(s.broker.cpuCores).toBe(0.5);
    expect(s.broker.cpuCoresPerDevice).toBe(0.00005);
    expect(s.broker.steadyRssBytes).toBe(120 * 2 ** 20);
    expect(s.broker.rssBytesPerDevice).toBe(Math.round((20 * 2 ** 20) / 10_000));
    expect(s.simulator.cpuCores).toBe(0.2);
    expect(s.simulator.idleRssBytes).toBe(80 * 2 ** 20);
    expect(s.simulator.rssBytesPerDevice).toBe(Math.round((70 * 2 ** 20) / 10_000));
    // Connecting: broker 2 − 1 CPU seconds from t=0 to all connected, over 10,000 devices.
    expect(s.broker.connectCpuMsPerDevice).toBe(0.1);
  });

  it('fails a step that lost acknowledged messages', () => {
    const s = summarizeStep(stepRaw(10_000, runResult(10_000, { lost: 3, delivered: 10_497 })), null);
    expect(s.ok).toBe(false);
    expect(s.failures).toContain('3 acknowledged QoS 1 message(s) lost');
    expect(s.failures).toContain('3 acknowledged QoS 1 message(s) never delivered to the consumer');
    expect(s.simulator.rssBytesPerDevice).toBeNull();
  });

  it('fails a step where not every device was connected at once', () => {
    const s = summarizeStep(stepRaw(10_000, runResult(10_000, { connectedMax: 9_990 })), null);
    expect(s.failures).toContain('only 9990 of 10000 devices were connected at once');
    expect(s.connected.secondsToAll).toBeNull();
  });

  it('fails a step whose publishes were not all acknowledged', () => {
    const s = summarizeStep(stepRaw(10_000, runResult(10_000, { acknowledged: 10_400 })), null);
    expect(s.failures).toContain('100 of 10500 QoS 1 publishes never acknowledged');
  });

  it('fails a step without a run result and reports the harness errors', () => {
    const raw = { ...stepRaw(10_000, null), errors: ['simulator 1 wrote no run.json (exit code 4)'] };
    const s = summarizeStep(raw, null);
    expect(s.ok).toBe(false);
    expect(s.failures).toEqual(['simulator 1 wrote no run.json (exit code 4)', 'no run result']);
  });
});

describe('connectedFromTimeline', () => {
  it('interpolates the moment all were connected between the points around it', () => {
    const r = { timeline: [{ atMs: 1000, fleets: { [DEVICE_FLEET]: { connected: 400 } } }, { atMs: 2000, fleets: { [DEVICE_FLEET]: { connected: 1200 } } }] } as unknown as RunResult;
    expect(connectedFromTimeline(r, 1000)).toEqual({ max: 1200, secondsToAll: 1.75 });
    expect(connectedFromTimeline(r, 2000)).toEqual({ max: 1200, secondsToAll: null });
  });
});

describe('summarizeRamp', () => {
  const step = (devices: number, ok: boolean): StepResult => ({ devices, ok, failures: ok ? [] : ['boom'] }) as unknown as StepResult;

  it('reports the last passing step before the first failure', () => {
    expect(summarizeRamp([step(5000, true), step(10_000, true), step(15_000, false)])).toEqual({ maxDevices: 10_000, firstFailure: { devices: 15_000, failures: ['boom'] } });
    expect(summarizeRamp([step(5000, true), step(10_000, true)])).toEqual({ maxDevices: 10_000, firstFailure: null });
    expect(summarizeRamp([step(5000, false)]).maxDevices).toBeNull();
  });
});

describe('cost lines and the extrapolation to 1,000,000 devices', () => {
  // Exact lines: simulator 100 MiB + 6 KiB/device and 0.01 + 10 µcore/device; broker 50 MiB + 3 KiB/device and 20 µcore/device.
  const sim = (n: number): { rss: number; cpu: number } => ({ rss: 100 * 2 ** 20 + 6144 * n, cpu: 0.01 + 1e-5 * n });
  const brk = (n: number): { rss: number; cpu: number } => ({ rss: 50 * 2 ** 20 + 3072 * n, cpu: 2e-5 * n });
  const step = (n: number, ok = true, processes = 1, brokers = 1): StepResult => ({
    devices: n, ok, simulatorProcesses: processes, brokers,
    simulator: { peakRssBytes: sim(n).rss, cpuCores: sim(n).cpu },
    broker: { idleRssBytes: 50 * 2 ** 20, peakRssBytes: brk(n).rss, cpuCores: brk(n).cpu },
  }) as unknown as StepResult;
  const steps = [step(5000), step(10_000), step(15_000), step(19_800, false)];
  const model = costModelOf(simulatorPoints(steps, { devices: 10, rssBytes: sim(10).rss, cpuCores: sim(10).cpu }), brokerPoints(steps), 60);

  it('fits per-process lines over the passing steps', () => {
    expect(model.perDevice.simulatorRssBytes).toBeCloseTo(6144, 6);
    expect(model.perDevice.simulatorCpuCores).toBeCloseTo(1e-5, 12);
    expect(model.perDevice.brokerRssBytes).toBeCloseTo(3072, 6);
    expect(model.perDevice.brokerCpuCores).toBeCloseTo(2e-5, 12);
    expect(model.simulator.rssBytes!.intercept).toBeCloseTo(100 * 2 ** 20, 0);
    expect(model.simulator.rssBytes!.points).toBe(3);
    expect(model.broker!.rssBytes!.points).toBe(3);
    expect(model.broker!.cpuCores!.points).toBe(3);
  });

  it('leans on the idle base run and the idle broker only when fewer than two steps passed', () => {
    const one = [step(5000), step(10_000, false)];
    const base = { devices: 10, rssBytes: sim(10).rss, cpuCores: sim(10).cpu };
    expect(simulatorPoints(one, base).map((p) => p.devices)).toEqual([10, 5000]);
    expect(brokerPoints(one).map((p) => [p.devices, p.rssBytes])).toEqual([[0, 50 * 2 ** 20], [5000, brk(5000).rss]]);
    expect(simulatorPoints(steps, base).map((p) => p.devices)).toEqual([5000, 10_000, 15_000]);
    // A split step is not one process's usage.
    expect(simulatorPoints([step(5000), step(10_000), step(36_000, true, 3, 2)], null).map((p) => p.devices)).toEqual([5000, 10_000]);
  });

  it('sizes simulator processes by the open-file limit and adds up their costs', () => {
    const limits = shardLimitsHere(20_000, 2, 24 * 2 ** 30);
    expect(limits).toEqual({ fileDescriptorsPerProcess: 20_000, cpuCoresPerShard: 1, memoryBytesPerShard: 12 * 2 ** 30 });
    const e = estimateFor(model, 1_000_000, limits, 60);
    const x = e.extrapolation;
    // 20,000 − 64 spare descriptors = 19,936 devices; CPU allows (1 − 0.01) / 1e-5 = 99,000.
    expect(x.devicesPerShard).toBe(19_936);
    expect(x.shardLimitedBy).toBe('file-descriptors');
    expect(x.shards).toBe(Math.ceil(1_000_000 / 19_936));
    expect(x.simulatorTotal.rssBytes).toBeCloseTo(x.shards * 100 * 2 ** 20 + 6144 * 1_000_000, -3);
    expect(x.simulatorTotal.cpuCores).toBeCloseTo(x.shards * 0.01 + 10, 6);
    expect(x.broker!.rssBytes).toBeCloseTo(50 * 2 ** 20 + 3072 * 1_000_000, -3);
    expect(x.broker!.cpuCores).toBeCloseTo(20, 6);
    expect(e.brokerProcessesByFileLimit).toBe(Math.ceil(1_000_000 / 19_935));
    expect(e.brokerProcessesByCpu).toBe(20);
    expect(e.publishesPerSec).toBe(16_667);
    expect(e.sourceAddresses).toBe(200);
    expect(e.assumptions.join('\n')).toMatch(/every 60 s/);
  });

  it('predicts a split step from the lines, to set beside what it measured', () => {
    const multi = step(36_000, true, 3, 2);
    const c = checkModel(model, multi);
    expect(c.predicted.simulatorRssBytes).toBeCloseTo(3 * 100 * 2 ** 20 + 6144 * 36_000, -3);
    expect(c.predicted.brokerRssBytes).toBeCloseTo(2 * 50 * 2 ** 20 + 3072 * 36_000, -3);
    expect(c.measured.simulatorRssBytes).toBe(sim(36_000).rss);
  });
});

describe('options', () => {
  it('defaults to the full ramp and a 36,000-device multi-process step', () => {
    const o = parseArgs([]);
    expect(o).toMatchObject({ quick: false, parts: ['ours', 'mosquitto', 'multi'], sizes: [6_600, 13_200, 19_800], multiDevices: 36_000, multiProcesses: 3, connectRate: 2000, intervalSeconds: 60, persistence: 'sqlite' });
    expect(sizeProblems(o, 20_000)).toEqual([]);
  });

  it('--quick uses small sizes and a short interval', () => {
    const o = parseArgs(['--quick']);
    expect(o).toMatchObject({ sizes: [1000, 2000], multiDevices: 2000, intervalSeconds: 10, quietWait: 0 });
    expect(parseArgs(['--quick', '--sizes', '500,1_500', '--only', 'ours,multi'])).toMatchObject({ sizes: [500, 1500], parts: ['ours', 'multi'] });
  });

  it('rejects bad input with one line naming the option and the fix', () => {
    expect(() => parseArgs(['--only', 'aedes'])).toThrow("--only: unknown part 'aedes'; expected some of ours, mosquitto, multi");
    expect(() => parseArgs(['--sizes', '10000,5000'])).toThrow(/expected increasing sizes/);
    expect(() => parseArgs(['--sizes', '10k'])).toThrow("--sizes: expected a whole number of at least 1, got '10k'");
    expect(() => parseArgs(['--persistence', 'disk'])).toThrow("--persistence: expected sqlite or memory, got 'disk'");
    expect(() => parseArgs(['--connect-rate'])).toThrow('--connect-rate needs a value (see --help)');
    expect(() => parseArgs(['--frobnicate'])).toThrow("unknown argument '--frobnicate'; see --help");
  });

  it('refuses steps one process cannot hold under the hard open-file limit', () => {
    expect(devicesPerProcessLimit(20_000, 1)).toBe(19_935);
    expect(sizeProblems(parseArgs(['--sizes', '25000', '--only', 'ours']), 20_000)).toEqual([
      '--sizes 25000: one process holds at most 19935 devices under the open-file hard limit 20000; the multi part goes past one process',
    ]);
    expect(sizeProblems(parseArgs(['--multi-devices', '60000', '--only', 'multi']), 20_000)).toHaveLength(2);
    expect(sizeProblems(parseArgs(['--multi-devices', '60000', '--only', 'ours']), 20_000)).toEqual([]);
  });

  it('plans the full run to fit in about a quarter of an hour', () => {
    expect(estimateWallSeconds(parseArgs(['--quiet-wait', '0']), true)).toBeLessThan(15 * 60);
  });
});
