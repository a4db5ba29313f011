/**
 * The lean client against an in-memory link (options.createStream) and injected timers: keepalive,
 * connect timeout, backoff, windows, packet ids, resend on reconnect, inbound QoS 2 and aliases —
 * exact packets, no real time.
 */
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LeanClient } from '../../../../simulator/client/lean-client.js';
import type { LeanClientHandler, LeanClientOptions } from '../../../../simulator/client/types.js';
import type { DisconnectCause } from '../../../../simulator/metrics/types.js';
import { PacketParser, encodePacket, type Packet, type PublishPacket, type QoS } from '../../../../protocol/index.js';
import { FakeTimers } from '../../../helpers/fake-timers.js';

/** The broker's end of an in-memory link: parses what the client writes, pushes what the test sends. */
class FakeLink {
  readonly received: Packet[] = [];
  readonly stream: Duplex;
  private readonly parser = new PacketParser({ protocolVersion: 5 });
  constructor(private readonly version: 4 | 5) {
    this.stream = new Duplex({
      read() {},
      write: (chunk: Buffer, _enc, cb) => {
        this.received.push(...this.parser.push(chunk));
        cb();
      },
    });
  }
  open(): void { this.stream.emit('connect'); }
  send(p: Packet): void { this.stream.push(encodePacket(p, this.version)); }
  sendRaw(b: Buffer): void { this.stream.push(b); }
  of<T extends Packet['type']>(type: T): Array<Extract<Packet, { type: T }>> {
    return this.received.filter((p): p is Extract<Packet, { type: T }> => p.type === type);
  }
}

interface Event { kind: string; args: unknown[] }
class Rec {
  readonly events: Event[] = [];
  kinds(kind: string): unknown[][] { return this.events.filter((e) => e.kind === kind).map((e) => e.args); }
}
const handler: LeanClientHandler<Rec> = {
  onConnect: (r, ...args) => { r.events.push({ kind: 'connect', args }); },
  onDisconnect: (r, cause: DisconnectCause, ...args) => { r.events.push({ kind: 'disconnect', args: [cause, ...args] }); },
  onMessage: (r, topic, payload, qos, retain, dup) => { r.events.push({ kind: 'message', args: [topic, payload.toString(), qos, retain, dup] }); },
  onAck: (r, ...args) => { r.events.push({ kind: 'ack', args }); },
  onSubscribed: (r, granted) => { r.events.push({ kind: 'suback', args: [granted] }); },
};

/** Lets the client's microtask flush and the Duplex's async 'data' run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function setup(version: 4 | 5, overrides: Partial<LeanClientOptions> = {}) {
  const timers = new FakeTimers();
  const links: FakeLink[] = [];
  const rec = new Rec();
  const options: LeanClientOptions = {
    url: 'mqtt://broker.invalid:1883',
    protocolVersion: version,
    clientId: 'dev-1',
    clean: false,
    sessionExpirySec: 60,
    keepaliveSec: 10,
    inflightWindow: 10,
    receiveMaximum: 20,
    maxQueued: 100,
    connectTimeoutMs: 5000,
    reconnect: { enabled: false, initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2 },
    random: () => 0.5,
    timers,
    createStream: () => {
      const link = new FakeLink(version);
      links.push(link);
      return link.stream;
    },
    ...overrides,
  };
  const client = new LeanClient(options, handler, rec);
  const link = (): FakeLink => links[links.length - 1]!;
  /** Starts (or lets a reconnect open) the link and answers its CONNECT with a CONNACK. */
  async function connect(connack: { sessionPresent?: boolean; receiveMaximum?: number; serverKeepAlive?: number } = {}): Promise<FakeLink> {
    if (client.state === 'idle') client.start();
    if (client.state === 'waiting') timers.advance(Math.max(...[...timers.pending.values()].map((t) => t.ms)));
    link().open();
    await settle();
    expect(link().of('connect')).toHaveLength(1);
    const properties = version === 5 && (connack.receiveMaximum !== undefined || connack.serverKeepAlive !== undefined)
      ? { ...(connack.receiveMaximum !== undefined ? { receiveMaximum: connack.receiveMaximum } : {}), ...(connack.serverKeepAlive !== undefined ? { serverKeepAlive: connack.serverKeepAlive } : {}) }
      : undefined;
    link().send({ type: 'connack', sessionPresent: connack.sessionPresent ?? false, reasonCode: 0, ...(properties ? { properties } : {}) });
    await settle();
    expect(client.state).toBe('connected');
    return link();
  }
  return { client, timers, links, rec, link, connect, options };
}

