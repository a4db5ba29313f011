/**
 * Applies a MutationSpec to the encoding of a valid packet and states what the broker must do with
 * the result when it is the first bad packet of a connection (its Effect): keep going (benign),
 * close, optionally after a CONNACK or DISCONNECT with one of the listed reason codes (fatal), or
 * nothing decidable (unknown: a bit flip may or may not hit something that matters).
 *
 * Expected reason codes cite MQTT 5.0 (OASIS Standard, 2019) and 3.1.1 (2014).
 */
import { encodePacket } from '../../protocol/encoder.js';
import type { ConnectPacket, Packet, PublishPacket } from '../../protocol/packets.js';
import type { MutationSpec, Version } from './generators.js';
import { frame, splitFrame, varintBytes } from './wire.js';

export type Effect =
  | { kind: 'benign' }
  /** A client DISCONNECT: the broker closes the connection without answering. */
  | { kind: 'terminal' }
  /**
   * The broker must close the connection. `codes`: MQTT 5 reason codes it may send first (in CONNACK
   * before the connection is accepted, in DISCONNECT after). `v4Codes`: 3.x CONNACK return codes it may
   * send (only for a CONNECT; a 3.x server never sends DISCONNECT). `mustAnswer`: the CONNACK is required.
   */
  | { kind: 'fatal'; codes: readonly number[]; v4Codes: readonly number[]; mustAnswer: boolean; rule: string }
  | { kind: 'unknown' };

export interface Mutated {
  bytes: Buffer;
  effect: Effect;
  /** e.g. 'length:non-minimal', 'confusion:suback'. */
  label: string;
}

const fatal = (codes: number[], rule: string, v4Codes: number[] = [], mustAnswer = false): Effect => ({ kind: 'fatal', codes, v4Codes, mustAnswer, rule });
const unknown: Effect = { kind: 'unknown' };

/** The body of a frame rebuilt with a new remaining length field of the given bytes. */
function withLengthBytes(firstByte: number, lengthBytes: number[], body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + lengthBytes.length + body.length);
  out[0] = firstByte;
  for (let i = 0; i < lengthBytes.length; i++) out[1 + i] = lengthBytes[i]!;
  out.set(body, 1 + lengthBytes.length);
  return out;
}

/** A deterministic PUBLISH for mutations that need a packet with a string or properties. */
function stockPublish(version: Version, topic: string, n: number): PublishPacket {
  const qos = (n % 3) as 0 | 1 | 2;
  const p: PublishPacket = { type: 'publish', topic, payload: Buffer.from('robustness'), qos, retain: false, dup: false };
  if (qos > 0) p.packetId = 1 + (n % 0xfffe);
  if (version === 5 && n % 2 === 0) p.properties = { contentType: 'text/plain' };
  return p;
}

export function stockConnect(version: Version, clientId: string): ConnectPacket {
  return { type: 'connect', protocolVersion: version, protocolName: version === 3 ? 'MQIsdp' : 'MQTT', clean: true, keepalive: 0, clientId };
}

/** Where the property block starts inside the body, for the packets that have one in MQTT 5. */
function propertyOffset(packet: Packet, body: Buffer): number | undefined {
  switch (packet.type) {
    case 'connect':
      return 2 + body[1]! + 1 + 1 + 2;
    case 'publish':
      return 2 + ((body[0]! << 8) | body[1]!) + (packet.qos > 0 ? 2 : 0);
    case 'subscribe':
    case 'unsubscribe':
      return 2;
    default:
      return undefined;
  }
}

/** Inserts `extra` at the front of the property block at `offset` of the body, fixing both lengths. */
function insertProperties(encoded: Buffer, offset: number, extra: number[]): Buffer {
  const { firstByte, body } = splitFrame(encoded);
  let value = 0;
  let multiplier = 1;
  let i = offset;
  for (;;) {
    const b = body[i++]!;
    value += (b & 0x7f) * multiplier;
    if ((b & 0x80) === 0) break;
    multiplier *= 128;
  }
  const newBody = Buffer.concat([body.subarray(0, offset), Buffer.from(varintBytes(value + extra.length)), Buffer.from(extra), body.subarray(i)]);
  return frame(firstByte, newBody);
}

