/**
 * `mqtt-sim run SCENARIO`: runs a scenario end to end and writes reports/<scenario>-<timestamp>/run.json.
 * Exit codes: 0 every assertion passed, 1 an assertion failed (or the run was interrupted), 2 invalid
 * scenario or flags, 3 target unreachable, 4 internal error.
 */
import { availableParallelism } from 'node:os';
import type { Argv, CommandModule } from 'yargs';
import { RunSetupError, runScenario, TargetUnreachableError } from '../../simulator/orchestrator/run.js';
import { isDeviceChaos } from '../../simulator/orchestrator/chaos.js';
import { defaultWorkersPerProcess, linkToCoordinator, maxProcesses, runLocalProcesses, SliceProcessError, validateProcessCount, type CoordinatorLink } from '../../simulator/orchestrator/local-processes.js';
// Only a type here: ink and React take about half a second to load, which every CLI process (each slice
// of --processes, the embedded broker) would pay; the dashboard is imported when it is chosen.
import type { DashboardReporter } from '../../simulator/dashboard/dashboard-reporter.js';
import { chooseReporter } from '../../simulator/report/choose-reporter.js';
import { createJsonReporter, formatJsonLine } from '../../simulator/report/json-reporter.js';
import { createPlainReporter } from '../../simulator/report/plain-reporter.js';
import type { Reporter } from '../../simulator/report/reporter.js';
import { loadScenario, ScenarioError } from '../../simulator/scenario/load.js';
import type { CommandContext } from '../context.js';
import { ExitCode, UserError } from '../exit-codes.js';

export interface RunArgs {
  scenario: string;
  target?: string[];
  workers?: number;
  seed?: number;
  'report-dir'?: string;
  report?: boolean;
  persistence: 'sqlite' | 'memory';
  'progress-interval': number;
  /** --no-dashboard sets it false. */
  dashboard?: boolean;
  json?: boolean;
  shard?: string;
  'broker-pid'?: number;
  processes?: number;
  /** t=0 as an ISO 8601 time or ms since 1970 (parseStartAtFlag); `stdin` (internal, the slices of --processes): say ready and read it from the parent. */
  'start-at'?: string;
  /** Hidden (the slices of --processes): the parent's embedded broker, the target of a scenario without one. */
  'embedded-url'?: string;
  /** Hidden (the slices of --processes): run only partitions and reconnect storms; the parent runs broker and exec actions. */
  'device-chaos-only'?: boolean;
  'clock-skew-ms'?: number;
}

/** `--shard i/n` → { index: i, count: n } (1 <= i <= n), or a UserError (exit 2). */
export function parseShardFlag(value: string): { index: number; count: number } {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(value);
  if (m === null) throw new UserError(`--shard: expected INDEX/COUNT such as 2/4 (run the 2nd of 4 slices), got "${value}"`, ExitCode.BadUsage);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1) throw new UserError(`--shard ${value}: the number of slices must be at least 1`, ExitCode.BadUsage);
  if (index < 1 || index > count) throw new UserError(`--shard ${value}: the slice index must be from 1 to ${count} (slices are numbered from 1)`, ExitCode.BadUsage);
  return { index, count };
}

/** How late (ready after TIME) a `--start-at TIME` run may still start, anchored at TIME; later, it refuses. */
export const MAX_START_LATE_MS = 10_000;
/** How far ahead `--start-at TIME` may be: further is most likely a mistake (a wrong date or unit). */
export const MAX_START_AHEAD_MS = 24 * 3_600_000;

const startAtExample = 'an ISO 8601 time with a zone such as 2026-11-26T10:00:00Z, or milliseconds since 1970 such as 1795687200000';
const isoTime = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?$/;

