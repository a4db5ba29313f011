/**
 * What `mqtt-sim run` prints, as CI and scripts see it: spawned without a TTY it uses the plain reporter
 * (progress lines, no dashboard frames); with --json stdout is NDJSON, one object per line, ending with
 * the result, and the human summary goes to stderr.
 */
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JsonReportLine } from '../../simulator/report/json-reporter.js';
import { killAllCli, repoRoot, requireBuilt, spawnCli } from '../helpers/cli-process.js';

const smoke = join(repoRoot, 'scenarios', 'smoke.yaml');
/** Cursor movement and line erasing: what a redrawn ink frame is made of. */
const REDRAW = /\u001b\[(\d*[ABGK]|\?25[lh])/;

beforeAll(() => requireBuilt('simulator/dashboard/dashboard-reporter.js'));
afterEach(() => killAllCli());

describe('mqtt-sim run output', () => {
  it('prints plain progress lines, not the dashboard, when stdout is not a terminal', async () => {
    const cli = spawnCli(['run', smoke, '--no-report', '--workers', '1', '--progress-interval', '2']);
    await cli.waitForLine(/^\[\s+\d+s\] phase ramp-up$/, 20_000);
    await cli.waitForLine(/^\[\s+\d+s steady\s*\] connected [\d,]+\/72  out [\d,]+\/s  in [\d,]+\/s  e2e p50 .+ p99 .+  reconnects \d+$/, 20_000);
    const code = await cli.waitForExit(60_000);
    expect(code, cli.stderr()).toBe(0);
    expect(cli.stdout()).toMatch(/^mqtt-sim run "smoke": 72 devices in 6 fleets/);
    expect(cli.stdout()).toMatch(/\nPASS\n/);
    expect(cli.stdout()).not.toMatch(REDRAW);
    expect(cli.stdout()).not.toContain('QoS guarantees  live');
  }, 90_000);

  it('--json writes NDJSON on stdout, parseable line by line, ending with the result; the summary on stderr', async () => {
    const cli = spawnCli(['run', smoke, '--json', '--no-report', '--workers', '1']);
    const code = await cli.waitForExit(60_000);
    expect(code, cli.stderr()).toBe(0);
    const lines = cli.stdout().split('\n');
    expect(lines.pop()).toBe('');
    const objects = lines.map((line, i) => {
      try {
        return JSON.parse(line) as JsonReportLine;
      } catch {
        throw new Error(`stdout line ${i + 1} is not JSON: ${JSON.stringify(line)}`);
      }
    });
    const types = objects.map((o) => o.type);
    expect(types[0]).toBe('start');
    expect(types.at(-1)).toBe('result');
    expect(types.filter((t) => t === 'result')).toHaveLength(1);
    expect(types).toContain('phase');
    expect(types.filter((t) => t === 'point').length).toBeGreaterThan(5);
    const phases = objects.flatMap((o) => (o.type === 'phase' ? [o.phase] : []));
    expect(phases).toEqual(expect.arrayContaining(['ramp-up', 'steady', 'ramp-down']));
    const point = objects.find((o): o is Extract<JsonReportLine, { type: 'point' }> => o.type === 'point' && o.point.phase === 'steady')!;
    expect(point.point.connected).toBe(72);
    expect(point.counters?.['sensors-q1']?.devices).toBe(50);
    const last = objects.at(-1) as Extract<JsonReportLine, { type: 'result' }>;
    expect(last.reportDir).toBeNull();
    expect(last.result.verdict).toBe('pass');
    expect(last.result.checker?.verdict).toBe('pass');
    expect(cli.stderr()).toMatch(/Guarantees +PASS/);
    expect(cli.stderr()).toMatch(/\nPASS\n/);
  }, 90_000);
});
