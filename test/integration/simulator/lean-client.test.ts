/**
 * The lean client over real sockets: against the reference broker in-process (port 0), against raw
 * net servers that misbehave on purpose, and against Mosquitto when it is installed. Every wait is
 * bounded and event-driven; nothing sleeps.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Packet, QoS } from '../../../protocol/index.js';
import { LeanClient } from '../../../simulator/client/lean-client.js';
import type { LeanClientHandler, LeanClientOptions } from '../../../simulator/client/types.js';
import type { DisconnectCause } from '../../../simulator/metrics/types.js';
import { REFUSED_PORT, startBroker, withTimeout, type TestBroker } from '../../helpers/broker.js';
import { createTestPki, type TestPki } from '../../helpers/certificates.js';
import { killAllChildren, spawnChild } from '../../helpers/child-process.js';
import { findOnPath, mosquittoBrokerPath, probes, requireProgram } from '../../helpers/external.js';
import { createPrng } from '../../../simulator/scenario/prng.js';
import { closeAllRawServers, startRawServer, type RawConn, type RawServer } from '../../helpers/raw-mqtt-server.js';

const WAIT_MS = 10_000;

// ------------------------------------------------------------------------------------------------
// A device's context: what its callbacks saw, with bounded waits on it. One handler serves them all.

interface Disconnect { cause: DisconnectCause; detail: string; wasConnected: boolean; willRetry: boolean }
interface Message { topic: string; payload: string; qos: QoS; retain: boolean; dup: boolean }

class Device {
  readonly connects: Array<{ sessionPresent: boolean; reconnect: boolean }> = [];
  readonly disconnects: Disconnect[] = [];
  readonly messages: Message[] = [];
  readonly acks: Array<{ token: number; qos: 1 | 2; reasonCode: number }> = [];
  readonly subacks: number[][] = [];
  bytesOut = 0;
  bytesIn = 0;
  maxInflight = 0;
  client!: LeanClient<Device>;
  private readonly waiters = new Set<() => void>();

  constructor(readonly name: string) {}

  wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves once `check()` is true, re-checked after every callback; fails after `ms` saying `what`. */
  until(check: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
    let waiter = (): void => {};
    return withTimeout(
      new Promise<void>((resolve) => {
        waiter = () => { if (check()) resolve(); };
        this.waiters.add(waiter);
        waiter();
      }),
      ms,
      `${this.name}: ${what} (connects ${JSON.stringify(this.connects)}, disconnects ${JSON.stringify(this.disconnects)}, ${this.messages.length} messages, ${this.acks.length} acks)`,
    ).finally(() => this.waiters.delete(waiter));
  }
}

const handler: LeanClientHandler<Device> = {
  onConnect(d, sessionPresent, _connectMs, reconnect) {
    d.connects.push({ sessionPresent, reconnect });
    d.wake();
  },
  onDisconnect(d, cause, detail, wasConnected, willRetry) {
    d.disconnects.push({ cause, detail, wasConnected, willRetry });
    d.wake();
  },
  onMessage(d, topic, payload, qos, retain, dup) {
    d.messages.push({ topic, payload: payload.toString(), qos, retain, dup });
    d.wake();
  },
  onAck(d, token, qos, reasonCode) {
    d.maxInflight = Math.max(d.maxInflight, d.client.inflightCount + 1);
    d.acks.push({ token, qos, reasonCode });
    d.wake();
  },
  onSubscribed(d, granted) {
    d.subacks.push(granted);
    d.wake();
  },
  onBytes(d, out, inb) {
    d.bytesOut += out;
    d.bytesIn += inb;
  },
};


const devices: Device[] = [];
let idCounter = 0;

function device(url: string, options: Partial<LeanClientOptions> = {}, start = true): Device {
  const d = new Device(options.clientId ?? `lean-${process.pid}-${++idCounter}`);
  d.client = new LeanClient<Device>({
    url,
    protocolVersion: 5,
    clientId: d.name,
    clean: true,
    sessionExpirySec: 0,
    keepaliveSec: 30,
    inflightWindow: 20,
    receiveMaximum: 100,
    maxQueued: 1000,
    connectTimeoutMs: 5000,
    reconnect: { enabled: false, initialDelayMs: 20, maxDelayMs: 200, multiplier: 2 },
    random: createPrng(idCounter),
    ...options,
  }, handler, d);
  devices.push(d);
  if (start) d.client.start();
  return d;
}

