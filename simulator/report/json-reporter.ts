/**
 * The reporter for machines (`--json`): NDJSON on stdout, one object per line with a `type` field, in
 * the order things happen: `start`, `phase`, `point` (a timeline point, with the cumulative counters per
 * fleet when the orchestrator has them), `event`, and last `result` (the whole run.json plus where it was
 * written; non-finite numbers are strings, as in run.json). Human text (the summary) goes to
 * `writeErr`, so stdout stays parseable line by line.
 */
import type { FleetCounters } from '../metrics/types.js';
import type { Reporter, RunEvent } from './reporter.js';
import type { RunResult, TimelinePoint } from './run-result.js';
import { formatReportLine } from './plain-reporter.js';
import { formatSummary } from './summary.js';

/** Every line the json reporter writes. */
export type JsonReportLine =
  | { type: 'start'; scenario: string; targetDescription: string; workers: number; devices: number; durationMs: number; drainMs: number; fleets: Array<{ name: string; model: string; count: number }> }
  | { type: 'phase'; phase: string; atMs: number }
  | { type: 'point'; point: TimelinePoint; counters?: Record<string, FleetCounters> }
  | ({ type: 'event' } & RunEvent)
  /** Only with `--start-at stdin` (a process of `run --processes`): consumers subscribed, waiting for t=0 on stdin. */
  | { type: 'ready'; pid: number }
  | { type: 'result'; reportDir: string | null; result: RunResult };

/** As in run.json: non-finite numbers (`connectRatePerSec: Infinity`) as strings, not the null JSON.stringify writes. */
function replaceNonFinite(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

export function formatJsonLine(line: JsonReportLine): string {
  return `${JSON.stringify(line, replaceNonFinite)}\n`;
}

export function createJsonReporter(writeOut: (text: string) => void, writeErr: (text: string) => void): Reporter {
  const emit = (line: JsonReportLine): void => writeOut(formatJsonLine(line));
  return {
    start(info) {
      const s = info.scenario;
      emit({
        type: 'start',
        scenario: s.name,
        targetDescription: info.targetDescription,
        workers: info.workers,
        devices: info.devices,
        durationMs: s.durationMs,
        drainMs: s.drainMs,
        fleets: s.fleets.map((f) => ({ name: f.name, model: f.model, count: f.count })),
      });
    },
    phase(name, atMs) {
      emit({ type: 'phase', phase: name, atMs });
    },
    point(point, live) {
      emit(live === undefined ? { type: 'point', point } : { type: 'point', point, counters: { ...live } });
    },
    event(e) {
      emit({ type: 'event', ...e });
    },
    finish(result, reportDir) {
      writeErr(formatSummary(result));
      if (reportDir !== null) writeErr(`${formatReportLine(reportDir)}\n`);
      emit({ type: 'result', reportDir, result });
    },
  };
}
