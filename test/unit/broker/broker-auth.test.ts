import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BrokerAuth } from '../../../broker/auth/broker-auth.js';
import { formatHash, hashPassword } from '../../../broker/auth/password-file.js';
import { ConfigError } from '../../../broker/config.js';
import type { AuthRequest, AuthResult } from '../../../broker/options.js';

const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-auth-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const passwordFile = join(dir, 'users.pw');
writeFileSync(passwordFile, `alice:${formatHash(hashPassword('wonderland', { N: 1024, r: 8, p: 1 }))}\n`);

function decide(auth: BrokerAuth | undefined, request: Partial<AuthRequest>): Promise<AuthResult> {
  if (auth === undefined) throw new Error('expected an auth configuration');
  return Promise.resolve(auth.authenticator(undefined)({ clientId: 'c', protocolVersion: 4, ...request }));
}

const pw = (s: string): Buffer => Buffer.from(s);

describe('BrokerAuth: the CONNECT decision', () => {
  it('nothing configured: no auth object at all (the broker accepts everyone, checks nothing)', () => {
    expect(BrokerAuth.load({})).toBeUndefined();
  });

  it('with a password file: anonymous is off by default (not authorized), users need their password (bad credentials)', async () => {
    const auth = BrokerAuth.load({ passwordFile });
    expect(auth!.allowAnonymous).toBe(false);
    expect(await decide(auth, {})).toEqual({ reasonCode: 0x87 });
    expect(await decide(auth, { username: 'alice', password: pw('wonderland') })).toBe(true);
    expect(await decide(auth, { username: 'alice', password: pw('x') })).toBe(false);
    expect(await decide(auth, { username: 'alice' })).toBe(false);
    expect(await decide(auth, { username: 'nobody', password: pw('wonderland') })).toBe(false);
    // MQTT 5 allows a password without a user name: nothing to check it against.
    expect(await decide(auth, { password: pw('wonderland'), protocolVersion: 5 })).toBe(false);
  });

  it('allowAnonymous overrides the default either way', async () => {
    expect(await decide(BrokerAuth.load({ passwordFile, allowAnonymous: true }), {})).toBe(true);
    expect(await decide(BrokerAuth.load({ allowAnonymous: false }), {})).toEqual({ reasonCode: 0x87 });
    expect(await decide(BrokerAuth.load({ allowAnonymous: false }), { username: 'anyone' })).toBe(true);
  });

  it('useCommonNameAsUsername: a verified certificate is the credential for its CN, nothing else', async () => {
    const auth = BrokerAuth.load({ passwordFile, useCommonNameAsUsername: true });
    expect(await decide(auth, { username: 'device-1', certificateCommonName: 'device-1' })).toBe(true);
    expect(await decide(auth, { username: 'alice' })).toBe(false);
    expect(await decide(auth, { username: 'alice', certificateCommonName: 'device-1' })).toBe(false);
    const without = BrokerAuth.load({ passwordFile });
    expect(await decide(without, { username: 'device-1', certificateCommonName: 'device-1' })).toBe(false);
  });

  it('a hook runs only after the file accepted, and decides', async () => {
    const seen: string[] = [];
    const auth = BrokerAuth.load({ passwordFile })!.authenticator((r) => {
      seen.push(r.username ?? '');
      return { reasonCode: 0x9c };
    });
    expect(await auth({ clientId: 'c', protocolVersion: 5, username: 'alice', password: pw('x') })).toBe(false);
    expect(await auth({ clientId: 'c', protocolVersion: 5, username: 'alice', password: pw('wonderland') })).toEqual({ reasonCode: 0x9c });
    expect(seen).toEqual(['alice']);
  });

  it('unreadable files are a ConfigError naming each one', () => {
    expect(() => BrokerAuth.load({ passwordFile: join(dir, 'nope.pw'), aclFile: join(dir, 'nope.acl') })).toThrow(ConfigError);
    expect(() => BrokerAuth.load({ passwordFile: join(dir, 'nope.pw'), aclFile: join(dir, 'nope.acl') })).toThrow(
      `invalid broker configuration:\n  ${join(dir, 'nope.pw')}: cannot read the password file: it does not exist\n` +
      `  ${join(dir, 'nope.acl')}: cannot read the ACL file: it does not exist`,
    );
  });
});
