/**
 * The capacity ramp's pure parts: the SLO syntax, the planned loads, scaling a scenario into a step,
 * the stability rule on synthetic timelines, the knee and the stop reasons.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import net, { type AddressInfo } from 'node:net';
import { checkReachable, RunSetupError, TargetUnreachableError, type RunOptions, type RunOutcome } from '../../../../simulator/orchestrator/run.js';
import {
  apportion,
  chooseKnee,
  fanOut,
  judgeGenerator,
  judgeStability,
  outageSigns,
  parseSlo,
  plannedLoads,
  RampSetupError,
  rampedDevices,
  runCapacityRamp,
  scaleScenario,
  stopReasonFor,
  unreachableInRamp,
  withoutRunAdvice,
  type CapacityOptions,
  type StepStart,
} from '../../../../simulator/capacity/ramp.js';
import type { CapacityStep } from '../../../../simulator/capacity/types.js';
import type { RunResult, TimelinePoint } from '../../../../simulator/report/run-result.js';
import type { Scenario } from '../../../../simulator/scenario/types.js';
import { readRunResult } from '../../../../simulator/report/write-run.js';
import { expectedPublishRates } from '../../../../simulator/scenario/rates.js';
import { parseScenario } from '../../../../simulator/scenario/load.js';
import { REFUSED_PORT } from '../../../helpers/broker.js';

const plantYaml = `
name: plant
seed: 3
phases: { rampUp: 20s, steady: 60s, rampDown: 10s }
fleets:
  - name: sensors
    model: sensor
    count: 30
    connect: 10/s
    publish: { topic: "plant/{id}", qos: 1, every: 1s }
  - name: meters
    model: sensor
    count: 10
    connect: 100/s
    publish: { topic: "meter/{id}", qos: 0, every: 500ms }
  - name: listeners
    model: plc
    count: 3
    connect: 100/s
    subscribe: [{ topic: "plant/cmd/#", qos: 1 }]
consumers:
  - name: historian
    count: 2
    subscribe: [{ topic: "$share/h/plant/#", qos: 1 }]
chaos:
  - { at: 5s, broker: kill, downtime: 1s }
expect:
  - latency.e2e.p99 < 1s
`;
const plant = () => parseScenario(plantYaml, 'plant.yaml');
const slo = parseSlo('latency.e2e.p99<250ms,qos1.lost==0');

describe('parseSlo', () => {
  it('reads comma-separated clauses in the syntax of expect:', () => {
    expect(slo).toEqual([
      { source: 'latency.e2e.p99<250ms', metric: 'latency.e2e.p99', op: '<', value: 250 },
      { source: 'qos1.lost==0', metric: 'qos1.lost', op: '==', value: 0 },
    ]);
  });

  it('names the clause and the fix for bad syntax, unknown metrics, unknown fleets and empty clauses', () => {
    expect(() => parseSlo('latency.e2e.p99 << 5')).toThrow(RampSetupError);
    expect(() => parseSlo('latency.e2e.p99 << 5')).toThrow(/--slo: expected "<metric> <op> <value>"/);
    expect(() => parseSlo('qos1.lost=0')).toThrow(/use == for equality/);
    expect(() => parseSlo('latency.e2e.p98<250ms')).toThrow(/--slo "latency.e2e.p98<250ms": unknown metric latency.e2e.p98; did you mean latency.e2e.p90\?/);
    expect(() => parseSlo('fleets.sensrs.published>0', ['sensors'])).toThrow(/unknown fleet "sensrs".*did you mean fleets.sensors.published/);
    expect(() => parseSlo('qos1.lost==0,,connectFailures==0')).toThrow(/an empty clause/);
    expect(() => parseSlo(' ')).toThrow(/at least one clause/);
  });
});

describe('plannedLoads', () => {
  it('adds --start per step by default, or --step', () => {
    expect(plannedLoads({ mode: 'devices', start: 100, maxSteps: 4 })).toEqual([100, 200, 300, 400]);
    expect(plannedLoads({ mode: 'devices', start: 100, step: 50, maxSteps: 3 })).toEqual([100, 150, 200]);
    expect(plannedLoads({ mode: 'rate', start: 1, step: 0.5, maxSteps: 3 })).toEqual([1, 1.5, 2]);
  });

  it('multiplies by --factor, keeping device counts whole and strictly increasing', () => {
    expect(plannedLoads({ mode: 'devices', start: 4, factor: 1.5, maxSteps: 5 })).toEqual([4, 6, 9, 14, 20]);
    expect(plannedLoads({ mode: 'devices', start: 2, factor: 1.2, maxSteps: 4 })).toEqual([2, 3, 4, 5]);
    expect(plannedLoads({ mode: 'rate', start: 1, factor: 2, maxSteps: 3 })).toEqual([1, 2, 4]);
  });
});

describe('apportion', () => {
  it('splits in proportion with whole counts that add up, every share at least 1', () => {
    expect(apportion(80, [30, 10])).toEqual([60, 20]);
    expect(apportion(7, [30, 10])).toEqual([5, 2]);
    expect(apportion(2, [1000, 1])).toEqual([1, 1]);
    const counts = apportion(1001, [3, 3, 3]);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1001);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  });

  it('refuses fewer devices than fleets', () => {
    expect(() => apportion(1, [5, 5])).toThrow(/every ramped fleet needs at least one device; start at 2 or more/);
  });
});

describe('scaleScenario', () => {
  it('scales the publishing device fleets in proportion; consumers and subscribe-only fleets keep their count', () => {
    const base = plant();
    expect(rampedDevices(base)).toBe(40);
    const step = scaleScenario(base, { mode: 'devices', load: 80, holdMs: 30_000, slo });
    const count = (name: string): number => step.fleets.find((f) => f.name === name)!.count;
    expect(count('sensors')).toBe(60);
    expect(count('meters')).toBe(20);
    expect(count('listeners')).toBe(3);
    expect(count('historian')).toBe(2);
    expect(rampedDevices(step)).toBe(80);
    expect(expectedPublishRates(step).total).toBe(2 * expectedPublishRates(base).total);
    // The input is not modified.
    expect(base.fleets[0]!.count).toBe(30);
  });

  it('makes the phases ramp-up (from the connect rates) + hold, with no ramp-down, and replaces expect: with the SLO', () => {
    const step = scaleScenario(plant(), { mode: 'devices', load: 80, holdMs: 30_000, slo });
    // 60 sensors at 10/s: the last connects at 5.9 s; + 0.5 s, rounded up to a whole second.
    expect(step.phases).toEqual({ rampUpMs: 7000, steadyMs: 30_000, rampDownMs: 0 });
    expect(step.durationMs).toBe(37_000);
    expect(step.expect).toEqual(slo);
    // Chaos applies to every step as written.
    expect(step.chaos).toEqual(plant().chaos);
  });

  it('in a rate ramp keeps the devices and divides every publish interval of the ramped fleets by the factor', () => {
    const base = plant();
    const step = scaleScenario(base, { mode: 'rate', load: 2.5, holdMs: 10_000, slo });
    expect(step.fleets.map((f) => f.count)).toEqual(base.fleets.map((f) => f.count));
    expect(step.fleets.find((f) => f.name === 'sensors')!.publish[0]!.intervalMs).toBe(400);
    expect(step.fleets.find((f) => f.name === 'meters')!.publish[0]!.intervalMs).toBe(200);
    expect(expectedPublishRates(step).total).toBeCloseTo(2.5 * expectedPublishRates(base).total, 9);
  });

  it('refuses scenarios it cannot ramp, with the fix', () => {
    const fixed = parseScenario(plantYaml.replace('count: 30\n', 'count: 1\n    clientId: "the-sensor"\n'), 'plant.yaml');
    expect(() => scaleScenario(fixed, { mode: 'devices', load: 40, holdMs: 10_000, slo })).toThrow(/fleet sensors: its clientId "the-sensor" has no \{index\}.*add \{index\}/);
    const listenersOnly = parseScenario('name: quiet\nphases: { steady: 5s }\nconsumers:\n  - name: c\n    subscribe: [{ topic: "a/#" }]\n', 'quiet.yaml');
    expect(() => scaleScenario(listenersOnly, { mode: 'devices', load: 10, holdMs: 10_000, slo })).toThrow(/no device fleet publishes/);
    expect(() => scaleScenario(plant(), { mode: 'devices', load: 1, holdMs: 10_000, slo })).toThrow(/start at 2 or more/);
  });
});

// ---------------------------------------------------------------- stability on synthetic runs

const fixturePath = fileURLToPath(new URL('../../../fixtures/simulator/run-result.json', import.meta.url));

/**
 * A run whose steady phase (rampUp 2 s, hold `points.length` s at 1 s intervals) has the given
 * [published/s, delivered/s, e2e p99 ms] per interval, and a checker that owes `fan` deliveries per message.
 */