const publishes = (l: FakeLink): PublishPacket[] => l.of('publish');

describe('CONNECT', () => {
  it('carries clean start, keepalive, credentials, will with delay, session expiry and receive maximum (v5)', async () => {
    const { connect } = setup(5, {
      username: 'u', password: 'p', keepaliveSec: 30, receiveMaximum: 7, sessionExpirySec: 3600,
      will: { topic: 'w/t', payload: Buffer.from('gone'), qos: 1, retain: true, delaySec: 5 },
    });
    const l = await connect();
    const c = l.of('connect')[0]!;
    expect(c).toMatchObject({ protocolVersion: 5, clean: false, keepalive: 30, clientId: 'dev-1', username: 'u' });
    expect(c.password?.toString()).toBe('p');
    expect(c.properties).toMatchObject({ sessionExpiryInterval: 3600, receiveMaximum: 7 });
    expect(c.properties?.topicAliasMaximum).toBeUndefined();
    expect(c.will).toMatchObject({ topic: 'w/t', qos: 1, retain: true, properties: { willDelayInterval: 5 } });
  });

  it('throws at construction for options that cannot be encoded (3.1.1 password without user name)', () => {
    expect(() => setup(4, { password: 'secret' })).toThrow(/MQTT-3.1.2-22/);
  });
});

describe('keepalive (injected timers)', () => {
  it('sends PINGREQ after keepaliveSec with nothing sent, not before', async () => {
    const { connect, timers } = setup(4);
    const l = await connect();
    timers.advance(9_999);
    await settle();
    expect(l.of('pingreq')).toHaveLength(0);
    timers.advance(1);
    await settle();
    expect(l.of('pingreq')).toHaveLength(1);
  });

  it('counts any packet sent as activity: a publish at 5 s moves the PINGREQ to 15 s', async () => {
    const { client, connect, timers } = setup(4);
    const l = await connect();
    timers.advance(5_000);
    expect(client.publish('t', Buffer.from('x'), 0, false, 1)).toBe(true);
    await settle();
    timers.advance(5_000);
    await settle();
    expect(l.of('pingreq')).toHaveLength(0);
    timers.advance(5_000);
    await settle();
    expect(l.of('pingreq')).toHaveLength(1);
  });

  it('times out when nothing arrives within 1.5 × keepalive of the PINGREQ', async () => {
    const { connect, timers, rec, client } = setup(5);
    await connect();
    timers.advance(10_000); // PINGREQ
    await settle();
    timers.advance(14_999);
    expect(client.state).toBe('connected');
    timers.advance(1);
    expect(client.state).toBe('closed');
    expect(rec.kinds('disconnect')).toEqual([['timeout', expect.stringContaining('PINGREQ'), true, false]]);
  });

  it('stays connected when the PINGRESP comes, and pings again a keepalive later', async () => {
    const { connect, timers, client } = setup(4);
    const l = await connect();
    timers.advance(10_000);
    await settle();
    l.send({ type: 'pingresp' });
    await settle();
    timers.advance(10_000);
    await settle();
    expect(client.state).toBe('connected');
    expect(l.of('pingreq')).toHaveLength(2);
  });

  it("uses the broker's Server Keep Alive from CONNACK [MQTT-3.2.2-21]", async () => {
    const { connect, timers } = setup(5, { keepaliveSec: 60 });
    const l = await connect({ serverKeepAlive: 2 });
    timers.advance(2_000);
    await settle();
    expect(l.of('pingreq')).toHaveLength(1);
  });

  it('keeps at most one timer per client and leaves none after stop()', async () => {
    const { connect, timers, client } = setup(5, { reconnect: { enabled: true, initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2 } });
    await connect();
    for (let i = 0; i < 5; i++) {
      timers.advance(10_000);
      await settle();
    }
    expect(timers.maxPending).toBe(1);
    const stopped = client.stop(true);
    await settle();
    await stopped;
    expect(timers.pending.size).toBe(0);
  });
});

