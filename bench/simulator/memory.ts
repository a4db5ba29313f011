/**
 * Part 2: simulator memory per idle connected device. The BUILT CLI runs as a child process,
 *
 *   node dist/cli/main.js run SCENARIO --target mqtt://127.0.0.1:PORT --workers 1 --no-report --progress-interval 1
 *
 * against a fresh Mosquitto, with N sensors connecting at MEMORY_CONNECT_RATE/s, keepalive 60 s, one QoS 1
 * publication `every: 1h` (idle: the first publish of each device falls at a random point of its first
 * hour), ramp-up N / MEMORY_CONNECT_RATE s, steady STEADY_S s. Once a progress line shows `connected N/N`,
 * the benchmark reads VmRSS of the child (the whole process: main thread and the shard worker thread) and of
 * Mosquitto twice:
 *
 *   - SETTLE_MS after: right after the connect burst. V8 has not collected its garbage yet: the worker's
 *     old generation still holds what died since its last full GC (connect-time objects), and each
 *     thread's young generation is as large as the burst grew it. This is the figure reported since the
 *     benchmark exists.
 *   - SETTLED_MS after: the devices have been idle for a while and V8's memory reducer has run (it
 *     collects and shrinks the heaps of an isolate that stopped allocating; usually 6 to 14 s after the
 *     burst, seen later once in a while, and then this reading is close to the first). What an idle
 *     fleet costs for as long as it stays idle.
 *
 * Then it stops the child with SIGINT (SIGKILL after STOP_GRACE_MS).
 *
 * Connect rate: Mosquitto's open file descriptors (/proc/PID/fd) are counted every FD_POLL_MS while the
 * devices connect; rate = sockets gained between the first poll that saw one and the first poll that saw
 * all N / time between those polls. The progress lines give a coarser second figure.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rssKb } from '../broker/proc-stat.js';
import { startBroker, type RunningBroker } from '../broker/brokers.js';
import { HOST } from '../lib/net.js';
import { errorText, sleep } from './common.js';

const here = dirname(fileURLToPath(import.meta.url));
/** dist/cli/main.js: this file is dist/bench/simulator/memory.js once built. */
export const CLI = resolve(here, '../../cli/main.js');

export const MEMORY_CONNECT_RATE = 2000;
export const BASE_DEVICES = 10;
export const SETTLE_MS = 3000;
/** The second reading, this long after all devices connected (see the file comment). */
export const SETTLED_MS = 20_000;
/**
 * Steady phase: the readings must fall in it. All devices connect up to ~7 s after the ramp-up at 19,000
 * (a loaded machine connects slower than planned); then SETTLED_MS, and a margin.
 */
export const STEADY_S = 35;
const STOP_GRACE_MS = 20_000;
const FD_POLL_MS = 100;

/**
 * Ramp-up of exactly N / MEMORY_CONNECT_RATE seconds (in ms). The simulator spreads the connects of a fleet
 * evenly over the whole ramp-up when that is longer than count / connect rate (plan.ts connectOffsetMs:
 * the slower of the two), so a ramp-up with a margin (ceil(N/2000) + 2 s) would offer only N / rampUp
 * connections/s (333/s at N = 1,000). The margin is in the steady phase instead (STEADY_S).
 */
export function memoryRampUpMs(devices: number): number {
  return Math.max(1, Math.ceil((devices / MEMORY_CONNECT_RATE) * 1000));
}

export function memoryScenarioYaml(devices: number, port: number): string {
  return [
    `name: bench-memory-${devices}`,
    'seed: 1',
    `target: mqtt://${HOST}:${port}`,
    `phases: { rampUp: ${memoryRampUpMs(devices)}ms, steady: ${STEADY_S}s }`,
    'drain: 1s',
    'fleets:',
    '  - name: idle',
    `    count: ${devices}`,
    `    connect: ${MEMORY_CONNECT_RATE}/s`,
    '    keepalive: 60s',
    '    publish:',
    '      topic: "bench/idle/{id}"',
    '      qos: 1',
    '      every: 1h',
    '      payload: { size: 64 }',
    '',
  ].join('\n');
}

