/**
 * The broker's error paths at the byte level: exact bytes in over a raw TCP socket (test/helpers/
 * byte-client.ts, which sends what protocol/encoder.ts would refuse to produce), exact bytes out.
 * Each test is named after the statement it checks: 5.0 ids for MQTT 5 connections, 3.1.1 ids for
 * protocol level 4; where the specification has no statement id, the section is named instead.
 *
 * MQTT 5 connections set Request Problem Information to 0. The broker then leaves the reason string
 * off its CONNACK and DISCONNECT (the spec lets it choose, [MQTT-3.1.2-29]), so those are exactly
 * `20 03 00 <reason code> 00` and `e0 01 <reason code>`.
 *
 * After every test, a fresh MQTT.js client does a QoS 1 round trip: an error on one connection must
 * never stop the broker serving the others.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BrokerOptions } from '../../../broker/options.js';
import { PacketParser } from '../../../protocol/parser.js';
import { closeAllClients, collect, connectClient, startBroker, type TestBroker } from '../../helpers/broker.js';
import { ByteClient, bytes, closeAllByteClients, hex } from '../../helpers/byte-client.js';

let tb: TestBroker | undefined;
let healthChecks = 0;

afterEach(async () => {
  try {
    if (tb !== undefined) await expectBrokerStillServes(tb);
  } finally {
    await closeAllByteClients();
    await closeAllClients();
    await tb?.close();
    tb = undefined;
  }
});

async function broker(options: Partial<BrokerOptions> = {}): Promise<TestBroker> {
  tb = await startBroker(options);
  return tb;
}

/** A fresh client connects, subscribes and gets its own QoS 1 message back. */
async function expectBrokerStillServes(t: TestBroker): Promise<void> {
  const clientId = `health-${++healthChecks}`;
  const client = await connectClient(t.url, { protocolVersion: 5, clientId });
  const inbox = collect(client);
  await client.subscribeAsync(`health/${clientId}`, { qos: 1 });
  await client.publishAsync(`health/${clientId}`, 'still serving', { qos: 1 });
  const [message] = await inbox.waitFor(1, 3000);
  expect([message!.topic, message!.payload.toString(), message!.packet.qos]).toEqual([`health/${clientId}`, 'still serving', 1]);
}

// ---------------------------------------------------------------- CONNECT packets, byte for byte

/** Client id 'c': `00 01 63`. */
const CLIENT_ID_C = bytes`00 01 63`;

/** A 3.1.1 CONNECT: clean session, keep alive 0, client id 'c'. */
const CONNECT_311 = bytes`
  10 0d             // CONNECT, remaining length 13
  00 04 4d 51 54 54 // protocol name 'MQTT'
  04                // protocol level 4 (3.1.1)
  02                // connect flags: clean session
  00 00             // keep alive 0
  ${hex(CLIENT_ID_C)}
`;

/** A 5.0 CONNECT: clean start, keep alive 0, Request Problem Information 0, client id 'c'. */
const CONNECT_5 = bytes`
  10 10             // CONNECT, remaining length 16
  00 04 4d 51 54 54 // protocol name 'MQTT'
  05                // protocol level 5
  02                // connect flags: clean start
  00 00             // keep alive 0
  02 17 00          // properties (2 bytes): request problem information (0x17) = 0
  ${hex(CLIENT_ID_C)}
`;

/** Connects over a byte client and checks the CONNACK accepts the connection; returns the client and CONNACK bytes. */
async function connected(version: 4 | 5): Promise<{ client: ByteClient; connack: Buffer }> {
  const client = await ByteClient.open(tb!.port);
  client.send(version === 5 ? CONNECT_5 : CONNECT_311);
  const connack = await client.nextFrame();
  if (version === 4) {
    expect(hex(connack)).toBe('20 02 00 00');
  } else {
    // The v5 CONNACK carries the broker's limits as properties; its first bytes are fixed.
    expect(connack[0], `not a CONNACK: ${hex(connack)}`).toBe(0x20);
    expect(hex(connack.subarray(2, 4)), 'session present 0, reason code 0x00').toBe('00 00');
  }
  return { client, connack };
}

