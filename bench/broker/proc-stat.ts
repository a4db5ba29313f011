/**
 * CPU and memory of a process, read from /proc. Used for the broker (another process) and, through
 * process.cpuUsage(), for the load generator itself.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clockTicks: number | undefined;

/** Kernel clock ticks per second (the unit of utime/stime in /proc/PID/stat). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU time of `pid` in seconds, or NaN once the process is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: fields are counted after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / ticksPerSecond();
  } catch {
    return Number.NaN;
  }
}

/** Resident set size of `pid` in KiB, or NaN once the process is gone. */
export function rssKb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * Bytes `pid` caused to be sent to the storage layer so far (write_bytes of /proc/PID/io: page-cache
 * writes of files, not socket traffic), or NaN when unreadable.
 */
export function diskWriteBytes(pid: number): number {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const match = /^write_bytes:\s+(\d+)/m.exec(io);
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

export interface ProcessUsage {
  /** CPU time over wall time of the sampled interval, in percent of one core. */
  cpuPct: number;
  /** Largest RSS seen during the interval, MiB. */
  rssMbMax: number;
  /** RSS at the end of the interval, MiB. */
  rssMbLast: number;
}

/** Samples another process between start() and stop(): CPU from two stat reads, RSS every 200 ms. */
export class ProcessSampler {
  private startCpu = 0;
  private startWall = 0;
  private maxRss = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly pid: number) {}

  start(): void {
    this.startCpu = cpuSeconds(this.pid);
    this.startWall = performance.now();
    this.maxRss = rssKb(this.pid) || 0;
    this.timer = setInterval(() => {
      const rss = rssKb(this.pid);
      if (rss > this.maxRss) this.maxRss = rss;
    }, 200);
  }

  stop(): ProcessUsage {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const wall = (performance.now() - this.startWall) / 1000;
    const cpu = cpuSeconds(this.pid) - this.startCpu;
    const last = rssKb(this.pid);
    if (last > this.maxRss) this.maxRss = last;
    return {
      cpuPct: wall > 0 ? (cpu / wall) * 100 : Number.NaN,
      rssMbMax: this.maxRss / 1024,
      rssMbLast: last / 1024,
    };
  }
}

/** CPU % of this process (all its threads) between start() and stop(). */
export class SelfCpuSampler {
  private startCpu: NodeJS.CpuUsage = process.cpuUsage();
  private startWall = performance.now();

  start(): void {
    this.startCpu = process.cpuUsage();
    this.startWall = performance.now();
  }

  stop(): number {
    const used = process.cpuUsage(this.startCpu);
    const wallUs = (performance.now() - this.startWall) * 1000;
    return wallUs > 0 ? ((used.user + used.system) / wallUs) * 100 : Number.NaN;
  }
}

/** Busy and total jiffies of the whole machine (all CPUs), from the first line of /proc/stat. */
function machineJiffies(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = v[3]! + v[4]!;
    return { busy: total - idle, total };
  } catch {
    return { busy: Number.NaN, total: Number.NaN };
  }
}

/** Busy CPU of the whole machine between start() and stop(), in percent of one core (2 cores: 0–200). */
export class MachineCpuSampler {
  private start0 = machineJiffies();
  private startWall = performance.now();

  start(): void {
    this.start0 = machineJiffies();
    this.startWall = performance.now();
  }

  stop(): number {
    const now = machineJiffies();
    const wall = (performance.now() - this.startWall) / 1000;
    return wall > 0 ? ((now.busy - this.start0.busy) / ticksPerSecond() / wall) * 100 : Number.NaN;
  }
}
