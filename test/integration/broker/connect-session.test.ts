/**
 * CONNECT, sessions and wills against the in-process broker. MQTT.js clients at protocol 4 (3.1.1)
 * and 5 where a behaviour exists in both; raw-packet clients (protocol/encoder.ts + parser.ts) where
 * the test needs exact packets or a client that misbehaves on purpose. Test names carry the spec
 * statement ids of the version under test (3.1.1 ids for protocol 4, 5.0 ids for protocol 5); where the
 * spec has no statement id the section number is given instead.
 */
import mqtt, {
  type ErrorWithReasonCode, type IClientOptions, type IConnackPacket, type IDisconnectPacket, type IPublishPacket, type MqttClient,
} from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConnectPacket, PublishPacket } from '../../../protocol/packets.js';
import type { AuthResult, BrokerOptions } from '../../../broker/options.js';
import {
  closeAllClients, collect, connectClient, startBroker, withTimeout, type Received, type TestBroker,
} from '../../helpers/broker.js';
import { closeAllRawClients, connectPacket, RawClient } from '../../helpers/raw-packet-client.js';
import { waitUntil } from '../../helpers/wait.js';

let tb: TestBroker | undefined;
const ownClients = new Set<MqttClient>();

afterEach(async () => {
  await closeAllClients();
  await Promise.all([...ownClients].map((c) => withTimeout(new Promise<void>((resolve) => c.end(true, {}, () => resolve())), 2000, 'an MQTT.js client never closed')));
  ownClients.clear();
  await closeAllRawClients();
  await tb?.close();
  tb = undefined;
});

async function broker(options: Partial<BrokerOptions> = {}): Promise<TestBroker> {
  tb = await startBroker(options);
  return tb;
}

interface Opened {
  client: MqttClient;
  /** Attached before CONNECT, so messages a resumed session receives right after CONNACK are not missed. */
  inbox: ReturnType<typeof collect>;
  /** PUBLISH packets in wire order (MQTT.js emits a QoS 2 'message' only at PUBREL, so later than QoS 1). */
  wire: IPublishPacket[];
  connack: IConnackPacket;
}

/** Connects an MQTT.js client and resolves with the client, its inbox and the CONNACK packet. */
async function open(url: string, options: IClientOptions): Promise<Opened> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
  ownClients.add(client);
  const inbox = collect(client);
  const wire: IPublishPacket[] = [];
  client.on('packetreceive', (packet) => {
    if (packet.cmd === 'publish') wire.push(packet);
  });
  const connack = await withTimeout(
    new Promise<IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
    }),
    5000,
    `client ${options.clientId ?? ''} never received CONNACK`,
  );
  return { client, inbox, wire, connack };
}

/** Connects an MQTT.js client the broker is expected to refuse; resolves with the MQTT.js error. */
function refusal(client: MqttClient, what: string): Promise<ErrorWithReasonCode> {
  ownClients.add(client);
  return withTimeout(
    new Promise<ErrorWithReasonCode>((resolve, reject) => {
      client.once('connect', () => reject(new Error(`${what}: the broker accepted the connection`)));
      client.once('error', (err) => resolve(err as ErrorWithReasonCode));
    }),
    5000,
    `${what}: no CONNACK refusal`,
  );
}

/** Resolves when the broker has detached `clientId`'s connection (register before causing it). */
function detached(t: TestBroker, clientId: string, ms = 5000): Promise<void> {
  return withTimeout(
    new Promise<void>((resolve) => {
      const on = (id: string): void => {
        if (id !== clientId) return;
        t.broker.events.off('clientDisconnected', on);
        resolve();
      };
      t.broker.events.on('clientDisconnected', on);
    }),
    ms,
    `the broker never saw ${clientId} disconnect`,
  );
}

/** A subscriber on `filter` at QoS 2. */
async function watch(t: TestBroker, version: 4 | 5, filter: string, clientId = 'watcher'): Promise<ReturnType<typeof collect>> {
  const watcher = await connectClient(t.url, { protocolVersion: version, clientId });
  const inbox = collect(watcher);
  await watcher.subscribeAsync(filter, { qos: 2 });
  return inbox;
}

/**
 * Publishes a marker on `topic` and waits until `inbox` has it: anything the broker published to the
 * same subscriber before the marker has arrived by then, so "nothing else arrived" is a real check.
 */
async function marker(t: TestBroker, version: 4 | 5, inbox: ReturnType<typeof collect>, topic: string): Promise<Received[]> {
  const pub = await connectClient(t.url, { protocolVersion: version, clientId: 'marker' });
  await pub.publishAsync(topic, 'marker', { qos: 1 });
  await withTimeout(
    (async () => {
      for (let n = 1; !inbox.messages.some((m) => m.topic === topic); n++) await inbox.waitFor(n);
    })(),
    5000,
    `marker on ${topic} never arrived`,
  );
  return inbox.messages.filter((m) => m.topic !== topic);
}

