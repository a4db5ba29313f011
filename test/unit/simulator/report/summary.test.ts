import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../../../../simulator/report/run-result.js';
import {
  formatBytes, formatCount, formatDuration, formatMs, formatNumber, formatSummary, formatTable, verdictLine,
} from '../../../../simulator/report/summary.js';
import { readRunResult } from '../../../../simulator/report/write-run.js';

const fixturePath = fileURLToPath(new URL('../../../fixtures/simulator/run-result.json', import.meta.url));
const fixture = (): RunResult => readRunResult(fixturePath);

describe('formatSummary (pure printer of run.json)', () => {
  it('matches the golden summary of the fixture run', async () => {
    await expect(formatSummary(fixture())).toMatchFileSnapshot('./__snapshots__/summary.txt');
  });

  it('shows the first five errors and says how many more run.json holds', () => {
    const errors = Array.from({ length: 8 }, (_, i) => `device-${i}: disconnected (error: ECONNRESET)`);
    const text = formatSummary({ ...fixture(), errors });
    expect(text).toContain('  device-4: disconnected (error: ECONNRESET)\n  … and 3 more in run.json (errors)\n');
    expect(text).not.toContain('device-5:');
  });

  it('is plain text: no ANSI escapes, ends with one newline', () => {
    const text = formatSummary(fixture());
    expect(text).not.toMatch(/\u001b\[/);
    expect(text.endsWith('\n')).toBe(true);
    expect(text.endsWith('\n\n')).toBe(false);
  });

  it('prints one row per fleet in scenario order, then the total, with thousands separators', () => {
    const lines = formatSummary(fixture()).split('\n');
    const start = lines.indexOf('Fleets (latency in ms)');
    const table = lines.slice(start + 1, start + 5);
    expect(table.map((l) => l.trim().split(/\s+/)[0])).toEqual(['fleet', 'pressure-sensors', 'historian', 'total']);
    expect(table[1]).toContain('10,412');
    // Fixed width: every row of the table is as long as its header (right-aligned last column).
    expect(new Set(table.map((l) => l.length)).size).toBe(1);
    // The consumer publishes nothing, so it has no e2e latency of its own.
    expect(table[2]!.trim().split(/\s+/).slice(-2)).toEqual(['-', '-']);
  });

  it('lists latencies that have data, skipping the QoS that were not used', () => {
    const text = formatSummary(fixture());
    expect(text).toMatch(/^ {2}e2e qos1 +10,412 +3\.1 +6\.4 +18 +41$/m);
    expect(text).toMatch(/^ {2}connect +205 +5\.4 +11 +25 +1,205$/m);
    expect(text).not.toContain('e2e qos0');
    expect(text).not.toContain('ack qos2');
  });

  it('marks assertions ✓ and ✗, with the failure message, and ends with the verdict', () => {
    const text = formatSummary(fixture());
    expect(text).toContain('  ✓ qos1.lost == 0          actual 0\n');
    expect(text).toContain('  ✗ latency.e2e.p99 < 15ms  actual 17.8  (latency.e2e.p99 is 17.8 ms, expected < 15 ms)\n');
    expect(text.trimEnd().split('\n').at(-1)).toBe('FAIL: 1 of 2 assertions failed');
  });

  it('flags a saturated generator with its reasons and shows the embedded broker cost', () => {
    const text = formatSummary(fixture());
    expect(text).toContain("Generator    SATURATED, latencies may be the generator's, not the broker's: event-loop delay p99 104 ms at 31s (limit 50 ms); schedule slip p99 231 ms at 31s (limit 100 ms)");
    expect(text).toContain('Broker       pid 48213, CPU 12.3 s (19% of one core on average), peak RSS 90.0 MiB');
  });

  it('says what the indeterminate messages are made of, and nothing when there are none', () => {
    expect(formatSummary(fixture())).not.toContain('indeterminate:');
    const result = fixture();
    result.checker!.byQos[1].indeterminate = 2_919;
    result.checker!.indeterminateCauses = [
      { unacknowledged: 0, boundary: 0 },
      { unacknowledged: 2_915, boundary: 4 },
      { unacknowledged: 0, boundary: 0 },
    ];
    expect(formatSummary(result)).toContain(
      '  indeterminate: 2,915 QoS 1/2 publishes the broker never acknowledged (still with the publisher at the end, or sent as its link failed): not owed to anyone; 4 sent while a subscriber was subscribing, losing its link or the run was ending: owed or not, the records cannot tell\n',
    );
    result.checker!.indeterminateCauses[1] = { unacknowledged: 0, boundary: 1 };
    expect(formatSummary(result)).toMatch(/^ {2}indeterminate: 1 sent while a subscriber/m);
  });

  it('omits the broker line for an external target and names the target URL', () => {
    const result = fixture();
    delete result.broker;
    result.target = { embedded: false, urls: ['mqtts://broker.example:8883'], protocolVersion: 4 };
    const text = formatSummary(result);
    expect(text).toContain('  target     mqtts://broker.example:8883 (MQTT 3.1.1)\n');
    expect(text).not.toContain('Broker  ');
  });

  it('prints run errors when there are any', () => {
    const result = fixture();
    result.errors = ['shard 1 crashed: out of memory'];
    expect(formatSummary(result)).toContain('Errors\n  shard 1 crashed: out of memory\n');
  });
});

describe('verdictLine', () => {
  it('PASS when every assertion passed and the run completed', () => {
    const result = fixture();
    result.assertions = result.assertions.map((a) => ({ ...a, passed: true }));
    result.verdict = 'pass';
    expect(verdictLine(result)).toBe('PASS');
  });

  it('FAIL with the count of failed assertions', () => {
    expect(verdictLine(fixture())).toBe('FAIL: 1 of 2 assertions failed');
  });

  it('FAIL naming the outcome of a run that did not complete', () => {
    const result = fixture();
    result.assertions = [];
    result.outcome = 'unreachable';
    expect(verdictLine(result)).toBe('FAIL: the run ended unreachable');
  });
});

describe('number formatting', () => {
  it('formats counts, numbers, milliseconds, bytes and durations without the locale', () => {
    expect([0, 999, 1000, 1234567, -4321].map(formatCount)).toEqual(['0', '999', '1,000', '1,234,567', '-4,321']);
    expect([17.8, 0.5, 1234.567, 3].map(formatNumber)).toEqual(['17.8', '0.5', '1,234.57', '3']);
    expect([0.42, 3.14, 18, 1204.5, null].map(formatMs)).toEqual(['0.42 ms', '3.1 ms', '18 ms', '1,205 ms', '-']);
    expect([512, 94371840, 3 * 1024 ** 3].map(formatBytes)).toEqual(['512 B', '90.0 MiB', '3.0 GiB']);
    expect([850, 12_340, 65_400, 3_723_000].map(formatDuration)).toEqual(['850 ms', '12.3 s', '1m 05s', '1h 02m 03s']);
  });

  it('pads table columns to the widest cell', () => {
    expect(formatTable(['name', 'n'], [['a', '1,000'], ['long-name', '2']])).toEqual([
      '  name           n',
      '  a          1,000',
      '  long-name      2',
    ]);
  });
});

describe('broker protocol violations in the summary', () => {
  const withViolations = (): RunResult => {
    const result = fixture();
    result.assertions = [];
    result.brokerViolations = {
      total: 3,
      byKind: { 'qos-above-granted': 2, 'receive-maximum-exceeded': 1, 'packet-too-large': 0, 'unknown-packet-id': 0, 'retain-misuse': 0, 'topic-alias-misuse': 0 },
      byFleet: { historian: 3 },
      examples: [
        { kind: 'qos-above-granted', clientId: 'hist-0', fleet: 'historian', at: '2024-01-01T00:00:01.000Z', atMs: 1200, detail: 'QoS 2 PUBLISH on a/b, but the matching subscription was granted at most QoS 1' },
      ],
    };
    return result;
  };

  it('prints a Protocol section with the counts by kind and the first examples', () => {
    const text = formatSummary(withViolations());
    expect(text).toContain('Protocol     FAIL: 3 broker violations seen by the clients (qos-above-granted 2, receive-maximum-exceeded 1)');
    expect(text).toContain('    qos-above-granted hist-0 at 1.2 s: QoS 2 PUBLISH on a/b, but the matching subscription was granted at most QoS 1');
  });

  it('FAIL naming the broker violations even when every assertion passed', () => {
    expect(verdictLine(withViolations())).toBe('FAIL: 3 protocol violations by the broker');
  });

  it('a run.json without brokerViolations (older) prints no Protocol line; none seen prints PASS', () => {
    expect(formatSummary(fixture())).not.toContain('Protocol');
    const clean = fixture();
    clean.brokerViolations = { ...withViolations().brokerViolations!, total: 0, examples: [] };
    expect(formatSummary(clean)).toContain('Protocol     PASS: the clients saw no protocol violation by the broker');
  });
});
