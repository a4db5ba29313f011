/**
 * `mqtt-sim capacity`: the ramp. Runs the scenario again and again with more load each time (a step is
 * one ordinary run: runScenario on a scaled copy of the scenario), judges every step, and stops at the
 * first one that breaks the SLO, does not settle, or saturates the simulator itself. The knee is the
 * largest step that met the SLO and settled with the generator keeping up.
 *
 * What a step is (scaleScenario):
 * - `devices` ramp: the device fleets that publish are scaled together, in proportion to their counts in
 *   the scenario, to the step's number of devices. Consumers and device fleets that only subscribe keep
 *   their count, so the fan-out per message stays what the scenario says.
 * - `rate` ramp: the device count stays; every periodic publication of those fleets publishes `factor`
 *   times as often (consumers' commands, and the PLC replies they cause, keep their rate).
 * - Phases: ramp-up long enough for the step's devices to connect at their fleet's connect rate (plus
 *   half a second, rounded up to a whole second), then the hold (the steady phase), no ramp-down.
 * - The scenario's `expect:` is replaced by the SLO (each step's run.json shows the SLO as its
 *   assertions); its chaos timeline applies to every step, from the step's own t=0.
 *
 * Stable (judgeStability), over the steady phase of the step:
 * - delivered keeps pace: over the second half of the hold, the deliveries the subscribers received
 *   reach `minDeliveryRatio` (95 %) of what they were owed, less √owed for the counting noise of a
 *   short window. "Owed" is the published messages times the fan-out, and the fan-out is the delivery
 *   checker's owed deliveries (delivered + lost + expired + indeterminate) per published message
 *   (falling back to delivered / published when the checker judged nothing). A broker that falls behind
 *   builds a backlog that shows here, and so does one that drops messages.
 * - latency is not still climbing: the median of the per-interval e2e p99 over the last quarter of the
 *   hold is at most `latencyGrowthFactor` (2) times that of the first quarter plus `latencySlackMs`
 *   (100 ms). Needs at least 4 intervals with deliveries, otherwise only the first rule applies.
 *
 * Generator saturated (judgeGenerator): the run says so (RunResult.generator.saturated: a few seconds
 * over its thresholds) and the saturation was sustained: at least a quarter of the hold's intervals were
 * saturated, or the hold published less than 95 % of the offered load (less √offered). A few slow
 * seconds (a GC pause, a neighbour taking the CPU) while the offered load still went out do not make the
 * simulator the limit; they are kept in generatorReasons as transient.
 *
 * Stop reasons, first match wins, at the first step that has one:
 * - `generator-saturated`: the generator saturated (above), or the simulator cannot hold the step's
 *   devices on this machine (file limit). The simulator is the limit: the knee is a lower bound for the
 *   target. Saturation wins over a broken SLO because a late generator inflates the very latencies the
 *   SLO judges.
 * - `slo-broken`: an SLO clause failed or the step did not settle.
 * - `max-steps`: every planned step passed; the knee is at least the last one.
 * - `aborted`: interrupted; the step that was running is left out (its run.json is still in its folder).
 * - `error`: the target stopped answering during a step (an outage, below), or a step after the first
 *   failed with an error instead of measuring anything (the target went away between steps, the run
 *   threw, a full disk); result.error keeps the step and the message, and the step is not in `steps`.
 *   The knee comes from the steps before it: a lower bound, unless the SLO had broken already (a failed
 *   refinement step). An error thrown at step 1 is thrown as runScenario threw it: nothing was measured.
 * With `refine` > 0 a broken SLO is followed by up to that many bisection steps between the last good
 * load and the first bad one; an error or an interrupt ends the bisection with that stop reason.
 *
 * An outage is not a capacity limit (findOutage). A target that dies or hangs in the middle of a step
 * rarely makes runScenario throw: the step ends with failed connections and nothing delivered after the
 * outage, and judged on its numbers alone it would break the SLO (or, with QoS 0 publishers that drop
 * while offline, even pass it) at a load the target may well carry. So after every step, before it is
 * judged, the ramp looks for signs that the target stopped answering; any one of them is an outage:
 * - the target (a --target or the scenario's) no longer accepts a TCP connection once the step is over:
 *   the same check runScenario makes before a run (checkReachable);
 * - the --broker-pid process is gone once the step is over;
 * - the embedded broker was down during the step (its process gone: no resident memory in a timeline
 *   point after it had some) other than while the scenario's own `broker:` chaos had it down;
 * - deliveries stopped: the subscribers received nothing at all over the last quarter of the hold (at
 *   least two intervals), where at the pace of the step's best interval before it they would have
 *   received at least outageMinMissed (10), and no chaos action of the scenario was at work during the
 *   hold. A target at its limit still delivers at its limit, however late; one that stops delivering
 *   altogether has stopped answering (a hung broker still accepts TCP connections, so the connection
 *   check misses it).
 * The step then ends the ramp with stop reason `error`, kind `target-unreachable`, a message saying the
 * target stopped answering during step k and why; it is left out of `steps` (so it bounds no knee), and
 * its run.json stays in its folder. This holds for step 1 too (no knee then), and for a broker that
 * crashed because of the load (the ramp sees that it went away, not why). What it does not catch:
 * a target that went down and was back (restarted by a supervisor) before the end of the step, which
 * shows as an ordinary bad step; its run.json shows the disconnects.
 *
 * It prints nothing: progress goes through the callbacks, and the result (also written as capacity.json
 * and report.html by writeCapacityReport) is returned.
 */
