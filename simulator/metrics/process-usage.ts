/**
 * CPU and memory of a process, read the way `top` does: /proc/<pid>/stat (utime + stime, in clock
 * ticks) and /proc/<pid>/status (VmRSS, VmHWM). The embedded broker, a broker given by `--broker-pid`
 * and the capacity cost model use it; this process measures itself with process.cpuUsage() instead, which
 * counts every worker thread. The parsers take the /proc text so they are testable; readers return null
 * where /proc is missing (not Linux) or the process is gone.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** utime + stime (fields 14 and 15) of a /proc/<pid>/stat text, in clock ticks. */
export function parseStatCpuTicks(statText: string): number | null {
  // The command name (field 2) is in parentheses and may itself contain spaces and parentheses.
  const end = statText.lastIndexOf(')');
  if (end < 0) return null;
  const fields = statText.slice(end + 1).trim().split(/\s+/);
  // fields[0] is field 3 (state), so field n is fields[n - 3].
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? utime + stime : null;
}

/** A "VmRSS:   1234 kB" row of a /proc/<pid>/status text, in bytes. */
export function parseStatusKb(statusText: string, field: 'VmRSS' | 'VmHWM'): number | null {
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(statusText);
  return match === null ? null : Number(match[1]) * 1024;
}

let clockTicksPerSecond: number | undefined;
/** sysconf(_SC_CLK_TCK): 100 on every mainstream Linux; read once, 100 if getconf is missing. */
export function clockTicks(): number {
  if (clockTicksPerSecond === undefined) {
    try {
      const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      clockTicksPerSecond = Number.isInteger(value) && value > 0 ? value : 100;
    } catch {
      clockTicksPerSecond = 100;
    }
  }
  return clockTicksPerSecond;
}

export function readProc(pid: number, file: 'stat' | 'status'): string | null {
  if (process.platform !== 'linux') return null;
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return null;
  }
}

/** CPU over the interval since the previous sample, in cores (1.0 = one core busy), and the RSS now. */
export interface UsageSample {
  cpu: number;
  rssBytes: number;
}

/** Samples another process by pid; sample() is null once /proc has nothing for it. */
export class PidUsageSampler {
  private last: { ticks: number; atNs: bigint } | null = null;

  constructor(readonly pid: number) {
    this.sample();
  }

  /** Whether /proc shows the process (false where /proc is missing). */
  exists(): boolean {
    return readProc(this.pid, 'stat') !== null;
  }

  sample(): UsageSample | null {
    const stat = readProc(this.pid, 'stat');
    const status = readProc(this.pid, 'status');
    const ticks = stat === null ? null : parseStatCpuTicks(stat);
    if (ticks === null || status === null) return null;
    const now = process.hrtime.bigint();
    const rssBytes = parseStatusKb(status, 'VmRSS') ?? 0;
    const previous = this.last;
    this.last = { ticks, atNs: now };
    if (previous === null) return { cpu: 0, rssBytes };
    const seconds = Number(now - previous.atNs) / 1e9;
    return { cpu: seconds > 0 ? Math.max(0, ticks - previous.ticks) / clockTicks() / seconds : 0, rssBytes };
  }
}

/** Samples this process: every thread (piscina workers included) counts, as process.cpuUsage() does. */
export class SelfUsageSampler {
  private last = { usage: process.cpuUsage(), atNs: process.hrtime.bigint() };

  sample(): UsageSample {
    const usage = process.cpuUsage();
    const now = process.hrtime.bigint();
    const seconds = Number(now - this.last.atNs) / 1e9;
    const micros = usage.user - this.last.usage.user + (usage.system - this.last.usage.system);
    this.last = { usage, atNs: now };
    return { cpu: seconds > 0 ? Math.max(0, micros) / 1e6 / seconds : 0, rssBytes: process.memoryUsage.rss() };
  }
}
