/**
 * MQTT 5 features and broker limits, checked against a real broker on port 0: topic aliases both ways,
 * message expiry, no-local, forwarded properties, reason codes and strings, maximum packet size,
 * assigned client identifiers, offline queue limits, slow consumers and $SYS topics.
 *
 * Where MQTT.js would resolve or hide what is on the wire (aliases, property order, reason strings,
 * packet sizes), a raw client (test/helpers/raw-client.ts) sends and records exact packets.
 */
import type { IPublishPacket } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { PublishPacket, QoS } from '../../../protocol/packets.js';
import { closeAllClients, collect, connectClient, startBroker, withTimeout, type TestBroker } from '../../helpers/broker.js';
import { closeAllRawClients, connectRaw, type RawClient } from '../../helpers/raw-client.js';
import { waitUntil } from '../../helpers/wait.js';

let tb: TestBroker | undefined;
afterEach(async () => {
  closeAllRawClients();
  await closeAllClients();
  await tb?.close();
  tb = undefined;
});

async function broker(options: Parameters<typeof startBroker>[0] = {}): Promise<TestBroker> {
  tb = await startBroker(options);
  return tb;
}

function publishPacket(topic: string, payload: string | Buffer, qos: QoS, extra: Partial<PublishPacket> = {}): PublishPacket {
  return {
    type: 'publish', topic, payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), qos, retain: false, dup: false,
    ...(qos > 0 ? { packetId: 1 } : {}), ...extra,
  };
}

async function subscribeRaw(client: RawClient, topic: string, qos: QoS, packetId = 1): Promise<void> {
  client.send({ type: 'subscribe', packetId, subscriptions: [{ topic, qos }] });
  const suback = await client.waitFor('suback', (p) => p.packetId === packetId);
  expect(suback.reasonCodes).toEqual([qos]);
}

/** Resolves when the broker has detached `clientId` from its session (the connection is gone). */
function clientGone(t: TestBroker, clientId: string, ms = 5000): Promise<void> {
  let listener: (id: string) => void = () => {};
  return withTimeout(
    new Promise<void>((resolve) => {
      listener = (id) => {
        if (id === clientId) resolve();
      };
      t.broker.events.on('clientDisconnected', listener);
    }),
    ms,
    `the broker never saw ${clientId} disconnect`,
  ).finally(() => t.broker.events.off('clientDisconnected', listener));
}

/** Sends DISCONNECT and closes the socket, then waits until the broker has let go of the client. */
async function disconnectRaw(t: TestBroker, client: RawClient, clientId: string): Promise<void> {
  const gone = clientGone(t, clientId);
  client.send({ type: 'disconnect' });
  client.socket.end();
  await gone;
}

const text = (p: { payload: Buffer }): string => p.payload.toString();

// ------------------------------------------------------------------------------------------------

