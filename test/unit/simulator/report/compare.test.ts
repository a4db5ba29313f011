import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  compareRuns, CompareInputError, defaultCompareMetrics, formatComparisonJson, formatComparisonMarkdown, formatComparisonTable, metricDirection, parseThresholds,
} from '../../../../simulator/report/compare.js';
import type { RunResult } from '../../../../simulator/report/run-result.js';
import { readRunResult } from '../../../../simulator/report/write-run.js';

const fixturePath = fileURLToPath(new URL('../../../fixtures/simulator/run-result.json', import.meta.url));
const fixture = (): RunResult => readRunResult(fixturePath);

/** The fixture with e2e p99 at `p99` ms (fixture: 17.8). */
function withP99(p99: number): RunResult {
  const r = fixture();
  r.latency['e2e'] = { ...r.latency['e2e']!, p99 };
  return r;
}

const row = (c: ReturnType<typeof compareRuns>, metric: string) => c.rows.find((r) => r.metric === metric)!;

describe('compareRuns', () => {
  it('compares the default metrics, all ok for the same run', () => {
    const c = compareRuns(fixture(), fixture());
    expect(c.rows.map((r) => r.metric)).toEqual(defaultCompareMetrics);
    expect(c.rows.every((r) => r.status === 'same')).toBe(true);
    expect(c.regressions).toEqual([]);
  });

  it('fails a latency regression beyond its threshold', () => {
    const c = compareRuns(fixture(), withP99(20), { thresholds: parseThresholds('latency.e2e.p99=10%') });
    const r = row(c, 'latency.e2e.p99');
    expect(r.status).toBe('regressed');
    expect(r.change).toBeCloseTo(2.2 / 17.8, 6);
    expect(r.reason).toBe('+12.4%, beyond 10%');
    expect(c.regressions.map((x) => x.metric)).toEqual(['latency.e2e.p99']);
  });

  it('passes a latency increase within its threshold, and an improvement', () => {
    expect(row(compareRuns(fixture(), withP99(19), { thresholds: parseThresholds('latency.e2e.p99=10%') }), 'latency.e2e.p99').status).toBe('worse');
    expect(row(compareRuns(fixture(), withP99(5), { thresholds: parseThresholds('latency.e2e.p99=10%') }), 'latency.e2e.p99').status).toBe('better');
    // The default latency threshold is 20%.
    expect(compareRuns(fixture(), withP99(20)).regressions).toEqual([]);
  });

  it('is direction-aware: lower throughput regresses, higher does not', () => {
    const slower = fixture();
    for (const p of slower.timeline) p.deliveredPerSec *= 0.9;
    const faster = fixture();
    for (const p of faster.timeline) p.deliveredPerSec *= 1.5;
    const thresholds = parseThresholds('throughput=5%');
    expect(row(compareRuns(fixture(), slower, { thresholds }), 'throughput.delivered').status).toBe('regressed');
    expect(row(compareRuns(fixture(), faster, { thresholds }), 'throughput.delivered').status).toBe('better');
    expect(row(compareRuns(faster, fixture(), { thresholds }), 'throughput.delivered').status).toBe('regressed');
  });

  it('treats any rise of lost messages or violations from 0 as a regression', () => {
    const lossy = fixture();
    lossy.checker!.byQos[1].lost = 1;
    lossy.checker!.violations.total = 1;
    const c = compareRuns(fixture(), lossy, { thresholds: parseThresholds('*=50%') });
    expect(row(c, 'qos1.lost')).toMatchObject({ status: 'regressed', reason: 'rose from 0 to 1', change: null });
    expect(row(c, 'violations').status).toBe('regressed');
    // The other way round is an improvement.
    expect(compareRuns(lossy, fixture()).regressions).toEqual([]);
  });

  it('fails when the candidate has no data for a metric the baseline had', () => {
    const silent = fixture();
    silent.latency = {};
    expect(row(compareRuns(fixture(), silent), 'latency.e2e.p50')).toMatchObject({ status: 'regressed', candidate: null });
  });

  it('compares any catalog metric: thresholds add their metrics, --metrics replaces the defaults', () => {
    const c = compareRuns(fixture(), fixture(), { metrics: ['reconnects'], thresholds: parseThresholds('fleets.historian.qos1.delivered=1%,latency.connect.p99=5ms') });
    expect(c.rows.map((r) => r.metric)).toEqual(['reconnects', 'fleets.historian.qos1.delivered', 'latency.connect.p99']);
    expect(row(c, 'fleets.historian.qos1.delivered').direction).toBe('higher-is-better');
    expect(() => compareRuns(fixture(), fixture(), { metrics: ['latency.e2e.p98'] })).toThrow(/unknown metric latency\.e2e\.p98; did you mean latency\.e2e\.p9\d\?/);
  });

  it('notes runs from different machines', () => {
    const other = fixture();
    other.environment.cpuModel = 'Apple M2';
    expect(compareRuns(fixture(), other).notes.join('\n')).toMatch(/different machines .*absolute latency/);
  });
});

