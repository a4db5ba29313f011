/**
 * A dashboard fed from the fixture run (test/fixtures/simulator/run-result.json) as the orchestrator
 * would feed it: start, a phase per change, every timeline point with cumulative counters, a chaos event.
 * Wall times are derived from a fixed t0, so frames do not depend on the clock.
 */
import { fileURLToPath } from 'node:url';
import { cloneCounters } from '../../../../simulator/metrics/counters.js';
import type { FleetCounters } from '../../../../simulator/metrics/types.js';
import { initialDashboardState, reduceDashboard, type DashboardAction, type DashboardState } from '../../../../simulator/dashboard/state.js';
import type { RunResult } from '../../../../simulator/report/run-result.js';
import { readRunResult } from '../../../../simulator/report/write-run.js';

const fixturePath = fileURLToPath(new URL('../../../fixtures/simulator/run-result.json', import.meta.url));
export const fixture = (): RunResult => readRunResult(fixturePath);

/** Wall time of the start call. */
export const t0 = 1_740_823_200_000;

export const startInfo = (result: RunResult) => ({
  scenario: result.scenario,
  targetDescription: 'embedded reference broker mqtt://127.0.0.1:40123 (pid 4242)',
  workers: 2,
  devices: 202,
});

/** The final counters scaled to a moment of the run (rounded down), with a few network faults on the sensors. */
export function countersAt(result: RunResult, atMs: number): Record<string, FleetCounters> {
  const share = Math.min(1, atMs / result.scenario.durationMs);
  const scale = (t: [number, number, number]): [number, number, number] => [Math.floor(t[0] * share), Math.floor(t[1] * share), Math.floor(t[2] * share)];
  const out: Record<string, FleetCounters> = {};
  for (const [name, final] of Object.entries(result.fleets)) {
    const c = cloneCounters(final);
    c.published = scale(final.published);
    c.acknowledged = scale(final.acknowledged);
    c.delivered = scale(final.delivered);
    c.duplicates = scale(final.duplicates);
    c.reordered = scale(final.reordered);
    c.reconnects = atMs >= 31_000 ? final.reconnects : 0;
    if (name === 'pressure-sensors') c.faults = { disconnects: 3, resets: 2, halfOpen: 1, slowCloses: 0, refused: 4, stalls: 57 };
    out[name] = c;
  }
  return out;
}

/** Every reporter call of the fixture run up to run time `untilMs`, as dashboard actions. */
export function actionsUntil(result: RunResult, untilMs: number): DashboardAction[] {
  const actions: DashboardAction[] = [{ type: 'start', at: t0, info: startInfo(result) }];
  let phase = '';
  for (const p of result.timeline) {
    if (p.atMs > untilMs) break;
    if (p.phase !== phase) {
      phase = p.phase;
      actions.push({ type: 'phase', at: t0 + 400 + p.atMs, name: p.phase, atMs: p.atMs });
    }
    actions.push({ type: 'point', at: t0 + 400 + p.atMs, point: p, live: countersAt(result, p.atMs) });
    if (p.atMs === 12_000) actions.push({ type: 'event', at: t0 + 400 + 20_000, event: { atMs: 20_000, level: 'info', message: 'chaos: kill the embedded broker (SIGKILL), restart after 2.0 s' } });
  }
  return actions;
}

export function stateUntil(result: RunResult, untilMs: number): DashboardState {
  return actionsUntil(result, untilMs).reduce(reduceDashboard, initialDashboardState());
}

/** The state after the run finished, the final summary from the fixture (wall time: its duration after t0). */
export function finishedState(result: RunResult): DashboardState {
  const running = stateUntil(result, Infinity);
  return reduceDashboard(running, { type: 'finish', at: t0 + 65_400, result, reportDir: 'reports/pipeline-small-20250301-100000' });
}
