/**
 * `mqtt-sim report` and `mqtt-sim compare` as CI runs them: the built CLI as a child process, on the
 * fixture run.json, with the exit codes a pipeline gates on.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunResult } from '../../simulator/report/run-result.js';
import { killAllCli, requireBuilt, spawnCli } from '../helpers/cli-process.js';

const fixturePath = fileURLToPath(new URL('../fixtures/simulator/run-result.json', import.meta.url));
const STACK_FRAME = /\n\s+at /;
const dirs: string[] = [];

beforeAll(() => {
  requireBuilt('cli/commands/report.js');
  requireBuilt('cli/commands/compare.js');
});

afterEach(async () => {
  await killAllCli();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-report-'));
  dirs.push(dir);
  return dir;
}

/** A copy of the fixture run.json in a fresh folder, changed by `edit`. */
function runFile(edit?: (r: RunResult) => void): string {
  const dir = tempDir();
  const path = join(dir, 'run.json');
  if (edit === undefined) copyFileSync(fixturePath, path);
  else {
    const r = JSON.parse(readFileSync(fixturePath, 'utf8')) as RunResult;
    edit(r);
    writeFileSync(path, JSON.stringify(r));
  }
  return path;
}

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnCli(args);
  const code = await p.waitForExit(20_000);
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

describe('mqtt-sim report', () => {
  it('regenerates report.html, summary.md and junit.xml next to run.json', async () => {
    const run = runFile();
    const dir = join(run, '..');
    const r = await cli(['report', run]);
    expect(r.code, r.stderr).toBe(0);
    for (const name of ['report.html', 'summary.md', 'junit.xml']) {
      expect(existsSync(join(dir, name)), name).toBe(true);
      expect(r.stdout).toContain(`wrote ${join(dir, name)}`);
    }
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('<svg ');
    expect(readFileSync(join(dir, 'summary.md'), 'utf8').split('\n')[0]).toBe('# ❌ pipeline-small: FAIL');
    expect(readFileSync(join(dir, 'junit.xml'), 'utf8')).toContain('<testsuite name="pipeline-small" tests="5" failures="1"');
  });

  it('writes one format to --out FILE or to stdout with --out -', async () => {
    const run = runFile();
    const out = join(tempDir(), 'results.xml');
    const toFile = await cli(['report', run, '--format', 'junit', '--out', out]);
    expect(toFile.code, toFile.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites /);
    const toStdout = await cli(['report', run, '--format', 'md', '--out', '-']);
    expect(toStdout.code, toStdout.stderr).toBe(0);
    expect(toStdout.stdout).toContain('## Assertions');
  });

  it('exits 2 with the reason for a file that is not a run.json', async () => {
    const bad = join(tempDir(), 'run.json');
    writeFileSync(bad, '{"hello": 1}');
    const r = await cli(['report', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is not a run.json: it has no schemaVersion');
    expect(r.stderr).not.toMatch(STACK_FRAME);
  });
});

describe('mqtt-sim compare', () => {
  const slower = (r: RunResult): void => {
    r.latency['e2e']!.p99 = 30;
  };

  it('exits 1 on a regression beyond its threshold and names it', async () => {
    const r = await cli(['compare', runFile(), runFile(slower), '--max-regression', 'latency.e2e.p99=10%,throughput=5%']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/latency\.e2e\.p99 +18 ms +30 ms +\+68\.5% +10% +REGRESSED/);
    expect(r.stdout).toContain('REGRESSED: 1 of 10 metrics beyond their threshold');
  });

  it('exits 0 when the change is within its threshold', async () => {
    const r = await cli(['compare', runFile(), runFile(slower), '--max-regression', 'latency.e2e.p99=100%', '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { regressed: boolean }).regressed).toBe(false);
  });

  it('exits 2 on a bad threshold, an unknown metric or a file that is not a run.json', async () => {
    const bad = await cli(['compare', runFile(), runFile(), '--max-regression', 'latency.e2e.p99>10%']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--max-regression: expected METRIC=LIMIT');
    const unknown = await cli(['compare', runFile(), runFile(), '--metrics', 'latency.e2e.p77']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown metric latency.e2e.p77');
    const notRun = join(tempDir(), 'x.json');
    writeFileSync(notRun, '[]');
    const wrong = await cli(['compare', notRun, runFile()]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('BASELINE: ');
    expect(wrong.stderr).not.toMatch(STACK_FRAME);
  });
});
