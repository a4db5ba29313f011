/**
 * Frames of the dashboard view for fixed states of the fixture run, at a fixed `now`: mid-run (live QoS
 * counters, lost "at end", a saturated generator, faults, the broker), a narrow terminal, a short one,
 * and the end (the delivery checker's figures). Colors are stripped, so frames read the same everywhere.
 */
import { createElement } from 'react';
import { stripVTControlCharacters } from 'node:util';
import { render, cleanup } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import { Dashboard, formatClock, liveLines } from '../../../../simulator/dashboard/dashboard.js';
import { initialDashboardState, type DashboardState } from '../../../../simulator/dashboard/state.js';
import { finishedState, fixture, stateUntil, t0 } from './fixture-run.js';

afterEach(() => cleanup());

function frame(state: DashboardState, now: number, width: number, height?: number): string {
  const props = height === undefined ? { state, now, width } : { state, now, width, height };
  const { lastFrame } = render(createElement(Dashboard, props));
  return stripVTControlCharacters(lastFrame() ?? '');
}

/** Every line of the live area, as text. */
function live(state: DashboardState, now: number, width: number, height?: number): string[] {
  return liveLines(state, now, width, height).map((l) => l.map((s) => s.text).join(''));
}

describe('dashboard frames', () => {
  it('shows phase, time, fleets, live QoS counters, sparklines, broker, generator saturation and faults mid-run', () => {
    const state = stateUntil(fixture(), 31_000);
    expect(frame(state, t0 + 31_700, 100)).toMatchInlineSnapshot(`
      "[  12s] phase ramp-up done after 11.0 s: peak connected 62/202, out 41/s, in 41/s
      [  20s] chaos: kill the embedded broker (SIGKILL), restart after 2.0 s
      mqtt-sim run pipeline-small  steady  elapsed 31s of 1m 00s + drain ≤ 5s  █████████████░░░░░░░░░░░░░░
      202 devices in 2 fleets · 2 workers → embedded reference broker mqtt://127.0.0.1:40123 (pid 4242)

      fleet             connected  out/s  in/s  p50 ms  p99 ms  reconnects
      pressure-sensors    197/200    198     0     3.4      41           3
      historian               2/2      0   180       -       -           0
      total               199/202    198   180     3.4      41           3

      QoS guarantees  live · lost/indeterminate checked at the end
         qos    sent  acked  delivered  duplicated  reordered    lost  indeterminate
      ·  qos0      0      -          0           0          0  at end         at end
      ✓  qos1  5,379  5,379      5,379           3          0  at end         at end
      ·  qos2      0      0          0           0          0  at end         at end

      out/s      ▁▁█▁                                                                            198
      in/s       ▁▁█▁                                                                            180
      connected  ▁▃██                                                                            199/202
      broker     cpu 20%  rss 86.0 MiB
      generator  cpu 97%  loop delay p99 104 ms  schedule slip p99 231 ms
      ⚠ generator saturated: latencies may be the generator's, not the broker's
      faults     resets 2  half-open 1  slow closes 0  refused 4  stalls 57

      Ctrl-C stops the run and still writes the report"
    `);
  });

  it('fits a narrow terminal: columns are dropped and cut, no line is wider than the terminal', () => {
    const state = stateUntil(fixture(), 31_000);
    const text = frame(state, t0 + 31_700, 60);
    expect(text).toMatchInlineSnapshot(`
      "[  12s] phase ramp-up done after 11.0 s: peak connected 62/202, out 41/s, in 41/s
      [  20s] chaos: kill the embedded broker (SIGKILL), restart after 2.0 s
      mqtt-sim run pipeline-small  steady  31s/1m 00s  █████░░░░░░
      202 devices in 2 fleets · 2 workers → embedded reference br…

      fleet             connected  out/s  in/s  p99 ms  reconnects
      pressure-sensors    197/200    198     0      41           3
      historian               2/2      0   180       -           0
      total               199/202    198   180      41           3

      QoS guarantees  live · lost/indeterminate checked at the end
         qos    sent  delivered  duplicated  reordered    lost
      ·  qos0      0          0           0          0  at end
      ✓  qos1  5,379      5,379           3          0  at end
      ·  qos2      0          0           0          0  at end

      out/s      ▁▁█▁                                    198
      in/s       ▁▁█▁                                    180
      connected  ▁▃██                                    199/202
      broker     cpu 20%  rss 86.0 MiB
      generator  cpu 97%  loop delay p99 104 ms  schedule slip p9…
      ⚠ generator saturated: latencies may be the generator's, no…
      faults     resets 2  half-open 1  slow closes 0  refused 4 …

      Ctrl-C stops the run and still writes the report"
    `);
    for (const line of live(state, t0 + 31_700, 60)) expect(line.length).toBeLessThanOrEqual(60);
    for (const line of live(state, t0 + 31_700, 40)) expect(line.length).toBeLessThanOrEqual(40);
  });

  it('drops blank lines, then the sparklines, before the live area reaches the terminal height', () => {
    const state = stateUntil(fixture(), 31_000);
    const tall = live(state, t0 + 31_700, 100);
    const short = live(state, t0 + 31_700, 100, 18);
    expect(tall.length).toBeGreaterThanOrEqual(18);
    expect(short.length).toBeLessThan(18);
    expect(short.some((l) => l.startsWith('out/s'))).toBe(false);
    expect(short.some((l) => l.startsWith('⚠ generator saturated'))).toBe(true);
  });

  it('shows the delivery checker verdict and its final figures at the end, and where the report is', () => {
    const state = finishedState(fixture());
    expect(frame(state, t0 + 70_000, 100)).toMatchInlineSnapshot(`
      "[  12s] phase ramp-up done after 11.0 s: peak connected 62/202, out 41/s, in 41/s
      [  20s] chaos: kill the embedded broker (SIGKILL), restart after 2.0 s
      [  55s] phase steady done after 43.0 s: peak connected 202/202, out 3,412/s, in 3,412/s
      [  55s] phase ramp-down done after 0.0 s: peak connected 102/202, out 100/s, in 100/s
      mqtt-sim run pipeline-small  completed  elapsed 1m 05s of 1m 00s + drain ≤ 5s  █████████████████████
      202 devices in 2 fleets · 2 workers → embedded reference broker mqtt://127.0.0.1:40123 (pid 4242)

      fleet             connected  out/s  in/s  p50 ms  p99 ms  reconnects
      pressure-sensors    100/200    100     0       -       -           3
      historian               2/2      0   100       -       -           0
      total               102/202    100   100       -       -           3

      QoS guarantees  delivery checker: PASS  checked in 3.4 ms
         qos     sent   acked  delivered  duplicated  reordered  lost  indeterminate
      ·  qos0       0       -          0           0          0     0              0
      ✓  qos1  10,412  10,412     10,412           7          0     0              0
      ·  qos2       0       0          0           0          0     0              0

      out/s      ▁▁█▁▁                                                                           100
      in/s       ▁▁█▁▁                                                                           100
      connected  ▁▃██▅                                                                           102/202
      broker     cpu 8%  rss 84.0 MiB
      generator  cpu 20%  loop delay p99 11 ms  schedule slip p99 0.30 ms

      report: reports/pipeline-small-20250301-100000/run.json"
    `);
  });

  it('shows a starting line before the run starts, and a stopping notice after Ctrl-C', () => {
    expect(frame(initialDashboardState(), t0, 80)).toMatchInlineSnapshot(`
      "mqtt-sim run: starting…

      Ctrl-C stops the run and still writes the report"
    `);
    const stopping: DashboardState = { ...stateUntil(fixture(), 3000), stopping: true };
    const lines = live(stopping, t0 + 3500, 100);
    expect(lines[0]).toContain('stopping');
    expect(lines.at(-1)).toMatch(/^stopping: finishing the shards and writing the report/);
  });

  it('formats the elapsed time in whole seconds', () => {
    expect([formatClock(0), formatClock(7_999), formatClock(65_000), formatClock(3_723_000)]).toEqual(['0s', '7s', '1m 05s', '1h 02m 03s']);
  });
});