describe('connect attempts', () => {
  it("times out with cause 'timeout' when no CONNACK arrives within connectTimeoutMs", async () => {
    const { client, timers, rec, link } = setup(4, { connectTimeoutMs: 3000 });
    client.start();
    link().open();
    await settle();
    timers.advance(3000);
    expect(rec.kinds('disconnect')).toEqual([['timeout', 'no CONNACK within 3000 ms', false, false]]);
    expect(client.state).toBe('closed');
    expect(link().stream.destroyed).toBe(true);
  });

  it('waits random() × min(max, initial × multiplier^attempt) between attempts, and starts over after a CONNACK', async () => {
    const { client, timers, links, connect } = setup(4, { random: () => 0.5 });
    client.options.reconnect.enabled = true;
    const refuse = async (): Promise<void> => {
      links[links.length - 1]!.stream.destroy(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }));
      await settle();
    };
    client.start();
    await refuse();
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      expect(client.state).toBe('waiting');
      const [timer] = [...timers.pending.values()];
      waits.push(timer!.ms);
      timers.advance(timer!.ms);
      expect(client.state).toBe('connecting');
      await refuse();
    }
    expect(waits).toEqual([50, 100, 200, 400]);
    timers.advance([...timers.pending.values()][0]!.ms);
    await connect();
    links[links.length - 1]!.stream.destroy();
    await settle();
    expect([...timers.pending.values()][0]!.ms).toBe(50);
  });

  it("reports a refused CONNACK as 'refused' with the reason (v5 and 3.1.1)", async () => {
    for (const [version, code, text] of [[5, 0x86, '0x86 Bad User Name or Password'], [4, 5, '5 Connection Refused, not authorized']] as const) {
      const { client, rec, link } = setup(version);
      client.start();
      link().open();
      link().send({ type: 'connack', sessionPresent: false, reasonCode: code });
      await settle();
      expect(rec.kinds('disconnect')).toEqual([['refused', text, false, false]]);
    }
  });
});

