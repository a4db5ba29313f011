/**
 * `mqtt-sim run SCENARIO --processes N`: one run over N local simulator processes. A process holds one
 * socket per device, so its file-descriptor limit caps the devices it can run; N processes of the same
 * CLI, each running one slice (`--shard i/N`), multiply that cap on one machine.
 *
 * This (parent) process starts the embedded broker when the scenario has no target, so every slice
 * drives the same broker, spawns the slices and coordinates one timeline over them:
 *
 *   spawn N × `run --shard i/N --json --start-at stdin` → each prints {"type":"ready"} once its consumers
 *   are subscribed → the parent picks t=0 (now + startLeadMs) and writes it to every slice's stdin → the
 *   slices start their timelines at that epoch, and the parent runs the broker and exec chaos actions on
 *   the same epoch (the slices run only the actions on their own devices) → the parent merges the slices'
 *   timeline points as they come for its reporter → every slice exits → their run.json files are merged
 *   (mergeRunResults) with the broker's figures and the parent's chaos records into the run's run.json.
 *
 * The slice side of the link (ready line out, start line in) is here too (linkToCoordinator), so both
 * ends of the protocol live in one file. Only the reporter talks to the user.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { addCounters, emptyFleetCounters } from '../metrics/counters.js';
import type { FleetCounters } from '../metrics/types.js';
import type { Reporter, RunEvent } from '../report/reporter.js';
import type { ChaosRecord, RunResult, TimelinePoint } from '../report/run-result.js';
import { prepareReportDir, readRunResult, reportDirFor, runFileName, writeRunResult } from '../report/write-run.js';
import { writeReportFiles } from '../report/write-reports.js';
import type { Scenario } from '../scenario/types.js';
import { ChaosTimeline, chaosWorkingDir, isDeviceChaos } from './chaos.js';
import { startEmbeddedBroker, type EmbeddedBroker } from './embedded-broker.js';
import { checkFileLimit, fileLimit, spareFileDescriptors, type FileLimit, type LimitCheck } from './environment.js';
import { mergeRunResults, mergeTimelines, type SliceFile } from './merge.js';
import { sliceDeviceCounts } from './plan.js';
import { checkReachable, RunSetupError, type RunOutcome } from './run.js';

/** `--processes` accepts 1 to this many. */
export const maxProcesses = 64;
/** t=0 is this long after the last slice said it is ready, so the start line reaches every slice first. */
export const startLeadMs = 1000;
/** Lines of a slice's stderr kept to explain why it failed. */
const stderrTailLines = 10;
/** After SIGTERM (a slice failed) or SIGINT (Ctrl-C), how long a slice may take to write its report before SIGKILL. */
const stopBoundMs = 25_000;
const interruptBoundMs = 45_000;

// ---------------------------------------------------------------- pure parts

/** Why N is not a usable `--processes` value, or null. */
export function validateProcessCount(n: number): string | null {
  if (!Number.isInteger(n) || n < 1 || n > maxProcesses) return `expected a whole number from 1 to ${maxProcesses}, got ${Number.isNaN(n) ? 'something else' : String(n)}`;
  return null;
}

/** Worker threads per process when --workers is not given: the CPUs shared out, at least one. */
export function defaultWorkersPerProcess(cpus: number, processes: number): number {
  return Math.max(1, Math.floor(cpus / processes));
}

export interface SliceArgsInput {
  /** Absolute path of the scenario file. */
  scenarioFile: string;
  index: number;
  processes: number;
  workers: number;
  seed: number;
  /** The slice's report folder (absolute). */
  reportDir: string;
  /** The parent's embedded broker, or the run's target URLs. */
  target: { embeddedUrl: string } | { urls: readonly string[] };
  brokerPid?: number;
}

