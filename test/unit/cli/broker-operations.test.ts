/**
 * `mqtt-sim broker` operations wiring (in-process through serveBroker): the JSON log on stderr, the
 * metrics endpoint and its listening line, the SQLite commit histogram, metrics-port failures.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BrokerConfig, StorageConfig } from '../../../broker/config.js';
import type { BrokerOptions } from '../../../broker/options.js';
import { MetricsListenError } from '../../../broker/prometheus.js';
import { metricsListenErrorMessage, serveBroker } from '../../../cli/commands/broker.js';
import { UserError } from '../../../cli/exit-codes.js';
import { closeAllClients, connectClient, withTimeout } from '../../helpers/broker.js';
import { LEVEL, splitStderr } from '../../helpers/log-lines.js';
import { sample, scrape } from '../../helpers/prometheus.js';

const memoryStorage: StorageConfig = { persistence: 'memory', dataDir: 'unused', durability: 'process' };
const cleanups: Array<() => void | Promise<void>> = [];

afterEach(async () => {
  await closeAllClients();
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Served {
  stdout: () => string;
  stderr: () => string;
  /** Resolves once stdout holds `lines` lines. */
  printed(lines: number): Promise<string[]>;
  stop(): Promise<void>;
  served: Promise<net.AddressInfo>;
}

function serve(options: Partial<BrokerOptions>, storage: StorageConfig = memoryStorage): Served {
  const stop = new AbortController();
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const config: BrokerConfig = { listen: { host: '127.0.0.1', port: 0 }, storage, options: { sysInterval: 0, ...options } };
  const served = serveBroker(config, {
    stdout: (t) => {
      out += t;
      for (const w of [...waiters]) w();
    },
    stderr: (t) => (err += t),
    signal: stop.signal,
  });
  const done = served.then(() => undefined, () => undefined);
  cleanups.push(async () => {
    stop.abort();
    await done;
  });
  const lines = (): string[] => out.split('\n').filter((l) => l !== '');
  return {
    stdout: () => out,
    stderr: () => err,
    served,
    printed(n) {
      if (lines().length >= n) return Promise.resolve(lines());
      let check!: () => void;
      return withTimeout(
        new Promise<string[]>((resolve) => {
          check = () => {
            if (lines().length >= n) resolve(lines());
          };
          waiters.add(check);
        }),
        5000,
        `serveBroker printed ${JSON.stringify(out)}, expected ${n} lines (stderr: ${err})`,
      ).finally(() => waiters.delete(check));
    },
    async stop() {
      stop.abort();
      await withTimeout(served, 5000, 'serveBroker did not resolve after abort');
    },
  };
}

describe('mqtt-sim broker: operations', () => {
  it('logs JSON records to stderr at info by default; stdout keeps only the listening line', async () => {
    const s = serve({});
    const [line] = await s.printed(1);
    const port = Number(/^mqtt-sim broker listening on 127\.0\.0\.1:(\d+)$/.exec(line!)![1]);
    const client = await connectClient(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5, clientId: 'ops-log' });
    await client.endAsync();
    await s.stop();
    expect(s.stdout()).toBe(`${line}\n`);
    const { plain, records } = splitStderr(s.stderr());
    expect(plain).toEqual([]);
    for (const r of records) expect(r.level).toBeGreaterThanOrEqual(LEVEL.info);
    const events = records.map((r) => r.event);
    expect(events).toEqual(expect.arrayContaining(['broker.listening', 'client.connected', 'client.disconnected', 'broker.closing', 'broker.closed']));
    expect(records[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('--log-level silent writes no record', async () => {
    const s = serve({ logLevel: 'silent' });
    await s.printed(1);
    await s.stop();
    expect(s.stderr()).toBe('');
  });

  it('--metrics-port: prints the endpoint on stdout after the listening line, on the broker host, and stops with the broker', async () => {
    const metricsPort = await freePort();
    const s = serve({ metricsPort });
    const lines = await s.printed(2);
    expect(lines[1]).toBe(`mqtt-sim broker metrics on http://127.0.0.1:${metricsPort}/metrics`);
    expect(sample((await scrape(metricsPort)).samples, 'mqttsim_clients_connected')).toBe(0);
    expect(splitStderr(s.stderr()).records.find((r) => r.event === 'metrics.listening')).toMatchObject({ port: metricsPort, address: '127.0.0.1' });
    await s.stop();
    await expect(scrape(metricsPort)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('with the sqlite store, its commits reach the commit histogram', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-ops-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const metricsPort = await freePort();
    const s = serve({ metricsPort }, { persistence: 'sqlite', dataDir: dir, durability: 'process' });
    const [line] = await s.printed(2);
    const port = Number(/:(\d+)$/.exec(line!)![1]);
    const client = await connectClient(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5, clientId: 'ops-sqlite', clean: false, properties: { sessionExpiryInterval: 60 } });
    await client.subscribeAsync('ops/#', { qos: 1 });
    await client.publishAsync('ops/x', 'x', { qos: 1, retain: true });
    const { samples } = await scrape(metricsPort);
    expect(sample(samples, 'mqttsim_store_commit_duration_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(sample(samples, 'mqttsim_retained_messages')).toBe(1);
  });

  it('a metrics port in use is a usage error (exit 2) naming it and --metrics-port; nothing is printed', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const metricsPort = (blocker.address() as net.AddressInfo).port;
    const s = serve({ metricsPort });
    const err = await s.served.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as UserError).message).toBe(
      `cannot serve metrics on 127.0.0.1:${metricsPort}: port ${metricsPort} is already in use; choose another port with --metrics-port`,
    );
    expect(s.stdout()).toBe('');
  });

  it('metricsListenErrorMessage: permission and unknown errors', () => {
    const error = (code: string): MetricsListenError => new MetricsListenError(Object.assign(new Error(code), { code }), 80, '0.0.0.0');
    expect(metricsListenErrorMessage(error('EACCES'))).toBe(
      'cannot serve metrics on 0.0.0.0:80: permission denied; ports below 1024 need elevated privileges, so choose --metrics-port 1024 or higher',
    );
    expect(metricsListenErrorMessage(error('EMFILE'))).toBe('cannot serve metrics on 0.0.0.0:80: EMFILE');
  });
});