import { join } from 'node:path';
import { packageVersion } from '../../cli/version.js';
import { PidUsageSampler } from '../metrics/process-usage.js';
import { checkReachable, runScenario, RunSetupError, TargetUnreachableError, type RunOptions } from '../orchestrator/run.js';
import { AssertionSyntaxError, evaluateAssertions, metricProblem, parseAssertion } from '../report/assertions.js';
import type { Reporter, RunEvent } from '../report/reporter.js';
import type { AssertionResult, RunResult, TimelinePoint } from '../report/run-result.js';
import { expectedPublishRates } from '../scenario/rates.js';
import type { AssertionSpec, FleetSpec, Scenario } from '../scenario/types.js';
import { extrapolate, fitCostModel, stepUsage } from './cost-model.js';
import { writeCapacityReport } from './report.js';
import { capacityResultSchemaVersion, type CapacityResult, type CapacityStep, type CapacityStepError, type CapacityStopReason } from './types.js';

/** What grows from step to step. */
export type RampMode = 'devices' | 'rate';

/** The planned loads: devices (devices ramp) or publish-rate factors (rate ramp), step by step. */
export interface RampSchedule {
  mode: RampMode;
  /** Load of step 1: a device count, or a rate factor (1 = the scenario's own rate). */
  start: number;
  /** Load added per step; exclusive with factor. */
  step?: number;
  /** Load multiplied per step (> 1); exclusive with step. */
  factor?: number;
  maxSteps: number;
}

/** The scenario cannot be ramped as asked (exit code 2 in the CLI). */
export class RampSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RampSetupError';
  }
}

// ------------------------------------------------------------------------------------------ the SLO

/**
 * `--slo "latency.e2e.p99<250ms,qos1.lost==0"` → one AssertionSpec per clause, in the syntax of a
 * scenario's `expect:`. Throws RampSetupError naming the clause and the fix (bad syntax, unknown metric).
 */
export function parseSlo(text: string, fleetNames?: readonly string[]): AssertionSpec[] {
  const clauses = text.split(',').map((c) => c.trim());
  if (clauses.every((c) => c === '')) throw new RampSetupError('--slo: give at least one clause, e.g. --slo "latency.e2e.p99<250ms,qos1.lost==0"');
  const specs: AssertionSpec[] = [];
  for (const clause of clauses) {
    if (clause === '') throw new RampSetupError(`--slo ${JSON.stringify(text)}: an empty clause; separate clauses with single commas, e.g. "latency.e2e.p99<250ms,qos1.lost==0"`);
    let spec: AssertionSpec;
    try {
      spec = parseAssertion(clause);
    } catch (err) {
      if (err instanceof AssertionSyntaxError) throw new RampSetupError(`--slo: ${err.message}`);
      throw err;
    }
    const problem = metricProblem(spec.metric, fleetNames);
    if (problem !== null) throw new RampSetupError(`--slo "${clause}": ${problem}`);
    specs.push(spec);
  }
  return specs;
}

// ------------------------------------------------------------------------------------------ scaling

/** Fleets a ramp scales: device fleets (not consumers) that publish. The others keep their count. */
export function rampedFleets(scenario: Scenario): FleetSpec[] {
  return scenario.fleets.filter((f) => f.model !== 'consumer' && f.publish.length > 0);
}

/** Devices of the ramped fleets (what CapacityStep.devices counts). */
export function rampedDevices(scenario: Scenario): number {
  return rampedFleets(scenario).reduce((n, f) => n + f.count, 0);
}

/** The load the scenario itself asks for: its device count (devices ramp) or factor 1 (rate ramp). */
export function scenarioLoad(scenario: Scenario, mode: RampMode): number {
  return mode === 'devices' ? rampedDevices(scenario) : 1;
}

function roundFactor(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/**
 * The load of every planned step. Device counts are whole and strictly increasing (a multiplicative
 * ramp that would round to the same count adds one device); rate factors are kept to three decimals.
 */
export function plannedLoads(schedule: RampSchedule): number[] {
  const loads: number[] = [];
  for (let k = 0; k < schedule.maxSteps; k++) {
    const raw = schedule.factor !== undefined ? schedule.start * schedule.factor ** k : schedule.start + k * (schedule.step ?? schedule.start);
    let load = schedule.mode === 'devices' ? Math.round(raw) : roundFactor(raw);
    const previous = loads[loads.length - 1];
    if (previous !== undefined && load <= previous) load = schedule.mode === 'devices' ? previous + 1 : roundFactor(previous + 0.001);
    loads.push(load);
  }
  return loads;
}

/** Splits `total` over `weights` in proportion, whole numbers that add up to `total`, each at least 1 (largest remainder). */
export function apportion(total: number, weights: readonly number[]): number[] {
  if (weights.length === 0) return [];
  if (total < weights.length) throw new RampSetupError(`cannot spread ${total} device(s) over ${weights.length} fleets: every ramped fleet needs at least one device; start at ${weights.length} or more`);
  const sum = weights.reduce((a, b) => a + b, 0);
  // One device per fleet first, the rest in proportion.
  const rest = total - weights.length;
  const exact = weights.map((w) => (rest * w) / sum);
  const counts = exact.map((x) => Math.floor(x));
  let left = rest - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => ({ i, frac: x - Math.floor(x) })).sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (const { i } of order) {
    if (left === 0) break;
    counts[i]!++;
    left--;
  }
  return counts.map((c) => c + 1);
}

