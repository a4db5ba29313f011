/**
 * Regressions for the broker bugs the robustness campaign (bench/robustness/) found, each reduced to
 * its deterministic byte sequence. Every test ends with a fresh client's QoS 1 round trip: the broker
 * must still serve after the sequence (three of these crashed the process before the fixes).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { qos1RoundTrip } from '../../../bench/robustness/client.js';
import { encodePacket } from '../../../protocol/encoder.js';
import type { ConnectPacket, Packet } from '../../../protocol/packets.js';
import { PacketParser } from '../../../protocol/parser.js';
import { startBroker, type TestBroker } from '../../helpers/broker.js';
import { ByteClient, closeAllByteClients } from '../../helpers/byte-client.js';
import { waitUntil } from '../../helpers/wait.js';

let tb: TestBroker | undefined;

afterEach(async () => {
  try {
    if (tb !== undefined) await qos1RoundTrip(tb.port);
  } finally {
    await closeAllByteClients();
    await tb?.close();
    tb = undefined;
  }
});

function connect5(clientId: string, sessionExpiry: number, clean = true): Buffer {
  const p: ConnectPacket = { type: 'connect', protocolVersion: 5, protocolName: 'MQTT', clean, keepalive: 0, clientId, properties: { requestProblemInformation: 0 } };
  if (sessionExpiry > 0) p.properties!.sessionExpiryInterval = sessionExpiry;
  return encodePacket(p, 5);
}

/** A byte client speaking MQTT 5 whose frames are decoded as they are read. */
async function client5(port: number, clientId: string, sessionExpiry: number, clean = true): Promise<{ c: ByteClient; next: (ms?: number) => Promise<Packet> }> {
  const c = await ByteClient.open(port);
  const parser = new PacketParser({ protocolVersion: 5 });
  const next = async (ms = 3000): Promise<Packet> => parser.push(await c.nextFrame(ms))[0]!;
  c.send(connect5(clientId, sessionExpiry, clean));
  const connack = await next();
  expect(connack).toMatchObject({ type: 'connack', reasonCode: 0 });
  return { c, next };
}

const publish = (topic: string, payload: string, packetId: number, retain = false): Buffer =>
  encodePacket({ type: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain, dup: false, packetId }, 5);
const subscribe = (topic: string, packetId = 1): Buffer => encodePacket({ type: 'subscribe', packetId, subscriptions: [{ topic, qos: 1 }] }, 5);

