/**
 * `mqtt-sim compare BASELINE.json CANDIDATE.json [--max-regression SPEC] [--metrics LIST] [--format F]`:
 * the CI regression gate. Prints baseline, candidate, change, threshold and status per metric.
 * Exit codes: 0 no regression beyond its threshold, 1 at least one, 2 bad input (not a run.json, an
 * unknown metric, a bad threshold).
 */
import type { Argv, CommandModule } from 'yargs';
import {
  compareRuns, CompareInputError, defaultCompareMetrics, formatComparisonJson, formatComparisonMarkdown, formatComparisonTable, parseThresholds,
} from '../../simulator/report/compare.js';
import type { RunResult } from '../../simulator/report/run-result.js';
import { readRunResult } from '../../simulator/report/write-run.js';
import type { CliIo, CommandContext } from '../context.js';
import { ExitCode, UserError } from '../exit-codes.js';

export const compareFormats = ['table', 'md', 'json'] as const;
export type CompareFormat = (typeof compareFormats)[number];

export interface CompareArgs {
  baseline: string;
  candidate: string;
  'max-regression'?: string[];
  metrics?: string[];
  format: CompareFormat;
}

export function compareCommandBuilder(yargs: Argv): Argv<CompareArgs> {
  return yargs
    .usage('$0 compare BASELINE.json CANDIDATE.json [options]\n\nCompares two run.json files metric by metric and exits 1 when a metric regressed beyond its threshold (higher latency, lower throughput, any new loss or violation), 0 otherwise, 2 on bad input. See docs/ci.md.')
    .positional('baseline', { type: 'string', describe: 'run.json of the reference run', demandOption: true })
    .positional('candidate', { type: 'string', describe: 'run.json of the run to judge', demandOption: true })
    .option('max-regression', {
      type: 'string',
      array: true,
      describe: 'Limits as METRIC=LIMIT, comma-separated or repeated: 10% (relative), 5ms or 1s (latency), 3 (absolute). METRIC may be a prefix (latency, throughput, qos1) or *',
      defaultDescription: 'latency 20%, throughput and counts 10%, lost/violations/connectFailures/qos2.duplicated: any rise',
    })
    .option('metrics', {
      type: 'string',
      array: true,
      describe: 'Metrics to compare, comma-separated or repeated (any name of docs/scenarios.md#assertions)',
      defaultDescription: defaultCompareMetrics.join(','),
    })
    .option('format', { choices: compareFormats, default: 'table' as const, describe: 'Output: a text table, Markdown (for a PR comment or job summary) or JSON' })
    .example('$0 compare reports/baselines/smoke.json reports/smoke-20250301-100000/run.json', 'the default metrics and thresholds')
    .example('$0 compare base.json new.json --max-regression latency.e2e.p99=10%,throughput=5%', 'tighter limits')
    .example('$0 compare base.json new.json --metrics latency.connect.p99,reconnects --format md', 'other metrics, as Markdown') as unknown as Argv<CompareArgs>;
}

function readRun(role: string, path: string): RunResult {
  if (typeof path !== 'string' || path === '') throw new UserError(`${role}: expected the path of a run.json`, ExitCode.BadUsage);
  try {
    return readRunResult(path);
  } catch (err) {
    throw new UserError(`${role}: ${err instanceof Error ? err.message : String(err)}`, ExitCode.BadUsage);
  }
}

function list(value: string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value.flatMap((v) => String(v).split(',')).map((s) => s.trim()).filter((s) => s !== '');
  return items;
}

/** Runs the comparison and returns the exit code (0 or 1); bad input throws UserError (exit 2). */
export function runCompare(args: CompareArgs, io: CliIo): number {
  const baseline = readRun('BASELINE', args.baseline);
  const candidate = readRun('CANDIDATE', args.candidate);
  try {
    const thresholds = parseThresholds(args['max-regression'] ?? []);
    const metrics = list(args.metrics);
    if (metrics !== undefined && metrics.length === 0) throw new CompareInputError('--metrics: expected metric names like latency.e2e.p99,throughput.delivered');
    const comparison = compareRuns(baseline, candidate, {
      thresholds,
      ...(metrics !== undefined ? { metrics } : {}),
      labels: { baseline: args.baseline, candidate: args.candidate },
    });
    const text = args.format === 'json' ? formatComparisonJson(comparison) : args.format === 'md' ? formatComparisonMarkdown(comparison) : formatComparisonTable(comparison);
    io.stdout(text);
    return comparison.regressions.length > 0 ? ExitCode.AssertionFailed : ExitCode.Ok;
  } catch (err) {
    if (err instanceof CompareInputError) throw new UserError(err.message, ExitCode.BadUsage);
    throw err;
  }
}

function handler(args: CompareArgs & Partial<CommandContext>): void {
  const io = args.io ?? { stdout: (text: string) => process.stdout.write(text), stderr: (text: string) => process.stderr.write(text) };
  process.exitCode = runCompare(args, io);
}

export const compareCommand: CommandModule<object, CompareArgs> = {
  command: 'compare <baseline> <candidate>',
  describe: 'Compare two run.json files and fail on a regression (the CI gate)',
  builder: compareCommandBuilder,
  handler,
};
