/**
 * PUBLISH, SUBSCRIBE, UNSUBSCRIBE, shared subscriptions and retained messages end to end: MQTT.js clients at
 * protocol 4 and 5 against an in-process broker, and raw clients (test/helpers/raw-client.ts) where a test needs
 * what MQTT.js will not do — withhold acknowledgements, send invalid filters, exceed the broker's limits.
 *
 * "Nothing else arrived" is asserted after a round trip on the receiving connection, never after a sleep. The
 * broker routes a PUBLISH before it acknowledges it to the publisher and answers each connection's packets in
 * order, and MQTT.js emits 'message' for QoS 0 and 1 before it handles the next packet. So once a publisher's
 * publishAsync has resolved and the subscriber's UNSUBACK (`flush`) or PINGRESP (raw `ping`) is back, every
 * PUBLISH the broker sent that subscriber for those messages has been seen.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { IPublishPacket, MqttClient, Packet as MqttPacket } from 'mqtt';
import type { Properties, PublishPacket, SubackPacket, Subscription } from '../../../protocol/packets.js';
import {
  closeAllClients, collect, connectClient, startBroker, withTimeout, type Received, type TestBroker,
} from '../../helpers/broker.js';
import { closeAllRawClients, connectRaw, type RawClient } from '../../helpers/raw-client.js';

type Version = 4 | 5;

let tb: TestBroker | undefined;
afterEach(async () => {
  closeAllRawClients();
  await closeAllClients();
  await tb?.close();
  tb = undefined;
});

/** The statement id under test: MQTT 3.1.1 and 5.0 number some of the same rules differently. */
function spec(version: Version, v311: string, v5: string): string {
  return version === 5 ? v5 : v311;
}