/** A promise with its resolver, for authenticators the test releases. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

/** An authenticator that waits until the test releases it; `called` resolves when the broker asked. */
function heldAuthenticator(): { authenticate: () => Promise<AuthResult>; called: Promise<void>; release(result: AuthResult): void } {
  const called = deferred<void>();
  const result = deferred<AuthResult>();
  return {
    authenticate: () => {
      called.resolve();
      return result.promise;
    },
    called: called.promise,
    release: result.resolve,
  };
}

/** Packets the broker has buffered for the only connection while its authentication runs. */
function backlogLength(t: TestBroker): number {
  const conns = [...t.broker.core.connections];
  return conns.length === 1 ? (conns[0]!.backlog?.length ?? 0) : 0;
}

const PERSISTENT_EXPIRY = 300;

function persistentOptions(version: 4 | 5, expiry = PERSISTENT_EXPIRY): IClientOptions {
  return version === 5 ? { clean: false, properties: { sessionExpiryInterval: expiry } } : { clean: false };
}

function persistentConnect(version: 4 | 5): Partial<ConnectPacket> {
  return version === 5 ? { clean: false, properties: { sessionExpiryInterval: PERSISTENT_EXPIRY } } : { clean: false };
}

const versions = [
  {
    version: 4 as const,
    keepalive: 'MQTT-3.1.2-24',
    takeover: 'MQTT-3.1.4-2',
    resume: 'MQTT-3.1.2-4',
    offline: 'MQTT-3.1.2-5',
    cleanDiscards: 'MQTT-3.1.2-6',
    spClean: 'MQTT-3.2.2-1',
    spResumed: 'MQTT-3.2.2-2',
    spNone: 'MQTT-3.2.2-3',
    refusedCloses: 'MQTT-3.2.2-5',
    refusedIgnores: 'MQTT-3.1.4-5',
    willOnClose: 'MQTT-3.1.2-8',
    willRetain: 'MQTT-3.1.2-17',
    badCredentials: 4,
    notAuthorized: 5,
  },
  {
    version: 5 as const,
    keepalive: 'MQTT-3.1.2-22',
    takeover: 'MQTT-3.1.4-3',
    resume: 'MQTT-3.1.2-5',
    offline: 'MQTT-3.1.2-23',
    cleanDiscards: 'MQTT-3.1.2-4',
    spClean: 'MQTT-3.2.2-2',
    spResumed: 'MQTT-3.2.2-3',
    spNone: 'MQTT-3.2.2-3',
    refusedCloses: 'MQTT-3.2.2-7',
    refusedIgnores: 'MQTT-3.1.4-6',
    willOnClose: 'MQTT-3.1.2-8',
    willRetain: 'MQTT-3.1.2-15',
    badCredentials: 0x86,
    notAuthorized: 0x87,
  },
];

// ---------------------------------------------------------------------------------------------- CONNECT

describe('CONNECT: protocol levels', () => {
  it.each([3, 4, 5] as const)('[MQTT-3.1.2-2] protocol level %i is accepted', async (level) => {
    const t = await broker();
    const { client, connack } = await open(t.url, {
      protocolVersion: level, clientId: `level${level}`, ...(level === 3 ? { protocolId: 'MQIsdp' as const } : {}),
    });
    expect(client.connected).toBe(true);
    expect(level === 5 ? connack.reasonCode : connack.returnCode).toBe(0);
    expect(t.broker.core.sessions.get(`level${level}`)?.protocolVersion).toBe(level);
  });
});

describe('CONNECT: client identifiers', () => {
  it('[MQTT-3.1.3-6] [MQTT-3.1.3-7] (5.0) an empty client id is replaced by a unique one, returned as Assigned Client Identifier', async () => {
    const t = await broker();
    const { connack } = await open(t.url, { protocolVersion: 5, clientId: '' });
    const assigned = connack.properties?.assignedClientIdentifier;
    expect(assigned).toMatch(/^\S+$/);
    expect(t.broker.core.sessions.has(assigned!)).toBe(true);
    const second = await open(t.url, { protocolVersion: 5, clientId: '' });
    expect(second.connack.properties?.assignedClientIdentifier).not.toBe(assigned);
  });

  it('[MQTT-3.1.3-8] (3.1.1) an empty client id with CleanSession 0 is refused with return code 0x02 and closed', async () => {
    const t = await broker();
    // MQTT.js (mqtt-packet) refuses to encode this CONNECT, so a raw client sends it.
    const client = await RawClient.open(t.port, 4);
    client.send(connectPacket(4, '', { clean: false }));
    expect(await client.expect('connack')).toEqual({ type: 'connack', sessionPresent: false, reasonCode: 2 });
    await client.waitClosed(3000);
    expect(t.broker.core.sessions.size).toBe(0);
  });

  it('[MQTT-3.1.3-6] (3.1.1) an empty client id with CleanSession 1 is accepted and given a unique id', async () => {
    const t = await broker();
    const { client, connack } = await open(t.url, { protocolVersion: 4, clientId: '', clean: true });
    expect(client.connected).toBe(true);
    expect(connack.returnCode).toBe(0);
    expect(connack.sessionPresent).toBe(false);
    expect([...t.broker.core.sessions.keys()]).toEqual([expect.stringMatching(/^\S+$/)]);
  });
});