/** An ISO 8601 date-time as epoch ms, or a problem (null when the text is not shaped like one). */
function parseIsoTime(value: string): number | string | null {
  const m = isoTime.exec(value);
  if (m === null) return null;
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as [number, number, number, number, number, number];
  const ms = Number((m[7] ?? '').slice(0, 3).padEnd(3, '0'));
  const zone = m[8];
  if (zone === undefined) return `give the time zone: add Z for UTC (${value}Z) or an offset such as +01:00, so every machine reads the same instant`;
  const local = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const back = new Date(local);
  if (hour > 23 || minute > 59 || second > 59 || back.getUTCFullYear() !== year || back.getUTCMonth() !== month - 1 || back.getUTCDate() !== day) return 'no such date or time';
  if (zone === 'Z' || zone === 'z') return local;
  const digits = zone.slice(1).replace(':', '');
  const offsetMin = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || 0);
  if (Number(digits.slice(0, 2)) > 23 || Number(digits.slice(2) || 0) > 59) return `no such time zone offset: ${zone}`;
  return local - (zone.startsWith('-') ? -1 : 1) * offsetMin * 60_000;
}

function formatSeconds(ms: number): string {
  if (ms < 60_000) return `${(Math.ceil(ms / 100) / 10).toFixed(1)} s`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return ms < 172_800_000 ? `${(ms / 3_600_000).toFixed(1)} h` : `${Math.round(ms / 86_400_000)} days`;
}

/**
 * Why starting at `timeMs` when it is `nowMs` is refused (too late to join the others), or null; `ready`:
 * asked when the run is ready (consumers subscribed), not when it reads the flag.
 */
export function startLateProblem(flag: string, timeMs: number, nowMs: number, ready = false): string | null {
  const lateMs = nowMs - timeMs;
  if (lateMs <= MAX_START_LATE_MS) return null;
  const when = ready ? `this run was ready (its consumers subscribed) only ${formatSeconds(lateMs)} after that time` : `that is ${formatSeconds(lateMs)} ago`;
  return (
    `--start-at ${flag}: ${when} (${new Date(timeMs).toISOString()}), more than the ${MAX_START_LATE_MS / 1000} s a run may start late: ` +
    'its timeline would begin that far behind the shared t=0 of the other slices. Give every slice a later --start-at (time enough for each to start and connect its consumers) and start them again.'
  );
}

/**
 * `--start-at TIME` → t=0 in ms since 1970, or a UserError (exit 2). TIME is an ISO 8601 time with a zone
 * (2026-11-26T10:00:00Z, 2026-11-26T11:00:00+01:00) or milliseconds since 1970; it must lie no more than
 * MAX_START_LATE_MS before `nowMs` and no more than MAX_START_AHEAD_MS after it.
 */
export function parseStartAtFlag(value: string, nowMs: number): number {
  const text = value.trim();
  let timeMs: number;
  if (/^\d+$/.test(text)) {
    timeMs = Number(text);
    if (!Number.isSafeInteger(timeMs)) throw new UserError(`--start-at ${value}: too large for milliseconds since 1970; expected ${startAtExample}`, ExitCode.BadUsage);
    // Seconds since 1970 (date +%s) read as milliseconds fall in January 1970.
    if (timeMs < 1e11 && Math.abs(timeMs * 1000 - nowMs) <= MAX_START_AHEAD_MS) {
      throw new UserError(`--start-at ${value}: this looks like seconds since 1970; --start-at takes milliseconds (${text}000) or an ISO time such as ${new Date(timeMs * 1000).toISOString()}`, ExitCode.BadUsage);
    }
  } else {
    const iso = parseIsoTime(text);
    if (iso === null) throw new UserError(`--start-at: expected ${startAtExample}, got "${value}"`, ExitCode.BadUsage);
    if (typeof iso === 'string') throw new UserError(`--start-at ${value}: ${iso}`, ExitCode.BadUsage);
    timeMs = iso;
  }
  const late = startLateProblem(value, timeMs, nowMs);
  if (late !== null) throw new UserError(late, ExitCode.BadUsage);
  if (timeMs - nowMs > MAX_START_AHEAD_MS) {
    throw new UserError(`--start-at ${value}: that is ${formatSeconds(timeMs - nowMs)} from now (${new Date(timeMs).toISOString()}), more than the ${MAX_START_AHEAD_MS / 3_600_000} h a run may wait: check the date and the unit (milliseconds), and start the slices closer to the time`, ExitCode.BadUsage);
  }
  return timeMs;
}

