/**
 * `mqtt-sim broker` with more than the plain TCP listener: the listener flags, --help, one
 * "listening on" line per listener, and listen failures that name the listener.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBroker, type Broker } from '../../../broker/broker.js';
import type { BrokerConfig } from '../../../broker/config.js';
import { runCli } from '../../../cli/app.js';
import {
  brokerCommandBuilder, configFromArgs, listenErrorMessage, serveBroker, type BrokerCommandArgs,
} from '../../../cli/commands/broker.js';
import { UserError } from '../../../cli/exit-codes.js';
import { closeAllClients, connectClient, withTimeout } from '../../helpers/broker.js';
import { createTestPki, type TestPki } from '../../helpers/certificates.js';

let pki: TestPki;
let dir: string;
let certFile: string;
let keyFile: string;
let caFile: string;
const cleanups: Array<() => void | Promise<void>> = [];

beforeAll(async () => {
  pki = await createTestPki();
  dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-listener-flags-'));
  certFile = join(dir, 'server.pem');
  keyFile = join(dir, 'server-key.pem');
  caFile = join(dir, 'ca.pem');
  writeFileSync(certFile, pki.server.cert);
  writeFileSync(keyFile, pki.server.key);
  writeFileSync(caFile, pki.ca.cert);
  return () => rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await closeAllClients();
  for (const c of cleanups.splice(0).reverse()) await c();
});

function parse(argv: string[]): BrokerCommandArgs {
  return brokerCommandBuilder(
    yargs().strict().exitProcess(false).fail((message, error) => {
      throw error ?? new Error(message);
    }),
  ).parseSync(argv);
}

const memoryStorage = { persistence: 'memory', dataDir: 'unused', durability: 'process' } as const;

describe('listener flags', () => {
  it('--tls-*, --ws-port and --wss-port reach the configuration, files read', () => {
    const config = configFromArgs(parse([
      '--tls-port', '8883', '--tls-cert', certFile, '--tls-key', keyFile, '--tls-ca', caFile, '--tls-require-client-cert',
      '--ws-port', '8080', '--wss-port', '8081',
    ]));
    const tls = { cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert, requireClientCert: true };
    expect(config.listeners).toEqual([
      { type: 'tls', host: '127.0.0.1', port: 8883, ...tls },
      { type: 'ws', host: '127.0.0.1', port: 8080 },
      { type: 'wss', host: '127.0.0.1', port: 8081, ...tls },
    ]);
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 1883 });
    expect(config.options).toEqual({});
  });

  it('a missing certificate file is a usage error (exit 2) naming the flag and the file', () => {
    const missing = join(dir, 'nope.pem');
    let err: unknown;
    try {
      configFromArgs(parse(['--tls-port', '8883', '--tls-cert', missing, '--tls-key', keyFile]));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as UserError).message).toBe(`invalid broker configuration:\n  --tls-cert: cannot read ${missing}: it does not exist`);
  });

  it('--help lists the listener flags in the Listeners group', async () => {
    let stdout = '';
    const code = await runCli(['broker', '--help'], { stdout: (t) => (stdout += t), stderr: () => {} });
    expect(code).toBe(0);
    const group = stdout.slice(stdout.indexOf('Listeners:'));
    for (const flag of ['--host', '--port', '--tls-port', '--tls-cert', '--tls-key', '--tls-ca', '--tls-require-client-cert', '--ws-port', '--wss-port']) {
      expect(group, flag).toContain(flag);
    }
    expect(stdout).toContain('--use-common-name-as-username');
  });
});

describe('serveBroker with several listeners', () => {
  it('prints one line per listener once all accept connections, and serves each', async () => {
    const stop = new AbortController();
    cleanups.push(() => stop.abort());
    const tls = { cert: pki.server.cert, key: pki.server.key };
    const config: BrokerConfig = {
      listen: { host: '127.0.0.1', port: 0 },
      listeners: [
        { type: 'tls', host: '127.0.0.1', port: 0, ...tls },
        { type: 'ws', host: '127.0.0.1', port: 0 },
        { type: 'wss', host: '127.0.0.1', port: 0, path: '/broker', ...tls },
      ],
      storage: memoryStorage,
      options: { sysInterval: 0 },
    };
    let stdout = '';
    let printed!: () => void;
    const allPrinted = new Promise<void>((resolve) => (printed = resolve));
    const served = serveBroker(config, {
      stdout: (t) => { stdout += t; if (stdout.split('\n').length > 4) printed(); },
      stderr: () => {},
      signal: stop.signal,
    });
    await withTimeout(allPrinted, 5000, `serveBroker printed only: ${stdout}`);
    const lines = stdout.trimEnd().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^mqtt-sim broker listening on 127\.0\.0\.1:\d+$/),
      expect.stringMatching(/^mqtt-sim broker listening on tls:\/\/127\.0\.0\.1:\d+$/),
      expect.stringMatching(/^mqtt-sim broker listening on ws:\/\/127\.0\.0\.1:\d+\/mqtt$/),
      expect.stringMatching(/^mqtt-sim broker listening on wss:\/\/127\.0\.0\.1:\d+\/broker$/),
    ]);
    const urls = lines.map((l) => l.replace('mqtt-sim broker listening on ', ''));
    await connectClient(`mqtt://${urls[0]!}`, { clientId: 'cli-tcp' });
    await connectClient(urls[1]!.replace('tls://', 'mqtts://'), { ca: pki.ca.cert, clientId: 'cli-tls' });
    await connectClient(urls[2]!, { clientId: 'cli-ws' });
    await connectClient(urls[3]!, { ca: pki.ca.cert, clientId: 'cli-wss' });
    stop.abort();
    await withTimeout(served, 5000, 'serveBroker did not resolve after abort');
  });

  it('a port in use on another listener is a usage error naming it, and everything opened is closed', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const port = (blocker.address() as net.AddressInfo).port;
    let broker: Broker | undefined;
    const served = serveBroker(
      { listen: { host: '127.0.0.1', port: 0 }, listeners: [{ type: 'ws', host: '127.0.0.1', port }], storage: memoryStorage, options: { sysInterval: 0 } },
      { stdout: () => {}, stderr: () => {}, signal: new AbortController().signal, createBroker: (options) => (broker = createBroker(options)) },
    );
    const err = await served.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as UserError).message).toBe(
      `cannot listen on ws://127.0.0.1:${port}/mqtt: port ${port} is already in use; stop the process using it or choose another port with --ws-port (or its port in the listeners list) (0 picks a free one)`,
    );
    // The plain TCP listener it had opened is closed again.
    const tcpPort = broker!.address()!.port;
    await withTimeout(new Promise<void>((resolve, reject) => {
      const socket = net.connect(tcpPort, '127.0.0.1');
      socket.once('connect', () => { socket.destroy(); reject(new Error('the TCP listener is still open')); });
      socket.once('error', () => resolve());
    }), 5000, 'connecting to the closed TCP listener neither failed nor succeeded');
  });
});

describe('listen failures of other listeners (pinned)', () => {
  const code = (c: string): NodeJS.ErrnoException => Object.assign(new Error(c), { code: c });
  const tls = { type: 'tls', port: 8883, cert: '', key: '' } as const;

  it.each<[string, Parameters<typeof listenErrorMessage>[2], string]>([
    ['EACCES', tls, 'cannot listen on tls://127.0.0.1:8883: permission denied; ports below 1024 need elevated privileges, so choose 1024 or higher with --tls-port (or its port in the listeners list) (or 0 for a free one)'],
    ['EADDRINUSE', { type: 'tcp', port: 8883 }, 'cannot listen on 127.0.0.1:8883: port 8883 is already in use; stop the process using it or choose another port with its port in the listeners list (0 picks a free one)'],
    ['EADDRNOTAVAIL', { type: 'wss', port: 8883, cert: '', key: '' }, 'cannot listen on wss://127.0.0.1:8883/mqtt: 127.0.0.1 is not an address of this machine; choose one of its addresses with --host (0.0.0.0 for all)'],
    ['ENOTFOUND', { type: 'tcp', port: 8883 }, 'cannot listen on 127.0.0.1:8883: the host name 127.0.0.1 does not resolve; check its host in the listeners list'],
  ])('%s', (errno, spec, message) => {
    expect(listenErrorMessage(code(errno), { host: '127.0.0.1', port: 8883 }, spec)).toBe(message);
  });
});
