/**
 * Builds the `mqtt-sim` command line. Kept apart from main.ts so tests can parse arguments
 * without exiting the process.
 */
import yargs, { type Argv, type CommandModule } from 'yargs';
import { commands } from './commands/index.js';
import type { CliIo, CommandContext } from './context.js';
import { ExitCode, UserError } from './exit-codes.js';
import { packageVersion } from './version.js';

export type { CliIo } from './context.js';

export function buildCli(argv: string[]): Argv {
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
    .wrap(Math.min(100, process.stdout.columns || 100))
    .epilogue('Exit codes: 0 ok, 1 an assertion failed, 2 bad usage or invalid config, 3 target unreachable, 4 internal error.')
    .fail((message, error) => {
      if (error instanceof UserError) throw error;
      // yargs reports its own validation failures (unknown flags, missing values) as YError.
      if (error !== undefined && error !== null && error.name !== 'YError') throw error;
      throw new UserError(error?.message ?? message ?? 'invalid arguments', ExitCode.BadUsage);
    });
  for (const command of commands) cli = cli.command(command);
  return cli;
}


function commandName(c: CommandModule<object, any>): string {
  const spec = Array.isArray(c.command) ? c.command[0] : c.command;
  return String(spec ?? '').split(' ')[0]!;
}

/** Runs the CLI and resolves to the process exit code; never throws for user mistakes. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let output = '';
  try {
    const cli = buildCli(argv);
    const context: CommandContext = { io };
    const parsed = await cli.parseAsync(argv, context, (err, _argv, out) => {
      if (err === null || err === undefined) output = out;
    });
    if (output) {
      // --help or --version
      io.stdout(output.endsWith('\n') ? output : output + '\n');
      return ExitCode.Ok;
    }
    if (parsed._.length === 0) {
      io.stderr((await cli.getHelp()) + '\n\nmqtt-sim: name a command.\n');
      return ExitCode.BadUsage;
    }
    if (!commands.some((c) => commandName(c) === String(parsed._[0]))) {
      throw new UserError(`unknown command '${String(parsed._[0])}'`, ExitCode.BadUsage);
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
