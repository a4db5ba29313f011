/**
 * `mqtt-sim broker --password-file --acl-file` as a child process: the files are enforced, SIGHUP reloads
 * them without dropping connections, a bad file on reload is reported and the old one kept, and a bad
 * file at start is a usage error (exit 2).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type IConnackPacket, type Packet as MqttPacket } from 'mqtt';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { formatHash, hashPassword } from '../../broker/auth/password-file.js';
import { closeAllClients, connectClient, withTimeout } from '../helpers/broker.js';
import { killAllCli, requireBuilt, spawnCli, type CliProcess } from '../helpers/cli-process.js';

const LISTENING = /^mqtt-sim broker listening on (127\.0\.0\.1):(\d+)$/;
const FAST = { N: 1024, r: 8, p: 1 };

const dirs: string[] = [];

beforeAll(() => requireBuilt('broker/auth/broker-auth.js'));

afterEach(async () => {
  await closeAllClients();
  await killAllCli();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function passwords(users: Record<string, string>): string {
  return Object.entries(users).map(([u, p]) => `${u}:${formatHash(hashPassword(p, FAST))}\n`).join('');
}

function tempFiles(): { passwordFile: string; aclFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-auth-cli-'));
  dirs.push(dir);
  const files = { passwordFile: join(dir, 'users.pw'), aclFile: join(dir, 'acl.conf') };
  writeFileSync(files.passwordFile, passwords({ alice: 'one' }), { mode: 0o600 });
  writeFileSync(files.aclFile, 'user alice\nreadwrite alice/#\n');
  return files;
}

async function connackCode(url: string, options: IClientOptions): Promise<number> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
  client.on('error', () => {});
  try {
    return await withTimeout(
      new Promise<number>((resolve) => {
        client.on('packetreceive', (p: MqttPacket) => {
          if (p.cmd !== 'connack') return;
          const connack = p as IConnackPacket;
          resolve(connack.reasonCode ?? connack.returnCode ?? -1);
        });
      }),
      5000,
      'no CONNACK',
    );
  } finally {
    client.end(true);
  }
}

/** Waits (bounded) until the broker's stderr holds `count` lines matching `pattern`. */
function stderrLines(cli: CliProcess, pattern: RegExp, count: number): Promise<void> {
  const enough = (): boolean => cli.stderr().split('\n').filter((l) => pattern.test(l)).length >= count;
  let onData = (): void => {};
  return withTimeout(
    new Promise<void>((resolve) => {
      onData = (): void => {
        if (enough()) resolve();
      };
      cli.child.stderr!.on('data', onData);
      // Registered after our listener of spawnCli, so cli.stderr() already holds this chunk when it runs.
      onData();
    }),
    10_000,
    `the broker never printed ${count} stderr line(s) matching ${pattern}; stderr: ${JSON.stringify(cli.stderr())}`,
  ).finally(() => cli.child.stderr!.off('data', onData));
}

describe('mqtt-sim broker with a password file and an ACL (built CLI)', () => {
  it('enforces both, and SIGHUP reloads them without dropping connections; a bad file is reported and the old kept', async () => {
    const files = tempFiles();
    const cli = spawnCli([
      'broker', '--port', '0', '--persistence', 'memory', '--sys-interval', '0',
      '--password-file', files.passwordFile, '--acl-file', files.aclFile,
    ]);
    const [, host, port] = await cli.waitForLine(LISTENING);
    const url = `mqtt://${host}:${port}`;
    expect(await connackCode(url, { protocolVersion: 4, clientId: 'anon' })).toBe(5);
    expect(await connackCode(url, { protocolVersion: 5, clientId: 'bad', username: 'alice', password: 'two' })).toBe(0x86);
    const alice = await connectClient(url, { protocolVersion: 5, clientId: 'alice', username: 'alice', password: 'one' });
    let closed = false;
    alice.on('close', () => (closed = true));

    writeFileSync(files.passwordFile, passwords({ alice: 'two', bob: 'three' }));
    cli.child.kill('SIGHUP');
    await stderrLines(cli, /^mqtt-sim broker: SIGHUP received, reloaded .*users\.pw \(2 users\) and .*acl\.conf \(1 rules\)$/, 1);
    expect(await connackCode(url, { protocolVersion: 5, clientId: 'old', username: 'alice', password: 'one' })).toBe(0x86);
    expect(await connackCode(url, { protocolVersion: 4, clientId: 'new', username: 'bob', password: 'three' })).toBe(0);

    writeFileSync(files.aclFile, 'nonsense\n');
    cli.child.kill('SIGHUP');
    await stderrLines(cli, /^mqtt-sim broker: SIGHUP received, reload failed; the previous password file and ACL stay in force:$/, 1);
    expect(cli.stderr()).toContain(`  ${files.aclFile}:1: expected 'user NAME'`);
    expect(await connackCode(url, { protocolVersion: 5, clientId: 'still', username: 'alice', password: 'two' })).toBe(0);

    // The first connection lived through both reloads.
    await alice.publishAsync('alice/still-here', 'yes', { qos: 1 });
    expect(closed).toBe(false);
    cli.child.kill('SIGTERM');
    expect(await cli.waitForExit(10_000)).toBe(0);
  });

  it('an invalid password file at start is a usage error (exit 2) naming the file and line, no stack trace', async () => {
    const files = tempFiles();
    writeFileSync(files.passwordFile, '# users\nalice:plaintext\n');
    const cli = spawnCli(['broker', '--port', '0', '--persistence', 'memory', '--password-file', files.passwordFile]);
    expect(await cli.waitForExit(10_000)).toBe(2);
    expect(cli.stderr()).toContain(`${files.passwordFile}:2: user "alice": expected $scrypt$N$r$p$salt$hash after the user name`);
    expect(cli.stderr()).not.toMatch(/\n\s+at /);
    expect(cli.stdout()).toBe('');
  });
});
