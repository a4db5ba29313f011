/**
 * Decodes one complete packet body into a packet object, enforcing the MQTT 3.1.1 and 5.0
 * well-formedness rules. The framing (fixed header, chunking) lives in parser.ts.
 */
import { ProtocolError, malformed, protocolViolation } from './errors.js';
import type {
  AuthPacket, ConnackPacket, ConnectPacket, DisconnectPacket, Packet, ProtocolVersion, PublishPacket,
  QoS, SubackPacket, SubscribePacket, Subscription, UnsubackPacket, UnsubscribePacket, Will,
} from './packets.js';
import { readProperties } from './properties.js';
import { allowedReasonCodes, allowedV4SubackCodes } from './reason-codes.js';
import { Reader } from './reader.js';

/** Checks the flag bits of the fixed header [MQTT-2.2.2-1], [MQTT-2.2.2-2]; throws 0x81 when wrong. */
export function checkFixedHeader(firstByte: number, version: ProtocolVersion): void {
  const type = firstByte >> 4;
  const flags = firstByte & 0x0f;
  if (type === 0) throw malformed('packet type 0 is reserved');
  if (type === 15 && version !== 5) throw malformed('packet type 15 (AUTH) does not exist before MQTT 5');
  if (type === 3) {
    // [MQTT-3.3.1-4] QoS 3 is malformed.
    if ((flags & 0x06) === 0x06) throw malformed('PUBLISH with QoS 3');
    // [MQTT-3.3.1-2] DUP must be 0 for QoS 0.
    if ((flags & 0x08) !== 0 && (flags & 0x06) === 0) throw malformed('PUBLISH with DUP set and QoS 0');
    return;
  }
  // [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1]: PUBREL, SUBSCRIBE and UNSUBSCRIBE have flags 0010.
  const expected = type === 6 || type === 8 || type === 10 ? 0x02 : 0x00;
  if (flags !== expected) {
    throw malformed(`reserved flags of packet type ${type} must be ${expected.toString(2).padStart(4, '0')}, got ${flags.toString(2).padStart(4, '0')}`);
  }
}

export function decodeBody(r: Reader, firstByte: number, version: ProtocolVersion): Packet {
  let packet: Packet;
  switch (firstByte >> 4) {
    case 1: packet = decodeConnect(r); break;
    case 2: packet = decodeConnack(r, version); break;
    case 3: packet = decodePublish(r, firstByte, version); break;
    case 4: packet = decodeAck(r, 'puback', version); break;
    case 5: packet = decodeAck(r, 'pubrec', version); break;
    case 6: packet = decodeAck(r, 'pubrel', version); break;
    case 7: packet = decodeAck(r, 'pubcomp', version); break;
    case 8: packet = decodeSubscribe(r, version); break;
    case 9: packet = decodeSuback(r, version); break;
    case 10: packet = decodeUnsubscribe(r, version); break;
    case 11: packet = decodeUnsuback(r, version); break;
    case 12: packet = { type: 'pingreq' }; break;
    case 13: packet = { type: 'pingresp' }; break;
    case 14: packet = decodeDisconnect(r, version); break;
    case 15: packet = decodeAuth(r); break;
    default: throw malformed(`unknown packet type ${firstByte >> 4}`);
  }
  if (r.pos !== r.end) throw malformed(`${r.end - r.pos} unexpected bytes at the end of ${packet.type.toUpperCase()}`);
  return packet;
}

function packetId(r: Reader, what: string): number {
  const id = r.u16('packet identifier');
  // [MQTT-2.2.1-3] SUBSCRIBE, UNSUBSCRIBE and PUBLISH (QoS > 0) carry a non-zero packet identifier.
  if (id === 0) throw protocolViolation(`${what} with packet identifier 0`);
  return id;
}

function reasonCode(r: Reader, allowed: ReadonlySet<number>, what: string): number {
  const code = r.u8('reason code');
  if (!allowed.has(code)) throw protocolViolation(`reason code 0x${code.toString(16).padStart(2, '0')} is not valid in ${what}`);
  return code;
}

