/**
 * Builds the `mqtt-sim` command line. Kept apart from main.ts so tests can parse arguments
 * without exiting the process.
 */
import yargs, { type Argv } from 'yargs';
import { commands } from './commands/index.js';
import { ExitCode, UserError } from './exit-codes.js';
import { packageVersion } from './version.js';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export function buildCli(argv: string[], io: CliIo): Argv {
  let cli = yargs(argv)
    .scriptName('mqtt-sim')
    .usage('$0 <command> [options]\n\nMQTT reference broker and device simulator: load, network faults, broker chaos and a delivery-guarantee checker in one run.')
    .version(packageVersion())
    .alias('version', 'V')
    .help()
    .alias('help', 'h')
    .strict()
    .strictCommands()
    .recommendCommands()
    .demandCommand(commands.length > 0 ? 1 : 0, 'Name a command; see the list above.')
    .wrap(Math.min(100, process.stdout.columns || 100))
    .epilogue('Exit codes: 0 ok, 1 an assertion failed, 2 bad usage or invalid config, 3 target unreachable, 4 internal error.')
    .fail((message, error) => {
      if (error !== undefined && error !== null && !(error instanceof UserError)) throw error;
      throw new UserError(error?.message ?? message ?? 'invalid arguments', ExitCode.BadUsage);
    });
  for (const command of commands) cli = cli.command(command);
  void io;
  return cli;
}

/** Runs the CLI and resolves to the process exit code; never throws for user mistakes. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let output = '';
  try {
    const cli = buildCli(argv, io);
    const parsed = await cli.parseAsync(argv, {}, (err, _argv, out) => {
      if (err === null || err === undefined) output = out;
    });
    if (parsed._.length > 0 && commands.length === 0) {
      throw new UserError(`unknown command '${String(parsed._[0])}'`, ExitCode.BadUsage);
    }
    if (output) io.stdout(output.endsWith('\n') ? output : output + '\n');
    if (commands.length === 0 && parsed._.length === 0 && !output) {
      io.stdout((await cli.getHelp()) + '\n');
    }
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.Ok;
  } catch (err) {
    if (err instanceof UserError) {
      io.stderr(`mqtt-sim: ${err.message}\nRun 'mqtt-sim --help' for usage.\n`);
      return err.exitCode;
    }
    const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
    io.stderr(`mqtt-sim: internal error — please report this with the command you ran:\n${detail}\n`);
    return ExitCode.Internal;
  }
}
