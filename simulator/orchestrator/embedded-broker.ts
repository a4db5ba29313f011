/**
 * The embedded reference broker of a run without a target: `mqtt-sim broker` as a child process (never
 * in-process: the simulator reaches any broker only over the network, and a child can be killed for
 * chaos and measured on its own). Its CPU and RSS are sampled from /proc so the report can tell the
 * broker's cost from the generator's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { makeDirectory } from '../../common/make-directory.js';
import { tmpdir } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fileLimit, spareFileDescriptors } from './environment.js';
import { clockTicks, parseStatCpuTicks, parseStatusKb, readProc } from '../metrics/process-usage.js';

export { parseStatCpuTicks, parseStatusKb };

export interface EmbeddedBrokerOptions {
  persistence: 'sqlite' | 'memory';
  /** Default: a fresh temporary directory, removed by stop(). A given directory is kept. */
  dataDir?: string;
  /** How long the broker may take to print its listening line, ms (default 15,000). */
  readyTimeoutMs?: number;
  /** More `mqtt-sim broker` flags; a flag given here replaces the default of the same name. */
  extraArgs?: string[];
}

export interface BrokerSample {
  /** CPU time used since the previous sample, as a fraction of one core. */
  cpu: number;
  rssBytes: number;
}

export interface EmbeddedBroker {
  /** mqtt://127.0.0.1:PORT */
  url: string;
  /** The current process (changes on restart). */
  pid: number;
  version: string;
  dataDir: string;
  /** Zeros where /proc is missing (not Linux) or while the broker is down. */
  sample(): BrokerSample;
  /** CPU seconds over every incarnation so far, and the highest RSS seen (VmHWM). */
  stats(): { cpuSeconds: number; peakRssBytes: number };
  /** Sends a signal (default SIGKILL). An exit it causes is expected: onExit callbacks do not fire. */
  kill(signal?: NodeJS.Signals): void;
  /** Stops the broker if it runs (SIGTERM, bounded) or waits for it to exit, then starts it again on the same port and data dir. */
  restart(): Promise<void>;
  /** SIGTERM, SIGKILL after 10 s; removes the data dir if it was a temporary one. Idempotent. */
  stop(): Promise<void>;
  /** Called when the broker exits without kill(), restart() or stop() asking for it. */
  onExit(cb: (code: number | null, signal: string | null) => void): void;
  /** The last few KiB of the broker's stderr (its warn/error log records), over every incarnation. */
  stderrTail(): string;
}

const defaultReadyTimeoutMs = 15_000;
const stopTimeoutMs = 10_000;
const stderrTailChars = 16 * 1024;
const listeningLine = /^mqtt-sim broker listening on (.+):(\d+)$/;

/** Signals that do not end a process (pause/resume, the broker's SIGHUP reload). */
const nonTerminatingSignals: ReadonlySet<string> = new Set(['SIGSTOP', 'SIGCONT', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGHUP', 'SIGWINCH', 'SIGUSR1']);

/**
 * The built CLI. At runtime this module is dist/simulator/orchestrator/embedded-broker.js, so the CLI is
 * ../../cli/main.js; when it runs from source (vitest, tsx) that path is a .ts file and the built one is
 * under dist/.
 */
function resolveCliMain(): string {
  const candidates = [new URL('../../cli/main.js', import.meta.url), new URL('../../dist/cli/main.js', import.meta.url)].map((u) => fileURLToPath(u));
  const found = candidates.find((path) => existsSync(path));
  if (found === undefined) throw new Error(`cannot start the embedded broker: ${candidates[0]} is missing (run \`npm run build\`)`);
  return found;
}

/** The version in the package.json of the CLI's tree (dist/cli/main.js → package.json). */
function versionOf(cliMain: string): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', pathToFileURL(cliMain)), 'utf8')) as { name?: unknown; version?: unknown };
    return pkg.name === 'mqtt-sim' && typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Limits raised for a load test; the rest stay at the broker's defaults, which are what a user of the
 * reference broker gets (e.g. publisherBackpressure keeps slowing publishers that feed a slow
 * subscriber: that is flow control, visible as latency, not loss).
 * - maxConnections: the default 0 (no limit) would let the broker run into EMFILE at its fd limit,
 *   failing accepts and store files in ways that look like broker bugs. The child inherits our soft
 *   limit, so the cap is that minus spare descriptors: over it, connections are refused cleanly and
 *   counted. No cap when the limit is unknown.
 * - maxQueuedMessages / maxQueuedBytes: the defaults (10,000 messages, 64 MiB per session) overflow
 *   within seconds for a consumer that is offline during chaos at a few thousand messages/s, and the
 *   drops would be reported as lost messages. 1,000,000 messages and 1 GiB per session hold minutes of
 *   such a stream while still bounding a runaway run.
 */
function defaultFlags(persistence: 'sqlite' | 'memory', dataDir: string, port: number): Array<[string, string]> {
  const limit = fileLimit();
  const maxConnections = limit !== null && Number.isFinite(limit.soft) ? Math.max(1, limit.soft - spareFileDescriptors) : 0;
  return [
    ['--host', '127.0.0.1'],
    ['--port', String(port)],
    ['--persistence', persistence],
    ['--data-dir', dataDir],
    ['--sys-interval', '0'],
    ['--log-level', 'warn'],
    ['--max-connections', String(maxConnections)],
    ['--max-queued-messages', '1000000'],
    ['--max-queued-bytes', String(1024 * 1024 * 1024)],
  ];
}

/** Our defaults minus those extraArgs set (the broker refuses a flag given twice), then extraArgs. */
export function brokerArgs(defaults: Array<[string, string]>, extraArgs: readonly string[]): string[] {
  const given = new Set(extraArgs.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]!));
  const args = ['broker'];
  for (const [flag, value] of defaults) if (!given.has(flag)) args.push(flag, value);
  return [...args, ...extraArgs];
}

