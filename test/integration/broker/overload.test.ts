/**
 * Overload protection (broker/limits.ts): connections that never send CONNECT (slowloris), the
 * maxConnections limit, and the per-connection publish rate limit. Every limit hit is counted.
 */
import { once } from 'node:events';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAllClients, collect, connectClient, startBroker, withTimeout, type TestBroker } from '../../helpers/broker.js';
import { closeAllRawClients, connectRaw, openRawClient, rawConnectPacket } from '../../helpers/raw-client.js';

const brokers: TestBroker[] = [];
const idleSockets = new Set<net.Socket>();

afterEach(async () => {
  await closeAllClients();
  closeAllRawClients();
  for (const s of idleSockets) s.destroy();
  idleSockets.clear();
  for (const b of brokers.splice(0)) await b.close();
});

async function start(options: Parameters<typeof startBroker>[0]): Promise<TestBroker> {
  const t = await startBroker(options);
  brokers.push(t);
  return t;
}

interface IdleConnection {
  socket: net.Socket;
  /** Resolves once the socket is closed, with whether the broker ended it (FIN or reset) first. */
  closed: Promise<{ byBroker: boolean }>;
}

/** A TCP connection that never sends a byte (a slowloris client); resolves once connected. */
function openIdle(port: number): Promise<IdleConnection> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  idleSockets.add(socket);
  let byBroker = false;
  socket.on('end', () => (byBroker = true));
  socket.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ECONNRESET') byBroker = true;
  });
  const closed = new Promise<{ byBroker: boolean }>((resolve) => socket.once('close', () => resolve({ byBroker })));
  return new Promise<IdleConnection>((resolve, reject) => {
    socket.once('connect', () => resolve({ socket, closed }));
    socket.once('error', reject);
  });
}

/** A subscriber and a publisher on the broker exchange one QoS 1 message (the broker serves clients). */
async function roundTrip(url: string, tag: string): Promise<void> {
  const sub = await connectClient(url, { protocolVersion: 5, clientId: `${tag}-sub` });
  const inbox = collect(sub);
  await sub.subscribeAsync(`${tag}/#`, { qos: 1 });
  const pub = await connectClient(url, { protocolVersion: 4, clientId: `${tag}-pub` });
  await pub.publishAsync(`${tag}/x`, tag, { qos: 1 });
  const [message] = await inbox.waitFor(1);
  expect(message!.payload.toString()).toBe(tag);
  await Promise.all([sub.endAsync(), pub.endAsync()]);
}

describe('connectTimeout: connections that never send CONNECT', () => {
  it('2,000 silent connections are all closed by the broker after 1 s and counted; clients are served during and after', async () => {
    const t = await start({ connectTimeout: 1 });
    const COUNT = 2000;
    const BATCH = 200;
    const idle: IdleConnection[] = [];
    for (let opened = 0; opened < COUNT; opened += BATCH) {
      // In batches: the listen backlog is finite, and a full one only delays, never fails, the rest.
      idle.push(...(await withTimeout(Promise.all(Array.from({ length: BATCH }, () => openIdle(t.port))), 10_000, `opening connections ${opened}..${opened + BATCH}`)));
    }

    // During: a client connects and gets its messages while the silent connections are held.
    const during = await connectClient(t.url, { protocolVersion: 5, clientId: 'during' });
    const inbox = collect(during);
    await during.subscribeAsync('slowloris/#', { qos: 1 });
    await roundTrip(t.url, 'during-rt');

    const results = await withTimeout(Promise.all(idle.map((c) => c.closed)), 30_000, 'the broker did not close every silent connection');
    expect(results.filter((r) => r.byBroker)).toHaveLength(COUNT);
    expect(t.broker.metrics.connectTimeouts).toBe(COUNT);
    expect(t.broker.metrics.connectionsRejected).toEqual({ maxConnections: 0, shuttingDown: 0, connackRefused: 0 });
    expect([...t.broker.core.connections].filter((c) => c.state === 'awaiting-connect')).toHaveLength(0);

    // After: the client that connected during the attack still works, and new ones get in.
    const after = await connectClient(t.url, { protocolVersion: 4, clientId: 'after' });
    await after.publishAsync('slowloris/after', 'still here', { qos: 1 });
    const [message] = await inbox.waitFor(1);
    expect(message!.payload.toString()).toBe('still here');
    await roundTrip(t.url, 'after-rt');
    expect(t.broker.metrics.connectTimeouts).toBe(COUNT);
  });

  it('a connection that completes CONNECT in time is not counted as a timeout', async () => {
    const t = await start({ connectTimeout: 1 });
    const { client, connack } = await connectRaw(t.port, { clientId: 'prompt' });
    expect(connack.reasonCode).toBe(0);
    // An idle connection that has not sent CONNECT is closed by the timer; the connected one is not.
    const idle = await openIdle(t.port);
    expect(await withTimeout(idle.closed, 10_000, 'the silent connection was never closed')).toEqual({ byBroker: true });
    await client.ping();
    expect(client.isClosed()).toBe(false);
    expect(t.broker.metrics.connectTimeouts).toBe(1);
  });
});

