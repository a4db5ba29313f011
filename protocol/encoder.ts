/**
 * Encoders for every packet type: measure, allocate once, write. Invalid field values throw a
 * ProtocolError naming the field, so nothing malformed reaches the wire by accident.
 */
import { ProtocolError } from './errors.js';
import type {
  AuthPacket, ConnackPacket, ConnectPacket, DisconnectPacket, Packet, Properties, ProtocolVersion,
  PublishPacket, SubackPacket, SubscribePacket, UnsubackPacket, UnsubscribePacket,
} from './packets.js';
import { propertiesLength, writeProperties, type PropertyContext } from './properties.js';
import { allowedReasonCodes, allowedV4SubackCodes } from './reason-codes.js';
import { checkedUtf8Length, utf8Problem, varintLength, writeBinary, writeU16, writeUtf8String, writeVarint } from './writer.js';

const MAX_REMAINING = 268_435_455;

function invalid(message: string): never {
  throw new ProtocolError(0x82, message);
}

/** Allocates a packet of `bodyLength` and writes its fixed header; the body starts at the returned buffer's `headerLength`. */
function allocPacket(firstByte: number, bodyLength: number): { buf: Buffer; pos: number } {
  if (bodyLength > MAX_REMAINING) invalid(`packet body of ${bodyLength} bytes exceeds the MQTT maximum`);
  const headerLength = 1 + varintLength(bodyLength);
  const buf = Buffer.allocUnsafe(headerLength + bodyLength);
  buf[0] = firstByte;
  writeVarint(buf, 1, bodyLength);
  return { buf, pos: headerLength };
}

export function stringLength(what: string, s: string): number {
  if (typeof s !== 'string') invalid(`${what} must be a string`);
  const n = checkedUtf8Length(s);
  if (n < 0) invalid(`${what} ${utf8Problem(s)}`);
  if (n > 0xffff) invalid(`${what} is longer than 65535 bytes`);
  return 2 + n;
}

function binaryLength(what: string, b: Buffer): number {
  if (!Buffer.isBuffer(b)) invalid(`${what} must be a Buffer`);
  if (b.length > 0xffff) invalid(`${what} is longer than 65535 bytes`);
  return 2 + b.length;
}

export function checkPacketId(id: number | undefined, what: string): number {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > 0xffff) {
    invalid(`${what} needs a packet identifier from 1 to 65535, got ${String(id)}`);
  }
  return id;
}

function checkQos(qos: number, what: string): void {
  if (qos !== 0 && qos !== 1 && qos !== 2) invalid(`${what} QoS must be 0, 1 or 2, got ${String(qos)}`);
}

function checkByte(code: number, what: string): void {
  if (!Number.isInteger(code) || code < 0 || code > 255) invalid(`${what} must be a byte, got ${String(code)}`);
}

/** A reason code must be one the specification lists for that packet (MQTT 5) [MQTT-2.4-?]. */
function checkReasonCode(code: number, allowed: ReadonlySet<number>, what: string): void {
  checkByte(code, what);
  if (!allowed.has(code)) invalid(`${what} 0x${code.toString(16).padStart(2, '0')} is not defined for this packet`);
}

export function encodePacket(packet: Packet, version: ProtocolVersion): Buffer {
  switch (packet.type) {
    case 'connect': return encodeConnect(packet);
    case 'connack': return encodeConnack(packet, version);
    case 'publish': return encodePublish(packet, version);
    case 'puback': return encodeAck(0x40, packet.packetId, packet.reasonCode, packet.properties, 'puback', version);
    case 'pubrec': return encodeAck(0x50, packet.packetId, packet.reasonCode, packet.properties, 'pubrec', version);
    case 'pubrel': return encodeAck(0x62, packet.packetId, packet.reasonCode, packet.properties, 'pubrel', version);
    case 'pubcomp': return encodeAck(0x70, packet.packetId, packet.reasonCode, packet.properties, 'pubcomp', version);
    case 'subscribe': return encodeSubscribe(packet, version);
    case 'suback': return encodeSuback(packet, version);
    case 'unsubscribe': return encodeUnsubscribe(packet, version);
    case 'unsuback': return encodeUnsuback(packet, version);
    case 'pingreq': return Buffer.from([0xc0, 0x00]);
    case 'pingresp': return Buffer.from([0xd0, 0x00]);
    case 'disconnect': return encodeReasonOnly(0xe0, packet, 'disconnect', version);
    case 'auth':
      if (version !== 5) invalid('AUTH exists only in MQTT 5');
      return encodeReasonOnly(0xf0, packet, 'auth', version);
    default:
      return invalid(`unknown packet type '${(packet as { type: unknown }).type}'`);
  }
}