/** The `mqtt-sim` arguments of slice `index`: a --shard run that waits for t=0 on stdin and leaves broker and exec chaos to the parent. */
export function sliceArgs(input: SliceArgsInput): string[] {
  const args = [
    'run', input.scenarioFile,
    '--shard', `${input.index}/${input.processes}`,
    '--workers', String(input.workers),
    '--seed', String(input.seed),
    '--report-dir', input.reportDir,
    '--json', '--no-dashboard',
    '--start-at', 'stdin',
    '--device-chaos-only',
  ];
  if ('embeddedUrl' in input.target) args.push('--embedded-url', input.target.embeddedUrl);
  else for (const url of input.target.urls) args.push('--target', url);
  if (input.brokerPid !== undefined) args.push('--broker-pid', String(input.brokerPid));
  return args;
}

/** What the parent reads from a slice's stdout (its --json NDJSON). */
export type SliceLine =
  | { type: 'ready'; pid: number }
  | { type: 'phase'; phase: string; atMs: number }
  | { type: 'point'; point: TimelinePoint; counters?: Record<string, FleetCounters> }
  | { type: 'event'; event: RunEvent }
  /** start, result or a type this version does not know: nothing to do. */
  | { type: 'other' };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One NDJSON line of a slice; null when it is not a JSON object with a type (a stray line). */
export function parseSliceLine(line: string): SliceLine | null {
  // The result line holds the slice's whole run.json: the parent reads that file instead.
  if (line.startsWith('{"type":"result"')) return { type: 'other' };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (!isRecord(value) || typeof value['type'] !== 'string') return null;
  switch (value['type']) {
    case 'ready':
      return typeof value['pid'] === 'number' ? { type: 'ready', pid: value['pid'] } : null;
    case 'phase':
      return typeof value['phase'] === 'string' && typeof value['atMs'] === 'number' ? { type: 'phase', phase: value['phase'], atMs: value['atMs'] } : null;
    case 'point': {
      const point = value['point'];
      if (!isRecord(point) || typeof point['atMs'] !== 'number') return null;
      const counters = value['counters'];
      return isRecord(counters)
        ? { type: 'point', point: point as unknown as TimelinePoint, counters: counters as Record<string, FleetCounters> }
        : { type: 'point', point: point as unknown as TimelinePoint };
    }
    case 'event': {
      const { atMs, level, message } = value;
      if (typeof atMs !== 'number' || typeof message !== 'string' || (level !== 'info' && level !== 'warn' && level !== 'error')) return null;
      return { type: 'event', event: { atMs, level, message } };
    }
    default:
      return { type: 'other' };
  }
}

/** The line the parent writes to every slice's stdin: t=0 as Date.now() milliseconds. */
export function formatStartCommand(epochMs: number): string {
  return `${JSON.stringify({ type: 'start', epochMs })}\n`;
}

/** The epoch of a start line, or null when the line is not one. */
export function parseStartCommand(line: string): number | null {
  try {
    const value: unknown = JSON.parse(line);
    if (!isRecord(value) || value['type'] !== 'start') return null;
    const epoch = value['epochMs'];
    return typeof epoch === 'number' && Number.isSafeInteger(epoch) && epoch > 0 ? epoch : null;
  } catch {
    return null;
  }
}

/**
 * Splits a stream of text chunks into lines (a final line without a newline is kept until more comes).
 * A long line arriving in many chunks is joined once, when its newline comes.
 */
export class LineSplitter {
  private parts: string[] = [];

  push(chunk: string): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf('\n'); nl !== -1; nl = chunk.indexOf('\n', start)) {
      this.parts.push(chunk.slice(start, nl));
      lines.push(this.parts.join('').replace(/\r$/, ''));
      this.parts = [];
      start = nl + 1;
    }
    if (start < chunk.length) this.parts.push(chunk.slice(start));
    return lines.filter((l) => l !== '');
  }

  /** The unterminated rest, once the stream ended. */
  end(): string[] {
    const last = this.parts.join('').trim();
    this.parts = [];
    return last === '' ? [] : [last];
  }
}

