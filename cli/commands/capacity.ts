/**
 * `mqtt-sim capacity SCENARIO --slo "latency.e2e.p99<250ms,qos1.lost==0"`: ramps the scenario's devices
 * (or publish rate) step by step, each step an ordinary run held until it settles, stops when the SLO
 * breaks or the simulator saturates, and reports the knee (the largest load that met the SLO), the
 * cost per device and, with --target-devices, what a fleet of that size would need.
 * Exit codes (capacityExitCode): 0 a knee was found (or every step passed), 1 no step met the SLO (or the
 * ramp was interrupted), 2 bad flags or scenario, 3 target unreachable, 4 internal error. A step after the
 * first that fails with an error, or any step during which the target stopped answering (stop reason
 * `error`), still gets the report of the steps before it written, then exits 3 when the target became
 * unreachable or stopped answering and 4 otherwise.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { formatCapacityText } from '../../simulator/capacity/cost-model.js';
import { parseSlo, plannedLoads, rampedFleets, RampSetupError, runCapacityRamp, scaleScenario, type CapacityOptions, type RampMode, type RampSchedule } from '../../simulator/capacity/ramp.js';
import type { CapacityResult, CapacityStep } from '../../simulator/capacity/types.js';
import { fileLimit } from '../../simulator/orchestrator/environment.js';
import { RunSetupError, TargetUnreachableError } from '../../simulator/orchestrator/run.js';
import { reportDirFor } from '../../simulator/report/write-run.js';
import { loadScenario, ScenarioError } from '../../simulator/scenario/load.js';
import { formatDuration, parseDuration } from '../../simulator/scenario/units.js';
import type { CliIo, CommandContext } from '../context.js';
import { ExitCode, UserError, type ExitCodeValue } from '../exit-codes.js';

export interface CapacityArgs {
  scenario: string;
  slo: string;
  ramp: RampMode;
  start?: number;
  step?: number;
  factor?: number;
  'max-steps': number;
  hold: string;
  refine: number;
  target?: string[];
  'broker-pid'?: number;
  persistence: 'sqlite' | 'memory';
  'target-devices'?: number;
  'shard-cores': number;
  'shard-memory': string;
  workers?: number;
  seed?: number;
  'report-dir'?: string;
  /** --no-report sets it false. */
  report?: boolean;
  json?: boolean;
}

/** Shortest hold accepted: two snapshot intervals, so the second half of the hold has a point to judge. */
const minHoldMs = 2000;
/** Error events of one step passed on to stderr; the rest are in the step's run.json. */
const maxEventsPerStep = 5;