describe('CONNECT: server keep alive (5.0)', () => {
  it.each([0, 60])('[MQTT-3.2.2-21] a requested keepalive of %i above maxKeepalive is answered with Server Keep Alive', async (keepalive) => {
    const t = await broker({ maxKeepalive: 10 });
    const { connack } = await open(t.url, { protocolVersion: 5, clientId: 'ka', keepalive });
    expect(connack.properties?.serverKeepAlive).toBe(10);
  });

  it('[MQTT-3.2.2-22] a keepalive within maxKeepalive is kept and no Server Keep Alive is sent', async () => {
    const t = await broker({ maxKeepalive: 10 });
    const { connack } = await open(t.url, { protocolVersion: 5, clientId: 'ka', keepalive: 5 });
    expect(connack.properties?.serverKeepAlive).toBeUndefined();
  });

  it('[MQTT-3.2.2-21] the broker enforces the Server Keep Alive it announced (DISCONNECT 0x8D after 1.5 x)', async () => {
    const t = await broker({ maxKeepalive: 1 });
    const { client, connack } = await RawClient.connect(t.port, connectPacket(5, 'silent', { keepalive: 0 }));
    expect(connack.properties?.serverKeepAlive).toBe(1);
    const since = Date.now();
    expect(await client.expect('disconnect', 4000)).toMatchObject({ reasonCode: 0x8d });
    await client.waitClosed(2000);
    expect(Date.now() - since).toBeGreaterThanOrEqual(1400);
  });
});