export function runCommandBuilder(yargs: Argv): Argv<RunArgs> {
  return yargs
    .usage('$0 run <scenario> [options]\n\nRuns a scenario: devices connect, publish and subscribe on worker threads against the target (the embedded reference broker when the scenario names none), a live dashboard on a terminal (progress lines every few seconds otherwise), a summary at the end and reports/<scenario>-<timestamp>/run.json. With --processes N the devices run in N local processes on one timeline (past one process\'s file limit) and their results are merged into one run.json.')
    .positional('scenario', { type: 'string', describe: 'Scenario YAML file (see docs/scenarios.md)', demandOption: true })
    .option('target', { type: 'string', array: true, describe: 'Broker URL(s) to test instead of the scenario target (mqtt://, mqtts://, ws://, wss://); several: devices are spread over them' })
    .option('workers', { type: 'number', describe: 'Worker threads (shards)', defaultDescription: `${availableParallelism()} (the CPUs of this machine)` })
    .option('seed', { type: 'number', describe: 'Seed of every random draw; the same seed replays the same run (overrides the scenario seed)' })
    .option('report-dir', { type: 'string', describe: 'Folder for run.json', defaultDescription: 'reports/<scenario>-<timestamp>' })
    .option('report', { type: 'boolean', default: true, describe: 'Write run.json (--no-report: print only)' })
    .option('persistence', { choices: ['sqlite', 'memory'] as const, default: 'sqlite' as const, describe: 'Store of the embedded broker (ignored with a target)' })
    .option('progress-interval', { type: 'number', default: 5, describe: 'Seconds between progress lines' })
    .option('dashboard', { type: 'boolean', default: true, describe: 'Live terminal dashboard when stdout is a terminal and CI is unset (--no-dashboard: plain progress lines)' })
    .option('json', { type: 'boolean', default: false, describe: 'NDJSON on stdout: one {"type": ...} object per phase, timeline point and event, then the result; the summary goes to stderr' })
    .option('shard', { type: 'string', describe: 'Run one slice INDEX/COUNT of the devices (1-based, e.g. 2/4): those whose device number d has d % COUNT == INDEX-1; needs --target; combine the slices with mqtt-sim merge' })
    .option('processes', { type: 'number', describe: `Run the devices in N local simulator processes (1-${maxProcesses}) on one timeline, for more devices than one process's file limit allows: each runs one slice (--shard i/N) against the same broker (an embedded broker is started once, by this process, which also runs the broker and exec chaos), and their run.json files (<report-dir>/shards/) are merged into one run.json`, defaultDescription: 'one process' })
    .option('start-at', { type: 'string', describe: `One t=0 for slices started separately (--shard on several machines or pods): give each the same TIME, an ISO 8601 time with a zone (2026-11-26T10:00:00Z) or ms since 1970. The run connects its consumers, waits for TIME and starts its timeline exactly at TIME; ready up to ${MAX_START_LATE_MS / 1000} s late it starts at once on that t=0 (with a warning and a note in run.json), later it exits 2, as it does for TIME more than ${MAX_START_AHEAD_MS / 3_600_000} h ahead. Not with --processes (the value stdin is internal to it)`, defaultDescription: 'when the consumers are subscribed' })
    .option('embedded-url', { type: 'string', hidden: true, describe: 'Slices of --processes: the URL of the embedded broker the parent process started' })
    .option('device-chaos-only', { type: 'boolean', hidden: true, describe: 'Slices of --processes: run only partitions and reconnect storms; the parent runs broker and exec actions' })
    .option('broker-pid', { type: 'number', describe: 'Pid of the local broker process a --target run tests: its CPU and RSS go into the timeline and reports, as the embedded broker\'s do' })
    // Hidden: a testing aid for merge's clock-offset estimate (a slice that behaves as on a machine whose clock is off).
    .option('clock-skew-ms', { type: 'number', hidden: true, describe: 'Test aid: offset this run\'s clock (stamps, receive times) by MS, as on a machine whose clock is off; mqtt-sim merge should estimate and remove it' })
    .example('$0 run scenarios/pipeline.yaml', 'the flagship pipeline against the embedded broker')
    .example('$0 run scenarios/smoke.yaml --target mqtt://127.0.0.1:1883', 'the smoke scenario against a broker you run')
    .example('$0 run scenarios/smoke.yaml --workers 1 --seed 7 --report-dir out/', 'one worker, a fixed seed, run.json in out/')
    .example('$0 run scenarios/pipeline.yaml --processes 4', 'four simulator processes on this machine, one embedded broker, one merged run.json')
    .example('$0 run s.yaml --target mqtt://broker:1883 --shard 1/2 --start-at 2026-11-26T10:00:00Z', 'slice 1 of 2, its timeline starting at 10:00:00 UTC; run slice 2/2 with the same --start-at elsewhere') as Argv<RunArgs>;
}

