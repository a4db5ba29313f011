/**
 * One scale step, end to end with real processes: start B fresh brokers (ours or Mosquitto), read their
 * idle RSS, write the scenario, start k simulator processes (`mqtt-sim run --json --shard i/k`), follow
 * their NDJSON timelines (when each slice had all its devices connected, when the steady phase ended),
 * sample every process from /proc, then stop everything, merge the slices' run.json (`mqtt-sim merge`) and
 * hand the raw material to summary.ts. Bounded: a simulator that outlives the timeline by STEP_SLACK_MS is
 * interrupted (SIGINT, then SIGKILL); brokers get SIGTERM, then SIGKILL.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunResult } from '../../simulator/report/run-result.js';
import { spareFileDescriptors } from '../../simulator/orchestrator/environment.js';
import {
  CLI, fileTail, projectRoot, spawnTracked, waitForPort, type Child,
} from './processes.js';
import { freePort, HOST, sleep } from '../lib/net.js';
import { countFds, FdWatch, ProcessWatch, readProcess, type FdProgress, type ProcReading } from './sampler.js';
import { DEVICE_FLEET, scaleScenarioYaml, scaleTiming, sliceShare } from './scenario.js';

export type BrokerKind = 'ours' | 'mosquitto';

export interface StepSpec {
  /** Names the step in logs and in the JSON: "ours-19800", "multi-36000". */
  label: string;
  broker: BrokerKind;
  /** Broker processes, listed together as the target. */
  brokers: number;
  devices: number;
  simulatorProcesses: number;
  /** Worker threads per simulator process. */
  workers: number;
  connectRatePerSec: number;
  intervalSeconds: number;
  /** Only for the idle base run: a short steady phase. */
  steadySeconds?: number;
  /** Store of our broker. */
  persistence: 'sqlite' | 'memory';
  sourceAddresses: string[];
  mosquittoBin: string | null;
  /** Empty folder for this step's files (scenario, logs, run.json). */
  dir: string;
}

export interface BrokerRaw {
  name: string;
  pid: number;
  port: number;
  url: string;
  /** Reading one second after it accepted connections, before any client. */
  idle: ProcReading | null;
  idleFds: number;
  /** Set when it was gone before the benchmark stopped it. */
  diedDuringRun: string | null;
  logTail: string;
}

export interface SimRaw {
  /** 1-based slice index (1 when the run is not split). */
  slice: number;
  /** Devices of the sensor fleet in this slice. */
  share: number;
  pid: number;
  exit: string;
  exitCode: number | null;
  /** Bench-clock (performance.now) times, ms; null when never seen. */
  timelineZeroAt: number | null;
  allConnectedAt: number | null;
  steadyStartAt: number | null;
  steadyEndAt: number | null;
  /** Most devices of the fleet connected at once, from this process's timeline points. */
  maxConnected: number;
  interrupted: boolean;
  /** Warning and error events of its run (the first MAX_EVENTS). */
  events: string[];
  stderrTail: string;
  runJson: string;
}

export interface StepRaw {
  spec: Omit<StepSpec, 'dir'>;
  startedAt: string;
  wallSeconds: number;
  brokers: BrokerRaw[];
  sims: SimRaw[];
  /** Readings per process name (broker names and sim-1, sim-2, ...). */
  readings: Record<string, ProcReading[]>;
  fd: FdProgress & { base: number; expected: number };
  /** The run result: the simulator's run.json, or the merged one of the slices. */
  result: RunResult | null;
  /** `mqtt-sim merge` outcome when the run was split. */
  merge: { exit: string; output: string } | null;
  /** Problems of the harness itself (a process that would not start, a run.json that is missing). */
  errors: string[];
}

const MAX_EVENTS = 20;
/**
 * With several simulator processes, how far ahead of their spawn t=0 is set (`run --start-at EPOCH`): each
 * starts, connects its consumers, then waits for the shared t=0, so every slice runs the same timeline. A
 * consumer's slice that started later would otherwise stop (and unsubscribe) before the other slices'
 * last messages arrive, and start after their first ones.
 */
export const SHARED_START_DELAY_MS = 10_000;
/** Longest a simulator may run past its timeline + drain before it is interrupted. */
export const STEP_SLACK_MS = 90_000;
const SIM_STOP_GRACE_MS = 30_000;
const BROKER_STOP_GRACE_MS = 5_000;

/** The mosquitto.conf of a scale step: BENCHMARKING.md's settings, no connection cap, warnings only in the log. */
export function scaleMosquittoConfig(port: number): string[] {
  return [
    `listener ${port} ${HOST}`,
    'allow_anonymous true',
    'max_queued_messages 100000',
    'max_inflight_messages 0',
    'persistence false',
    'max_connections -1',
    // One log line per connect and disconnect would be 40,000 lines a step; ours runs at --log-level warn too.
    'log_type error',
    'log_type warning',
  ];
}

