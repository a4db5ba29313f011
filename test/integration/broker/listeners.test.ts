/**
 * Listeners: MQTT over TLS (with and without client certificates), WebSocket and secure WebSocket,
 * all on one broker at once, and the bad connections each transport must shrug off without crashing.
 * Certificates are made per run by test/helpers/certificates.ts.
 */
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { Broker } from '../../../broker/broker.js';
import type { ListenerSpec, TlsOptions } from '../../../broker/listeners/index.js';
import { TlsSetupError } from '../../../broker/listeners/index.js';
import type { AuthRequest, BrokerOptions } from '../../../broker/options.js';
import { encodePacket } from '../../../protocol/encoder.js';
import { PacketParser } from '../../../protocol/parser.js';
import { closeAllClients, collect, connectClient, startBroker, withTimeout, type TestBroker } from '../../helpers/broker.js';
import { createTestPki, type TestPki } from '../../helpers/certificates.js';

let pki: TestPki;
const cleanups: Array<() => void | Promise<void>> = [];

beforeAll(async () => {
  pki = await createTestPki();
});

afterEach(async () => {
  await closeAllClients();
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A broker on a plain TCP port 0, closed after the test. */
async function broker(options: Partial<BrokerOptions> = {}): Promise<TestBroker> {
  const b = await startBroker(options);
  cleanups.push(() => b.close());
  return b;
}

function serverTls(extra: Partial<TlsOptions> = {}): TlsOptions {
  return { cert: pki.server.cert, key: pki.server.key, ...extra };
}

function mutualTls(): TlsOptions {
  return serverTls({ ca: pki.ca.cert, requireClientCert: true });
}

async function listen(b: Broker, spec: ListenerSpec): Promise<AddressInfo> {
  return b.listen(spec);
}

/** An authenticate hook that accepts everyone and remembers what it was asked. */
function recordingAuth(): { requests: AuthRequest[]; authenticate: (r: AuthRequest) => boolean } {
  const requests: AuthRequest[] = [];
  return { requests, authenticate: (r) => { requests.push(r); return true; } };
}

/** Resolves when `socket` closes; fails the test if it stays open. */
function closed(socket: net.Socket, what: string): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return withTimeout(once(socket, 'close').then(() => undefined), 5000, what);
}

/** The broker still serves: a fresh plain-TCP client connects and gets CONNACK. */
async function stillServes(b: TestBroker): Promise<void> {
  const client = await connectClient(b.url, { clientId: `alive-${Math.random().toString(16).slice(2)}` });
  expect(client.connected).toBe(true);
}

const connectBytes = (clientId: string): Buffer =>
  encodePacket({ type: 'connect', protocolVersion: 4, protocolName: 'MQTT', clean: true, keepalive: 0, clientId }, 4);

/** A bare `ws` client offering `protocols`; resolves once open, rejects with the HTTP status if the upgrade is refused. */
function openWebSocket(url: string, protocols: string[] = ['mqtt']): Promise<WebSocket> {
  const socket = new WebSocket(url, protocols);
  cleanups.push(() => socket.terminate());
  return withTimeout(
    new Promise<WebSocket>((resolve, reject) => {
      socket.once('open', () => resolve(socket));
      socket.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      socket.once('error', reject);
    }),
    5000,
    `the WebSocket to ${url} neither opened nor was refused`,
  );
}

describe('TLS listener (mqtts)', () => {
  it('a client pinning the CA (rejectUnauthorized) connects, subscribes and receives its own message', async () => {
    const b = await broker();
    const { port } = await listen(b.broker, { type: 'tls', port: 0, ...serverTls() });
    const client = await connectClient(`mqtts://127.0.0.1:${port}`, { ca: pki.ca.cert, rejectUnauthorized: true, clientId: 'tls-1' });
    const inbox = collect(client);
    await client.subscribeAsync('tls/#', { qos: 1 });
    await client.publishAsync('tls/hello', 'over tls', { qos: 1 });
    const [message] = await inbox.waitFor(1);
    expect(message!.payload.toString()).toBe('over tls');
  });

  it('a client that does not trust the server certificate refuses it', async () => {
    const b = await broker();
    const { port } = await listen(b.broker, { type: 'tls', port: 0, ...serverTls() });
    await expect(connectClient(`mqtts://127.0.0.1:${port}`, { rejectUnauthorized: true, clientId: 'tls-untrusting' }))
      .rejects.toThrow(/certificate/);
  });

  it('without requireClientCert no client certificate is asked for, and the hook gets no CN', async () => {
    const auth = recordingAuth();
    const b = await broker({ authenticate: auth.authenticate });
    const { port } = await listen(b.broker, { type: 'tls', port: 0, ...serverTls() });
    await connectClient(`mqtts://127.0.0.1:${port}`, { ca: pki.ca.cert, clientId: 'tls-anon' });
    expect(auth.requests).toHaveLength(1);
    expect(auth.requests[0]!.certificateCommonName).toBeUndefined();
    expect(auth.requests[0]!.remoteAddress).toBe('127.0.0.1');
  });

  it('a plain-TCP client talking MQTT to the TLS port is dropped, and the broker keeps serving', async () => {
    const b = await broker();
    const { port } = await listen(b.broker, { type: 'tls', port: 0, ...serverTls() });
    const refused = once(b.broker.events, 'transportError');
    const socket = net.connect(port, '127.0.0.1');
    cleanups.push(() => { socket.destroy(); });
    socket.on('error', () => {});
    socket.on('connect', () => socket.write(connectBytes('plain-on-tls')));
    await closed(socket, 'the broker never dropped a plain-TCP client on its TLS port');
    const [err] = (await withTimeout(refused, 5000, 'no transportError for the failed handshake')) as [Error];
    expect(err).toBeInstanceOf(Error);
    await stillServes(b);
    await connectClient(`mqtts://127.0.0.1:${port}`, { ca: pki.ca.cert, clientId: 'tls-after-garbage' });
  });

  it('a certificate whose key does not match is refused by listen() with TlsSetupError', async () => {
    const b = await broker();
    await expect(listen(b.broker, { type: 'tls', port: 0, cert: pki.server.cert, key: pki.client.key })).rejects.toBeInstanceOf(TlsSetupError);
    await expect(listen(b.broker, { type: 'tls', port: 0, ...serverTls({ requireClientCert: true }) })).rejects.toThrow(/requireClientCert needs ca/);
    await stillServes(b);
  });
});

describe('mutual TLS (requireClientCert)', () => {
  it('a client certificate signed by the CA is accepted and its CN reaches the authenticate hook', async () => {
    const auth = recordingAuth();
    const b = await broker({ authenticate: auth.authenticate });
    const { port } = await listen(b.broker, { type: 'tls', port: 0, ...mutualTls() });
    await connectClient(`mqtts://127.0.0.1:${port}`, {
      ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key, clientId: 'mtls-1', username: 'whoever',
    });
    expect(auth.requests).toHaveLength(1);
    expect(auth.requests[0]).toMatchObject({ clientId: 'mtls-1', certificateCommonName: 'sensor-42', username: 'whoever' });
  });

  it('a client without a certificate fails the handshake and never reaches the broker', async () => {
    const auth = recordingAuth();
    const b = await broker({ authenticate: auth.authenticate });
    const { port } = await listen(b.broker, { type: 'tls', port: 0, ...mutualTls() });
    const refused = once(b.broker.events, 'transportError');
    await expect(connectClient(`mqtts://127.0.0.1:${port}`, { ca: pki.ca.cert, clientId: 'mtls-no-cert' }, 3000)).rejects.toThrow();
    await withTimeout(refused, 5000, 'no transportError for the handshake without a client certificate');
    expect(auth.requests).toEqual([]);
    expect(b.broker.core.connections.size).toBe(0);
    await stillServes(b);
  });

  it('a client certificate from another CA fails the handshake', async () => {
    const b = await broker();
    const { port } = await listen(b.broker, { type: 'tls', port: 0, ...mutualTls() });
    const refused = once(b.broker.events, 'transportError');
    const socket = tls.connect({ port, host: '127.0.0.1', ca: pki.ca.cert, cert: pki.untrustedClient.cert, key: pki.untrustedClient.key });
    socket.on('error', () => {});
    cleanups.push(() => { socket.destroy(); });
    const [err] = (await withTimeout(refused, 5000, 'the broker did not refuse a certificate from another CA')) as [NodeJS.ErrnoException];
    expect(err.message).toMatch(/^client certificate refused: /);
    expect(err.code).toMatch(/^UNABLE_TO_(VERIFY_LEAF_SIGNATURE|GET_ISSUER_CERT)/);
    await closed(socket, 'the refused client stayed connected');
    expect(b.broker.core.connections.size).toBe(0);
  });

  it('useCommonNameAsUsername: the CN replaces the user name the client sent; plain-TCP clients keep theirs', async () => {
    const auth = recordingAuth();
    const b = await broker({ authenticate: auth.authenticate, useCommonNameAsUsername: true });
    const { port } = await listen(b.broker, { type: 'tls', port: 0, ...mutualTls() });
    await connectClient(`mqtts://127.0.0.1:${port}`, {
      ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key, clientId: 'cn-user', username: 'mallory', password: 'x',
    });
    await connectClient(b.url, { clientId: 'tcp-user', username: 'alice', password: 'x' });
    expect(auth.requests.map((r) => [r.clientId, r.username, r.certificateCommonName])).toEqual([
      ['cn-user', 'sensor-42', 'sensor-42'],
      ['tcp-user', 'alice', undefined],
    ]);
  });
});

describe('WebSocket listener (ws)', () => {
  it('MQTT.js connects to ws://127.0.0.1:PORT/mqtt (v5 and v3.1.1) and messages flow both ways', async () => {
    const auth = recordingAuth();
    const b = await broker({ authenticate: auth.authenticate });
    const { port } = await listen(b.broker, { type: 'ws', port: 0 });
    const url = `ws://127.0.0.1:${port}/mqtt`;
    const sub = await connectClient(url, { protocolVersion: 5, clientId: 'ws-sub' });
    const inbox = collect(sub);
    await sub.subscribeAsync('ws/#', { qos: 1 });
    const pub = await connectClient(url, { protocolVersion: 4, clientId: 'ws-pub' });
    await pub.publishAsync('ws/a', Buffer.alloc(100_000, 7), { qos: 1 });
    const [message] = await inbox.waitFor(1);
    expect(message!.payload.equals(Buffer.alloc(100_000, 7))).toBe(true);
    expect(auth.requests.map((r) => r.remoteAddress)).toEqual(['127.0.0.1', '127.0.0.1']);
  });

  it('an MQTT 3.1 client offering the subprotocol mqttv3.1 is accepted', async () => {
    const b = await broker();
    const { port } = await listen(b.broker, { type: 'ws', port: 0 });
    const client = await connectClient(`ws://127.0.0.1:${port}/mqtt`, { protocolId: 'MQIsdp', protocolVersion: 3, clientId: 'ws-31' });
    expect(client.connected).toBe(true);
  });

  it('an upgrade to a wrong path gets HTTP 404 and the broker keeps serving', async () => {
    const b = await broker();
    const { port } = await listen(b.broker, { type: 'ws', port: 0 });
    const refused = once(b.broker.events, 'transportError');
    await expect(openWebSocket(`ws://127.0.0.1:${port}/not-mqtt`)).rejects.toMatchObject({ status: 404 });
    await withTimeout(refused, 5000, 'no transportError for the refused upgrade');
    expect(b.broker.core.connections.size).toBe(0);
    await connectClient(`ws://127.0.0.1:${port}/mqtt`, { clientId: 'ws-after-404' });
    await stillServes(b);
  });

  it('an upgrade without the MQTT subprotocol gets HTTP 400 [MQTT-6.0.0-3]', async () => {
    const b = await broker();
    const { port } = await listen(b.broker, { type: 'ws', port: 0 });
    await expect(openWebSocket(`ws://127.0.0.1:${port}/mqtt`, ['chat'])).rejects.toMatchObject({ status: 400 });
    await expect(openWebSocket(`ws://127.0.0.1:${port}/mqtt`, [])).rejects.toMatchObject({ status: 400 });
  });

  it('the server selects the subprotocol mqtt [MQTT-6.0.0-4]', async () => {
    const b = await broker();
    const { port } = await listen(b.broker, { type: 'ws', port: 0 });
    const socket = await openWebSocket(`ws://127.0.0.1:${port}/mqtt`, ['mqttv3.1', 'mqtt']);
    expect(socket.protocol).toBe('mqtt');
  });

  it('a CONNECT split over two binary frames, and CONNECT + PINGREQ in one frame, are both read', async () => {
    const b = await broker();
    const { port } = await listen(b.broker, { type: 'ws', port: 0 });
    const socket = await openWebSocket(`ws://127.0.0.1:${port}/mqtt`);
    const parser = new PacketParser({ protocolVersion: 4 });
    const types: string[] = [];
    socket.on('message', (data: Buffer) => {
      for (const packet of parser.push(data)) types.push(packet.type);
    });
    const connect = connectBytes('ws-frames');
    socket.send(connect.subarray(0, 3), { binary: true });
    socket.send(Buffer.concat([connect.subarray(3), encodePacket({ type: 'pingreq' }, 4)]), { binary: true });
    await withTimeout(
      new Promise<void>((resolve) => {
        const check = (): void => { if (types.length >= 2) resolve(); else socket.once('message', check); };
        check();
      }),
      5000,
      `expected CONNACK and PINGRESP, got ${types.join(', ')}`,
    );
    expect(types).toEqual(['connack', 'pingresp']);
  });

  it('a text frame closes the connection with 1003 [MQTT-6.0.0-1]', async () => {
    const b = await broker();
    const { port } = await listen(b.broker, { type: 'ws', port: 0 });
    const socket = await openWebSocket(`ws://127.0.0.1:${port}/mqtt`);
    const closing = once(socket, 'close');
    socket.send('not binary');
    const [code] = (await withTimeout(closing, 5000, 'the text frame did not close the WebSocket')) as [number];
    expect(code).toBe(1003);
    await stillServes(b);
  });

  it('a plain HTTP request gets 426 at the endpoint and 404 elsewhere', async () => {
    const b = await broker();
    const { port } = await listen(b.broker, { type: 'ws', port: 0 });
    const status = (path: string): Promise<number | undefined> => withTimeout(
      new Promise<number | undefined>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => { res.resume(); resolve(res.statusCode); }).on('error', reject);
      }),
      5000,
      `GET ${path} got no response`,
    );
    expect(await status('/mqtt')).toBe(426);
    expect(await status('/')).toBe(404);
  });
});

