import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { runResultSchemaVersion, type RunResult } from '../../../../simulator/report/run-result.js';
import { readRunResult, reportDirFor, writeRunResult } from '../../../../simulator/report/write-run.js';

const fixturePath = fileURLToPath(new URL('../../../fixtures/simulator/run-result.json', import.meta.url));
const temps: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-write-run-'));
  temps.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of temps.splice(0)) {
    chmodSync(dir, 0o700);
    rmSync(dir, { recursive: true, force: true });
  }
});

// Local time: the folder name follows the user's clock.
const startedAt = new Date(2025, 2, 1, 9, 5, 7);

describe('reportDirFor', () => {
  it('is <base>/<scenario>-<YYYYMMDD-HHMMSS>', () => {
    expect(reportDirFor('pipeline', startedAt)).toBe(join('reports', 'pipeline-20250301-090507'));
    expect(reportDirFor('pipeline', startedAt, '/tmp/r')).toBe('/tmp/r/pipeline-20250301-090507');
  });

  it('adds -2, -3, ... while the folder exists', () => {
    const base = tempDir();
    mkdirSync(join(base, 'pipeline-20250301-090507'));
    expect(reportDirFor('pipeline', startedAt, base)).toBe(join(base, 'pipeline-20250301-090507-2'));
    mkdirSync(join(base, 'pipeline-20250301-090507-2'));
    expect(reportDirFor('pipeline', startedAt, base)).toBe(join(base, 'pipeline-20250301-090507-3'));
  });

  it('keeps a scenario name with slashes or spaces inside base', () => {
    expect(reportDirFor('../plant 7/line', startedAt, 'r')).toBe(join('r', 'plant-7-line-20250301-090507'));
  });
});

describe('writeRunResult / readRunResult', () => {
  it('creates the folder, writes run.json pretty-printed and reads it back equal (Infinity included)', () => {
    const result = readRunResult(fixturePath);
    expect(result.scenario.fleets[1]!.connectRatePerSec).toBe(Number.POSITIVE_INFINITY);
    const dir = join(tempDir(), 'reports', 'pipeline-20250301-090507');
    const path = writeRunResult(dir, result);
    expect(path).toBe(join(dir, 'run.json'));
    const text = readFileSync(path, 'utf8');
    expect(text.startsWith('{\n  "schemaVersion": 1,\n')).toBe(true);
    expect(text).toContain('"connectRatePerSec": "Infinity"');
    expect(readRunResult(path)).toEqual(result);
    expect(readdirSync(dir)).toEqual(['run.json']);
  });

  it('names the path and the cause when a file is in the way of the folder', () => {
    const base = tempDir();
    writeFileSync(join(base, 'reports'), 'not a folder');
    const dir = join(base, 'reports', 'run-1');
    expect(() => writeRunResult(dir, readRunResult(fixturePath))).toThrow(
      `cannot write the run report ${join(dir, 'run.json')}: a part of the path is a file, not a folder (ENOTDIR)`,
    );
  });

  it('names the path and the cause when the folder is not writable', () => {
    // As root a chmod'ed folder stays writable, so root gets a folder that nobody may create: one in sysfs.
    const root = process.getuid?.() === 0;
    const dir = root ? '/sys/mqtt-sim-report-test' : tempDir();
    if (!root) chmodSync(dir, 0o500);
    const path = join(dir, 'run.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(() => writeRunResult(dir, readRunResult(fixturePath))).toThrow(
      new RegExp(`^cannot write the run report ${path}: (permission denied \\(EACCES\\)|operation not permitted \\(EPERM\\))`),
    );
  });

  it('says when the file is missing', () => {
    const path = join(tempDir(), 'run.json');
    expect(() => readRunResult(path)).toThrow(`cannot read ${path}: no such file or folder (ENOENT)`);
  });

  it('says when the file is not JSON or not a run.json', () => {
    const dir = tempDir();
    const notJson = join(dir, 'a.json');
    writeFileSync(notJson, 'name: pipeline\n');
    expect(() => readRunResult(notJson)).toThrow(`${notJson} is not a run.json: it is not valid JSON`);
    const other = join(dir, 'package.json');
    writeFileSync(other, JSON.stringify({ name: 'mqtt-sim', version: '0.1.0' }));
    expect(() => readRunResult(other)).toThrow(`${other} is not a run.json: it has no schemaVersion`);
    const incomplete = join(dir, 'b.json');
    writeFileSync(incomplete, JSON.stringify({ schemaVersion: 1, tool: { name: 'mqtt-sim', version: '0.1.0' }, scenario: {} }));
    expect(() => readRunResult(incomplete)).toThrow(/is not a complete run\.json: missing environment, target, startedAt/);
  });

  it('says when the file is from a newer schema', () => {
    const path = join(tempDir(), 'run.json');
    const result = JSON.parse(readFileSync(fixturePath, 'utf8')) as RunResult;
    writeFileSync(path, JSON.stringify({ ...result, schemaVersion: runResultSchemaVersion + 1 }));
    expect(() => readRunResult(path)).toThrow(
      `${path} is from a newer mqtt-sim: its run.json schema is version ${runResultSchemaVersion + 1}, this mqtt-sim reads up to version ${runResultSchemaVersion}; upgrade mqtt-sim to read it`,
    );
  });
});