/** UNSUBSCRIBE → UNSUBACK round trip: afterwards every QoS 0/1 PUBLISH sent to `client` before it was emitted. */
async function flush(client: MqttClient): Promise<void> {
  await withTimeout(client.unsubscribeAsync('flush/never-subscribed'), 5000, 'no UNSUBACK for the flush round trip');
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const texts = (messages: Received[]): string[] => messages.map((m) => m.payload.toString());
const rawTexts = (raw: RawClient): string[] => raw.all('publish').map((p) => p.payload.toString());
const packetIdOf = (p: MqttPacket | undefined): number | undefined => (p !== undefined && 'messageId' in p ? p.messageId : undefined);

/** PUBLISH packets as MQTT.js parsed them, before any acknowledgement flow (QoS 2 'message' waits for PUBREL). */
function publishPackets(client: MqttClient): IPublishPacket[] {
  const seen: IPublishPacket[] = [];
  client.on('packetreceive', (p) => {
    if (p.cmd === 'publish') seen.push(p);
  });
  return seen;
}

async function rawSubscribe(raw: RawClient, packetId: number, subscriptions: Subscription[], properties?: Properties): Promise<SubackPacket> {
  raw.send({ type: 'subscribe', packetId, subscriptions, ...(properties !== undefined ? { properties } : {}) });
  return raw.waitFor('suback', (p) => p.packetId === packetId);
}

async function connectRawOk(
  port: number, clientId: string, version: Version, autoAck: boolean, extra: { clean?: boolean; properties?: Properties } = {},
): Promise<{ client: RawClient; sessionPresent: boolean }> {
  const { client, connack } = await connectRaw(port, { clientId, protocolVersion: version, ...extra }, { autoAck });
  expect(connack.reasonCode, `CONNACK for ${clientId}`).toBe(0);
  return { client, sessionPresent: connack.sessionPresent };
}

/** Resolves once the broker has detached `clientId`'s connection (and so run everything that follows it). */
function brokerSawDisconnect(t: TestBroker, clientId: string): Promise<void> {
  return withTimeout(
    new Promise<void>((resolve) => {
      const onGone = (id: string): void => {
        if (id !== clientId) return;
        t.broker.events.off('clientDisconnected', onGone);
        resolve();
      };
      t.broker.events.on('clientDisconnected', onGone);
    }),
    5000,
    `the broker never saw ${clientId} disconnect`,
  );
}

async function publishAll(pub: MqttClient, topic: string, count: number, qos: 0 | 1 | 2): Promise<void> {
  await withTimeout(
    Promise.all(range(count).map((i) => pub.publishAsync(topic, String(i), { qos }))),
    10_000,
    `the publisher did not complete ${count} QoS ${qos} publishes`,
  );
}

// ------------------------------------------------------------------------------------------------ PUBLISH

describe.each([4, 5] as const)('PUBLISH flows, MQTT.js protocol %i', (version) => {
  const clientOptions = (clientId: string) => ({ protocolVersion: version, clientId });

  it('[MQTT-4.3.1-1] a QoS 0 message is forwarded as QoS 0, DUP 0, without a packet identifier', async () => {
    tb = await startBroker();
    const sub = await connectClient(tb.url, clientOptions('sub'));
    const inbox = collect(sub);
    await sub.subscribeAsync('q0/t', { qos: 2 });
    const pub = await connectClient(tb.url, clientOptions('pub'));
    await pub.publishAsync('q0/t', 'zero', { qos: 0 });
    const [m] = await inbox.waitFor(1);
    expect(m!.packet.qos).toBe(0);
    expect(m!.packet.dup).toBe(false);
    expect(m!.packet.messageId).toBeUndefined();
  });

  it(`[${spec(version, 'MQTT-4.3.2-2', 'MQTT-4.3.2-4')}] the broker answers a QoS 1 PUBLISH with a PUBACK carrying its packet identifier`, async () => {
    tb = await startBroker();
    const pub = await connectClient(tb.url, clientOptions('pub'));
    const sent: MqttPacket[] = [];
    const received: MqttPacket[] = [];
    pub.on('packetsend', (p) => sent.push(p));
    pub.on('packetreceive', (p) => received.push(p));
    await withTimeout(pub.publishAsync('q1/up', 'one', { qos: 1 }), 5000, 'no PUBACK');
    const publish = sent.filter((p) => p.cmd === 'publish');
    const acks = received.filter((p) => p.cmd === 'puback');
    expect(publish).toHaveLength(1);
    expect(packetIdOf(publish[0])).toBeGreaterThan(0);
    expect(acks.map(packetIdOf)).toEqual([packetIdOf(publish[0])]);
  });

  it(`[${spec(version, 'MQTT-4.3.3-2', 'MQTT-4.3.3-8')}] [${spec(version, 'MQTT-4.3.3-2', 'MQTT-4.3.3-11')}] a QoS 2 PUBLISH from a client runs PUBLISH → PUBREC → PUBREL → PUBCOMP on one packet identifier`, async () => {
    tb = await startBroker();
    const pub = await connectClient(tb.url, clientOptions('pub'));
    const flow: string[] = [];
    const qos2 = new Set(['publish', 'pubrec', 'pubrel', 'pubcomp']);
    pub.on('packetsend', (p) => { if (qos2.has(p.cmd)) flow.push(`send ${p.cmd} ${packetIdOf(p)}`); });
    pub.on('packetreceive', (p) => { if (qos2.has(p.cmd)) flow.push(`receive ${p.cmd} ${packetIdOf(p)}`); });
    await withTimeout(pub.publishAsync('q2/up', 'two', { qos: 2 }), 5000, 'the QoS 2 flow never completed');
    const id = flow[0]?.split(' ')[2];
    expect(flow).toEqual([`send publish ${id}`, `receive pubrec ${id}`, `send pubrel ${id}`, `receive pubcomp ${id}`]);
  });

  it(`[${spec(version, 'MQTT-4.3.3-2', 'MQTT-4.3.3-10')}] a QoS 2 PUBLISH resent before its PUBREL is acknowledged again and delivered once`, async () => {
    tb = await startBroker();
    const sub = await connectClient(tb.url, clientOptions('sub'));
    const inbox = collect(sub);
    await sub.subscribeAsync('q2/dup', { qos: 1 });
    const { client: pub } = await connectRawOk(tb.port, 'raw-pub', version, true);
    const publish: PublishPacket = { type: 'publish', topic: 'q2/dup', payload: Buffer.from('once'), qos: 2, retain: false, dup: false, packetId: 9 };
    pub.send(publish);
    await pub.waitForCount('pubrec', 1);
    pub.send({ ...publish, dup: true });
    const recs = await pub.waitForCount('pubrec', 2);
    expect(recs.map((p) => p.packetId)).toEqual([9, 9]);
    pub.send({ type: 'pubrel', packetId: 9 });
    expect((await pub.waitFor('pubcomp')).packetId).toBe(9);
    await inbox.waitFor(1);
    await flush(sub);
    expect(texts(inbox.messages)).toEqual(['once']);
  });

  it(`[${spec(version, 'MQTT-4.3.2-1', 'MQTT-4.3.2-3')}] a QoS 1 delivery is PUBLISH QoS 1, DUP 0, held by the broker until the subscriber's PUBACK`, async () => {
    tb = await startBroker();
    const { client: sub } = await connectRawOk(tb.port, 'sub', version, false);
    await rawSubscribe(sub, 1, [{ topic: 'q1/down', qos: 1 }]);
    const pub = await connectClient(tb.url, clientOptions('pub'));
    await pub.publishAsync('q1/down', 'one', { qos: 1 });
    const delivery = await sub.waitFor('publish');
    expect(delivery.qos).toBe(1);
    expect(delivery.dup).toBe(false);
    expect(delivery.packetId).toBeGreaterThan(0);
    const session = tb.broker.core.sessions.get('sub')!;
    expect([...session.inflight.keys()]).toEqual([delivery.packetId]);
    sub.send({ type: 'puback', packetId: delivery.packetId! });
    await sub.ping();
    expect(session.inflight.size).toBe(0);
  });

  it(`[${spec(version, 'MQTT-4.3.3-1', 'MQTT-4.3.3-4')}] a QoS 2 delivery is PUBLISH, then PUBREL on the same identifier after PUBREC, held until PUBCOMP`, async () => {
    tb = await startBroker();
    const { client: sub } = await connectRawOk(tb.port, 'sub', version, false);
    await rawSubscribe(sub, 1, [{ topic: 'q2/down', qos: 2 }]);
    const pub = await connectClient(tb.url, clientOptions('pub'));
    await pub.publishAsync('q2/down', 'two', { qos: 2 });
    const delivery = await sub.waitFor('publish');
    expect(delivery.qos).toBe(2);
    expect(delivery.dup).toBe(false);
    const id = delivery.packetId!;
    sub.send({ type: 'pubrec', packetId: id });
    expect((await sub.waitFor('pubrel')).packetId).toBe(id);
    const session = tb.broker.core.sessions.get('sub')!;
    expect(session.inflight.has(id)).toBe(true);
    sub.send({ type: 'pubcomp', packetId: id });
    await sub.ping();
    expect(session.inflight.size).toBe(0);
    // [MQTT-4.3.3-6] (5.0): the PUBLISH is not resent once PUBREL went out.
    expect(sub.all('publish')).toHaveLength(1);
  });

  it(`[${spec(version, 'MQTT-4.3.2-1', 'MQTT-2.2.1-4')}] 1000 QoS 1 deliveries to one subscriber all arrive, each on a packet identifier unused among those in flight`, async () => {
    tb = await startBroker();
    const { client: sub } = await connectRawOk(tb.port, 'sub', version, false);
    await rawSubscribe(sub, 1, [{ topic: 'ids/t', qos: 1 }]);
    const pub = await connectClient(tb.url, clientOptions('pub'));
    const total = 1000;
    const publishing = publishAll(pub, 'ids/t', total, 1);
    const inflight = new Set<number>();
    const clashes: number[] = [];
    let seen = 0;
    while (seen < total) {
      const list = await sub.waitForCount('publish', seen + 1);
      for (const p of list.slice(seen)) {
        const id = p.packetId ?? 0;
        if (id === 0 || inflight.has(id)) clashes.push(id);
        inflight.add(id);
      }
      seen = list.length;
      // Acknowledge in batches so that many identifiers are in flight at once.
      if (inflight.size >= 50 || seen >= total) {
        for (const id of inflight) sub.send({ type: 'puback', packetId: id });
        inflight.clear();
      }
    }
    await publishing;
    await sub.ping();
    expect(clashes).toEqual([]);
    expect(rawTexts(sub)).toEqual(range(total).map(String));
    expect(tb.broker.core.sessions.get('sub')!.inflight.size).toBe(0);
  });

  it.each([
    [2, 1, 1],
    [2, 0, 0],
    [1, 0, 0],
    [1, 2, 1],
  ] as const)(
    `[${spec(version, 'MQTT-3.8.4-6', 'MQTT-3.8.4-8')}] published at QoS %i to a QoS %i subscription is delivered at QoS %i`,
    async (published, granted, delivered) => {
      tb = await startBroker();
      const sub = await connectClient(tb.url, clientOptions('sub'));
      const inbox = collect(sub);
      await sub.subscribeAsync('down/t', { qos: granted });
      const pub = await connectClient(tb.url, clientOptions('pub'));
      await pub.publishAsync('down/t', 'm', { qos: published });
      const [m] = await inbox.waitFor(1);
      expect(m!.packet.qos).toBe(delivered);
    },
  );

  it.each([1, 2] as const)(
    `[${spec(version, 'MQTT-4.6.0-6', 'MQTT-4.6.0-5')}] 500 QoS %i messages from one publisher reach a subscriber in the order published`,
    async (qos) => {
      tb = await startBroker();
      const sub = await connectClient(tb.url, clientOptions('sub'));
      const inbox = collect(sub);
      await sub.subscribeAsync('order/t', { qos });
      const pub = await connectClient(tb.url, clientOptions('pub'));
      await publishAll(pub, 'order/t', 500, qos);
      await inbox.waitFor(500, 10_000);
      expect(inbox.messages.map((m) => Number(m.payload.toString()))).toEqual(range(500));
    },
  );
});

// ------------------------------------------------------------------------------------------------ inflight windows

/**
 * Publishes 20 QoS 1 messages to `sub` (which acknowledges nothing by itself) and checks the broker's window:
 * exactly `window` arrive, one PUBACK releases exactly one more, and while everything is then acknowledged as
 * soon as it is seen, no more than `window` are ever outstanding.
 */
async function expectInflightWindow(t: TestBroker, sub: RawClient, window: number, version: Version): Promise<void> {
  await rawSubscribe(sub, 1, [{ topic: 'window/t', qos: 1 }]);
  const pub = await connectClient(t.url, { protocolVersion: version, clientId: 'pub' });
  const total = 20;
  await publishAll(pub, 'window/t', total, 1);
  await sub.ping();
  expect(sub.all('publish'), 'deliveries before any PUBACK').toHaveLength(window);

  sub.send({ type: 'puback', packetId: sub.all('publish')[0]!.packetId! });
  await sub.waitForCount('publish', window + 1);
  await sub.ping();
  expect(sub.all('publish'), 'deliveries after one PUBACK').toHaveLength(window + 1);

  let acked = 1;
  for (;;) {
    const list = sub.all('publish');
    expect(list.length - acked, 'unacknowledged QoS 1 deliveries').toBeLessThanOrEqual(window);
    for (const p of list.slice(acked)) sub.send({ type: 'puback', packetId: p.packetId! });
    acked = list.length;
    if (acked >= total) break;
    await sub.waitForCount('publish', acked + 1);
  }
  expect(rawTexts(sub)).toEqual(range(total).map(String));
}

describe('inflight windows', () => {
  it("[MQTT-3.3.4-9] never more than a v5 subscriber's Receive Maximum (5) unacknowledged QoS 1 PUBLISH; each PUBACK releases one more", async () => {
    tb = await startBroker();
    const { client: sub } = await connectRawOk(tb.port, 'sub', 5, false, { properties: { receiveMaximum: 5 } });
    await expectInflightWindow(tb, sub, 5, 5);
  });

  it('[MQTT-3.3.4-9] an MQTT.js subscriber declaring receiveMaximum 5 takes a burst of 50 QoS 2 messages without holding more than 5', async () => {
    tb = await startBroker();
    const sub = await connectClient(tb.url, { protocolVersion: 5, clientId: 'sub', properties: { receiveMaximum: 5 } });
    // MQTT.js itself refuses (error 0x93, disconnect) a server that sends more than its Receive Maximum.
    const errors: Error[] = [];
    sub.on('error', (err) => errors.push(err));
    let open = 0;
    let mostOpen = 0;
    sub.on('packetreceive', (p) => {
      if (p.cmd === 'publish' && p.qos === 2) mostOpen = Math.max(mostOpen, ++open);
    });
    sub.on('packetsend', (p) => {
      if (p.cmd === 'pubcomp') open--;
    });
    const inbox = collect(sub);
    await sub.subscribeAsync('window/q2', { qos: 2 });
    const pub = await connectClient(tb.url, { protocolVersion: 5, clientId: 'pub' });
    await publishAll(pub, 'window/q2', 50, 2);
    await inbox.waitFor(50);
    expect(errors).toEqual([]);
    expect(mostOpen).toBeLessThanOrEqual(5);
    expect(texts(inbox.messages)).toEqual(range(50).map(String));
  });

  it('broker option maxInflight (5): never more than 5 unacknowledged QoS 1 PUBLISH to a 3.1.1 subscriber; each PUBACK releases one more', async () => {
    tb = await startBroker({ maxInflight: 5 });
    const { client: sub } = await connectRawOk(tb.port, 'sub', 4, false);
    await expectInflightWindow(tb, sub, 5, 4);
  });

  it('[MQTT-3.3.4-7] a v5 client sending more QoS 2 PUBLISH than our Receive Maximum (2) without PUBREL is disconnected with 0x93', async () => {
    tb = await startBroker({ receiveMaximum: 2 });
    const { client, connack } = await connectRaw(tb.port, { clientId: 'greedy', protocolVersion: 5 });
    expect(connack.properties?.receiveMaximum).toBe(2);
    for (const id of [1, 2, 3]) {
      client.send({ type: 'publish', topic: 'rm/t', payload: Buffer.from(String(id)), qos: 2, retain: false, dup: false, packetId: id });
    }
    expect((await client.waitFor('disconnect')).reasonCode).toBe(0x93);
    expect(client.all('pubrec').map((p) => p.packetId)).toEqual([1, 2]);
    await client.waitClosed();
  });
});

// ------------------------------------------------------------------------------------------------ SUBSCRIBE / UNSUBSCRIBE

describe.each([4, 5] as const)('SUBSCRIBE and UNSUBSCRIBE, MQTT.js protocol %i', (version) => {
  const clientOptions = (clientId: string) => ({ protocolVersion: version, clientId });

  /** Subscribes `filters` on a fresh client, publishes `topics` (each payload is its topic) and returns what arrived. */
  async function deliveredTopics(filters: Record<string, { qos: 0 | 1 | 2 }>, topics: string[]): Promise<string[]> {
    tb = await startBroker();
    const sub = await connectClient(tb.url, clientOptions('sub'));
    const inbox = collect(sub);
    await sub.subscribeAsync(filters);
    const pub = await connectClient(tb.url, clientOptions('pub'));
    for (const topic of topics) await pub.publishAsync(topic, topic, { qos: 1 });
    await flush(sub);
    return inbox.messages.map((m) => m.topic);
  }

  it(`[${spec(version, 'MQTT-4.7.1-3', 'MQTT-4.7.1-2')}] '+' matches exactly one level, an empty level included`, async () => {
    const got = await deliveredTopics({ 'plus/+/end': { qos: 1 } }, ['plus/a/end', 'plus/a/b/end', 'plus/end', 'plus//end', 'plus/a/end/x']);
    expect(got).toEqual(['plus/a/end', 'plus//end']);
  });

  it(`[${spec(version, 'MQTT-4.7.1-2', 'MQTT-4.7.1-1')}] '#' matches the parent level and any number of levels below`, async () => {
    const got = await deliveredTopics({ 'hash/#': { qos: 1 } }, ['hash', 'hash/a', 'hash/a/b/c', 'hashx', 'other/hash']);
    expect(got).toEqual(['hash', 'hash/a', 'hash/a/b/c']);
  });

  it(`[${spec(version, 'MQTT-3.3.5-1', 'MQTT-3.3.4-2')}] overlapping subscriptions of one client get one copy, at the highest matching QoS`, async () => {
    tb = await startBroker();
    const sub = await connectClient(tb.url, clientOptions('sub'));
    const seen = publishPackets(sub);
    const inbox = collect(sub);
    await sub.subscribeAsync({ 'ov/+': { qos: 0 }, 'ov/#': { qos: 2 }, 'ov/a': { qos: 1 } });
    const pub = await connectClient(tb.url, clientOptions('pub'));
    await pub.publishAsync('ov/a', 'x', { qos: 2 });
    await inbox.waitFor(1);
    await flush(sub);
    expect(seen.map((p) => p.qos)).toEqual([2]);
    expect(texts(inbox.messages)).toEqual(['x']);
  });

  it("[MQTT-4.7.2-1] '#' and '+/…' do not match topics beginning with '$' (retained $SYS nor live)", async () => {
    tb = await startBroker({ sysInterval: 3600 });
    expect(tb.broker.core.retained.size, 'the broker retains its $SYS topics').toBeGreaterThan(0);
    const sub = await connectClient(tb.url, clientOptions('sub'));
    const inbox = collect(sub);
    await sub.subscribeAsync({ '#': { qos: 1 }, '+/x': { qos: 1 }, '+/broker/#': { qos: 1 } });
    await flush(sub);
    expect(inbox.messages.map((m) => m.topic), 'retained $SYS messages').toEqual([]);
    const pub = await connectClient(tb.url, clientOptions('pub'));
    await pub.publishAsync('$app/x', 'dollar', { qos: 1 });
    await pub.publishAsync('app/x', 'plain', { qos: 1 });
    await flush(sub);
    expect(inbox.messages.map((m) => m.topic)).toEqual(['app/x']);
  });

  it("[MQTT-4.7.2-1] '$SYS/#' matches the broker's $SYS topics, retained and live", async () => {
    tb = await startBroker({ sysInterval: 1 });
    const sub = await connectClient(tb.url, clientOptions('sub'));
    const live = withTimeout(
      new Promise<string>((resolve) => {
        sub.on('message', (topic, _payload, packet) => { if (!packet.retain) resolve(topic); });
      }),
      5000,
      'no live $SYS update arrived',
    );
    live.catch(() => undefined); // awaited below; this only keeps an early failure from leaving it unhandled
    const inbox = collect(sub);
    await sub.subscribeAsync('$SYS/#', { qos: 0 });
    await inbox.waitFor(1);
    expect(inbox.messages[0]!.packet.retain).toBe(true);
    expect(await live).toMatch(/^\$SYS\/broker\//);
    expect(inbox.messages.map((m) => m.topic)).toContain('$SYS/broker/version');
    expect(inbox.messages.every((m) => m.topic.startsWith('$SYS/broker/'))).toBe(true);
  });

  it(`[${spec(version, 'MQTT-3.8.4-5', 'MQTT-3.8.4-6')}] invalid filters get SUBACK ${version === 5 ? '0x8F' : '0x80'} while the valid ones in the same SUBSCRIBE are granted`, async () => {
    tb = await startBroker();
    const { client: raw } = await connectRawOk(tb.port, 'raw', version, true);
    const suback = await rawSubscribe(raw, 7, [
      { topic: 'ok/+', qos: 1 },
      { topic: 'bad/#/x', qos: 1 },
      { topic: 'bad+', qos: 0 },
      { topic: 'ok/#', qos: 2 },
    ]);
    const refused = version === 5 ? 0x8f : 0x80;
    expect(suback.reasonCodes).toEqual([1, refused, refused, 2]);
    // The granted ones are in force.
    raw.send({ type: 'publish', topic: 'ok/go', payload: Buffer.from('in'), qos: 0, retain: false, dup: false });
    const delivery = await raw.waitFor('publish');
    expect(delivery.topic).toBe('ok/go');
    expect(delivery.qos).toBe(0);
  });

  it('[MQTT-3.10.4-2] after UNSUBSCRIBE no new message is delivered for that filter', async () => {
    tb = await startBroker();
    const sub = await connectClient(tb.url, clientOptions('sub'));
    const inbox = collect(sub);
    await sub.subscribeAsync('un/t', { qos: 1 });
    const pub = await connectClient(tb.url, clientOptions('pub'));
    await pub.publishAsync('un/t', 'before', { qos: 1 });
    await inbox.waitFor(1);
    await sub.unsubscribeAsync('un/t');
    await pub.publishAsync('un/t', 'after', { qos: 1 });
    await flush(sub);
    expect(texts(inbox.messages)).toEqual(['before']);
  });
});

describe('SUBSCRIBE and UNSUBSCRIBE, MQTT.js protocol 5 only', () => {
  it('[MQTT-3.3.4-3] one copy for overlapping subscriptions carries every matching subscription identifier', async () => {
    tb = await startBroker();
    const sub = await connectClient(tb.url, { protocolVersion: 5, clientId: 'sub' });
    const inbox = collect(sub);
    const subscriptions: Array<[string, number]> = [['sid/+', 1], ['sid/#', 2], ['sid/a', 3], ['elsewhere/#', 4]];
    for (const [filter, id] of subscriptions) {
      await sub.subscribeAsync(filter, { qos: 1, properties: { subscriptionIdentifier: id } });
    }
    const pub = await connectClient(tb.url, { protocolVersion: 5, clientId: 'pub' });
    await pub.publishAsync('sid/a', 'x', { qos: 1 });
    await flush(sub);
    expect(inbox.messages).toHaveLength(1);
    const ids = [inbox.messages[0]!.packet.properties?.subscriptionIdentifier ?? []].flat();
    expect(ids.sort()).toEqual([1, 2, 3]);
  });

  it('[MQTT-3.11.3-1] [MQTT-3.11.3-2] UNSUBACK reports 0x11 for a filter that was not subscribed and 0x00 for one removed, in order', async () => {
    tb = await startBroker();
    const sub = await connectClient(tb.url, { protocolVersion: 5, clientId: 'sub' });
    await sub.subscribeAsync('un/a', { qos: 1 });
    const ack = await withTimeout(sub.unsubscribeAsync(['never/subscribed', 'un/a']), 5000, 'no UNSUBACK');
    expect(ack?.cmd === 'unsuback' ? ack.granted : ack).toEqual([0x11, 0x00]);
  });
});

// ------------------------------------------------------------------------------------------------ shared subscriptions

describe.each([4, 5] as const)('shared subscriptions ($share, as MQTT 5.0 4.8.2 defines them), MQTT.js protocol %i', (version) => {
  const clientOptions = (clientId: string) => ({ protocolVersion: version, clientId });

  it('(4.8.2) each message goes to exactly one member of the group', async () => {
    tb = await startBroker();
    const a = await connectClient(tb.url, clientOptions('member-a'));
    const b = await connectClient(tb.url, clientOptions('member-b'));
    const inboxA = collect(a);
    const inboxB = collect(b);
    await a.subscribeAsync('$share/g/work', { qos: 1 });
    await b.subscribeAsync('$share/g/work', { qos: 1 });
    const pub = await connectClient(tb.url, clientOptions('pub'));
    await publishAll(pub, 'work', 100, 1);
    await flush(a);
    await flush(b);
    const got = [...texts(inboxA.messages), ...texts(inboxB.messages)];
    expect(got.sort()).toEqual(range(100).map(String).sort());
    expect(inboxA.messages.length, 'member-a got a share').toBeGreaterThan(0);
    expect(inboxB.messages.length, 'member-b got a share').toBeGreaterThan(0);
  });

  it('(4.8.2) every group gets each message once', async () => {
    tb = await startBroker();
    const members = await Promise.all(['g1-a', 'g1-b', 'g2-a'].map((id) => connectClient(tb!.url, clientOptions(id))));
    const inboxes = members.map((m) => collect(m));
    await members[0]!.subscribeAsync('$share/g1/work', { qos: 1 });
    await members[1]!.subscribeAsync('$share/g1/work', { qos: 1 });
    await members[2]!.subscribeAsync('$share/g2/work', { qos: 1 });
    const pub = await connectClient(tb.url, clientOptions('pub'));
    await publishAll(pub, 'work', 30, 1);
    for (const m of members) await flush(m);
    const all = range(30).map(String).sort();
    expect([...texts(inboxes[0]!.messages), ...texts(inboxes[1]!.messages)].sort(), 'group g1').toEqual(all);
    expect(texts(inboxes[2]!.messages).sort(), 'group g2').toEqual(all);
  });

  it('(4.8.2) QoS 1 messages a member leaves unacknowledged when it disconnects go to another member', async () => {
    tb = await startBroker();
    const { client: raw } = await connectRawOk(tb.port, 'member-raw', version, false);
    await rawSubscribe(raw, 1, [{ topic: '$share/g/jobs', qos: 1 }]);
    const js = await connectClient(tb.url, clientOptions('member-js'));
    const inbox = collect(js);
    await js.subscribeAsync('$share/g/jobs', { qos: 1 });
    const pub = await connectClient(tb.url, clientOptions('pub'));
    await publishAll(pub, 'jobs', 10, 1);
    await raw.ping();
    expect(raw.all('publish').length, 'the raw member holds unacknowledged messages').toBeGreaterThan(0);
    raw.destroy();
    await inbox.waitFor(10);
    await flush(js);
    expect(texts(inbox.messages).sort()).toEqual(range(10).map(String).sort());
  });
});

describe('shared subscriptions, MQTT.js protocol 5 only', () => {
  it('[MQTT-3.8.3-4] No Local on a shared subscription is a protocol error: DISCONNECT 0x82', async () => {
    tb = await startBroker();
    const sub = await connectClient(tb.url, { protocolVersion: 5, clientId: 'sub' });
    const disconnect = withTimeout(
      new Promise<number | undefined>((resolve) => sub.once('disconnect', (p) => resolve(p.reasonCode))),
      5000,
      'the broker sent no DISCONNECT',
    );
    sub.subscribeAsync('$share/g/nl', { qos: 1, nl: true }).catch(() => undefined);
    expect(await disconnect).toBe(0x82);
  });

  it('(4.8.2) QoS 1 messages a persistent member leaves unacknowledged go to another persistent member', async () => {
    tb = await startBroker();
    const persistent = { properties: { sessionExpiryInterval: 300 } };
    const { client: raw } = await connectRawOk(tb.port, 'member-raw', 5, false, persistent);
    await rawSubscribe(raw, 1, [{ topic: '$share/g/jobs', qos: 1 }]);
    const js = await connectClient(tb.url, { protocolVersion: 5, clientId: 'member-js', ...persistent });
    const inbox = collect(js);
    await js.subscribeAsync('$share/g/jobs', { qos: 1 });
    const pub = await connectClient(tb.url, { protocolVersion: 5, clientId: 'pub' });
    await publishAll(pub, 'jobs', 10, 1);
    await raw.ping();
    expect(raw.all('publish').length, 'the raw member holds unacknowledged messages').toBeGreaterThan(0);
    raw.destroy();
    await inbox.waitFor(10);
    await flush(js);
    expect(texts(inbox.messages).sort()).toEqual(range(10).map(String).sort());
  });

  it("[MQTT-4.8.2-3] a message handed over from a departed member is delivered at the new member's granted QoS", async () => {
    tb = await startBroker();
    const { client: raw } = await connectRawOk(tb.port, 'member-raw', 5, false);
    await rawSubscribe(raw, 1, [{ topic: '$share/g/jobs', qos: 1 }]);
    const js = await connectClient(tb.url, { protocolVersion: 5, clientId: 'member-js' });
    const inbox = collect(js);
    await js.subscribeAsync('$share/g/jobs', { qos: 0 });
    const pub = await connectClient(tb.url, { protocolVersion: 5, clientId: 'pub' });
    await publishAll(pub, 'jobs', 10, 1);
    await raw.ping();
    expect(raw.all('publish').length, 'the raw member holds unacknowledged messages').toBeGreaterThan(0);
    raw.destroy();
    await inbox.waitFor(10);
    expect(inbox.messages.map((m) => m.packet.qos)).toEqual(range(10).map(() => 0));
  });

  it("[MQTT-3.3.4-3] a message handed over from a departed member carries the new member's subscription identifier", async () => {
    tb = await startBroker();
    const { client: raw } = await connectRawOk(tb.port, 'member-raw', 5, false);
    await rawSubscribe(raw, 1, [{ topic: '$share/g/jobs', qos: 1 }], { subscriptionIdentifiers: [7] });
    const js = await connectClient(tb.url, { protocolVersion: 5, clientId: 'member-js' });
    const inbox = collect(js);
    await js.subscribeAsync('$share/g/jobs', { qos: 1, properties: { subscriptionIdentifier: 42 } });
    const pub = await connectClient(tb.url, { protocolVersion: 5, clientId: 'pub' });
    await publishAll(pub, 'jobs', 10, 1);
    await raw.ping();
    expect(raw.all('publish').length, 'the raw member holds unacknowledged messages').toBeGreaterThan(0);
    raw.destroy();
    await inbox.waitFor(10);
    expect(inbox.messages.map((m) => m.packet.properties?.subscriptionIdentifier)).toEqual(range(10).map(() => 42));
  });

  it('[MQTT-4.8.2-5] a QoS 2 message in flight to a member whose session ends is not sent to another member', async () => {
    tb = await startBroker();
    const { client: a } = await connectRawOk(tb.port, 'member-a', 5, false);
    await rawSubscribe(a, 1, [{ topic: '$share/g/q2', qos: 2 }]);
    const { client: b } = await connectRawOk(tb.port, 'member-b', 5, true);
    await rawSubscribe(b, 1, [{ topic: '$share/g/q2', qos: 2 }]);
    const pub = await connectClient(tb.url, { protocolVersion: 5, clientId: 'pub' });
    await publishAll(pub, 'q2', 4, 2);
    await a.ping();
    const heldByA = rawTexts(a);
    expect(heldByA.length, 'member-a holds QoS 2 messages without PUBREC').toBeGreaterThan(0);
    const gone = brokerSawDisconnect(tb, 'member-a');
    a.destroy();
    await gone;
    await b.ping();
    const gotByB = rawTexts(b);
    expect(gotByB.filter((p) => heldByA.includes(p))).toEqual([]);
    expect([...heldByA, ...gotByB].sort()).toEqual(range(4).map(String));
  });

  it('[MQTT-4.8.2-4] a QoS 2 message in flight to a member whose connection breaks is completed with that member when it reconnects', async () => {
    tb = await startBroker();
    const persistent = { properties: { sessionExpiryInterval: 300 } };
    const { client: a } = await connectRawOk(tb.port, 'member-a', 5, false, persistent);
    await rawSubscribe(a, 1, [{ topic: '$share/g/q2', qos: 2 }]);
    const { client: b } = await connectRawOk(tb.port, 'member-b', 5, true);
    await rawSubscribe(b, 1, [{ topic: '$share/g/q2', qos: 2 }]);
    const pub = await connectClient(tb.url, { protocolVersion: 5, clientId: 'pub' });
    await publishAll(pub, 'q2', 4, 2);
    await a.ping();
    const held = a.all('publish');
    expect(held.length, 'member-a holds QoS 2 messages without PUBREC').toBeGreaterThan(0);
    const gone = brokerSawDisconnect(tb, 'member-a');
    a.destroy();
    await gone;
    await b.ping();
    expect(rawTexts(b).filter((p) => held.some((h) => h.payload.toString() === p)), 'sent to member-b').toEqual([]);

    const { client: back, sessionPresent } = await connectRawOk(tb.port, 'member-a', 5, true, { ...persistent, clean: false });
    expect(sessionPresent).toBe(true);
    const resent = await back.waitForCount('publish', held.length);
    expect(resent.map((p) => [p.packetId, p.payload.toString(), p.dup])).toEqual(held.map((p) => [p.packetId, p.payload.toString(), true]));
  });

  it('[MQTT-4.4.0-1] the only member of a group keeps its unacknowledged QoS 1 messages in its session and gets them again on reconnect', async () => {
    tb = await startBroker();
    const persistent = { properties: { sessionExpiryInterval: 300 } };
    const { client: a } = await connectRawOk(tb.port, 'solo', 5, false, persistent);
    await rawSubscribe(a, 1, [{ topic: '$share/g/solo', qos: 1 }]);
    const pub = await connectClient(tb.url, { protocolVersion: 5, clientId: 'pub' });
    await publishAll(pub, 'solo', 3, 1);
    const held = await a.waitForCount('publish', 3);
    const gone = brokerSawDisconnect(tb, 'solo');
    a.destroy();
    await gone;

    const { client: back, sessionPresent } = await connectRawOk(tb.port, 'solo', 5, true, { ...persistent, clean: false });
    expect(sessionPresent).toBe(true);
    const resent = await back.waitForCount('publish', 3);
    expect(resent.map((p) => [p.packetId, p.payload.toString(), p.dup])).toEqual(held.map((p) => [p.packetId, p.payload.toString(), true]));
  });
});

// ------------------------------------------------------------------------------------------------ retained messages

describe.each([4, 5] as const)('retained messages, MQTT.js protocol %i', (version) => {
  const clientOptions = (clientId: string) => ({ protocolVersion: version, clientId });

  let retainers = 0;
  async function publishRetained(topic: string, payload: string, qos: 0 | 1 | 2 = 1): Promise<void> {
    const pub = await connectClient(tb!.url, clientOptions(`retainer-${++retainers}`));
    await pub.publishAsync(topic, payload, { qos, retain: true });
    // A QoS 0 PUBLISH has no acknowledgement: a round trip on the same connection shows it was handled.
    if (qos === 0) await flush(pub);
  }

  it(`[MQTT-3.3.1-5] [${spec(version, 'MQTT-3.3.1-8', 'MQTT-3.3.1-9')}] a retained message is stored and sent to a new subscription with RETAIN 1`, async () => {
    tb = await startBroker();
    await publishRetained('ret/a', 'kept');
    const sub = await connectClient(tb.url, clientOptions('sub'));
    const inbox = collect(sub);
    await sub.subscribeAsync('ret/#', { qos: 1 });
    const [m] = await inbox.waitFor(1);
    expect(m!.topic).toBe('ret/a');
    expect(m!.payload.toString()).toBe('kept');
    expect(m!.packet.retain).toBe(true);
  });

  it('[MQTT-3.3.1-5] a newer retained message replaces the one kept for its topic', async () => {
    tb = await startBroker();
    await publishRetained('ret/a', 'old');
    await publishRetained('ret/a', 'new');
    const sub = await connectClient(tb.url, clientOptions('sub'));
    const inbox = collect(sub);
    await sub.subscribeAsync('ret/a', { qos: 1 });
    await inbox.waitFor(1);
    await flush(sub);
    expect(texts(inbox.messages)).toEqual(['new']);
  });

  it(`[${spec(version, 'MQTT-3.3.1-10', 'MQTT-3.3.1-6')}] [${spec(version, 'MQTT-3.3.1-11', 'MQTT-3.3.1-7')}] an empty retained payload clears the topic: a later subscriber gets nothing`, async () => {
    tb = await startBroker();
    await publishRetained('ret/a', 'kept');
    await publishRetained('ret/a', '');
    expect(tb.broker.core.retained.has('ret/a')).toBe(false);
    const sub = await connectClient(tb.url, clientOptions('sub'));
    const inbox = collect(sub);
    await sub.subscribeAsync('ret/#', { qos: 1 });
    await flush(sub);
    expect(inbox.messages).toEqual([]);
  });

  it(`[${spec(version, 'MQTT-3.3.1-9', 'MQTT-3.3.1-12')}] a retained message forwarded to an existing subscription has RETAIN 0`, async () => {
    tb = await startBroker();
    const sub = await connectClient(tb.url, clientOptions('sub'));
    const inbox = collect(sub);
    await sub.subscribeAsync('ret/a', { qos: 1 });
    await publishRetained('ret/a', 'live');
    const [m] = await inbox.waitFor(1);
    expect(m!.payload.toString()).toBe('live');
    expect(m!.packet.retain).toBe(false);
  });

  it(`[${spec(version, 'MQTT-3.8.4-3', 'MQTT-3.8.4-4')}] subscribing again to the same filter sends the retained message again`, async () => {
    tb = await startBroker();
    await publishRetained('ret/a', 'kept');
    const sub = await connectClient(tb.url, clientOptions('sub'));
    const inbox = collect(sub);
    await sub.subscribeAsync('ret/a', { qos: 1 });
    await inbox.waitFor(1);
    await sub.subscribeAsync('ret/a', { qos: 1 });
    const got = await inbox.waitFor(2);
    expect(got.map((m) => [m.payload.toString(), m.packet.retain])).toEqual([['kept', true], ['kept', true]]);
  });

  it.each([
    [2, 1, 1],
    [1, 0, 0],
    [0, 2, 0],
  ] as const)(
    `[${spec(version, 'MQTT-3.8.4-6', 'MQTT-3.8.4-8')}] a QoS %i retained message is sent to a QoS %i subscription at QoS %i`,
    async (published, granted, delivered) => {
      tb = await startBroker();
      await publishRetained('ret/q', 'kept', published);
      const sub = await connectClient(tb.url, clientOptions('sub'));
      const inbox = collect(sub);
      await sub.subscribeAsync('ret/q', { qos: granted });
      const [m] = await inbox.waitFor(1);
      expect(m!.packet.retain).toBe(true);
      expect(m!.packet.qos).toBe(delivered);
    },
  );
});

describe('retained messages, MQTT.js protocol 5 only', () => {
  const v5 = (clientId: string) => ({ protocolVersion: 5 as const, clientId });

  let retainers = 0;
  async function publishRetained(topic: string, payload: string): Promise<void> {
    const pub = await connectClient(tb!.url, v5(`retainer-${++retainers}`));
    await pub.publishAsync(topic, payload, { qos: 1, retain: true });
  }

  it('[MQTT-3.3.1-13] with Retain As Published, a message forwarded to an existing subscription keeps RETAIN 1', async () => {
    tb = await startBroker();
    const sub = await connectClient(tb.url, v5('sub'));
    const inbox = collect(sub);
    await sub.subscribeAsync('ret/a', { qos: 1, rap: true });
    await publishRetained('ret/a', 'live');
    const [m] = await inbox.waitFor(1);
    expect(m!.packet.retain).toBe(true);
  });

  it('[MQTT-3.3.1-9] Retain Handling 0 sends the retained message on every SUBSCRIBE, re-subscriptions included', async () => {
    tb = await startBroker();
    await publishRetained('ret/a', 'kept');
    const sub = await connectClient(tb.url, v5('sub'));
    const inbox = collect(sub);
    await sub.subscribeAsync('ret/a', { qos: 1, rh: 0 });
    await inbox.waitFor(1);
    await sub.subscribeAsync('ret/a', { qos: 1, rh: 0 });
    await inbox.waitFor(2);
    await flush(sub);
    expect(inbox.messages.map((m) => m.packet.retain)).toEqual([true, true]);
  });

  it('[MQTT-3.3.1-10] Retain Handling 1 sends the retained message for a new subscription only, not when re-subscribing', async () => {
    tb = await startBroker();
    await publishRetained('ret/a', 'kept');
    const sub = await connectClient(tb.url, v5('sub'));
    const inbox = collect(sub);
    await sub.subscribeAsync('ret/a', { qos: 1, rh: 1 });
    await inbox.waitFor(1);
    await sub.subscribeAsync('ret/a', { qos: 1, rh: 1 });
    await flush(sub);
    expect(texts(inbox.messages)).toEqual(['kept']);
  });

  it('[MQTT-3.3.1-11] Retain Handling 2 never sends retained messages on SUBSCRIBE', async () => {
    tb = await startBroker();
    await publishRetained('ret/a', 'kept');
    const sub = await connectClient(tb.url, v5('sub'));
    const inbox = collect(sub);
    await sub.subscribeAsync('ret/a', { qos: 1, rh: 2 });
    await flush(sub);
    expect(inbox.messages).toEqual([]);
  });

  it('(3.3.1.3) retained messages are not sent for a shared subscription', async () => {
    tb = await startBroker();
    await publishRetained('ret/a', 'kept');
    const sub = await connectClient(tb.url, v5('sub'));
    const inbox = collect(sub);
    await sub.subscribeAsync('$share/g/ret/#', { qos: 1 });
    await flush(sub);
    expect(inbox.messages).toEqual([]);
  });
});