const ignorePipeError = (): void => undefined;

function positiveInteger(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 1) throw new UserError(`--${name}: expected a whole number of at least 1, got ${String(value)}`, ExitCode.BadUsage);
  return value;
}

export async function runCommandHandler(args: RunArgs & Partial<CommandContext>): Promise<void> {
  const io = args.io ?? { stdout: (text: string) => process.stdout.write(text), stderr: (text: string) => process.stderr.write(text) };
  const processes = args.processes;
  if (processes !== undefined) {
    const problem = validateProcessCount(processes);
    if (problem !== null) throw new UserError(`--processes: ${problem}`, ExitCode.BadUsage);
    if (args.shard !== undefined) {
      throw new UserError(`--processes ${processes} and --shard ${args.shard} do not go together: --processes N runs every slice on this machine (it gives each process its --shard i/N); --shard i/n runs one slice, for spreading a run over several machines (combine them with mqtt-sim merge). Give one of the two.`, ExitCode.BadUsage);
    }
    if (args['start-at'] !== undefined) {
      throw new UserError(`--processes ${processes} and --start-at do not go together: --processes gives its own processes one t=0 once they are all ready. --start-at TIME is for slices started separately (--shard i/n on several machines or pods, each with the same TIME).`, ExitCode.BadUsage);
    }
    if (args['embedded-url'] !== undefined || args['device-chaos-only'] === true) {
      throw new UserError('--embedded-url and --device-chaos-only are set by --processes for its own processes; leave them out', ExitCode.BadUsage);
    }
  }
  // With --processes, the CPUs are shared out over the processes.
  const workers = positiveInteger('workers', args.workers) ?? (processes === undefined ? availableParallelism() : defaultWorkersPerProcess(availableParallelism(), processes));
  const startAtFlag = args['start-at'] === undefined ? undefined : String(args['start-at']);
  const startAtEpoch = startAtFlag === undefined || startAtFlag === 'stdin' ? undefined : parseStartAtFlag(startAtFlag, Date.now());
  const embeddedUrl = args['embedded-url'];
  if (embeddedUrl !== undefined && args.target !== undefined && args.target.length > 0) {
    throw new UserError('--embedded-url and --target do not go together: --embedded-url is the target a --processes parent gives its slices', ExitCode.BadUsage);
  }
  if (args.seed !== undefined && !Number.isSafeInteger(args.seed)) throw new UserError(`--seed: expected a whole number, got ${String(args.seed)}`, ExitCode.BadUsage);
  if (!(args['progress-interval'] > 0)) throw new UserError(`--progress-interval: expected a number of seconds above 0, got ${String(args['progress-interval'])}`, ExitCode.BadUsage);
  const slice = args.shard === undefined ? undefined : parseShardFlag(String(args.shard));
  let scenario;
  try {
    const overrides: { seed?: number; targetUrls?: string[] } = {};
    if (args.seed !== undefined) overrides.seed = args.seed;
    if (args.target !== undefined && args.target.length > 0) overrides.targetUrls = args.target;
    scenario = loadScenario(args.scenario, overrides);
    if (embeddedUrl !== undefined) {
      if (scenario.target !== null) throw new UserError(`--embedded-url: ${args.scenario} names a target; the parent's embedded broker only stands in for a scenario without one`, ExitCode.BadUsage);
      if (!URL.canParse(embeddedUrl)) throw new UserError(`--embedded-url: expected a URL such as mqtt://127.0.0.1:1883, got "${embeddedUrl}"`, ExitCode.BadUsage);
      // As run.ts targets its own embedded broker; broker chaos stays valid, since the parent performs it.
      scenario = { ...scenario, target: { urls: [embeddedUrl], protocolVersion: 5 as const, connectTimeoutMs: 10_000 } };
    }
  } catch (err) {
    if (err instanceof ScenarioError) throw new UserError(`${args.scenario} is not a valid scenario:\n${err.message}`, ExitCode.BadUsage);
    throw err;
  }
  if (slice !== undefined && scenario.target === null) {
    throw new UserError(`--shard ${slice.index}/${slice.count} needs a target: pass --target URL (or set target in the scenario). Every slice must run against the same broker; without a target each slice would start its own embedded broker.`, ExitCode.BadUsage);
  }

  const controller = new AbortController();
  // The first Ctrl-C stops the run gracefully and still writes the report; our listeners are then
  // removed, so a second one terminates at once (Node's default) if stopping ever hangs.
  let dashboard: DashboardReporter | null = null;
  const onSignal = (): void => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // The dashboard owns the terminal: it shows the notice itself instead of a line written across its frame.
    if (dashboard !== null) dashboard.interrupted();
    else io.stderr('\nmqtt-sim: stopping the run; the report is still written (Ctrl-C again quits at once)\n');
    controller.abort();
  };
  // In the dashboard Ctrl-C is a key press (raw mode), not SIGINT: the first stops the run like SIGINT;
  // the second gives the terminal back and raises SIGINT, which now has no listener and ends the process.
  const onDashboardCtrlC = (): void => {
    if (!controller.signal.aborted) return onSignal();
    dashboard?.close();
    process.kill(process.pid, 'SIGINT');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let link: CoordinatorLink | null = null;
  try {
    const kind = chooseReporter({ isTTY: process.stdout.isTTY, json: args.json === true, noDashboard: args.dashboard === false, env: process.env });
    let reporter: Reporter;
    // A slice of --processes leaves the summary to its parent, which prints the merged one, and skips the
    // result line: the parent reads the slice's run.json, and the line (all of it again) would only fill the pipe.
    if (kind === 'json' && startAtFlag === 'stdin') reporter = createJsonReporter((text) => (text.startsWith('{"type":"result"') ? undefined : io.stdout(text)), () => undefined);
    else if (kind === 'json') reporter = createJsonReporter(io.stdout, io.stderr);
    else if (kind === 'dashboard') {
      const { createDashboardReporter } = await import('../../simulator/dashboard/dashboard-reporter.js');
      reporter = dashboard = createDashboardReporter({ onInterrupt: onDashboardCtrlC });
    }
    else reporter = createPlainReporter(io.stdout, { everyMs: args['progress-interval'] * 1000 });
    const options: Parameters<typeof runScenario>[1] = {
      workers,
      reporter,
      signal: controller.signal,
      brokerPersistence: args.persistence,
    };
    if (slice !== undefined) options.slice = slice;
    const brokerPid = positiveInteger('broker-pid', args['broker-pid']);
    if (brokerPid !== undefined) options.brokerPid = brokerPid;
    if (args['clock-skew-ms'] !== undefined) options.clockSkewMs = args['clock-skew-ms'];
    if (startAtFlag !== undefined && startAtEpoch !== undefined) {
      // Called once the consumers are subscribed: too late by then, the run refuses instead of starting behind the others.
      options.startAt = () => {
        const late = startLateProblem(startAtFlag, startAtEpoch, Date.now(), true);
        return late === null ? Promise.resolve(startAtEpoch) : Promise.reject(new RunSetupError(late));
      };
    }
    if (startAtFlag === 'stdin') {
      // Without its parent a slice's stdout and stderr are broken pipes (EPIPE): it still writes its report.
      process.stdout.on('error', ignorePipeError);
      process.stderr.on('error', ignorePipeError);
      const coordinator = linkToCoordinator({
        input: process.stdin,
        announce: () => io.stdout(formatJsonLine({ type: 'ready', pid: process.pid })),
        onGone: (reason) => {
          io.stderr(`mqtt-sim: ${reason}; stopping this slice\n`);
          controller.abort();
        },
        timeoutMs: (scenario.target?.connectTimeoutMs ?? 10_000) + 120_000,
      });
      link = coordinator;
      options.startAt = () => coordinator.startAt();
    }
    if (args['device-chaos-only'] === true) options.chaosFilter = isDeviceChaos;
    if (args.report === false) options.reportDir = null;
    else if (args['report-dir'] !== undefined) options.reportDir = args['report-dir'];
    const { result, reportError } = processes === undefined
      ? await runScenario(scenario, options)
      : await runLocalProcesses({
          scenarioFile: args.scenario,
          scenario,
          processes,
          workersPerProcess: workers,
          reporter,
          signal: controller.signal,
          brokerPersistence: args.persistence,
          ...(options.reportDir !== undefined ? { reportDir: options.reportDir } : {}),
          ...(brokerPid !== undefined ? { brokerPid } : {}),
          // The dashboard owns the terminal: there the slices' stderr lines become events in it.
          ...(kind === 'dashboard' ? {} : { onSliceStderr: (slice: string, line: string) => io.stderr(`[${slice}] ${line}\n`) }),
        });
    if (reportError !== undefined) {
      // The folder was checked at the start; this is the disk filling up (or the folder going) during the run.
      io.stderr(`mqtt-sim: ${reportError}. run.json was not kept: the summary above is what is left of this run. Free some space or give another --report-dir, and run it again.\n`);
      process.exitCode = ExitCode.Internal;
    } else if (result.outcome === 'aborted') {
      io.stderr('mqtt-sim: the run was interrupted; its report covers the part that ran.\n');
      process.exitCode = ExitCode.AssertionFailed;
    } else if (result.verdict === 'fail') {
      process.exitCode = ExitCode.AssertionFailed;
    } else {
      process.exitCode = ExitCode.Ok;
    }
  } catch (err) {
    if (err instanceof TargetUnreachableError) throw new UserError(err.message, ExitCode.Unreachable);
    if (err instanceof RunSetupError) throw new UserError(err.message, ExitCode.BadUsage);
    if (err instanceof SliceProcessError) {
      const codes = { unreachable: ExitCode.Unreachable, setup: ExitCode.BadUsage, interrupted: ExitCode.AssertionFailed, internal: ExitCode.Internal } as const;
      throw new UserError(err.message, codes[err.kind]);
    }
    throw err;
  } finally {
    link?.close();
    process.stdout.off('error', ignorePipeError);
    process.stderr.off('error', ignorePipeError);
    dashboard?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run <scenario>',
  describe: 'Run a scenario: simulated devices against a broker, with progress, a summary and run.json',
  builder: runCommandBuilder as CommandModule<object, RunArgs>['builder'],
  handler: runCommandHandler,
};
