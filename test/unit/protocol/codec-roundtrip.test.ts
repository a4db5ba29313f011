/**
 * Codec round trips: encodePacket() then PacketParser.push() gives back the packet (in its canonical form,
 * see canonicalPacket), for explicit examples, every property in every context, random valid packets, and
 * random packet streams cut into random chunks.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encodePacket } from '../../../protocol/encoder.js';
import { PacketParser } from '../../../protocol/parser.js';
import { propertySpecs, type PropertyContext } from '../../../protocol/properties.js';
import type { Packet, Properties, ProtocolVersion } from '../../../protocol/packets.js';
import { ProtocolError } from '../../../protocol/errors.js';
import { arbPacket, arbPublish, bufferEquality, canonicalPacket, packetTypesOf } from '../../helpers/packet-arbitraries.js';

expect.addEqualityTesters([bufferEquality]);

const VERSIONS: readonly ProtocolVersion[] = [3, 4, 5];

function parseAll(chunks: readonly Buffer[], version: ProtocolVersion): Packet[] {
  const parser = new PacketParser({ protocolVersion: version });
  const out: Packet[] = [];
  for (const chunk of chunks) out.push(...parser.push(chunk));
  expect(parser.hasPartialPacket).toBe(false);
  return out;
}

/** encode → parse gives exactly one packet equal to the canonical original; re-encoding it gives the same bytes. */
function expectRoundTrip(packet: Packet, version: ProtocolVersion): void {
  const bytes = encodePacket(packet, version);
  const out = parseAll([bytes], version);
  expect(out).toHaveLength(1);
  expect(out[0]).toStrictEqual(canonicalPacket(packet, version));
  expect(encodePacket(out[0]!, version).equals(bytes)).toBe(true);
}

const buf = (s: string): Buffer => Buffer.from(s, 'utf8');
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// ---------------------------------------------------------------------------------------------------------------
// (a) explicit examples

function connectOf(version: ProtocolVersion): Omit<Extract<Packet, { type: 'connect' }>, 'clientId'> {
  return { type: 'connect', protocolVersion: version, protocolName: version === 3 ? 'MQIsdp' : 'MQTT', clean: true, keepalive: 60 };
}