describe('outbound QoS 1/2', () => {
  it('refuses QoS 0 while not connected and queues QoS 1/2 up to maxQueued', () => {
    const { client } = setup(4, { maxQueued: 2 });
    expect(client.publish('t', Buffer.from('a'), 0, false, 1)).toBe(false);
    expect(client.publish('t', Buffer.from('a'), 1, false, 1)).toBe(true);
    expect(client.publish('t', Buffer.from('a'), 2, false, 2)).toBe(true);
    expect(client.publish('t', Buffer.from('a'), 1, false, 3)).toBe(false);
    expect(client.queuedCount).toBe(2);
  });

  it("limits the window to the server's Receive Maximum and drains the queue as acks arrive", async () => {
    const { client, connect } = setup(5, { inflightWindow: 10 });
    const l = await connect({ receiveMaximum: 3 });
    for (let i = 0; i < 5; i++) client.publish('t', Buffer.from(String(i)), 1, false, i);
    await settle();
    expect(publishes(l).map((p) => p.payload.toString())).toEqual(['0', '1', '2']);
    expect([client.inflightCount, client.queuedCount]).toEqual([3, 2]);
    l.send({ type: 'puback', packetId: publishes(l)[1]!.packetId! });
    await settle();
    expect(publishes(l).map((p) => p.payload.toString())).toEqual(['0', '1', '2', '3']);
    expect([client.inflightCount, client.queuedCount]).toEqual([3, 1]);
  });

  it('runs QoS 2 PUBREC → PUBREL → PUBCOMP and reports the PUBCOMP reason in onAck', async () => {
    const { client, connect, rec } = setup(5);
    const l = await connect();
    client.publish('t', Buffer.from('x'), 2, false, 77);
    await settle();
    const id = publishes(l)[0]!.packetId!;
    l.send({ type: 'pubrec', packetId: id });
    await settle();
    expect(l.of('pubrel')).toEqual([expect.objectContaining({ packetId: id })]);
    expect(rec.kinds('ack')).toEqual([]);
    l.send({ type: 'pubcomp', packetId: id });
    await settle();
    expect(rec.kinds('ack')).toEqual([[77, 2, 0]]);
    expect(client.inflightCount).toBe(0);
  });

  it('ends a QoS 2 flow at a failed PUBREC (>= 0x80): onAck with that code, no PUBREL [MQTT-4.3.3]', async () => {
    const { client, connect, rec } = setup(5);
    const l = await connect();
    client.publish('t', Buffer.from('x'), 2, false, 5);
    await settle();
    l.send({ type: 'pubrec', packetId: publishes(l)[0]!.packetId!, reasonCode: 0x97 });
    await settle();
    expect(rec.kinds('ack')).toEqual([[5, 2, 0x97]]);
    expect(l.of('pubrel')).toHaveLength(0);
    expect(client.inflightCount).toBe(0);
  });

  it('allocates packet ids round robin and skips ids still in flight after wrapping past 65535', async () => {
    const { client, connect } = setup(4, { inflightWindow: 65535, maxQueued: 10 });
    const l = await connect();
    const payload = Buffer.alloc(0);
    for (let i = 1; i <= 65535; i++) client.publish('t', payload, 1, false, i);
    await settle();
    expect(client.inflightCount).toBe(65535);
    l.send({ type: 'puback', packetId: 9 });
    l.send({ type: 'puback', packetId: 7 });
    await settle();
    client.publish('t', payload, 1, false, 0);
    client.publish('t', payload, 1, false, 0);
    client.publish('t', payload, 1, false, 0);
    await settle();
    expect(publishes(l).slice(65535).map((p) => p.packetId)).toEqual([7, 9]);
    expect(client.queuedCount).toBe(1);
  });

  it('on a resumed session resends PUBLISH with DUP=1 and PUBREL in the original order with the same ids [MQTT-4.4.0-1]', async () => {
    const { client, connect, links } = setup(5, { reconnect: { enabled: true, initialDelayMs: 0, maxDelayMs: 0, multiplier: 2 } });
    const first = await connect();
    client.publish('a', Buffer.from('A'), 1, false, 1);
    client.publish('b', Buffer.from('B'), 2, false, 2);
    client.publish('c', Buffer.from('C'), 2, false, 3);
    await settle();
    const ids = publishes(first).map((p) => p.packetId!);
    first.send({ type: 'pubrec', packetId: ids[1]! });
    await settle();
    first.stream.destroy();
    await settle();
    const second = await connect({ sessionPresent: true });
    expect(links).toHaveLength(2);
    await settle();
    const resent = second.received.filter((p) => p.type !== 'connect');
    expect(resent.map((p) => [p.type, 'packetId' in p ? p.packetId : undefined, p.type === 'publish' ? p.dup : undefined]))
      .toEqual([['publish', ids[0], true], ['pubrel', ids[1], undefined], ['publish', ids[2], true]]);
  });

  it('on a new session resends unacknowledged PUBLISHes fresh (DUP=0) before the queue, and resubscribes', async () => {
    const { client, connect } = setup(4, { inflightWindow: 1, reconnect: { enabled: true, initialDelayMs: 0, maxDelayMs: 0, multiplier: 2 } });
    client.subscribe([{ topic: 's/#', qos: 1 }]);
    const first = await connect();
    first.send({ type: 'suback', packetId: first.of('subscribe')[0]!.packetId, reasonCodes: [1] });
    client.publish('a', Buffer.from('A'), 1, false, 1);
    client.publish('b', Buffer.from('B'), 1, false, 2);
    await settle();
    first.stream.destroy();
    await settle();
    const second = await connect({ sessionPresent: false });
    await settle();
    expect(second.of('subscribe').map((s) => s.subscriptions.map((x) => x.topic))).toEqual([['s/#']]);
    expect(publishes(second).map((p) => [p.payload.toString(), p.dup])).toEqual([['A', false]]);
    second.send({ type: 'puback', packetId: publishes(second)[0]!.packetId! });
    await settle();
    expect(publishes(second).map((p) => [p.payload.toString(), p.dup])).toEqual([['A', false], ['B', false]]);
  });

  it('does not resubscribe when the broker kept the session', async () => {
    const { client, connect } = setup(5, { reconnect: { enabled: true, initialDelayMs: 0, maxDelayMs: 0, multiplier: 2 } });
    client.subscribe([{ topic: 's/#', qos: 1 }]);
    const first = await connect();
    first.send({ type: 'suback', packetId: first.of('subscribe')[0]!.packetId, reasonCodes: [1] });
    await settle();
    first.stream.destroy();
    await settle();
    const second = await connect({ sessionPresent: true });
    await settle();
    expect(second.of('subscribe')).toHaveLength(0);
  });
});

