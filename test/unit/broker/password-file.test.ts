import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  PasswordFile, PasswordFileError, defaultScryptParams, formatHash, hashPassword, parseHash, userNameProblem, verifyPassword,
} from '../../../broker/auth/password-file.js';

/** Cheap parameters: these tests check the format and logic, not the cost. */
const FAST = { N: 1024, r: 8, p: 1 };

function fileError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof PasswordFileError) return err.message;
    throw err;
  }
  throw new Error('expected a PasswordFileError, but the file was accepted');
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('password hashes', () => {
  it('are $scrypt$N$r$p$salt$hash with unpadded base64, and round-trip', () => {
    const h = hashPassword('s3cret', FAST);
    const text = formatHash(h);
    expect(text).toMatch(/^\$scrypt\$1024\$8\$1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(parseHash(text)).toEqual(h);
  });

  it('default parameters are N=16384 r=8 p=1', () => {
    expect(defaultScryptParams).toEqual({ N: 16384, r: 8, p: 1 });
  });

  it('verify the right password and refuse others, including a prefix and an empty one', async () => {
    const h = hashPassword('s3cret', FAST);
    expect(await verifyPassword(Buffer.from('s3cret'), h)).toBe(true);
    expect(await verifyPassword(Buffer.from('s3cre'), h)).toBe(false);
    expect(await verifyPassword(Buffer.from('s3cret '), h)).toBe(false);
    expect(await verifyPassword(Buffer.alloc(0), h)).toBe(false);
  });

  it('salts: the same password hashes differently each time', () => {
    expect(formatHash(hashPassword('x', FAST))).not.toBe(formatHash(hashPassword('x', FAST)));
  });

  it.each<[string, RegExp]>([
    ['$bcrypt$10$abc', /expected \$scrypt\$N\$r\$p\$salt\$hash/],
    ['$scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', /N must be a power of two/],
    ['$scrypt$4194304$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', /N must be a power of two from 2 to 1048576/],
    ['$scrypt$1048576$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', /need more than 256 MiB/],
    ['$scrypt$1024$0$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', /r must be from 1 to 32/],
    ['$scrypt$1024$8$99$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', /p must be from 1 to 16/],
    ['$scrypt$1024$8$1$AAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', /salt must be at least 8 bytes/],
    ['$scrypt$1024$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAA', /hash must be 16 to 64 bytes/],
    ['$scrypt$1024$8$1$AAAA!AAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', /must be base64/],
  ])('refuses %s', (text, reason) => {
    expect(parseHash(text)).toMatch(reason);
  });
});

describe('user names', () => {
  it.each<[string, RegExp]>([
    ['', /empty/],
    ['a:b', /':'/],
    ['a\nb', /control characters/],
    ['#admin', /'#'/],
    [' bob', /white space/],
  ])('%j is refused', (user, reason) => {
    expect(userNameProblem(user)).toMatch(reason);
  });

  it('anything else is fine, including spaces inside and non-ASCII', () => {
    expect(userNameProblem('Zoë Smith')).toBeUndefined();
    expect(userNameProblem('sensor+1/x#')).toBeUndefined();
  });
});

describe('PasswordFile', () => {
  const alice = `alice:${formatHash(hashPassword('wonderland', FAST))}`;
  const bob = `bob:${formatHash(hashPassword('builder', FAST))}`;

  it('verifies users; unknown users and wrong passwords are refused', async () => {
    const file = PasswordFile.parse(`# users\n${alice}\n\n${bob}\n`, 'users.pw');
    expect(file.size).toBe(2);
    expect(await file.verify('alice', Buffer.from('wonderland'))).toBe(true);
    expect(await file.verify('bob', Buffer.from('builder'))).toBe(true);
    expect(await file.verify('alice', Buffer.from('builder'))).toBe(false);
    expect(await file.verify('carol', Buffer.from('wonderland'))).toBe(false);
  });

  it('keeps comments, blank lines and order when a user is changed, added or removed', () => {
    const text = `# managed by ops\n${alice}\n\n# robots\n${bob}\n`;
    const file = PasswordFile.parse(text, 'users.pw');
    expect(file.toString()).toBe(text);

    const changed = file.withUser('alice', hashPassword('new', FAST)).toString().split('\n');
    expect(changed[0]).toBe('# managed by ops');
    expect(changed[1]).toMatch(/^alice:\$scrypt\$/);
    expect(changed[1]).not.toBe(alice);
    expect(changed.slice(2)).toEqual(['', '# robots', bob, '']);

    const added = file.withUser('carol', hashPassword('c', FAST)).toString().split('\n');
    expect(added.slice(0, 5)).toEqual(['# managed by ops', alice, '', '# robots', bob]);
    expect(added[5]).toMatch(/^carol:\$scrypt\$/);

    expect(file.withoutUser('alice').toString()).toBe(`# managed by ops\n\n# robots\n${bob}\n`);
  });

  it('accepts CRLF line ends and a missing final newline', async () => {
    const file = PasswordFile.parse(`# x\r\n${alice}`, 'users.pw');
    expect(await file.verify('alice', Buffer.from('wonderland'))).toBe(true);
  });

  it('reports every bad line with file and line number', () => {
    const message = fileError(() => PasswordFile.parse(
      `${alice}\nno-colon-here\n:${alice.slice(6)}\ncarol:plaintext\n${alice}\n`, 'users.pw',
    ));
    expect(message.split('\n')).toEqual([
      "users.pw:2: expected user:$scrypt$N$r$p$salt$hash (or a # comment), got a line without ':'",
      'users.pw:3: the user name is empty',
      'users.pw:4: user "carol": expected $scrypt$N$r$p$salt$hash after the user name',
      'users.pw:5: user "alice" is already defined on line 1; keep one line per user',
    ]);
  });

  it('load() names a missing file', () => {
    expect(fileError(() => PasswordFile.load('/nonexistent/users.pw'))).toBe(
      '/nonexistent/users.pw: cannot read the password file: it does not exist',
    );
  });

  it('load() reads a file from disk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-pw-'));
    dirs.push(dir);
    const path = join(dir, 'users.pw');
    writeFileSync(path, `${alice}\n`);
    expect(await PasswordFile.load(path).verify('alice', Buffer.from('wonderland'))).toBe(true);
  });
});