// ---------------------------------------------------------------- /proc sampling

// ---------------------------------------------------------------- the process

interface Incarnation {
  child: ChildProcess;
  pid: number;
  exited: Promise<{ code: number | null; signal: string | null }>;
  /** Set before a kill/stop/restart so its exit is not reported as unexpected. */
  exitExpected: boolean;
  alive: boolean;
  /** Last CPU ticks read from /proc (the process's total when it exited, to within a sample). */
  lastTicks: number;
}

export async function startEmbeddedBroker(options: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const cliMain = resolveCliMain();
  const version = versionOf(cliMain);
  const readyTimeoutMs = options.readyTimeoutMs ?? defaultReadyTimeoutMs;
  const extraArgs = options.extraArgs ?? [];
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = ownsDataDir ? mkdtempSync(resolvePath(tmpdir(), 'mqtt-sim-broker-')) : resolvePath(options.dataDir!);
  makeDirectory(dataDir);

  let stderr = '';
  const exitListeners: Array<(code: number | null, signal: string | null) => void> = [];
  let previousTicks = 0;
  let peakRss = 0;
  let lastSample = { ticks: 0, atNs: process.hrtime.bigint() };
  let stopped = false;
  let stopping: Promise<void> | undefined;

  const killOnParentExit = (): void => {
    if (current?.alive === true) current.child.kill('SIGKILL');
  };

  /** Spawns the broker and resolves with it once it printed its listening line (port from that line). */
  function launch(port: number): Promise<{ incarnation: Incarnation; host: string; port: number }> {
    const args = brokerArgs(defaultFlags(options.persistence, dataDir, port), extraArgs);
    const child = spawn(process.execPath, [cliMain, ...args], { cwd: dataDir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr!.setEncoding('utf8').on('data', (text: string) => {
      stderr = (stderr + text).slice(-stderrTailChars);
    });
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    // 'close' (stdio drained) follows 'exit', sometimes in the same tick: listen from the start.
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    return new Promise((resolve, reject) => {
      let stdout = '';
      let settled = false;
      const fail = (message: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const tail = stderr.trim();
        reject(new Error(`${message}${tail === '' ? ' (its stderr is empty)' : `; its stderr:\n${tail}`}`));
      };
      // On timeout the broker is killed and the promise rejects once it is gone, so a caller that
      // removes the data dir does not race a broker still writing into it.
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, readyTimeoutMs);
      child.once('error', (err) => fail(`cannot start the embedded broker: ${err.message}`));
      void exited.then(({ code, signal }) => {
        const message = timedOut
          ? `the embedded broker (${process.execPath} ${cliMain} ${args.join(' ')}) did not print its listening line within ${readyTimeoutMs} ms`
          : `the embedded broker exited (${signal ?? `code ${code}`}) before listening`;
        // Let the stderr pipe drain first so the message shows why it exited (bounded: a grandchild
        // could hold the pipe open).
        void closed.then(() => fail(message));
        setTimeout(() => fail(message), 500).unref();
      });
      child.stdout!.setEncoding('utf8').on('data', (text: string) => {
        if (settled) return;
        stdout += text;
        for (const line of stdout.split('\n')) {
          const match = listeningLine.exec(line);
          if (match === null) continue;
          settled = true;
          clearTimeout(timer);
          const incarnation: Incarnation = { child, pid: child.pid!, exited, exitExpected: false, alive: true, lastTicks: 0 };
          void exited.then(({ code, signal }) => {
            incarnation.alive = false;
            previousTicks += incarnation.lastTicks;
            if (!incarnation.exitExpected) for (const cb of exitListeners) cb(code, signal);
          });
          resolve({ incarnation, host: match[1]!, port: Number(match[2]) });
          return;
        }
      });
    });
  }

  let current: Incarnation | undefined;
  const first = await launch(0).catch((err: unknown) => {
    if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  });
  current = first.incarnation;
  const port = first.port;
  process.on('exit', killOnParentExit);

  function readTicks(incarnation: Incarnation): number | null {
    const text = readProc(incarnation.pid, 'stat');
    const ticks = text === null ? null : parseStatCpuTicks(text);
    if (ticks !== null) incarnation.lastTicks = ticks;
    return ticks;
  }

  function readPeakRss(incarnation: Incarnation): void {
    const text = readProc(incarnation.pid, 'status');
    if (text === null) return;
    peakRss = Math.max(peakRss, parseStatusKb(text, 'VmHWM') ?? 0, parseStatusKb(text, 'VmRSS') ?? 0);
  }

  /** SIGTERM, then SIGKILL if it has not exited within stopTimeoutMs; resolves once it exited. */
  async function terminate(incarnation: Incarnation): Promise<void> {
    if (!incarnation.alive) return;
    incarnation.exitExpected = true;
    readTicks(incarnation);
    readPeakRss(incarnation);
    incarnation.child.kill('SIGTERM');
    const timer = setTimeout(() => incarnation.child.kill('SIGKILL'), stopTimeoutMs);
    await incarnation.exited;
    clearTimeout(timer);
  }

  const broker: EmbeddedBroker = {
    url: `mqtt://${first.host}:${port}`,
    pid: current.pid,
    version,
    dataDir,
    sample() {
      const incarnation = current;
      if (incarnation === undefined || !incarnation.alive) return { cpu: 0, rssBytes: 0 };
      const ticks = readTicks(incarnation);
      const status = readProc(incarnation.pid, 'status');
      const rssBytes = status === null ? 0 : (parseStatusKb(status, 'VmRSS') ?? 0);
      peakRss = Math.max(peakRss, rssBytes, status === null ? 0 : (parseStatusKb(status, 'VmHWM') ?? 0));
      if (ticks === null) return { cpu: 0, rssBytes };
      const now = process.hrtime.bigint();
      const elapsedSeconds = Number(now - lastSample.atNs) / 1e9;
      const cpu = elapsedSeconds > 0 ? Math.max(0, ticks - lastSample.ticks) / clockTicks() / elapsedSeconds : 0;
      lastSample = { ticks, atNs: now };
      return { cpu, rssBytes };
    },
    stats() {
      let ticks = previousTicks;
      if (current?.alive === true) {
        ticks += readTicks(current) ?? current.lastTicks;
        readPeakRss(current);
      }
      return { cpuSeconds: ticks / clockTicks(), peakRssBytes: peakRss };
    },
    kill(signal = 'SIGKILL') {
      if (current === undefined || !current.alive) return;
      if (!nonTerminatingSignals.has(signal)) {
        current.exitExpected = true;
        readTicks(current);
        readPeakRss(current);
      }
      current.child.kill(signal);
    },
    async restart() {
      if (stopped) throw new Error('the embedded broker was stopped; it cannot be restarted');
      const previous = current;
      if (previous?.alive === true) {
        // Resume a paused broker first, or SIGTERM would wait for the SIGKILL fallback.
        previous.child.kill('SIGCONT');
        await terminate(previous);
      } else if (previous !== undefined) {
        await previous.exited;
      }
      current = undefined;
      // The new process's CPU since it was spawned (start-up, store recovery) is spread over the time
      // since then; measured from the end of the launch instead it read as many cores for one sample.
      const spawnedAtNs = process.hrtime.bigint();
      const next = await launch(port);
      current = next.incarnation;
      broker.pid = current.pid;
      lastSample = { ticks: 0, atNs: spawnedAtNs };
    },
    stop() {
      stopping ??= (async () => {
        stopped = true;
        if (current !== undefined) {
          current.child.kill('SIGCONT');
          await terminate(current);
        }
        process.off('exit', killOnParentExit);
        if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true });
      })();
      return stopping;
    },
    onExit(cb) {
      exitListeners.push(cb);
    },
    stderrTail: () => stderr,
  };
  return broker;
}