export function capacityCommandBuilder(yargs: Argv): Argv<CapacityArgs> {
  return yargs
    .usage(
      '$0 capacity <scenario> --slo SLO [options]\n\n' +
        'Finds the knee: runs the scenario in steps of growing load (each step an ordinary run: ramp-up at the fleets\' connect rate, then --hold), ' +
        'judges every step against the SLO and whether it settled (deliveries keep pace with publishes, latency stops climbing), ' +
        'and stops at the first step that breaks the SLO, does not settle, or saturates the simulator itself. ' +
        'The knee is the largest step that met the SLO. Prints the step table, the cost per device and, with --target-devices, an extrapolation; ' +
        'writes capacity.json, report.html and each step\'s run.json (step-<k>/).\n\n' +
        'The SLO replaces the scenario\'s expect: list; its chaos timeline applies to every step from the step\'s start. ' +
        'Consumers (and device fleets that only subscribe) keep their count in every step. See docs/capacity.md.',
    )
    .positional('scenario', { type: 'string', describe: 'Scenario YAML file (see docs/scenarios.md)', demandOption: true })
    .option('slo', { type: 'string', demandOption: true, describe: 'Comma-separated assertions every step must meet, in the syntax of expect: (e.g. "latency.e2e.p99<250ms,qos1.lost==0")' })
    .option('ramp', { choices: ['devices', 'rate'] as const, default: 'devices' as const, describe: 'What grows: the devices of the fleets that publish, or their publish rate (devices fixed)' })
    .option('start', { type: 'number', describe: 'Load of the first step: devices (--ramp devices) or a rate factor (--ramp rate, 1 = the scenario\'s rate)', defaultDescription: "the scenario's own (its devices, or 1)" })
    .option('step', { type: 'number', describe: 'Load added per step (devices, or rate factor)', defaultDescription: '--start (steps of 1×, 2×, 3× the start)' })
    .option('factor', { type: 'number', describe: 'Multiply the load by this much per step instead (> 1, e.g. 1.5); not with --step' })
    .option('max-steps', { type: 'number', default: 8, describe: 'Most planned steps' })
    .option('hold', { type: 'string', default: '30s', describe: 'Steady phase of each step (after its ramp-up); stability is judged on its second half' })
    .option('refine', { type: 'number', default: 0, describe: 'Bisection steps between the last good and the first bad step once the SLO breaks' })
    .option('target', { type: 'string', array: true, describe: 'Broker URL(s) to test instead of the scenario target; without one, a fresh embedded reference broker runs each step' })
    .option('broker-pid', { type: 'number', describe: 'Pid of the local broker process a --target ramp tests: its CPU and RSS go into the cost model, as the embedded broker\'s do' })
    .option('persistence', { choices: ['sqlite', 'memory'] as const, default: 'sqlite' as const, describe: 'Store of the embedded broker (ignored with a target)' })
    .option('target-devices', { type: 'number', describe: 'Extrapolate the cost model to a fleet of this many devices: shards, CPU and memory' })
    .option('shard-cores', { type: 'number', default: 1, describe: 'CPU cores one simulator shard (process) may use, for the extrapolation' })
    .option('shard-memory', { type: 'string', default: '2GiB', describe: 'Memory one simulator shard may use, for the extrapolation (e.g. 512MiB, 4GiB)' })
    .option('workers', { type: 'number', describe: 'Worker threads (shards) of each step', defaultDescription: `${availableParallelism()} (the CPUs of this machine)` })
    .option('seed', { type: 'number', describe: 'Seed of every random draw (overrides the scenario seed); every step uses it' })
    .option('report-dir', { type: 'string', describe: 'Folder for capacity.json, report.html and step-<k>/run.json', defaultDescription: 'reports/<scenario>-capacity-<timestamp>' })
    .option('report', { type: 'boolean', default: true, describe: 'Write the reports (--no-report: print only)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the capacity result as JSON on stdout instead of the text summary (progress stays on stderr)' })
    .example('$0 capacity scenarios/smoke.yaml --slo "latency.e2e.p99<250ms,qos1.lost==0"', 'ramp 1×, 2×, 3× ... the smoke scenario\'s devices against the embedded broker')
    .example('$0 capacity fleet.yaml --slo "latency.e2e.p99<500ms" --start 1000 --factor 1.5 --hold 1m --target mqtt://broker:1883', '1,000, 1,500, 2,250 ... devices against your broker')
    .example('$0 capacity fleet.yaml --slo "qos1.lost==0" --ramp rate --start 1 --step 0.5 --refine 3', 'the same devices publishing 1×, 1.5×, 2× ... as often, then 3 bisection steps')
    .example('$0 capacity fleet.yaml --slo "latency.e2e.p99<250ms" --target-devices 1000000', 'and what a million devices would need')
    .epilogue(
      'Stop reasons: slo-broken (a step broke the SLO or did not settle: the knee is the step before), generator-saturated (the simulator was the limit: the knee is a lower bound), ' +
        'max-steps (every step passed: the knee is at least the last), aborted (Ctrl-C: the report covers the steps done), ' +
        'error (a step after the first failed, e.g. the target went away, or the target stopped answering during a step, an outage and not a capacity limit: ' +
        'the report covers the steps before it, the knee is the largest that passed).\n' +
        'Exit codes: 0 the ramp found a knee (or every step passed), 1 not even the first step met the SLO (or the ramp was interrupted), 2 bad usage or invalid scenario, ' +
        '3 target unreachable (at the start of step 1: nothing written; at a later step, or during any step: after writing the report of the steps before it), ' +
        '4 internal error (likewise: a later step that failed with any other error exits 4 after writing the report).',
    ) as unknown as Argv<CapacityArgs>;
}

const byteUnits: Record<string, number> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tib: 1024 ** 4,
};

/** `2GiB`, `512MiB`, `1.5G`, `4096` (bytes) → bytes; null when it is not a size. */
export function parseByteSize(text: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([A-Za-z]*)\s*$/.exec(text);
  if (match === null) return null;
  const unit = match[2]!.toLowerCase();
  const factor = unit === '' ? 1 : byteUnits[unit];
  if (factor === undefined) return null;
  const bytes = Math.floor(Number(match[1]) * factor);
  return bytes > 0 ? bytes : null;
}

