/**
 * The human and CI reports written next to run.json after every run (and by `mqtt-sim report`):
 * report.html, summary.md and junit.xml. Each is rendered and written on its own, so one that fails
 * (a full disk, a bug in a writer) neither loses run.json nor stops the others.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatHtmlReport, htmlReportFileName } from './html.js';
import { formatJunitReport, junitReportFileName } from './junit.js';
import { formatMarkdownReport, markdownReportFileName } from './markdown.js';
import type { RunResult } from './run-result.js';

export const reportFormats = ['html', 'md', 'junit'] as const;
export type ReportFormat = (typeof reportFormats)[number];

export const reportWriters: Record<ReportFormat, { fileName: string; render: (result: RunResult) => string }> = {
  html: { fileName: htmlReportFileName, render: formatHtmlReport },
  md: { fileName: markdownReportFileName, render: formatMarkdownReport },
  junit: { fileName: junitReportFileName, render: formatJunitReport },
};

function reason(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== undefined ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

/** Writes `text` to `path` through a temporary file renamed into place (no half-written report). */
export function writeTextAtomically(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, text);
    renameSync(temporary, path);
  } catch (err) {
    try {
      rmSync(temporary, { force: true });
    } catch {
      // Nothing was written there (the folder itself is what failed).
    }
    throw err;
  }
}

export interface ReportFilesOutcome {
  /** Paths written. */
  written: string[];
  /** One sentence per report that could not be written, with the path and why. */
  problems: string[];
}

/** Renders and writes the given formats (default: all) into `dir`, which must exist (run.json is there). */
export function writeReportFiles(dir: string, result: RunResult, formats: readonly ReportFormat[] = reportFormats): ReportFilesOutcome {
  const outcome: ReportFilesOutcome = { written: [], problems: [] };
  for (const format of formats) {
    const { fileName, render } = reportWriters[format];
    const path = join(dir, fileName);
    let text: string;
    try {
      text = render(result);
    } catch (err) {
      outcome.problems.push(`cannot render ${path}: ${reason(err)} (an mqtt-sim bug; please report it with run.json, which is complete)`);
      continue;
    }
    try {
      writeTextAtomically(path, text);
      outcome.written.push(path);
    } catch (err) {
      outcome.problems.push(`cannot write ${path}: ${reason(err)}; run.json is complete, regenerate with: mqtt-sim report ${join(dir, 'run.json')} --format ${format}`);
    }
  }
  return outcome;
}