export function encodeConnect(p: ConnectPacket): Buffer {
  const version = p.protocolVersion;
  if (version !== 3 && version !== 4 && version !== 5) invalid(`protocol version must be 3, 4 or 5, got ${String(version)}`);
  const protocolName = version === 3 ? 'MQIsdp' : 'MQTT';
  if (!Number.isInteger(p.keepalive) || p.keepalive < 0 || p.keepalive > 0xffff) invalid(`keepalive must be 0-65535 seconds, got ${p.keepalive}`);
  if (version !== 5 && p.password !== undefined && p.username === undefined) {
    invalid('MQTT 3.1.1 does not allow a password without a user name [MQTT-3.1.2-22]');
  }
  let length = 2 + protocolName.length + 1 + 1 + 2;
  let propsLength = 0;
  if (version === 5) {
    propsLength = propertiesLength(p.properties, 'connect');
    length += varintLength(propsLength) + propsLength;
  }
  length += stringLength('client identifier', p.clientId);
  let willPropsLength = 0;
  const will = p.will;
  if (will !== undefined) {
    checkQos(will.qos, 'will');
    if (will.topic.length === 0 || will.topic.includes('+') || will.topic.includes('#')) {
      invalid(`will topic '${will.topic}' is not a valid topic name`);
    }
    if (version === 5) {
      willPropsLength = propertiesLength(will.properties, 'will');
      length += varintLength(willPropsLength) + willPropsLength;
    }
    length += stringLength('will topic', will.topic) + binaryLength('will payload', will.payload);
  }
  if (p.username !== undefined) length += stringLength('user name', p.username);
  if (p.password !== undefined) length += binaryLength('password', p.password);

  const { buf, pos: start } = allocPacket(0x10, length);
  let pos = writeUtf8String(buf, start, protocolName);
  buf[pos++] = version;
  let flags = p.clean ? 0x02 : 0;
  if (will !== undefined) flags |= 0x04 | (will.qos << 3) | (will.retain ? 0x20 : 0);
  if (p.password !== undefined) flags |= 0x40;
  if (p.username !== undefined) flags |= 0x80;
  buf[pos++] = flags;
  pos = writeU16(buf, pos, p.keepalive);
  if (version === 5) pos = writeProperties(buf, pos, p.properties, propsLength);
  pos = writeUtf8String(buf, pos, p.clientId);
  if (will !== undefined) {
    if (version === 5) pos = writeProperties(buf, pos, will.properties, willPropsLength);
    pos = writeUtf8String(buf, pos, will.topic);
    pos = writeBinary(buf, pos, will.payload);
  }
  if (p.username !== undefined) pos = writeUtf8String(buf, pos, p.username);
  if (p.password !== undefined) pos = writeBinary(buf, pos, p.password);
  return buf;
}

export function encodeConnack(p: ConnackPacket, version: ProtocolVersion): Buffer {
  if (version === 5) checkReasonCode(p.reasonCode, allowedReasonCodes.connack, 'CONNACK reason code');
  else checkByte(p.reasonCode, 'CONNACK return code');
  if (version !== 5) {
    if (p.reasonCode > 5) invalid(`MQTT 3.1.1 CONNACK return codes are 0-5, got ${p.reasonCode}`);
    return Buffer.from([0x20, 0x02, p.sessionPresent ? 1 : 0, p.reasonCode]);
  }
  const propsLength = propertiesLength(p.properties, 'connack');
  const { buf, pos: start } = allocPacket(0x20, 2 + varintLength(propsLength) + propsLength);
  buf[start] = p.sessionPresent ? 1 : 0;
  buf[start + 1] = p.reasonCode;
  writeProperties(buf, start + 2, p.properties, propsLength);
  return buf;
}

/** PUBLISH as one buffer. The broker's fan-out uses encodePublishHeader() to avoid copying the payload. */
export function encodePublish(p: PublishPacket, version: ProtocolVersion): Buffer {
  const buf = publishHeader(p, version, p.payload.length);
  p.payload.copy(buf, buf.length - p.payload.length);
  return buf;
}

/** Byte offset of the packet identifier inside a header made by encodePublishHeader, or -1 for QoS 0. */
export function publishPacketIdOffset(header: Buffer): number {
  const qos = (header[0]! >> 1) & 0x03;
  if (qos === 0) return -1;
  let i = 1;
  while ((header[i]! & 0x80) !== 0) i++;
  const topicStart = i + 1;
  const topicLength = (header[topicStart]! << 8) | header[topicStart + 1]!;
  return topicStart + 2 + topicLength;
}