describe('inbound', () => {
  const publish = (qos: QoS, packetId: number | undefined, dup: boolean, payload = 'm', extra: Partial<PublishPacket> = {}): PublishPacket =>
    ({ type: 'publish', topic: 'in/t', payload: Buffer.from(payload), qos, retain: false, dup, ...(packetId !== undefined ? { packetId } : {}), ...extra });

  it('acknowledges QoS 1 with PUBACK and delivers it', async () => {
    const { connect, rec } = setup(4);
    const l = await connect();
    l.send(publish(1, 12, false));
    await settle();
    expect(l.of('puback')).toEqual([expect.objectContaining({ packetId: 12 })]);
    expect(rec.kinds('message')).toEqual([['in/t', 'm', 1, false, false]]);
  });

  it('delivers a QoS 2 packet id once until PUBREL, then PUBCOMP; the id can carry a new message after', async () => {
    const { connect, rec } = setup(5);
    const l = await connect();
    l.send(publish(2, 3, false, 'one'));
    l.send(publish(2, 3, true, 'one'));
    await settle();
    expect(rec.kinds('message')).toHaveLength(1);
    expect(l.of('pubrec')).toHaveLength(2);
    l.send({ type: 'pubrel', packetId: 3 });
    await settle();
    expect(l.of('pubcomp')).toEqual([expect.objectContaining({ packetId: 3 })]);
    l.send(publish(2, 3, false, 'two'));
    await settle();
    expect(rec.kinds('message').map((m) => m[1])).toEqual(['one', 'two']);
  });

  it('answers a PUBREL for an unknown id with PUBCOMP 0x92 (v5)', async () => {
    const { connect } = setup(5);
    const l = await connect();
    l.send({ type: 'pubrel', packetId: 40 });
    await settle();
    expect(l.of('pubcomp')).toEqual([expect.objectContaining({ packetId: 40, reasonCode: 0x92 })]);
  });

  it('resolves inbound topic aliases (v5) and advertises Topic Alias Maximum when asked', async () => {
    const { connect, rec } = setup(5, { topicAliasMaximum: 4 });
    const l = await connect();
    expect(l.of('connect')[0]!.properties?.topicAliasMaximum).toBe(4);
    l.send(publish(0, undefined, false, 'x', { topic: 'long/topic/name', properties: { topicAlias: 2 } }));
    l.send(publish(0, undefined, false, 'y', { topic: '', properties: { topicAlias: 2 } }));
    await settle();
    expect(rec.kinds('message').map((m) => [m[0], m[1]])).toEqual([['long/topic/name', 'x'], ['long/topic/name', 'y']]);
  });

  it('parses a packet split over chunks while another client receives whole packets in between (clients share an idle parser)', async () => {
    const a = setup(5);
    const b = setup(5);
    const la = await a.connect();
    const lb = await b.connect();
    const bytes = encodePacket(publish(1, 9, false, 'split in two'), 5);
    const cut = 7;
    la.sendRaw(bytes.subarray(0, cut));
    await settle();
    lb.send(publish(1, 4, false, 'whole'));
    await settle();
    lb.sendRaw(Buffer.concat([encodePacket(publish(0, undefined, false, 'and'), 5), bytes.subarray(0, 3)]));
    await settle();
    la.sendRaw(bytes.subarray(cut));
    lb.sendRaw(bytes.subarray(3));
    await settle();
    expect(a.rec.kinds('message').map((m) => m[1])).toEqual(['split in two']);
    expect(b.rec.kinds('message').map((m) => m[1])).toEqual(['whole', 'and', 'split in two']);
    expect(a.client.state).toBe('connected');
    expect(b.client.state).toBe('connected');
  });

  it("ends the connection with cause 'protocol' on a malformed packet", async () => {
    const { connect, rec, client } = setup(4);
    const l = await connect();
    l.sendRaw(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]));
    await settle();
    expect(rec.kinds('disconnect')).toEqual([['protocol', expect.stringContaining('remaining length'), true, false]]);
    expect(client.state).toBe('closed');
  });

  it("reports a broker DISCONNECT as 'server' with the reason name (v5)", async () => {
    const { connect, rec } = setup(5);
    const l = await connect();
    l.send({ type: 'disconnect', reasonCode: 0x8b });
    await settle();
    expect(rec.kinds('disconnect')).toEqual([['server', 'DISCONNECT 0x8b Server shutting down', true, false]]);
  });

  it("turns an exception thrown by a handler callback into cause 'error' instead of throwing out of the socket callback", async () => {
    const timers = new FakeTimers();
    const link = new FakeLink(4);
    const rec = new Rec();
    const throwing: LeanClientHandler<Rec> = { ...handler, onMessage: () => { throw new Error('model bug'); } };
    const client = new LeanClient({
      url: 'mqtt://x', protocolVersion: 4, clientId: 'c', clean: true, sessionExpirySec: 0, keepaliveSec: 0, inflightWindow: 1,
      receiveMaximum: 1, maxQueued: 1, connectTimeoutMs: 1000, random: () => 0, timers,
      reconnect: { enabled: false, initialDelayMs: 0, maxDelayMs: 0, multiplier: 1 }, createStream: () => link.stream,
    }, throwing, rec);
    client.start();
    link.open();
    link.send({ type: 'connack', sessionPresent: false, reasonCode: 0 });
    link.send(publish(0, undefined, false));
    await settle();
    expect(rec.kinds('disconnect')).toEqual([['error', 'internal error: model bug', true, false]]);
  });
});