/** Expects exactly `frame` as the next bytes, then the connection closed with nothing after it. */
async function expectFrameThenClose(client: ByteClient, frame: string): Promise<void> {
  expect(hex(await client.nextFrame())).toBe(frame);
  expect(hex(await client.waitClosed(3000, `the broker sent ${frame} but never closed the connection`))).toBe('');
}

/** Expects the connection closed without a single byte from the broker, ever. */
async function expectClosedWithoutBytes(client: ByteClient): Promise<void> {
  expect(hex(await client.waitClosed(3000))).toBe('');
  expect(hex(client.all())).toBe('');
}

/** Expects the connection closed with no byte after the frames already read (the CONNACK). */
async function expectClosedWithNothingMore(client: ByteClient): Promise<void> {
  expect(hex(await client.waitClosed(3000))).toBe('');
}

describe('CONNECT', () => {
  it('[MQTT-3.1.0-1] a first packet other than CONNECT (PINGREQ) closes the connection, nothing sent', async () => {
    await broker();
    const client = await ByteClient.open(tb!.port);
    client.send(bytes`c0 00`); // PINGREQ
    await expectClosedWithoutBytes(client);
    expect(tb!.broker.metrics.protocolErrors).toBe(1);
  });

  it('[MQTT-3.1.0-2] a second CONNECT is a protocol error: DISCONNECT 0x82, then close', async () => {
    await broker();
    const { client } = await connected(5);
    client.send(CONNECT_5);
    await expectFrameThenClose(client, 'e0 01 82');
  });

  it('[MQTT-3.1.2-2] protocol level 6 is answered with CONNACK return code 0x01, then close', async () => {
    await broker();
    const client = await ByteClient.open(tb!.port);
    client.send(bytes`
      10 0d             // CONNECT, remaining length 13
      00 04 4d 51 54 54 // protocol name 'MQTT'
      06                // protocol level 6: no such MQTT version
      02                // connect flags: clean session
      00 00             // keep alive 0
      00 01 63          // client id 'c'
    `);
    await expectFrameThenClose(client, '20 02 00 01');
  });

  it('[MQTT-3.1.2-1] an unknown protocol name closes the connection without accepting it', async () => {
    await broker();
    const client = await ByteClient.open(tb!.port);
    client.send(bytes`
      10 0d             // CONNECT, remaining length 13
      00 04 4d 51 54 58 // protocol name 'MQTX'
      04                // protocol level 4
      02                // connect flags: clean session
      00 00             // keep alive 0
      00 01 63          // client id 'c'
    `);
    const rest = await client.waitClosed(3000);
    // The server MAY close at once; a refusal (CONNACK 0x01) before closing is allowed too. Never an acceptance.
    expect(['', '20 02 00 01']).toContain(hex(rest));
    expect(tb!.broker.core.sessions.has('c')).toBe(false);
  });

  it('[MQTT-3.1.2-3] (3.1.1) the reserved CONNECT flag set: the connection is closed, nothing sent', async () => {
    await broker();
    const client = await ByteClient.open(tb!.port);
    client.send(bytes`
      10 0d             // CONNECT, remaining length 13
      00 04 4d 51 54 54 // protocol name 'MQTT'
      04                // protocol level 4
      03                // connect flags: clean session + the reserved bit 0
      00 00             // keep alive 0
      00 01 63          // client id 'c'
    `);
    await expectClosedWithoutBytes(client);
  });

  it('[MQTT-3.1.2-3] (5.0) the reserved CONNECT flag set is a malformed packet: CONNACK 0x81, then close', async () => {
    await broker();
    const client = await ByteClient.open(tb!.port);
    client.send(bytes`
      10 0e             // CONNECT, remaining length 14
      00 04 4d 51 54 54 // protocol name 'MQTT'
      05                // protocol level 5
      03                // connect flags: clean start + the reserved bit 0
      00 00             // keep alive 0
      00                // no properties
      00 01 63          // client id 'c'
    `);
    await expectFrameThenClose(client, '20 03 00 81 00');
  });

  it('[MQTT-4.12.0-1] an authentication method the broker does not offer: CONNACK 0x8C, then close', async () => {
    await broker();
    const client = await ByteClient.open(tb!.port);
    client.send(bytes`
      10 18                   // CONNECT, remaining length 24
      00 04 4d 51 54 54       // protocol name 'MQTT'
      05                      // protocol level 5
      02                      // connect flags: clean start
      00 00                   // keep alive 0
      0a                      // properties (10 bytes):
      17 00                   //   request problem information (0x17) = 0
      15 00 05 50 4c 41 49 4e //   authentication method (0x15) = 'PLAIN'
      00 01 63                // client id 'c'
    `);
    await expectFrameThenClose(client, '20 03 00 8c 00');
  });

  it('3.1.4 (SHOULD, no statement id) a connection that sends nothing is closed after connectTimeout', async () => {
    await broker({ connectTimeout: 1 });
    const client = await ByteClient.open(tb!.port);
    const opened = performance.now();
    await client.waitClosed(4000, 'the broker never closed a connection that sent no CONNECT');
    const elapsed = performance.now() - opened;
    expect(hex(client.all())).toBe('');
    // Not closed at once: the broker waited for the CONNECT (timer slack allowed on the lower bound).
    expect(elapsed).toBeGreaterThanOrEqual(900);
  });
});

