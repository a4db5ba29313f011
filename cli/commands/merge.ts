/**
 * `mqtt-sim merge SLICE.json... [--out DIR]`: combines the run.json files of the slices of one distributed
 * run (`mqtt-sim run SCENARIO --shard i/n` on one or several machines) into the run.json of the whole run,
 * with the delivery checker and the scenario's assertions run on the merged ledgers.
 * Exit codes: 0 every assertion passed, 1 an assertion failed, 2 bad input (not a slice, slices of
 * different runs, a slice missing or given twice).
 */
import type { Argv, CommandModule } from 'yargs';
import { mergeRunResults, MergeInputError, type SliceFile } from '../../simulator/orchestrator/merge.js';
import type { RunResult } from '../../simulator/report/run-result.js';
import { formatSummary } from '../../simulator/report/summary.js';
import { reportDirFor, readRunResult, writeRunResult } from '../../simulator/report/write-run.js';
import { writeReportFiles } from '../../simulator/report/write-reports.js';
import type { CliIo, CommandContext } from '../context.js';
import { ExitCode, UserError } from '../exit-codes.js';

export interface MergeArgs {
  files: string[];
  out?: string;
}

export function mergeCommandBuilder(yargs: Argv): Argv<MergeArgs> {
  return yargs
    .usage('$0 merge <files..> [--out DIR]\n\nMerges the run.json files of every slice of one run (mqtt-sim run SCENARIO --shard i/n) into one run.json: counters and histograms add up, timelines are merged point by point, and the delivery checker and the assertions run on the merged ledgers.')
    .positional('files', { type: 'string', array: true, describe: 'run.json of every slice', demandOption: true })
    .option('out', { type: 'string', describe: 'Folder for the merged run.json and reports', defaultDescription: 'reports/<scenario>-merged-<timestamp>' })
    .example('$0 merge reports/shard-*/run.json', 'merge every slice into reports/<scenario>-merged-<timestamp>/')
    .example('$0 merge a/run.json b/run.json --out merged/', 'two slices, reports in merged/') as unknown as Argv<MergeArgs>;
}

/** Merges, writes run.json and the reports, prints the summary; returns the exit code. */
export function runMerge(args: MergeArgs, io: CliIo, now = new Date()): { exitCode: number; result: RunResult; dir: string } {
  const files: SliceFile[] = args.files.map((path) => {
    try {
      return { path, result: readRunResult(path) };
    } catch (err) {
      throw new UserError(err instanceof Error ? err.message : String(err), ExitCode.BadUsage);
    }
  });
  let result: RunResult;
  try {
    result = mergeRunResults(files);
  } catch (err) {
    if (err instanceof MergeInputError) throw new UserError(`cannot merge: ${err.message}`, ExitCode.BadUsage);
    throw err;
  }
  const dir = args.out ?? reportDirFor(`${result.scenario.name}-merged`, now);
  writeRunResult(dir, result);
  for (const problem of writeReportFiles(dir, result).problems) io.stderr(`mqtt-sim merge: ${problem}\n`);
  io.stdout(`${formatSummary(result)}\n`);
  for (const note of result.notes ?? []) io.stdout(`note: ${note}\n`);
  io.stdout(`merged report: ${dir}\n`);
  return { exitCode: result.verdict === 'pass' ? ExitCode.Ok : ExitCode.AssertionFailed, result, dir };
}

function handler(args: MergeArgs & Partial<CommandContext>): void {
  const io = args.io ?? { stdout: (text: string) => process.stdout.write(text), stderr: (text: string) => process.stderr.write(text) };
  process.exitCode = runMerge(args, io).exitCode;
}

export const mergeCommand: CommandModule<object, MergeArgs> = {
  command: 'merge <files..>',
  describe: 'Merge the run.json files of the slices of one run (run --shard i/n) and check deliveries across them',
  builder: mergeCommandBuilder as CommandModule<object, MergeArgs>['builder'],
  handler,
};