function runWith(points: Array<[number, number, number | null]>, fan = 1): RunResult {
  const run = readRunResult(fixturePath);
  run.scenario = { ...run.scenario, phases: { rampUpMs: 2000, steadyMs: points.length * 1000, rampDownMs: 0 } };
  const point = (atMs: number, published: number, delivered: number, p99: number | null, phase: TimelinePoint['phase']): TimelinePoint => ({
    ...run.timeline[0]!,
    generator: { loopDelayP99Ms: 2, scheduleSlipP99Ms: 1, cpu: 0.1, saturated: false },
    atMs,
    phase,
    publishedPerSec: published,
    deliveredPerSec: delivered,
    e2eP99Ms: p99,
  });
  // Ramp-up points (not judged) with wild values, then the hold, then a drain point.
  run.timeline = [
    point(1000, 5, 0, 900, 'ramp-up'),
    point(2000, 50, 10, 900, 'steady'),
    ...points.map(([p, d, l], i) => point(3000 + i * 1000, p, d, l, i === points.length - 1 ? 'drain' : 'steady')),
    point(3000 + points.length * 1000, 0, 500, 900, 'drain'),
  ];
  run.generator = { saturated: false, reasons: [], loopDelayMaxMs: 5, scheduleSlipP99Ms: 1 };
  const published = points.reduce((n, [p]) => n + p, 0);
  run.ledger = { ...run.ledger, published: [0, published, 0] };
  run.checker!.byQos = [
    { delivered: 0, lost: 0, duplicated: 0, reordered: 0, expired: 0, indeterminate: 0 },
    { delivered: published * fan - 10, lost: 6, duplicated: 0, reordered: 0, expired: 0, indeterminate: 4 },
    { delivered: 0, lost: 0, duplicated: 0, reordered: 0, expired: 0, indeterminate: 0 },
  ];
  return run;
}

const flat = (n: number, published: number, delivered: number, p99: number | null): Array<[number, number, number | null]> => Array.from({ length: n }, () => [published, delivered, p99]);