/** One property, encoded: the ones used by the property mutations. */
const PROPERTY = {
  payloadFormatIndicator: [0x01, 0x00],
  messageExpiryInterval: [0x02, 0x00, 0x00, 0x00, 0x3c],
  contentType: [0x03, 0x00, 0x01, 0x61],
  subscriptionIdentifier: [0x0b, 0x05],
  sessionExpiryInterval: [0x11, 0x00, 0x00, 0x00, 0x01],
  receiveMaximum: [0x21, 0x00, 0x10],
  topicAlias: [0x23, 0x00, 0x01],
  maximumPacketSize: [0x27, 0x00, 0x01, 0x00, 0x00],
} as const;

const UTF8_MARK = 'QZXJ';
/** Invalid UTF-8 of exactly 4 bytes each [MQTT-1.5.4-1], and U+0000 [MQTT-1.5.4-2]. */
const BAD_UTF8: readonly (readonly number[])[] = [
  [0xc0, 0x80, 0x5a, 0x5a], // overlong U+0000
  [0xed, 0xa0, 0x80, 0x5a], // UTF-16 surrogate D800
  [0xff, 0x5a, 0x5a, 0x5a], // never a UTF-8 byte
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  [0x5a, 0x00, 0x5a, 0x5a], // U+0000
  [0xe2, 0x82, 0x5a, 0x5a], // truncated 3-byte sequence
  [0x80, 0x5a, 0x5a, 0x5a], // lone continuation byte
  [0xe0, 0x80, 0xaf, 0x5a], // overlong '/'
];

/** Overwrites the first UTF8_MARK in the encoding with an invalid sequence. */
function spoilMark(encoded: Buffer, n: number): Buffer {
  const at = encoded.indexOf(UTF8_MARK, 0, 'latin1');
  if (at < 0) throw new Error('robustness: utf8 marker not found');
  const out = Buffer.from(encoded);
  out.set(BAD_UTF8[n % BAD_UTF8.length]!, at);
  return out;
}

/**
 * The mutated bytes for a packet after CONNECT (or a first packet that is not a CONNECT).
 * `base` is a benign packet of `version`; `maxPacketSize` is the broker's limit (for 'oversized').
 */