/**
 * The fixed header, topic, packet id and properties of a PUBLISH, sized for `p.payload` but without it.
 * Sending `header` then `p.payload` puts the packet on the wire with no payload copy.
 */
export function encodePublishHeader(p: PublishPacket, version: ProtocolVersion): Buffer {
  return publishHeader(p, version, 0);
}

/** Encodes the PUBLISH header into a buffer with `room` spare bytes at the end (for the payload). */
function publishHeader(p: PublishPacket, version: ProtocolVersion, room: number): Buffer {
  const qos = p.qos;
  checkQos(qos, 'PUBLISH');
  if (!Buffer.isBuffer(p.payload)) invalid('PUBLISH payload must be a Buffer');
  // [MQTT-3.3.1-2] DUP is 0 for QoS 0; [MQTT-3.3.2-2] no wildcards in a topic name.
  if (p.dup && qos === 0) invalid('PUBLISH with QoS 0 must not set DUP');
  const topic = p.topic;
  const topicBytes = checkedUtf8Length(topic);
  if (topicBytes < 0) invalid(`topic name ${utf8Problem(topic)}`);
  if (topicBytes > 0xffff) invalid('topic name is longer than 65535 bytes');
  if (topic.includes('+') || topic.includes('#')) invalid(`topic name '${topic}' contains a wildcard`);
  if (topicBytes === 0 && (version !== 5 || p.properties?.topicAlias === undefined)) {
    invalid('PUBLISH needs a topic name (MQTT 5: or a topic alias)');
  }
  let variable = 2 + topicBytes;
  if (qos > 0) {
    checkPacketId(p.packetId, 'PUBLISH with QoS > 0');
    variable += 2;
  }
  let propsLength = 0;
  if (version === 5) {
    propsLength = propertiesLength(p.properties, 'publish');
    variable += varintLength(propsLength) + propsLength;
  }
  const remaining = variable + p.payload.length;
  if (remaining > MAX_REMAINING) invalid(`PUBLISH of ${remaining} bytes exceeds the MQTT maximum`);
  const headerLength = 1 + varintLength(remaining);
  const buf = Buffer.allocUnsafe(headerLength + variable + room);
  buf[0] = 0x30 | (p.dup ? 0x08 : 0) | (qos << 1) | (p.retain ? 0x01 : 0);
  let pos = writeVarint(buf, 1, remaining);
  pos = writeUtf8String(buf, pos, topic);
  if (qos > 0) pos = writeU16(buf, pos, p.packetId!);
  if (version === 5) writeProperties(buf, pos, p.properties, propsLength);
  return buf;
}

function encodeAck(
  firstByte: number, packetId: number, reasonCode: number | undefined, props: Properties | undefined,
  context: PropertyContext, version: ProtocolVersion,
): Buffer {
  checkPacketId(packetId, context.toUpperCase());
  const code = reasonCode ?? 0;
  if (version === 5) checkReasonCode(code, allowedReasonCodes[context as 'puback'], `${context.toUpperCase()} reason code`);
  if (version !== 5 || (code === 0 && props === undefined)) {
    return Buffer.from([firstByte, 0x02, packetId >> 8, packetId & 0xff]);
  }
  const propsLength = propertiesLength(props, context);
  if (propsLength === 0) return Buffer.from([firstByte, 0x03, packetId >> 8, packetId & 0xff, code]);
  const { buf, pos } = allocPacket(firstByte, 3 + varintLength(propsLength) + propsLength);
  writeU16(buf, pos, packetId);
  buf[pos + 2] = code;
  writeProperties(buf, pos + 3, props, propsLength);
  return buf;
}

export function encodeSubscribe(p: SubscribePacket, version: ProtocolVersion): Buffer {
  checkPacketId(p.packetId, 'SUBSCRIBE');
  if (!Array.isArray(p.subscriptions) || p.subscriptions.length === 0) invalid('SUBSCRIBE needs at least one subscription [MQTT-3.8.3-3]');
  let length = 2;
  let propsLength = 0;
  if (version === 5) {
    propsLength = propertiesLength(p.properties, 'subscribe');
    length += varintLength(propsLength) + propsLength;
  }
  for (const s of p.subscriptions) {
    checkQos(s.qos, `subscription to '${s.topic}'`);
    if (s.retainHandling !== undefined && s.retainHandling !== 0 && s.retainHandling !== 1 && s.retainHandling !== 2) {
      invalid(`retain handling must be 0, 1 or 2, got ${String(s.retainHandling)}`);
    }
    length += stringLength('topic filter', s.topic) + 1;
  }
  const { buf, pos: start } = allocPacket(0x82, length);
  let pos = writeU16(buf, start, p.packetId);
  if (version === 5) pos = writeProperties(buf, pos, p.properties, propsLength);
  for (const s of p.subscriptions) {
    pos = writeUtf8String(buf, pos, s.topic);
    let options = s.qos;
    if (version === 5) {
      if (s.noLocal) options |= 0x04;
      if (s.retainAsPublished) options |= 0x08;
      options |= (s.retainHandling ?? 0) << 4;
    }
    buf[pos++] = options;
  }
  return buf;
}