/** What the merger hands on to the reporter, in order. */
export type LiveItem = { kind: 'phase'; phase: string; atMs: number } | { kind: 'point'; point: TimelinePoint; counters: Record<string, FleetCounters> };

/**
 * Combines the slices' live timeline points: a point at atMs is passed on once every slice still
 * running has sent a point at or after atMs (the slices share t=0, so theirs carry the same atMs), as the
 * sum of the slices' points (mergeTimelines) with the sum of their latest cumulative counters. A phase is
 * passed on once, when the first slice enters it, just before the first point at or after it.
 */
export class LivePointMerger {
  private readonly latestAt = new Map<number, number>();
  private readonly latestCounters = new Map<number, Record<string, FleetCounters>>();
  private readonly pending = new Map<number, TimelinePoint[]>();
  private readonly phasesSeen = new Set<string>();
  private readonly phases: Array<{ phase: string; atMs: number }> = [];

  constructor(slices: readonly number[]) {
    for (const s of slices) this.latestAt.set(s, Number.NEGATIVE_INFINITY);
  }

  phase(_slice: number, phase: string, atMs: number): LiveItem[] {
    if (!this.phasesSeen.has(phase)) {
      this.phasesSeen.add(phase);
      this.phases.push({ phase, atMs });
    }
    return this.flush();
  }

  point(slice: number, point: TimelinePoint, counters?: Record<string, FleetCounters>): LiveItem[] {
    const parts = this.pending.get(point.atMs) ?? [];
    parts.push(point);
    this.pending.set(point.atMs, parts);
    this.latestAt.set(slice, Math.max(this.latestAt.get(slice) ?? Number.NEGATIVE_INFINITY, point.atMs));
    if (counters !== undefined) this.latestCounters.set(slice, counters);
    return this.flush();
  }

  /** A slice ended: it holds back no point any more. */
  sliceDone(slice: number): LiveItem[] {
    this.latestAt.set(slice, Number.POSITIVE_INFINITY);
    return this.flush();
  }

  /** Everything still held back (the run is over). */
  flushAll(): LiveItem[] {
    for (const s of this.latestAt.keys()) this.latestAt.set(s, Number.POSITIVE_INFINITY);
    const items = this.flush();
    for (const p of this.phases.splice(0)) items.push({ kind: 'phase', ...p });
    return items;
  }

  private flush(): LiveItem[] {
    const upTo = Math.min(...this.latestAt.values());
    const items: LiveItem[] = [];
    for (const atMs of [...this.pending.keys()].sort((a, b) => a - b)) {
      if (atMs > upTo) break;
      while (this.phases.length > 0 && this.phases[0]!.atMs <= atMs) items.push({ kind: 'phase', ...this.phases.shift()! });
      const [point] = mergeTimelines(this.pending.get(atMs)!.map((p) => [p]));
      this.pending.delete(atMs);
      items.push({ kind: 'point', point: point!, counters: this.sumCounters() });
    }
    return items;
  }

  private sumCounters(): Record<string, FleetCounters> {
    const sum: Record<string, FleetCounters> = {};
    for (const record of this.latestCounters.values()) {
      for (const [fleet, c] of Object.entries(record)) addCounters((sum[fleet] ??= emptyFleetCounters()), c);
    }
    return sum;
  }
}

function formatWhole(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',') : 'unlimited';
}

/**
 * The embedded broker is one process that holds a socket for every device of every slice, under the file
 * limit it inherits from us: --processes splits the simulator, never the broker.
 */
export function checkBrokerFileLimit(connections: number, limit: FileLimit | null): LimitCheck {
  if (limit === null) return { ok: true };
  const needed = connections + spareFileDescriptors;
  if (limit.soft >= needed) return { ok: true };
  const head = `the embedded broker is one process holding all ${formatWhole(connections)} connections, so it needs about ${formatWhole(needed)} open files`;
  if (limit.hard >= needed) {
    return { ok: false, message: `${head}, but it may open only ${formatWhole(limit.soft)} (soft limit; hard limit ${formatWhole(limit.hard)}). Run \`ulimit -n ${needed}\` in the shell before mqtt-sim.` };
  }
  return {
    ok: false,
    message:
      `${head}, but one process may open at most ${formatWhole(limit.hard)} (hard limit): --processes splits the simulator, not the broker. ` +
      'Run against several brokers (`--target URL --target URL ...`: devices are spread over them), or have an administrator raise the hard limit (limits.conf, systemd LimitNOFILE).',
  };
}