export function commandFor(scenarioFile: string, port: number): string[] {
  return [CLI, 'run', scenarioFile, '--target', `mqtt://${HOST}:${port}`, '--workers', '1', '--no-report', '--progress-interval', '1'];
}

export interface MemoryMeasure {
  devices: number;
  ok: boolean;
  /** Why the measurement failed (with the child's output tail), when !ok. */
  error?: string;
  simulatorRssKb?: number;
  mosquittoRssKb?: number;
  /** The same SETTLED_MS after all connected (undefined when the simulator was gone by then). */
  simulatorRssKbSettled?: number;
  mosquittoRssKbSettled?: number;
  /** Devices connected according to the last progress line before the settled reading. */
  connectedAtSettledReading?: number;
  /** Mosquitto's RSS right after start, before any device connected. */
  mosquittoRssKbIdle?: number;
  /** Devices connected according to the last progress line before the RSS reading. */
  connectedAtReading?: number;
  /** Mosquitto file descriptors at the reading (sockets + its own few). */
  mosquittoFdsAtReading?: number;
  /** Connections/s from Mosquitto's fd count (see the file comment); null when too fast to resolve. */
  connectRate?: number | null;
  /** Connections/s from the progress lines (1 s resolution); null when one line covered the whole ramp. */
  connectRateFromProgress?: number | null;
  /** Seconds from spawning the CLI to the first progress line showing all N connected. */
  secondsToAllConnected?: number;
  exit?: string;
  /** Seconds from SIGINT to the simulator's exit; sigkill when it had to be killed after STOP_GRACE_MS. */
  stopSeconds?: number;
  sigkill?: boolean;
  busyBeforePct?: number;
}

function countFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

function tail(text: string, lines: number): string {
  return text.split('\n').filter((l) => l.trim() !== '').slice(-lines).join('\n');
}

const progressPattern = /connected ([\d,]+)\/([\d,]+)/;

