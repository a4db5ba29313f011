import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createJsonReporter, type JsonReportLine } from '../../../../simulator/report/json-reporter.js';
import type { RunResult } from '../../../../simulator/report/run-result.js';
import { formatSummary } from '../../../../simulator/report/summary.js';
import { readRunResult } from '../../../../simulator/report/write-run.js';

const fixturePath = fileURLToPath(new URL('../../../fixtures/simulator/run-result.json', import.meta.url));
const fixture = (): RunResult => readRunResult(fixturePath);

describe('json reporter', () => {
  it('writes one JSON object per line on stdout, in call order, ending with the result; the summary on stderr', () => {
    const result = fixture();
    let out = '';
    let err = '';
    const reporter = createJsonReporter((t) => (out += t), (t) => (err += t));
    reporter.start({ scenario: result.scenario, targetDescription: 'mqtt://broker:1883', workers: 2, devices: 202 });
    reporter.phase('ramp-up', 0);
    reporter.point(result.timeline[0]!, result.fleets);
    reporter.point(result.timeline[1]!);
    reporter.event({ atMs: 2000, level: 'warn', message: 'chaos: partition of sensors' });
    reporter.finish(result, 'reports/x');

    expect(out.endsWith('\n')).toBe(true);
    const lines = out.trimEnd().split('\n').map((l) => JSON.parse(l) as JsonReportLine);
    expect(lines.map((l) => l.type)).toEqual(['start', 'phase', 'point', 'point', 'event', 'result']);
    expect(lines[0]).toMatchObject({ type: 'start', scenario: 'pipeline-small', devices: 202, workers: 2, durationMs: 60_000, fleets: [{ name: 'pressure-sensors', model: 'sensor', count: 200 }, { name: 'historian', model: 'consumer', count: 2 }] });
    expect(lines[1]).toEqual({ type: 'phase', phase: 'ramp-up', atMs: 0 });
    expect(lines[2]).toEqual({ type: 'point', point: result.timeline[0], counters: result.fleets });
    expect(lines[3]).toEqual({ type: 'point', point: result.timeline[1] });
    expect(lines[4]).toEqual({ type: 'event', atMs: 2000, level: 'warn', message: 'chaos: partition of sensors' });
    const last = lines[5] as Extract<JsonReportLine, { type: 'result' }>;
    expect(last.reportDir).toBe('reports/x');
    expect(last.result.totals).toEqual(result.totals);
    expect(last.result.checker).toEqual(result.checker);
    // Infinity is written as in run.json ("as fast as possible"), not as null.
    expect(last.result.scenario.fleets[1]!.connectRatePerSec).toBe('Infinity');
    expect(err).toBe(`${formatSummary(result)}report: reports/x/run.json\n`);
  });
});
