/**
 * Part 1: the highest publish rate one simulator worker sustains, found by stepping the offered load up
 * until a step fails, with the simulator run in-process through runScenario against a fresh Mosquitto per
 * step.
 *
 * A step offering R msg/s is sustained when
 *   - the achieved rate is ≥ 95 % of R: achieved = R × totals.published / the publishes the schedule
 *     offered (see expectedPublishes: devices connect spread over the ramp-up, so the schedule offers
 *     R × (duration − mean connect offset) messages). This is the steady rate whenever the ramp-up went as
 *     planned, and it is immune to the aliasing of the per-second timeline points (their rate is the
 *     difference of the latest shard snapshots at each orchestrator tick, two unsynchronized 1 s timers:
 *     intervals show 0, 1 or 2 snapshots' worth, e.g. 20,271 / 89,964 / 0 msg/s at a steady 45,000);
 *     the mean of the steady points is reported next to it (steadyPointsMean),
 *   - result.generator.saturated is false (the simulator's own health check over the whole run),
 *   - for QoS 1, every publish was acknowledged by the end of the drain (acknowledged[1] === published[1]),
 *   - and the run itself completed with every device connected.
 */
import { ProcessSampler, SelfCpuSampler } from '../broker/proc-stat.js';
import { startBroker, type RunningBroker } from '../broker/brokers.js';
import { HOST } from '../lib/net.js';
import { runScenario } from '../../simulator/orchestrator/run.js';
import type { RunResult } from '../../simulator/report/run-result.js';
import { parseScenario } from '../../simulator/scenario/load.js';
import { errorText, round, silentReporter } from './common.js';

export const RATE_DEVICES = 200;
/** Body bytes after the simulator's 20-byte stamp: `payload: { size: 64 }`. */
export const BODY_BYTES = 64;
export const STAMP_BYTES = 20;
export const RAMP_UP_S = 1;
export const DRAIN_S = 3;
/** Share of the offered rate the steady phase must reach. */
export const SUSTAINED_SHARE = 0.95;

export type Qos = 0 | 1;

export interface RateSettings {
  steadySeconds: number;
}

/** The publish-only scenario of one step: RATE_DEVICES sensors, one publication each, offered R msg/s in total. */
export function rateScenarioYaml(qos: Qos, offered: number, port: number, settings: RateSettings): string {
  const perDevice = offered / RATE_DEVICES;
  return [
    `name: bench-rate-qos${qos}-${offered}`,
    'seed: 1',
    `target: mqtt://${HOST}:${port}`,
    `phases: { rampUp: ${RAMP_UP_S}s, steady: ${settings.steadySeconds}s }`,
    `drain: ${DRAIN_S}s`,
    'fleets:',
    '  - name: sensors',
    `    count: ${RATE_DEVICES}`,
    '    connect: unlimited',
    '    publish:',
    '      topic: "bench/rate/{id}"',
    `      qos: ${qos}`,
    `      rate: ${Number.isInteger(perDevice) ? perDevice : perDevice.toFixed(3)}/s`,
    `      payload: { size: ${BODY_BYTES} }`,
    '',
  ].join('\n');
}

/**
 * Publishes the schedule offers over the timeline: device i connects at floor(i × rampUp / count) (plan.ts
 * connectOffsetMs, the ramp-up being longer than count / connect rate with `connect: unlimited`) and then
 * publishes at R / count msg/s until the end of the timeline (no ramp-down).
 */
export function expectedPublishes(offered: number, settings: RateSettings): number {
  const rampUpMs = RAMP_UP_S * 1000;
  const durationMs = rampUpMs + settings.steadySeconds * 1000;
  const perDevicePerMs = offered / RATE_DEVICES / 1000;
  let total = 0;
  for (let i = 0; i < RATE_DEVICES; i++) total += (durationMs - Math.floor((i * rampUpMs) / RATE_DEVICES)) * perDevicePerMs;
  return total;
}

export interface RateStep {
  /** Offered load R, msg/s over all devices. */
  offered: number;
  /** R × published / expectedPublishes: the rate the run kept up, msg/s. */
  achieved: number | null;
  /** Mean published/s of the timeline points in phase 'steady' (aliased, see the file comment). */
  steadyPointsMean?: number | null;
  /** totals.published and what the schedule offered. */
  expected?: number;
  /** published/s of each steady point. */
  steadyPoints: number[];
  sustained: boolean;
  /** Every criterion that failed, with its numbers (empty when sustained). */
  failures: string[];
  outcome?: RunResult['outcome'];
  published?: number;
  acknowledged?: number;
  droppedOffline?: number;
  connects?: number;
  connectFailures?: number;
  generatorSaturated?: boolean;
  saturationReasons?: string[];
  /** Highest shard-thread cpu of the steady points (fraction of one core, as the simulator reports it). */
  shardCpuSteadyMax?: number;
  loopDelayMaxMs?: number;
  scheduleSlipP99Ms?: number;
  /** This whole process (main thread + shard worker), % of one core over the run. */
  processCpuPct?: number;
  brokerCpuPct?: number;
  brokerRssMb?: number;
  errors?: string[];
  busyBeforePct?: number;
}