/** One measurement with `devices` devices. Never throws: failures come back as ok: false with the reason. */
export async function memoryMeasure(devices: number): Promise<MemoryMeasure> {
  let broker: RunningBroker | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'bench-simulator-memory-'));
  let stdout = '';
  let stderr = '';
  let exitStatus: string | null = null;
  let child: ReturnType<typeof spawn> | undefined;
  let exited: Promise<void> = Promise.resolve();
  let poller: NodeJS.Timeout | undefined;
  const stopChild = async (): Promise<{ stopSeconds: number; sigkill: boolean }> => {
    const t0 = performance.now();
    if (child === undefined || exitStatus !== null) return { stopSeconds: 0, sigkill: false };
    child.kill('SIGINT');
    const stopped = await Promise.race([exited.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
    if (!stopped) {
      child.kill('SIGKILL');
      await exited;
    }
    return { stopSeconds: Math.round((performance.now() - t0) / 100) / 10, sigkill: !stopped };
  };
  try {
    broker = await startBroker('mosquitto');
    const running = broker;
    const mosquittoRssKbIdle = rssKb(running.pid);
    const fdBase = countFds(running.pid);
    const file = join(dir, 'scenario.yaml');
    writeFileSync(file, memoryScenarioYaml(devices, running.port));

    // Connection progress seen from Mosquitto's side.
    let firstPoll: { t: number; fds: number } | null = null;
    let allPoll: { t: number; fds: number } | null = null;
    poller = setInterval(() => {
      const fds = countFds(running.pid);
      const t = performance.now();
      if (firstPoll === null && fds > fdBase) firstPoll = { t, fds };
      if (allPoll === null && fds >= fdBase + devices) {
        allPoll = { t, fds };
        clearInterval(poller);
      }
    }, FD_POLL_MS);

    const spawnedAt = performance.now();
    const proc = spawn(process.execPath, commandFor(file, running.port), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    exited = new Promise<void>((resolveExit) => {
      proc.once('exit', (code, signal) => {
        exitStatus = signal !== null ? `signal ${signal}` : `exit code ${String(code)}`;
        resolveExit();
      });
      proc.once('error', (err) => {
        exitStatus = `spawn error: ${err.message}`;
        resolveExit();
      });
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-20_000);
    });

    // Progress lines: (arrival time, connected). Resolves once all N are connected.
    const lines: Array<{ t: number; connected: number }> = [];
    let lastConnected = 0;
    let allConnectedAt: number | null = null;
    let partial = '';
    const allConnected = new Promise<void>((resolveAll) => {
      proc.stdout!.setEncoding('utf8');
      proc.stdout!.on('data', (chunk: string) => {
        stdout = (stdout + chunk).slice(-20_000);
        partial += chunk;
        const parts = partial.split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) {
          const m = progressPattern.exec(line);
          if (m === null) continue;
          const connected = Number(m[1]!.replace(/,/g, ''));
          const t = performance.now();
          lines.push({ t, connected });
          lastConnected = connected;
          if (allConnectedAt === null && connected >= devices) {
            allConnectedAt = t;
            resolveAll();
          }
        }
      });
    });

    const limitMs = memoryRampUpMs(devices) + STEADY_S * 1000 + 15_000;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      allConnected.then(() => 'connected' as const),
      exited.then(() => 'exited' as const),
      new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), limitMs);
      }),
    ]);
    clearTimeout(timer);
    if (outcome !== 'connected') {
      const why = outcome === 'exited'
        ? `the simulator exited (${String(exitStatus)}) before all ${devices} devices connected (last progress: ${lastConnected}/${devices})`
        : `not all ${devices} devices connected within ${limitMs / 1000} s (last progress: ${lastConnected}/${devices})`;
      return {
        devices, ok: false,
        error: `${why}; stdout tail:\n${tail(stdout, 6)}${stderr.trim() ? `\nstderr tail:\n${tail(stderr, 10)}` : ''}`,
        exit: exitStatus ?? 'running',
        mosquittoFdsAtReading: countFds(running.pid),
      };
    }

    await sleep(SETTLE_MS);
    const simulatorRssKb = rssKb(proc.pid!);
    const mosquittoRssKb = rssKb(running.pid);
    const mosquittoFdsAtReading = countFds(running.pid);
    const connectedAtReading = lastConnected;
    const ok = Number.isFinite(simulatorRssKb) && exitStatus === null;
    const statusAtReading = exitStatus;
    clearInterval(poller);
    await sleep(SETTLED_MS - SETTLE_MS);
    const settled = exitStatus === null
      ? { simulatorRssKbSettled: rssKb(proc.pid!), mosquittoRssKbSettled: rssKb(running.pid), connectedAtSettledReading: lastConnected }
      : {};

    const fp = firstPoll as { t: number; fds: number } | null;
    const ap = allPoll as { t: number; fds: number } | null;
    const connectRate = fp !== null && ap !== null && ap.t > fp.t ? Math.round((ap.fds - fp.fds) / ((ap.t - fp.t) / 1000)) : null;
    const firstLine = lines.find((l) => l.connected > 0);
    const allLine = lines.find((l) => l.connected >= devices);
    const connectRateFromProgress = firstLine !== undefined && allLine !== undefined && allLine.t > firstLine.t
      ? Math.round((allLine.connected - firstLine.connected) / ((allLine.t - firstLine.t) / 1000))
      : null;
    const stop = await stopChild();
    return {
      devices,
      ok,
      ...(ok ? {} : { error: `the simulator process was gone at the RSS reading (${String(statusAtReading)}); stderr tail:\n${tail(stderr, 10)}` }),
      simulatorRssKb,
      mosquittoRssKb,
      mosquittoRssKbIdle,
      connectedAtReading,
      ...settled,
      mosquittoFdsAtReading,
      connectRate,
      connectRateFromProgress,
      secondsToAllConnected: Math.round((allConnectedAt! - spawnedAt) / 100) / 10,
      ...stop,
      exit: exitStatus ?? 'running',
    };
  } catch (err) {
    return { devices, ok: false, error: `${errorText(err)}${stderr.trim() ? `\nstderr tail:\n${tail(stderr, 10)}` : ''}` };
  } finally {
    clearInterval(poller);
    await stopChild();
    if (broker !== undefined) await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