function wholeAtLeast(name: string, value: number | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < min) throw new UserError(`--${name}: expected a whole number of at least ${min}, got ${String(value)}`, ExitCode.BadUsage);
  return value;
}

function positive(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!(typeof value === 'number' && Number.isFinite(value) && value > 0)) throw new UserError(`--${name}: expected a number above 0, got ${String(value)}`, ExitCode.BadUsage);
  return value;
}

/** The ramp schedule from the flags; `own` is the scenario's own load (its devices, or 1). */
export function scheduleFromArgs(args: Pick<CapacityArgs, 'ramp' | 'start' | 'step' | 'factor' | 'max-steps'>, own: number): RampSchedule {
  const mode = args.ramp;
  const maxSteps = wholeAtLeast('max-steps', args['max-steps'], 1)!;
  if (maxSteps > 100) throw new UserError(`--max-steps: at most 100 steps, got ${maxSteps}; a ramp that long needs bigger steps (--step, --factor)`, ExitCode.BadUsage);
  if (args.step !== undefined && args.factor !== undefined) throw new UserError('--step and --factor both given: choose one (--step adds load per step, --factor multiplies it)', ExitCode.BadUsage);
  const start = mode === 'devices' ? wholeAtLeast('start', args.start, 1) ?? own : positive('start', args.start) ?? own;
  const schedule: RampSchedule = { mode, start, maxSteps };
  if (args.factor !== undefined) {
    if (!(Number.isFinite(args.factor) && args.factor > 1)) throw new UserError(`--factor: expected a number above 1 (e.g. 1.5), got ${String(args.factor)}`, ExitCode.BadUsage);
    schedule.factor = args.factor;
  } else if (args.step !== undefined) {
    schedule.step = mode === 'devices' ? wholeAtLeast('step', args.step, 1)! : positive('step', args.step)!;
  }
  return schedule;
}

function formatLoad(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function stepResultLine(step: CapacityStep): string {
  const rates = `${formatLoad(step.publishedPerSec)} published/s, ${formatLoad(step.deliveredPerSec)} delivered/s${step.e2eP99Ms === null || step.e2eP99Ms === undefined ? '' : `, e2e p99 ${Math.round(step.e2eP99Ms * 10) / 10} ms`}`;
  const problems: string[] = [];
  for (const a of step.slo) if (!a.passed) problems.push(`SLO broken: ${a.message}`);
  if (!step.stable) problems.push(`did not settle: ${step.unstableReason ?? 'unknown reason'}`);
  if (step.generatorSaturated) problems.push(`generator saturated: ${step.generatorReasons.join('; ') || 'schedule not kept'}`);
  return problems.length === 0 ? `step ${step.index}: SLO met, settled; ${rates}` : `step ${step.index}: ${problems.join('; ')}; ${rates}`;
}

/**
 * The exit code of a finished ramp: 3 or 4 when a step failed with an error (the target became
 * unreachable, or anything else), 1 when interrupted or when no step was good, else 0.
 */
export function capacityExitCode(result: Pick<CapacityResult, 'stopReason' | 'knee' | 'error'>): ExitCodeValue {
  if (result.stopReason === 'error') return result.error?.kind === 'target-unreachable' ? ExitCode.Unreachable : ExitCode.Internal;
  if (result.stopReason === 'aborted') return ExitCode.AssertionFailed;
  return result.knee === null ? ExitCode.AssertionFailed : ExitCode.Ok;
}

function isSystemError(err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 3) return false;
  return typeof (err as NodeJS.ErrnoException).code === 'string' || isSystemError(err.cause, depth + 1);
}