export function mutate(base: Packet, encoded: Buffer, m: MutationSpec, version: Version, maxPacketSize: number): Mutated {
  const label = m.kind;
  switch (m.kind) {
    case 'bitflip': {
      const out = Buffer.from(encoded);
      for (const bit of m.bits) {
        const at = bit % (out.length * 8);
        out[at >> 3] = out[at >> 3]! ^ (1 << (at & 7));
      }
      return { bytes: out, effect: unknown, label };
    }
    case 'truncate': {
      const { firstByte, headerLength, body } = splitFrame(encoded);
      if (body.length === 0) return { bytes: encoded.subarray(0, 1), effect: unknown, label: 'truncate:header' };
      const keep = Math.floor((body.length * m.keep) / 1000);
      const cut = body.subarray(0, keep);
      if (m.fixLength) return { bytes: frame(firstByte, cut), effect: unknown, label: 'truncate:fixed' };
      return { bytes: Buffer.concat([encoded.subarray(0, headerLength), cut]), effect: unknown, label: 'truncate:desync' };
    }
    case 'length': {
      const { firstByte, body } = splitFrame(encoded);
      switch (m.variant) {
        case 'delta': {
          const delta = (m.value % 16) - 8 || 1;
          return { bytes: withLengthBytes(firstByte, varintBytes(Math.max(0, body.length + delta)), body), effect: unknown, label: 'length:delta' };
        }
        case 'random':
          return { bytes: withLengthBytes(firstByte, varintBytes(m.value % 100_000), body), effect: unknown, label: 'length:random' };
        case 'non-minimal': {
          // The same value with one more length byte: its last byte is 0x00. [MQTT-1.5.5-1] the
          // minimum number of bytes MUST be used; anything else is a Malformed Packet (0x81).
          const bytes = varintBytes(body.length);
          bytes[bytes.length - 1] = bytes[bytes.length - 1]! | 0x80;
          bytes.push(0x00);
          return { bytes: withLengthBytes(firstByte, bytes, body), effect: fatal([0x81], 'MQTT-1.5.5-1 non-minimal remaining length'), label: 'length:non-minimal' };
        }
        case 'five-byte':
          // 1.5.5: a Variable Byte Integer is at most four bytes; a fifth is Malformed (0x81).
          return { bytes: withLengthBytes(firstByte, [0xff, 0xff, 0xff, 0xff, 0x01], body), effect: fatal([0x81], '1.5.5 remaining length over 4 bytes'), label: 'length:five-byte' };
      }
      break;
    }
    case 'oversized': {
      // 5.0 3.1.2.11.4 / 4.13: a packet over the receiver's Maximum Packet Size → DISCONNECT 0x95.
      const { firstByte, body } = splitFrame(encoded);
      const room = 268_435_455 - maxPacketSize;
      const declared = Math.min(268_435_455, maxPacketSize + (room > 0 ? m.extra % room : 0));
      // Only decidable when the broker's limit is below what a remaining length can express.
      const decidable = 1 + varintBytes(declared).length + declared > maxPacketSize;
      return {
        bytes: withLengthBytes(firstByte, varintBytes(declared), body.subarray(0, m.tail)),
        effect: decidable ? fatal([0x95], '5.0 3.2.2.3.6 packet larger than the Maximum Packet Size') : unknown,
        label,
      };
    }
    case 'random': {
      const bytes = m.framed ? frame(m.firstByte, m.bytes) : Buffer.from(m.bytes);
      return { bytes, effect: unknown, label: m.framed ? 'random:framed' : 'random:raw' };
    }
    case 'property': {
      if (version !== 5) return mutate(base, encoded, { kind: 'flags', pick: m.pick }, version, maxPacketSize);
      let packet = base;
      let bytes = encoded;
      if (packet.type !== 'publish' && packet.type !== 'subscribe' && packet.type !== 'unsubscribe') {
        packet = stockPublish(version, 'rb/a/b', m.pick);
        bytes = encodePacket(packet, version);
      }
      const body = splitFrame(bytes).body;
      const offset = propertyOffset(packet, body)!;
      if (m.variant === 'unknown-id') {
        // 2.2.2.2: an Identifier that is not valid for the packet is a Malformed Packet.
        return { bytes: insertProperties(bytes, offset, [0x05, 0x00]), effect: fatal([0x81], '2.2.2.2 unknown property identifier'), label: 'property:unknown-id' };
      }
      if (m.variant === 'foreign' || packet.type === 'unsubscribe') {
        // 2.2.2.2 calls a property not valid for its packet type Malformed (0x81); this broker answers
        // 0x82 (Protocol Error), the code the spec uses for most property misuse. Both are accepted.
        const foreign = packet.type === 'publish' ? PROPERTY.sessionExpiryInterval : packet.type === 'subscribe' ? PROPERTY.messageExpiryInterval : PROPERTY.subscriptionIdentifier;
        return { bytes: insertProperties(bytes, offset, [...foreign]), effect: fatal([0x81, 0x82], '2.2.2.2 property not valid for the packet'), label: 'property:foreign' };
      }
      // 3.3.2.3.x / 3.8.2.1.2: "It is a Protocol Error to include ... more than once" (0x82).
      const once = packet.type === 'subscribe'
        ? PROPERTY.subscriptionIdentifier
        : [PROPERTY.payloadFormatIndicator, PROPERTY.messageExpiryInterval, PROPERTY.contentType][m.pick % 3]!;
      return { bytes: insertProperties(bytes, offset, [...once, ...once]), effect: fatal([0x82], 'property included more than once'), label: 'property:duplicate' };
    }
    case 'flags': {
      const { firstByte } = splitFrame(encoded);
      const type = firstByte >> 4;
      const out = Buffer.from(encoded);
      if (type === 3) {
        if (m.pick % 2 === 0) {
          // [MQTT-3.3.1-4] both QoS bits set: Malformed Packet.
          out[0] = firstByte | 0x06;
          return { bytes: out, effect: fatal([0x81], 'MQTT-3.3.1-4 PUBLISH with QoS 3'), label: 'flags:qos3' };
        }
        // [MQTT-3.3.1-2] DUP must be 0 for QoS 0.
        out[0] = (firstByte & 0xf1) | 0x08;
        return { bytes: out, effect: fatal([0x81, 0x82], 'MQTT-3.3.1-2 DUP set on QoS 0'), label: 'flags:dup-qos0' };
      }
      // [MQTT-2.2.2-2] (5.0 2.1.3): invalid reserved flags are a Malformed Packet.
      const expected = type === 6 || type === 8 || type === 10 ? 0x02 : 0x00;
      const flags = (expected + 1 + (m.pick % 15)) & 0x0f;
      out[0] = (type << 4) | flags;
      return { bytes: out, effect: fatal([0x81], 'MQTT-2.2.2-2 reserved fixed-header flags'), label: 'flags:reserved' };
    }
    case 'utf8': {
      // [MQTT-1.5.4-1] ill-formed UTF-8 / [MQTT-1.5.4-2] U+0000 in a string: Malformed Packet.
      let packet: Packet;
      switch (m.pick % 3) {
        case 0: packet = stockPublish(version, `rb/${UTF8_MARK}`, m.pick >> 2); break;
        case 1: packet = { type: 'subscribe', packetId: 1 + (m.pick % 1000), subscriptions: [{ topic: `rb/${UTF8_MARK}/#`, qos: 1 }] }; break;
        default: packet = { type: 'unsubscribe', packetId: 1 + (m.pick % 1000), topics: [`${UTF8_MARK}/+`] }; break;
      }
      return { bytes: spoilMark(encodePacket(packet, version), m.pick >> 3), effect: fatal([0x81], 'MQTT-1.5.4-1/2 invalid UTF-8 string'), label: `utf8:${packet.type}` };
    }
    case 'confusion':
      return confusion(m.variant, m.pick, version);
    case 'connect-field':
      // Only meaningful for a CONNECT: elsewhere it is a reserved-flag mutation.
      return mutate(base, encoded, { kind: 'flags', pick: m.pick }, version, maxPacketSize);
  }
  throw new Error('unreachable');
}

