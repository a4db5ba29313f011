/**
 * The real processes of a scale step: reference broker(s) (`node dist/cli/main.js broker`), Mosquitto,
 * and simulator processes (`node dist/cli/main.js run ... --json`). Each gets enough open files: when the
 * soft limit of this process is below what a child needs, the child is started through
 * `sh -c 'ulimit -n LIMIT && exec "$0" "$@"'`, which raises the soft limit up to the hard one (the pid stays
 * the child's, thanks to exec). Every child is tracked, so the benchmark can kill whatever is left on an
 * error, on Ctrl-C and at exit.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileLimit, type FileLimit } from '../../simulator/orchestrator/environment.js';
import { freePort, HOST, sleep, tryConnect } from '../lib/net.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The project root: this file is dist/bench/scale/processes.js once built. */
export const projectRoot = resolve(here, '../../..');
export const CLI = resolve(projectRoot, 'dist/cli/main.js');

/** Children still running. */
const live = new Set<ChildProcess>();

/** SIGKILL for every child still running (exit paths and Ctrl-C). */
export function killAllChildren(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}
process.on('exit', killAllChildren);

export function liveChildren(): number {
  return live.size;
}

export interface FdPlan {
  /** The soft limit the child gets: unchanged (null) or raised to this. */
  raiseTo: number | null;
  /** Set when even the hard limit is too low: the step cannot run. */
  problem?: string;
}

/**
 * Whether a child needing `needed` open files must get a raised soft limit (to the hard limit, the most an
 * unprivileged process may set). Pure: the limit comes in; unknown limits (not Linux) change nothing.
 */
export function planFileLimit(needed: number, limit: FileLimit | null): FdPlan {
  if (limit === null || limit.soft >= needed) return { raiseTo: null };
  if (limit.hard < needed) {
    return {
      raiseTo: null,
      problem: `needs ${needed} open files but the hard limit is ${limit.hard} (soft ${limit.soft}); use fewer devices per process or raise the hard limit (limits.conf, systemd LimitNOFILE)`,
    };
  }
  return { raiseTo: Number.isFinite(limit.hard) ? limit.hard : needed };
}

/** command + args, wrapped in `sh -c 'ulimit -n N && exec "$0" "$@"'` when the soft limit must be raised. */
export function withFileLimit(command: string, args: readonly string[], plan: FdPlan): { command: string; args: string[] } {
  if (plan.raiseTo === null) return { command, args: [...args] };
  return { command: 'sh', args: ['-c', `ulimit -n ${plan.raiseTo} && exec "$0" "$@"`, command, ...args] };
}

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** Resolves with "exit code N" or "signal S" once the process is gone. */
  readonly exited: Promise<string>;
  exitStatus(): string | null;
  exitCode(): number | null;
  /** SIGTERM (or `signal`), then SIGKILL after graceMs; resolves once it is gone. */
  stop(graceMs: number, signal?: NodeJS.Signals): Promise<void>;
}

export interface SpawnOptions {
  cwd: string;
  /** Open files the child needs (sockets plus its own). */
  neededFds: number;
  /** File for stdout and stderr; otherwise both are pipes the caller reads. */
  logFile?: string;
}

/** Spawns a tracked child with enough open files; throws (before spawning) when the hard limit is too low. */
export function spawnTracked(name: string, command: string, args: readonly string[], options: SpawnOptions): Child {
  const plan = planFileLimit(options.neededFds, fileLimit());
  if (plan.problem !== undefined) throw new Error(`${name} ${plan.problem}`);
  const wrapped = withFileLimit(command, args, plan);
  let child: ChildProcess;
  if (options.logFile !== undefined) {
    const fd = openSync(options.logFile, 'a');
    child = spawn(wrapped.command, wrapped.args, { cwd: options.cwd, stdio: ['ignore', fd, fd] });
    closeSync(fd);
  } else {
    child = spawn(wrapped.command, wrapped.args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  }
  live.add(child);
  let status: string | null = null;
  let code: number | null = null;
  const exited = new Promise<string>((resolveExit) => {
    child.once('exit', (c, signal) => {
      status = signal !== null ? `signal ${signal}` : `exit code ${String(c)}`;
      code = c;
      live.delete(child);
      resolveExit(status);
    });
    child.once('error', (err) => {
      status = `spawn error: ${err.message}`;
      live.delete(child);
      resolveExit(status);
    });
  });
  if (child.pid === undefined) {
    // spawn failed synchronously (ENOENT arrives as an 'error' event right after)
    live.delete(child);
  }
  const stop = async (graceMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (status !== null) return;
    child.kill(signal);
    const gone = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!gone) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  return { name, pid: child.pid ?? -1, process: child, exited, exitStatus: () => status, exitCode: () => code, stop };
}




/** Resolves once `port` accepts TCP connections; throws when the child exits first or after timeoutMs. */
export async function waitForPort(child: Child, port: number, timeoutMs: number, logTail: () => string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (child.exitStatus() !== null) throw new Error(`${child.name} exited during start-up (${String(child.exitStatus())})${tailText(logTail())}`);
    if (await tryConnect(port)) return;
    if (performance.now() > deadline) throw new Error(`${child.name} did not accept connections on ${HOST}:${port} within ${timeoutMs / 1000} s${tailText(logTail())}`);
    await sleep(50);
  }
}

function tailText(text: string): string {
  return text.trim() === '' ? '' : `:\n${text.trim()}`;
}

/** The last `lines` non-empty lines of a file ('' when unreadable). */
export function fileTail(path: string, lines = 12): string {
  try {
    return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * The Mosquitto binary: $MOSQUITTO_BIN, else `mosquitto` on the PATH, else /usr/sbin/mosquitto; null with
 * the reason when none exists.
 */
export function findMosquitto(): { path: string; version: string } | { path: null; reason: string } {
  const candidates: string[] = [];
  if (process.env['MOSQUITTO_BIN']) candidates.push(process.env['MOSQUITTO_BIN']);
  const which = spawnSync('sh', ['-c', 'command -v mosquitto'], { encoding: 'utf8', timeout: 5000 });
  if (which.status === 0 && which.stdout.trim() !== '') candidates.push(which.stdout.trim());
  candidates.push('/usr/sbin/mosquitto');
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    const out = spawnSync(path, ['-h'], { encoding: 'utf8', timeout: 5000 });
    const match = /mosquitto version (\S+)/.exec(`${out.stdout ?? ''}${out.stderr ?? ''}`);
    return { path, version: match ? match[1]! : 'unknown' };
  }
  return { path: null, reason: `mosquitto not found (looked at ${candidates.join(', ')}); install it (Debian: apt-get install mosquitto) or set MOSQUITTO_BIN` };
}