async function connected(d: Device, n = 1): Promise<void> {
  await d.until(() => d.connects.length >= n, `never reached CONNACK #${n}`);
}

async function subscribed(d: Device, topic: string, qos: QoS): Promise<void> {
  const before = d.subacks.length;
  d.client.subscribe([{ topic, qos }]);
  await d.until(() => d.subacks.length > before, `no SUBACK for ${topic}`);
}

afterEach(async () => {
  for (const d of devices.splice(0)) d.client.destroy();
});

// ------------------------------------------------------------------------------------------------
// Raw servers: a net server whose connections are scripted packet by packet (test/helpers/raw-mqtt-server.ts).

function rawServer(version: 4 | 5, onConn?: (c: RawConn) => void): Promise<RawServer> {
  return startRawServer(version, onConn === undefined ? { waitMs: WAIT_MS } : { waitMs: WAIT_MS, onConn });
}

afterEach(closeAllRawServers);

/** A port nothing listens on: bound, noted, closed. */
/** A port free a moment ago, for a program that needs its listening port on the command line (Mosquitto). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/**
 * A createStream hook with a switch: open, it connects to `port`; closed, it connects to a dead port
 * (ECONNREFUSED), so a device stays offline for exactly as long as a test wants. `current` is the live
 * socket, for cutting the link from the test.
 */
function gate(port: number, deadPort: number): { open: boolean; current: net.Socket | null; createStream: LeanClientOptions['createStream'] } {
  const g = {
    open: true,
    current: null as net.Socket | null,
    createStream: () => {
      const socket = net.connect({ host: '127.0.0.1', port: g.open ? port : deadPort, noDelay: true });
      g.current = socket;
      return socket;
    },
  };
  return g;
}

// ------------------------------------------------------------------------------------------------