describe('judgeStability', () => {
  it('calls a step stable when deliveries keep pace and latency is flat, and measures the steady phase only', () => {
    const j = judgeStability(runWith(flat(10, 1000, 1000, 20)));
    expect(j).toEqual({ stable: true, publishedPerSec: 1000, deliveredPerSec: 1000, fanOut: 1 });
  });

  it('calls it unstable when deliveries fall behind what was owed over the second half of the hold', () => {
    const j = judgeStability(runWith([...flat(5, 1000, 1000, 20), ...flat(5, 1000, 850, 20)]));
    expect(j.stable).toBe(false);
    expect(j.reason).toBe('deliveries fell behind: 85% of what subscribers were owed over the second half of the hold (850 of 1,000 msg/s; at least 95% needed), so the backlog grows');
  });

  it('tolerates the counting noise of a short, slow window but not a real shortfall', () => {
    expect(judgeStability(runWith(flat(4, 10, 8, 5))).stable).toBe(true);
    expect(judgeStability(runWith(flat(4, 10, 5, 5))).stable).toBe(false);
    // At 10,000 msg/s the same 20% shortfall is far beyond noise.
    expect(judgeStability(runWith(flat(4, 10_000, 9_000, 5))).stable).toBe(false);
    expect(judgeStability(runWith(flat(4, 10_000, 9_700, 5))).stable).toBe(true);
  });

  it('counts the fan-out: two subscribers owe twice the published rate', () => {
    const twice = runWith(flat(10, 500, 1000, 20), 2);
    expect(fanOut(twice)).toBeCloseTo(2, 9);
    expect(judgeStability(twice).stable).toBe(true);
    const once = runWith(flat(10, 500, 500, 20), 2);
    expect(judgeStability(once).reason).toMatch(/^deliveries fell behind: 50% /);
  });

  it('calls it unstable while the e2e p99 is still climbing, with slack for small values', () => {
    const climbing = runWith(flat(12, 100, 100, 0).map(([p, d], i): [number, number, number] => [p, d, 50 + i * 60]));
    expect(judgeStability(climbing).reason).toBe('e2e p99 kept rising over the hold, from 110 ms in its first quarter to 650 ms in its last');
    // 5 ms → 60 ms is more than double, but within the 100 ms slack.
    const jittery = runWith(flat(12, 100, 100, 0).map(([p, d], i): [number, number, number] => [p, d, i < 6 ? 5 : 60]));
    expect(judgeStability(jittery).stable).toBe(true);
    // One spike at the end is not a trend (median of the last quarter).
    const spike = runWith([...flat(11, 100, 100, 10), [100, 100, 2000]]);
    expect(judgeStability(spike).stable).toBe(true);
  });

  it('falls back to delivered / published without checker data, and skips the delivery rule with nothing owed', () => {
    const noChecker = runWith(flat(6, 100, 100, 10));
    noChecker.checker!.byQos = [0, 1, 2].map(() => ({ delivered: 0, lost: 0, duplicated: 0, reordered: 0, expired: 0, indeterminate: 0 })) as NonNullable<RunResult['checker']>['byQos'];
    noChecker.totals = { ...noChecker.totals, published: [0, 600, 0], delivered: [0, 1200, 0] };
    expect(fanOut(noChecker)).toBe(2);
    noChecker.totals = { ...noChecker.totals, delivered: [0, 0, 0] };
    expect(fanOut(noChecker)).toBe(0);
    expect(judgeStability(noChecker).stable).toBe(true);
  });

  it('cannot judge a hold with no whole interval in it', () => {
    const run = runWith(flat(3, 100, 100, 10));
    run.timeline = run.timeline.filter((p) => p.phase === 'ramp-up');
    expect(judgeStability(run)).toMatchObject({ stable: false, reason: expect.stringMatching(/no timeline interval fell inside the hold/) });
  });
});

describe('judgeGenerator', () => {
  const saturatedAt = (run: RunResult, atMs: number[]): RunResult => {
    run.generator = { saturated: true, reasons: ['2 of 12 seconds saturated', 'up to event-loop delay p99 123 ms > 50 ms'], loopDelayMaxMs: 130, scheduleSlipP99Ms: 90 };
    run.timeline = run.timeline.map((p) => ({ ...p, generator: { ...p.generator, saturated: atMs.includes(p.atMs) } }));
    return run;
  };

  it('does not count a generator the run did not call saturated', () => {
    expect(judgeGenerator(runWith(flat(8, 100, 100, 10)), 100)).toEqual({ saturated: false, reasons: [] });
  });

  it('does not count a few slow seconds while the offered load went out, but keeps them as transient', () => {
    const run = saturatedAt(runWith(flat(10, 100, 100, 10)), [4000, 8000]);
    const j = judgeGenerator(run, 100);
    expect(j.saturated).toBe(false);
    expect(j.reasons[0]).toBe('transient, not counted: 2 of 10 hold intervals saturated and the offered load went out');
  });

  it('counts saturation over a quarter of the hold, or a hold that did not publish the offered load', () => {
    const sustained = judgeGenerator(saturatedAt(runWith(flat(8, 100, 100, 10)), [4000, 5000, 6000]), 100);
    expect(sustained).toEqual({ saturated: true, reasons: ['3 of 8 hold intervals saturated', '2 of 12 seconds saturated', 'up to event-loop delay p99 123 ms > 50 ms'] });
    const short = judgeGenerator(saturatedAt(runWith(flat(8, 70, 70, 10)), [4000]), 100);
    expect(short.saturated).toBe(true);
    expect(short.reasons[0]).toBe('only 70% of the offered load was published over the hold');
  });
});

// ---------------------------------------------------------------- knee and stop reasons

function step(index: number, devices: number, good: Partial<Pick<CapacityStep, 'sloMet' | 'stable' | 'generatorSaturated'>> = {}): CapacityStep {
  return {
    index,
    devices,
    offeredRate: devices * 10,
    publishedPerSec: devices * 10,
    deliveredPerSec: devices * 10,
    slo: [],
    sloMet: good.sloMet ?? true,
    stable: good.stable ?? true,
    generatorSaturated: good.generatorSaturated ?? false,
    generatorReasons: [],
    simulator: { cpuCores: null, peakRssBytes: null },
  };
}