describe('secure WebSocket listener (wss)', () => {
  it('MQTT.js connects to wss://127.0.0.1:PORT/mqtt pinning the CA', async () => {
    const b = await broker();
    const { port } = await listen(b.broker, { type: 'wss', port: 0, ...serverTls() });
    const client = await connectClient(`wss://127.0.0.1:${port}/mqtt`, { ca: pki.ca.cert, rejectUnauthorized: true, clientId: 'wss-1' });
    const inbox = collect(client);
    await client.subscribeAsync('wss/#');
    await client.publishAsync('wss/x', 'secure');
    expect((await inbox.waitFor(1))[0]!.payload.toString()).toBe('secure');
  });

  it('with requireClientCert the CN reaches the hook, and a client without a certificate is refused', async () => {
    const auth = recordingAuth();
    const b = await broker({ authenticate: auth.authenticate });
    const { port } = await listen(b.broker, { type: 'wss', port: 0, ...mutualTls() });
    const url = `wss://127.0.0.1:${port}/mqtt`;
    await connectClient(url, { ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key, clientId: 'wss-mtls' });
    expect(auth.requests.map((r) => r.certificateCommonName)).toEqual(['sensor-42']);
    await expect(connectClient(url, { ca: pki.ca.cert, clientId: 'wss-no-cert' }, 3000)).rejects.toThrow();
    expect(auth.requests).toHaveLength(1);
  });

  it('serves the endpoint under a custom path', async () => {
    const b = await broker();
    const { port } = await listen(b.broker, { type: 'wss', port: 0, path: '/custom/mqtt', ...serverTls() });
    await connectClient(`wss://127.0.0.1:${port}/custom/mqtt`, { ca: pki.ca.cert, clientId: 'wss-path' });
  });
});