describe('MQTT 5 topic aliases', () => {
  it('[MQTT-3.3.2-12] accepts an inbound alias: set with the topic name, then used with an empty topic name', async () => {
    const t = await broker({ topicAliasMaximum: 4 });
    const sub = await connectClient(t.url, { protocolVersion: 5, clientId: 'alias-in-sub' });
    const inbox = collect(sub);
    await sub.subscribeAsync('alias/in', { qos: 1 });
    const pub = await connectClient(t.url, { protocolVersion: 5, clientId: 'alias-in-pub' });
    const sent: IPublishPacket[] = [];
    pub.on('packetsend', (p) => {
      if (p.cmd === 'publish') sent.push(p);
    });

    await pub.publishAsync('alias/in', 'first', { qos: 1, properties: { topicAlias: 1 } });
    await pub.publishAsync('', 'second', { qos: 1, properties: { topicAlias: 1 } });

    // The second PUBLISH really went out with an empty topic name and the alias alone.
    expect(sent.map((p) => [p.topic, p.properties?.topicAlias])).toEqual([['alias/in', 1], ['', 1]]);
    const received = await inbox.waitFor(2);
    expect(received.map((m) => [m.topic, text(m)])).toEqual([['alias/in', 'first'], ['alias/in', 'second']]);
  });

  it('[MQTT-3.3.2-9] a topic alias above our Topic Alias Maximum is answered with DISCONNECT 0x94', async () => {
    const t = await broker({ topicAliasMaximum: 2 });
    const { client, connack } = await connectRaw(t.port, { clientId: 'alias-over' });
    expect(connack.properties?.topicAliasMaximum).toBe(2);

    client.send(publishPacket('alias/over', 'x', 0, { properties: { topicAlias: 3 } }));

    const disconnect = await client.waitFor('disconnect');
    expect(disconnect.reasonCode).toBe(0x94);
    await client.waitClosed();
  });

  it('[MQTT-3.3.2-11] outbound aliases: the first delivery carries topic and alias, later ones the alias and an empty topic', async () => {
    const t = await broker();
    const { client: sub } = await connectRaw(t.port, { clientId: 'alias-out-sub', properties: { topicAliasMaximum: 2 } });
    await subscribeRaw(sub, 'alias/out/#', 0);
    const pub = await connectClient(t.url, { protocolVersion: 5, clientId: 'alias-out-pub' });

    for (const n of ['1', '2', '3']) await pub.publishAsync('alias/out/a', n, { qos: 1 });

    const delivered = await sub.waitForCount('publish', 3);
    expect(delivered.map((p) => [p.topic, p.properties?.topicAlias, text(p)])).toEqual([
      ['alias/out/a', 1, '1'],
      ['', 1, '2'],
      ['', 1, '3'],
    ]);
  });

  it('[MQTT-3.1.2-26] the broker never uses more aliases than the subscriber\'s Topic Alias Maximum', async () => {
    const t = await broker();
    const { client: sub } = await connectRaw(t.port, { clientId: 'alias-max-sub', properties: { topicAliasMaximum: 1 } });
    await subscribeRaw(sub, 'alias/max/#', 0);
    const pub = await connectClient(t.url, { protocolVersion: 5, clientId: 'alias-max-pub' });

    for (const topic of ['alias/max/a', 'alias/max/b', 'alias/max/a', 'alias/max/b']) await pub.publishAsync(topic, 'x', { qos: 1 });

    const delivered = await sub.waitForCount('publish', 4);
    expect(delivered.map((p) => [p.topic, p.properties?.topicAlias])).toEqual([
      ['alias/max/a', 1],
      ['alias/max/b', undefined],
      ['', 1],
      ['alias/max/b', undefined],
    ]);
  });

  it('[MQTT-3.1.2-27] no topic aliases are sent to a client that announced no Topic Alias Maximum', async () => {
    const t = await broker();
    const { client: sub } = await connectRaw(t.port, { clientId: 'alias-none-sub' });
    await subscribeRaw(sub, 'alias/none', 0);
    const pub = await connectClient(t.url, { protocolVersion: 5, clientId: 'alias-none-pub' });

    for (const n of ['1', '2']) await pub.publishAsync('alias/none', n, { qos: 1 });

    const delivered = await sub.waitForCount('publish', 2);
    expect(delivered.map((p) => [p.topic, p.properties?.topicAlias])).toEqual([['alias/none', undefined], ['alias/none', undefined]]);
  });
});