describe('stopReasonFor', () => {
  it('goes on after a good step; stops slo-broken on a broken SLO or an unsettled step; saturation wins', () => {
    expect(stopReasonFor(step(1, 100))).toBeNull();
    expect(stopReasonFor(step(1, 100, { sloMet: false }))).toBe('slo-broken');
    expect(stopReasonFor(step(1, 100, { stable: false }))).toBe('slo-broken');
    expect(stopReasonFor(step(1, 100, { generatorSaturated: true }))).toBe('generator-saturated');
    expect(stopReasonFor(step(1, 100, { generatorSaturated: true, sloMet: false, stable: false }))).toBe('generator-saturated');
  });
});

describe('chooseKnee', () => {
  it('is the last good step before the first bad one', () => {
    const steps = [step(1, 100), step(2, 200), step(3, 300, { stable: false })];
    expect(chooseKnee(steps, 'devices')?.index).toBe(2);
  });

  it('is the last step when every step was good, and null when the first was bad', () => {
    expect(chooseKnee([step(1, 100), step(2, 200)], 'devices')?.index).toBe(2);
    expect(chooseKnee([step(1, 100, { sloMet: false })], 'devices')).toBeNull();
    expect(chooseKnee([], 'devices')).toBeNull();
  });

  it('never counts a saturated step, even one that met the SLO: the knee is the good step below it', () => {
    expect(chooseKnee([step(1, 100), step(2, 200, { generatorSaturated: true })], 'devices')?.index).toBe(1);
  });

  it('takes refinement steps by load, not by order, and ignores a good load above a bad one', () => {
    // 100 ok, 200 ok, 300 bad, then bisection: 250 bad, 225 ok.
    const steps = [step(1, 100), step(2, 200), step(3, 300, { sloMet: false }), step(4, 250, { stable: false }), step(5, 225)];
    expect(chooseKnee(steps, 'devices')?.index).toBe(5);
    const fluke = [step(1, 100), step(2, 200, { sloMet: false }), step(3, 300)];
    expect(chooseKnee(fluke, 'devices')?.index).toBe(1);
  });

  it('orders a rate ramp by offered rate', () => {
    const steps = [step(1, 50), step(2, 50), step(3, 50, { sloMet: false })].map((s, i) => ({ ...s, offeredRate: 100 * (i + 1) }));
    expect(chooseKnee(steps, 'rate')?.index).toBe(2);
  });
});

// ---------------------------------------------------------------- outages

describe('outageSigns', () => {
  /** The embedded broker's resident memory at each point of runWith's timeline, by atMs (the rest keep the fixture's). */
  const withBrokerRss = (run: RunResult, rssAt: Record<number, number>): RunResult => {
    run.timeline = run.timeline.map((p) => (rssAt[p.atMs] === undefined ? p : { ...p, broker: { cpu: 0, rssBytes: rssAt[p.atMs]! } }));
    return run;
  };

  it('finds none in a step that delivered to the end, or in an overloaded one that still delivers at its limit', () => {
    expect(outageSigns(runWith(flat(8, 100, 100, 10)), 100)).toEqual([]);
    expect(outageSigns(runWith(flat(8, 100, 20, 900)), 100)).toEqual([]);
  });

  it('calls deliveries that stopped over the last quarter of the hold an outage', () => {
    const run = runWith([...flat(5, 100, 100, 10), ...flat(3, 100, 0, null)]);
    expect(outageSigns(run, 100)).toEqual(['deliveries stopped: the subscribers had received up to 100 msg/s earlier in the step, then nothing over the last 2 s of the hold while 100 msg/s were offered']);
  });

  it('does not count a silence that a slow pace explains, or one while the scenario\'s own chaos acted', () => {
    // 3 msg/s: 6 deliveries due over the last 2 s; missing them could be chance.
    const slow = runWith([...flat(5, 3, 3, 10), ...flat(3, 3, 0, null)]);
    slow.timeline = slow.timeline.map((p) => (p.atMs === 2000 ? { ...p, deliveredPerSec: 3 } : p));
    expect(outageSigns(slow, 3)).toEqual([]);
    const partitioned = runWith([...flat(5, 100, 100, 10), ...flat(3, 100, 0, null)]);
    partitioned.chaos = [{ atMs: 7000, action: 'partition', outcome: 'ok', detail: 'sensors cut off', endMs: 9000 }];
    expect(outageSigns(partitioned, 100)).toEqual([]);
  });

  it('calls the embedded broker gone during the step an outage, unless the scenario\'s broker chaos stopped it', () => {
    const crashed = withBrokerRss(runWith(flat(8, 100, 100, 10)), { 8000: 0, 9000: 0 });
    expect(outageSigns(crashed, 100)).toEqual(["the embedded broker's process was gone at 8 s into the step, and no broker chaos of the scenario had stopped it"]);
    const killed = withBrokerRss(runWith(flat(8, 100, 100, 10)), { 8000: 0, 9000: 0 });
    killed.chaos = [{ atMs: 7600, action: 'broker-kill', outcome: 'ok', detail: 'killed pid 1, restarted', endMs: 8900 }];
    expect(outageSigns(killed, 100)).toEqual([]);
    // Down again after the chaos was over: not the chaos.
    const again = withBrokerRss(runWith(flat(8, 100, 100, 10)), { 8000: 0, 10_000: 0 });
    again.chaos = killed.chaos;
    expect(outageSigns(again, 100)).toEqual(["the embedded broker's process was gone at 10 s into the step, and no broker chaos of the scenario had stopped it"]);
  });

  it('reads no outage from a broker never measured (no /proc) or from a remote target', () => {
    const zeros = Object.fromEntries([1000, 2000, ...Array.from({ length: 10 }, (_, i) => 3000 + i * 1000)].map((at) => [at, 0]));
    expect(outageSigns(withBrokerRss(runWith(flat(8, 100, 100, 10)), zeros), 100)).toEqual([]);
    const remote = withBrokerRss(runWith(flat(8, 100, 100, 10)), { 8000: 0 });
    remote.target = { ...remote.target, embedded: false };
    expect(outageSigns(remote, 100)).toEqual([]);
  });
});