// ---------------------------------------------------------------- the slice side

export interface CoordinatorLink {
  /** For RunOptions.startAt: says "ready" (announce), then resolves with the epoch the parent sends. */
  startAt(): Promise<number>;
  /** Stops reading the input, so the process can exit. */
  close(): void;
}

export interface CoordinatorLinkOptions {
  /** The parent's end: our stdin. */
  input: Readable;
  /** Writes the ready line (on stdout, among the NDJSON lines). */
  announce(): void;
  /** The parent went away (input ended) or sent no start in time: the slice should stop. */
  onGone(reason: string): void;
  /** Longest wait for the start line after the ready line, ms. */
  timeoutMs: number;
}

/**
 * A slice's link to its parent (`--start-at stdin`). The input ending means the parent is gone (killed or
 * crashed): the slice then stops and still writes its report, instead of running on unobserved.
 */
export function linkToCoordinator(options: CoordinatorLinkOptions): CoordinatorLink {
  const { input } = options;
  const splitter = new LineSplitter();
  let epoch: number | null = null;
  let waiting: ((epoch: number) => void) | null = null;
  let closed = false;
  let gone = false;
  let timer: NodeJS.Timeout | undefined;
  const goneWith = (reason: string): void => {
    if (closed || gone) return;
    gone = true;
    clearTimeout(timer);
    options.onGone(reason);
  };
  const onData = (chunk: string): void => {
    for (const line of splitter.push(chunk)) {
      const at = parseStartCommand(line);
      if (at === null || epoch !== null) continue;
      epoch = at;
      clearTimeout(timer);
      waiting?.(at);
    }
  };
  const onEnd = (): void => goneWith('the parent process (run --processes) closed its link to this slice');
  input.setEncoding('utf8');
  input.on('data', onData);
  input.once('end', onEnd);
  input.once('error', onEnd);
  return {
    startAt() {
      options.announce();
      if (epoch !== null) return Promise.resolve(epoch);
      timer = setTimeout(() => goneWith(`no start time from the parent process within ${Math.round(options.timeoutMs / 1000)} s`), options.timeoutMs);
      return new Promise((resolve) => {
        waiting = resolve;
      });
    },
    close() {
      closed = true;
      clearTimeout(timer);
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onEnd);
      input.destroy();
    },
  };
}

// ---------------------------------------------------------------- the parent side

/** A slice process failed (crashed, exited without run.json, never got ready): the run has no result. */
export class SliceProcessError extends Error {
  constructor(
    message: string,
    /**
     * unreachable: the slice could not reach the target (exit 3); setup: it refused its options (exit 2);
     * interrupted: Ctrl-C came before every slice had a report (exit 1, as an interrupted run); internal: anything else.
     */
    readonly kind: 'unreachable' | 'setup' | 'interrupted' | 'internal',
  ) {
    super(message);
    this.name = 'SliceProcessError';
  }
}

export interface LocalProcessesOptions {
  /** The scenario file; every slice loads it itself. */
  scenarioFile: string;
  /** The scenario as this process loaded it (--seed and --target applied). */
  scenario: Scenario;
  processes: number;
  workersPerProcess: number;
  reporter: Reporter;
  /** As RunOptions.reportDir: a folder, undefined for reports/<scenario>-<timestamp>, null to keep nothing. Slices write under <dir>/shards/. */
  reportDir?: string | null;
  reportBase?: string;
  signal?: AbortSignal;
  brokerPersistence?: 'sqlite' | 'memory';
  brokerPid?: number;
  /** A line a slice wrote on its stderr; default: a warn event. */
  onSliceStderr?: (slice: string, line: string) => void;
  /** The CLI the slices run (default: the one this module belongs to). */
  cliMain?: string;
}

