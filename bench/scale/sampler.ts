/**
 * What the scale benchmark reads from /proc while a step runs: cumulative CPU time and RSS of every broker
 * and simulator process once a second (so a window's mean CPU is exact: the difference of two cumulative
 * readings over the time between them), and the brokers' open file descriptors every 200 ms while the
 * devices connect (one socket per accepted connection: the connect rate seen from the broker's side).
 * Parsing is process-usage.ts's, the way `top` reads /proc.
 */
import { readdirSync } from 'node:fs';
import { clockTicks, parseStatCpuTicks, parseStatusKb, readProc } from '../../simulator/metrics/process-usage.js';

export interface ProcReading {
  /** performance.now() of the reading, ms. */
  t: number;
  /** utime + stime so far, seconds. */
  cpuSeconds: number;
  rssBytes: number;
}

/** One reading of a process, or null once it is gone. */
export function readProcess(pid: number): ProcReading | null {
  const stat = readProc(pid, 'stat');
  const status = readProc(pid, 'status');
  if (stat === null || status === null) return null;
  const ticks = parseStatCpuTicks(stat);
  const rss = parseStatusKb(status, 'VmRSS');
  if (ticks === null || rss === null) return null;
  return { t: performance.now(), cpuSeconds: ticks / clockTicks(), rssBytes: rss };
}

/** Open file descriptors of a process (NaN when unreadable). */
export function countFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

/** Readings of a set of named processes every intervalMs, between start() and stop(). */
export class ProcessWatch {
  readonly readings = new Map<string, ProcReading[]>();
  private timer: NodeJS.Timeout | null = null;
  private readonly pids = new Map<string, number>();

  constructor(private readonly intervalMs = 1000) {}

  /** Starts watching one more process (readings begin at once). */
  add(name: string, pid: number): void {
    this.pids.set(name, pid);
    this.readings.set(name, []);
    this.readOne(name, pid);
  }

  start(): void {
    this.timer = setInterval(() => this.readAll(), this.intervalMs);
  }

  /** One last reading of every process, then no more. */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.readAll();
  }

  private readAll(): void {
    for (const [name, pid] of this.pids) this.readOne(name, pid);
  }

  private readOne(name: string, pid: number): void {
    const r = readProcess(pid);
    if (r !== null) this.readings.get(name)!.push(r);
  }
}

export interface FdProgress {
  /** First poll that saw more descriptors than the base. */
  first: { t: number; fds: number } | null;
  /** First poll that saw base + expected. */
  all: { t: number; fds: number } | null;
  /** Most descriptors seen (summed over the brokers). */
  max: number;
}

/**
 * Polls the summed fd count of the broker processes every pollMs until it reaches base + expected (or
 * stop()). The readdir of /proc/PID/fd costs a few ms at 20,000 entries, so polling ends as soon as the
 * target is reached.
 */
export class FdWatch {
  readonly progress: FdProgress = { first: null, all: null, max: 0 };
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly pids: readonly number[], private readonly base: number, private readonly expected: number, private readonly pollMs = 200) {}

  start(): void {
    this.timer = setInterval(() => {
      let fds = 0;
      for (const pid of this.pids) fds += countFds(pid);
      if (!Number.isFinite(fds)) return;
      const t = performance.now();
      if (fds > this.progress.max) this.progress.max = fds;
      if (this.progress.first === null && fds > this.base) this.progress.first = { t, fds };
      if (this.progress.all === null && fds >= this.base + this.expected) {
        this.progress.all = { t, fds };
        this.stop();
      }
    }, this.pollMs);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