export interface StepShape {
  mode: RampMode;
  /** Devices (devices ramp) or rate factor (rate ramp). */
  load: number;
  /** The steady phase of the step, ms. */
  holdMs: number;
  slo: AssertionSpec[];
}

/** Ramp-up that lets every device of the step connect at its fleet's connect rate, plus half a second, rounded up to a whole second. */
export function rampUpFor(scenario: Scenario, fleets: readonly FleetSpec[]): number {
  let spreadMs = 0;
  let unlimited = false;
  for (const f of fleets) {
    if (f.model === 'consumer') continue;
    if (Number.isFinite(f.connectRatePerSec) && f.connectRatePerSec > 0) spreadMs = Math.max(spreadMs, ((f.count - 1) * 1000) / f.connectRatePerSec);
    else unlimited = true;
  }
  // Fleets without a connect rate spread over the scenario's own ramp-up (plan.ts connectOffsetMs).
  if (unlimited) spreadMs = Math.max(spreadMs, scenario.phases.rampUpMs);
  return Math.ceil((spreadMs + 500) / 1000) * 1000;
}

/**
 * The scenario of one step: ramped fleets scaled to the load, phases ramp-up + hold (no ramp-down), the
 * SLO in place of `expect:`. Pure. Throws RampSetupError when the scenario cannot be scaled.
 */
export function scaleScenario(scenario: Scenario, shape: StepShape): Scenario {
  const ramped = rampedFleets(scenario);
  if (ramped.length === 0) {
    throw new RampSetupError(`${scenario.name}: no device fleet publishes, so there is no load to ramp; capacity scales the fleets that publish (sensors, PLCs, gateways)`);
  }
  if (!(shape.load > 0)) throw new RampSetupError(`the load of a step must be above 0, got ${shape.load}`);
  let counts: number[];
  if (shape.mode === 'devices') {
    if (!Number.isInteger(shape.load)) throw new RampSetupError(`a devices ramp needs whole device counts, got ${shape.load}`);
    counts = apportion(shape.load, ramped.map((f) => f.count));
  } else {
    counts = ramped.map((f) => f.count);
  }
  const scaled = new Map<FleetSpec, FleetSpec>();
  ramped.forEach((fleet, i) => {
    const count = counts[i]!;
    if (count > fleet.count && count > 1 && !fleet.clientId.includes('{index}')) {
      throw new RampSetupError(`fleet ${fleet.name}: its clientId ${JSON.stringify(fleet.clientId)} has no {index}, so ${count} devices would share client ids; add {index} to it to ramp this fleet`);
    }
    const publish = shape.mode === 'rate' ? fleet.publish.map((p) => ({ ...p, intervalMs: p.intervalMs / shape.load })) : fleet.publish;
    scaled.set(fleet, { ...fleet, count, publish });
  });
  const fleets = scenario.fleets.map((f) => scaled.get(f) ?? f);
  const rampUpMs = rampUpFor(scenario, fleets);
  return {
    ...scenario,
    fleets,
    phases: { rampUpMs, steadyMs: shape.holdMs, rampDownMs: 0 },
    durationMs: rampUpMs + shape.holdMs,
    expect: shape.slo,
  };
}

// ------------------------------------------------------------------------------------------ judging

/** The thresholds of judgeStability (module comment). */
export interface StabilityRule {
  /** Share of the owed deliveries the second half of the hold must see (before the counting allowance). */
  minDeliveryRatio: number;
  /** The last quarter's e2e p99 may be at most this many times the first quarter's ... */
  latencyGrowthFactor: number;
  /** ... plus this many ms. */
  latencySlackMs: number;
  /** Intervals with deliveries needed before the latency trend is judged. */
  minTrendPoints: number;
}

export const defaultStabilityRule: StabilityRule = { minDeliveryRatio: 0.95, latencyGrowthFactor: 2, latencySlackMs: 100, minTrendPoints: 4 };

export interface StabilityJudgement {
  stable: boolean;
  /** Why not (absent when stable). */
  reason?: string;
  /** Means over the steady phase, msg/s. */
  publishedPerSec: number;
  deliveredPerSec: number;
  /** Deliveries owed per published message (the fan-out the delivery rule used). */
  fanOut: number;
}

/** Timeline points whose whole interval lies in the steady phase (a point covers the interval that ends at its atMs). */
export function steadyPoints(result: RunResult, intervalMs: number): TimelinePoint[] {
  const { rampUpMs, steadyMs } = result.scenario.phases;
  return result.timeline.filter((p) => p.atMs - intervalMs >= rampUpMs - 1 && p.atMs <= rampUpMs + steadyMs + 1);
}

