/**
 * Health of the thread that generates load, so a saturated generator is reported instead of being
 * mistaken for a slow broker. One monitor per shard thread; sample() once per snapshot interval.
 */
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import { createHistogram, type Histogram } from './histograms.js';
import type { GeneratorHealth } from './types.js';

/**
 * Saturation thresholds. Beyond them the generator itself adds latency, so broker latencies measured
 * in the same interval are suspect.
 */
export const saturationThresholds = {
  /** Event-loop delay p99 (monitorEventLoopDelay), ms: timers and socket reads run this late. */
  loopDelayP99Ms: 50,
  /** Schedule slip p99, ms: publishes go out this much later than planned. */
  scheduleSlipP99Ms: 100,
  /** CPU of the shard thread, fraction of one core. */
  cpu: 0.9,
} as const;

/** Whether a health sample shows a saturated generator, and why (reasons joined with '; '). */
export function isSaturated(h: GeneratorHealth): { saturated: boolean; reason?: string } {
  const reasons = saturationReasons(h);
  return reasons.length === 0 ? { saturated: false } : { saturated: true, reason: reasons.join('; ') };
}

/** One human-readable reason per exceeded threshold; empty when the generator kept up. */
export function saturationReasons(h: GeneratorHealth): string[] {
  const reasons: string[] = [];
  const t = saturationThresholds;
  if (h.loopDelayP99Ms > t.loopDelayP99Ms) reasons.push(`event-loop delay p99 ${round1(h.loopDelayP99Ms)} ms > ${t.loopDelayP99Ms} ms`);
  if (h.scheduleSlipP99Ms > t.scheduleSlipP99Ms) reasons.push(`schedule slip p99 ${round1(h.scheduleSlipP99Ms)} ms > ${t.scheduleSlipP99Ms} ms`);
  if (h.cpu > t.cpu) reasons.push(`generator cpu ${Math.round(h.cpu * 100)}% > ${Math.round(t.cpu * 100)}% of a core`);
  return reasons;
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/** process.threadCpuUsage() appeared after Node 20 (v23.9); feature-detected, typed here. */
type ThreadCpuUsage = (previous?: NodeJS.CpuUsage) => NodeJS.CpuUsage;

function threadCpuUsageFn(): ThreadCpuUsage | undefined {
  const candidate = (process as unknown as { threadCpuUsage?: unknown }).threadCpuUsage;
  return typeof candidate === 'function' ? (candidate.bind(process) as ThreadCpuUsage) : undefined;
}

/** Where the cpu figure comes from. */
export type CpuSource = 'thread-cpu' | 'event-loop-utilization';

export class LoopHealthMonitor {
  /**
   * `thread-cpu` when process.threadCpuUsage exists (user+system time of this thread / wall time).
   * Otherwise (Node 20) `event-loop-utilization`: the fraction of wall time this thread's event loop
   * was busy. process.cpuUsage() is not used because in a worker it counts every thread of the
   * process, so N busy shards would each report N times their load and all look saturated.
   */
  readonly cpuSource: CpuSource;
  private readonly loop: IntervalHistogram;
  private readonly slip: Histogram = createHistogram();
  private readonly threadCpu: ThreadCpuUsage | undefined;
  private lastCpu: NodeJS.CpuUsage | undefined;
  private lastElu: EventLoopUtilization | undefined;
  private lastWallMs: number;
  private closed = false;

  constructor() {
    this.loop = monitorEventLoopDelay({ resolution: 10 });
    this.loop.enable();
    this.threadCpu = threadCpuUsageFn();
    this.cpuSource = this.threadCpu !== undefined ? 'thread-cpu' : 'event-loop-utilization';
    if (this.threadCpu !== undefined) this.lastCpu = this.threadCpu();
    else this.lastElu = performance.eventLoopUtilization();
    this.lastWallMs = performance.now();
  }

  /** How late a scheduled publish went out, ms (negative values count as 0). */
  recordSlip(ms: number): void {
    if (ms !== ms) return;
    this.slip.recordValue(ms <= 0 ? 0 : Math.min(Math.round(ms * 1000), 3_600_000_000));
  }

  /** Health over the interval since the previous sample (or construction); resets the interval. */
  sample(): GeneratorHealth {
    const nowMs = performance.now();
    const wallMs = nowMs - this.lastWallMs;
    this.lastWallMs = nowMs;

    let loopDelayP99Ms = 0;
    let loopDelayMaxMs = 0;
    if (this.loop.count > 0) {
      loopDelayP99Ms = this.loop.percentile(99) / 1e6;
      loopDelayMaxMs = this.loop.max / 1e6;
    }
    this.loop.reset();

    let scheduleSlipP99Ms = 0;
    let scheduleSlipMaxMs = 0;
    if (this.slip.totalCount > 0) {
      scheduleSlipP99Ms = this.slip.getValueAtPercentile(99) / 1000;
      scheduleSlipMaxMs = this.slip.maxValue / 1000;
    }
    this.slip.reset();

    let cpu = 0;
    if (this.threadCpu !== undefined) {
      const now = this.threadCpu();
      const last = this.lastCpu ?? { user: 0, system: 0 };
      this.lastCpu = now;
      if (wallMs > 0) cpu = (now.user - last.user + now.system - last.system) / 1000 / wallMs;
    } else {
      const elu = performance.eventLoopUtilization();
      cpu = performance.eventLoopUtilization(elu, this.lastElu).utilization;
      this.lastElu = elu;
    }
    if (!Number.isFinite(cpu) || cpu < 0) cpu = 0;

    return {
      loopDelayP99Ms: round3(loopDelayP99Ms),
      loopDelayMaxMs: round3(loopDelayMaxMs),
      scheduleSlipP99Ms: round3(scheduleSlipP99Ms),
      scheduleSlipMaxMs: round3(scheduleSlipMaxMs),
      cpu: round3(cpu),
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.loop.disable();
  }
}
