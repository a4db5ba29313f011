import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { isSaturated, LoopHealthMonitor, saturationReasons, saturationThresholds } from '../../../../simulator/metrics/loop-health.js';
import type { GeneratorHealth } from '../../../../simulator/metrics/types.js';

const calm: GeneratorHealth = { loopDelayP99Ms: 2, loopDelayMaxMs: 8, scheduleSlipP99Ms: 1, scheduleSlipMaxMs: 3, cpu: 0.4 };

describe('isSaturated', () => {
  it('is false within every threshold, including exactly at them', () => {
    expect(isSaturated(calm)).toEqual({ saturated: false });
    expect(isSaturated({ ...calm, ...saturationThresholds })).toEqual({ saturated: false });
  });

  it('names each exceeded threshold', () => {
    expect(isSaturated({ ...calm, loopDelayP99Ms: 73.26 })).toEqual({ saturated: true, reason: 'event-loop delay p99 73.3 ms > 50 ms' });
    expect(isSaturated({ ...calm, scheduleSlipP99Ms: 250 })).toEqual({ saturated: true, reason: 'schedule slip p99 250 ms > 100 ms' });
    expect(isSaturated({ ...calm, cpu: 0.97 })).toEqual({ saturated: true, reason: 'generator cpu 97% > 90% of a core' });
    const all = { loopDelayP99Ms: 60, loopDelayMaxMs: 900, scheduleSlipP99Ms: 101, scheduleSlipMaxMs: 900, cpu: 1.2 };
    expect(saturationReasons(all)).toEqual(['event-loop delay p99 60 ms > 50 ms', 'schedule slip p99 101 ms > 100 ms', 'generator cpu 120% > 90% of a core']);
    expect(isSaturated(all).reason).toBe(saturationReasons(all).join('; '));
  });

  it('does not look at the max values (one outlier is not saturation)', () => {
    expect(isSaturated({ ...calm, loopDelayMaxMs: 5000, scheduleSlipMaxMs: 5000 }).saturated).toBe(false);
  });
});

describe('LoopHealthMonitor', () => {
  let monitor: LoopHealthMonitor | undefined;
  afterEach(() => monitor?.close());

  it('reports schedule slip p99/max over the interval, then resets', () => {
    monitor = new LoopHealthMonitor();
    for (let ms = 1; ms <= 100; ms++) monitor.recordSlip(ms);
    monitor.recordSlip(-3); // early counts as 0
    const h = monitor.sample();
    expect(h.scheduleSlipP99Ms).toBeGreaterThanOrEqual(99);
    expect(h.scheduleSlipP99Ms).toBeLessThan(100.1);
    expect(h.scheduleSlipMaxMs).toBeGreaterThanOrEqual(100);
    expect(h.scheduleSlipMaxMs).toBeLessThan(100.1);
    const next = monitor.sample();
    expect(next.scheduleSlipP99Ms).toBe(0);
    expect(next.scheduleSlipMaxMs).toBe(0);
  });

  it('sees a blocked event loop as loop delay and cpu', async () => {
    monitor = new LoopHealthMonitor();
    monitor.sample();
    await sleep(30);
    const until = performance.now() + 150;
    while (performance.now() < until) { /* block the loop */ }
    await sleep(30);
    const h = monitor.sample();
    expect(h.loopDelayMaxMs).toBeGreaterThan(100);
    expect(h.cpu).toBeGreaterThan(0.3);
    expect(['thread-cpu', 'event-loop-utilization']).toContain(monitor.cpuSource);
  });

  it('close() is idempotent', () => {
    monitor = new LoopHealthMonitor();
    monitor.close();
    monitor.close();
  });
});