// ---------------------------------------------------------------- packets pipelined after CONNECT

describe('packets pipelined after CONNECT (a client need not wait for CONNACK, 3.1.4)', () => {
  it('[MQTT-3.1.4-5] a valid CONNECT written together with a malformed packet is accepted (CONNACK 0x00), then DISCONNECT 0x81', async () => {
    await broker();
    const client = await ByteClient.open(tb!.port);
    client.send(Buffer.concat([CONNECT_5, bytes`30 ff ff ff ff 7f`])); // then a PUBLISH whose remaining length has five bytes
    const connack = await client.nextFrame();
    expect(hex(connack.subarray(2, 4)), `CONNACK ${hex(connack)}: session present 0, reason code 0x00`).toBe('00 00');
    await expectFrameThenClose(client, 'e0 01 81');
  });

  it('whole packets before a malformed one in the same write are handled: a QoS 1 PUBLISH is delivered and acknowledged', async () => {
    await broker();
    const subscriber = await connectClient(tb!.url, { protocolVersion: 5, clientId: 'pipeline-sub' });
    const inbox = collect(subscriber);
    await subscriber.subscribeAsync('pipeline/t', { qos: 1 });
    const client = await ByteClient.open(tb!.port);
    client.send(Buffer.concat([
      CONNECT_5,
      bytes`
        32                                  // PUBLISH QoS 1
        11                                  // remaining length 17
        00 0a 70 69 70 65 6c 69 6e 65 2f 74 // topic 'pipeline/t'
        00 01                               // packet identifier 1
        00                                  // no properties
        6f 6b                               // payload 'ok'
      `,
      bytes`36 00`, // PUBLISH with QoS 3
    ]));
    await client.nextFrame(); // CONNACK
    expect(hex(await client.nextFrame())).toBe('40 02 00 01'); // PUBACK 1, success
    await expectFrameThenClose(client, 'e0 01 81');
    const [message] = await inbox.waitFor(1, 3000);
    expect([message!.topic, message!.payload.toString()]).toEqual(['pipeline/t', 'ok']);
  });

  it('[MQTT-3.1.4-5] (3.1.1) after a refused CONNECT, a PUBLISH written with it is not processed', async () => {
    await broker();
    const subscriber = await connectClient(tb!.url, { protocolVersion: 4, clientId: 'refused-sub' });
    const inbox = collect(subscriber);
    await subscriber.subscribeAsync('refused/#', { qos: 0 });
    const client = await ByteClient.open(tb!.port);
    client.send(bytes`
      10 0c             // CONNECT, remaining length 12
      00 04 4d 51 54 54 // protocol name 'MQTT'
      04                // protocol level 4
      00                // connect flags: clean session 0 …
      00 00             // keep alive 0
      00 00             // … with an empty client id: refused [MQTT-3.1.3-8]
      30 0b             // PUBLISH QoS 0, remaining length 11
      00 09 72 65 66 75 73 65 64 2f 61 // topic 'refused/a'
    `);
    await expectFrameThenClose(client, '20 02 00 02');
    // Deliveries are ordered: if the marker published now arrives first, 'refused/a' was never routed.
    await subscriber.publishAsync('refused/marker', 'marker', { qos: 0 });
    const [first] = await inbox.waitFor(1, 3000);
    expect(first!.topic).toBe('refused/marker');
  });
});

