import { describe, expect, it } from 'vitest';
import type { FleetCounters } from '../../../../simulator/metrics/types.js';
import {
  AssertionSyntaxError, evaluateAssertions, isKnownMetric, knownMetrics, metricProblem, parseAssertion,
} from '../../../../simulator/report/assertions.js';
import type { LatencySummary, RunResult, TimelinePoint } from '../../../../simulator/report/run-result.js';
import { emptyCheckerResult, emptyClassCounts, type CheckerResult } from '../../../../simulator/verify/checker.js';

function counters(over: Partial<FleetCounters> = {}): FleetCounters {
  return {
    connected: 0, devices: 0, connectAttempts: 0, connects: 0, connectFailures: 0, reconnects: 0,
    disconnects: { normal: 0, server: 0, error: 0, timeout: 0, refused: 0, protocol: 0 },
    published: [0, 0, 0], acknowledged: [0, 0, 0], rejected: [0, 0, 0], delivered: [0, 0, 0], duplicates: [0, 0, 0], reordered: [0, 0, 0],
    retainedReceived: 0, foreign: 0, droppedOffline: 0, bytesOut: 0, bytesIn: 0, ...over,
  };
}

const latency = (p99: number): LatencySummary => ({ count: 10, min: 1, mean: 5, p50: 4, p90: 8, p95: 9, p99, p999: p99, max: p99 });

function point(phase: TimelinePoint['phase'], published: number, delivered: number, connected: number): TimelinePoint {
  return {
    atMs: 0, phase, connected, publishedPerSec: published, deliveredPerSec: delivered, e2eP50Ms: null, e2eP99Ms: null, fleets: {},
    generator: { loopDelayP99Ms: 0, scheduleSlipP99Ms: 0, cpu: 0, saturated: false },
  };
}

function result(over: Partial<RunResult> = {}): RunResult {
  return {
    totals: counters({
      published: [10, 20, 30], delivered: [10, 19, 30], duplicates: [0, 2, 0], connects: 5,
      disconnects: { normal: 4, server: 0, error: 1, timeout: 0, refused: 0, protocol: 0 },
    }),
    fleets: { 'valve.plcs': counters({ published: [0, 7, 0] }) },
    latency: { e2e: latency(12.34), 'e2e.qos1': latency(40) },
    timeline: [point('ramp-up', 10, 10, 3), point('steady', 100, 90, 5), point('steady', 200, 190, 5), point('ramp-down', 5, 5, 2)],
    generator: { saturated: true, reasons: [], loopDelayMaxMs: 0, scheduleSlipP99Ms: 0 },
    ...over,
  } as RunResult;
}

const judge = (text: string, r: RunResult = result()) => evaluateAssertions([parseAssertion(text)], r)[0]!;

describe('parseAssertion', () => {
  it('reads metric, operator and value with units', () => {
    expect(parseAssertion('latency.e2e.p99 < 500ms')).toEqual({ source: 'latency.e2e.p99 < 500ms', metric: 'latency.e2e.p99', op: '<', value: 500 });
    expect(parseAssertion('latency.connect.max<=2s').value).toBe(2000);
    expect(parseAssertion('latency.e2e.max < 1.5m').value).toBe(90_000);
    expect(parseAssertion('latency.e2e.max < 1h').value).toBe(3_600_000);
    expect(parseAssertion('qos2.duplicated == 0')).toMatchObject({ op: '==', value: 0 });
    expect(parseAssertion('x >= 10%').value).toBeCloseTo(0.1);
    expect(parseAssertion('x != -1').value).toBe(-1);
  });

  it('rejects bad syntax with the fix', () => {
    expect(() => parseAssertion('qos2.duplicated')).toThrow(AssertionSyntaxError);
    expect(() => parseAssertion('qos2.duplicated = 0')).toThrow('"qos2.duplicated = 0": use == for equality, e.g. qos2.duplicated == 0');
  });
});