/** Deliveries owed per published message: the checker's owed deliveries, or what arrived when the checker judged nothing. */
export function fanOut(result: RunResult): number {
  const published = result.ledger.published[0] + result.ledger.published[1] + result.ledger.published[2];
  if (published === 0) return 0;
  let owed = 0;
  for (const c of result.checker?.byQos ?? []) owed += c.delivered + c.lost + c.expired + c.indeterminate;
  if (owed > 0) return owed / published;
  const t = result.totals;
  const totalPublished = t.published[0] + t.published[1] + t.published[2];
  return totalPublished === 0 ? 0 : (t.delivered[0] + t.delivered[1] + t.delivered[2]) / totalPublished;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function mean(values: number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

function msgs(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : String(Math.round(n * 10) / 10);
}

/** Whether the step settled (module comment), with the steady-phase rates. `intervalMs`: the run's snapshot interval. */
export function judgeStability(result: RunResult, intervalMs = 1000, rule: StabilityRule = defaultStabilityRule): StabilityJudgement {
  const steady = steadyPoints(result, intervalMs);
  const publishedPerSec = mean(steady.map((p) => p.publishedPerSec));
  const deliveredPerSec = mean(steady.map((p) => p.deliveredPerSec));
  const f = fanOut(result);
  const base = { publishedPerSec, deliveredPerSec, fanOut: f };
  if (steady.length === 0) return { ...base, stable: false, reason: 'no timeline interval fell inside the hold, so the step could not be judged; hold each step longer' };

  const reasons: string[] = [];
  const window = steady.slice(Math.floor(steady.length / 2));
  const seconds = (window.length * intervalMs) / 1000;
  const owed = f * window.reduce((n, p) => n + p.publishedPerSec, 0) * (intervalMs / 1000);
  const delivered = window.reduce((n, p) => n + p.deliveredPerSec, 0) * (intervalMs / 1000);
  if (owed > 0) {
    const allowed = (1 - rule.minDeliveryRatio) * owed + Math.sqrt(owed);
    if (owed - delivered > allowed) {
      reasons.push(
        `deliveries fell behind: ${Math.round((delivered / owed) * 100)}% of what subscribers were owed over the second half of the hold ` +
          `(${msgs(delivered / seconds)} of ${msgs(owed / seconds)} msg/s; at least ${Math.round(rule.minDeliveryRatio * 100)}% needed), so the backlog grows`,
      );
    }
  }

  const p99s = steady.map((p) => p.e2eP99Ms).filter((v): v is number => v !== null);
  if (p99s.length >= rule.minTrendPoints) {
    const q = Math.floor(p99s.length / 4);
    const first = median(p99s.slice(0, q));
    const last = median(p99s.slice(p99s.length - q));
    if (last > rule.latencyGrowthFactor * first + rule.latencySlackMs) {
      reasons.push(`e2e p99 kept rising over the hold, from ${msgs(first)} ms in its first quarter to ${msgs(last)} ms in its last`);
    }
  }
  return reasons.length === 0 ? { ...base, stable: true } : { ...base, stable: false, reason: reasons.join('; ') };
}

/** Share of the hold's intervals that must be saturated for the generator to count as the limit. */
export const sustainedSaturationShare = 0.25;

export interface GeneratorJudgement {
  /** Sustained saturation: the simulator was the limit of the step. */
  saturated: boolean;
  /** Why, or (when not saturated) the transient saturation that was not counted; empty when the generator kept up throughout. */
  reasons: string[];
}

/** Whether the generator was the limit of the step (module comment); `offeredRate` in msg/s. */
export function judgeGenerator(result: RunResult, offeredRate: number, intervalMs = 1000): GeneratorJudgement {
  if (!result.generator.saturated) return { saturated: false, reasons: [] };
  const hold = steadyPoints(result, intervalMs);
  const hot = hold.filter((p) => p.generator.saturated).length;
  const share = hold.length === 0 ? 1 : hot / hold.length;
  const offered = (offeredRate * hold.length * intervalMs) / 1000;
  const published = (hold.reduce((n, p) => n + p.publishedPerSec, 0) * intervalMs) / 1000;
  const short = offered > 0 && offered - published > 0.05 * offered + Math.sqrt(offered);
  const seconds = `${hot} of ${hold.length} hold intervals saturated`;
  if (share >= sustainedSaturationShare || short) {
    const why = share >= sustainedSaturationShare ? [seconds] : [];
    if (short) why.push(`only ${Math.round((published / offered) * 100)}% of the offered load was published over the hold`);
    return { saturated: true, reasons: [...why, ...result.generator.reasons] };
  }
  return { saturated: false, reasons: [`transient, not counted: ${seconds} and the offered load went out`, ...result.generator.reasons] };
}

/** A step the knee may be: it met the SLO, settled, and the generator kept up. */
export function isGoodStep(step: CapacityStep): boolean {
  return step.sloMet && step.stable && !step.generatorSaturated;
}

/** Why the ramp stops at this step, or null when it may go on. Saturation first (module comment). */
export function stopReasonFor(step: CapacityStep): Exclude<CapacityStopReason, 'max-steps' | 'aborted'> | null {
  if (step.generatorSaturated) return 'generator-saturated';
  if (!step.sloMet || !step.stable) return 'slo-broken';
  return null;
}

/** The load a step stands for: its devices (devices ramp; the offered rate breaks ties) or its offered rate. */
export function stepLoad(step: CapacityStep, mode: RampMode): number {
  return mode === 'devices' ? step.devices + step.offeredRate * 1e-9 : step.offeredRate;
}

/**
 * The knee: the good step with the largest load below every bad step's load (refinement steps run out
 * of order, so order alone does not tell). Null when no step qualifies.
 */
export function chooseKnee(steps: readonly CapacityStep[], mode: RampMode): CapacityStep | null {
  const badLoads = steps.filter((s) => !isGoodStep(s)).map((s) => stepLoad(s, mode));
  const ceiling = badLoads.length === 0 ? Infinity : Math.min(...badLoads);
  let knee: CapacityStep | null = null;
  for (const s of steps) {
    if (!isGoodStep(s) || stepLoad(s, mode) >= ceiling) continue;
    if (knee === null || stepLoad(s, mode) > stepLoad(knee, mode)) knee = s;
  }
  return knee;
}

/** One line on why a step is bad (for stopDetail). */
export function describeFailure(step: CapacityStep): string {
  const parts: string[] = [];
  if (step.generatorSaturated) parts.push(`the generator saturated (${step.generatorReasons.join('; ') || 'schedule not kept'})`);
  for (const a of step.slo) if (!a.passed) parts.push(`SLO ${a.source} failed: ${a.message}`);
  if (!step.stable && step.unstableReason !== undefined) parts.push(`it did not settle: ${step.unstableReason}`);
  return parts.join('; ');
}

// ------------------------------------------------------------------------------------------ outages

/** Deliveries a silent end of the hold must have missed, at the step's earlier pace, to count as an outage (module comment): fewer could be chance. */
export const outageMinMissed = 10;

/** Chaos actions that take the embedded broker down on purpose. */
const brokerDownChaos: ReadonlySet<string> = new Set(['broker-kill', 'broker-restart']);

/**
 * The signs of an outage in a step's own run (module comment), one sentence each; [] when there are
 * none. Pure: the embedded broker down outside the scenario's broker chaos, and deliveries that stopped
 * before the end of the hold. `offeredRate`: the step's offered msg/s.
 */
export function outageSigns(result: RunResult, offeredRate: number, intervalMs = 1000): string[] {
  const signs: string[] = [];
  const chaos = result.chaos ?? [];

  if (result.target.embedded) {
    // sample() reads no memory once the process is gone (and everywhere without /proc: hence "after it had some").
    let measured = false;
    for (const p of result.timeline) {
      if (p.broker === undefined) continue;
      if (p.broker.rssBytes > 0) {
        measured = true;
        continue;
      }
      if (!measured) continue;
      // A point is sampled a little after its atMs: one interval of margin on each side of the action.
      const deliberate = chaos.some((c) => brokerDownChaos.has(c.action) && p.atMs >= c.atMs - intervalMs && p.atMs <= (c.endMs ?? Infinity) + intervalMs);
      if (!deliberate) {
        signs.push(`the embedded broker's process was gone at ${formatSeconds(p.atMs)} into the step, and no broker chaos of the scenario had stopped it`);
        break;
      }
    }
  }

  const hold = steadyPoints(result, intervalMs);
  if (hold.length >= 2 && offeredRate > 0) {
    const window = hold.slice(-Math.max(2, Math.floor(hold.length / 4)));
    const windowStartMs = window[0]!.atMs - intervalMs;
    const seconds = (window.length * intervalMs) / 1000;
    const silent = window.every((p) => p.deliveredPerSec === 0);
    const pace = Math.max(0, ...result.timeline.filter((p) => p.atMs <= windowStartMs).map((p) => p.deliveredPerSec));
    const chaosInHold = chaos.some((c) => (c.endMs ?? Infinity) >= result.scenario.phases.rampUpMs);
    if (silent && pace * seconds >= outageMinMissed && !chaosInHold) {
      signs.push(`deliveries stopped: the subscribers had received up to ${msgs(pace)} msg/s earlier in the step, then nothing over the last ${formatSeconds(seconds * 1000)} of the hold while ${msgs(offeredRate)} msg/s were offered`);
    }
  }
  return signs;
}

function formatSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/**
 * `target mqtt://host:1883 is unreachable: ECONNREFUSED.` without runScenario's advice for a single
 * run (check the URL, or omit the target): in a ramp the target answered before, so that advice does not fit.
 */
export function withoutRunAdvice(err: TargetUnreachableError): string {
  return err.problem;
}

/** What a later step's unreachable error says in a ramp: runScenario's problem, with advice that fits a target that answered the steps before. */
export function unreachableInRamp(err: TargetUnreachableError): string {
  return err.advice === '' ? err.message : `${err.problem} It answered the steps before, so it went down or stopped accepting connections since; check the broker and its log.`;
}

/**
 * Every sign that the target stopped answering during the step just run (module comment): outageSigns,
 * then what is checked once the step is over: whether the --broker-pid process still exists and whether
 * the target still accepts a connection. [] when the target was there throughout.
 */
export async function findOutage(result: RunResult, scenario: Scenario, brokerPid: number | undefined, intervalMs = 1000): Promise<string[]> {
  const signs = outageSigns(result, expectedPublishRates(scenario).total, intervalMs);
  if (brokerPid !== undefined && process.platform === 'linux' && !new PidUsageSampler(brokerPid).exists()) {
    signs.push(`the broker process (--broker-pid ${brokerPid}) is gone after the step`);
  }
  if (scenario.target !== null) {
    try {
      await checkReachable(scenario.target);
    } catch (err) {
      if (!(err instanceof TargetUnreachableError)) throw err;
      signs.push(`after the step, ${withoutRunAdvice(err).replace(/\.$/, '')}`);
    }
  }
  return signs;
}

// ------------------------------------------------------------------------------------------ the ramp

/** What the ramp is about to run. */
export interface StepStart {
  index: number;
  /** Planned steps (refinement steps come after them). */
  planned: number;
  refining: boolean;
  devices: number;
  offeredRate: number;
  rampUpMs: number;
  holdMs: number;
}

export interface CapacityOptions {
  schedule: RampSchedule;
  holdMs: number;
  /** The SLO as given and parsed (parseSlo). */
  slo: { text: string; specs: AssertionSpec[] };
  /** Bisection steps after a broken SLO (0: none). */
  refine?: number;
  workers: number;
  /** Capacity report folder (step-<k>/run.json inside it); null: write nothing. */
  reportDir: string | null;
  signal?: AbortSignal;
  brokerPid?: number;
  brokerPersistence?: 'sqlite' | 'memory';
  workerFile?: string;
  snapshotIntervalMs?: number;
  /** Extrapolate the cost model to this many devices. */
  targetDevices?: number;
  shardLimits: { fileDescriptorsPerProcess: number; cpuCoresPerShard: number; memoryBytesPerShard: number };
  stability?: Partial<StabilityRule>;
  onStepStart?: (step: StepStart) => void;
  onStepEnd?: (step: CapacityStep, result: RunResult) => void;
  /** Events of a step's run (errors, chaos), with the step index. */
  onEvent?: (stepIndex: number, event: RunEvent) => void;
  now?: () => Date;
  /** Runs one step: runScenario. Unit tests of the loop pass a synthetic one; everything else uses the default. */
  runner?: typeof runScenario;
}

export interface CapacityOutcome {
  result: CapacityResult;
  /** Where capacity.json went (null without a report). */
  jsonPath: string | null;
  /** Report files that could not be written. */
  problems: string[];
  /** With stopReason 'error': what the failed step threw (result.error has its message), for the CLI to print; absent after an outage, where nothing threw. */
  stepFailure?: unknown;
}

/** Why a step produced no CapacityStep: the ramp stops with this reason and detail. */
interface StepStop {
  stop: CapacityStopReason;
  detail: string;
  /** With stop 'error'. */
  error?: CapacityStepError;
  cause?: unknown;
}

function stepReporter(index: number, onEvent: CapacityOptions['onEvent']): Reporter {
  return { start() {}, phase() {}, point() {}, event: (e) => onEvent?.(index, e), finish() {} };
}

function stepFromRun(index: number, scenario: Scenario, result: RunResult, slo: AssertionSpec[], intervalMs: number, rule: StabilityRule, runJson: string | undefined): CapacityStep {
  const assertions: AssertionResult[] = evaluateAssertions(slo, result);
  const judgement = judgeStability(result, intervalMs, rule);
  const usage = stepUsage(result);
  const offeredRate = expectedPublishRates(scenario).total;
  const generator = judgeGenerator(result, offeredRate, intervalMs);
  const e2e = result.latency['e2e'];
  const step: CapacityStep = {
    index,
    devices: rampedDevices(scenario),
    offeredRate,
    publishedPerSec: judgement.publishedPerSec,
    deliveredPerSec: judgement.deliveredPerSec,
    e2eP99Ms: e2e !== undefined && e2e.count > 0 ? e2e.p99 : null,
    slo: assertions,
    sloMet: assertions.every((a) => a.passed),
    stable: judgement.stable,
    generatorSaturated: generator.saturated,
    generatorReasons: generator.reasons,
    simulator: usage.simulator,
  };
  if (judgement.reason !== undefined) step.unstableReason = judgement.reason;
  if (usage.broker !== undefined) step.broker = usage.broker;
  if (runJson !== undefined) step.runJson = runJson;
  return step;
}

/**
 * Runs the ramp: the planned steps until one stops it, then the refinement steps, then the knee, the
 * cost model and the extrapolation; writes capacity.json and report.html when reportDir is set.
 * Errors of the first step (unreachable target, a setup problem, anything the run throws) are thrown as
 * runScenario throws them; later ones end the ramp with the steps done (stop reason `error`, or
 * `generator-saturated` when the simulator cannot hold the step on this machine). An outage during any
 * step, the first included, ends it with stop reason `error` too (findOutage).
 */
export async function runCapacityRamp(input: Scenario, options: CapacityOptions): Promise<CapacityOutcome> {
  const now = options.now ?? (() => new Date());
  const startedAt = now();
  const mode = options.schedule.mode;
  const rule = { ...defaultStabilityRule, ...options.stability };
  const intervalMs = options.snapshotIntervalMs ?? 1000;
  const loads = plannedLoads(options.schedule);
  const shape = (load: number): StepShape => ({ mode, load, holdMs: options.holdMs, slo: options.slo.specs });
  // Every planned step is scaled before the first runs, so a scaling problem is reported at once.
  for (const load of loads) scaleScenario(input, shape(load));

  const steps: CapacityStep[] = [];
  /** The load (devices or rate factor) each step ran at, by step index. */
  const loadOfStep = new Map<number, number>();
  let stopReason: CapacityStopReason | null = null;
  let stopDetail = '';
  /** The step that failed with an error (stop reason 'error'), and what it threw. */
  let stepError: { error: CapacityStepError; cause: unknown } | null = null;
  const aborted = (): boolean => options.signal?.aborted === true;

  /** Runs one step; returns the step, or why none came out of it. */
  const runStep = async (load: number, refining: boolean): Promise<{ step: CapacityStep } | StepStop> => {
    const index = steps.length + 1;
    const scenario = scaleScenario(input, shape(load));
    options.onStepStart?.({
      index,
      planned: loads.length,
      refining,
      devices: rampedDevices(scenario),
      offeredRate: expectedPublishRates(scenario).total,
      rampUpMs: scenario.phases.rampUpMs,
      holdMs: options.holdMs,
    });
    const runOptions: RunOptions = {
      workers: options.workers,
      reporter: stepReporter(index, options.onEvent),
      reportDir: options.reportDir === null ? null : join(options.reportDir, `step-${index}`),
    };
    if (options.signal !== undefined) runOptions.signal = options.signal;
    if (options.brokerPid !== undefined) runOptions.brokerPid = options.brokerPid;
    if (options.brokerPersistence !== undefined) runOptions.brokerPersistence = options.brokerPersistence;
    if (options.workerFile !== undefined) runOptions.workerFile = options.workerFile;
    if (options.snapshotIntervalMs !== undefined) runOptions.snapshotIntervalMs = options.snapshotIntervalMs;
    const what = `${refining ? 'refinement step' : 'step'} ${index} (${describeLoad(mode, scenario)})`;
    let outcome: { step: CapacityStep; result: RunResult } | null = null;
    try {
      const { result } = await (options.runner ?? runScenario)(scenario, runOptions);
      if (result.outcome !== 'aborted' && !aborted()) {
        outcome = { step: stepFromRun(index, scenario, result, options.slo.specs, intervalMs, rule, options.reportDir === null ? undefined : `step-${index}/run.json`), result };
      }
    } catch (err) {
      // Before any step, the caller reports it (exit 3, 2 or 4): nothing was measured. Later, the ramp
      // ends with the steps done, which are still judged and reported.
      if (steps.length === 0 && !refining) throw err;
      const message = err instanceof Error ? err.message : String(err);
      if (aborted()) return { stop: 'aborted', detail: `interrupted during ${what}; that step is left out (it ended with an error: ${message})` };
      // A broker measured by pid that exited makes runScenario refuse the pid: the target went away.
      const brokerGone = options.brokerPid !== undefined && process.platform === 'linux' && !new PidUsageSampler(options.brokerPid).exists();
      if (err instanceof RunSetupError && !brokerGone) {
        return { stop: 'generator-saturated', detail: `${what} cannot run on this machine: ${message} The simulator, not the target, is the limit: the knee is a lower bound.` };
      }
      const unreachable = err instanceof TargetUnreachableError || brokerGone;
      const unreachableMessage = err instanceof TargetUnreachableError ? unreachableInRamp(err) : message;
      const error: CapacityStepError = {
        step: index,
        refining,
        devices: rampedDevices(scenario),
        offeredRate: expectedPublishRates(scenario).total,
        kind: unreachable ? 'target-unreachable' : 'internal',
        message: brokerGone && !(err instanceof TargetUnreachableError) ? `the broker process (--broker-pid ${options.brokerPid}) is gone: ${message}` : unreachable ? unreachableMessage : message,
      };
      return { stop: 'error', detail: `${what} failed${unreachable ? ' (the target became unreachable)' : ''}, so it measured nothing: ${error.message}`, error, cause: err };
    }
    if (outcome === null) {
      return { stop: 'aborted', detail: `interrupted during ${what}; that step is left out${runOptions.reportDir ? ` (its partial run.json is in step-${index}/)` : ''}` };
    }
    const { step, result } = outcome;
    // An outage is not a capacity limit: the step is left out, whatever its numbers say (module comment).
    const outage = await findOutage(result, scenario, options.brokerPid, intervalMs);
    if (outage.length > 0) {
      const error: CapacityStepError = {
        step: index,
        refining,
        devices: step.devices,
        offeredRate: step.offeredRate,
        kind: 'target-unreachable',
        message: `the target stopped answering during ${refining ? 'refinement step' : 'step'} ${index}: ${outage.join('; ')}`,
        duringStep: true,
        ...(step.runJson !== undefined ? { runJson: step.runJson } : {}),
      };
      const where = step.runJson === undefined ? '' : ` (its run.json is in step-${index}/)`;
      return { stop: 'error', detail: `${what} ran into an outage, not a capacity limit, so it is left out${where}: ${error.message}`, error };
    }
    steps.push(step);
    loadOfStep.set(index, load);
    options.onStepEnd?.(step, result);
    return { step };
  };

  for (const load of loads) {
    if (aborted()) {
      stopReason = 'aborted';
      stopDetail = `interrupted after ${steps.length} step(s)`;
      break;
    }
    const outcome = await runStep(load, false);
    if ('stop' in outcome) {
      stopReason = outcome.stop;
      stopDetail = outcome.detail;
      if (outcome.error !== undefined) stepError = { error: outcome.error, cause: outcome.cause };
      break;
    }
    const reason = stopReasonFor(outcome.step);
    if (reason !== null) {
      stopReason = reason;
      stopDetail = `step ${outcome.step.index} (${describeStep(mode, outcome.step)}): ${describeFailure(outcome.step)}`;
      if (reason === 'generator-saturated') stopDetail += '. The simulator, not the target, was the limit: the knee is a lower bound (add --workers, or split the load over machines with mqtt-sim run --shard)';
      break;
    }
  }
  if (stopReason === null) {
    stopReason = 'max-steps';
    stopDetail = `all ${loads.length} planned steps met the SLO and settled: the knee is at least the last one; ramp further (--max-steps, --step, --factor) to find where it breaks`;
  }

  // Bisection between the last good load and the first bad one.
  const refine = options.refine ?? 0;
  if (refine > 0 && stopReason === 'slo-broken' && steps.length > 0) {
    const knee0 = chooseKnee(steps, mode);
    const bad = steps.find((s) => !isGoodStep(s));
    if (knee0 !== null && bad !== undefined) {
      let lo = loadOfStep.get(knee0.index)!;
      let hi = loadOfStep.get(bad.index)!;
      let ran = 0;
      let ended: StepStop | null = null;
      for (let r = 0; r < refine && !aborted(); r++) {
        const mid = mode === 'devices' ? Math.round((lo + hi) / 2) : roundFactor((lo + hi) / 2);
        if (mid <= lo || mid >= hi) break;
        const outcome = await runStep(mid, true);
        if ('stop' in outcome) {
          ended = outcome;
          break;
        }
        ran++;
        if (outcome.step.generatorSaturated) break;
        if (isGoodStep(outcome.step)) lo = mid;
        else hi = mid;
      }
      if (ran > 0) stopDetail += `; ${ran} refinement step(s) narrowed the knee to between ${describeLoadValue(mode, lo)} and ${describeLoadValue(mode, hi)}`;
      if (ended !== null) {
        // The SLO broke already, so the knee stands; the stop reason says why the bisection ended early.
        if (ended.stop === 'aborted' || ended.stop === 'error') stopReason = ended.stop;
        stopDetail += `; then ${ended.detail}`;
        if (ended.error !== undefined) stepError = { error: ended.error, cause: ended.cause };
      }
    }
  }

  const knee = chooseKnee(steps, mode);
  const costModel = fitCostModel(steps, knee?.index ?? null);
  const result: CapacityResult = {
    schemaVersion: capacityResultSchemaVersion,
    tool: { name: 'mqtt-sim', version: packageVersion() },
    scenario: { name: input.name, ...(input.sourceFile !== undefined ? { sourceFile: input.sourceFile } : {}) },
    slo: options.slo.text,
    target: {
      embedded: input.target === null,
      urls: input.target?.urls ?? [],
      ...(options.brokerPid !== undefined ? { brokerPid: options.brokerPid } : {}),
    },
    startedAt: startedAt.toISOString(),
    finishedAt: now().toISOString(),
    steps,
    stopReason,
    stopDetail,
    ...(stepError !== null ? { error: stepError.error } : {}),
    knee: knee === null ? null : { step: knee.index, devices: knee.devices, offeredRate: knee.offeredRate, deliveredPerSec: knee.deliveredPerSec },
    costModel,
  };
  if (options.targetDevices !== undefined) result.extrapolation = extrapolate(costModel, options.targetDevices, options.shardLimits);

  const failure = stepError === null ? {} : { stepFailure: stepError.cause };
  if (options.reportDir === null) return { result, jsonPath: null, problems: [], ...failure };
  const written = writeCapacityReport(options.reportDir, result);
  return { result, jsonPath: written.jsonPath, problems: written.problems, ...failure };
}

function describeLoadValue(mode: RampMode, load: number): string {
  return mode === 'devices' ? `${load.toLocaleString('en-US')} devices` : `${load}× the scenario's rate`;
}

function describeLoad(mode: RampMode, scenario: Scenario): string {
  return describeStepValues(mode, rampedDevices(scenario), expectedPublishRates(scenario).total);
}

function describeStep(mode: RampMode, step: CapacityStep): string {
  return describeStepValues(mode, step.devices, step.offeredRate);
}

function describeStepValues(mode: RampMode, devices: number, offeredRate: number): string {
  const rate = `${msgs(offeredRate)} msg/s offered`;
  return mode === 'devices' ? `${devices.toLocaleString('en-US')} devices, ${rate}` : `${rate} by ${devices.toLocaleString('en-US')} devices`;
}