function stepFailures(qos: Qos, offered: number, result: RunResult, achieved: number | null, expected: number): string[] {
  const failures: string[] = [];
  const t = result.totals;
  if (result.outcome !== 'completed') failures.push(`run outcome '${result.outcome}' (errors: ${result.errors.slice(0, 2).join(' | ') || 'none'})`);
  if (t.connects < RATE_DEVICES || t.connectFailures > 0) {
    failures.push(`connections: ${t.connects}/${RATE_DEVICES} connected, ${t.connectFailures} connect failure(s)`);
  }
  if (achieved === null) failures.push('rate: nothing to measure');
  else if (achieved < SUSTAINED_SHARE * offered) {
    failures.push(`rate: achieved ${Math.round(achieved)}/s < ${SUSTAINED_SHARE * 100}% of offered ${offered}/s (${round((achieved / offered) * 100, 1)}%; published ${t.published[qos]} of ${Math.round(expected)} scheduled)`);
  }
  if (result.generator.saturated) failures.push(`generator saturated: ${result.generator.reasons.join('; ')}`);
  if (qos === 1 && t.acknowledged[1] !== t.published[1]) {
    failures.push(`acknowledgements: ${t.acknowledged[1]} of ${t.published[1]} QoS 1 publishes acknowledged after the ${DRAIN_S} s drain (${t.published[1] - t.acknowledged[1]} missing)`);
  }
  return failures;
}

/** One step against a fresh Mosquitto. Never throws: a failure is a failed step with the reason. */
export async function rateStep(qos: Qos, offered: number, settings: RateSettings): Promise<RateStep> {
  let broker: RunningBroker | undefined;
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    broker = await startBroker('mosquitto');
    const scenario = parseScenario(rateScenarioYaml(qos, offered, broker.port, settings), `bench-rate-qos${qos}.yaml`);
    const brokerUsage = new ProcessSampler(broker.pid);
    const self = new SelfCpuSampler();
    brokerUsage.start();
    self.start();
    // A run that hangs is aborted (it then returns outcome 'aborted' and fails the step).
    const limitMs = (RAMP_UP_S + settings.steadySeconds + DRAIN_S) * 1000 + 60_000;
    timer = setTimeout(() => abort.abort(), limitMs);
    const { result } = await runScenario(scenario, { workers: 1, reporter: silentReporter, reportDir: null, signal: abort.signal });
    const processCpuPct = self.stop();
    const usage = brokerUsage.stop();
    const steady = result.timeline.filter((p) => p.phase === 'steady');
    const steadyPoints = steady.map((p) => Math.round(p.publishedPerSec));
    const steadyPointsMean = steady.length === 0 ? null : steady.reduce((s, p) => s + p.publishedPerSec, 0) / steady.length;
    const t = result.totals;
    const expected = expectedPublishes(offered, settings);
    const achieved = (offered * t.published[qos]) / expected;
    const failures = stepFailures(qos, offered, result, achieved, expected);
    return {
      offered,
      achieved: Math.round(achieved),
      steadyPointsMean: steadyPointsMean === null ? null : Math.round(steadyPointsMean),
      expected: Math.round(expected),
      steadyPoints,
      sustained: failures.length === 0,
      failures,
      outcome: result.outcome,
      published: t.published[qos],
      acknowledged: t.acknowledged[qos],
      droppedOffline: t.droppedOffline,
      connects: t.connects,
      connectFailures: t.connectFailures,
      generatorSaturated: result.generator.saturated,
      saturationReasons: result.generator.reasons,
      shardCpuSteadyMax: steady.length === 0 ? undefined : round(Math.max(...steady.map((p) => p.generator.cpu)), 3),
      loopDelayMaxMs: round(result.generator.loopDelayMaxMs, 1),
      scheduleSlipP99Ms: round(result.generator.scheduleSlipP99Ms, 2),
      processCpuPct: round(processCpuPct, 1),
      brokerCpuPct: round(usage.cpuPct, 1),
      brokerRssMb: round(usage.rssMbMax, 1),
      errors: result.errors.slice(0, 5),
    };
  } catch (err) {
    const tail = broker?.logTail();
    return {
      offered, achieved: null, steadyPoints: [], sustained: false,
      failures: [`run failed: ${errorText(err)}${tail ? ` (mosquitto log: ${tail.split('\n').slice(-3).join(' | ')})` : ''}`],
    };
  } finally {
    clearTimeout(timer);
    if (broker !== undefined) await broker.stop();
  }
}

export interface LadderRun {
  run: number;
  /** Highest sustained offered rate, msg/s; null when even the first step failed. */
  highestSustained: number | null;
  /** Achieved steady published/s at that step. */
  achievedAtHighest: number | null;
  /** The first step that failed (the ladder stops there), or null when every step was sustained. */
  firstFailing: { offered: number; achieved: number | null; reasons: string[] } | null;
  steps: RateStep[];
}

/** Steps up through `ladder` until a step fails. `beforeStep` waits for a quiet machine and returns its busy %. */
export async function rateLadder(
  qos: Qos,
  ladder: readonly number[],
  settings: RateSettings,
  run: number,
  beforeStep: () => Promise<number>,
  onStep: (step: RateStep) => void,
): Promise<LadderRun> {
  const steps: RateStep[] = [];
  let highest: RateStep | null = null;
  let failing: RateStep | null = null;
  for (const offered of ladder) {
    const busyBeforePct = await beforeStep();
    const step = { ...(await rateStep(qos, offered, settings)), busyBeforePct };
    steps.push(step);
    onStep(step);
    if (!step.sustained) {
      failing = step;
      break;
    }
    highest = step;
  }
  return {
    run,
    highestSustained: highest?.offered ?? null,
    achievedAtHighest: highest?.achieved ?? null,
    firstFailing: failing === null ? null : { offered: failing.offered, achieved: failing.achieved, reasons: failing.failures },
    steps,
  };
}
