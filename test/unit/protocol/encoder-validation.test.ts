import { describe, expect, it } from 'vitest';
import { encodePacket } from '../../../protocol/encoder.js';
import { ProtocolError } from '../../../protocol/errors.js';
import type { Packet, ProtocolVersion } from '../../../protocol/packets.js';

/** The encoder refuses what its own parser would reject, naming the field, instead of writing it. */
const refused: Array<[string, Packet, ProtocolVersion, RegExp]> = [
  ['lone surrogate in a topic', { type: 'publish', topic: 'a\uD800', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false }, 4, /topic name contains a lone surrogate/],
  ['U+0000 in a topic [MQTT-1.5.4-2]', { type: 'publish', topic: 'a\u0000b', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false }, 4, /topic name contains U\+0000/],
  ['wildcard in a topic name [MQTT-3.3.2-2]', { type: 'publish', topic: 'a/+', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false }, 4, /wildcard/],
  ['empty topic in 3.1.1 [MQTT-4.7.3-1]', { type: 'publish', topic: '', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false }, 4, /needs a topic name/],
  ['empty topic without alias in 5.0', { type: 'publish', topic: '', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false }, 5, /needs a topic name/],
  ['DUP with QoS 0 [MQTT-3.3.1-2]', { type: 'publish', topic: 'a', payload: Buffer.alloc(0), qos: 0, retain: false, dup: true }, 4, /DUP/],
  ['PUBACK reason code 0x05 (5.0)', { type: 'puback', packetId: 1, reasonCode: 0x05 }, 5, /PUBACK reason code 0x05/],
  ['SUBACK return code 3 (3.1.1)', { type: 'suback', packetId: 1, reasonCodes: [3] }, 4, /SUBACK reason code 0x03/],
  ['CONNACK reason code 0x01 (5.0)', { type: 'connack', sessionPresent: false, reasonCode: 0x01 }, 5, /CONNACK reason code 0x01/],
  ['DISCONNECT reason code 0x10 (5.0)', { type: 'disconnect', reasonCode: 0x10 }, 5, /DISCONNECT reason code 0x10/],
  ['U+0000 in a user property', { type: 'puback', packetId: 1, reasonCode: 0, properties: { userProperties: [['k', 'v\u0000']] } }, 5, /user property value contains U\+0000/],
  ['empty will topic', { type: 'connect', protocolVersion: 4, protocolName: 'MQTT', clean: true, keepalive: 0, clientId: 'c', will: { topic: '', payload: Buffer.alloc(0), qos: 0, retain: false } }, 4, /will topic/],
];

describe('encoder validation', () => {
  it.each(refused)('refuses %s', (_name, packet, version, message) => {
    let error: unknown;
    try {
      encodePacket(packet, version);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as Error).message).toMatch(message);
  });

  it('accepts an empty topic with a topic alias in 5.0', () => {
    const buf = encodePacket({ type: 'publish', topic: '', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, properties: { topicAlias: 3 } }, 5);
    // 30 07 | topic '' 00 00 | properties length 03: topic alias (0x23) 00 03 | payload 'x'
    expect(buf.toString('hex')).toBe('300700000323000378');
  });
});
