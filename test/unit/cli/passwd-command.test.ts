import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PasswordFile, formatHash, hashPassword } from '../../../broker/auth/password-file.js';
import { runCli } from '../../../cli/app.js';
import { passwdCommandBuilder, runPasswd, type PasswdArgs, type PasswordInput } from '../../../cli/commands/passwd.js';
import { UserError } from '../../../cli/exit-codes.js';
import { withTimeout } from '../../helpers/broker.js';
import { cliMain, requireBuilt } from '../../helpers/cli-process.js';

const FAST = { N: 1024, r: 8, p: 1 };

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-passwd-'));
  dirs.push(dir);
  return dir;
}

/** A non-terminal stdin holding `text`. */
function piped(text: string): PasswordInput {
  return { isTTY: false, readAll: async () => text, prompt: () => Promise.reject(new Error('no terminal')) };
}

/** A terminal where the user types `answers` at successive prompts. */
function terminal(...answers: string[]): PasswordInput & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    isTTY: true,
    readAll: () => Promise.reject(new Error('stdin is a terminal')),
    prompt: async (question) => {
      asked.push(question);
      return answers.shift() ?? '';
    },
  };
}

async function passwd(args: PasswdArgs, input: PasswordInput = piped('')): Promise<{ stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  await runPasswd(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) }, input, FAST);
  return { stdout, stderr };
}

async function passwdError(args: PasswdArgs, input: PasswordInput = piped('')): Promise<UserError> {
  const err = await passwd(args, input).then(() => undefined, (e: unknown) => e);
  if (err instanceof UserError) return err;
  throw err ?? new Error('expected a UserError, but the command succeeded');
}

async function verifies(file: string, user: string, password: string): Promise<boolean> {
  return PasswordFile.load(file).verify(user, Buffer.from(password));
}

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe('mqtt-sim passwd: argument parsing', () => {
  const parse = (argv: string[]): PasswdArgs => passwdCommandBuilder(
    yargs().command('$0 <file> <user>', '', () => {}).strict().exitProcess(false).fail((message, error) => {
      throw error ?? new Error(message);
    }),
  ).parseSync(argv);

  it('FILE and USER are strings (a numeric user name stays a string), flags are optional', () => {
    expect(parse(['users.pw', '007'])).toMatchObject({ file: 'users.pw', user: '007' });
    expect(parse(['users.pw', 'alice', '--delete'])).toMatchObject({ delete: true });
    expect(parse(['users.pw', 'alice', '--password', 'x'])).toMatchObject({ password: 'x' });
  });
});

describe('mqtt-sim passwd: adding and changing users', () => {
  it('creates the file with mode 0600 and a verifiable scrypt line; the password comes from stdin (first line)', async () => {
    const file = join(tempDir(), 'users.pw');
    const { stdout } = await passwd({ file, user: 'alice' }, piped('wonderland\r\nignored second line\n'));
    expect(stdout).toBe(`created ${file} (mode 0600) with user "alice"\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/^alice:\$scrypt\$1024\$8\$1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+\n$/);
    expect(await verifies(file, 'alice', 'wonderland')).toBe(true);
    expect(await verifies(file, 'alice', 'wonderland\r')).toBe(false);
  });

  it('a password without a final newline is taken whole', async () => {
    const file = join(tempDir(), 'users.pw');
    await passwd({ file, user: 'alice' }, piped('p@ss word'));
    expect(await verifies(file, 'alice', 'p@ss word')).toBe(true);
  });

  it('on a terminal it prompts twice and accepts matching answers', async () => {
    const file = join(tempDir(), 'users.pw');
    const tty = terminal('s3cret', 's3cret');
    await passwd({ file, user: 'alice' }, tty);
    expect(tty.asked).toEqual(['Password: ', 'Confirm password: ']);
    expect(await verifies(file, 'alice', 's3cret')).toBe(true);
  });

  it('on a terminal, answers that differ change nothing (exit 2)', async () => {
    const file = join(tempDir(), 'users.pw');
    const err = await passwdError({ file, user: 'alice' }, terminal('one', 'two'));
    expect(err.exitCode).toBe(2);
    expect(err.message).toBe('the passwords do not match; nothing changed');
    expect(readdirSync(join(file, '..'))).toEqual([]);
  });

  it('--password works without stdin', async () => {
    const file = join(tempDir(), 'users.pw');
    await passwd({ file, user: 'alice', password: 'from-flag' }, piped('from-stdin\n'));
    expect(await verifies(file, 'alice', 'from-flag')).toBe(true);
  });

  it('changing a password keeps every other line, comment and blank line, and the line position', async () => {
    const file = join(tempDir(), 'users.pw');
    const bob = `bob:${formatHash(hashPassword('builder', FAST))}`;
    const alice = `alice:${formatHash(hashPassword('old', FAST))}`;
    writeFileSync(file, `# ops-managed\n${alice}\n\n# robots\n${bob}\n`, { mode: 0o640 });
    chmodSync(file, 0o640);
    const { stdout } = await passwd({ file, user: 'alice' }, piped('new\n'));
    expect(stdout).toBe(`changed the password of user "alice" in ${file}\n`);
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines[0]).toBe('# ops-managed');
    expect(lines[1]).toMatch(/^alice:\$scrypt\$/);
    expect(lines.slice(2)).toEqual(['', '# robots', bob, '']);
    expect(await verifies(file, 'alice', 'new')).toBe(true);
    expect(await verifies(file, 'alice', 'old')).toBe(false);
    expect(await verifies(file, 'bob', 'builder')).toBe(true);
    // An existing file keeps its mode; no temporary file is left behind.
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(readdirSync(join(file, '..'))).toEqual(['users.pw']);
  });

  it('a new user is appended', async () => {
    const file = join(tempDir(), 'users.pw');
    await passwd({ file, user: 'alice' }, piped('a\n'));
    const { stdout } = await passwd({ file, user: 'bob' }, piped('b\n'));
    expect(stdout).toBe(`added user "bob" to ${file}\n`);
    expect(readFileSync(file, 'utf8').split('\n').map((l) => l.split(':')[0])).toEqual(['alice', 'bob', '']);
  });
});