function decodeConnect(r: Reader): ConnectPacket {
  const protocolName = r.utf8('protocol name');
  const level = r.u8('protocol level');
  if (protocolName === 'MQTT') {
    if (level !== 4 && level !== 5) {
      throw new ProtocolError(0x84, `protocol level ${level} is not supported (MQTT 3.1.1 is 4, MQTT 5.0 is 5)`);
    }
  } else if (protocolName === 'MQIsdp') {
    if (level !== 3) throw new ProtocolError(0x84, `protocol name MQIsdp needs protocol level 3, got ${level}`);
  } else {
    // [MQTT-3.1.2-1] an unknown protocol name may be answered with 0x84 before closing.
    throw new ProtocolError(0x84, `unknown protocol name '${protocolName}'`);
  }
  const version = level as ProtocolVersion;
  const flags = r.u8('connect flags');
  // [MQTT-3.1.2-3] the reserved flag must be 0.
  if ((flags & 0x01) !== 0) throw malformed('reserved CONNECT flag is set');
  const clean = (flags & 0x02) !== 0;
  const willFlag = (flags & 0x04) !== 0;
  const willQos = (flags >> 3) & 0x03;
  const willRetain = (flags & 0x20) !== 0;
  const passwordFlag = (flags & 0x40) !== 0;
  const usernameFlag = (flags & 0x80) !== 0;
  if (willQos === 3) throw malformed('will QoS 3');
  // [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15]: no will → will QoS and retain are 0.
  if (!willFlag && (willQos !== 0 || willRetain)) throw malformed('will QoS or retain set without the will flag');
  // [MQTT-3.1.2-22] (3.1.1): a password needs a user name.
  if (version !== 5 && passwordFlag && !usernameFlag) throw malformed('password flag set without the user name flag');
  const keepalive = r.u16('keep alive');
  const packet: ConnectPacket = { type: 'connect', protocolVersion: version, protocolName, clean, keepalive, clientId: '' };
  if (version === 5) {
    const properties = readProperties(r, 'connect');
    if (properties !== undefined) packet.properties = properties;
  }
  // [MQTT-3.1.3-4] the client id is a UTF-8 string.
  packet.clientId = r.utf8('client identifier');
  if (willFlag) {
    let willProperties;
    if (version === 5) willProperties = readProperties(r, 'will');
    const topic = r.utf8('will topic');
    checkTopicName(topic, 'will topic', 0x90);
    // [MQTT-4.7.3-1] a topic name is at least one character; a will has no topic alias to stand in.
    if (topic.length === 0) throw new ProtocolError(0x90, 'empty will topic');
    const payload = r.binary('will payload');
    const will: Will = { topic, payload, qos: willQos as QoS, retain: willRetain };
    if (willProperties !== undefined) will.properties = willProperties;
    packet.will = will;
  }
  if (usernameFlag) packet.username = r.utf8('user name');
  if (passwordFlag) packet.password = r.binary('password');
  return packet;
}

function decodeConnack(r: Reader, version: ProtocolVersion): ConnackPacket {
  const ackFlags = r.u8('connect acknowledge flags');
  // [MQTT-3.2.2-1] bits 7-1 are reserved.
  if ((ackFlags & 0xfe) !== 0) throw malformed('reserved CONNACK flags are set');
  const sessionPresent = (ackFlags & 0x01) !== 0;
  if (version === 5) {
    const code = reasonCode(r, allowedReasonCodes.connack, 'CONNACK');
    const packet: ConnackPacket = { type: 'connack', sessionPresent, reasonCode: code };
    const properties = readProperties(r, 'connack');
    if (properties !== undefined) packet.properties = properties;
    return packet;
  }
  const code = r.u8('return code');
  if (code > 5) throw protocolViolation(`CONNACK return code ${code} is not defined`);
  return { type: 'connack', sessionPresent, reasonCode: code };
}

/** A topic name has no wildcards [MQTT-3.3.2-2], no U+0000 (checked when decoding). */
function checkTopicName(topic: string, what: string, code: number): void {
  if (topic.includes('+') || topic.includes('#')) throw new ProtocolError(code, `${what} '${topic}' contains a wildcard`);
}

function decodePublish(r: Reader, firstByte: number, version: ProtocolVersion): PublishPacket {
  const qos = ((firstByte >> 1) & 0x03) as QoS;
  const topic = r.utf8('topic name');
  checkTopicName(topic, 'topic name', 0x90);
  const packet: PublishPacket = {
    type: 'publish',
    topic,
    payload: EMPTY,
    qos,
    retain: (firstByte & 0x01) !== 0,
    dup: (firstByte & 0x08) !== 0,
  };
  if (qos > 0) packet.packetId = packetId(r, 'PUBLISH');
  if (version === 5) {
    const properties = readProperties(r, 'publish');
    if (properties !== undefined) packet.properties = properties;
    // 5.0 section 3.3.2.1: a zero-length topic name is a protocol error unless a topic alias stands in.
    if (topic.length === 0 && properties?.topicAlias === undefined) {
      throw protocolViolation('PUBLISH with an empty topic name and no topic alias');
    }
  } else if (topic.length === 0) {
    // [MQTT-4.7.3-1] topic names are at least one character long.
    throw protocolViolation('PUBLISH with an empty topic name');
  }
  packet.payload = r.buf.subarray(r.pos, r.end);
  r.pos = r.end;
  return packet;
}

const EMPTY = Buffer.alloc(0);

function decodeAck<T extends 'puback' | 'pubrec' | 'pubrel' | 'pubcomp'>(r: Reader, type: T, version: ProtocolVersion): Packet {
  const id = r.u16('packet identifier');
  if (id === 0) throw protocolViolation(`${type.toUpperCase()} with packet identifier 0`);
  const packet: { type: T; packetId: number; reasonCode?: number; properties?: ReturnType<typeof readProperties> } = { type, packetId: id };
  // 5.0: a remaining length of 2 means reason code 0x00 and no properties [MQTT-3.4.2.1].
  if (version === 5 && r.remaining() > 0) {
    packet.reasonCode = reasonCode(r, allowedReasonCodes[type], type.toUpperCase());
    if (r.remaining() > 0) {
      const properties = readProperties(r, type);
      if (properties !== undefined) packet.properties = properties;
    }
  }
  return packet as Packet;
}