describe('unreachableInRamp', () => {
  it("drops run's advice to omit the target from its unreachable message, for a target that answered the steps before", async () => {
    const err: unknown = await checkReachable({ urls: [`mqtt://127.0.0.1:${REFUSED_PORT}`], protocolVersion: 5, connectTimeoutMs: 2000 }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(TargetUnreachableError);
    const message = (err as Error).message;
    // What `mqtt-sim run` prints keeps its advice.
    expect(message).toMatch(/or omit the target to use the embedded reference broker\.$/);
    expect(withoutRunAdvice(err as TargetUnreachableError)).toBe(`target mqtt://127.0.0.1:${REFUSED_PORT} is unreachable: ECONNREFUSED.`);
    expect(unreachableInRamp(err as TargetUnreachableError)).toBe(
      `target mqtt://127.0.0.1:${REFUSED_PORT} is unreachable: ECONNREFUSED. It answered the steps before, so it went down or stopped accepting connections since; check the broker and its log.`,
    );
    // Other messages pass as they are.
    expect(unreachableInRamp(new TargetUnreachableError('no consumer could connect and subscribe: ECONNRESET'))).toBe('no consumer could connect and subscribe: ECONNRESET');
  });
});

// ---------------------------------------------------------------- the loop, with a synthetic step runner

/**
 * Stands in for runScenario so the loop's decisions can be checked in milliseconds (the real loop against
 * a real rate-limited broker is test/integration/simulator/capacity-knee.test.ts): a target that delivers
 * at most `limit` msg/s, whose e2e p99 is 10 ms below the limit and 400 ms above it; `saturated`
 * devices counts whose generator saturates over the whole hold; `fail` throws or aborts at a step;
 * `silentAt` delivers nothing over the second half of that step's hold (a target that stopped answering).
 */
function syntheticRunner(limit: number, behave: { saturatedFrom?: number; fail?: Record<number, Error | 'abort'>; silentAt?: number } = {}) {
  const calls: Array<{ scenario: Scenario; options: RunOptions }> = [];
  const runner = async (scenario: Scenario, options: RunOptions): Promise<RunOutcome> => {
    calls.push({ scenario, options });
    const failure = behave.fail?.[calls.length];
    if (failure instanceof Error) throw failure;
    const offered = expectedPublishRates(scenario).total;
    const devices = rampedDevices(scenario);
    const saturated = behave.saturatedFrom !== undefined && devices >= behave.saturatedFrom;
    const run = readRunResult(fixturePath);
    const intervalMs = options.snapshotIntervalMs ?? 1000;
    const { rampUpMs, steadyMs } = scenario.phases;
    run.scenario = scenario;
    run.outcome = failure === 'abort' ? 'aborted' : 'completed';
    run.timeline = [];
    for (let atMs = intervalMs; atMs <= rampUpMs + steadyMs; atMs += intervalMs) {
      run.timeline.push({
        ...readRunResult(fixturePath).timeline[0]!,
        atMs,
        phase: atMs <= rampUpMs ? 'ramp-up' : 'steady',
        publishedPerSec: offered,
        // silentAt: the target stops answering halfway through that call's hold; nothing is delivered after.
        deliveredPerSec: behave.silentAt === calls.length && atMs > rampUpMs + steadyMs / 2 ? 0 : Math.min(offered, limit),
        e2eP99Ms: offered <= limit ? 10 : 10 + atMs / 10,
        generator: { loopDelayP99Ms: saturated ? 200 : 2, scheduleSlipP99Ms: 1, cpu: 0.2, saturated },
        simulator: { cpu: 0.01 * devices, rssBytes: 50e6 + 1e5 * devices },
      });
    }
    const published = (offered * steadyMs) / 1000;
    run.ledger = { ...run.ledger, published: [0, published, 0] };
    run.checker!.byQos[1] = { delivered: published, lost: 0, duplicated: 0, reordered: 0, expired: 0, indeterminate: 0 };
    run.latency['e2e'] = { ...run.latency['e2e']!, count: published, p99: offered <= limit ? 10 : 400 };
    run.generator = { saturated, reasons: saturated ? ['event-loop delay p99 200 ms > 50 ms'] : [], loopDelayMaxMs: saturated ? 200 : 2, scheduleSlipP99Ms: 1 };
    return { result: run, reportPath: null };
  };
  return { runner, calls };
}

/** 10 sensors at 10 msg/s: 100 msg/s per 10 devices. */
const tenYaml = `
name: ten
phases: { steady: 5s }
fleets:
  - name: s
    model: sensor
    count: 10
    connect: 100/s
    publish: { topic: "t/{id}", qos: 1, every: 100ms }
consumers:
  - name: c
    subscribe: [{ topic: "t/#", qos: 1 }]
`;

function rampOptions(runner: CapacityOptions['runner'], overrides: Partial<CapacityOptions> = {}): CapacityOptions {
  return {
    schedule: { mode: 'devices', start: 10, step: 10, maxSteps: 5 },
    holdMs: 8000,
    slo: { text: 'latency.e2e.p99<250ms', specs: parseSlo('latency.e2e.p99<250ms') },
    workers: 1,
    reportDir: null,
    shardLimits: { fileDescriptorsPerProcess: 1024, cpuCoresPerShard: 1, memoryBytesPerShard: 2 ** 31 },
    runner,
    ...overrides,
  };
}

describe('runCapacityRamp', () => {
  const ten = () => parseScenario(tenYaml, 'ten.yaml');

  it('stops at the first step over the limit (slo-broken) with the knee on the step before it', async () => {
    const { runner, calls } = syntheticRunner(250);
    const started: StepStart[] = [];
    const ended: number[] = [];
    const { result, jsonPath } = await runCapacityRamp(ten(), rampOptions(runner, { onStepStart: (s) => started.push(s), onStepEnd: (s) => ended.push(s.index) }));
    expect(result.steps.map((s) => [s.devices, s.offeredRate, s.sloMet, s.stable])).toEqual([[10, 100, true, true], [20, 200, true, true], [30, 300, false, false]]);
    expect(result.stopReason).toBe('slo-broken');
    expect(result.stopDetail).toMatch(/^step 3 \(30 devices, 300 msg\/s offered\): SLO latency.e2e.p99<250ms failed: .*; it did not settle: deliveries fell behind: 83% /);
    expect(result.knee).toEqual({ step: 2, devices: 20, offeredRate: 200, deliveredPerSec: 200 });
    expect(started.map((s) => [s.index, s.planned, s.devices, s.refining])).toEqual([[1, 5, 10, false], [2, 5, 20, false], [3, 5, 30, false]]);
    expect(ended).toEqual([1, 2, 3]);
    // Each step ran the scaled scenario with the SLO as its expect:, and wrote nothing (no report folder).
    expect(calls.map((c) => c.scenario.expect.map((e) => e.source))).toEqual([['latency.e2e.p99<250ms'], ['latency.e2e.p99<250ms'], ['latency.e2e.p99<250ms']]);
    expect(calls.every((c) => c.options.reportDir === null)).toBe(true);
    expect(jsonPath).toBeNull();
    expect(result.steps[0]!.runJson).toBeUndefined();
    expect(result.costModel.fittedSteps).toEqual([1, 2]);
  });

  it('bisects between the last good and the first bad load with --refine', async () => {
    const { runner } = syntheticRunner(250);
    const { result } = await runCapacityRamp(ten(), rampOptions(runner, { refine: 3 }));
    // 30 bad → 25 good → 28 bad → 27 bad (26.5 rounds up); 26 would be next.
    expect(result.steps.map((s) => s.devices)).toEqual([10, 20, 30, 25, 28, 27]);
    expect(result.knee).toMatchObject({ step: 4, devices: 25 });
    expect(result.stopReason).toBe('slo-broken');
    expect(result.stopDetail).toMatch(/; 3 refinement step\(s\) narrowed the knee to between 25 devices and 27 devices$/);
  });

  it('stops generator-saturated when the simulator is the limit, with the knee a lower bound', async () => {
    const { runner } = syntheticRunner(10_000, { saturatedFrom: 30 });
    const { result } = await runCapacityRamp(ten(), rampOptions(runner, { refine: 3 }));
    expect(result.steps).toHaveLength(3);
    expect(result.stopReason).toBe('generator-saturated');
    expect(result.stopDetail).toMatch(/the generator saturated .*the knee is a lower bound/);
    expect(result.knee).toMatchObject({ step: 2, devices: 20 });
  });

  it('runs every planned step when all are good (max-steps)', async () => {
    const { runner } = syntheticRunner(10_000);
    const { result } = await runCapacityRamp(ten(), rampOptions(runner, { schedule: { mode: 'devices', start: 10, factor: 2, maxSteps: 3 } }));
    expect(result.steps.map((s) => s.devices)).toEqual([10, 20, 40]);
    expect(result.stopReason).toBe('max-steps');
    expect(result.knee).toMatchObject({ step: 3, devices: 40 });
  });

  it('has no knee when the first step already breaks the SLO', async () => {
    const { runner } = syntheticRunner(50);
    const { result } = await runCapacityRamp(ten(), rampOptions(runner));
    expect(result.steps).toHaveLength(1);
    expect(result.stopReason).toBe('slo-broken');
    expect(result.knee).toBeNull();
  });

  it('ramps the rate of the same devices', async () => {
    const { runner, calls } = syntheticRunner(250);
    const { result } = await runCapacityRamp(ten(), rampOptions(runner, { schedule: { mode: 'rate', start: 1, step: 1, maxSteps: 4 } }));
    expect(result.steps.map((s) => [s.devices, s.offeredRate])).toEqual([[10, 100], [10, 200], [10, 300]]);
    expect(calls[2]!.scenario.fleets[0]!.publish[0]!.intervalMs).toBeCloseTo(100 / 3, 9);
    expect(result.knee).toMatchObject({ step: 2, offeredRate: 200 });
  });

  it('ends with the steps done when interrupted, leaving the interrupted step out', async () => {
    const { runner } = syntheticRunner(10_000, { fail: { 2: 'abort' } });
    const { result } = await runCapacityRamp(ten(), rampOptions(runner));
    expect(result.steps).toHaveLength(1);
    expect(result.stopReason).toBe('aborted');
    expect(result.stopDetail).toBe('interrupted during step 2 (20 devices, 200 msg/s offered); that step is left out');
    expect(result.knee).toMatchObject({ step: 1 });
  });

  it('throws the errors of the first step, which measured nothing', async () => {
    const unreachable = new TargetUnreachableError('target mqtt://127.0.0.1:1 is unreachable: ECONNREFUSED.');
    await expect(runCapacityRamp(ten(), rampOptions(syntheticRunner(10_000, { fail: { 1: unreachable } }).runner))).rejects.toBe(unreachable);
    const bug = new Error('shards did not report ready in time');
    await expect(runCapacityRamp(ten(), rampOptions(syntheticRunner(10_000, { fail: { 1: bug } }).runner))).rejects.toBe(bug);
  });

  it('stops with reason error when a later step cannot reach the target, keeping the steps before it and the message', async () => {
    const unreachable = new TargetUnreachableError('target mqtt://127.0.0.1:1 is unreachable: ECONNREFUSED.');
    const { result, stepFailure } = await runCapacityRamp(ten(), rampOptions(syntheticRunner(10_000, { fail: { 3: unreachable } }).runner));
    expect(result.steps.map((s) => s.devices)).toEqual([10, 20]);
    expect(result.stopReason).toBe('error');
    expect(result.stopDetail).toBe('step 3 (30 devices, 300 msg/s offered) failed (the target became unreachable), so it measured nothing: target mqtt://127.0.0.1:1 is unreachable: ECONNREFUSED.');
    expect(result.error).toEqual({ step: 3, refining: false, devices: 30, offeredRate: 300, kind: 'target-unreachable', message: 'target mqtt://127.0.0.1:1 is unreachable: ECONNREFUSED.' });
    expect(stepFailure).toBe(unreachable);
    expect(result.knee).toMatchObject({ step: 2, devices: 20 });
    expect(result.costModel.fittedSteps).toEqual([1, 2]);
  });

  it('stops with reason error on anything else a later step throws, and still writes capacity.json and report.html', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-ramp-'));
    try {
      const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      const { result, jsonPath, problems } = await runCapacityRamp(ten(), rampOptions(syntheticRunner(10_000, { fail: { 2: full } }).runner, { reportDir: dir }));
      expect(result.stopReason).toBe('error');
      expect(result.error).toMatchObject({ step: 2, refining: false, kind: 'internal', message: 'ENOSPC: no space left on device, write' });
      expect(result.stopDetail).toBe('step 2 (20 devices, 200 msg/s offered) failed, so it measured nothing: ENOSPC: no space left on device, write');
      expect(result.knee).toMatchObject({ step: 1, devices: 10 });
      expect(problems).toEqual([]);
      expect(JSON.parse(readFileSync(jsonPath!, 'utf8'))).toEqual(result);
      expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('STEP 2 FAILED');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps the knee of a broken SLO when a refinement step fails, with reason error', async () => {
    const bug = new Error('a shard worker failed: boom');
    // 10, 20 good; 30 bad; refinement 25 good (step 4); refinement step 5 (28) throws.
    const { result } = await runCapacityRamp(ten(), rampOptions(syntheticRunner(250, { fail: { 5: bug } }).runner, { refine: 3 }));
    expect(result.steps.map((s) => s.devices)).toEqual([10, 20, 30, 25]);
    expect(result.stopReason).toBe('error');
    expect(result.error).toMatchObject({ step: 5, refining: true, devices: 28, kind: 'internal', message: 'a shard worker failed: boom' });
    expect(result.stopDetail).toMatch(/^step 3 \(30 devices, 300 msg\/s offered\): SLO .*; 1 refinement step\(s\) narrowed the knee to between 25 devices and 30 devices; then refinement step 5 \(28 devices, 280 msg\/s offered\) failed, so it measured nothing: a shard worker failed: boom$/);
    expect(result.knee).toMatchObject({ step: 4, devices: 25 });
  });

  it('leaves out a step during which the target stopped answering: stop reason error, not slo-broken, the knee before it', async () => {
    // Step 3 (300 msg/s) is over the limit too, but the outage, not the limit, is what it shows.
    const ended: number[] = [];
    const { result, stepFailure } = await runCapacityRamp(ten(), rampOptions(syntheticRunner(250, { silentAt: 3 }).runner, { onStepEnd: (s) => ended.push(s.index) }));
    expect(result.steps.map((s) => s.devices)).toEqual([10, 20]);
    expect(ended).toEqual([1, 2]);
    expect(result.stopReason).toBe('error');
    expect(result.error).toEqual({
      step: 3, refining: false, devices: 30, offeredRate: 300, kind: 'target-unreachable', duringStep: true,
      message: 'the target stopped answering during step 3: deliveries stopped: the subscribers had received up to 250 msg/s earlier in the step, then nothing over the last 2 s of the hold while 300 msg/s were offered',
    });
    expect(result.stopDetail).toBe(`step 3 (30 devices, 300 msg/s offered) ran into an outage, not a capacity limit, so it is left out: ${result.error!.message}`);
    expect(stepFailure).toBeUndefined();
    expect(result.knee).toMatchObject({ step: 2, devices: 20 });
    expect(result.costModel.fittedSteps).toEqual([1, 2]);
  });

  it('keeps the knee of a broken SLO when the target stops answering during a refinement step', async () => {
    // 10, 20 good; 30 bad; refinement step 4 (25) runs into an outage.
    const { result } = await runCapacityRamp(ten(), rampOptions(syntheticRunner(250, { silentAt: 4 }).runner, { refine: 3 }));
    expect(result.steps.map((s) => s.devices)).toEqual([10, 20, 30]);
    expect(result.stopReason).toBe('error');
    expect(result.error).toMatchObject({ step: 4, refining: true, devices: 25, kind: 'target-unreachable', duringStep: true });
    expect(result.error!.message).toMatch(/^the target stopped answering during refinement step 4: deliveries stopped: /);
    expect(result.stopDetail).toMatch(/^step 3 .*; then refinement step 4 \(25 devices, 250 msg\/s offered\) ran into an outage, not a capacity limit, so it is left out: /);
    expect(result.knee).toMatchObject({ step: 2, devices: 20 });
  });

  it('checks after every step that the target still accepts a connection, and ends the ramp at the first step after which it does not', async () => {
    const server = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    let probes = 0;
    server.on('connection', () => probes++);
    try {
      const reachable = parseScenario(tenYaml.replace('phases:', `target: { url: "mqtt://127.0.0.1:${(server.address() as AddressInfo).port}" }\nphases:`), 'ten.yaml');
      const { result } = await runCapacityRamp(reachable, rampOptions(syntheticRunner(10_000).runner, { schedule: { mode: 'devices', start: 10, step: 10, maxSteps: 2 } }));
      expect(result.stopReason).toBe('max-steps');
      expect(probes).toBe(2);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }

    // Gone after step 1: even the first step is left out, and the report is still written (no knee).
    const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-ramp-'));
    try {
      const refused = parseScenario(tenYaml.replace('phases:', `target: { url: "mqtt://127.0.0.1:${REFUSED_PORT}" }\nphases:`), 'ten.yaml');
      const { result, jsonPath } = await runCapacityRamp(refused, rampOptions(syntheticRunner(10_000).runner, { reportDir: dir }));
      expect(result.steps).toEqual([]);
      expect(result.stopReason).toBe('error');
      expect(result.error).toEqual({
        step: 1, refining: false, devices: 10, offeredRate: 100, kind: 'target-unreachable', duringStep: true, runJson: 'step-1/run.json',
        message: `the target stopped answering during step 1: after the step, target mqtt://127.0.0.1:${REFUSED_PORT} is unreachable: ECONNREFUSED`,
      });
      expect(result.stopDetail).toBe(`step 1 (10 devices, 100 msg/s offered) ran into an outage, not a capacity limit, so it is left out (its run.json is in step-1/): ${result.error!.message}`);
      expect(result.knee).toBeNull();
      expect(JSON.parse(readFileSync(jsonPath!, 'utf8'))).toEqual(result);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rewrites the advice of an unreachable target at a later step for a ramp', async () => {
    const unreachable = new TargetUnreachableError('target mqtt://127.0.0.1:1 is unreachable: ECONNREFUSED.', 'Check that the broker runs and the URL is right, or omit the target to use the embedded reference broker.');
    const { result } = await runCapacityRamp(ten(), rampOptions(syntheticRunner(10_000, { fail: { 2: unreachable } }).runner));
    expect(result.error!.message).toBe('target mqtt://127.0.0.1:1 is unreachable: ECONNREFUSED. It answered the steps before, so it went down or stopped accepting connections since; check the broker and its log.');
    expect(result.stopDetail).not.toContain('omit the target');
  });

  it('calls a step that throws after Ctrl-C interrupted, not an error', async () => {
    const controller = new AbortController();
    const failing = syntheticRunner(10_000).runner;
    const runner: CapacityOptions['runner'] = async (scenario, options) => {
      if (rampedDevices(scenario) === 20) {
        controller.abort();
        throw new Error('shards stopping: timed out');
      }
      return failing(scenario, options);
    };
    const { result } = await runCapacityRamp(ten(), rampOptions(runner, { signal: controller.signal }));
    expect(result.stopReason).toBe('aborted');
    expect(result.error).toBeUndefined();
    expect(result.stopDetail).toBe('interrupted during step 2 (20 devices, 200 msg/s offered); that step is left out (it ended with an error: shards stopping: timed out)');
  });

  it.runIf(process.platform === 'linux')('calls a later step whose --broker-pid process exited an error: the target went away', async () => {
    // A stand-in broker process that dies between steps 1 and 2; runScenario then refuses its pid.
    const broker = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => broker.once('exit', () => resolve()));
    const pid = broker.pid!;
    try {
      const inner = syntheticRunner(10_000).runner;
      let call = 0;
      const runner: CapacityOptions['runner'] = async (scenario, options) => {
        if (++call === 2) {
          broker.kill('SIGKILL');
          await exited;
          throw new RunSetupError(`--broker-pid ${pid}: no such process on this machine.`);
        }
        return inner(scenario, options);
      };
      const { result } = await runCapacityRamp(ten(), rampOptions(runner, { brokerPid: pid }));
      expect(result.stopReason).toBe('error');
      expect(result.error).toMatchObject({ step: 2, kind: 'target-unreachable', message: `the broker process (--broker-pid ${pid}) is gone: --broker-pid ${pid}: no such process on this machine.` });
      expect(result.error!.duringStep).toBeUndefined();
    } finally {
      broker.kill('SIGKILL');
      await exited;
    }
  });

  it.runIf(process.platform === 'linux')('calls a step during which the --broker-pid process exited an outage', async () => {
    const broker = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => broker.once('exit', () => resolve()));
    const pid = broker.pid!;
    try {
      const inner = syntheticRunner(10_000).runner;
      let call = 0;
      const runner: CapacityOptions['runner'] = async (scenario, options) => {
        const outcome = await inner(scenario, options);
        if (++call === 2) {
          broker.kill('SIGKILL');
          await exited;
        }
        return outcome;
      };
      const { result } = await runCapacityRamp(ten(), rampOptions(runner, { brokerPid: pid }));
      expect(result.steps.map((s) => s.index)).toEqual([1]);
      expect(result.error).toMatchObject({ step: 2, kind: 'target-unreachable', duringStep: true, message: `the target stopped answering during step 2: the broker process (--broker-pid ${pid}) is gone after the step` });
      expect(result.knee).toMatchObject({ step: 1 });
    } finally {
      broker.kill('SIGKILL');
      await exited;
    }
  });

  it('calls a later step the simulator cannot hold on this machine generator-saturated, not an error', async () => {
    const files = new RunSetupError('30 devices need about 94 open files, but this process may open only 80.');
    const fd = await runCapacityRamp(ten(), rampOptions(syntheticRunner(10_000, { fail: { 3: files } }).runner));
    expect(fd.result.stopReason).toBe('generator-saturated');
    expect(fd.result.stopDetail).toMatch(/cannot run on this machine: 30 devices need .* the knee is a lower bound/);
    expect(fd.result.error).toBeUndefined();
  });

  it('refuses a plan whose steps cannot be scaled before running any', async () => {
    const { runner, calls } = syntheticRunner(10_000);
    const twoFleets = parseScenario(tenYaml.replace('consumers:', '  - name: s2\n    model: sensor\n    count: 10\n    publish: { topic: "u/{id}", every: 1s }\nconsumers:'), 'two.yaml');
    await expect(runCapacityRamp(twoFleets, rampOptions(runner, { schedule: { mode: 'devices', start: 1, step: 1, maxSteps: 3 } }))).rejects.toThrow(RampSetupError);
    expect(calls).toHaveLength(0);
  });
});