describe('maxConnections', () => {
  it('over the limit a connection is closed on accept (nothing sent, counted); after one leaves, a new one gets in', async () => {
    const t = await start({ maxConnections: 3 });
    const clients = await Promise.all(['m1', 'm2', 'm3'].map((clientId) => connectClient(t.url, { protocolVersion: 5, clientId })));

    // The fourth: TCP accepts it, the broker closes it before reading anything; its CONNECT gets no CONNACK.
    const fourth = await openRawClient(t.port);
    fourth.send(rawConnectPacket({ clientId: 'm4' }));
    await fourth.waitClosed();
    expect(fourth.received).toEqual([]);
    expect(t.broker.metrics.connectionsRejected.maxConnections).toBe(1);
    expect(t.broker.metrics.connectionsAccepted).toBe(3);

    // A silent connection counts against the limit too (it holds a socket): also refused.
    const silent = await openIdle(t.port);
    expect(await withTimeout(silent.closed, 5000, 'the silent fifth connection was not closed')).toEqual({ byBroker: true });
    expect(t.broker.metrics.connectionsRejected.maxConnections).toBe(2);

    const left = once(t.broker.events, 'clientDisconnected');
    await clients[0]!.endAsync();
    await withTimeout(left, 5000, 'the broker never saw m1 leave');

    const { client: m5, connack } = await connectRaw(t.port, { clientId: 'm5' });
    expect(connack.reasonCode).toBe(0);
    m5.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'max/#', qos: 0 }] });
    await m5.waitFor('suback');
    await clients[1]!.publishAsync('max/x', 'in', { qos: 1 });
    const publish = await m5.waitFor('publish');
    expect(publish.payload.toString()).toBe('in');
    expect(t.broker.metrics.connectionsRejected.maxConnections).toBe(2);
    expect(t.broker.metrics.connectionsAccepted).toBe(4);
  });

  it('0 means no limit', async () => {
    const t = await start({ maxConnections: 0 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => connectClient(t.url, { clientId: `n${i}` })));
    expect(t.broker.metrics.clientsConnected).toBe(20);
    expect(t.broker.metrics.connectionsRejected.maxConnections).toBe(0);
  });
});

describe('publishRateLimit (token bucket, clock injected and frozen)', () => {
  /** A broker whose clock only moves when the test says so, and a raw subscriber on rate/#. */
  async function rateBroker(limit: number) {
    const clock = { t: 1_000_000 };
    const t = await start({ publishRateLimit: limit, clock: { now: () => clock.t } });
    const { client: sub } = await connectRaw(t.port, { clientId: 'rate-sub' });
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'rate/#', qos: 1 }] });
    await sub.waitFor('suback');
    return { t, clock, sub };
  }

  it('MQTT 5: the publish over the burst is neither routed nor acknowledged; DISCONNECT 0x96 and counted', async () => {
    const { t, sub } = await rateBroker(10);
    const { client: pub } = await connectRaw(t.port, { clientId: 'rate-pub' });
    for (let id = 1; id <= 11; id++) pub.send({ type: 'publish', topic: 'rate/x', payload: Buffer.from(String(id)), qos: 1, retain: false, dup: false, packetId: id });
    const disconnect = await pub.waitFor('disconnect');
    expect(disconnect.reasonCode).toBe(0x96);
    await pub.waitClosed();
    expect(pub.all('puback').map((p) => p.packetId)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

    await sub.waitForCount('publish', 10);
    await sub.ping();
    expect(sub.all('publish').map((p) => p.payload.toString())).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
    expect(t.broker.metrics.rateLimited).toBe(1);
    expect(t.broker.metrics.publishReceived).toEqual([0, 10, 0]);
  });

  it('tokens come back with time: rate per second after the burst, then the limit again', async () => {
    const { t, clock, sub } = await rateBroker(10);
    const { client: pub } = await connectRaw(t.port, { clientId: 'rate-pub' });
    const send = (from: number, to: number): void => {
      for (let id = from; id <= to; id++) pub.send({ type: 'publish', topic: 'rate/y', payload: Buffer.from(String(id)), qos: 0, retain: false, dup: false });
    };
    send(1, 10);
    await pub.ping();
    clock.t += 500; // half a second: 5 tokens
    send(11, 15);
    await pub.ping();
    expect(pub.isClosed()).toBe(false);
    send(16, 16);
    expect((await pub.waitFor('disconnect')).reasonCode).toBe(0x96);
    await sub.waitForCount('publish', 15);
    await sub.ping();
    expect(sub.all('publish')).toHaveLength(15);
    expect(t.broker.metrics.rateLimited).toBe(1);
  });

  it('MQTT 3.1.1: the connection is closed (3.1.1 has no DISCONNECT from the server)', async () => {
    const { t, sub } = await rateBroker(3);
    const { client: pub } = await connectRaw(t.port, { clientId: 'rate-v4', protocolVersion: 4 });
    for (let i = 0; i < 4; i++) pub.send({ type: 'publish', topic: 'rate/z', payload: Buffer.from('m'), qos: 0, retain: false, dup: false });
    await pub.waitClosed();
    expect(pub.received.map((p) => p.type)).toEqual(['connack']);
    await sub.waitForCount('publish', 3);
    await sub.ping();
    expect(sub.all('publish')).toHaveLength(3);
    expect(t.broker.metrics.rateLimited).toBe(1);
  });

  it('each connection has its own bucket', async () => {
    const { t, sub } = await rateBroker(2);
    const pubs = await Promise.all(['a', 'b', 'c'].map((id) => connectRaw(t.port, { clientId: `rate-${id}` })));
    for (const { client } of pubs) for (let i = 0; i < 2; i++) client.send({ type: 'publish', topic: 'rate/w', payload: Buffer.from('m'), qos: 0, retain: false, dup: false });
    for (const { client } of pubs) await client.ping();
    await sub.waitForCount('publish', 6);
    expect(t.broker.metrics.rateLimited).toBe(0);
  });
});