function decodeSubscribe(r: Reader, version: ProtocolVersion): SubscribePacket {
  const id = packetId(r, 'SUBSCRIBE');
  const packet: SubscribePacket = { type: 'subscribe', packetId: id, subscriptions: [] };
  if (version === 5) {
    const properties = readProperties(r, 'subscribe');
    if (properties !== undefined) packet.properties = properties;
  }
  // [MQTT-3.8.3-3] (3.1.1) / [MQTT-3.8.3-2] (5.0): at least one topic filter.
  if (r.remaining() === 0) throw protocolViolation('SUBSCRIBE without topic filters');
  while (r.remaining() > 0) {
    const topic = r.utf8('topic filter');
    const options = r.u8('subscription options');
    const qos = options & 0x03;
    if (qos === 3) {
      // 3.1.1 [MQTT-3-8.3-4]: malformed. 5.0 section 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3."
      const message = `subscription to '${topic}' asks for QoS 3`;
      throw version === 5 ? protocolViolation(message) : malformed(message);
    }
    const subscription: Subscription = { topic, qos: qos as QoS };
    if (version === 5) {
      // [MQTT-3.8.3-5] bits 7-6 are reserved.
      if ((options & 0xc0) !== 0) throw malformed('reserved subscription option bits are set');
      const retainHandling = (options >> 4) & 0x03;
      if (retainHandling === 3) throw protocolViolation('retain handling 3 is not defined');
      subscription.noLocal = (options & 0x04) !== 0;
      subscription.retainAsPublished = (options & 0x08) !== 0;
      subscription.retainHandling = retainHandling as 0 | 1 | 2;
    } else if ((options & 0xfc) !== 0) {
      // [MQTT-3-8.3-4] (3.1.1): the upper six bits are reserved.
      throw malformed('reserved bits of the requested QoS byte are set');
    }
    packet.subscriptions.push(subscription);
  }
  return packet;
}

function decodeSuback(r: Reader, version: ProtocolVersion): SubackPacket {
  const id = packetId(r, 'SUBACK');
  const packet: SubackPacket = { type: 'suback', packetId: id, reasonCodes: [] };
  if (version === 5) {
    const properties = readProperties(r, 'suback');
    if (properties !== undefined) packet.properties = properties;
  }
  if (r.remaining() === 0) throw protocolViolation('SUBACK without reason codes');
  const allowed = version === 5 ? allowedReasonCodes.suback : allowedV4SubackCodes;
  while (r.remaining() > 0) packet.reasonCodes.push(reasonCode(r, allowed, 'SUBACK'));
  return packet;
}

function decodeUnsubscribe(r: Reader, version: ProtocolVersion): UnsubscribePacket {
  const id = packetId(r, 'UNSUBSCRIBE');
  const packet: UnsubscribePacket = { type: 'unsubscribe', packetId: id, topics: [] };
  if (version === 5) {
    const properties = readProperties(r, 'unsubscribe');
    if (properties !== undefined) packet.properties = properties;
  }
  // [MQTT-3.10.3-2] at least one topic filter.
  if (r.remaining() === 0) throw protocolViolation('UNSUBSCRIBE without topic filters');
  while (r.remaining() > 0) packet.topics.push(r.utf8('topic filter'));
  return packet;
}

function decodeUnsuback(r: Reader, version: ProtocolVersion): UnsubackPacket {
  const id = packetId(r, 'UNSUBACK');
  const packet: UnsubackPacket = { type: 'unsuback', packetId: id };
  if (version === 5) {
    const properties = readProperties(r, 'unsuback');
    if (properties !== undefined) packet.properties = properties;
    if (r.remaining() === 0) throw protocolViolation('UNSUBACK without reason codes');
    const codes: number[] = [];
    while (r.remaining() > 0) codes.push(reasonCode(r, allowedReasonCodes.unsuback, 'UNSUBACK'));
    packet.reasonCodes = codes;
  }
  return packet;
}

function decodeDisconnect(r: Reader, version: ProtocolVersion): DisconnectPacket {
  const packet: DisconnectPacket = { type: 'disconnect' };
  if (version === 5 && r.remaining() > 0) {
    packet.reasonCode = reasonCode(r, allowedReasonCodes.disconnect, 'DISCONNECT');
    if (r.remaining() > 0) {
      const properties = readProperties(r, 'disconnect');
      if (properties !== undefined) packet.properties = properties;
    }
  }
  return packet;
}

function decodeAuth(r: Reader): AuthPacket {
  const packet: AuthPacket = { type: 'auth' };
  if (r.remaining() > 0) {
    packet.reasonCode = reasonCode(r, allowedReasonCodes.auth, 'AUTH');
    if (r.remaining() > 0) {
      const properties = readProperties(r, 'auth');
      if (properties !== undefined) packet.properties = properties;
    }
  }
  return packet;
}