describe.each(versions)('CONNECT, MQTT.js protocol $version', (s) => {
  const { version } = s;

  it(`[${s.keepalive}] a client silent for 1.5 x its keepalive is disconnected${version === 5 ? ' with DISCONNECT 0x8D' : ''}`, async () => {
    const t = await broker();
    const { client } = await RawClient.connect(t.port, connectPacket(version, 'silent', { keepalive: 1 }));
    const since = Date.now();
    if (version === 5) expect(await client.expect('disconnect', 4000)).toMatchObject({ reasonCode: 0x8d });
    // Bounded by the wait itself (closed within 4 s); never before 1.5 x keepalive.
    await client.waitClosed(4000, 'the broker never closed the silent connection');
    expect(Date.now() - since).toBeGreaterThanOrEqual(1400);
    expect(client.received.map((p) => p.type)).toEqual(version === 5 ? ['connack', 'disconnect'] : ['connack']);
  });

  it(`[${s.takeover}] a second connection with the same client id closes the first${version === 5 ? ' with DISCONNECT 0x8E' : ''}`, async () => {
    const t = await broker();
    const first = await connectClient(t.url, { protocolVersion: version, clientId: 'twin' });
    const closed = withTimeout(new Promise<void>((resolve) => first.once('close', () => resolve())), 5000, 'the first connection was never closed');
    const disconnect = new Promise<IDisconnectPacket>((resolve) => first.once('disconnect', resolve));
    const second = await connectClient(t.url, { protocolVersion: version, clientId: 'twin' });
    await closed;
    if (version === 5) expect((await disconnect).reasonCode).toBe(0x8e);
    expect(second.connected).toBe(true);
    expect(t.broker.core.sessions.get('twin')?.connection?.state).toBe('connected');
    expect(t.broker.metrics.takeovers).toBe(1);
  });

  it(`[${s.takeover}] [${s.willOnClose}] on takeover the first connection's will (delay 0) is published`, async () => {
    const t = await broker();
    const inbox = await watch(t, version, 'will/#');
    await connectClient(t.url, {
      protocolVersion: version, clientId: 'twin', will: { topic: 'will/twin', payload: Buffer.from('taken over'), qos: 1, retain: false },
    });
    await connectClient(t.url, { protocolVersion: version, clientId: 'twin' });
    const [will] = await inbox.waitFor(1);
    expect(will!.topic).toBe('will/twin');
    expect(will!.payload.toString()).toBe('taken over');
  });

  it(`[${s.spClean}] CONNACK Session Present is 0 for a clean ${version === 5 ? 'start' : 'session'}, even when a session was stored`, async () => {
    const t = await broker();
    const { client } = await open(t.url, { protocolVersion: version, clientId: 'sp', ...persistentOptions(version) });
    const gone = detached(t, 'sp');
    client.end();
    await gone;
    expect(t.broker.core.sessions.has('sp')).toBe(true);
    const { connack } = await open(t.url, { protocolVersion: version, clientId: 'sp', clean: true });
    expect(connack.sessionPresent).toBe(false);
  });

  it(`[${s.spResumed}] CONNACK Session Present is 1 when a stored session is resumed`, async () => {
    const t = await broker();
    const { client, connack: firstConnack } = await open(t.url, { protocolVersion: version, clientId: 'sp', ...persistentOptions(version) });
    expect(firstConnack.sessionPresent).toBe(false);
    const gone = detached(t, 'sp');
    client.end();
    await gone;
    const { connack } = await open(t.url, { protocolVersion: version, clientId: 'sp', ...persistentOptions(version) });
    expect(connack.sessionPresent).toBe(true);
  });

  it(`[${s.spNone}] CONNACK Session Present is 0 when resuming is asked for but no session is stored`, async () => {
    const t = await broker();
    const { connack } = await open(t.url, { protocolVersion: version, clientId: 'sp', ...persistentOptions(version) });
    expect(connack.sessionPresent).toBe(false);
  });

  it(`[${s.refusedCloses}] authenticate returning false refuses with ${version === 5 ? '0x86' : 'return code 4'} and closes`, async () => {
    const t = await broker({ authenticate: () => false });
    const client = mqtt.connect(t.url, { protocolVersion: version, clientId: 'who', reconnectPeriod: 0 });
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const err = await refusal(client, 'authenticate false');
    expect(err.code).toBe(s.badCredentials);
    await withTimeout(closed, 3000, 'the refused connection was never closed');
    expect(t.broker.core.sessions.size).toBe(0);
  });

  it(`[${s.refusedCloses}] authenticate returning {reasonCode: 0x87} refuses with ${version === 5 ? '0x87' : 'return code 5'}`, async () => {
    const t = await broker({ authenticate: () => ({ reasonCode: 0x87 }) });
    const err = await refusal(mqtt.connect(t.url, { protocolVersion: version, clientId: 'who', reconnectPeriod: 0 }), 'authenticate 0x87');
    expect(err.code).toBe(s.notAuthorized);
  });

  it('[3.1.4] an asynchronous authenticator resolving true accepts the connection and sees the credentials', async () => {
    const seen: Array<{ clientId: string; username?: string; password?: string; protocolVersion: number }> = [];
    const t = await broker({
      authenticate: async (req) => {
        await new Promise((resolve) => setImmediate(resolve));
        seen.push({ clientId: req.clientId, protocolVersion: req.protocolVersion, username: req.username, password: req.password?.toString() });
        return req.username === 'alice' && req.password?.toString() === 'secret';
      },
    });
    const { client, connack } = await open(t.url, { protocolVersion: version, clientId: 'alice1', username: 'alice', password: 'secret' });
    expect(client.connected).toBe(true);
    expect(connack.sessionPresent).toBe(false);
    expect(seen).toEqual([{ clientId: 'alice1', protocolVersion: version, username: 'alice', password: 'secret' }]);
  });

  it('[3.1.4] [MQTT-4.6.0-6] packets pipelined behind CONNECT during asynchronous authentication are processed in order', async () => {
    const auth = heldAuthenticator();
    const t = await broker({ authenticate: auth.authenticate });
    const client = await RawClient.open(t.port, version);
    client.send(
      connectPacket(version, 'eager'),
      { type: 'subscribe', packetId: 7, subscriptions: [{ topic: 'eager/#', qos: 1 }] },
      { type: 'publish', topic: 'eager/1', payload: Buffer.from('first'), qos: 1, retain: false, dup: false, packetId: 8 },
      { type: 'pingreq' },
    );
    await withTimeout(auth.called, 3000, 'the authenticator was never called');
    await waitUntil(() => backlogLength(t) === 3, 3000, 'the three pipelined packets never reached the broker');
    auth.release(true);
    expect(await client.expect('connack')).toMatchObject({ reasonCode: 0 });
    expect(await client.expect('suback')).toMatchObject({ packetId: 7, reasonCodes: [1] });
    expect(await client.expect('publish')).toMatchObject({ topic: 'eager/1', qos: 1 });
    expect(await client.expect('puback')).toMatchObject({ packetId: 8 });
    await client.expect('pingresp');
  });

  it(`[${s.refusedIgnores}] packets pipelined behind a CONNECT that is then refused are not processed`, async () => {
    const auth = heldAuthenticator();
    const t = await broker({ authenticate: auth.authenticate });
    const client = await RawClient.open(t.port, version);
    client.send(
      connectPacket(version, 'intruder'),
      { type: 'publish', topic: 'x/secret', payload: Buffer.from('leak'), qos: 0, retain: true, dup: false },
    );
    await withTimeout(auth.called, 3000, 'the authenticator was never called');
    await waitUntil(() => backlogLength(t) === 1, 3000, 'the pipelined PUBLISH never reached the broker');
    auth.release(false);
    expect(await client.expect('connack')).toMatchObject({ reasonCode: s.badCredentials, sessionPresent: false });
    await client.waitClosed(3000);
    expect(t.broker.core.retained.has('x/secret')).toBe(false);
    expect(t.broker.metrics.messagesReceived).toBe(0);
  });

  it(`[MQTT-3.1.0-2] a second CONNECT on one connection is a protocol error${version === 5 ? ' (DISCONNECT 0x82)' : ''} and closes it`, async () => {
    const t = await broker();
    const { client } = await RawClient.connect(t.port, connectPacket(version, 'twice'));
    client.send(connectPacket(version, 'twice'));
    if (version === 5) expect(await client.expect('disconnect')).toMatchObject({ reasonCode: 0x82 });
    await client.waitClosed(3000);
    expect(client.received.map((p) => p.type)).toEqual(version === 5 ? ['connack', 'disconnect'] : ['connack']);
  });

  it(`[MQTT-3.1.0-2] a second CONNECT pipelined during asynchronous authentication is a protocol error${version === 5 ? ' (DISCONNECT 0x82)' : ''}`, async () => {
    const auth = heldAuthenticator();
    const t = await broker({ authenticate: auth.authenticate });
    const client = await RawClient.open(t.port, version);
    client.send(connectPacket(version, 'twice'), connectPacket(version, 'twice'));
    await withTimeout(auth.called, 3000, 'the authenticator was never called');
    await waitUntil(() => backlogLength(t) === 1, 3000, 'the second CONNECT never reached the broker');
    auth.release(true);
    expect(await client.expect('connack')).toMatchObject({ reasonCode: 0 });
    if (version === 5) expect(await client.expect('disconnect')).toMatchObject({ reasonCode: 0x82 });
    await client.waitClosed(3000);
    expect(t.broker.metrics.protocolErrors).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------- sessions

describe.each(versions)('sessions, MQTT.js protocol $version', (s) => {
  const { version } = s;

  it(`[${s.resume}] a persistent session keeps its subscriptions across reconnects`, async () => {
    const t = await broker();
    const first = await open(t.url, { protocolVersion: version, clientId: 'keeper', ...persistentOptions(version) });
    await first.client.subscribeAsync('keep/#', { qos: 1 });
    const gone = detached(t, 'keeper');
    first.client.end();
    await gone;
    const again = await open(t.url, { protocolVersion: version, clientId: 'keeper', ...persistentOptions(version) });
    expect(again.connack.sessionPresent).toBe(true);
    const pub = await connectClient(t.url, { protocolVersion: version, clientId: 'pub' });
    await pub.publishAsync('keep/live', 'after resume', { qos: 1 });
    const [m] = await again.inbox.waitFor(1);
    expect(m!.topic).toBe('keep/live');
    expect(m!.packet.qos).toBe(1);
  });

  it(`[${s.offline}] [MQTT-4.6.0-6] QoS 1 and 2 messages published while the client was offline are delivered on resume, in order`, async () => {
    const t = await broker();
    const first = await open(t.url, { protocolVersion: version, clientId: 'away', ...persistentOptions(version) });
    await first.client.subscribeAsync('away/#', { qos: 2 });
    const gone = detached(t, 'away');
    first.client.end();
    await gone;
    const pub = await connectClient(t.url, { protocolVersion: version, clientId: 'pub' });
    const sent = [['away/a', 1], ['away/b', 2], ['away/a', 2], ['away/c', 1], ['away/b', 1]] as const;
    for (const [i, [topic, qos]] of sent.entries()) await pub.publishAsync(topic, `m${i}`, { qos });
    const again = await open(t.url, { protocolVersion: version, clientId: 'away', ...persistentOptions(version) });
    expect(again.connack.sessionPresent).toBe(true);
    await again.inbox.waitFor(sent.length);
    expect(again.wire.map((p) => [p.topic, p.qos, p.payload.toString()])).toEqual(sent.map(([topic, qos], i) => [topic, qos, `m${i}`]));
  });

  it(`[MQTT-4.4.0-1] [MQTT-3.3.1-1] [MQTT-4.6.0-1] on resume unacknowledged QoS 1/2 deliveries are resent first, with DUP 1, original ids, in original order`, async () => {
    const t = await broker();
    const connect = connectPacket(version, 'forgetful', persistentConnect(version));
    const { client: sub } = await RawClient.connect(t.port, connect);
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'r/#', qos: 2 }] });
    await sub.expect('suback');
    const pub = await connectClient(t.url, { protocolVersion: version, clientId: 'pub' });
    const inflight = [['r/1', 1], ['r/2', 2], ['r/3', 1]] as const;
    for (const [topic, qos] of inflight) await pub.publishAsync(topic, topic, { qos });
    const original: PublishPacket[] = [];
    for (let i = 0; i < inflight.length; i++) original.push(await sub.expect('publish'));
    expect(original.map((p) => [p.topic, p.qos, p.dup])).toEqual(inflight.map(([topic, qos]) => [topic, qos, false]));

    // Never acknowledged: the connection drops with all three in flight.
    const gone = detached(t, 'forgetful');
    sub.destroy();
    await gone;
    await pub.publishAsync('r/4', 'r/4', { qos: 1 });

    const { client: back, connack } = await RawClient.connect(t.port, connect);
    expect(connack.sessionPresent).toBe(true);
    const resent: PublishPacket[] = [];
    for (let i = 0; i < inflight.length; i++) resent.push(await back.expect('publish'));
    expect(resent.map((p) => [p.topic, p.qos, p.dup, p.packetId, p.payload.toString()]))
      .toEqual(original.map((p) => [p.topic, p.qos, true, p.packetId, p.topic]));
    const fresh = await back.expect('publish');
    expect([fresh.topic, fresh.dup]).toEqual(['r/4', false]);
    expect(original.map((p) => p.packetId)).not.toContain(fresh.packetId);
  });

  it('[MQTT-4.4.0-1] on resume a QoS 2 delivery that got PUBREC is continued with PUBREL, not a resent PUBLISH', async () => {
    const t = await broker();
    const connect = connectPacket(version, 'halfway', persistentConnect(version));
    const { client: sub } = await RawClient.connect(t.port, connect);
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'h/#', qos: 2 }] });
    await sub.expect('suback');
    const pub = await connectClient(t.url, { protocolVersion: version, clientId: 'pub' });
    await pub.publishAsync('h/2', 'exactly once', { qos: 2 });
    const q2 = await sub.expect('publish');
    sub.send({ type: 'pubrec', packetId: q2.packetId! });
    expect(await sub.expect('pubrel')).toMatchObject({ packetId: q2.packetId });
    await pub.publishAsync('h/1', 'at least once', { qos: 1 });
    const q1 = await sub.expect('publish');

    // Neither PUBCOMP nor PUBACK is sent before the connection drops.
    const gone = detached(t, 'halfway');
    sub.destroy();
    await gone;

    const { client: back, connack } = await RawClient.connect(t.port, connect);
    expect(connack.sessionPresent).toBe(true);
    back.send({ type: 'pingreq' });
    const after = [await back.next(), await back.next(), await back.next()];
    expect(after.map((p) => (p.type === 'publish' ? [p.type, p.packetId, p.dup] : p.type === 'pubrel' ? [p.type, p.packetId] : [p.type])))
      .toEqual([['pubrel', q2.packetId], ['publish', q1.packetId, true], ['pingresp']]);
  });

  it(`[${s.cleanDiscards}] a clean ${version === 5 ? 'start' : 'session'} discards the previous session and its subscriptions`, async () => {
    const t = await broker();
    const first = await open(t.url, { protocolVersion: version, clientId: 'fresh', ...persistentOptions(version) });
    await first.client.subscribeAsync('old/#', { qos: 1 });
    const gone = detached(t, 'fresh');
    first.client.end();
    await gone;
    const again = await open(t.url, { protocolVersion: version, clientId: 'fresh', clean: true });
    expect(again.connack.sessionPresent).toBe(false);
    expect(t.broker.core.sessions.get('fresh')?.subscriptions.size).toBe(0);
    await again.client.subscribeAsync('marker/fresh', { qos: 1 });
    const pub = await connectClient(t.url, { protocolVersion: version, clientId: 'pub' });
    await pub.publishAsync('old/x', 'to the old subscription', { qos: 1 });
    expect(await marker(t, version, again.inbox, 'marker/fresh')).toEqual([]);
  });
});