/** Arguments of our broker in a scale step (the data dir is the step's own, fresh). */
export function oursBrokerArgs(port: number, persistence: 'sqlite' | 'memory', dataDir: string): string[] {
  return [CLI, 'broker', '--port', String(port), '--host', HOST, '--persistence', persistence, '--data-dir', dataDir, '--log-level', 'warn'];
}

async function startOneBroker(spec: StepSpec, b: number, devicesHere: number): Promise<{ child: Child; port: number; logFile: string }> {
  const port = await freePort();
  const name = `${spec.broker}-${b + 1}`;
  const logFile = join(spec.dir, `${name}.log`);
  // Its sockets, the consumer, the listener and its own files.
  const neededFds = devicesHere + 1 + spareFileDescriptors;
  let child: Child;
  if (spec.broker === 'ours') {
    const dataDir = join(spec.dir, `${name}-data`);
    mkdirSync(dataDir, { recursive: true });
    child = spawnTracked(name, process.execPath, oursBrokerArgs(port, spec.persistence, dataDir), { cwd: spec.dir, neededFds, logFile });
  } else {
    if (spec.mosquittoBin === null) throw new Error('no mosquitto binary');
    const conf = join(spec.dir, `${name}.conf`);
    writeFileSync(conf, scaleMosquittoConfig(port).join('\n') + '\n');
    child = spawnTracked(name, spec.mosquittoBin, ['-c', conf], { cwd: spec.dir, neededFds, logFile });
  }
  try {
    await waitForPort(child, port, 15_000, () => fileTail(logFile));
  } catch (err) {
    await child.stop(BROKER_STOP_GRACE_MS);
    throw err;
  }
  return { child, port, logFile };
}

interface JsonLine {
  type?: string;
  phase?: string;
  atMs?: number;
  level?: string;
  message?: string;
  point?: { atMs: number; fleets?: Record<string, { connected: number }> };
}

/** The NDJSON lines the benchmark reads; the final `result` line is the whole run.json, read from the file instead. */
export function wantedLine(start: string): boolean {
  return start.startsWith('{"type":"point"') || start.startsWith('{"type":"phase"') || start.startsWith('{"type":"event"');
}

/** Longest line start `wanted` needs to decide ('{"type":"result"' is 16 characters). */
const LINE_TYPE_PREFIX = 16;

/**
 * Splits a stream of text chunks into lines and hands on those `wanted` accepts. A line is judged by its
 * first LINE_TYPE_PREFIX characters, and one that is not wanted is skipped up to its newline rather than
 * kept: a slice's `result` line holds its ledgers, megabytes at 20,000 devices.
 */
export function lineSplitter(wanted: (start: string) => boolean, onLine: (line: string) => void): (chunk: string) => void {
  let partial = '';
  let skipping = false;
  return (chunk: string) => {
    let from = 0;
    for (let nl = chunk.indexOf('\n'); nl >= 0; nl = chunk.indexOf('\n', from)) {
      const line = skipping ? '' : partial + chunk.slice(from, nl);
      partial = '';
      skipping = false;
      from = nl + 1;
      if (line !== '' && wanted(line)) onLine(line);
    }
    if (!skipping) {
      partial += chunk.slice(from);
      if (partial.length >= LINE_TYPE_PREFIX && !wanted(partial)) {
        skipping = true;
        partial = '';
      }
    }
  };
}

/** Follows one simulator's NDJSON stdout: phases and the fleet's connected count per point. */
function followSimulator(child: Child, sim: SimRaw, log: (line: string) => void, label: string): void {
  let lastLogAt = 0;
  const feed = lineSplitter(wantedLine, (line) => {
    let parsed: JsonLine;
    try {
      parsed = JSON.parse(line) as JsonLine;
    } catch {
      return;
    }
    const now = performance.now();
    if (parsed.type === 'event') {
      if (parsed.level !== 'info' && sim.events.length < MAX_EVENTS) sim.events.push(`${parsed.level ?? '?'} at ${Math.round((parsed.atMs ?? 0) / 100) / 10} s: ${parsed.message ?? ''}`);
    } else if (parsed.type === 'phase') {
      if (parsed.phase === 'steady') sim.steadyStartAt ??= now;
      if ((parsed.phase === 'ramp-down' || parsed.phase === 'drain') && sim.steadyEndAt === null) sim.steadyEndAt = now;
    } else if (parsed.type === 'point' && parsed.point !== undefined) {
      const p = parsed.point;
      if (sim.timelineZeroAt === null) sim.timelineZeroAt = now - p.atMs;
      const connected = p.fleets?.[DEVICE_FLEET]?.connected ?? 0;
      if (connected > sim.maxConnected) sim.maxConnected = connected;
      if (sim.allConnectedAt === null && connected >= sim.share) sim.allConnectedAt = now;
      if (now - lastLogAt >= 10_000) {
        lastLogAt = now;
        log(`  [${label} sim ${sim.slice}] t=${Math.round(p.atMs / 1000)} s connected ${connected}/${sim.share}`);
      }
    }
  });
  child.process.stdout!.setEncoding('utf8');
  child.process.stdout!.on('data', feed);
  let stderr = '';
  child.process.stderr!.setEncoding('utf8');
  child.process.stderr!.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8000);
    sim.stderrTail = stderr;
  });
}

