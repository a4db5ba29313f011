/**
 * Reads a scenario file (YAML) and returns the validated, normalized Scenario, or throws a ScenarioError
 * listing every problem with its YAML path and the fix.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { scenarioFromDocument, type ScenarioIssue } from './schema.js';
import type { Scenario } from './types.js';

export type { ScenarioIssue } from './schema.js';

export interface ScenarioOverrides {
  /** `--seed`: replaces the scenario's seed. */
  seed?: number;
  /** `--target`: replaces the scenario's broker URLs (other target settings are kept). */
  targetUrls?: string[];
}

/** The scenario cannot be used; `.message` has one line per issue (`path: message`). */
export class ScenarioError extends Error {
  readonly issues: ScenarioIssue[];
  readonly sourceFile: string | undefined;

  constructor(issues: ScenarioIssue[], sourceFile?: string) {
    super(issues.map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`)).join('\n'));
    this.name = 'ScenarioError';
    this.issues = issues;
    this.sourceFile = sourceFile;
  }
}

function readError(file: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  switch (code) {
    case 'ENOENT':
      return `cannot read scenario ${file}: no such file; check the path (scenarios/ has ready-made ones)`;
    case 'EISDIR':
      return `cannot read scenario ${file}: it is a folder; name a .yaml file inside it`;
    case 'EACCES':
    case 'EPERM':
      return `cannot read scenario ${file}: permission denied`;
    default:
      return `cannot read scenario ${file}: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** Validates scenario YAML text. `sourceFile` (absolute or relative) anchors relative paths and messages. */
export function parseScenario(text: string, sourceFile?: string, overrides?: ScenarioOverrides): Scenario {
  const where = sourceFile ?? 'scenario';
  // merge: YAML `<<: *defaults` merge keys, handy for fleets that share settings.
  const document = parseDocument(text, { prettyErrors: true, merge: true, uniqueKeys: true });
  // Later YAML errors are mostly echoes of the first one, so only the first is reported.
  const first = document.errors[0];
  if (first !== undefined) {
    const pos = first.linePos?.[0];
    const at = pos !== undefined ? `${where}:${pos.line}:${pos.col}` : where;
    const message = first.message.replace(/ at line \d+, column \d+:?[\s\S]*$/, '');
    const fix = first.code === 'DUPLICATE_KEY'
      ? 'remove or rename one of them'
      : "check the indentation, and quote values that contain ': ' or start with '{', '[', '*', '&' or '%'";
    throw new ScenarioError([{ path: '', message: `${at}: YAML syntax error: ${message}; ${fix}` }], sourceFile);
  }
  let value: unknown;
  try {
    value = document.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    throw new ScenarioError([{ path: '', message: `${where}: ${err instanceof Error ? err.message : String(err)}` }], sourceFile);
  }
  const absolute = sourceFile === undefined ? undefined : resolve(sourceFile);
  const result = scenarioFromDocument(value, {
    baseDir: absolute === undefined ? process.cwd() : dirname(absolute),
    ...(absolute !== undefined ? { sourceFile: absolute } : {}),
    ...(overrides !== undefined ? { overrides } : {}),
  });
  if (!result.ok) throw new ScenarioError(result.issues, sourceFile);
  return result.scenario;
}

/** Reads and validates a scenario file; a missing or unreadable file is a ScenarioError naming the path. */
export function loadScenario(file: string, overrides?: ScenarioOverrides): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ScenarioError([{ path: '', message: readError(file, err) }], file);
  }
  return parseScenario(text, file, overrides);
}