describe('MQTT 5 message expiry', () => {
  it('[MQTT-3.3.2-6] the forwarded Message Expiry Interval is what remains of the published one', async () => {
    const t = await broker();
    const sub = await connectClient(t.url, { protocolVersion: 5, clientId: 'expiry-sub' });
    const inbox = collect(sub);
    await sub.subscribeAsync('expiry/t', { qos: 1 });
    const pub = await connectClient(t.url, { protocolVersion: 5, clientId: 'expiry-pub' });

    await pub.publishAsync('expiry/t', 'soon stale', { qos: 1, properties: { messageExpiryInterval: 60 } });

    const [m] = await inbox.waitFor(1);
    const remaining = m!.packet.properties?.messageExpiryInterval;
    expect(remaining).toBeGreaterThanOrEqual(59);
    expect(remaining).toBeLessThanOrEqual(60);
  });

  it('[MQTT-3.3.2-5] a message that expires while queued for an offline session is not delivered and is counted', async () => {
    const t = await broker();
    const persistent = { clientId: 'expiry-offline', clean: false, properties: { sessionExpiryInterval: 300 } };
    const first = await connectRaw(t.port, persistent);
    await subscribeRaw(first.client, 'expiry/offline', 1);
    await disconnectRaw(t, first.client, 'expiry-offline');

    const pub = await connectClient(t.url, { protocolVersion: 5, clientId: 'expiry-offline-pub' });
    await pub.publishAsync('expiry/offline', 'short-lived', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await pub.publishAsync('expiry/offline', 'durable', { qos: 1 });
    const session = t.broker.core.sessions.get('expiry-offline')!;
    expect(session.pendingCount).toBe(2);
    const expiresAt = session.peekPending()!.message.expiresAt!;
    await waitUntil(() => t.broker.core.now() >= expiresAt, 3000, 'the queued message never reached its expiry time');

    const second = await connectRaw(t.port, persistent);
    expect(second.connack.sessionPresent).toBe(true);
    await second.client.waitForCount('publish', 1);
    await second.client.ping();

    expect(second.client.all('publish').map(text)).toEqual(['durable']);
    expect(t.broker.metrics.dropped.expired).toBe(1);
  });
});

describe('MQTT 5 subscription options and forwarded properties', () => {
  it('[MQTT-3.8.3-3] no-local: a client\'s own publication is not forwarded to its no-local subscription', async () => {
    const t = await broker();
    const self = await connectClient(t.url, { protocolVersion: 5, clientId: 'nl-self' });
    const selfInbox = collect(self);
    await self.subscribeAsync('nl/t', { qos: 1, nl: true });
    await self.subscribeAsync('nl/marker', { qos: 1 });
    const other = await connectClient(t.url, { protocolVersion: 5, clientId: 'nl-other' });
    const otherInbox = collect(other);
    await other.subscribeAsync('nl/t', { qos: 1 });

    await self.publishAsync('nl/t', 'own', { qos: 1 });
    await self.publishAsync('nl/marker', 'after', { qos: 1 });

    // The marker is routed after 'own' on the same session, so 'own' would have arrived first.
    await selfInbox.waitFor(1);
    expect(selfInbox.messages.map((m) => m.topic)).toEqual(['nl/marker']);
    const [seen] = await otherInbox.waitFor(1);
    expect(text(seen!)).toBe('own');
  });

  it('[MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20] properties are forwarded unaltered and in order', async () => {
    const t = await broker();
    const { client: sub } = await connectRaw(t.port, { clientId: 'props-sub' });
    await subscribeRaw(sub, 'props/t', 1);
    const pub = await connectClient(t.url, { protocolVersion: 5, clientId: 'props-pub' });

    await pub.publishAsync('props/t', '{"v":1}', {
      qos: 1,
      properties: {
        payloadFormatIndicator: true,
        contentType: 'application/json',
        responseTopic: 'props/reply',
        correlationData: Buffer.from([0x00, 0x01, 0xfe, 0xff]),
        userProperties: { zeta: '1', alpha: ['2', '3'] },
      },
    });

    const delivered = await sub.waitFor('publish');
    expect(delivered.properties).toEqual({
      payloadFormatIndicator: 1,
      contentType: 'application/json',
      responseTopic: 'props/reply',
      correlationData: Buffer.from([0x00, 0x01, 0xfe, 0xff]),
      userProperties: [['zeta', '1'], ['alpha', '2'], ['alpha', '3']],
    });
    expect(text(delivered)).toBe('{"v":1}');
  });
});

describe('MQTT 5 reason codes and reason strings', () => {
  it('3.4.2.1 a QoS 1 PUBLISH nobody subscribed to is answered with PUBACK 0x10 (No matching subscribers)', async () => {
    const t = await broker();
    const { client } = await connectRaw(t.port, { clientId: 'nobody-listens' });

    client.send(publishPacket('nobody/home', 'hello?', 1, { packetId: 7 }));

    const puback = await client.waitFor('puback');
    expect(puback.packetId).toBe(7);
    expect(puback.reasonCode).toBe(0x10);
  });

  it('[MQTT-3.1.2-29] a DISCONNECT for a protocol error carries a Reason String when problem information is requested (default)', async () => {
    const t = await broker({ topicAliasMaximum: 2 });
    const { client } = await connectRaw(t.port, { clientId: 'problem-info-default' });

    client.send(publishPacket('alias/over', 'x', 0, { properties: { topicAlias: 9 } }));

    const disconnect = await client.waitFor('disconnect');
    expect(disconnect.reasonCode).toBe(0x94);
    expect(disconnect.properties?.reasonString).toMatch(/topic alias 9/);
  });

  it('[MQTT-3.1.2-29] Request Problem Information 0: the refusing DISCONNECT carries no Reason String', async () => {
    const t = await broker({ topicAliasMaximum: 2 });
    const { client } = await connectRaw(t.port, { clientId: 'problem-info-off', properties: { requestProblemInformation: 0 } });

    client.send(publishPacket('alias/over', 'x', 0, { properties: { topicAlias: 9 } }));

    const disconnect = await client.waitFor('disconnect');
    expect(disconnect.reasonCode).toBe(0x94);
    expect(disconnect.properties?.reasonString).toBeUndefined();
  });

  it('[MQTT-3.1.2-29] a refusing CONNACK carries a Reason String when problem information is requested (default)', async () => {
    const t = await broker();
    const { client, connack } = await connectRaw(t.port, { clientId: 'refused-default', properties: { authenticationMethod: 'SCRAM-SHA-256' } });

    expect(connack.reasonCode).toBe(0x8c);
    expect(connack.properties?.reasonString).toEqual(expect.any(String));
    await client.waitClosed();
  });

  it('[MQTT-3.1.2-29] Request Problem Information 0: the refusing CONNACK carries no Reason String', async () => {
    const t = await broker();
    const { client, connack } = await connectRaw(t.port, {
      clientId: 'refused-quiet', properties: { authenticationMethod: 'SCRAM-SHA-256', requestProblemInformation: 0 },
    });

    expect(connack.reasonCode).toBe(0x8c);
    expect(connack.properties?.reasonString).toBeUndefined();
    await client.waitClosed();
  });
});

describe('MQTT 5 maximum packet size', () => {
  it('[MQTT-3.2.2-15] a PUBLISH larger than our Maximum Packet Size is answered with DISCONNECT 0x95', async () => {
    const t = await broker({ maxPacketSize: 1024 });
    const { client, connack } = await connectRaw(t.port, { clientId: 'too-big-in' });
    expect(connack.properties?.maximumPacketSize).toBe(1024);

    client.send(publishPacket('big/in', Buffer.alloc(2000, 0x61), 1));

    const disconnect = await client.waitFor('disconnect');
    expect(disconnect.reasonCode).toBe(0x95);
    await client.waitClosed();
  });

  it('[MQTT-3.1.2-24] [MQTT-3.1.2-25] a client announcing Maximum Packet Size 100 never receives a bigger packet; the big message is dropped and counted', async () => {
    const t = await broker();
    // The raw client's parser refuses anything over 100 bytes, so a bigger packet on the wire fails the test.
    const { client: sub } = await connectRaw(t.port, { clientId: 'small-sub', properties: { maximumPacketSize: 100 } }, { maxPacketSize: 100 });
    await subscribeRaw(sub, 'big/out', 1);
    const pub = await connectClient(t.url, { protocolVersion: 5, clientId: 'big-pub' });

    await pub.publishAsync('big/out', 'small-1', { qos: 1 });
    await pub.publishAsync('big/out', Buffer.alloc(200, 0x62), { qos: 1 });
    await pub.publishAsync('big/out', 'small-2', { qos: 1 });

    await sub.waitForCount('publish', 2);
    await sub.ping();
    expect(sub.all('publish').map(text)).toEqual(['small-1', 'small-2']);
    expect(sub.parseError).toBeUndefined();
    expect(t.broker.metrics.dropped.packetTooLarge).toBe(1);
    // Behaves as if the big one was delivered: nothing left inflight to resend. (The PUBACKs for the small
    // ones left before the PINGREQ, so the ping round trip shows the broker has handled them.)
    expect(t.broker.core.sessions.get('small-sub')!.inflight.size).toBe(0);
  });
});

describe('MQTT 5 maximum packet size with topic aliases', () => {
  it('[MQTT-3.1.2-25] a discarded too-large PUBLISH does not leave behind an alias the client never learnt', async () => {
    const t = await broker();
    const { client: sub } = await connectRaw(
      t.port, { clientId: 'alias-small-sub', properties: { topicAliasMaximum: 4, maximumPacketSize: 100 } }, { maxPacketSize: 100 },
    );
    await subscribeRaw(sub, 'alias/big', 0);
    const pub = await connectClient(t.url, { protocolVersion: 5, clientId: 'alias-big-pub' });

    await pub.publishAsync('alias/big', Buffer.alloc(200, 0x62), { qos: 1 });
    await pub.publishAsync('alias/big', 'small', { qos: 1 });

    // The first PUBLISH the client sees on this topic must name the topic, whatever alias it sets.
    const [first] = await sub.waitForCount('publish', 1);
    expect([first!.topic, first!.properties?.topicAlias, text(first!)]).toEqual(['alias/big', 1, 'small']);
    expect(t.broker.metrics.dropped.packetTooLarge).toBe(1);
  });
});

describe('MQTT 5 client identifiers', () => {
  it('[MQTT-3.2.2-16] an empty client id gets a new Assigned Client Identifier in the CONNACK', async () => {
    const t = await broker();
    const a = await connectRaw(t.port, { clientId: '' });
    const b = await connectRaw(t.port, { clientId: '' });

    const idA = a.connack.properties?.assignedClientIdentifier;
    const idB = b.connack.properties?.assignedClientIdentifier;
    expect(a.connack.reasonCode).toBe(0);
    expect(idA).toEqual(expect.any(String));
    expect(idA!.length).toBeGreaterThan(0);
    expect(idB).not.toBe(idA);
    expect(t.broker.core.sessions.get(idA!)?.connection).not.toBeNull();
  });
});

// ------------------------------------------------------------------------------------------------

describe('offline queue limits (MQTT 3.1.1, CleanSession 0)', () => {
  const cases = [
    { limit: 'maxQueuedMessages', policy: 'drop-new', options: { maxQueuedMessages: 10 }, kept: [0, 10] },
    { limit: 'maxQueuedMessages', policy: 'drop-oldest', options: { maxQueuedMessages: 10 }, kept: [5, 15] },
    { limit: 'maxQueuedBytes', policy: 'drop-new', options: { maxQueuedBytes: 1000 }, kept: [0, 10] },
    { limit: 'maxQueuedBytes', policy: 'drop-oldest', options: { maxQueuedBytes: 1000 }, kept: [5, 15] },
  ] as const;

  it.each(cases)('[MQTT-3.1.2-5] $limit with $policy: an offline session keeps 10 of 15 QoS 1 messages, 5 drops counted', async ({ policy, options, kept }) => {
    const t = await broker({ ...options, queueDropPolicy: policy });
    const persistent = { clientId: 'offline-q', clean: false, protocolVersion: 4 } as const;
    const first = await connectRaw(t.port, persistent);
    await subscribeRaw(first.client, 'queue/t', 1);
    await disconnectRaw(t, first.client, 'offline-q');

    const pub = await connectClient(t.url, { protocolVersion: 4, clientId: 'offline-q-pub' });
    // 100-byte payloads: 10 of them fill maxQueuedBytes 1000 exactly.
    const payload = (i: number): string => `m${i}`.padEnd(100, '.');
    for (let i = 0; i < 15; i++) await pub.publishAsync('queue/t', payload(i), { qos: 1 });
    expect(t.broker.metrics.dropped.queueFull).toBe(5);

    const second = await connectRaw(t.port, persistent);
    expect(second.connack.sessionPresent).toBe(true);
    await second.client.waitForCount('publish', 10);
    await second.client.ping();

    const expected = Array.from({ length: kept[1] - kept[0] }, (_, k) => payload(kept[0] + k));
    expect(second.client.all('publish').map(text)).toEqual(expected);
  });
});

describe('offline queue limits: a message larger than maxQueuedBytes', () => {
  it('is dropped on its own under drop-oldest; the messages already queued stay', async () => {
    const t = await broker({ maxQueuedBytes: 1000, queueDropPolicy: 'drop-oldest' });
    const persistent = { clientId: 'offline-big', clean: false, protocolVersion: 4 } as const;
    const first = await connectRaw(t.port, persistent);
    await subscribeRaw(first.client, 'queue/big', 1);
    await disconnectRaw(t, first.client, 'offline-big');

    const pub = await connectClient(t.url, { protocolVersion: 4, clientId: 'offline-big-pub' });
    for (let i = 0; i < 5; i++) await pub.publishAsync('queue/big', `m${i}`.padEnd(100, '.'), { qos: 1 });
    await pub.publishAsync('queue/big', Buffer.alloc(2000, 0x62), { qos: 1 });
    expect(t.broker.metrics.dropped.queueFull).toBe(1);

    const second = await connectRaw(t.port, persistent);
    await second.client.waitForCount('publish', 5);
    await second.client.ping();
    expect(second.client.all('publish').map((p) => text(p).slice(0, 2))).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
  });
});

describe('slow consumers', () => {
  // QoS 0 deliveries to a full socket are dropped; QoS 1 ones wait in the queue. With QoS 1 the inflight
  // window is raised so that the socket, not the window (default 1024 ≈ 1 MB here), is what fills up.
  const cases = [
    { label: 'QoS 0', qos: 0, options: {} },
    { label: 'QoS 1', qos: 1, options: { maxInflight: 65_535 } },
  ] as const;

  it.each(cases)('a $label subscriber that stops reading is disconnected after slowConsumerTimeout; another subscriber keeps receiving every QoS 1 message', async ({ qos, options }) => {
    const t = await broker({ writeBufferLimit: 64 * 1024, slowConsumerTimeout: 1, ...options });
    const { client: slow } = await connectRaw(t.port, { clientId: 'slow' });
    await subscribeRaw(slow, 'load/t', qos);
    slow.socket.pause();
    const fast = await connectClient(t.url, { protocolVersion: 5, clientId: 'fast' });
    const inbox = collect(fast);
    await fast.subscribeAsync('load/t', { qos: 1 });
    const pub = await connectClient(t.url, { protocolVersion: 4, clientId: 'load-pub' });
    let slowDisconnected = false;
    const slowGone = clientGone(t, 'slow', 20_000);
    slowGone.then(() => { slowDisconnected = true; }, () => {});

    // 1 KB messages in rounds of 1 MB until the broker gives up on the slow reader: at least 5 MB, so the
    // kernel buffers between the broker and a reader that never reads fill up; at most 20 MB.
    const roundSize = 1000;
    let published = 0;
    while (published < 20 * roundSize && (published < 5 * roundSize || !slowDisconnected)) {
      const acks: Promise<unknown>[] = [];
      for (let k = 0; k < roundSize; k++, published++) {
        const payload = Buffer.alloc(1024, 0x2e);
        payload.writeUInt32BE(published, 0);
        acks.push(pub.publishAsync('load/t', payload, { qos: 1 }));
      }
      await withTimeout(Promise.all(acks), 10_000, `the publisher never got PUBACKs for messages up to ${published}`);
    }

    await slowGone;
    expect(t.broker.metrics.slowConsumerDisconnects).toBe(1);
    const received = await inbox.waitFor(published, 20_000);
    expect(received.length).toBe(published);
    expect(received.every((m, i) => m.payload.readUInt32BE(0) === i)).toBe(true);
  });
});

describe('$SYS topics', () => {
  const expectedTopics = [
    'version', 'uptime', 'clients/connected', 'messages/received', 'messages/sent', 'bytes/received', 'bytes/sent',
    'subscriptions/count', 'retained messages/count',
  ].map((name) => `$SYS/broker/${name}`);

  /** Watches $SYS: every value per topic in arrival order, and a bounded wait for a condition over them. */
  async function watchSys(t: TestBroker): Promise<{ values: Map<string, string[]>; until(cond: () => boolean, what: () => string): Promise<void> }> {
    const values = new Map<string, string[]>();
    const checks = new Set<() => void>();
    const client = await connectClient(t.url, { protocolVersion: 5, clientId: 'sys-watch' });
    client.on('message', (topic, payload) => {
      const list = values.get(topic) ?? [];
      list.push(payload.toString());
      values.set(topic, list);
      for (const check of [...checks]) check();
    });
    await client.subscribeAsync('$SYS/broker/#', { qos: 0 });
    return {
      values,
      until(cond, what) {
        let check = (): void => {};
        let timer: NodeJS.Timeout | undefined;
        return new Promise<void>((resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after 5000 ms: ${what()}`)), 5000);
          check = () => {
            if (cond()) resolve();
          };
          checks.add(check);
          check();
        }).finally(() => {
          clearTimeout(timer);
          checks.delete(check);
        });
      },
    };
  }

  it('$SYS/broker/# delivers version, uptime, client, message, byte, subscription and retained counts', async () => {
    const t = await broker({ sysInterval: 1 });
    const sys = await watchSys(t);

    await sys.until(() => expectedTopics.every((topic) => sys.values.has(topic)), () => `missing $SYS topics: ${expectedTopics.filter((x) => !sys.values.has(x)).join(', ')}`);

    const last = (name: string): string => sys.values.get(`$SYS/broker/${name}`)!.at(-1)!;
    expect(last('version')).toMatch(/^mqtt-sim /);
    expect(last('uptime')).toMatch(/^\d+ seconds$/);
    for (const name of ['clients/connected', 'messages/received', 'messages/sent', 'bytes/received', 'bytes/sent', 'subscriptions/count', 'retained messages/count']) {
      expect(last(name), name).toMatch(/^\d+$/);
    }
  });

  it('$SYS values are republished every sysInterval: messages/received grows after publishing', async () => {
    const t = await broker({ sysInterval: 1 });
    const sys = await watchSys(t);
    const received = (): number[] => (sys.values.get('$SYS/broker/messages/received') ?? []).map(Number);
    await sys.until(() => received().length > 0, () => 'no $SYS/broker/messages/received value');
    const before = received()[0]!;

    const pub = await connectClient(t.url, { protocolVersion: 5, clientId: 'sys-pub' });
    for (let i = 0; i < 3; i++) await pub.publishAsync('sys/load', 'x', { qos: 1 });

    await sys.until(() => received().some((v) => v >= before + 3), () => `messages/received stayed at ${received().join(', ')}`);
    expect(Math.max(...received())).toBeGreaterThanOrEqual(before + 3);
  });
});
