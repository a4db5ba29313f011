import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { readRunResult, writeRunResult } from '../../../../simulator/report/write-run.js';
import { writeReportFiles } from '../../../../simulator/report/write-reports.js';

const fixturePath = fileURLToPath(new URL('../../../fixtures/simulator/run-result.json', import.meta.url));
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'mqtt-sim-reports-'));
  dirs.push(d);
  return d;
}

describe('writeReportFiles', () => {
  it('writes report.html, summary.md and junit.xml next to run.json', () => {
    const dir = tempDir();
    const result = readRunResult(fixturePath);
    writeRunResult(dir, result);
    const outcome = writeReportFiles(dir, result);
    expect(outcome.problems).toEqual([]);
    expect(outcome.written).toEqual(['report.html', 'summary.md', 'junit.xml'].map((f) => join(dir, f)));
    expect(readFileSync(join(dir, 'junit.xml'), 'utf8')).toContain('<testsuites ');
  });

  it('reports a report it cannot write with the path, the reason and the fix, and keeps going', () => {
    const dir = tempDir();
    const result = readRunResult(fixturePath);
    writeRunResult(dir, result);
    mkdirSync(join(dir, 'summary.md')); // a folder in the way of one report
    const outcome = writeReportFiles(dir, result);
    expect(outcome.written).toEqual([join(dir, 'report.html'), join(dir, 'junit.xml')]);
    expect(outcome.problems).toHaveLength(1);
    expect(outcome.problems[0]).toMatch(new RegExp(`^cannot write ${join(dir, 'summary.md')}: .*EISDIR.*run\\.json is complete, regenerate with: mqtt-sim report ${join(dir, 'run.json')} --format md$`));
    expect(existsSync(join(dir, 'run.json'))).toBe(true);
  });
});
