/**
 * `mqtt-sim validate FILE [--seed N] [--target URL]`: loads a scenario exactly as `run` would and prints a
 * one-screen summary (timeline, target, fleets with their steady-state message rates), or every problem
 * with its YAML path (exit 2).
 */
import type { Argv, CommandModule } from 'yargs';
import { describeChaosAction } from '../../simulator/orchestrator/chaos.js';
import { loadScenario, ScenarioError } from '../../simulator/scenario/load.js';
import type { FleetSpec, Scenario } from '../../simulator/scenario/types.js';
import { formatDuration, formatRate } from '../../simulator/scenario/units.js';
import type { CliIo, CommandContext } from '../context.js';
import { ExitCode, UserError } from '../exit-codes.js';
import { expectedPublishRates } from '../../simulator/scenario/rates.js';

export interface ValidateArgs {
  file: string;
  seed?: unknown;
  target?: unknown;
}

export function validateCommandBuilder(yargs: Argv): Argv<ValidateArgs> {
  return yargs
    .usage('$0 validate FILE [--seed N] [--target URL]\n\nChecks a scenario file (see docs/scenarios.md) without running it and prints what it would run: phases, target, fleets and their expected message rates. Every problem is listed with its YAML path; the exit code is then 2.')
    .positional('file', { type: 'string', describe: 'The scenario YAML file' })
    .option('seed', { describe: 'Override the scenario seed (an integer of 0 or more)' })
    .option('target', { type: 'string', array: true, describe: 'Override the broker URL(s) (mqtt://, mqtts://, ws://, wss://); repeat for several nodes' })
    .example('$0 validate scenarios/pipeline.yaml', 'check the flagship scenario')
    .example('$0 validate scenarios/smoke.yaml --target mqtt://broker.local:1883', 'as it would run against another broker')
    .example('$0 validate my.yaml --seed 7', 'with another seed') as unknown as Argv<ValidateArgs>;
}


function rateText(perSecond: number): string {
  if (perSecond >= 100) return `${Math.round(perSecond).toLocaleString('en-US')} msg/s`;
  return `${Number(perSecond.toFixed(2))} msg/s`;
}

function every(intervalMs: number, jitter: number): string {
  return `every ${formatDuration(intervalMs)}${jitter > 0 ? ` ±${Math.round(jitter * 100)}%` : ''}`;
}

function fleetLines(fleet: FleetSpec, rate: number): string[] {
  const head = `  ${fleet.name}: ${fleet.model} × ${fleet.count.toLocaleString('en-US')}${fleet.model === 'gateway' ? ` (${fleet.sensorsPerDevice} sensors each)` : ''}`
    + `, connect ${formatRate(fleet.connectRatePerSec)}, ${fleet.session.clean ? 'clean session' : `persistent session (expiry ${formatDuration(fleet.session.expirySec * 1000)})`}`
    + ` → ${rateText(rate)}`;
  const lines = [head];
  for (const p of fleet.publish) lines.push(`    publish QoS ${p.qos}${p.retain ? ' retained' : ''} ${every(p.intervalMs, p.jitter)} on ${p.topic}`);
  for (const s of fleet.subscribe) lines.push(`    subscribe QoS ${s.qos} ${s.topic}`);
  if (fleet.reply !== undefined) lines.push(`    reply QoS ${fleet.reply.qos}${fleet.reply.retain ? ' retained' : ''} on ${fleet.reply.topic}`);
  if (fleet.commands !== undefined) lines.push(`    commands QoS ${fleet.commands.qos} ${every(fleet.commands.intervalMs, fleet.commands.jitter)} to ${fleet.commands.fleet} on ${fleet.commands.topic}`);
  if (fleet.targetUrls !== undefined) lines.push(`    target ${fleet.targetUrls.join(', ')}`);
  return lines;
}

/** The summary `validate` prints; a pure function of the scenario. */
export function formatScenarioSummary(scenario: Scenario, file: string): string {
  const { phases } = scenario;
  const rates = expectedPublishRates(scenario);
  const devices = scenario.fleets.reduce((n, f) => n + f.count, 0);
  const target = scenario.target === null
    ? 'embedded reference broker'
    : `${scenario.target.urls.join(', ')} (MQTT ${scenario.target.protocolVersion === 5 ? '5' : '3.1.1'}${scenario.target.tls !== undefined ? ', TLS' : ''}${scenario.target.username !== undefined ? `, user ${scenario.target.username}` : ''})`;
  const lines = [
    `${file}: scenario ${scenario.name} is valid`,
    ...(scenario.description !== undefined ? [`  ${scenario.description}`] : []),
    `duration ${formatDuration(scenario.durationMs)}: ramp-up ${formatDuration(phases.rampUpMs)}, steady ${formatDuration(phases.steadyMs)}, ramp-down ${formatDuration(phases.rampDownMs)}; drain up to ${formatDuration(scenario.drainMs)}; seed ${scenario.seed}`,
    `target: ${target}`,
    `fleets (${devices.toLocaleString('en-US')} devices):`,
    ...scenario.fleets.flatMap((f) => fleetLines(f, rates.perFleet[f.name] ?? 0)),
    `expected publish rate in steady state: ${rateText(rates.total)}`,
    ...(scenario.chaos.length > 0 ? [`chaos: ${scenario.chaos.map((a) => `${formatDuration(a.atMs)} ${describeChaosAction(a)}`).join('; ')}`] : []),
    scenario.expect.length === 0 ? 'expect: nothing' : `expect: ${scenario.expect.map((e) => e.source).join('; ')}`,
  ];
  return lines.join('\n') + '\n';
}

function seedOverride(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw new UserError(`--seed: expected an integer of 0 or more, got ${JSON.stringify(value)}`, ExitCode.BadUsage);
  return n;
}

function targetOverride(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  const list = (Array.isArray(value) ? value : [value]).map(String);
  if (list.some((u) => u === '')) throw new UserError('--target: expected a broker URL like mqtt://127.0.0.1:1883, got no value', ExitCode.BadUsage);
  return list;
}

export function runValidate(args: ValidateArgs, io: CliIo): void {
  if (typeof args.file !== 'string' || args.file === '') throw new UserError('FILE: expected the path of a scenario YAML file', ExitCode.BadUsage);
  const seed = seedOverride(args.seed);
  const targetUrls = targetOverride(args.target);
  let scenario: Scenario;
  try {
    scenario = loadScenario(args.file, { ...(seed !== undefined ? { seed } : {}), ...(targetUrls !== undefined ? { targetUrls } : {}) });
  } catch (err) {
    if (!(err instanceof ScenarioError)) throw err;
    const readProblem = err.issues.length === 1 && err.issues[0]!.path === '' && err.issues[0]!.message.startsWith('cannot read scenario');
    const header = readProblem ? '' : `${args.file} is not a valid scenario (${err.issues.length} ${err.issues.length === 1 ? 'problem' : 'problems'}):\n`;
    throw new UserError(header + err.message.split('\n').map((line) => (readProblem ? line : `  ${line}`)).join('\n'), ExitCode.BadUsage);
  }
  io.stdout(formatScenarioSummary(scenario, args.file));
}

function handler(args: ValidateArgs & Partial<CommandContext>): void {
  const io = args.io ?? { stdout: (text: string) => process.stdout.write(text), stderr: (text: string) => process.stderr.write(text) };
  runValidate(args, io);
}

export const validateCommand: CommandModule<object, ValidateArgs> = {
  command: 'validate <file>',
  describe: 'Check a scenario file and summarize what it would run',
  builder: validateCommandBuilder,
  handler,
};
