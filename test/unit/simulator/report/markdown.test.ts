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

  it('keeps tables intact and HTML out when names carry | or <', () => {
    const result = fixture();
    result.errors = ['a | b <script>x</script>'];
    const md = formatMarkdownReport(result);
    expect(md).toContain('a \\| b &lt;script&gt;x&lt;/script&gt;');
    expect(md).not.toContain('<script>');
    expect(mdText('x_y*z')).toBe('x\\_y\\*z');
  });
});