/** Runs the step; never throws for a failed run (the failure is in the returned errors and result). */
export async function runStep(spec: StepSpec, log: (line: string) => void): Promise<StepRaw> {
  const { dir: _dir, ...specOut } = spec;
  const startedAt = new Date();
  const t0 = performance.now();
  const brokers: BrokerRaw[] = [];
  const brokerChildren: Child[] = [];
  const brokerLogs: string[] = [];
  const sims: SimRaw[] = [];
  const simChildren: Child[] = [];
  const errors: string[] = [];
  const watch = new ProcessWatch(1000);
  let fdWatch: FdWatch | null = null;
  let result: RunResult | null = null;
  let merge: StepRaw['merge'] = null;
  const timing = scaleTiming(spec.devices, spec.connectRatePerSec, spec.intervalSeconds, spec.steadySeconds);
  const perBroker = Math.ceil(spec.devices / spec.brokers);
  const k = spec.simulatorProcesses;
  try {
    mkdirSync(spec.dir, { recursive: true });
    for (let b = 0; b < spec.brokers; b++) {
      const started = await startOneBroker(spec, b, perBroker);
      brokerChildren.push(started.child);
      brokers.push({
        name: started.child.name, pid: started.child.pid, port: started.port, url: `mqtt://${HOST}:${started.port}`,
        idle: null, idleFds: 0, diedDuringRun: null, logTail: '',
      });
      brokerLogs.push(started.logFile);
    }
    await sleep(1000);
    for (const b of brokers) {
      b.idle = readProcess(b.pid);
      b.idleFds = countFds(b.pid);
      watch.add(b.name, b.pid);
    }

    const scenarioFile = join(spec.dir, 'scenario.yaml');
    writeFileSync(scenarioFile, scaleScenarioYaml({
      name: `bench-scale-${spec.label}`,
      devices: spec.devices,
      brokerUrls: brokers.map((b) => b.url),
      connectRatePerSec: spec.connectRatePerSec,
      intervalSeconds: spec.intervalSeconds,
      sourceAddresses: spec.sourceAddresses,
      ...(spec.steadySeconds !== undefined ? { steadySeconds: spec.steadySeconds } : {}),
    }));

    // Broker side: the consumers connect before the timeline starts; devices add one descriptor each.
    const fdBase = brokers.reduce((n, b) => n + b.idleFds, 0) + spec.brokers;
    fdWatch = new FdWatch(brokers.map((b) => b.pid), fdBase, spec.devices);
    fdWatch.start();
    watch.start();

    const startAt = Date.now() + SHARED_START_DELAY_MS;
    for (let i = 1; i <= k; i++) {
      const reportDir = join(spec.dir, k > 1 ? `slice-${i}` : 'run');
      const share = k > 1 ? sliceShare(spec.devices, i, k) : spec.devices;
      const args = [
        CLI, 'run', scenarioFile, ...brokers.flatMap((b) => ['--target', b.url]),
        '--json', '--no-dashboard', '--workers', String(spec.workers), '--report-dir', reportDir,
        ...(k > 1 ? ['--shard', `${i}/${k}`, '--start-at', String(startAt)] : []),
        // One broker: its CPU and RSS also go into run.json's timeline.
        ...(spec.brokers === 1 ? ['--broker-pid', String(brokers[0]!.pid)] : []),
      ];
      // Its share of devices, a consumer at most, and the process's own files.
      const child = spawnTracked(`sim-${i}`, process.execPath, args, { cwd: projectRoot, neededFds: share + spec.brokers + spareFileDescriptors });
      const sim: SimRaw = {
        slice: i, share, pid: child.pid, exit: 'running', exitCode: null,
        timelineZeroAt: null, allConnectedAt: null, steadyStartAt: null, steadyEndAt: null,
        maxConnected: 0, interrupted: false, events: [], stderrTail: '', runJson: join(reportDir, 'run.json'),
      };
      followSimulator(child, sim, log, spec.label);
      sims.push(sim);
      simChildren.push(child);
      watch.add(`sim-${i}`, child.pid);
    }

    // Bounded: timeline + drain + slack for start-up, the checker and writing run.json.
    const limitMs = timing.durationMs + timing.drainMs + STEP_SLACK_MS + (k > 1 ? SHARED_START_DELAY_MS : 0);
    let timer: NodeJS.Timeout | undefined;
    const allExited = Promise.all(simChildren.map((c) => c.exited));
    const outcome = await Promise.race([
      allExited.then(() => 'exited' as const),
      new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), limitMs);
      }),
    ]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      errors.push(`the simulator did not finish within ${Math.round(limitMs / 1000)} s (timeline ${timing.durationMs / 1000} s + drain + ${STEP_SLACK_MS / 1000} s slack): interrupted`);
      for (const [i, c] of simChildren.entries()) {
        if (c.exitStatus() === null) sims[i]!.interrupted = true;
      }
      await Promise.all(simChildren.map((c) => c.stop(SIM_STOP_GRACE_MS, 'SIGINT')));
    }
    fdWatch.stop();
    watch.stop();
    for (const [i, c] of simChildren.entries()) {
      sims[i]!.exit = c.exitStatus() ?? 'running';
      sims[i]!.exitCode = c.exitCode();
    }
    for (const [i, c] of brokerChildren.entries()) {
      const status = c.exitStatus();
      if (status !== null) {
        brokers[i]!.diedDuringRun = status;
        errors.push(`${c.name} died during the run (${status})`);
      }
    }

    // A simulator that wrote no run.json: say how it ended and what it printed last.
    for (const s of sims) {
      if (!existsSync(s.runJson)) errors.push(`simulator ${s.slice} wrote no run.json (${s.exit}); its last output: ${tailLines(s.stderrTail, 6)}`);
    }
    // The result: one run.json, or the merge of the slices'.
    if (k === 1) {
      if (existsSync(sims[0]!.runJson)) result = readResult(sims[0]!.runJson, errors);
    } else if (sims.every((s) => existsSync(s.runJson))) {
      const mergedDir = join(spec.dir, 'merged');
      const files = sims.map((s) => s.runJson);
      const out = spawnSync(process.execPath, [CLI, 'merge', ...files, '--out', mergedDir], { cwd: projectRoot, encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 2 ** 20 });
      const exit = out.error !== undefined ? `error: ${out.error.message}` : out.signal !== null ? `signal ${out.signal}` : `exit code ${String(out.status)}`;
      merge = { exit, output: `${out.stdout ?? ''}${out.stderr ?? ''}`.split('\n').filter((l) => l.trim() !== '').slice(-12).join('\n') };
      if (out.status !== 0 && out.status !== 1) errors.push(`mqtt-sim merge failed (${exit}): ${merge.output.split('\n').slice(-3).join(' | ')}`);
      result = readResult(join(mergedDir, 'run.json'), errors);
    }
  } catch (err) {
    errors.push(err instanceof Error ? err.message : String(err));
  } finally {
    fdWatch?.stop();
    watch.stop();
    await Promise.all(simChildren.map((c) => c.stop(SIM_STOP_GRACE_MS, 'SIGINT')));
    await Promise.all(brokerChildren.map((c) => c.stop(BROKER_STOP_GRACE_MS)));
    brokers.forEach((b, i) => {
      b.logTail = fileTail(brokerLogs[i]!, 8);
    });
  }
  const readings: Record<string, ProcReading[]> = {};
  for (const [name, list] of watch.readings) readings[name] = list;
  return {
    spec: specOut,
    startedAt: startedAt.toISOString(),
    wallSeconds: Math.round((performance.now() - t0) / 100) / 10,
    brokers,
    sims,
    readings,
    fd: { ...(fdWatch?.progress ?? { first: null, all: null, max: 0 }), base: brokers.reduce((n, b) => n + b.idleFds, 0) + spec.brokers, expected: spec.devices },
    result,
    merge,
    errors,
  };
}

function tailLines(text: string, lines: number): string {
  return text.split('\n').filter((l) => l.trim() !== '').slice(-lines).join(' | ') || '(nothing)';
}

function readResult(path: string, errors: string[]): RunResult | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as RunResult;
  } catch (err) {
    errors.push(`no run.json at ${path}: ${err instanceof Error ? err.message : String(err)}`);
    return null;
  }
}