describe('metric catalog', () => {
  it('knows latency, counters, throughput and per-fleet counters', () => {
    for (const m of ['latency.e2e.qos2.p999', 'latency.reconnect.count', 'qos0.reordered', 'bytesIn', 'disconnects.timeout', 'throughput.delivered', 'connected.max', 'generator.saturated', 'fleets.any.name.qos1.published']) {
      expect(isKnownMetric(m)).toBe(true);
    }
    expect(isKnownMetric('latency.e2e.p98')).toBe(false);
    expect(knownMetrics.length).toBeGreaterThan(90);
  });

  it('suggests the closest metric and knows the delivery checker metrics', () => {
    expect(metricProblem('qos1.delivred')).toBe('unknown metric qos1.delivred; did you mean qos1.delivered? see the metric list in docs/scenarios.md');
    for (const m of ['qos1.lost', 'qos2.indeterminate', 'qos0.expired', 'lost', 'indeterminate', 'expired', 'violations']) expect(metricProblem(m)).toBeNull();
    expect(metricProblem('fleets.a.qos1.lost', ['a', 'b'])).toBeNull();
    expect(metricProblem('fleets.a.violations', ['a', 'b'])).toBeNull();
    expect(metricProblem('qos1.lots')).toBe('unknown metric qos1.lots; did you mean qos1.lost? see the metric list in docs/scenarios.md');
    expect(metricProblem('fleets.a.published', ['a', 'b'])).toBeNull();
    expect(metricProblem('fleets.c.published', ['a', 'b'])).toBe('unknown fleet "c" in fleets.c.published; did you mean fleets.a.published? the fleets and consumers are a, b');
  });
});

describe('evaluateAssertions', () => {
  it('passes and fails latency assertions with readable messages', () => {
    expect(judge('latency.e2e.p99 < 500ms')).toEqual({ source: 'latency.e2e.p99 < 500ms', metric: 'latency.e2e.p99', actual: 12.34, passed: true, message: 'latency.e2e.p99 = 12.3 ms < 500 ms ✓' });
    expect(judge('latency.e2e.qos1.p99 < 20ms')).toMatchObject({ actual: 40, passed: false, message: 'latency.e2e.qos1.p99 = 40 ms < 20 ms ✗' });
  });

  it('fails a latency assertion without data, saying why', () => {
    const r = judge('latency.e2e.p99 < 500ms', result({ latency: {} }));
    expect(r).toMatchObject({ actual: null, passed: false });
    expect(r.message).toContain('no data for latency.e2e (nothing was delivered)');
    expect(judge('latency.e2e.count == 0', result({ latency: {} }))).toMatchObject({ actual: 0, passed: true });
  });

  it('sums counters over QoS and reads them per QoS', () => {
    expect(judge('published == 60').passed).toBe(true);
    expect(judge('qos1.duplicated == 0')).toMatchObject({ actual: 2, passed: false, message: 'qos1.duplicated = 2 == 0 ✗' });
    expect(judge('duplicated == 2').passed).toBe(true);
    expect(judge('disconnects == 5').passed).toBe(true);
    expect(judge('disconnects.error == 1').passed).toBe(true);
    expect(judge('connects >= 5').passed).toBe(true);
  });

  it('reads per-fleet counters, fleet names with dots included', () => {
    expect(judge('fleets.valve.plcs.qos1.published == 7')).toMatchObject({ actual: 7, passed: true });
    expect(judge('fleets.nope.published == 0')).toMatchObject({ actual: null, passed: false });
  });

  it('averages throughput over steady points and takes the connected maximum', () => {
    expect(judge('throughput.published == 150')).toMatchObject({ actual: 150, message: 'throughput.published = 150 msg/s == 150 msg/s ✓' });
    expect(judge('throughput.delivered > 100').actual).toBe(140);
    const noSteady = result({ timeline: [point('ramp-up', 10, 0, 1), point('drain', 20, 0, 1)] });
    expect(judge('throughput.published == 15', noSteady).passed).toBe(true);
    expect(judge('connected.max == 5').passed).toBe(true);
    expect(judge('generator.saturated == 0')).toMatchObject({ actual: 1, passed: false });
  });

  it('fails unknown metrics instead of throwing', () => {
    expect(judge('qos1.lots == 0')).toMatchObject({ actual: null, passed: false });
  });

  it('reads lost, expired, indeterminate and violations from the checker result, per QoS, in total and per subscriber fleet', () => {
    expect(judge('qos1.lost == 0')).toMatchObject({ actual: null, passed: false, message: 'qos1.lost == 0 ✗: no data for qos1.lost (this run.json has no delivery checker result)' });
    const checker = emptyCheckerResult();
    checker.byQos[1].lost = 3;
    checker.byQos[2].lost = 1;
    checker.byQos[0].indeterminate = 5;
    checker.violations.total = 4;
    const hist = { byQos: [emptyClassCounts(), { ...emptyClassCounts(), lost: 3 }, emptyClassCounts()] as CheckerResult['byQos'], violations: 3 };
    checker.subscribers['valve.plcs'] = hist;
    const r = result({ checker });
    expect(judge('qos1.lost == 0', r)).toMatchObject({ actual: 3, passed: false, message: 'qos1.lost = 3 == 0 ✗' });
    expect(judge('lost == 4', r).passed).toBe(true);
    expect(judge('qos0.indeterminate == 5', r).passed).toBe(true);
    expect(judge('indeterminate == 5', r).passed).toBe(true);
    expect(judge('expired == 0', r).passed).toBe(true);
    expect(judge('violations == 4', r).passed).toBe(true);
    expect(judge('fleets.valve.plcs.qos1.lost == 3', r).passed).toBe(true);
    expect(judge('fleets.valve.plcs.violations == 3', r).passed).toBe(true);
    // qosN.duplicated stays with the delivery counters (duplicates at the QoS they were delivered at).
    expect(judge('qos1.duplicated == 2', r).passed).toBe(true);
  });
});