describe('sessions: expiry (5.0)', () => {
  it('[MQTT-3.1.2-23] [3.1.2.11.2] a session with Session Expiry Interval 1 is discarded once it elapses', async () => {
    const t = await broker();
    const { client } = await open(t.url, { protocolVersion: 5, clientId: 'brief', ...persistentOptions(5, 1) });
    await client.subscribeAsync('brief/#', { qos: 1 });
    const gone = detached(t, 'brief');
    client.end();
    await gone;
    expect(t.broker.core.sessions.has('brief')).toBe(true);
    const since = Date.now();
    await waitUntil(() => !t.broker.core.sessions.has('brief'), 4000, 'the session never expired');
    expect(Date.now() - since).toBeGreaterThanOrEqual(900);
    const { connack } = await open(t.url, { protocolVersion: 5, clientId: 'brief', ...persistentOptions(5) });
    expect(connack.sessionPresent).toBe(false);
  });

  it('[3.14.2.2.2] DISCONNECT may set a new Session Expiry Interval, which then applies', async () => {
    const t = await broker();
    const { client } = await open(t.url, { protocolVersion: 5, clientId: 'shorten', ...persistentOptions(5, PERSISTENT_EXPIRY) });
    const gone = detached(t, 'shorten');
    client.end(false, { properties: { sessionExpiryInterval: 1 } });
    await gone;
    expect(t.broker.core.sessions.get('shorten')?.expiryInterval).toBe(1);
    await waitUntil(() => !t.broker.core.sessions.has('shorten'), 4000, 'the shortened session never expired');
    const { connack } = await open(t.url, { protocolVersion: 5, clientId: 'shorten', ...persistentOptions(5) });
    expect(connack.sessionPresent).toBe(false);
  });

  it('[3.14.2.2.2] DISCONNECT with a non-zero Session Expiry Interval after CONNECT had 0 is a protocol error (DISCONNECT 0x82)', async () => {
    const t = await broker();
    const { client } = await RawClient.connect(t.port, connectPacket(5, 'sneaky'));
    const gone = detached(t, 'sneaky');
    client.send({ type: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 60 } });
    expect(await client.expect('disconnect')).toMatchObject({ reasonCode: 0x82 });
    await client.waitClosed(3000);
    await gone;
    expect(t.broker.core.sessions.has('sneaky')).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------- wills

describe.each(versions)('wills, MQTT.js protocol $version', (s) => {
  const { version } = s;
  const will = (topic: string, qos: 0 | 1 | 2 = 1, retain = false) => ({ topic, payload: Buffer.from(`will of ${topic}`), qos, retain });

  it(`[${s.willOnClose}] the will is published when the connection drops without DISCONNECT`, async () => {
    const t = await broker();
    const inbox = await watch(t, version, 'will/#');
    const dying = await connectClient(t.url, { protocolVersion: version, clientId: 'dying', will: will('will/dying') });
    dying.stream.destroy();
    const [m] = await inbox.waitFor(1);
    expect([m!.topic, m!.payload.toString()]).toEqual(['will/dying', 'will of will/dying']);
  });

  it(`[${s.keepalive}] [${s.willOnClose}] the will is published when the keepalive times out`, async () => {
    const t = await broker();
    const inbox = await watch(t, version, 'will/#');
    const { client } = await RawClient.connect(t.port, connectPacket(version, 'mute', { keepalive: 1, will: will('will/mute') }));
    const since = Date.now();
    const [m] = await inbox.waitFor(1, 4000);
    expect(m!.topic).toBe('will/mute');
    expect(Date.now() - since).toBeGreaterThanOrEqual(1400);
    await client.waitClosed(2000);
  });

  it(`[MQTT-3.14.4-3] [MQTT-3.1.2-10] the will is discarded on DISCONNECT${version === 5 ? ' with reason 0x00' : ''}`, async () => {
    const t = await broker();
    const inbox = await watch(t, version, 'will/#');
    const polite = await connectClient(t.url, { protocolVersion: version, clientId: 'polite', will: will('will/polite') });
    const gone = detached(t, 'polite');
    polite.end();
    await gone;
    expect(await marker(t, version, inbox, 'will/marker')).toEqual([]);
    expect(t.broker.metrics.willsPublished).toBe(0);
  });

  it(`[${s.willRetain}] a will with the retain flag becomes the retained message of its topic`, async () => {
    const t = await broker();
    const inbox = await watch(t, version, 'will/#');
    const dying = await connectClient(t.url, { protocolVersion: version, clientId: 'dying', will: will('will/retained', 1, true) });
    dying.stream.destroy();
    await inbox.waitFor(1);
    const late = await connectClient(t.url, { protocolVersion: version, clientId: 'late' });
    const lateInbox = collect(late);
    await late.subscribeAsync('will/retained', { qos: 1 });
    const [m] = await lateInbox.waitFor(1);
    expect(m!.packet.retain).toBe(true);
    expect(m!.payload.toString()).toBe('will of will/retained');
  });

  it.each([0, 1, 2] as const)('[3.1.2.6] a will with QoS %i is published at that QoS', async (qos) => {
    const t = await broker();
    const inbox = await watch(t, version, 'will/#');
    const dying = await connectClient(t.url, { protocolVersion: version, clientId: 'dying', will: will('will/qos', qos) });
    dying.stream.destroy();
    const [m] = await inbox.waitFor(1);
    expect(m!.packet.qos).toBe(qos);
    expect(m!.packet.retain).toBe(false);
  });
});

describe('wills: DISCONNECT reason codes and will delay (5.0)', () => {
  const will = (topic: string, willDelayInterval?: number) => ({
    topic, payload: Buffer.from(`will of ${topic}`), qos: 1 as const, retain: false,
    ...(willDelayInterval !== undefined ? { properties: { willDelayInterval } } : {}),
  });

  it('[3.14.2.1] DISCONNECT with reason 0x04 (Disconnect with Will Message) publishes the will', async () => {
    const t = await broker();
    const inbox = await watch(t, 5, 'will/#');
    const client = await connectClient(t.url, { protocolVersion: 5, clientId: 'leaving', will: will('will/leaving') });
    client.end(false, { reasonCode: 0x04 });
    const [m] = await inbox.waitFor(1);
    expect(m!.topic).toBe('will/leaving');
  });

  it('[MQTT-3.1.2-8] DISCONNECT with an error reason (0x80) does not discard the will', async () => {
    const t = await broker();
    const inbox = await watch(t, 5, 'will/#');
    const client = await connectClient(t.url, { protocolVersion: 5, clientId: 'failing', will: will('will/failing') });
    client.end(false, { reasonCode: 0x80 });
    const [m] = await inbox.waitFor(1);
    expect(m!.topic).toBe('will/failing');
  });

  it('[MQTT-3.1.3-9] the will is not published when the client reconnects within the will delay', async () => {
    const t = await broker();
    const inbox = await watch(t, 5, 'will/#');
    const first = await connectClient(t.url, { protocolVersion: 5, clientId: 'flaky', ...persistentOptions(5), will: will('will/flaky', 30) });
    const gone = detached(t, 'flaky');
    first.stream.destroy();
    await gone;
    expect(t.broker.core.sessions.get('flaky')?.pendingWill?.topic).toBe('will/flaky');
    const { connack } = await open(t.url, { protocolVersion: 5, clientId: 'flaky', ...persistentOptions(5) });
    expect(connack.sessionPresent).toBe(true);
    const session = t.broker.core.sessions.get('flaky')!;
    expect(session.pendingWill).toBeUndefined();
    expect(session.willTimer).toBeUndefined();
    expect(await marker(t, 5, inbox, 'will/marker')).toEqual([]);
    expect(t.broker.metrics.willsPublished).toBe(0);
  });

  it('[MQTT-3.1.2-8] the will is published once the will delay has elapsed', async () => {
    const t = await broker();
    const inbox = await watch(t, 5, 'will/#');
    const client = await connectClient(t.url, { protocolVersion: 5, clientId: 'late', ...persistentOptions(5), will: will('will/late', 1) });
    const gone = detached(t, 'late');
    client.stream.destroy();
    await gone;
    const since = Date.now();
    expect(inbox.messages).toEqual([]);
    const [m] = await inbox.waitFor(1, 4000);
    expect(m!.topic).toBe('will/late');
    expect(Date.now() - since).toBeGreaterThanOrEqual(900);
    // The delay, not the end of the session, released it.
    expect(t.broker.core.sessions.has('late')).toBe(true);
  });

  it('[MQTT-3.1.2-8] the will is published when the session expires before the will delay', async () => {
    const t = await broker();
    const inbox = await watch(t, 5, 'will/#');
    const client = await connectClient(t.url, { protocolVersion: 5, clientId: 'expiring', ...persistentOptions(5, 1), will: will('will/expiring', 30) });
    const gone = detached(t, 'expiring');
    client.stream.destroy();
    await gone;
    const since = Date.now();
    const [m] = await inbox.waitFor(1, 4000);
    expect(m!.topic).toBe('will/expiring');
    expect(Date.now() - since).toBeGreaterThanOrEqual(900);
    await waitUntil(() => !t.broker.core.sessions.has('expiring'), 3000, 'the session never expired');
    expect(t.broker.metrics.willsPublished).toBe(1);
  });
});