describe('parseThresholds', () => {
  it('reads relative, absolute and duration limits, comma-separated or repeated', () => {
    expect(parseThresholds(['latency.e2e.p99=10%,throughput=5%', 'latency.connect.p99=2s', 'reconnects=3'])).toEqual([
      { key: 'latency.e2e.p99', threshold: { kind: 'relative', fraction: 0.1 }, source: 'latency.e2e.p99=10%' },
      { key: 'throughput', threshold: { kind: 'relative', fraction: 0.05 }, source: 'throughput=5%' },
      { key: 'latency.connect.p99', threshold: { kind: 'absolute', value: 2000 }, source: 'latency.connect.p99=2s' },
      { key: 'reconnects', threshold: { kind: 'absolute', value: 3 }, source: 'reconnects=3' },
    ]);
  });

  it('rejects bad syntax, unknown metrics and durations on counters with the fix', () => {
    expect(() => parseThresholds('latency.e2e.p99')).toThrow(CompareInputError);
    expect(() => parseThresholds('latency.e2e.p99')).toThrow('--max-regression: expected METRIC=LIMIT like latency.e2e.p99=10% or throughput=5%, got "latency.e2e.p99"');
    expect(() => parseThresholds('latency.e2e.p99=ten')).toThrow(/expected a limit like 10%/);
    expect(() => parseThresholds('latency.e2e.p98=10%')).toThrow(/did you mean latency\.e2e\.p9\d\?/);
    expect(() => parseThresholds('reconnects=5ms')).toThrow('reconnects is not a latency');
  });

  it('applies the most specific rule: exact name, then longest prefix, then *', () => {
    const c = compareRuns(fixture(), fixture(), { thresholds: parseThresholds('*=1%,latency=2%,latency.e2e.p99=3%') });
    expect(row(c, 'latency.e2e.p99').thresholdSource).toBe('latency.e2e.p99=3%');
    expect(row(c, 'latency.e2e.p50').thresholdSource).toBe('latency=2%');
    expect(row(c, 'throughput.published').thresholdSource).toBe('*=1%');
  });
});

describe('metricDirection', () => {
  it('knows which way is worse', () => {
    expect(metricDirection('latency.e2e.p99')).toBe('lower-is-better');
    expect(metricDirection('latency.e2e.count')).toBe('neutral');
    expect(metricDirection('throughput.published')).toBe('higher-is-better');
    expect(metricDirection('qos2.duplicated')).toBe('lower-is-better');
    expect(metricDirection('qos1.delivered')).toBe('higher-is-better');
    expect(metricDirection('bytesOut')).toBe('neutral');
    expect(metricDirection('fleets.a.b.lost', ['a.b'])).toBe('lower-is-better');
  });
});

describe('comparison printers', () => {
  const c = compareRuns(fixture(), withP99(30), { thresholds: parseThresholds('latency.e2e.p99=10%'), labels: { baseline: 'base.json', candidate: 'new.json' } });

  it('prints a table with baseline, candidate, change, threshold and status, and the verdict last', () => {
    const text = formatComparisonTable(c);
    expect(text).toMatch(/^ {2}metric +baseline +candidate +change +threshold +status$/m);
    expect(text).toMatch(/^ {2}latency\.e2e\.p99 +18 ms +30 ms +\+68\.5% +10% +REGRESSED$/m);
    expect(text).toMatch(/^ {2}qos1\.lost +0 +0 +±0\.0% +any rise +ok$/m);
    expect(text.trimEnd().split('\n').at(-1)).toBe('REGRESSED: 1 of 10 metrics beyond their threshold: latency.e2e.p99 (+68.5%, beyond 10%)');
  });

  it('prints Markdown and JSON', () => {
    expect(formatComparisonMarkdown(c)).toContain('| `latency.e2e.p99` | 18 ms | 30 ms | +68.5% | 10% | **REGRESSED** +68.5%, beyond 10% |');
    const json = JSON.parse(formatComparisonJson(c)) as { regressed: boolean; metrics: Array<{ metric: string; status: string }> };
    expect(json.regressed).toBe(true);
    expect(json.metrics.find((m) => m.metric === 'latency.e2e.p99')!.status).toBe('regressed');
  });
});