/** Packets a client must not send at this point: server-only types, AUTH without a method, a second CONNECT, type 0. */
function confusion(variant: string, n: number, version: Version): Mutated {
  const label = `confusion:${variant}`;
  // [MQTT-3.1.0-2] second CONNECT; a client sending a server's packet is a Protocol Error (0x82).
  const serverOnly = (packet: Packet): Mutated => ({ bytes: encodePacket(packet, version), effect: fatal([0x82], `client sent ${packet.type.toUpperCase()}`), label });
  switch (variant) {
    case 'connack': return serverOnly({ type: 'connack', sessionPresent: false, reasonCode: 0 });
    case 'suback': return serverOnly({ type: 'suback', packetId: 1 + (n % 0xfffe), reasonCodes: [n % 3] });
    case 'unsuback': return serverOnly(version === 5 ? { type: 'unsuback', packetId: 1 + (n % 0xfffe), reasonCodes: [0] } : { type: 'unsuback', packetId: 1 + (n % 0xfffe) });
    case 'pingresp': return serverOnly({ type: 'pingresp' });
    case 'auth':
      // 5.0 4.12: AUTH without an Authentication Method in CONNECT is a Protocol Error; before 5.0
      // type 15 is reserved, so the fixed header itself is Malformed.
      return version === 5
        ? { bytes: encodePacket({ type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'x' } }, 5), effect: fatal([0x82], '4.12 AUTH without an authentication method'), label }
        : { bytes: Buffer.from([0xf0, 0x00]), effect: fatal([0x81], 'type 15 reserved before 5.0'), label };
    case 'connect':
      return { bytes: encodePacket(stockConnect(n % 2 === 0 ? 4 : 5, 'second'), 4), effect: fatal([0x82], 'MQTT-3.1.0-2 second CONNECT'), label };
    case 'connect-bad-level': {
      // A second CONNECT is a Protocol Error whatever it contains [MQTT-3.1.0-2]; 0x84 is a CONNACK-only code.
      const bytes = Buffer.from(encodePacket(stockConnect(4, 'second'), 4));
      bytes[8] = [0, 2, 6, 7, 255][n % 5]!;
      return { bytes, effect: fatal([0x82], 'MQTT-3.1.0-2 second CONNECT (unsupported level)'), label };
    }
    case 'type-0':
      // 2.1.2: packet type 0 is Reserved (Forbidden).
      return { bytes: Buffer.from([0x00, 0x00]), effect: fatal([0x81, 0x82], '2.1.2 reserved packet type 0'), label };
  }
  throw new Error(`unknown confusion ${variant}`);
}

