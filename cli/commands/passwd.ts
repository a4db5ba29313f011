/**
 * `mqtt-sim passwd FILE USER`: adds a user to the broker's password file or changes their password
 * (`--delete` removes them). The password comes from stdin when it is not a terminal (first line), from a
 * hidden prompt when it is, or from `--password` (for scripts; less safe). The file is created with mode
 * 0600; other users, comments and blank lines are kept, and it is replaced atomically (write, then rename).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { ReadStream } from 'node:tty';
import type { Argv, CommandModule } from 'yargs';
import {
  PasswordFile, PasswordFileError, defaultScryptParams, fileErrorReason, hashPassword, userNameProblem, type ScryptParams,
} from '../../broker/auth/password-file.js';
import type { CliIo, CommandContext } from '../context.js';
import { UserError } from '../exit-codes.js';

export interface PasswdArgs {
  file: string;
  user: string;
  delete?: boolean;
  password?: string;
}

/** Where the password comes from when --password is not given. */
export interface PasswordInput {
  /** True when stdin is a terminal: the password is typed at a prompt that does not echo it. */
  isTTY: boolean;
  /** Everything on stdin up to its end (stdin is not a terminal). */
  readAll(): Promise<string>;
  /** Asks on the terminal without echoing what is typed. */
  prompt(question: string): Promise<string>;
}

const NEW_FILE_MODE = 0o600;

/** Declares the positionals and flags (exported for the parse test). */
export function passwdCommandBuilder(yargs: Argv): Argv<PasswdArgs> {
  return yargs
    .usage(
      '$0 passwd FILE USER [--delete] [--password PASSWORD]\n\n' +
      'Adds USER to the broker password file FILE or changes their password (the file is created with mode 0600 if missing; ' +
      'other lines and comments are kept). The password is read from stdin when stdin is not a terminal (its first line), ' +
      'otherwise typed twice at a prompt that does not echo it. Use the file with `mqtt-sim broker --password-file FILE`.',
    )
    .positional('file', { type: 'string', describe: 'The password file' })
    .positional('user', { type: 'string', describe: 'The user name' })
    .option('delete', { type: 'boolean', describe: 'Remove USER from FILE instead' })
    .option('password', {
      type: 'string',
      describe: 'The password, for scripts that cannot use stdin. Less safe: other local users can see it in the process list, and it lands in shell history.',
    })
    .example("printf '%s\\n' \"$PW\" | $0 passwd users.pw alice", 'set alice\'s password from a variable (never on the command line)')
    .example('$0 passwd users.pw alice', 'prompt for it on the terminal')
    .example('$0 passwd users.pw alice --delete', 'remove alice') as unknown as Argv<PasswdArgs>;
}

/**
 * Does the work of the command: validate, get the password, rewrite the file. Throws UserError (exit 2)
 * for every mistake the user can fix; reports what it did on stdout.
 */
export async function runPasswd(
  args: PasswdArgs, io: CliIo, input: PasswordInput, params: ScryptParams = defaultScryptParams,
): Promise<void> {
  const { file, user } = args;
  if (file === '') throw new UserError('FILE: expected the path of the password file, got an empty string');
  const userProblem = userNameProblem(user);
  if (userProblem !== undefined) throw new UserError(`USER ${JSON.stringify(user)}: ${userProblem}`);
  if (args.delete === true && args.password !== undefined) throw new UserError('--password cannot be used with --delete');

  const existing = readExisting(file);
  if (args.delete === true) {
    if (existing === undefined) throw new UserError(`${file} does not exist, so there is no user ${JSON.stringify(user)} to delete`);
    if (!existing.passwords.has(user)) throw new UserError(`user ${JSON.stringify(user)} is not in ${file}; nothing deleted`);
    writeAtomically(existing.path, existing.passwords.withoutUser(user).toString(), existing.mode);
    io.stdout(`deleted user ${JSON.stringify(user)} from ${file}\n`);
    return;
  }

  const password = args.password ?? (await readPassword(input));
  if (password === '') throw new UserError('the password is empty; give a non-empty password');
  const passwords = existing?.passwords ?? PasswordFile.empty();
  const updated = passwords.withUser(user, hashPassword(password, params));
  writeAtomically(existing?.path ?? file, updated.toString(), existing?.mode ?? NEW_FILE_MODE);
  if (existing === undefined) io.stdout(`created ${file} (mode 0600) with user ${JSON.stringify(user)}\n`);
  else if (passwords.has(user)) io.stdout(`changed the password of user ${JSON.stringify(user)} in ${file}\n`);
  else io.stdout(`added user ${JSON.stringify(user)} to ${file}\n`);
}

