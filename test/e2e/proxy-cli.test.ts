/**
 * `mqtt-sim proxy` and `mqtt-sim profiles` as child processes (the built CLI): MQTT.js clients reach an
 * in-process broker through the proxy on lan and on cellular-3g, an unreachable upstream closes only the
 * client's connection, bad flags exit 2, and a signal closes the proxy with exit 0.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { presetNames } from '../../simulator/faults/profile.js';
import { closeAllClients, collect, connectClient, REFUSED_PORT, startBroker, withTimeout, type TestBroker } from '../helpers/broker.js';
import { killAllCli, requireBuilt, spawnCli, type CliProcess } from '../helpers/cli-process.js';

const LISTENING = /^mqtt-sim proxy listening on (127\.0\.0\.1):(\d+) → upstream (\S+)/;

let broker: TestBroker;
const dirs: string[] = [];

beforeAll(async () => {
  requireBuilt('cli/commands/proxy.js');
  broker = await startBroker();
});
afterEach(async () => {
  await closeAllClients();
  await killAllCli();
});
afterAll(async () => {
  await broker.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function startProxy(args: string[]): Promise<{ cli: CliProcess; url: string }> {
  const cli = spawnCli(['proxy', '--listen', '127.0.0.1:0', ...args]);
  const [, host, port] = await cli.waitForLine(LISTENING);
  await cli.waitForLine(/^mqtt-sim proxy network: /);
  return { cli, url: `mqtt://${host}:${port}` };
}

async function qos1RoundTrip(url: string, tag: string): Promise<void> {
  const sub = await connectClient(url, { protocolVersion: 5, clientId: `${tag}-sub`, connectTimeout: 10_000 }, 10_000);
  const inbox = collect(sub);
  await withTimeout(sub.subscribeAsync(`proxy/${tag}`, { qos: 1 }), 10_000, 'no SUBACK through the proxy');
  const pub = await connectClient(url, { protocolVersion: 5, clientId: `${tag}-pub`, connectTimeout: 10_000 }, 10_000);
  const payload = Buffer.alloc(5000, 7);
  // PUBACK came back through the proxy...
  await withTimeout(pub.publishAsync(`proxy/${tag}`, payload, { qos: 1 }), 10_000, 'no PUBACK through the proxy');
  // ...and the message went out to the subscriber through it, whole.
  const [message] = await inbox.waitFor(1, 10_000);
  expect(message!.packet.qos).toBe(1);
  expect(Buffer.compare(message!.payload, payload)).toBe(0);
}

describe('mqtt-sim proxy', () => {
  it('carries a QoS 1 round trip on lan', async () => {
    const { cli, url } = await startProxy(['--upstream', `127.0.0.1:${broker.port}`, '--profile', 'lan']);
    await qos1RoundTrip(url, 'lan');
    cli.child.kill('SIGINT');
    expect(await cli.waitForExit()).toBe(0);
    expect(cli.stdout()).toMatch(/^mqtt-sim proxy closed: 2 connections, 0 upstream failures/m);
  });

  it('carries a QoS 1 round trip on cellular-3g (slow, sliced, stalled)', async () => {
    const { cli, url } = await startProxy(['--upstream', `127.0.0.1:${broker.port}`, '--profile', 'cellular-3g', '--seed', '7']);
    expect(cli.stdout()).toContain('mqtt-sim proxy network: cellular-3g: latency pareto 50ms');
    await qos1RoundTrip(url, 'g3');
    cli.child.kill('SIGTERM');
    expect(await cli.waitForExit()).toBe(0);
  }, 30_000);

  it('takes a network from a profile file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-proxy-'));
    dirs.push(dir);
    const file = join(dir, 'field.yaml');
    writeFileSync(file, 'preset: cellular-4g\nlatency: 5ms\nmaxSegment: 100\n');
    const { cli, url } = await startProxy(['--upstream', `127.0.0.1:${broker.port}`, '--profile-file', file]);
    expect(cli.stdout()).toContain('latency 5ms');
    await qos1RoundTrip(url, 'file');
  });

  it('closes the client connection when the upstream is unreachable, and keeps running', async () => {
    const { cli, url } = await startProxy(['--upstream', `127.0.0.1:${REFUSED_PORT}`]);
    const port = Number(new URL(url).port);
    for (let i = 0; i < 2; i++) {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.on('error', () => undefined);
      await withTimeout(new Promise<void>((resolve) => socket.once('close', () => resolve())), 5000, 'the proxy kept the client connection open');
    }
    await withTimeout((async () => {
      while (!/connection #1 .*unreachable \(ECONNREFUSED\)/.test(cli.stderr())) await new Promise((r) => cli.child.stderr!.once('data', r));
    })(), 5000, `no unreachable line: ${cli.stderr()}`);
    expect(cli.child.exitCode).toBeNull();
    cli.child.kill('SIGINT');
    expect(await cli.waitForExit()).toBe(0);
    expect(cli.stdout()).toMatch(/closed: 2 connections, 2 upstream failures/);
  });

  it.each([
    [['--upstream', 'nowhere'], /--upstream: expected HOST:PORT like 127\.0\.0\.1:1883/],
    [[], /--upstream: required/],
    [['--upstream', '127.0.0.1:1883', '--profile', 'cellular-5g'], /unknown preset "cellular-5g"; did you mean cellular-4g\?/],
    [['--upstream', '127.0.0.1:1883', '--profile', 'lan', '--profile-file', 'x.yaml'], /give --profile or --profile-file, not both/],
    [['--upstream', '127.0.0.1:1883', '--profile-file', '/nonexistent/x.yaml'], /cannot read \/nonexistent\/x\.yaml: no such file/],
    [['--upstream', '127.0.0.1:1883', '--seed', '-3'], /--seed: expected a whole number of 0 or more/],
  ])('exits 2 for bad flags: %j', async (args, message) => {
    const cli = spawnCli(['proxy', ...args]);
    expect(await cli.waitForExit()).toBe(2);
    expect(cli.stderr()).toMatch(message);
    expect(cli.stderr()).not.toMatch(/\n\s+at /);
  });
});

describe('mqtt-sim profiles', () => {
  it('prints every preset', async () => {
    const cli = spawnCli(['profiles']);
    expect(await cli.waitForExit()).toBe(0);
    for (const name of presetNames) expect(cli.stdout()).toMatch(new RegExp(`^${name}\\s+up\\s`, 'm'));
  });

  it('prints the normalized presets with --json', async () => {
    const cli = spawnCli(['profiles', '--json']);
    expect(await cli.waitForExit()).toBe(0);
    const parsed = JSON.parse(cli.stdout()) as Record<string, { preset: string }>;
    expect(Object.keys(parsed)).toEqual([...presetNames]);
    expect(parsed['satellite']!.preset).toBe('satellite');
  });
});