describe('against the reference broker', () => {
  let tb: TestBroker;
  beforeAll(async () => {
    tb = await startBroker();
  });
  afterAll(async () => {
    await tb.close();
  });

  for (const version of [4, 5] as const) {
    for (const qos of [0, 1, 2] as const) {
      it(`round-trips QoS ${qos} at protocol level ${version} with exact counts`, async () => {
        const topic = `lean/rt/${version}/${qos}`;
        const sub = device(tb.url, { protocolVersion: version });
        const pub = device(tb.url, { protocolVersion: version });
        await connected(sub);
        await connected(pub);
        await subscribed(sub, `${topic}/#`, 2);
        expect(sub.subacks).toEqual([[2]]);
        const n = 50;
        for (let i = 0; i < n; i++) expect(pub.client.publish(`${topic}/m`, Buffer.from(String(i)), qos, false, i)).toBe(true);
        // A QoS 1 marker after them: once it is in, everything before it has arrived (one publisher, one order).
        pub.client.publish(`${topic}/end`, Buffer.from('end'), 1, false, -1);
        await sub.until(() => sub.messages.some((m) => m.topic === `${topic}/end`), 'the end marker never arrived');
        const data = sub.messages.filter((m) => m.topic === `${topic}/m`);
        expect(data.map((m) => m.payload)).toEqual(Array.from({ length: n }, (_, i) => String(i)));
        expect(new Set(data.map((m) => m.qos))).toEqual(new Set([qos]));
        await pub.until(() => pub.acks.length === (qos === 0 ? 1 : n + 1), 'not every message was acknowledged');
        expect(pub.acks.filter((a) => a.token >= 0).map((a) => [a.token, a.qos, a.reasonCode]))
          .toEqual(qos === 0 ? [] : Array.from({ length: n }, (_, i) => [i, qos, 0]));
        expect(pub.bytesOut).toBeGreaterThan(0);
        expect(sub.bytesIn).toBeGreaterThan(0);
      });
    }
  }

  it('keeps at most inflightWindow QoS 1 messages in flight: 500 with window 10 are all acknowledged', async () => {
    const pub = device(tb.url, { inflightWindow: 10, maxQueued: 1000 });
    await connected(pub);
    let maxSeen = 0;
    for (let i = 0; i < 500; i++) {
      expect(pub.client.publish('lean/window', Buffer.from(String(i)), 1, false, i)).toBe(true);
      maxSeen = Math.max(maxSeen, pub.client.inflightCount);
    }
    expect(pub.client.queuedCount).toBe(490);
    await pub.until(() => pub.acks.length === 500, 'not all 500 acknowledged');
    expect(Math.max(maxSeen, pub.maxInflight)).toBe(10);
    expect(pub.acks.map((a) => a.token)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect([pub.client.inflightCount, pub.client.queuedCount]).toEqual([0, 0]);
  });

  it("narrows the window to the broker's Receive Maximum (v5)", async () => {
    const small = await startBroker({ receiveMaximum: 4 });
    try {
      const pub = device(small.url, { inflightWindow: 50 });
      await connected(pub);
      for (let i = 0; i < 100; i++) pub.client.publish('lean/rm', Buffer.from('x'), 2, false, i);
      expect(pub.client.inflightCount).toBe(4);
      await pub.until(() => pub.acks.length === 100, 'not all 100 acknowledged');
      expect(pub.maxInflight).toBe(4);
    } finally {
      await small.close();
    }
  });

  for (const version of [4, 5] as const) {
    it(`reconnects with backoff after the broker drops it and resumes its session (level ${version})`, async () => {
      const g = gate(tb.port, REFUSED_PORT);
      const topic = `lean/resume/${version}`;
      const sub = device(tb.url, {
        protocolVersion: version, clean: false, sessionExpirySec: 300, createStream: g.createStream,
        reconnect: { enabled: true, initialDelayMs: 10, maxDelayMs: 100, multiplier: 2 },
      });
      await connected(sub);
      await subscribed(sub, topic, 1);
      // Offline: the broker drops everyone, and the gate keeps this device out until we say.
      g.open = false;
      tb.broker.dropAllConnections();
      await sub.until(() => sub.disconnects.length >= 1, 'the drop was never noticed');
      expect(sub.disconnects[0]).toMatchObject({ wasConnected: true, willRetry: true });
      await sub.until(() => sub.disconnects.filter((x) => x.detail === 'ECONNREFUSED').length >= 2, 'no refused retries while offline');
      const pub = device(tb.url, { protocolVersion: version });
      await connected(pub);
      for (let i = 0; i < 10; i++) pub.client.publish(topic, Buffer.from(String(i)), 1, false, i);
      await pub.until(() => pub.acks.length === 10, 'the offline messages were not acknowledged');
      expect(sub.messages).toHaveLength(0);
      g.open = true;
      await connected(sub, 2);
      expect(sub.connects[1]).toEqual({ sessionPresent: true, reconnect: true });
      expect(sub.disconnects.every((x) => x.willRetry)).toBe(true);
      await sub.until(() => sub.messages.length >= 10, 'messages queued while offline never arrived');
      expect(sub.messages.map((m) => m.payload)).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
      // The session kept the subscription, so none was sent again.
      expect(sub.subacks).toHaveLength(1);
    });
  }

  it('completes every QoS 1 message when the link dies with messages in flight (resent, acknowledged, delivered)', async () => {
    const g = gate(tb.port, REFUSED_PORT);
    const topic = 'lean/cut/qos1';
    const sub = device(tb.url, { clean: false, sessionExpirySec: 300 });
    await connected(sub);
    await subscribed(sub, topic, 1);
    const pub = device(tb.url, {
      clean: false, sessionExpirySec: 300, inflightWindow: 10, createStream: g.createStream,
      reconnect: { enabled: true, initialDelayMs: 10, maxDelayMs: 50, multiplier: 2 },
    });
    await connected(pub);
    const n = 300;
    for (let i = 0; i < n; i++) pub.client.publish(topic, Buffer.from(String(i)), 1, false, i);
    await pub.until(() => pub.acks.length >= 5, 'no acknowledgement before the cut');
    expect(pub.client.inflightCount).toBeGreaterThan(0);
    g.current!.destroy();
    await connected(pub, 2);
    expect(pub.connects[1]).toEqual({ sessionPresent: true, reconnect: true });
    await pub.until(() => pub.acks.length >= n, 'not every message acknowledged after the reconnect');
    expect(new Set(pub.acks.map((a) => a.token)).size).toBe(n);
    await sub.until(() => new Set(sub.messages.map((m) => m.payload)).size === n, 'the subscriber is missing messages');
  });

  it("is refused by a broker that rejects its credentials ('refused', then retries with backoff)", async () => {
    const strict = await startBroker({ authenticate: () => false });
    const d = device(strict.url, { username: 'u', password: 'wrong', reconnect: { enabled: true, initialDelayMs: 5, maxDelayMs: 20, multiplier: 2 } });
    try {
      await d.until(() => d.disconnects.length >= 3, 'fewer than three refusals');
      expect(d.disconnects.slice(0, 3)).toEqual(Array(3).fill({ cause: 'refused', detail: '0x86 Bad User Name or Password', wasConnected: false, willRetry: true }));
      expect(d.connects).toHaveLength(0);
    } finally {
      await d.client.stop(false);
      await strict.close();
    }
  });

  it('stop(true) disconnects cleanly: the will is not published, the last callback is normal, no reconnect', async () => {
    const watcher = device(tb.url);
    await connected(watcher);
    await subscribed(watcher, 'lean/will/#', 1);
    const d = device(tb.url, {
      will: { topic: 'lean/will/gone', payload: Buffer.from('gone'), qos: 1, retain: false, delaySec: 0 },
      reconnect: { enabled: true, initialDelayMs: 1, maxDelayMs: 1, multiplier: 1 },
    });
    await connected(d);
    await d.client.stop(true);
    expect(d.disconnects).toEqual([{ cause: 'normal', detail: 'stopped', wasConnected: true, willRetry: false }]);
    expect(d.client.state).toBe('closed');
    // Proof the will did not come: a later message on the same subscription arrives alone.
    const after = device(tb.url);
    await connected(after);
    after.client.publish('lean/will/marker', Buffer.from('m'), 1, false, 1);
    await watcher.until(() => watcher.messages.length >= 1, 'the marker never arrived');
    expect(watcher.messages.map((m) => m.topic)).toEqual(['lean/will/marker']);
    expect(d.connects).toHaveLength(1);
  });

  it('destroy() drops the link without DISCONNECT: the broker publishes the will', async () => {
    const watcher = device(tb.url);
    await connected(watcher);
    await subscribed(watcher, 'lean/crash/#', 1);
    const d = device(tb.url, { protocolVersion: 4, will: { topic: 'lean/crash/gone', payload: Buffer.from('gone'), qos: 1, retain: false, delaySec: 0 } });
    await connected(d);
    d.client.destroy();
    await watcher.until(() => watcher.messages.length >= 1, 'the will never arrived');
    expect(watcher.messages[0]).toMatchObject({ topic: 'lean/crash/gone', payload: 'gone' });
    expect(d.disconnects).toHaveLength(0);
  });

  it('cut() drops the link without DISCONNECT (the will fires), reports the cause and reconnects with its session', async () => {
    const watcher = device(tb.url);
    await connected(watcher);
    await subscribed(watcher, 'lean/cut/#', 1);
    const reconnect = { enabled: true, initialDelayMs: 20, maxDelayMs: 200, multiplier: 2 };
    const d = device(tb.url, { clean: false, sessionExpirySec: 60, reconnect, will: { topic: 'lean/cut/gone', payload: Buffer.from('gone'), qos: 1, retain: false, delaySec: 0 } });
    await connected(d);
    d.client.cut('error', 'chaos storm');
    expect(d.disconnects).toEqual([{ cause: 'error', detail: 'chaos storm', wasConnected: true, willRetry: true }]);
    await watcher.until(() => watcher.messages.some((m) => m.topic === 'lean/cut/gone'), 'the will never arrived');
    await connected(d, 2);
    expect(d.connects[1]).toEqual({ sessionPresent: true, reconnect: true });
  });

  it('cut() with a hold starts no attempt before the hold ends, also for a client not started yet', async () => {
    const reconnect = { enabled: true, initialDelayMs: 20, maxDelayMs: 200, multiplier: 2 };
    const holdMs = 300;
    const d = device(tb.url, { reconnect });
    await connected(d);
    const cutAt = Date.now();
    d.client.cut('error', 'partition', holdMs);
    await connected(d, 2);
    const reconnectedAt = Date.now();
    expect(d.disconnects).toHaveLength(1);
    expect(reconnectedAt).toBeGreaterThanOrEqual(cutAt + holdMs);

    const idle = device(tb.url, { reconnect }, false);
    const heldAt = Date.now();
    idle.client.cut('error', 'partition', holdMs);
    idle.client.start();
    expect(idle.client.state).toBe('waiting');
    await connected(idle);
    expect(Date.now()).toBeGreaterThanOrEqual(heldAt + holdMs);
    // Nothing was cut (no connection yet), so there was nothing to report.
    expect(idle.disconnects).toEqual([]);
  });

  it('connects over WebSocket (ws://, default path /mqtt) and over TLS (mqtts://, wss://)', async () => {
    const pki: TestPki = await createTestPki();
    const ws = await tb.broker.listen({ type: 'ws', port: 0, host: '127.0.0.1' });
    const mqtts = await tb.broker.listen({ type: 'tls', port: 0, host: '127.0.0.1', cert: pki.server.cert, key: pki.server.key });
    const wss = await tb.broker.listen({ type: 'wss', port: 0, host: '127.0.0.1', cert: pki.server.cert, key: pki.server.key });
    const tls = { ca: pki.ca.cert };
    const sub = device(`ws://127.0.0.1:${ws.port}`);
    await connected(sub);
    await subscribed(sub, 'lean/transports/#', 2);
    const a = device(`mqtts://127.0.0.1:${mqtts.port}`, { tls, protocolVersion: 4 });
    const b = device(`wss://localhost:${wss.port}/mqtt`, { tls });
    await connected(a);
    await connected(b);
    a.client.publish('lean/transports/tls', Buffer.from('a'), 2, false, 1);
    b.client.publish('lean/transports/wss', Buffer.from('b'), 1, false, 2);
    await sub.until(() => sub.messages.length >= 2, 'messages over TLS / WSS never arrived');
    expect(sub.messages.map((m) => m.payload).sort()).toEqual(['a', 'b']);
  });
});

describe('against raw servers', () => {
  it('delivers an inbound QoS 2 message once even when the broker resends the PUBLISH before PUBREL', async () => {
    const raw = await rawServer(5);
    const d = device(raw.url);
    const c = await raw.nextConn();
    await c.next('connect');
    c.send({ type: 'connack', sessionPresent: false, reasonCode: 0 });
    await connected(d);
    const publish = { type: 'publish', topic: 'cmd/valve', payload: Buffer.from('open'), qos: 2, retain: false, packetId: 42 } as const;
    c.send({ ...publish, dup: false });
    c.send({ ...publish, dup: true });
    await c.next('pubrec');
    await c.next('pubrec');
    c.send({ type: 'pubrel', packetId: 42 });
    expect(await c.next('pubcomp')).toMatchObject({ packetId: 42 });
    expect(d.messages).toEqual([{ topic: 'cmd/valve', payload: 'open', qos: 2, retain: false, dup: false }]);
  });

  it('resends unacknowledged QoS 1/2 with DUP=1 and the same ids after the link dies, and completes them', async () => {
    const raw = await rawServer(4);
    const d = device(raw.url, { protocolVersion: 4, clean: false, reconnect: { enabled: true, initialDelayMs: 5, maxDelayMs: 5, multiplier: 1 } });
    const first = await raw.nextConn();
    await first.next('connect');
    first.send({ type: 'connack', sessionPresent: false, reasonCode: 0 });
    await connected(d);
    d.client.publish('t/1', Buffer.from('one'), 1, false, 1);
    d.client.publish('t/2', Buffer.from('two'), 2, false, 2);
    const p1 = await first.next('publish');
    const p2 = await first.next('publish');
    first.socket.destroy();
    const second = await raw.nextConn();
    await second.next('connect');
    second.send({ type: 'connack', sessionPresent: true, reasonCode: 0 });
    const r1 = await second.next('publish');
    const r2 = await second.next('publish');
    expect([r1, r2]).toMatchObject([
      { packetId: (p1 as { packetId: number }).packetId, dup: true, topic: 't/1', qos: 1 },
      { packetId: (p2 as { packetId: number }).packetId, dup: true, topic: 't/2', qos: 2 },
    ]);
    second.send({ type: 'puback', packetId: (r1 as { packetId: number }).packetId });
    second.send({ type: 'pubrec', packetId: (r2 as { packetId: number }).packetId });
    await second.next('pubrel');
    second.send({ type: 'pubcomp', packetId: (r2 as { packetId: number }).packetId });
    await d.until(() => d.acks.length === 2, 'the resent messages were not completed');
    expect(d.acks).toEqual([{ token: 1, qos: 1, reasonCode: 0 }, { token: 2, qos: 2, reasonCode: 0 }]);
    expect(d.disconnects[0]).toMatchObject({ cause: 'server', wasConnected: true, willRetry: true });
  });

  it("times out with 'timeout' when a server stops answering after PINGREQ", async () => {
    const raw = await rawServer(4);
    const d = device(raw.url, { protocolVersion: 4, keepaliveSec: 1 });
    const c = await raw.nextConn();
    await c.next('connect');
    c.send({ type: 'connack', sessionPresent: false, reasonCode: 0 });
    await connected(d);
    await c.next('pingreq');
    await d.until(() => d.disconnects.length === 1, 'the silent server was never given up on');
    expect(d.disconnects[0]).toMatchObject({ cause: 'timeout', wasConnected: true, willRetry: false });
  });

  it("times out with 'timeout' when no CONNACK comes within connectTimeoutMs", async () => {
    const raw = await rawServer(4);
    const d = device(raw.url, { protocolVersion: 4, connectTimeoutMs: 200 });
    await (await raw.nextConn()).next('connect');
    await d.until(() => d.disconnects.length === 1, 'no connect timeout');
    expect(d.disconnects[0]).toEqual({ cause: 'timeout', detail: 'no CONNACK within 200 ms', wasConnected: false, willRetry: false });
  });

  for (const [version, code, detail] of [[5, 0x86, '0x86 Bad User Name or Password'], [4, 5, '5 Connection Refused, not authorized']] as const) {
    it(`reports CONNACK ${code} at level ${version} as 'refused'`, async () => {
      const raw = await rawServer(version, (c) => {
        void c.next('connect').then(() => c.send({ type: 'connack', sessionPresent: false, reasonCode: code }));
      });
      const d = device(raw.url, { protocolVersion: version });
      await d.until(() => d.disconnects.length === 1, 'no refusal');
      expect(d.disconnects[0]).toEqual({ cause: 'refused', detail, wasConnected: false, willRetry: false });
    });
  }

  it("reports a malformed packet from the broker as 'protocol'", async () => {
    const raw = await rawServer(4);
    const d = device(raw.url, { protocolVersion: 4 });
    const c = await raw.nextConn();
    await c.next('connect');
    c.send({ type: 'connack', sessionPresent: false, reasonCode: 0 });
    await connected(d);
    c.socket.write(Buffer.from([0x62, 0x02, 0x00])); // PUBREL, then a reserved packet type 0
    c.socket.write(Buffer.from([0x01, 0x00, 0x00]));
    await d.until(() => d.disconnects.length === 1, 'the malformed packet went unnoticed');
    expect(d.disconnects[0]).toMatchObject({ cause: 'protocol', wasConnected: true });
  });

  it('connects from localAddress 127.0.0.2 when asked', async () => {
    const raw = await rawServer(4, (c) => {
      void c.next('connect').then(() => c.send({ type: 'connack', sessionPresent: false, reasonCode: 0 }));
    });
    const d = device(raw.url, { protocolVersion: 4, localAddress: '127.0.0.2' });
    await connected(d);
    expect(raw.remoteAddresses).toEqual(['127.0.0.2']);
  });

  it("reports an unreachable port as 'error' ECONNREFUSED and keeps retrying when reconnect is enabled", async () => {
    const port = REFUSED_PORT;
    const once = device(`mqtt://127.0.0.1:${port}`);
    await once.until(() => once.disconnects.length === 1, 'no failure');
    expect(once.disconnects[0]).toEqual({ cause: 'error', detail: 'ECONNREFUSED', wasConnected: false, willRetry: false });
    const retrying = device(`mqtt://127.0.0.1:${port}`, { reconnect: { enabled: true, initialDelayMs: 5, maxDelayMs: 20, multiplier: 2 } });
    await retrying.until(() => retrying.disconnects.length >= 4, 'fewer than four attempts');
    expect(retrying.disconnects.slice(0, 4).every((x) => x.cause === 'error' && x.detail === 'ECONNREFUSED' && x.willRetry)).toBe(true);
    await retrying.client.stop(true);
    expect(retrying.disconnects.at(-1)).toEqual({ cause: 'normal', detail: 'stopped', wasConnected: false, willRetry: false });
    expect(retrying.client.state).toBe('closed');
  });

  it('sends DISCONNECT 0x00 on stop(true) and resolves once the socket closed', async () => {
    const raw = await rawServer(5);
    const d = device(raw.url);
    const c = await raw.nextConn();
    await c.next('connect');
    c.send({ type: 'connack', sessionPresent: false, reasonCode: 0 });
    await connected(d);
    const stopped = d.client.stop(true);
    const disconnect = await c.next('disconnect');
    expect(disconnect).toMatchObject({ type: 'disconnect' });
    expect((disconnect as { reasonCode?: number }).reasonCode ?? 0).toBe(0);
    await stopped;
    expect(d.disconnects).toEqual([{ cause: 'normal', detail: 'stopped', wasConnected: true, willRetry: false }]);
  });
});

// ------------------------------------------------------------------------------------------------

describe('against Mosquitto', () => {
  const available = requireProgram('mosquitto (broker)', () => {
    const broker = probes.mosquittoBroker();
    if (broker !== true) return broker;
    return findOnPath('stdbuf') !== undefined || 'stdbuf not found on PATH (mosquitto output must be line-buffered) — apt-get install coreutils';
  });
  describe.skipIf(!available)('mosquitto', () => {
    let dir = '';
    let port = 0;
    let url = '';

    beforeAll(async () => {
      dir = mkdtempSync(path.join(tmpdir(), 'lean-client-mosquitto-'));
      port = await freePort();
      url = `mqtt://127.0.0.1:${port}`;
      const conf = path.join(dir, 'mosquitto.conf');
      writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'log_dest stdout', ''].join('\n'));
      // Its log goes to a pipe, block-buffered: stdbuf -oL (which execs mosquitto) makes it line-buffered.
      const child = spawnChild('stdbuf', ['-oL', mosquittoBrokerPath()!, '-c', conf]);
      await child.waitForLine((l) => l.includes('running'), WAIT_MS, 'mosquitto never said it was running');
    });

    afterAll(async () => {
      await killAllChildren();
      rmSync(dir, { recursive: true, force: true });
    });

    for (const version of [4, 5] as const) {
      for (const qos of [1, 2] as const) {
        it(`round-trips QoS ${qos} at level ${version}`, async () => {
          const topic = `lean/mosq/${version}/${qos}`;
          // The broker may still be binding: let the first devices retry until it listens.
          const retry = { enabled: true, initialDelayMs: 20, maxDelayMs: 100, multiplier: 2 };
          const sub = device(url, { protocolVersion: version, reconnect: retry });
          const pub = device(url, { protocolVersion: version, reconnect: retry });
          await connected(sub);
          await connected(pub);
          await subscribed(sub, topic, 2);
          for (let i = 0; i < 100; i++) pub.client.publish(topic, Buffer.from(String(i)), qos, false, i);
          await pub.until(() => pub.acks.length === 100, 'not all acknowledged');
          expect(pub.acks.map((a) => [a.token, a.reasonCode])).toEqual(Array.from({ length: 100 }, (_, i) => [i, 0]));
          await sub.until(() => sub.messages.length >= 100, 'not all delivered');
          expect(sub.messages.map((m) => m.payload)).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));
          expect(sub.messages.every((m) => m.qos === qos)).toBe(true);
        });
      }

      it(`resumes a persistent session at level ${version}: messages sent while offline arrive after the reconnect`, async () => {
        const g = gate(port, REFUSED_PORT);
        const topic = `lean/mosq/resume/${version}`;
        const sub = device(url, {
          protocolVersion: version, clean: false, sessionExpirySec: 300, createStream: g.createStream,
          reconnect: { enabled: true, initialDelayMs: 10, maxDelayMs: 100, multiplier: 2 },
        });
        await connected(sub);
        await subscribed(sub, topic, 2);
        g.open = false;
        g.current!.destroy();
        await sub.until(() => sub.disconnects.some((x) => x.detail === 'ECONNREFUSED'), 'never offline');
        const pub = device(url, { protocolVersion: version });
        await connected(pub);
        for (let i = 0; i < 10; i++) pub.client.publish(topic, Buffer.from(String(i)), (1 + (i % 2)) as QoS, false, i);
        await pub.until(() => pub.acks.length === 10, 'offline messages not acknowledged');
        g.open = true;
        await connected(sub, 2);
        expect(sub.connects[1]).toEqual({ sessionPresent: true, reconnect: true });
        await sub.until(() => sub.messages.length >= 10, 'offline messages never arrived');
        // Order is promised per topic and QoS [MQTT-4.6.0-6]; Mosquitto sends queued QoS 1 before QoS 2.
        expect(sub.messages.filter((m) => m.qos === 1).map((m) => m.payload)).toEqual(['0', '2', '4', '6', '8']);
        expect(sub.messages.filter((m) => m.qos === 2).map((m) => m.payload)).toEqual(['1', '3', '5', '7', '9']);
        expect(sub.messages).toHaveLength(10);
      });
    }
  });
});