describe('mqtt-sim passwd --delete', () => {
  it('removes the user and keeps the rest', async () => {
    const file = join(tempDir(), 'users.pw');
    await passwd({ file, user: 'alice' }, piped('a\n'));
    await passwd({ file, user: 'bob' }, piped('b\n'));
    const { stdout } = await passwd({ file, user: 'alice', delete: true });
    expect(stdout).toBe(`deleted user "alice" from ${file}\n`);
    const passwords = PasswordFile.load(file);
    expect(passwords.has('alice')).toBe(false);
    expect(passwords.has('bob')).toBe(true);
  });

  it('an unknown user or a missing file is an error (exit 2)', async () => {
    const file = join(tempDir(), 'users.pw');
    expect((await passwdError({ file, user: 'alice', delete: true })).message).toBe(
      `${file} does not exist, so there is no user "alice" to delete`,
    );
    await passwd({ file, user: 'bob' }, piped('b\n'));
    const err = await passwdError({ file, user: 'alice', delete: true });
    expect(err.exitCode).toBe(2);
    expect(err.message).toBe(`user "alice" is not in ${file}; nothing deleted`);
  });

  it('--delete with --password is bad usage', async () => {
    const err = await passwdError({ file: join(tempDir(), 'users.pw'), user: 'alice', delete: true, password: 'x' });
    expect(err.message).toBe('--password cannot be used with --delete');
  });
});

describe('mqtt-sim passwd: mistakes are exit 2 with a clear message, and change nothing', () => {
  it.each<[string, RegExp]>([
    ['a:b', /^USER "a:b": a user name must not contain ':'/],
    ['', /^USER "": the user name is empty$/],
    ['#root', /must not start with '#'/],
  ])('user name %j', async (user, message) => {
    const err = await passwdError({ file: join(tempDir(), 'users.pw'), user, password: 'x' });
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(message);
  });

  it('an empty password, from stdin or the flag', async () => {
    const file = join(tempDir(), 'users.pw');
    expect((await passwdError({ file, user: 'alice' }, piped('\n'))).message).toBe('the password is empty; give a non-empty password');
    expect((await passwdError({ file, user: 'alice', password: '' })).message).toBe('the password is empty; give a non-empty password');
    expect((await passwdError({ file, user: 'alice' }, piped(''))).message).toMatch(/^no password on stdin/);
  });

  it('an existing file that is not a valid password file is left unchanged', async () => {
    const file = join(tempDir(), 'users.pw');
    writeFileSync(file, 'alice:plaintext\n');
    const err = await passwdError({ file, user: 'bob', password: 'x' });
    expect(err.message).toBe(
      `${file} is not a valid password file, so it was left unchanged:\n${file}:1: user "alice": expected $scrypt$N$r$p$salt$hash after the user name`,
    );
    expect(readFileSync(file, 'utf8')).toBe('alice:plaintext\n');
  });

  it('a directory that does not exist', async () => {
    const file = join(tempDir(), 'missing', 'users.pw');
    const err = await passwdError({ file, user: 'alice', password: 'x' });
    expect(err.message).toBe(`cannot write ${file}: it does not exist`);
  });
});

describe('mqtt-sim passwd through runCli', () => {
  it('is registered: --password adds the user, exit 0', async () => {
    const file = join(tempDir(), 'users.pw');
    const r = await run(['passwd', file, 'alice', '--password', 'wonderland']);
    expect(r).toEqual({ code: 0, stdout: `created ${file} (mode 0600) with user "alice"\n`, stderr: '' });
    expect(await verifies(file, 'alice', 'wonderland')).toBe(true);
    // The command hashes with the default cost.
    expect(readFileSync(file, 'utf8')).toMatch(/^alice:\$scrypt\$16384\$8\$1\$/);
  });

  it('missing USER is bad usage (exit 2) without a stack trace', async () => {
    const r = await run(['passwd', 'users.pw']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Not enough non-option arguments/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('an error from the command is exit 2 with its message', async () => {
    const r = await run(['passwd', join(tempDir(), 'users.pw'), 'alice', '--delete']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/does not exist, so there is no user "alice" to delete/);
  });

  it('--help documents stdin, the prompt and that --password is less safe', async () => {
    const r = await run(['passwd', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/read\s+from\s+stdin\s+when\s+stdin\s+is\s+not\s+a\s+terminal/);
    expect(r.stdout).toMatch(/Less safe/);
  });
});

describe('mqtt-sim passwd (built CLI, password piped to stdin)', () => {
  beforeAll(() => requireBuilt('cli/commands/passwd.js'));

  it('reads the password from a pipe and creates the file', async () => {
    const file = join(tempDir(), 'users.pw');
    const child = spawn(process.execPath, [cliMain, 'passwd', file, 'alice'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    child.stdin.end('piped secret\n');
    try {
      expect(await withTimeout(exited, 15_000, `mqtt-sim passwd did not exit; stderr: ${stderr}`)).toBe(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    expect(stderr).toBe('');
    expect(stdout).toBe(`created ${file} (mode 0600) with user "alice"\n`);
    expect(await verifies(file, 'alice', 'piped secret')).toBe(true);
  });
});