describe('stop and destroy', () => {
  it('stop(true) sends DISCONNECT 0x00, fires only the final onDisconnect, and never reconnects', async () => {
    const { client, connect, rec, timers, links } = setup(5, { reconnect: { enabled: true, initialDelayMs: 0, maxDelayMs: 0, multiplier: 2 } });
    const l = await connect();
    const stopped = client.stop(true);
    await settle();
    expect(l.of('disconnect')).toEqual([expect.objectContaining({ type: 'disconnect' })]);
    l.stream.destroy();
    await stopped;
    expect(rec.kinds('disconnect')).toEqual([['normal', 'stopped', true, false]]);
    timers.advance(60_000);
    expect(links).toHaveLength(1);
    expect(client.publish('t', Buffer.from('x'), 1, false, 1)).toBe(false);
  });

  it('stop(true) while connecting just closes the stream', async () => {
    const { client, rec, link } = setup(4);
    client.start();
    await client.stop(true);
    expect(link().received).toHaveLength(0);
    expect(link().stream.destroyed).toBe(true);
    expect(rec.kinds('disconnect')).toEqual([['normal', 'stopped', false, false]]);
  });

  it('destroy() drops the link without DISCONNECT or callbacks and leaves no timer', async () => {
    const { client, connect, rec, timers } = setup(4, { reconnect: { enabled: true, initialDelayMs: 0, maxDelayMs: 0, multiplier: 2 } });
    const l = await connect();
    client.destroy();
    await settle();
    expect(l.stream.destroyed).toBe(true);
    expect(l.of('disconnect')).toHaveLength(0);
    expect(rec.kinds('disconnect')).toHaveLength(0);
    expect(timers.pending.size).toBe(0);
  });
});
