/**
 * `mqtt-sim report RUN.json [--format html|md|junit|text] [--out FILE]`: renders the reports of a run
 * again from its run.json (after an upgrade, or for a run.json copied from CI). Without --format it
 * rewrites report.html, summary.md and junit.xml next to run.json; with one, that report goes next to
 * run.json, to --out FILE, or to stdout with --out - (text, the end-of-run summary, goes to stdout).
 */
import { dirname } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import type { RunResult } from '../../simulator/report/run-result.js';
import { formatSummary } from '../../simulator/report/summary.js';
import { readRunResult } from '../../simulator/report/write-run.js';
import { reportFormats, reportWriters, writeReportFiles, writeTextAtomically, type ReportFormat } from '../../simulator/report/write-reports.js';
import type { CliIo, CommandContext } from '../context.js';
import { ExitCode, UserError } from '../exit-codes.js';

export const reportCommandFormats = [...reportFormats, 'text'] as const;
export type ReportCommandFormat = (typeof reportCommandFormats)[number];

export interface ReportArgs {
  run: string;
  format?: ReportCommandFormat;
  out?: string;
}

export function reportCommandBuilder(yargs: Argv): Argv<ReportArgs> {
  return yargs
    .usage('$0 report RUN.json [--format html|md|junit|text] [--out FILE]\n\nRenders the reports of a run from its run.json: report.html (charts, self-contained), summary.md and junit.xml. Without --format all three are written next to run.json.')
    .positional('run', { type: 'string', describe: 'The run.json of a run (in its report folder)', demandOption: true })
    .option('format', { choices: reportCommandFormats, describe: 'One report: html, md (Markdown), junit (JUnit XML) or text (the end-of-run summary)' })
    .option('out', { type: 'string', nargs: 1, describe: 'Where to write it; - for stdout', defaultDescription: 'next to run.json (text: stdout)' })
    .example('$0 report reports/smoke-20250301-100000/run.json', 'rewrite report.html, summary.md and junit.xml')
    .example('$0 report run.json --format md --out - >> "$GITHUB_STEP_SUMMARY"', 'Markdown to stdout')
    .example('$0 report run.json --format junit --out test-results/mqtt-sim.xml', 'JUnit XML where CI looks for it') as unknown as Argv<ReportArgs>;
}

function render(format: ReportCommandFormat, result: RunResult): string {
  return format === 'text' ? formatSummary(result) : reportWriters[format].render(result);
}

export function runReport(args: ReportArgs, io: CliIo): void {
  if (typeof args.run !== 'string' || args.run === '') throw new UserError('RUN.json: expected the path of a run.json', ExitCode.BadUsage);
  if (args.out !== undefined && args.format === undefined) {
    throw new UserError('--out needs --format: say which report to write (html, md, junit or text)', ExitCode.BadUsage);
  }
  let result: RunResult;
  try {
    result = readRunResult(args.run);
  } catch (err) {
    throw new UserError(err instanceof Error ? err.message : String(err), ExitCode.BadUsage);
  }
  const dir = dirname(args.run);
  if (args.format === undefined) {
    const { written, problems } = writeReportFiles(dir, result);
    for (const path of written) io.stdout(`wrote ${path}\n`);
    if (problems.length > 0) throw new UserError(problems.join('\n'), ExitCode.BadUsage);
    return;
  }
  const text = render(args.format, result);
  const out = args.out ?? (args.format === 'text' ? '-' : `${dir}/${reportWriters[args.format as ReportFormat].fileName}`);
  if (out === '-') {
    io.stdout(text);
    return;
  }
  try {
    writeTextAtomically(out, text);
  } catch (err) {
    throw new UserError(`cannot write ${out}: ${err instanceof Error ? err.message : String(err)}`, ExitCode.BadUsage);
  }
  io.stdout(`wrote ${out}\n`);
}

function handler(args: ReportArgs & Partial<CommandContext>): void {
  const io = args.io ?? { stdout: (text: string) => process.stdout.write(text), stderr: (text: string) => process.stderr.write(text) };
  runReport(args, io);
}

export const reportCommand: CommandModule<object, ReportArgs> = {
  command: 'report <run>',
  describe: 'Render report.html, summary.md or junit.xml from a run.json',
  builder: reportCommandBuilder,
  handler,
};
