import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IConnackPacket } from 'mqtt';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAllClients, collect, connectClient, withTimeout } from '../helpers/broker.js';
import { killAllCli, requireBuilt, spawnCli } from '../helpers/cli-process.js';
import { LEVEL, splitStderr } from '../helpers/log-lines.js';

const LISTENING = /^mqtt-sim broker listening on (127\.0\.0\.1):(\d+)$/;
const STACK_FRAME = /\n\s+at /;

const cleanups: Array<() => void | Promise<void>> = [];

beforeAll(() => requireBuilt('cli/commands/broker.js'));

afterEach(async () => {
  await closeAllClients();
  await killAllCli();
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-broker-cli-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('mqtt-sim broker (built CLI as a child process)', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('serves MQTT on the printed port and exits 0 on %s', async (signal) => {
    const cli = spawnCli(['broker', '--port', '0']);
    const [, host, port] = await cli.waitForLine(LISTENING);
    expect(Number(port)).toBeGreaterThan(0);
    const url = `mqtt://${host}:${port}`;

    const sub = await connectClient(url, { protocolVersion: 5, clientId: 'e2e-sub' });
    const inbox = collect(sub);
    await sub.subscribeAsync('e2e/+', { qos: 1 });
    const pub = await connectClient(url, { protocolVersion: 5, clientId: 'e2e-pub' });
    await pub.publishAsync('e2e/hello', 'world', { qos: 1 });
    const [message] = await inbox.waitFor(1);
    expect(message!.topic).toBe('e2e/hello');
    expect(message!.payload.toString()).toBe('world');

    // Graceful: connected clients are told the server is shutting down (v5 reason 0x8B) before it exits.
    const told = new Promise<number | undefined>((resolve) => sub.once('disconnect', (packet) => resolve(packet.reasonCode)));
    cli.child.kill(signal);
    expect(await cli.waitForExit(10_000)).toBe(0);
    expect(await withTimeout(told, 5000, 'the subscriber never received DISCONNECT')).toBe(0x8b);
    expect(cli.stdout()).toBe(`mqtt-sim broker listening on ${host}:${port}\n`);
    // stderr: the signal line, and between it JSON log records (info by default), none of them a problem.
    const { plain, records } = splitStderr(cli.stderr());
    expect(plain).toEqual([`mqtt-sim broker: ${signal} received, closing connections`]);
    expect(records.filter((r) => r.level >= LEVEL.warn)).toEqual([]);
    const events = records.map((r) => r.event);
    expect(events[0]).toBe('broker.listening');
    expect(records.find((r) => r.event === 'client.connected' && r.clientId === 'e2e-sub')).toMatchObject({ protocol: '5.0', address: '127.0.0.1' });
    expect(events.slice(-1)).toEqual(['broker.closed']);
    expect(records.find((r) => r.event === 'client.disconnected' && r.clientId === 'e2e-sub')).toMatchObject({ reasonCode: '0x8b' });
  });

  it('options from --config reach the broker, and flags override the file', async () => {
    // If --port did not override the file, the broker would try port 1.
    const config = tempFile('broker.yaml', 'port: 1\nmaxPacketSize: 4096\nsysInterval: 0\n');
    const cli = spawnCli(['broker', '--config', config, '--port', '0', '--max-packet-size', '2048']);
    const [, host, port] = await cli.waitForLine(LISTENING);
    expect(port).not.toBe('1');

    const client = mqtt.connect(`mqtt://${host}:${port}`, { protocolVersion: 5, reconnectPeriod: 0, clientId: 'e2e-connack' });
    cleanups.push(() => new Promise<void>((resolve) => client.end(true, {}, () => resolve())));
    const connack = await withTimeout(
      new Promise<IConnackPacket>((resolve, reject) => {
        client.once('connect', resolve);
        client.once('error', reject);
      }),
      5000,
      'no CONNACK from the broker started with --config',
    );
    expect(connack.properties?.maximumPacketSize).toBe(2048);
  });

  it('a port already in use exits 2 with a message naming the port, no stack trace', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const port = (blocker.address() as net.AddressInfo).port;

    const cli = spawnCli(['broker', '--port', String(port)]);
    expect(await cli.waitForExit(10_000)).toBe(2);
    expect(cli.stderr()).toContain(`cannot listen on 127.0.0.1:${port}: port ${port} is already in use`);
    expect(cli.stderr()).toContain('--port 0 picks a free one');
    expect(cli.stderr()).not.toMatch(STACK_FRAME);
    expect(cli.stdout()).toBe('');
  });

  it('an invalid config file exits 2 naming the file, line and key, no stack trace', async () => {
    const config = tempFile('broker.yaml', 'port: 0\nmaxPacketSize: big\n');
    const cli = spawnCli(['broker', '--config', config]);
    expect(await cli.waitForExit(10_000)).toBe(2);
    expect(cli.stderr()).toContain(`${config}:2: maxPacketSize: expected an integer from 2 to 268435460, got "big"`);
    expect(cli.stderr()).not.toMatch(STACK_FRAME);
    expect(cli.stdout()).toBe('');
  });

  it('a config file with a YAML syntax error exits 2 naming the line and column', async () => {
    const config = tempFile('broker.yaml', 'port: 0\nhosts: [a, b\nmaxInflight: 5\n');
    const cli = spawnCli(['broker', '--config', config]);
    expect(await cli.waitForExit(10_000)).toBe(2);
    expect(cli.stderr()).toMatch(new RegExp(`${config.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:1: invalid YAML: `));
    expect(cli.stderr()).not.toMatch(STACK_FRAME);
  });
});