describe('several listeners on one broker', () => {
  it('tcp, tls, ws and wss at once: a message published over TCP arrives over each of them', async () => {
    const b = await broker();
    const tlsPort = (await listen(b.broker, { type: 'tls', port: 0, ...serverTls() })).port;
    const wsPort = (await listen(b.broker, { type: 'ws', port: 0 })).port;
    const wssPort = (await listen(b.broker, { type: 'wss', port: 0, ...serverTls() })).port;
    expect(b.broker.address()?.port).toBe(b.port);
    const subscribers = await Promise.all([
      connectClient(`wss://127.0.0.1:${wssPort}/mqtt`, { ca: pki.ca.cert, clientId: 'sub-wss', protocolVersion: 5 }),
      connectClient(`ws://127.0.0.1:${wsPort}/mqtt`, { clientId: 'sub-ws' }),
      connectClient(`mqtts://127.0.0.1:${tlsPort}`, { ca: pki.ca.cert, clientId: 'sub-tls' }),
    ]);
    const inboxes = subscribers.map((s) => collect(s));
    await Promise.all(subscribers.map((s) => s.subscribeAsync('fleet/+/temp', { qos: 1 })));
    const publisher = await connectClient(b.url, { clientId: 'pub-tcp' });
    await publisher.publishAsync('fleet/7/temp', '21.5', { qos: 1 });
    for (const inbox of inboxes) {
      const [message] = await inbox.waitFor(1);
      expect(message).toMatchObject({ topic: 'fleet/7/temp' });
      expect(message!.payload.toString()).toBe('21.5');
    }
  });

  it('close() ends clients on every listener, pending TLS handshakes and idle HTTP connections included', async () => {
    const b = await startBroker();
    let open = true;
    cleanups.push(() => (open ? b.close() : undefined));
    const tlsPort = (await listen(b.broker, { type: 'tls', port: 0, ...serverTls() })).port;
    const wsPort = (await listen(b.broker, { type: 'ws', port: 0 })).port;
    const wsClient = await connectClient(`ws://127.0.0.1:${wsPort}/mqtt`, { clientId: 'ws-closing', protocolVersion: 5 });
    const told = new Promise<number | undefined>((resolve) => wsClient.once('disconnect', (p) => resolve(p.reasonCode)));
    // A TLS handshake that never starts and an HTTP connection that never asks for anything.
    const silentTls = net.connect(tlsPort, '127.0.0.1');
    const idleHttp = net.connect(wsPort, '127.0.0.1');
    for (const s of [silentTls, idleHttp]) {
      s.on('error', () => {});
      cleanups.push(() => { s.destroy(); });
      await withTimeout(once(s, 'connect'), 5000, 'raw socket never connected');
    }
    await withTimeout(b.close(), 5000, 'close() hung on a socket it did not destroy');
    open = false;
    expect(await withTimeout(told, 5000, 'the WebSocket client was not told the server is shutting down')).toBe(0x8b);
    await closed(silentTls, 'the pending TLS handshake was left open');
    await closed(idleHttp, 'the idle HTTP connection was left open');
  });

  it('a TLS client that never finishes the handshake is dropped after connectTimeout', async () => {
    const b = await broker({ connectTimeout: 0.2 });
    const { port } = await listen(b.broker, { type: 'tls', port: 0, ...serverTls() });
    const raw = net.connect(port, '127.0.0.1');
    raw.on('error', () => {});
    cleanups.push(() => { raw.destroy(); });
    await closed(raw, 'a socket that never started its TLS handshake was kept open past connectTimeout');
  });
});
