import { describe, expect, it } from 'vitest';
import {
  elapsedMs, faultTotals, fleetReconnects, historyLength, initialDashboardState, liveQos, reduceDashboard,
} from '../../../../simulator/dashboard/state.js';
import type { TimelinePoint } from '../../../../simulator/report/run-result.js';
import { finishedState, fixture, startInfo, stateUntil, t0 } from './fixture-run.js';

describe('dashboard state reducer', () => {
  it('takes the scenario, the fleets with their device counts and the start time from start', () => {
    const s = reduceDashboard(initialDashboardState(), { type: 'start', at: t0, info: startInfo(fixture()) });
    expect(s.scenario).toMatchObject({ name: 'pipeline-small', durationMs: 60_000, drainMs: 5000 });
    expect(s.fleets).toEqual([
      { name: 'pressure-sensors', model: 'sensor', devices: 200 },
      { name: 'historian', model: 'consumer', devices: 2 },
    ]);
    expect(s.startedAt).toBe(t0);
    expect(s.log).toEqual([]);
  });

  it('logs a finished phase, with its peaks, when the next one begins, and events as they come', () => {
    const s = stateUntil(fixture(), 31_000);
    expect(s.phase).toEqual({ name: 'steady', atMs: 12_000 });
    expect(s.log).toEqual([
      { id: 0, level: 'info', text: '[  12s] phase ramp-up done after 11.0 s: peak connected 62/202, out 41/s, in 41/s' },
      { id: 1, level: 'info', text: '[  20s] chaos: kill the embedded broker (SIGKILL), restart after 2.0 s' },
    ]);
  });

  it('keeps a bounded history of rates and connected devices for the sparklines', () => {
    let s = reduceDashboard(initialDashboardState(), { type: 'start', at: t0, info: startInfo(fixture()) });
    const p = fixture().timeline[2]!;
    for (let i = 0; i < historyLength + 10; i++) {
      const point: TimelinePoint = { ...p, atMs: i * 1000, publishedPerSec: i };
      s = reduceDashboard(s, { type: 'point', at: t0 + i * 1000, point });
    }
    expect(s.history.published).toHaveLength(historyLength);
    expect(s.history.published.at(-1)).toBe(historyLength + 9);
    expect(s.history.connected.at(-1)).toBe(p.connected);
  });

  it('sums reconnect deltas of points without counters, and prefers the live counters when they come', () => {
    let s = reduceDashboard(initialDashboardState(), { type: 'start', at: t0, info: startInfo(fixture()) });
    for (const p of fixture().timeline) s = reduceDashboard(s, { type: 'point', at: t0 + p.atMs, point: p });
    expect(fleetReconnects(s, 'pressure-sensors')).toBe(fixture().timeline.reduce((n, p) => n + p.fleets['pressure-sensors']!.reconnects, 0));
    expect(liveQos(s)).toBeNull();
    const live = stateUntil(fixture(), 31_000);
    expect(fleetReconnects(live, 'pressure-sensors')).toBe(3);
  });

  it('derives per-QoS totals and fault totals from the live counters', () => {
    const s = stateUntil(fixture(), 31_000);
    const q = liveQos(s)!;
    expect(q.published[1]).toBe(Math.floor(10_412 * 31 / 60));
    expect(q.delivered[1]).toBe(Math.floor(10_412 * 31 / 60));
    expect(faultTotals(s)).toEqual({ disconnects: 3, resets: 2, halfOpen: 1, slowCloses: 0, refused: 4, stalls: 57 });
  });

  it('marks Ctrl-C once, and freezes the elapsed time at finish', () => {
    let s = stateUntil(fixture(), 12_000);
    s = reduceDashboard(s, { type: 'interrupt', at: t0 + 13_000 });
    s = reduceDashboard(s, { type: 'interrupt', at: t0 + 13_100 });
    expect(s.stopping).toBe(true);
    expect(s.log.filter((l) => l.text.startsWith('stopping the run'))).toHaveLength(1);
    expect(elapsedMs(s, t0 + 14_000)).toBe(14_000);
    const done = finishedState(fixture());
    expect(elapsedMs(done, t0 + 999_999)).toBe(65_400);
    expect(done.result?.checker?.verdict).toBe('pass');
    expect(done.counters).toEqual(fixture().fleets);
  });
});
