import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { RunResult, TimelinePoint } from '../../../../simulator/report/run-result.js';
import {
  createPlainReporter, formatEventLine, formatProgressLine, formatSaturationLine, formatStartLine,
} from '../../../../simulator/report/plain-reporter.js';
import type { Reporter } from '../../../../simulator/report/reporter.js';
import { formatSummary } from '../../../../simulator/report/summary.js';
import { readRunResult } from '../../../../simulator/report/write-run.js';

const fixturePath = fileURLToPath(new URL('../../../fixtures/simulator/run-result.json', import.meta.url));
const fixture = (): RunResult => readRunResult(fixturePath);

function capture(everyMs?: number): { reporter: Reporter; text: () => string; lines: () => string[] } {
  let out = '';
  const reporter = createPlainReporter((t) => (out += t), everyMs === undefined ? {} : { everyMs });
  return { reporter, text: () => out, lines: () => out.split('\n').filter((l) => l !== '') };
}

function point(result: RunResult, atMs: number): TimelinePoint {
  const p = result.timeline.find((t) => t.atMs === atMs);
  if (p === undefined) throw new Error(`the fixture has no timeline point at ${atMs} ms`);
  return p;
}

function startInfo(result: RunResult): Parameters<Reporter['start']>[0] {
  return { scenario: result.scenario, targetDescription: 'embedded reference broker mqtt://127.0.0.1:40123', workers: 2, devices: 202 };
}

describe('plain reporter line formatters', () => {
  it('formats a progress line with connected/devices, rates, interval latency and reconnects', () => {
    const result = fixture();
    expect(formatProgressLine(point(result, 12_000), 202)).toMatchInlineSnapshot(
      `"[  12s steady   ] connected 202/202  out 3,412/s  in 3,412/s  e2e p50 3.1 ms p99 18 ms  reconnects 0"`,
    );
    expect(formatProgressLine(point(result, 55_000), 202)).toMatchInlineSnapshot(
      `"[  55s ramp-down] connected 102/202  out 100/s  in 100/s  e2e p50 - p99 -  reconnects 3"`,
    );
  });

  it('explains a saturated generator from the point figures', () => {
    expect(formatSaturationLine(point(fixture(), 31_000))).toMatchInlineSnapshot(
      `"[  31s] warn: generator saturated: event-loop delay p99 104 ms, schedule slip p99 231 ms, cpu 97% (latencies may be the generator's, not the broker's)"`,
    );
  });

  it('prefixes warn and error events, not info', () => {
    expect(formatEventLine({ atMs: 4200, level: 'info', message: 'consumers ready' })).toBe('[   4s] consumers ready');
    expect(formatEventLine({ atMs: 4200, level: 'warn', message: '3 connect failures' })).toBe('[   4s] warn: 3 connect failures');
    expect(formatEventLine({ atMs: 61_000, level: 'error', message: 'broker exited' })).toBe('[  61s] error: broker exited');
  });

  it('describes the run at start', () => {
    expect(formatStartLine(startInfo(fixture()))).toMatchInlineSnapshot(
      `"mqtt-sim run "pipeline-small": 202 devices in 2 fleets → embedded reference broker mqtt://127.0.0.1:40123, 2 workers, 1m 00s (ramp-up 10.0 s, steady 40.0 s, ramp-down 10.0 s), seed 42"`,
    );
  });
});

describe('createPlainReporter', () => {
  it('prints a progress line at most every everyMs of run time', () => {
    const result = fixture();
    const out = capture(5000);
    for (const p of result.timeline.filter((t) => !t.generator.saturated)) out.reporter.point(p);
    // 1 s printed; 3 s is within 5 s of it; 12 s and 55 s are printed.
    expect(out.lines().map((l) => l.slice(0, 7))).toEqual(['[   1s ', '[  12s ', '[  55s ']);
  });

  it('keeps the saturation warning of a point that was not printed for the next progress line', () => {
    const result = fixture();
    const out = capture(30_000);
    out.reporter.point(point(result, 1000));
    out.reporter.point(point(result, 31_000)); // saturated, but printed: 30 s since the last line
    out.reporter.point(point(result, 55_000)); // throttled out
    expect(out.lines()).toEqual([
      formatProgressLine(point(result, 1000), 0),
      formatProgressLine(point(result, 31_000), 0),
      formatSaturationLine(point(result, 31_000)),
    ]);

    const later = capture(30_000);
    later.reporter.point(point(result, 12_000));
    later.reporter.point(point(result, 31_000)); // saturated but throttled out (19 s after the last line)
    later.reporter.point(point(result, 55_000));
    expect(later.lines().slice(1)).toEqual([formatProgressLine(point(result, 55_000), 0), formatSaturationLine(point(result, 31_000))]);
  });

  it('prints a whole run: start, phases, points, events, summary and the report path', async () => {
    const result = fixture();
    const out = capture();
    out.reporter.start(startInfo(result));
    out.reporter.phase('ramp-up', 0);
    for (const p of result.timeline) {
      if (p.atMs === 12_000) out.reporter.phase('steady', 10_000);
      if (p.atMs === 55_000) out.reporter.phase('ramp-down', 50_000);
      out.reporter.point(p);
      if (p.atMs === 31_000) out.reporter.event({ atMs: 31_000, level: 'warn', message: '3 devices of pressure-sensors disconnected (error: ECONNRESET)' });
    }
    out.reporter.finish(result, 'reports/pipeline-small-20250301-100000');
    const text = out.text();
    expect(text.endsWith(`${formatSummary(result)}report: reports/pipeline-small-20250301-100000/run.json\n`)).toBe(true);
    await expect(text).toMatchFileSnapshot('./__snapshots__/plain-reporter.txt');
  });

  it('prints no report line when no report was written', () => {
    const out = capture();
    out.reporter.finish(fixture(), null);
    expect(out.text()).not.toContain('report:');
    expect(out.lines().at(-1)).toBe('FAIL: 1 of 2 assertions failed');
  });
});