export function encodeSuback(p: SubackPacket, version: ProtocolVersion): Buffer {
  checkPacketId(p.packetId, 'SUBACK');
  if (!Array.isArray(p.reasonCodes) || p.reasonCodes.length === 0) invalid('SUBACK needs at least one reason code');
  const allowedSuback = version === 5 ? allowedReasonCodes.suback : allowedV4SubackCodes;
  for (const code of p.reasonCodes) checkReasonCode(code, allowedSuback, 'SUBACK reason code');
  let length = 2 + p.reasonCodes.length;
  let propsLength = 0;
  if (version === 5) {
    propsLength = propertiesLength(p.properties, 'suback');
    length += varintLength(propsLength) + propsLength;
  }
  const { buf, pos: start } = allocPacket(0x90, length);
  let pos = writeU16(buf, start, p.packetId);
  if (version === 5) pos = writeProperties(buf, pos, p.properties, propsLength);
  for (const code of p.reasonCodes) buf[pos++] = code;
  return buf;
}

export function encodeUnsubscribe(p: UnsubscribePacket, version: ProtocolVersion): Buffer {
  checkPacketId(p.packetId, 'UNSUBSCRIBE');
  if (!Array.isArray(p.topics) || p.topics.length === 0) invalid('UNSUBSCRIBE needs at least one topic filter [MQTT-3.10.3-2]');
  let length = 2;
  let propsLength = 0;
  if (version === 5) {
    propsLength = propertiesLength(p.properties, 'unsubscribe');
    length += varintLength(propsLength) + propsLength;
  }
  for (const t of p.topics) length += stringLength('topic filter', t);
  const { buf, pos: start } = allocPacket(0xa2, length);
  let pos = writeU16(buf, start, p.packetId);
  if (version === 5) pos = writeProperties(buf, pos, p.properties, propsLength);
  for (const t of p.topics) pos = writeUtf8String(buf, pos, t);
  return buf;
}

export function encodeUnsuback(p: UnsubackPacket, version: ProtocolVersion): Buffer {
  checkPacketId(p.packetId, 'UNSUBACK');
  if (version !== 5) return Buffer.from([0xb0, 0x02, p.packetId >> 8, p.packetId & 0xff]);
  const codes = p.reasonCodes ?? [];
  if (codes.length === 0) invalid('an MQTT 5 UNSUBACK needs one reason code per topic filter');
  for (const code of codes) checkReasonCode(code, allowedReasonCodes.unsuback, 'UNSUBACK reason code');
  const propsLength = propertiesLength(p.properties, 'unsuback');
  const { buf, pos: start } = allocPacket(0xb0, 2 + varintLength(propsLength) + propsLength + codes.length);
  let pos = writeU16(buf, start, p.packetId);
  pos = writeProperties(buf, pos, p.properties, propsLength);
  for (const code of codes) buf[pos++] = code;
  return buf;
}

/** DISCONNECT and AUTH: an optional reason code and optional properties (MQTT 5). */
function encodeReasonOnly(firstByte: number, p: DisconnectPacket | AuthPacket, context: PropertyContext, version: ProtocolVersion): Buffer {
  const code = p.reasonCode ?? 0;
  if (version === 5) checkReasonCode(code, allowedReasonCodes[context as 'disconnect'], `${context.toUpperCase()} reason code`);
  if (version !== 5 || (code === 0 && p.properties === undefined)) return Buffer.from([firstByte, 0x00]);
  const propsLength = propertiesLength(p.properties, context);
  if (propsLength === 0) return Buffer.from([firstByte, 0x01, code]);
  const { buf, pos } = allocPacket(firstByte, 1 + varintLength(propsLength) + propsLength);
  buf[pos] = code;
  writeProperties(buf, pos + 1, p.properties, propsLength);
  return buf;
}