describe('robustness campaign regressions', () => {
  it('[MQTT-3.1.0-2] a second CONNECT with an unsupported protocol level gets DISCONNECT 0x82 (0x84 is a CONNACK-only code; encoding it crashed the broker)', async () => {
    tb = await startBroker();
    const { c, next } = await client5(tb.port, 'second-connect', 0);
    const second = Buffer.from(encodePacket({ type: 'connect', protocolVersion: 4, protocolName: 'MQTT', clean: true, keepalive: 0, clientId: 'x' }, 4));
    second[8] = 9; // protocol level 9
    c.send(second);
    expect(await next()).toEqual({ type: 'disconnect', reasonCode: 0x82 });
    await c.waitClosed();
  });

  it('[MQTT-3.1.0-1] a first packet that is not CONNECT gets no CONNACK, even when a v5 CONNECT follows in the same read', async () => {
    tb = await startBroker();
    const c = await ByteClient.open(tb.port);
    // PINGREQ first, then a v5 CONNECT, in one write: the parser has decoded the CONNECT (and switched to
    // level 5) by the time the PINGREQ is refused, which made the broker answer a v5 CONNACK 0x82.
    c.send(Buffer.concat([Buffer.from([0xc0, 0x00]), connect5('late-connect', 0)]));
    await c.waitClosed();
    expect(c.all().length).toBe(0);
  });

  it('4.8.2 a shared-subscription hand-over after the session lost its persistence (reconnect with expiry 0) does not crash', async () => {
    tb = await startBroker();
    let x = await client5(tb.port, 'X', 600);
    x.c.send(subscribe('$share/g/t'));
    expect(await x.next()).toMatchObject({ type: 'suback', reasonCodes: [1] });
    const p = await client5(tb.port, 'P', 0);
    p.c.send(Buffer.concat([publish('t', 'm1', 1), publish('t', 'm2', 2)]));
    expect(await p.next()).toMatchObject({ type: 'puback', packetId: 1 });
    expect(await p.next()).toMatchObject({ type: 'puback', packetId: 2 });
    expect(await x.next()).toMatchObject({ type: 'publish', qos: 1 });
    expect(await x.next()).toMatchObject({ type: 'publish', qos: 1 });
    // X leaves with both unacknowledged; no other member yet, so they stay in its (persistent) session.
    x.c.destroy();
    const core = tb.broker.core;
    await waitUntil(() => core.sessions.get('X')?.connection === null, 3000, 'X to be detached');
    const y = await client5(tb.port, 'Y', 600);
    y.c.send(subscribe('$share/g/t'));
    expect(await y.next()).toMatchObject({ type: 'suback', reasonCodes: [1] });
    // X resumes with session expiry 0: the store drops its queue, the two deliveries are resent.
    x = await client5(tb.port, 'X', 0, false);
    expect(await x.next()).toMatchObject({ type: 'publish', dup: true });
    expect(await x.next()).toMatchObject({ type: 'publish', dup: true });
    // X leaves again: its shared deliveries go to Y (this enqueue met a store id that was gone).
    x.c.destroy();
    const got = [await y.next(), await y.next()].map((m) => (m.type === 'publish' ? m.payload.toString() : m.type));
    expect(got.sort()).toEqual(['m1', 'm2']);
  });

  it('4.8.2 a non-persistent member hands over a message whose stored copy a persistent subscriber already released', async () => {
    tb = await startBroker();
    const a = await client5(tb.port, 'A', 600);
    a.c.send(subscribe('t'));
    expect(await a.next()).toMatchObject({ type: 'suback' });
    const b = await client5(tb.port, 'B', 0);
    b.c.send(subscribe('$share/g/t'));
    expect(await b.next()).toMatchObject({ type: 'suback' });
    const p = await client5(tb.port, 'P', 0);
    p.c.send(publish('t', 'once', 1));
    expect(await p.next()).toMatchObject({ type: 'puback' });
    const toA = await a.next();
    expect(toA).toMatchObject({ type: 'publish' });
    expect(await b.next()).toMatchObject({ type: 'publish' });
    // A's acknowledgement releases the only stored reference: the store deletes the message.
    a.c.send(encodePacket({ type: 'puback', packetId: (toA as { packetId: number }).packetId }, 5));
    const c = await client5(tb.port, 'C', 600);
    c.c.send(subscribe('$share/g/t'));
    expect(await c.next()).toMatchObject({ type: 'suback' });
    await waitUntil(() => tb!.broker.core.sessions.get('A')?.inflight.size === 0, 3000, "A's acknowledgement");
    // B (not persistent) leaves: its delivery goes to C, which is persistent and must store it afresh.
    b.c.destroy();
    const handed = await c.next();
    expect(handed).toMatchObject({ type: 'publish', qos: 1 });
    expect((handed as { payload: Buffer }).payload.toString()).toBe('once');
  });

  it('4.8.2 after such a hand-over the retained message keeps its own stored copy (a later subscriber gets it, no 0x83)', async () => {
    tb = await startBroker();
    const a = await client5(tb.port, 'A', 600);
    a.c.send(subscribe('r'));
    expect(await a.next()).toMatchObject({ type: 'suback' });
    const b = await client5(tb.port, 'B', 0);
    b.c.send(subscribe('$share/g/r'));
    expect(await b.next()).toMatchObject({ type: 'suback' });
    const p = await client5(tb.port, 'P', 0);
    p.c.send(publish('r', 'kept', 1, true));
    expect(await p.next()).toMatchObject({ type: 'puback' });
    const toA = await a.next();
    expect(await b.next()).toMatchObject({ type: 'publish' });
    a.c.send(encodePacket({ type: 'puback', packetId: (toA as { packetId: number }).packetId }, 5));
    const c = await client5(tb.port, 'C', 600);
    c.c.send(subscribe('$share/g/r'));
    expect(await c.next()).toMatchObject({ type: 'suback' });
    b.c.destroy();
    const handed = await c.next();
    expect(handed).toMatchObject({ type: 'publish', qos: 1 });
    // C completes the handed-over delivery: the copy stored for it is released.
    c.c.send(encodePacket({ type: 'puback', packetId: (handed as { packetId: number }).packetId }, 5));
    await waitUntil(() => tb!.broker.core.sessions.get('C')?.inflight.size === 0, 3000, "C's acknowledgement");
    // A new persistent subscriber still gets the retained message from its own stored copy.
    const d = await client5(tb.port, 'D', 600);
    d.c.send(subscribe('r'));
    expect(await d.next()).toMatchObject({ type: 'suback', reasonCodes: [1] });
    const retained = await d.next();
    expect(retained).toMatchObject({ type: 'publish', retain: true, qos: 1 });
    expect((retained as { payload: Buffer }).payload.toString()).toBe('kept');
  });
});
