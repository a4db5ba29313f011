/**
 * `mqtt-sim broker` operations as a child process: graceful shutdown on SIGTERM with the SQLite store
 * (the writes of the shutdown itself are committed), the metrics endpoint and the log on stderr.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAllClients, collect, connectClient, withTimeout } from '../helpers/broker.js';
import { killAllCli, requireBuilt, spawnCli } from '../helpers/cli-process.js';
import { LEVEL, splitStderr } from '../helpers/log-lines.js';
import { sample, scrape } from '../helpers/prometheus.js';

const LISTENING = /^mqtt-sim broker listening on (127\.0\.0\.1):(\d+)$/;
const METRICS = /^mqtt-sim broker metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics$/;

const cleanups: Array<() => void | Promise<void>> = [];

beforeAll(() => requireBuilt('cli/commands/broker.js'));

afterEach(async () => {
  await closeAllClients();
  await killAllCli();
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('mqtt-sim broker: graceful shutdown and operations (built CLI)', () => {
  it('SIGTERM with the sqlite store: DISCONNECT 0x8B, exit 0, and what the shutdown itself wrote survives the restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'mqtt-sim-shutdown-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const args = ['broker', '--port', '0', '--data-dir', dataDir, '--sys-interval', '0'];

    const first = spawnCli(args);
    const [, host, port] = await first.waitForLine(LISTENING);
    const url = `mqtt://${host}:${port}`;
    // A persistent subscriber of the will topic, offline at the shutdown.
    const watcher = await connectClient(url, { protocolVersion: 5, clientId: 'sd-watcher', clean: false, properties: { sessionExpiryInterval: 3600 } });
    await watcher.subscribeAsync('sd/will', { qos: 1 });
    await watcher.endAsync();
    // A persistent client with a will, connected at the shutdown: a broker shutting down does not publish
    // the will but keeps it with the session — a write made during close(), which must be committed.
    const holder = await connectClient(url, {
      protocolVersion: 5, clientId: 'sd-holder', clean: false, properties: { sessionExpiryInterval: 3600 },
      will: { topic: 'sd/will', payload: Buffer.from('holder is gone'), qos: 1, retain: false },
    });
    const told = new Promise<number | undefined>((resolve) => holder.once('disconnect', (packet) => resolve(packet.reasonCode)));
    first.child.kill('SIGTERM');
    expect(await first.waitForExit(10_000)).toBe(0);
    expect(await withTimeout(told, 5000, 'sd-holder never received DISCONNECT')).toBe(0x8b);
    const { plain, records } = splitStderr(first.stderr());
    expect(plain).toEqual(['mqtt-sim broker: SIGTERM received, closing connections']);
    expect(records.filter((r) => r.level >= LEVEL.warn)).toEqual([]);
    expect(records.map((r) => r.event).slice(-1)).toEqual(['broker.closed']);
    holder.end(true);

    // After the restart the will (held since the shutdown) is published to the watcher's session.
    const second = spawnCli(args);
    const [, host2, port2] = await second.waitForLine(LISTENING);
    // Listening before CONNECT: the queued will may arrive in the same chunk as the CONNACK.
    const back = mqtt.connect(`mqtt://${host2}:${port2}`, {
      protocolVersion: 5, clientId: 'sd-watcher', clean: false, properties: { sessionExpiryInterval: 3600 }, reconnectPeriod: 0,
    });
    cleanups.push(() => new Promise<void>((resolve) => back.end(true, {}, () => resolve())));
    const [will] = await collect(back).waitFor(1);
    expect(will!.topic).toBe('sd/will');
    expect(will!.payload.toString()).toBe('holder is gone');
  });

  it('--metrics-port serves /metrics on the broker host; --log-level warn keeps info records off stderr', async () => {
    const metricsPort = await freePort();
    const cli = spawnCli(['broker', '--port', '0', '--persistence', 'memory', '--metrics-port', String(metricsPort), '--log-level', 'warn']);
    const [, host, port] = await cli.waitForLine(LISTENING);
    const [, shown] = await cli.waitForLine(METRICS);
    expect(Number(shown)).toBe(metricsPort);

    const client = await connectClient(`mqtt://${host}:${port}`, { protocolVersion: 4, clientId: 'op-metrics' });
    await client.publishAsync('op/x', 'x', { qos: 1 });
    const { samples } = await scrape(metricsPort);
    expect(sample(samples, 'mqttsim_clients_connected')).toBe(1);
    expect(sample(samples, 'mqttsim_messages_received_total{qos="1"}')).toBe(1);

    cli.child.kill('SIGTERM');
    expect(await cli.waitForExit(10_000)).toBe(0);
    expect(cli.stderr()).toBe('mqtt-sim broker: SIGTERM received, closing connections\n');
    await expect(scrape(metricsPort)).rejects.toThrow(/ECONNREFUSED/);
  });
});