describe('broker violation metrics', () => {
  const violations = (over: Partial<NonNullable<FleetCounters['violations']>> = {}): NonNullable<FleetCounters['violations']> => ({
    'qos-above-granted': 0, 'receive-maximum-exceeded': 0, 'packet-too-large': 0, 'unknown-packet-id': 0, 'retain-misuse': 0, 'topic-alias-misuse': 0, ...over,
  });

  it('are in the catalog: brokerViolations and violations.<kind>, also per fleet', () => {
    expect(isKnownMetric('brokerViolations')).toBe(true);
    expect(isKnownMetric('violations.qos-above-granted')).toBe(true);
    expect(isKnownMetric('violations.receive-maximum-exceeded')).toBe(true);
    expect(metricProblem('fleets.valve.plcs.violations.retain-misuse', ['valve.plcs'])).toBeNull();
    expect(metricProblem('violations.qos-above-grantd')).toContain('did you mean violations.qos-above-granted?');
  });

  it('read the counters of the run and of one fleet', () => {
    const r = result({
      totals: counters({ violations: violations({ 'qos-above-granted': 3, 'unknown-packet-id': 1 }) }),
      fleets: { 'valve.plcs': counters({ violations: violations({ 'qos-above-granted': 2 }) }) },
    });
    expect(judge('brokerViolations == 0', r)).toMatchObject({ actual: 4, passed: false });
    expect(judge('violations.qos-above-granted == 3', r)).toMatchObject({ actual: 3, passed: true });
    expect(judge('violations.retain-misuse == 0', r)).toMatchObject({ actual: 0, passed: true });
    expect(judge('fleets.valve.plcs.violations.qos-above-granted == 2', r)).toMatchObject({ actual: 2, passed: true });
    expect(judge('fleets.valve.plcs.brokerViolations == 2', r)).toMatchObject({ actual: 2, passed: true });
  });

  it('are 0 for counters from before they were counted', () => {
    expect(judge('brokerViolations == 0')).toMatchObject({ actual: 0, passed: true });
    expect(judge('violations.packet-too-large == 0')).toMatchObject({ actual: 0, passed: true });
  });
});