/** The last stderr lines about a step that failed with an error: what happened and, for a likely bug, what to report. */
export function stepFailureLines(result: CapacityResult, reportDir: string | null, cause: unknown): string[] {
  const e = result.error;
  if (result.stopReason !== 'error' || e === undefined) return [];
  const step = `${e.refining ? 'refinement step' : 'step'} ${e.step}`;
  const covers = `${reportDir === null ? 'result' : 'report'} covers the ${result.steps.length} step${result.steps.length === 1 ? '' : 's'} before it`;
  if (e.duringStep === true) {
    const run = e.runJson === undefined ? '' : ` (its run: ${reportDir === null ? e.runJson : join(reportDir, e.runJson)})`;
    return [`${step} is left out, an outage is not a capacity limit: ${e.message}${run}`, `the ${covers}; exit code 3 (target unreachable)`];
  }
  if (e.kind === 'target-unreachable') {
    return [`${step} could not reach the target, so the ramp stopped there: ${e.message}`, `the ${covers}; exit code 3 (target unreachable)`];
  }
  const lines = [`${step} failed with an error, so the ramp stopped there: ${e.message}`, `the ${covers}; exit code 4 (internal error)`];
  // A system error (ENOSPC, EMFILE, ...), also one wrapped as the cause (a run report that cannot be
  // written), is this machine's problem; anything else is likely a bug, whose stack helps.
  if (!isSystemError(cause)) {
    const where = reportDir === null ? '' : ` and ${reportDir}`;
    lines.push(`if this is not a problem of this machine, please report it with the command you ran${where}:\n${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}`);
  }
  return lines;
}

