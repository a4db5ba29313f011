import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatMarkdownReport, mdText } from '../../../../simulator/report/markdown.js';
import type { RunResult } from '../../../../simulator/report/run-result.js';
import { readRunResult } from '../../../../simulator/report/write-run.js';

const fixturePath = fileURLToPath(new URL('../../../fixtures/simulator/run-result.json', import.meta.url));
const fixture = (): RunResult => readRunResult(fixturePath);

describe('formatMarkdownReport (summary.md)', () => {
  it('matches the golden summary.md of the fixture run', async () => {
    await expect(formatMarkdownReport(fixture())).toMatchFileSnapshot('./__snapshots__/summary.md');
  });

  it('starts with the verdict as a headline and the reason', () => {
    const lines = formatMarkdownReport(fixture()).split('\n');
    expect(lines[0]).toBe('# ❌ pipeline-small: FAIL');
    expect(lines).toContain('**FAIL: 1 of 2 assertions failed**');
  });

  it('says PASS with a check mark for a passing run', () => {
    const result = fixture();
    result.verdict = 'pass';
    result.assertions = result.assertions.filter((a) => a.passed);
    expect(formatMarkdownReport(result).split('\n')[0]).toBe('# ✅ pipeline-small: PASS');
  });

  it('shows the run notes (a slice, clock offsets) and what the indeterminate messages are made of', () => {
    const result = fixture();
    result.notes = ['slice 2/4 of the devices: merge the slices (mqtt-sim merge) to judge the whole run'];
    result.checker!.byQos[1].indeterminate = 3;
    result.checker!.indeterminateCauses = [
      { unacknowledged: 0, boundary: 0 },
      { unacknowledged: 3, boundary: 0 },
      { unacknowledged: 0, boundary: 0 },
    ];
    const md = formatMarkdownReport(result);
    expect(md).toContain('> **Notes**\n>\n> - slice 2/4 of the devices: merge the slices (mqtt-sim merge) to judge the whole run\n');
    expect(md).toContain('\nIndeterminate: 3 QoS 1/2 publishes the broker never acknowledged');
    expect(formatMarkdownReport(fixture())).not.toContain('**Notes**');
  });

  it('keeps tables intact and HTML out when names carry | or <', () => {
    const result = fixture();
    result.errors = ['a | b <script>x</script>'];
    const md = formatMarkdownReport(result);
    expect(md).toContain('a \\| b &lt;script&gt;x&lt;/script&gt;');
    expect(md).not.toContain('<script>');
    expect(mdText('x_y*z')).toBe('x\\_y\\*z');
  });
});