// ---------------------------------------------------------------- after CONNECT (MQTT 5)

describe('MQTT 5 connection: malformed packets and protocol errors', () => {
  it('[MQTT-1.5.5-1] a remaining length that is not minimally encoded (PINGREQ c0 80 00): DISCONNECT 0x81', async () => {
    await broker();
    const { client } = await connected(5);
    client.send(bytes`c0 80 00`); // PINGREQ, remaining length 0 encoded in two bytes
    await expectFrameThenClose(client, 'e0 01 81');
  });

  it('1.5.5 a remaining length of five bytes (at most four are allowed): DISCONNECT 0x81', async () => {
    await broker();
    const { client } = await connected(5);
    client.send(bytes`30 ff ff ff ff 7f`); // PUBLISH, remaining length with a fifth byte
    await expectFrameThenClose(client, 'e0 01 81');
  });

  it('[MQTT-3.3.1-4] PUBLISH with QoS 3 is malformed: DISCONNECT 0x81', async () => {
    await broker();
    const { client } = await connected(5);
    client.send(bytes`
      36                // PUBLISH, flags 0110: QoS 3
      06                // remaining length 6
      00 01 61          // topic 'a'
      00 01             // packet identifier 1
      00                // no properties
    `);
    await expectFrameThenClose(client, 'e0 01 81');
  });

  it('[MQTT-3.3.2-2] a topic name with a wildcard (a/#): DISCONNECT 0x90', async () => {
    await broker();
    const { client } = await connected(5);
    client.send(bytes`
      30                // PUBLISH QoS 0
      06                // remaining length 6
      00 03 61 2f 23    // topic 'a/#'
      00                // no properties
    `);
    await expectFrameThenClose(client, 'e0 01 90');
  });

  it('[MQTT-3.2.2-15] a packet over the broker\'s Maximum Packet Size: DISCONNECT 0x95', async () => {
    await broker({ maxPacketSize: 128 });
    const { client, connack } = await connected(5);
    const [announced] = new PacketParser({ protocolVersion: 5 }).push(connack);
    expect(announced?.type === 'connack' ? announced.properties?.maximumPacketSize : undefined).toBe(128);
    client.send(Buffer.concat([
      bytes`
        30                // PUBLISH QoS 0
        c8 01             // remaining length 200: the packet is 203 bytes
        00 01 61          // topic 'a'
        00                // no properties
      `,
      Buffer.alloc(196, 0x78), // payload
    ]));
    await expectFrameThenClose(client, 'e0 01 95');
  });

  it('[MQTT-3.3.2-9] a topic alias above the broker\'s Topic Alias Maximum: DISCONNECT 0x94', async () => {
    await broker({ topicAliasMaximum: 4 });
    const { client, connack } = await connected(5);
    const [announced] = new PacketParser({ protocolVersion: 5 }).push(connack);
    expect(announced?.type === 'connack' ? announced.properties?.topicAliasMaximum : undefined).toBe(4);
    client.send(bytes`
      30                // PUBLISH QoS 0
      08                // remaining length 8
      00 01 61          // topic 'a'
      03 23 00 05       // properties (3 bytes): topic alias (0x23) = 5
      78                // payload 'x'
    `);
    await expectFrameThenClose(client, 'e0 01 94');
  });

  it('[MQTT-3.3.2-8] topic alias 0 is not permitted: DISCONNECT 0x82 (0x94 is defined for "greater than the maximum")', async () => {
    await broker({ topicAliasMaximum: 4 });
    const { client } = await connected(5);
    client.send(bytes`
      30                // PUBLISH QoS 0
      08                // remaining length 8
      00 01 61          // topic 'a'
      03 23 00 00       // properties (3 bytes): topic alias (0x23) = 0
      78                // payload 'x'
    `);
    await expectFrameThenClose(client, 'e0 01 82');
  });

  it('[MQTT-3.8.3-4] No Local on a shared subscription is a protocol error: DISCONNECT 0x82', async () => {
    await broker();
    const { client } = await connected(5);
    client.send(bytes`
      82                                  // SUBSCRIBE
      10                                  // remaining length 16
      00 01                               // packet identifier 1
      00                                  // no properties
      00 0a 24 73 68 61 72 65 2f 67 2f 74 // topic filter '$share/g/t'
      05                                  // options: QoS 1, No Local
    `);
    await expectFrameThenClose(client, 'e0 01 82');
  });

  const serverOnly: Array<[string, Buffer]> = [
    ['CONNACK', bytes`20 03 00 00 00`], // session present 0, reason 0x00, no properties
    ['SUBACK', bytes`90 04 00 01 00 00`], // packet identifier 1, no properties, granted QoS 0
    ['PINGRESP', bytes`d0 00`],
  ];
  for (const [name, packet] of serverOnly) {
    it(`2.1.2 ${name} flows Server to Client only: from a client it is a protocol error, DISCONNECT 0x82`, async () => {
      await broker();
      const { client } = await connected(5);
      client.send(packet);
      await expectFrameThenClose(client, 'e0 01 82');
    });
  }

  it('[MQTT-4.12.0-7] AUTH without an authentication method in CONNECT: DISCONNECT 0x82', async () => {
    await broker();
    const { client } = await connected(5);
    client.send(bytes`
      f0                // AUTH
      02                // remaining length 2
      18                // reason code 0x18: continue authentication
      00                // no properties
    `);
    await expectFrameThenClose(client, 'e0 01 82');
  });

  it('[MQTT-3.12.4-1] PINGREQ is answered with PINGRESP d0 00 and the connection stays open', async () => {
    await broker();
    const { client } = await connected(5);
    client.send(bytes`c0 00`);
    expect(hex(await client.nextFrame())).toBe('d0 00');
    client.send(bytes`c0 00`);
    expect(hex(await client.nextFrame())).toBe('d0 00');
  });
});

// ---------------------------------------------------------------- after CONNECT (3.1.1)

describe('MQTT 3.1.1 connection: errors close the connection without a reason', () => {
  it('[MQTT-3.3.1-4] PUBLISH with QoS 3: the connection is closed, nothing sent', async () => {
    await broker();
    const { client } = await connected(4);
    client.send(bytes`
      36                // PUBLISH, flags 0110: QoS 3
      05                // remaining length 5
      00 01 61          // topic 'a'
      00 01             // packet identifier 1
    `);
    await expectClosedWithNothingMore(client);
  });

  it('[MQTT-3.1.0-2] a second CONNECT: the connection is closed, nothing sent', async () => {
    await broker();
    const { client } = await connected(4);
    client.send(CONNECT_311);
    await expectClosedWithNothingMore(client);
  });

  it('[MQTT-3.12.4-1] PINGREQ is answered with PINGRESP d0 00', async () => {
    await broker();
    const { client } = await connected(4);
    client.send(bytes`c0 00`);
    expect(hex(await client.nextFrame())).toBe('d0 00');
  });
});