/** The parsed file, its real path (a symlink is followed) and mode; undefined when it does not exist. */
function readExisting(file: string): { passwords: PasswordFile; path: string; mode: number } | undefined {
  let text: string;
  let path: string;
  let mode: number;
  try {
    path = realpathSync(file);
    mode = statSync(path).mode & 0o777;
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`cannot read ${file}: ${fileErrorReason(err)}`);
  }
  try {
    return { passwords: PasswordFile.parse(text, file), path, mode };
  } catch (err) {
    if (!(err instanceof PasswordFileError)) throw err;
    throw new UserError(`${file} is not a valid password file, so it was left unchanged:\n${err.message}`);
  }
}

async function readPassword(input: PasswordInput): Promise<string> {
  if (!input.isTTY) {
    const text = await input.readAll();
    if (text === '') throw new UserError('no password on stdin: pipe it in (first line), or run in a terminal to be prompted');
    const end = text.indexOf('\n');
    const line = end < 0 ? text : text.slice(0, end);
    return line.endsWith('\r') ? line.slice(0, -1) : line;
  }
  const first = await input.prompt('Password: ');
  if (first === '') return first;
  const second = await input.prompt('Confirm password: ');
  if (first !== second) throw new UserError('the passwords do not match; nothing changed');
  return first;
}

/** Writes a sibling temporary file with the mode, then renames it over the target: never a half-written file. */
function writeAtomically(path: string, text: string, mode: number): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, text, { mode, flag: 'wx' });
    // The umask may have cleared bits of `mode`; the file gets exactly the mode the original had.
    chmodSync(tmp, mode);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new UserError(`cannot write ${path}: ${fileErrorReason(err)}`);
  }
}

/** Reads the password from this process's stdin. */
export function processPasswordInput(stderr: (text: string) => void): PasswordInput {
  const stdin = process.stdin;
  return {
    isTTY: stdin.isTTY === true,
    async readAll() {
      stdin.setEncoding('utf8');
      let text = '';
      for await (const chunk of stdin) text += chunk as string;
      return text;
    },
    prompt: (question) => promptHidden(stdin as ReadStream, question, stderr),
  };
}

/** Reads one line from a terminal in raw mode so nothing typed is echoed; Ctrl-C or Ctrl-D cancel. */
function promptHidden(stdin: ReadStream, question: string, stderr: (text: string) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    stderr(question);
    let value = '';
    const finish = (err?: UserError): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      stderr('\n');
      if (err === undefined) resolve(value);
      else reject(err);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003' || ch === '\u0004') return finish(new UserError('cancelled; nothing changed'));
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else value += ch;
      }
    };
    stdin.setEncoding('utf8');
    stdin.setRawMode(true);
    stdin.on('data', onData);
    stdin.resume();
  });
}

type PasswdHandlerArgs = PasswdArgs & Partial<CommandContext>;

async function handler(args: PasswdHandlerArgs): Promise<void> {
  const io = args.io ?? { stdout: (text: string) => process.stdout.write(text), stderr: (text: string) => process.stderr.write(text) };
  await runPasswd(args, io, processPasswordInput(io.stderr));
}

export const passwdCommand: CommandModule<object, PasswdArgs> = {
  command: 'passwd <file> <user>',
  describe: 'Add a user to a broker password file, change their password, or --delete them',
  builder: passwdCommandBuilder,
  handler,
};
