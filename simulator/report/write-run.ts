/**
 * The report folder of a run (reports/<scenario>-<YYYYMMDD-HHMMSS>/) and its run.json: written
 * atomically, read back with a check that it is a run.json this version understands.
 */
import { accessSync, constants, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { makeDirectory } from '../../common/make-directory.js';
import { join } from 'node:path';
import { runResultSchemaVersion, type RunResult } from './run-result.js';

export const runFileName = 'run.json';

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** Local time as YYYYMMDD-HHMMSS: the folder name says when the run started on the user's clock. */
export function formatRunStamp(date: Date): string {
  return `${date.getFullYear()}${pad2(date.getMonth() + 1)}${pad2(date.getDate())}-${pad2(date.getHours())}${pad2(date.getMinutes())}${pad2(date.getSeconds())}`;
}

/** A scenario name as a safe folder name part: anything but letters, digits, `.`, `_` and `-` becomes `-`. */
function folderSafe(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|-+$/g, '');
  return safe === '' ? 'run' : safe;
}

/** `<base>/<scenario>-<YYYYMMDD-HHMMSS>`, with `-2`, `-3`, ... appended while that path exists. */
export function reportDirFor(scenarioName: string, startedAt: Date, base = 'reports'): string {
  const stem = join(base, `${folderSafe(scenarioName)}-${formatRunStamp(startedAt)}`);
  if (!existsSync(stem)) return stem;
  for (let n = 2; ; n++) {
    const candidate = `${stem}-${n}`;
    if (!existsSync(candidate)) return candidate;
  }
}

const errnoMeanings: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'the path is a folder',
  ENOENT: 'no such file or folder',
  EEXIST: 'a file is in the way',
};

function describeFsError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== undefined && errnoMeanings[code] !== undefined) return `${errnoMeanings[code]} (${code})`;
    return err.message;
  }
  return String(err);
}

/**
 * JSON has no Infinity (e.g. `connectRatePerSec: Infinity`, "as fast as possible"): non-finite numbers
 * are written as the strings "Infinity", "-Infinity", "NaN" instead of the null JSON.stringify would
 * write, and readRunResult turns the known numeric fields back.
 */
function replaceNonFinite(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // Nothing was written there (the folder itself is what failed).
  }
}

/**
 * Creates the report folder before a run and checks it can be written, so a folder that cannot be is
 * said at the start, in one line, not after the whole run. Returns the folders it created, outermost
 * first. Throws an Error naming the folder and why.
 */
export function prepareReportDir(dir: string): string[] {
  try {
    const created = makeDirectory(dir);
    accessSync(dir, constants.W_OK);
    return created;
  } catch (err) {
    throw new Error(`the report folder ${dir} cannot be written: ${describeFsError(err)}. Give a folder you can write with --report-dir, or --no-report`, { cause: err });
  }
}

/** Creates `dir` (and parents) and writes run.json into it, pretty-printed; returns its path. */
export function writeRunResult(dir: string, result: RunResult): string {
  const path = join(dir, runFileName);
  // A temporary file renamed into place: a full disk leaves no half-written run.json behind.
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    makeDirectory(dir);
    writeFileSync(temporary, `${JSON.stringify(result, replaceNonFinite, 2)}\n`);
    renameSync(temporary, path);
  } catch (err) {
    removeQuietly(temporary);
    throw new Error(`cannot write the run report ${path}: ${describeFsError(err)}`, { cause: err });
  }
  return path;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Top-level fields every reader relies on. */
const requiredFields = ['tool', 'scenario', 'environment', 'target', 'startedAt', 'finishedAt', 'outcome', 'totals', 'fleets', 'latency', 'timeline', 'ledger', 'generator', 'assertions', 'verdict'] as const;

function reviveNumber(value: unknown): unknown {
  return value === 'Infinity' ? Number.POSITIVE_INFINITY : value === '-Infinity' ? Number.NEGATIVE_INFINITY : value === 'NaN' ? Number.NaN : value;
}

/** The numeric scenario fields that may legitimately be Infinity (see replaceNonFinite). */
function reviveScenarioNumbers(scenario: unknown): void {
  if (!isRecord(scenario) || !Array.isArray(scenario['fleets'])) return;
  for (const fleet of scenario['fleets'] as unknown[]) {
    if (isRecord(fleet)) fleet['connectRatePerSec'] = reviveNumber(fleet['connectRatePerSec']);
  }
}

/** Reads and checks a run.json; the error says whether the file is missing, not a run.json, or too new. */
export function readRunResult(path: string): RunResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${path}: ${describeFsError(err)}`, { cause: err });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path} is not a run.json: it is not valid JSON (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  if (!isRecord(data) || !('schemaVersion' in data)) {
    throw new Error(`${path} is not a run.json: it has no schemaVersion (expected the run.json an mqtt-sim run writes in its report folder)`);
  }
  const version = data['schemaVersion'];
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
    throw new Error(`${path} is not a run.json: schemaVersion is ${JSON.stringify(version)}, expected a positive integer`);
  }
  if (version > runResultSchemaVersion) {
    throw new Error(
      `${path} is from a newer mqtt-sim: its run.json schema is version ${version}, this mqtt-sim reads up to version ${runResultSchemaVersion}; upgrade mqtt-sim to read it`,
    );
  }
  const tool = data['tool'];
  if (!isRecord(tool) || tool['name'] !== 'mqtt-sim') throw new Error(`${path} is not a run.json: tool.name is not "mqtt-sim"`);
  const missing = requiredFields.filter((f) => !(f in data));
  if (missing.length > 0) throw new Error(`${path} is not a complete run.json: missing ${missing.join(', ')}`);
  reviveScenarioNumbers(data['scenario']);
  // Written before the chaos timeline existed (same schema version: the field was added, nothing changed).
  if (!Array.isArray(data['chaos'])) data['chaos'] = [];
  if (isRecord(data['scenario']) && !Array.isArray(data['scenario']['chaos'])) data['scenario']['chaos'] = [];
  return data as unknown as RunResult;
}