/** The built CLI next to this module (dist/simulator/orchestrator → dist/cli/main.js), or under dist/ when running from sources. */
function resolveCliMain(): string {
  const candidates = [new URL('../../cli/main.js', import.meta.url), new URL('../../dist/cli/main.js', import.meta.url)].map((u) => fileURLToPath(u));
  const found = candidates.find((path) => existsSync(path));
  if (found === undefined) throw new Error(`cannot start the slice processes: ${candidates[0]} is missing (run \`npm run build\`)`);
  return found;
}

interface SliceProcess {
  index: number;
  label: string;
  dir: string;
  child: ChildProcess;
  ready: boolean;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  exited: Promise<void>;
  stderrTail: string[];
  signalled: boolean;
}

/**
 * Runs the scenario as `processes` local slice processes on one timeline and returns the merged result,
 * written like a run's (run.json and reports in the report folder, the slices' own under shards/).
 * Throws RunSetupError (limits, bad process count), TargetUnreachableError or SliceProcessError.
 */
export async function runLocalProcesses(options: LocalProcessesOptions): Promise<RunOutcome> {
  const { scenario, processes, reporter } = options;
  const problem = validateProcessCount(processes);
  if (problem !== null) throw new RunSetupError(`--processes: ${problem}`);
  const startedAt = new Date();
  const devices = sliceDeviceCounts(scenario, undefined).devices;
  if (processes > devices) throw new RunSetupError(`--processes ${processes}: the scenario has only ${devices} device(s), so some processes would run none; use --processes ${Math.max(1, devices)} or fewer`);
  const limit = fileLimit();
  const own = checkFileLimit(devices, limit, processes);
  if (!own.ok) throw new RunSetupError(own.message ?? 'not enough file descriptors for this many devices per process');
  if (scenario.target === null) {
    const brokerLimit = checkBrokerFileLimit(devices, limit);
    if (!brokerLimit.ok) throw new RunSetupError(brokerLimit.message ?? 'the embedded broker cannot hold this many connections');
  } else {
    await checkReachable(scenario.target);
  }
  const cliMain = options.cliMain ?? resolveCliMain();
  const scenarioFile = resolvePath(scenario.sourceFile ?? options.scenarioFile);

  // The slices write their run.json under <dir>/shards/; without a report they go to a temporary folder.
  const keepReports = options.reportDir !== null;
  const dir = options.reportDir === null ? mkdtempSync(join(tmpdir(), 'mqtt-sim-processes-')) : resolvePath(options.reportDir ?? reportDirFor(scenario.name, startedAt, options.reportBase));
  if (keepReports) {
    try {
      prepareReportDir(dir);
    } catch (err) {
      throw new RunSetupError((err as Error).message);
    }
  }
  const broker: EmbeddedBroker | null = scenario.target === null
    ? await startEmbeddedBroker({ persistence: options.brokerPersistence ?? 'sqlite' }).catch((err: unknown) => {
        if (!keepReports) rmSync(dir, { recursive: true, force: true });
        throw err;
      })
    : null;

  const slices: SliceProcess[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let epochMs = 0;
  const runTime = (): number => (epochMs === 0 ? 0 : Math.max(0, Date.now() - epochMs));
  const chaos = new ChaosTimeline(scenario.chaos.filter((a) => !isDeviceChaos(a)), {
    broker,
    broadcast: () => undefined,
    event: (e) => reporter.event(e),
    fleetSizes: Object.fromEntries(scenario.fleets.map((f) => [f.name, f.count])),
    cwd: chaosWorkingDir(scenario.sourceFile),
  });
  const killAll = (): void => {
    for (const s of slices) if (s.exit === null) s.child.kill('SIGKILL');
  };
  process.on('exit', killAll);

  // State changes (ready, exit, abort, failure) wake whoever waits for a condition on them.
  let wake: (() => void) | null = null;
  const changed = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const until = async (condition: () => boolean, ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    while (!condition()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          timers.delete(t);
          resolve();
        }, left);
        timers.add(t);
        wake = () => {
          clearTimeout(t);
          timers.delete(t);
          resolve();
        };
      });
    }
    return true;
  };
  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  let failure: SliceProcessError | null = null;
  const signalAll = (signal: NodeJS.Signals, killAfterMs: number): void => {
    for (const s of slices) {
      if (s.exit !== null || s.signalled) continue;
      s.signalled = true;
      s.child.kill(signal);
    }
    later(killAfterMs, () => {
      for (const s of slices) if (s.exit === null) s.child.kill('SIGKILL');
    });
  };
  const tailOf = (s: SliceProcess): string => (s.stderrTail.length === 0 ? ' (its stderr is empty)' : `; its last stderr lines:\n  ${s.stderrTail.join('\n  ')}`);
  const fail = (s: SliceProcess, reason: string, kind: SliceProcessError['kind'] = 'internal'): void => {
    if (failure !== null) return;
    failure = new SliceProcessError(`${s.label} (pid ${s.child.pid ?? '?'}) ${reason}${tailOf(s)}`, kind);
    void chaos.stop();
    // The other slices stop gracefully (SIGTERM is their Ctrl-C) and still write their partial reports.
    signalAll('SIGTERM', stopBoundMs);
    changed();
  };

  let aborted = false;
  const onAbort = (): void => {
    if (aborted) return;
    aborted = true;
    void chaos.stop();
    signalAll('SIGINT', interruptBoundMs);
    changed();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  // A Ctrl-C while the broker started.
  if (options.signal?.aborted === true) onAbort();

  const merger = new LivePointMerger(Array.from({ length: processes }, (_, i) => i + 1));
  const brokerSamples = new Map<number, { cpu: number; rssBytes: number }>();
  const pass = (items: LiveItem[]): void => {
    for (const item of items) {
      if (item.kind === 'phase') {
        reporter.phase(item.phase, item.atMs);
        continue;
      }
      if (broker !== null) {
        const sample = broker.sample();
        item.point.broker = sample;
        brokerSamples.set(item.point.atMs, sample);
      }
      reporter.point(item.point, item.counters);
    }
  };
  const onSliceStderr = options.onSliceStderr ?? ((slice: string, line: string) => reporter.event({ atMs: runTime(), level: 'warn', message: `${slice}: ${line}` }));

  const target = broker !== null ? { embeddedUrl: broker.url } : { urls: scenario.target!.urls };
  const parentErrors: string[] = [];
  try {
    reporter.start({
      scenario: broker !== null ? { ...scenario, target: { urls: [broker.url], protocolVersion: 5, connectTimeoutMs: 10_000 } } : scenario,
      targetDescription: broker !== null ? `embedded reference broker ${broker.url} (pid ${broker.pid})` : scenario.target!.urls.join(', '),
      workers: processes * options.workersPerProcess,
      devices,
    });
    reporter.event({ atMs: 0, level: 'info', message: `${processes} simulator process(es), ${options.workersPerProcess} worker thread(s) each; slices write to ${keepReports ? join(dir, 'shards') : 'a temporary folder (--no-report)'}` });

    // Every slice at once: spawn() does not wait for the child, so the slices load and subscribe their
    // consumers in parallel, and the ready/start lines below give them one t=0 whatever order they end in.
    for (let index = 1; index <= processes && !aborted; index++) {
      const sliceDir = join(dir, 'shards', `shard-${index}`);
      const args = sliceArgs({
        scenarioFile,
        index,
        processes,
        workers: options.workersPerProcess,
        seed: scenario.seed,
        reportDir: sliceDir,
        target,
        ...(options.brokerPid !== undefined ? { brokerPid: options.brokerPid } : {}),
      });
      // Its own process group: a Ctrl-C in the terminal reaches this process alone, which passes it on once.
      const child = spawn(process.execPath, [cliMain, ...args], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      const s: SliceProcess = { index, label: `slice ${index}/${processes}`, dir: sliceDir, child, ready: false, exit: null, exited: Promise.resolve(), stderrTail: [], signalled: false };
      slices.push(s);
      child.stdin!.on('error', () => undefined);
      const out = new LineSplitter();
      const onLine = (line: string): void => {
        const parsed = parseSliceLine(line);
        if (parsed === null) return onSliceStderr(s.label, line);
        switch (parsed.type) {
          case 'ready':
            s.ready = true;
            changed();
            return;
          case 'phase':
            return pass(merger.phase(index, parsed.phase, parsed.atMs));
          case 'point':
            return pass(merger.point(index, parsed.point, parsed.counters));
          case 'event':
            reporter.event({ ...parsed.event, message: `${s.label}: ${parsed.event.message}` });
            return;
          case 'other':
            return;
        }
      };
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => out.push(chunk).forEach(onLine));
      const err = new LineSplitter();
      const onErrLine = (line: string): void => {
        s.stderrTail.push(line);
        if (s.stderrTail.length > stderrTailLines) s.stderrTail.shift();
        onSliceStderr(s.label, line);
      };
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => err.push(chunk).forEach(onErrLine));
      const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
      s.exited = new Promise<void>((resolve) => {
        child.once('error', (e) => {
          if (s.exit === null) s.exit = { code: null, signal: null };
          fail(s, `could not be started: ${e.message}`);
          resolve();
        });
        child.once('exit', (code, signal) => {
          // Read what is left in the pipes before the exit counts (its last points, its last stderr lines).
          void closed.then(() => {
            out.end().forEach(onLine);
            err.end().forEach(onErrLine);
            s.exit = { code, signal };
            pass(merger.sliceDone(index));
            if (code !== 0 && code !== 1 && !s.signalled) {
              const kind = code === 3 ? 'unreachable' : code === 2 ? 'setup' : 'internal';
              fail(s, signal !== null ? `was killed by ${signal}` : `exited with code ${code}`, kind);
            }
            changed();
            resolve();
          });
        });
      });
    }
    const allExited = (): boolean => slices.every((s) => s.exit !== null);

    // 1. Every slice ready (its consumers subscribed), then one t=0 for all.
    const readyBoundMs = (scenario.target?.connectTimeoutMs ?? 10_000) + 60_000;
    await until(() => failure !== null || aborted || slices.every((s) => s.ready || s.exit !== null), readyBoundMs);
    if (failure === null && !aborted) {
      const notReady = slices.find((s) => !s.ready);
      if (notReady !== undefined) {
        fail(notReady, notReady.exit !== null
          ? `exited (code ${notReady.exit.code ?? notReady.exit.signal ?? '?'}) before its timeline started`
          : `did not report ready (consumers subscribed) within ${Math.round(readyBoundMs / 1000)} s`);
      } else {
        epochMs = Date.now() + startLeadMs;
        for (const s of slices) s.child.stdin!.write(formatStartCommand(epochMs));
        chaos.start(epochMs);
      }
    }

    // 2. Every slice runs its timeline, drains and exits.
    const endBoundMs = epochMs === 0 ? interruptBoundMs + 5000 : epochMs - Date.now() + scenario.durationMs + 2 * scenario.drainMs + 60_000;
    if (!(await until(allExited, endBoundMs))) {
      const stuck = slices.find((s) => s.exit === null)!;
      fail(stuck, `did not finish within ${Math.round(endBoundMs / 1000)} s of the run's end`);
      await until(allExited, stopBoundMs + 5000);
    }
    await chaos.stop();
    pass(merger.flushAll());
    if (failure !== null) {
      const stopped = failure as SliceProcessError;
      if (keepReports && processes > 1) stopped.message += `\nThe other slices were stopped; what they wrote is under ${join(dir, 'shards')}.`;
      throw stopped;
    }
    const stuck = slices.find((s) => s.exit === null);
    if (stuck !== undefined) throw new SliceProcessError(`${stuck.label} (pid ${stuck.child.pid ?? '?'}) did not exit, even after SIGKILL`, 'internal');
    if (slices.length < processes) throw new SliceProcessError('the run was interrupted before every slice process started: there is nothing to merge', 'interrupted');

    // 3. Merge the slices' run.json files into the run's.
    const files: SliceFile[] = [];
    for (const s of slices) {
      const path = join(s.dir, runFileName);
      if (!existsSync(path)) {
        if (aborted) throw new SliceProcessError(`the run was interrupted before ${s.label} wrote its report: there is nothing to merge`, 'interrupted');
        throw new SliceProcessError(`${s.label} (pid ${s.child.pid ?? '?'}) exited with code ${s.exit?.code ?? s.exit?.signal ?? '?'} without writing ${path}${tailOf(s)}`, 'internal');
      }
      files.push({ path, result: readRunResult(path) });
    }
    const result = mergeRunResults(files);
    let brokerInfo: RunResult['broker'];
    if (broker !== null) {
      const stats = broker.stats();
      brokerInfo = { embedded: true, pid: broker.pid, cpuSeconds: stats.cpuSeconds, peakRssBytes: stats.peakRssBytes, version: broker.version };
      await broker.stop().catch((e: unknown) => parentErrors.push(`embedded broker did not stop cleanly: ${e instanceof Error ? e.message : String(e)}`));
      result.target = { embedded: true, urls: [broker.url], protocolVersion: 5 };
      result.broker = brokerInfo;
      for (const p of result.timeline) {
        const sample = brokerSamples.get(p.atMs);
        if (sample !== undefined) p.broker = sample;
      }
    }
    result.scenario = scenario;
    result.startedAt = startedAt.toISOString();
    result.finishedAt = new Date().toISOString();
    if (epochMs !== 0) result.timelineStartedAt = new Date(epochMs).toISOString();
    const parentChaos: ChaosRecord[] = chaos.records;
    result.chaos = [...parentChaos, ...result.chaos].sort((a, b) => a.atMs - b.atMs);
    result.errors = [...parentErrors, ...result.errors];
    (result.notes ??= []).push(
      `run as ${processes} local process(es) (mqtt-sim run --processes ${processes}), one slice each on one timeline; ` +
        `broker and exec chaos ran once in the parent process, partitions and reconnect storms in every slice on its own devices` +
        (keepReports ? "; the slices' run.json files are in shards/" : ''),
    );

    let reportPath: string | null = null;
    let reportError: string | undefined;
    if (keepReports) {
      try {
        reportPath = writeRunResult(dir, result);
        for (const p of writeReportFiles(dir, result).problems) reporter.event({ atMs: runTime(), level: 'error', message: p });
      } catch (err) {
        // As runScenario: the result is still printed, and the caller says what was not kept.
        reportError = (err as Error).message;
        reporter.event({ atMs: runTime(), level: 'error', message: reportError });
      }
    }
    reporter.finish(result, reportPath === null ? null : dir);
    return reportError === undefined ? { result, reportPath } : { result, reportPath, reportError };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    for (const t of timers) clearTimeout(t);
    timers.clear();
    if (slices.some((s) => s.exit === null)) {
      killAll();
      await Promise.race([Promise.all(slices.map((s) => s.exited)), new Promise((r) => setTimeout(r, 5000).unref())]);
    }
    for (const s of slices) s.child.stdin?.destroy();
    process.off('exit', killAll);
    await chaos.stop();
    if (broker !== null) await broker.stop().catch(() => undefined);
    if (!keepReports) rmSync(dir, { recursive: true, force: true });
  }
}