/** Offset, inside the body of an encoded CONNECT, of its Connect Flags byte. */
function connectFlagsAt(body: Buffer): number {
  return 2 + body[1]! + 1;
}

/**
 * The mutated bytes of a CONNECT and what the broker must answer. Before the connection is accepted a
 * v5 server answers errors with a CONNACK reason code when it knows the client speaks 5.0 (4.13), a
 * 3.1.1 server just closes; an unacceptable protocol level gets return code 1 [MQTT-3.1.2-2].
 */
export function mutateConnect(packet: ConnectPacket, m: MutationSpec, version: Version, maxPacketSize: number): Mutated {
  if (m.kind !== 'connect-field') {
    const encoded = encodePacket(packet, version);
    if (m.kind === 'flags') {
      const out = Buffer.from(encoded);
      out[0] = 0x10 | (1 + (m.pick % 15));
      return { bytes: out, effect: fatal([0x81], 'MQTT-2.2.2-2 CONNECT with reserved flags'), label: 'flags:reserved' };
    }
    if (m.kind === 'utf8') {
      const spoiled = spoilMark(encodePacket({ ...packet, clientId: `${UTF8_MARK}${packet.clientId}` }, version), m.pick);
      return { bytes: spoiled, effect: fatal([0x81], 'MQTT-1.5.4-1/2 invalid UTF-8 client identifier'), label: 'utf8:client-id' };
    }
    if (m.kind === 'property') {
      if (version !== 5) return mutateConnect(packet, { kind: 'connect-field', variant: 'reserved-flag', pick: m.pick }, version, maxPacketSize);
      const body = splitFrame(encoded).body;
      const offset = propertyOffset(packet, body)!;
      if (m.variant === 'unknown-id') return { bytes: insertProperties(encoded, offset, [0x05, 0x00]), effect: fatal([0x81], '2.2.2.2 unknown property identifier'), label: 'property:unknown-id' };
      if (m.variant === 'foreign') return { bytes: insertProperties(encoded, offset, [...PROPERTY.topicAlias]), effect: fatal([0x81, 0x82], '2.2.2.2 property not valid for CONNECT'), label: 'property:foreign' };
      const once = [PROPERTY.receiveMaximum, PROPERTY.maximumPacketSize][m.pick % 2]!;
      return { bytes: insertProperties(encoded, offset, [...once, ...once]), effect: fatal([0x82], '3.1.2.11 CONNECT property included more than once'), label: 'property:duplicate' };
    }
    const generic = mutate(packet, encoded, m, version, maxPacketSize);
    return generic;
  }
  const label = `connect:${m.variant}`;
  switch (m.variant) {
    case 'reserved-flag':
    case 'will-qos-3':
    case 'will-flags-without-will':
    case 'password-without-user': {
      const encoded = encodePacket(packet, version);
      const { headerLength, body } = splitFrame(encoded);
      const out = Buffer.from(encoded);
      const at = headerLength + connectFlagsAt(body);
      let rule: string;
      if (m.variant === 'reserved-flag') {
        out[at] = out[at]! | 0x01; // [MQTT-3.1.2-3] the reserved flag must be 0: Malformed.
        rule = 'MQTT-3.1.2-3 reserved CONNECT flag';
      } else if (m.variant === 'will-qos-3') {
        out[at] = out[at]! | 0x04 | 0x18; // [MQTT-3.1.2-14] will QoS 3: Malformed.
        rule = 'MQTT-3.1.2-14 will QoS 3';
      } else if (m.variant === 'will-flags-without-will') {
        out[at] = (out[at]! & ~0x04) | 0x20; // [MQTT-3.1.2-15] will retain without the will flag.
        rule = 'MQTT-3.1.2-15 will retain without will flag';
      } else {
        out[at] = (out[at]! & ~0x80) | 0x40; // [MQTT-3.1.2-22] (3.1.1) password without user name.
        rule = 'MQTT-3.1.2-22 password flag without user name flag';
      }
      return { bytes: out, effect: fatal([0x81], rule), label };
    }
    case 'protocol-name': {
      const out = Buffer.from(encodePacket(packet, version));
      const { headerLength } = splitFrame(out);
      out[headerLength + 5] = out[headerLength + 5]! ^ 0x0c; // 'MQTT' → 'MQTX', 'MQIsdp' → 'MQIcdp'
      // [MQTT-3.1.2-1] a server may disconnect or refuse (3.1.1 return code 1, 5.0 0x84); never accept.
      return { bytes: out, effect: fatal([0x84], 'MQTT-3.1.2-1 unknown protocol name', [1]), label };
    }
    case 'protocol-level': {
      const out = Buffer.from(encodePacket(packet, version));
      const { headerLength, body } = splitFrame(out);
      const levels = version === 3 ? [0, 2, 4, 5, 6] : [0, 2, 3, 6, 7, 255];
      out[headerLength + 2 + body[1]!] = levels[m.pick % levels.length]!;
      // [MQTT-3.1.2-2] unsupported level: CONNACK return code 0x01 (5.0: may send 0x84) then close.
      return { bytes: out, effect: fatal([0x84], 'MQTT-3.1.2-2 unsupported protocol level', [1], version !== 5), label };
    }
    case 'long-v3-client-id': {
      // MQTT 3.1: the client identifier is 1-23 characters; otherwise return code 2 (identifier rejected).
      const id = `${packet.clientId}-${'x'.repeat(24)}`.slice(0, 24 + (m.pick % 40));
      return { bytes: encodePacket({ ...packet, clientId: id }, 3), effect: fatal([], 'MQTT 3.1 client id over 23 characters', [2], true), label };
    }
    case 'empty-id-persistent':
      // [MQTT-3.1.3-8] zero-byte client id with CleanSession 0: CONNACK return code 0x02, then close.
      return { bytes: encodePacket({ ...packet, clientId: '', clean: false }, 4), effect: fatal([], 'MQTT-3.1.3-8 empty client id without clean session', [2], true), label };
    case 'auth-method':
      // 5.0 4.12 [MQTT-4.12.0-1]: an unsupported Authentication Method: CONNACK 0x8C or 0x87, then close.
      return { bytes: encodePacket({ ...packet, properties: { ...packet.properties, authenticationMethod: 'SCRAM-SHA-1' } }, 5), effect: fatal([0x8c, 0x87], 'MQTT-4.12.0-1 unsupported authentication method'), label };
    case 'receive-maximum-0': {
      // 3.1.2.11.3: "It is a Protocol Error to include the Receive Maximum value ... to have the value 0".
      // Written first in the property block (the encoder keeps key order), then its value zeroed.
      const { receiveMaximum: _drop, ...rest } = packet.properties ?? {};
      const out = Buffer.from(encodePacket({ ...packet, properties: { receiveMaximum: 1, ...rest } }, 5));
      const { headerLength, body } = splitFrame(out);
      let at = headerLength + propertyOffset(packet, body)!;
      while ((out[at]! & 0x80) !== 0) at++;
      // at: last byte of the property length; then 0x21, 0x00, 0x01.
      out[at + 3] = 0x00;
      return { bytes: out, effect: fatal([0x82], '3.1.2.11.3 Receive Maximum 0'), label };
    }
    case 'will-topic-wildcard': {
      // [MQTT-3.1.2-?]/4.7.1: the Will Topic is a topic name; wildcards are not allowed in it.
      const will = { topic: `rb/${UTF8_MARK}`, payload: Buffer.from('w'), qos: 0 as const, retain: false };
      const out = Buffer.from(encodePacket({ ...packet, will }, version));
      const at = out.indexOf(UTF8_MARK, 0, 'latin1');
      out[at] = m.pick % 2 === 0 ? 0x23 : 0x2b; // '#' or '+'
      return { bytes: out, effect: fatal([0x90, 0x81, 0x82], '4.7.1 wildcard in the Will Topic'), label };
    }
  }
  throw new Error('unreachable');
}