/** Runs the ramp for the CLI; returns the exit code. */
export async function runCapacity(args: CapacityArgs, io: CliIo, signal?: AbortSignal): Promise<number> {
  const holdParsed = parseDuration(args.hold);
  if (!holdParsed.ok) throw new UserError(`--hold: ${holdParsed.message}`, ExitCode.BadUsage);
  if (holdParsed.value < minHoldMs) throw new UserError(`--hold: at least ${formatDuration(minHoldMs)} (stability is judged on the second half of the hold), got ${args.hold}; 30s or more gives a sound judgement`, ExitCode.BadUsage);
  const refine = wholeAtLeast('refine', args.refine, 0)!;
  if (refine > 10) throw new UserError(`--refine: at most 10 bisection steps, got ${refine}`, ExitCode.BadUsage);
  const workers = wholeAtLeast('workers', args.workers, 1) ?? availableParallelism();
  const brokerPid = wholeAtLeast('broker-pid', args['broker-pid'], 1);
  const targetDevices = wholeAtLeast('target-devices', args['target-devices'], 1);
  const shardCores = positive('shard-cores', args['shard-cores'])!;
  const shardMemory = parseByteSize(String(args['shard-memory']));
  if (shardMemory === null) throw new UserError(`--shard-memory: expected a size like 512MiB, 2GiB or 4G, got ${JSON.stringify(args['shard-memory'])}`, ExitCode.BadUsage);
  if (args.seed !== undefined && !Number.isSafeInteger(args.seed)) throw new UserError(`--seed: expected a whole number, got ${String(args.seed)}`, ExitCode.BadUsage);

  let scenario;
  try {
    const overrides: { seed?: number; targetUrls?: string[] } = {};
    if (args.seed !== undefined) overrides.seed = args.seed;
    if (args.target !== undefined && args.target.length > 0) overrides.targetUrls = args.target;
    scenario = loadScenario(args.scenario, overrides);
  } catch (err) {
    if (err instanceof ScenarioError) throw new UserError(`${args.scenario} is not a valid scenario:\n${err.message}`, ExitCode.BadUsage);
    throw err;
  }
  let slo;
  let schedule: RampSchedule;
  try {
    slo = parseSlo(args.slo, scenario.fleets.map((f) => f.name));
    const ramped = rampedFleets(scenario);
    schedule = scheduleFromArgs(args, args.ramp === 'devices' ? ramped.reduce((n, f) => n + f.count, 0) : 1);
    // Scales the first step now, so a scenario that cannot be ramped fails before anything runs.
    scaleScenario(scenario, { mode: schedule.mode, load: schedule.start, holdMs: holdParsed.value, slo });
  } catch (err) {
    if (err instanceof RampSetupError) throw new UserError(err.message, ExitCode.BadUsage);
    throw err;
  }
  const reportDir = args.report === false ? null : (args['report-dir'] ?? reportDirFor(`${scenario.name}-capacity`, new Date()));

  const loads = plannedLoads(schedule);
  const shown = loads.map((l) => (schedule.mode === 'devices' ? formatLoad(l) : `${l}×`)).join(', ');
  io.stderr(`mqtt-sim capacity: ${scenario.name}, ramping ${schedule.mode === 'devices' ? 'devices' : 'the publish rate'}: ${shown}; hold ${formatDuration(holdParsed.value)} per step; SLO ${args.slo}\n`);
  const firstDuration = scaleScenario(scenario, { mode: schedule.mode, load: loads[0]!, holdMs: holdParsed.value, slo }).durationMs;
  const late = scenario.chaos.filter((c) => c.atMs >= firstDuration);
  if (late.length > 0) io.stderr(`mqtt-sim capacity: warning: ${late.length} chaos action(s) start after a step's timeline ends (${formatDuration(firstDuration)} for step 1) and will not happen; lengthen --hold or move them earlier\n`);

  const limit = fileLimit();
  const eventsSeen = new Map<number, number>();
  const options: CapacityOptions = {
    schedule,
    holdMs: holdParsed.value,
    slo: { text: args.slo, specs: slo },
    refine,
    workers,
    reportDir,
    brokerPersistence: args.persistence,
    shardLimits: { fileDescriptorsPerProcess: limit?.hard ?? Infinity, cpuCoresPerShard: shardCores, memoryBytesPerShard: shardMemory },
    onStepStart: (s) => {
      const what = s.refining ? `refinement step ${s.index}` : `step ${s.index}/${s.planned}`;
      io.stderr(`mqtt-sim capacity: ${what}: ${formatLoad(s.devices)} devices, ${formatLoad(s.offeredRate)} msg/s offered (ramp-up ${formatDuration(s.rampUpMs)}, hold ${formatDuration(s.holdMs)})\n`);
    },
    onStepEnd: (step) => io.stderr(`mqtt-sim capacity: ${stepResultLine(step)}\n`),
    onEvent: (index, event) => {
      if (event.level !== 'error') return;
      const seen = (eventsSeen.get(index) ?? 0) + 1;
      eventsSeen.set(index, seen);
      if (seen <= maxEventsPerStep) io.stderr(`mqtt-sim capacity: step ${index}: error: ${event.message}\n`);
      else if (seen === maxEventsPerStep + 1) io.stderr(`mqtt-sim capacity: step ${index}: more errors; see its run.json\n`);
    },
  };
  if (signal !== undefined) options.signal = signal;
  if (brokerPid !== undefined) options.brokerPid = brokerPid;
  if (targetDevices !== undefined) options.targetDevices = targetDevices;

  let outcome;
  try {
    outcome = await runCapacityRamp(scenario, options);
  } catch (err) {
    if (err instanceof TargetUnreachableError) throw new UserError(err.message, ExitCode.Unreachable);
    if (err instanceof RunSetupError || err instanceof RampSetupError) throw new UserError(err.message, ExitCode.BadUsage);
    throw err;
  }
  const { result } = outcome;
  io.stdout(args.json === true ? `${JSON.stringify(result, null, 2)}\n` : formatCapacityText(result));
  for (const problem of outcome.problems) io.stderr(`mqtt-sim capacity: ${problem}\n`);
  if (reportDir !== null) io.stderr(`mqtt-sim capacity: report in ${reportDir} (capacity.json, report.html, step-<k>/run.json)\n`);
  if (result.stopReason === 'aborted') io.stderr('mqtt-sim capacity: the ramp was interrupted; its report covers the steps that ran.\n');
  for (const line of stepFailureLines(result, reportDir, outcome.stepFailure)) io.stderr(`mqtt-sim capacity: ${line}\n`);
  return capacityExitCode(result);
}

async function handler(args: CapacityArgs & Partial<CommandContext>): Promise<void> {
  const io = args.io ?? { stdout: (text: string) => process.stdout.write(text), stderr: (text: string) => process.stderr.write(text) };
  const controller = new AbortController();
  // The first Ctrl-C ends the step in progress gracefully and still writes the report of the steps done;
  // our listeners are then removed, so a second one terminates at once (Node's default).
  const onSignal = (): void => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    io.stderr('\nmqtt-sim capacity: stopping; the report of the steps done is still written (Ctrl-C again quits at once)\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    process.exitCode = await runCapacity(args, io, controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export const capacityCommand: CommandModule<object, CapacityArgs> = {
  command: 'capacity <scenario>',
  describe: 'Ramp the load step by step until the SLO breaks; report the knee, the cost per device and an extrapolation',
  builder: capacityCommandBuilder as CommandModule<object, CapacityArgs>['builder'],
  handler,
};