function examples(version: ProtocolVersion): Array<[string, Packet]> {
  const v5 = version === 5;
  const list: Array<[string, Packet]> = [
    ['CONNECT minimal', { ...connectOf(version), clientId: 'c1' }],
    ['CONNECT not clean, keepalive 65535', { ...connectOf(version), clean: false, keepalive: 0xffff, clientId: 'client-0' }],
    ['CONNECT keepalive 0', { ...connectOf(version), keepalive: 0, clientId: 'k' }],
    ['CONNECT with will QoS 2 retained', {
      ...connectOf(version), clientId: 'w',
      will: { topic: 'dev/1/status', payload: buf('offline'), qos: 2, retain: true },
    }],
    ['CONNECT with will QoS 1, empty payload', { ...connectOf(version), clientId: 'w', will: { topic: 'a', payload: Buffer.alloc(0), qos: 1, retain: false } }],
    ['CONNECT with user name and password', { ...connectOf(version), clientId: 'u', username: 'user', password: hex('00ff10') }],
    ['CONNECT with user name only', { ...connectOf(version), clientId: 'u', username: 'üser ✓' }],
    ['CONNECT with empty user name and empty password', { ...connectOf(version), clientId: 'u', username: '', password: Buffer.alloc(0) }],
    ['CONNECT with everything', {
      ...connectOf(version), clean: false, clientId: 'all',
      will: { topic: 't/ü', payload: buf('bye'), qos: 1, retain: true },
      username: 'u', password: buf('p'),
    }],
    ['CONNACK accepted', { type: 'connack', sessionPresent: false, reasonCode: 0 }],
    ['CONNACK refused', { type: 'connack', sessionPresent: false, reasonCode: v5 ? 0x87 : 5 }],
    ['PUBLISH QoS 0', { type: 'publish', topic: 'a/b', payload: buf('hello'), qos: 0, retain: false, dup: false }],
    ['PUBLISH QoS 0 retained, empty payload', { type: 'publish', topic: 'a', payload: Buffer.alloc(0), qos: 0, retain: true, dup: false }],
    ['PUBLISH QoS 1 dup', { type: 'publish', topic: 'a/b', payload: buf('x'), qos: 1, retain: false, dup: true, packetId: 1 }],
    ['PUBLISH QoS 2 retained, id 65535', { type: 'publish', topic: '/', payload: hex('000102'), qos: 2, retain: true, dup: false, packetId: 0xffff }],
    ['PUBLISH non-ASCII topic', { type: 'publish', topic: 'zürich/€/\u{1F600}', payload: buf('ü'), qos: 1, retain: false, dup: false, packetId: 300 }],
    ['PUBLISH $SYS topic', { type: 'publish', topic: '$SYS/broker/uptime', payload: buf('1'), qos: 0, retain: false, dup: false }],
    // Remaining lengths at the varint boundaries: 127 / 128 (2 bytes), 16383 / 16384 (3 bytes).
    ['PUBLISH remaining length 127', { type: 'publish', topic: 'a', payload: Buffer.alloc(127 - 3 - (v5 ? 1 : 0), 7), qos: 0, retain: false, dup: false }],
    ['PUBLISH remaining length 128', { type: 'publish', topic: 'a', payload: Buffer.alloc(128 - 3 - (v5 ? 1 : 0), 7), qos: 0, retain: false, dup: false }],
    ['PUBLISH remaining length 16383', { type: 'publish', topic: 'a', payload: Buffer.alloc(16_383 - 3 - (v5 ? 1 : 0), 8), qos: 0, retain: false, dup: false }],
    ['PUBLISH remaining length 16384', { type: 'publish', topic: 'a', payload: Buffer.alloc(16_384 - 3 - (v5 ? 1 : 0), 8), qos: 0, retain: false, dup: false }],
    ['PUBACK', { type: 'puback', packetId: 1 }],
    ['PUBACK id 65535', { type: 'puback', packetId: 0xffff }],
    ['PUBREC', { type: 'pubrec', packetId: 2 }],
    ['PUBREL', { type: 'pubrel', packetId: 3 }],
    ['PUBCOMP', { type: 'pubcomp', packetId: 4 }],
    ['SUBSCRIBE one filter', { type: 'subscribe', packetId: 10, subscriptions: [{ topic: 'a/+/c', qos: 1 }] }],
    ['SUBSCRIBE several filters', {
      type: 'subscribe', packetId: 11,
      subscriptions: [{ topic: '#', qos: 0 }, { topic: 'sport/tennis/#', qos: 2 }, { topic: '+/+', qos: 1 }, { topic: 'ü/€', qos: 0 }],
    }],
    ['SUBACK', { type: 'suback', packetId: 10, reasonCodes: [0, 1, 2] }],
    ['UNSUBSCRIBE', { type: 'unsubscribe', packetId: 12, topics: ['a/+/c', '#', 'x'] }],
    ['UNSUBACK', v5 ? { type: 'unsuback', packetId: 12, reasonCodes: [0, 0x11, 0x80] } : { type: 'unsuback', packetId: 12 }],
    ['PINGREQ', { type: 'pingreq' }],
    ['PINGRESP', { type: 'pingresp' }],
    ['DISCONNECT', { type: 'disconnect' }],
  ];
  if (version !== 3) {
    list.push(['CONNACK session present', { type: 'connack', sessionPresent: true, reasonCode: 0 }]);
    list.push(['CONNECT empty client id', { ...connectOf(version), clientId: '' }]);
    list.push(['CONNECT long client id', { ...connectOf(version), clientId: 'x'.repeat(300) }]);
  }
  if (version === 4) list.push(['SUBACK failure', { type: 'suback', packetId: 10, reasonCodes: [0x80, 0] }]);
  if (v5) {
    const userProperties: [string, string][] = [['k', 'v'], ['k', 'v2'], ['', ''], ['ü', '\u{1F600}']];
    list.push(
      ['CONNECT v5 password without user name', { ...connectOf(5), clientId: 'p', password: buf('secret') }],
      ['CONNECT v5 with properties', {
        ...connectOf(5), clientId: 'props',
        properties: {
          sessionExpiryInterval: 0xffffffff, receiveMaximum: 1, maximumPacketSize: 1, topicAliasMaximum: 0,
          requestResponseInformation: 1, requestProblemInformation: 0, userProperties,
          authenticationMethod: 'SCRAM-SHA-1', authenticationData: hex('deadbeef'),
        },
        will: {
          topic: 'will', payload: buf('w'), qos: 0, retain: false,
          properties: {
            willDelayInterval: 10, payloadFormatIndicator: 1, messageExpiryInterval: 0, contentType: 'text/plain',
            responseTopic: 'resp/1', correlationData: hex('01'), userProperties: [['a', 'b']],
          },
        },
      }],
      ['CONNACK v5 with properties', {
        type: 'connack', sessionPresent: true, reasonCode: 0,
        properties: {
          sessionExpiryInterval: 30, receiveMaximum: 0xffff, maximumQos: 1, retainAvailable: 0, maximumPacketSize: 0xffffffff,
          assignedClientIdentifier: 'auto-1', topicAliasMaximum: 0xffff, reasonString: 'ok', userProperties,
          wildcardSubscriptionAvailable: 1, subscriptionIdentifiersAvailable: 0, sharedSubscriptionAvailable: 1,
          serverKeepAlive: 0, responseInformation: 'ri', serverReference: 'other:1883',
          authenticationMethod: 'm', authenticationData: Buffer.alloc(0),
        },
      }],
      ['PUBLISH v5 with properties', {
        type: 'publish', topic: 'a', payload: buf('p'), qos: 1, retain: false, dup: false, packetId: 5,
        properties: {
          payloadFormatIndicator: 1, messageExpiryInterval: 60, topicAlias: 1, responseTopic: 'r', correlationData: hex('0102'),
          userProperties, subscriptionIdentifiers: [1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455], contentType: 'ct',
        },
      }],
      ['PUBLISH v5 empty topic with topic alias', { type: 'publish', topic: '', payload: buf('p'), qos: 0, retain: false, dup: false, properties: { topicAlias: 0xffff } }],
      ['PUBACK v5 reason code only', { type: 'puback', packetId: 1, reasonCode: 0x10 }],
      ['PUBACK v5 success with properties', { type: 'puback', packetId: 1, reasonCode: 0, properties: { reasonString: 'fine' } }],
      ['PUBACK v5 properties without reason code', { type: 'puback', packetId: 1, properties: { userProperties: [['x', 'y']] } }],
      ['PUBACK v5 explicit success', { type: 'puback', packetId: 9, reasonCode: 0 }],
      ['PUBREC v5 error', { type: 'pubrec', packetId: 2, reasonCode: 0x99, properties: { reasonString: 'bad payload' } }],
      ['PUBREL v5 not found', { type: 'pubrel', packetId: 3, reasonCode: 0x92 }],
      ['PUBCOMP v5 with properties', { type: 'pubcomp', packetId: 4, reasonCode: 0x92, properties: { reasonString: 'r', userProperties } }],
      ['SUBSCRIBE v5 options', {
        type: 'subscribe', packetId: 20,
        subscriptions: [
          { topic: 'a', qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2 },
          { topic: '$share/g/x/#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 1 },
          { topic: 'b', qos: 0, noLocal: false, retainAsPublished: true, retainHandling: 0 },
        ],
        properties: { subscriptionIdentifiers: [268_435_455], userProperties },
      }],
      ['SUBACK v5 with properties', { type: 'suback', packetId: 20, reasonCodes: [0, 1, 2, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2], properties: { reasonString: 'partial' } }],
      ['UNSUBSCRIBE v5 with properties', { type: 'unsubscribe', packetId: 21, topics: ['a'], properties: { userProperties } }],
      ['UNSUBACK v5 with properties', { type: 'unsuback', packetId: 21, reasonCodes: [0x8f], properties: { reasonString: 'no' } }],
      ['DISCONNECT v5 with reason code', { type: 'disconnect', reasonCode: 0x04 }],
      ['DISCONNECT v5 explicit normal', { type: 'disconnect', reasonCode: 0 }],
      ['DISCONNECT v5 with properties', {
        type: 'disconnect', reasonCode: 0x9c,
        properties: { sessionExpiryInterval: 0, reasonString: 'moved', serverReference: 'b:1883', userProperties },
      }],
      ['AUTH short form', { type: 'auth' }],
      ['AUTH continue', { type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-1', authenticationData: buf('client-first') } }],
      ['AUTH re-authenticate', { type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'm', reasonString: 'again', userProperties } }],
      ['AUTH success', { type: 'auth', reasonCode: 0, properties: { authenticationMethod: 'm' } }],
    );
  }
  return list;
}

describe('codec round trip: explicit examples', () => {
  for (const version of VERSIONS) {
    describe(`MQTT protocol level ${version}`, () => {
      const list = examples(version);

      it('covers every packet type of the version', () => {
        const covered = new Set(list.map(([, p]) => p.type));
        expect([...covered].sort()).toStrictEqual([...packetTypesOf(version)].sort());
      });

      it.each(list)('%s', (_name, packet) => {
        expectRoundTrip(packet, version);
      });

      it('PUBLISH with a 4-byte remaining length (2 MiB payload)', () => {
        const payload = Buffer.alloc(2_097_152 + 10, 0xa5);
        const packet: Packet = { type: 'publish', topic: 'big', payload, qos: 1, retain: false, dup: false, packetId: 77 };
        const bytes = encodePacket(packet, version);
        expect(bytes.subarray(1, 5).every((b, i) => (i < 3 ? b >= 0x80 : b < 0x80))).toBe(true);
        expectRoundTrip(packet, version);
      });

      it('strings of 65535 bytes', () => {
        const topic = 'é'.repeat(32_767) + 'a'; // 65535 bytes of UTF-8
        expectRoundTrip({ type: 'publish', topic, payload: Buffer.alloc(0), qos: 0, retain: false, dup: false }, version);
        expectRoundTrip({ type: 'unsubscribe', packetId: 1, topics: [topic, 'x'.repeat(65_535)] }, version);
      });
    });
  }

  it('AUTH does not exist before MQTT 5', () => {
    expect(() => encodePacket({ type: 'auth' }, 4)).toThrow(ProtocolError);
  });

  it('a CONNECT switches the parser to its protocol level', () => {
    const parser = new PacketParser({ protocolVersion: 4 });
    const connect: Packet = { ...connectOf(5), clientId: 'v5' };
    const puback: Packet = { type: 'puback', packetId: 3, reasonCode: 0x10, properties: { reasonString: 'r' } };
    const out = parser.push(Buffer.concat([encodePacket(connect, 5), encodePacket(puback, 5)]));
    expect(out).toStrictEqual([connect, puback]);
    expect(parser.protocolVersion).toBe(5);
  });
});

describe('codec round trip: known bytes', () => {
  const cases: Array<[string, Packet, ProtocolVersion, string]> = [
    ['PINGREQ', { type: 'pingreq' }, 4, 'c0 00'],
    ['PINGRESP', { type: 'pingresp' }, 5, 'd0 00'],
    ['CONNECT 3.1', { ...connectOf(3), clientId: 'a' }, 3, '10 0f 0006 4d5149736470 03 02 003c 0001 61'],
    ['CONNECT 3.1.1', { ...connectOf(4), clientId: 'a' }, 4, '10 0d 0004 4d515454 04 02 003c 0001 61'],
    ['CONNECT 5.0', { ...connectOf(5), clientId: 'a' }, 5, '10 0e 0004 4d515454 05 02 003c 00 0001 61'],
    ['CONNECT 3.1.1 will + user + password', {
      ...connectOf(4), clean: false, clientId: 'a', will: { topic: 't', payload: buf('w'), qos: 1, retain: true }, username: 'u', password: buf('p'),
    }, 4, '10 19 0004 4d515454 04 ec 003c 0001 61 0001 74 0001 77 0001 75 0001 70'],
    ['CONNACK 3.1.1', { type: 'connack', sessionPresent: true, reasonCode: 0 }, 4, '20 02 01 00'],
    ['CONNACK 5.0', { type: 'connack', sessionPresent: false, reasonCode: 0x86 }, 5, '20 03 00 86 00'],
    ['PUBLISH QoS 1', { type: 'publish', topic: 'a/b', payload: buf('hi'), qos: 1, retain: false, dup: false, packetId: 10 }, 4, '32 09 0003 612f62 000a 6869'],
    ['PUBLISH QoS 2 dup retain', { type: 'publish', topic: 'a', payload: Buffer.alloc(0), qos: 2, retain: true, dup: true, packetId: 1 }, 4, '3d 05 0001 61 0001'],
    ['PUBLISH 5.0 with subscription ids', {
      type: 'publish', topic: 'a', payload: buf('x'), qos: 0, retain: false, dup: false, properties: { subscriptionIdentifiers: [1, 128] },
    }, 5, '30 0a 0001 61 05 0b01 0b8001 78'],
    ['PUBACK 5.0 short form', { type: 'puback', packetId: 1 }, 5, '40 02 0001'],
    ['PUBACK 5.0 reason code', { type: 'puback', packetId: 1, reasonCode: 0x10 }, 5, '40 03 0001 10'],
    ['PUBREL', { type: 'pubrel', packetId: 0x1234 }, 4, '62 02 1234'],
    ['SUBSCRIBE 3.1.1', { type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'a/#', qos: 2 }] }, 4, '82 08 0001 0003 612f23 02'],
    ['SUBSCRIBE 5.0 options', {
      type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'a', qos: 1, noLocal: true, retainAsPublished: true, retainHandling: 2 }],
    }, 5, '82 07 0001 00 0001 61 2d'],
    ['SUBACK 3.1.1', { type: 'suback', packetId: 1, reasonCodes: [0, 0x80] }, 4, '90 04 0001 00 80'],
    ['UNSUBSCRIBE', { type: 'unsubscribe', packetId: 2, topics: ['a'] }, 4, 'a2 05 0002 0001 61'],
    ['UNSUBACK 3.1.1', { type: 'unsuback', packetId: 2 }, 4, 'b0 02 0002'],
    ['UNSUBACK 5.0', { type: 'unsuback', packetId: 2, reasonCodes: [0x11] }, 5, 'b0 04 0002 00 11'],
    ['DISCONNECT 5.0 short form', { type: 'disconnect' }, 5, 'e0 00'],
    ['DISCONNECT 5.0 reason code', { type: 'disconnect', reasonCode: 0x04 }, 5, 'e0 01 04'],
    ['DISCONNECT 5.0 user property', { type: 'disconnect', reasonCode: 0, properties: { userProperties: [['k', 'v']] } }, 5, 'e0 09 00 07 26 0001 6b 0001 76'],
    ['AUTH 5.0', { type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'm' } }, 5, 'f0 06 18 04 15 0001 6d'],
  ];
  it.each(cases)('%s', (_name, packet, version, bytes) => {
    expect(encodePacket(packet, version).toString('hex')).toBe(hex(bytes).toString('hex'));
    expect(parseAll([hex(bytes)], version)).toStrictEqual([canonicalPacket(packet, version)]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// (a) one test per property and context

/** Representative values of a property: the extremes of its range, non-ASCII strings, repeated entries. */
function sampleValues(spec: (typeof propertySpecs)[number], context: PropertyContext): unknown[] {
  switch (spec.type) {
    case 'boolByte': return [0, 1];
    case 'byte': return [spec.min ?? 0, 0xff];
    case 'uint16': return [spec.min ?? 0, 0xffff];
    case 'uint32': return [spec.min ?? 0, 0xffffffff];
    case 'varint':
      return context === 'subscribe' ? [[1], [127], [128], [268_435_455]] : [[1], [268_435_455], [1, 128, 16_384, 2_097_152, 268_435_455], [5, 5]];
    case 'string': return spec.key === 'responseTopic' ? ['r', 'reply/ü/\u{1F600}'] : ['', 'x', 'üñî €\u{1F600}'];
    case 'binary': return [Buffer.alloc(0), hex('00ff7f80'), Buffer.alloc(300, 1)];
    case 'pair': return [[['k', 'v']], [['k', 'v1'], ['k', 'v2'], ['a', ''], ['', ''], ['ü', '\u{1F600}']]];
  }
}

/** A minimal valid MQTT 5 packet carrying `properties` in `context`. */
function packetWith(context: PropertyContext, properties: Properties, addAuthMethod = true): Packet {
  // Authentication Data is only valid together with an Authentication Method; AUTH always needs the method.
  if (addAuthMethod && (properties.authenticationData !== undefined || context === 'auth') && properties.authenticationMethod === undefined) {
    properties = { authenticationMethod: 'm', ...properties };
  }
  switch (context) {
    case 'connect': return { ...connectOf(5), clientId: 'c', properties };
    case 'will': return { ...connectOf(5), clientId: 'c', will: { topic: 'w', payload: buf('x'), qos: 1, retain: false, properties } };
    case 'connack': return { type: 'connack', sessionPresent: false, reasonCode: 0, properties };
    case 'publish': return { type: 'publish', topic: 't', payload: buf('x'), qos: 1, retain: false, dup: false, packetId: 9, properties };
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp': return { type: context, packetId: 9, reasonCode: 0, properties };
    case 'subscribe':
      return { type: 'subscribe', packetId: 9, subscriptions: [{ topic: 't/#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }], properties };
    case 'suback': return { type: 'suback', packetId: 9, reasonCodes: [1], properties };
    case 'unsubscribe': return { type: 'unsubscribe', packetId: 9, topics: ['t/#'], properties };
    case 'unsuback': return { type: 'unsuback', packetId: 9, reasonCodes: [0], properties };
    case 'disconnect': return { type: 'disconnect', reasonCode: 0, properties };
    case 'auth': return { type: 'auth', reasonCode: 0x18, properties };
  }
}

const ALL_CONTEXTS: readonly PropertyContext[] = [
  'connect', 'connack', 'publish', 'will', 'puback', 'pubrec', 'pubrel', 'pubcomp',
  'subscribe', 'suback', 'unsubscribe', 'unsuback', 'disconnect', 'auth',
];

describe('codec round trip: every property in every context it is allowed in (MQTT 5)', () => {
  const cases = propertySpecs.flatMap((spec) => spec.contexts.map((context) => [spec.key, context, spec] as const));

  it.each(cases)('%s in %s', (key, context, spec) => {
    for (const value of sampleValues(spec, context)) {
      expectRoundTrip(packetWith(context, { [key]: value } as Properties), 5);
    }
  });

  it('the property table covers every context', () => {
    const used = new Set(propertySpecs.flatMap((s) => s.contexts));
    expect([...used].sort()).toStrictEqual([...ALL_CONTEXTS].sort());
  });

  const forbidden = propertySpecs.flatMap((spec) =>
    ALL_CONTEXTS.filter((c) => !spec.contexts.includes(c)).map((context) => [spec.key, context, spec] as const));

  it.each(forbidden)('%s is refused by the encoder in %s', (key, context, spec) => {
    const value = sampleValues(spec, context === 'subscribe' ? 'subscribe' : 'publish')[0];
    expect(() => encodePacket(packetWith(context, { [key]: value } as Properties, false), 5)).toThrow(`${key} is not allowed`);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// (b) random valid packets

describe('codec round trip: random valid packets', () => {
  for (const version of VERSIONS) {
    it(`encode → parse is the identity for MQTT protocol level ${version}`, () => {
      fc.assert(
        fc.property(arbPacket(version), (packet) => {
          expectRoundTrip(packet, version);
        }),
        { numRuns: 2_000 },
      );
    });

    it(`PUBLISH bodies at every 1-to-2 and 2-to-3 byte remaining-length boundary (level ${version})`, () => {
      fc.assert(
        fc.property(arbPublish(version), fc.constantFrom(127, 128, 16_383, 16_384), (packet, remaining) => {
          const headerOnly = encodePacket({ ...packet, payload: Buffer.alloc(0) }, version);
          let lengthBytes = 1;
          while ((headerOnly[lengthBytes]! & 0x80) !== 0) lengthBytes++;
          const bodyWithoutPayload = headerOnly.length - 1 - lengthBytes;
          fc.pre(bodyWithoutPayload <= remaining);
          const sized = { ...packet, payload: Buffer.alloc(remaining - bodyWithoutPayload, 0x5a) };
          const bytes = encodePacket(sized, version);
          expect(bytes.length).toBe(1 + (remaining < 128 ? 1 : remaining < 16_384 ? 2 : 3) + remaining);
          expectRoundTrip(sized, version);
        }),
        { numRuns: 200 },
      );
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// (c) chunking, (d) many packets in one chunk

/** Splits `bytes` at the given offsets (clamped and sorted; duplicates give empty chunks). */
function splitAt(bytes: Buffer, seeds: readonly number[]): Buffer[] {
  const cuts = seeds.map((s) => s % (bytes.length + 1)).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const cut of cuts) {
    chunks.push(bytes.subarray(start, cut));
    start = cut;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}

function bytewise(bytes: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) chunks.push(bytes.subarray(i, i + 1));
  return chunks;
}

describe('codec round trip: packet streams in arbitrary chunks', () => {
  for (const version of VERSIONS) {
    it(`random cut points, 1-byte chunks and one big chunk give the same packets (level ${version})`, () => {
      fc.assert(
        fc.property(
          fc.array(arbPacket(version), { minLength: 1, maxLength: 12 }),
          fc.array(fc.nat(), { maxLength: 24 }),
          (packets, seeds) => {
            const stream = Buffer.concat(packets.map((p) => encodePacket(p, version)));
            const expected = packets.map((p) => canonicalPacket(p, version));
            expect(parseAll(splitAt(stream, seeds), version)).toStrictEqual(expected);
            expect(parseAll(bytewise(stream), version)).toStrictEqual(expected);
            expect(parseAll([stream], version)).toStrictEqual(expected);
          },
        ),
        { numRuns: 500 },
      );
    });

    it(`1,000 packets in one chunk are all returned, in order (level ${version})`, () => {
      const packets = fc.sample(arbPacket(version), { numRuns: 1_000, seed: 1_000 + version });
      const stream = Buffer.concat(packets.map((p) => encodePacket(p, version)));
      const parser = new PacketParser({ protocolVersion: version });
      const out = parser.push(stream);
      expect(out).toHaveLength(1_000);
      expect(out).toStrictEqual(packets.map((p) => canonicalPacket(p, version)));
      expect(parser.hasPartialPacket).toBe(false);
    });
  }
});
