/**
 * `mqtt-sim broker` (the built CLI, as a child process) with TLS, WebSocket and secure WebSocket
 * listeners from flags: the certificate files are read from disk, one line is printed per listener,
 * and a message crosses from the plain TCP listener to the secure WebSocket one.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAllClients, collect, connectClient } from '../helpers/broker.js';
import { createTestPki, type TestPki } from '../helpers/certificates.js';
import { killAllCli, requireBuilt, spawnCli } from '../helpers/cli-process.js';

let pki: TestPki;
let dir: string;

beforeAll(async () => {
  requireBuilt('broker/listeners/index.js');
  pki = await createTestPki();
  dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-cli-listeners-'));
  writeFileSync(join(dir, 'server.pem'), pki.server.cert);
  writeFileSync(join(dir, 'server-key.pem'), pki.server.key);
  return () => rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await closeAllClients();
  await killAllCli();
});

describe('mqtt-sim broker with several listeners (built CLI)', () => {
  it('prints one line per listener and serves MQTT on each; exits 0 on SIGTERM', async () => {
    const cli = spawnCli([
      'broker', '--persistence', 'memory', '--port', '0', '--ws-port', '0', '--wss-port', '0', '--tls-port', '0',
      '--tls-cert', join(dir, 'server.pem'), '--tls-key', join(dir, 'server-key.pem'),
    ]);
    const [, wssUrl] = await cli.waitForLine(/^mqtt-sim broker listening on (wss:\/\/127\.0\.0\.1:\d+\/mqtt)$/);
    const lines = cli.stdout().trimEnd().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^mqtt-sim broker listening on 127\.0\.0\.1:\d+$/),
      expect.stringMatching(/^mqtt-sim broker listening on tls:\/\/127\.0\.0\.1:\d+$/),
      expect.stringMatching(/^mqtt-sim broker listening on ws:\/\/127\.0\.0\.1:\d+\/mqtt$/),
      `mqtt-sim broker listening on ${wssUrl!}`,
    ]);
    const tcpAddress = lines[0]!.replace('mqtt-sim broker listening on ', '');

    const sub = await connectClient(wssUrl!, { ca: pki.ca.cert, rejectUnauthorized: true, clientId: 'e2e-wss-sub' });
    const inbox = collect(sub);
    await sub.subscribeAsync('e2e/listeners', { qos: 1 });
    const pub = await connectClient(`mqtt://${tcpAddress}`, { clientId: 'e2e-tcp-pub' });
    await pub.publishAsync('e2e/listeners', 'tcp to wss', { qos: 1 });
    expect((await inbox.waitFor(1))[0]!.payload.toString()).toBe('tcp to wss');

    cli.child.kill('SIGTERM');
    expect(await cli.waitForExit(10_000)).toBe(0);
  });

  it('an unreadable certificate file exits 2 naming the flag and the file, before listening', async () => {
    const missing = join(dir, 'missing.pem');
    const cli = spawnCli(['broker', '--persistence', 'memory', '--port', '0', '--tls-port', '0', '--tls-cert', missing, '--tls-key', join(dir, 'server-key.pem')]);
    expect(await cli.waitForExit(10_000)).toBe(2);
    expect(cli.stdout()).toBe('');
    expect(cli.stderr()).toContain(`--tls-cert: cannot read ${missing}: it does not exist`);
    expect(cli.stderr()).not.toMatch(/\n\s+at /);
  });
});
