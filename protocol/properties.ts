/**
 * MQTT 5.0 properties (spec section 2.2.2): the table of identifiers, value types and the packets
 * each may appear in, with a strict decoder and a two-pass (measure, then write) encoder.
 */
import { ProtocolError, malformed, protocolViolation } from './errors.js';
import type { Properties } from './packets.js';
import { Reader } from './reader.js';
import { varintLength, writeVarint, writeUtf8String, checkedUtf8Length as measureUtf8, utf8Problem, writeBinary } from './writer.js';

/** Where a property may appear: the packet types plus the will properties inside CONNECT. */
export type PropertyContext =
  | 'connect' | 'connack' | 'publish' | 'will' | 'puback' | 'pubrec' | 'pubrel' | 'pubcomp'
  | 'subscribe' | 'suback' | 'unsubscribe' | 'unsuback' | 'disconnect' | 'auth';

type ValueType = 'byte' | 'boolByte' | 'uint16' | 'uint32' | 'varint' | 'string' | 'binary' | 'pair';

interface PropertySpec {
  id: number;
  key: keyof Properties;
  type: ValueType;
  contexts: readonly PropertyContext[];
  /** Smallest legal value for numeric properties where 0 is a protocol error. */
  min?: number;
}

const ACKS: PropertyContext[] = ['puback', 'pubrec', 'pubrel', 'pubcomp'];

export const propertySpecs: readonly PropertySpec[] = [
  { id: 0x01, key: 'payloadFormatIndicator', type: 'boolByte', contexts: ['publish', 'will'] },
  { id: 0x02, key: 'messageExpiryInterval', type: 'uint32', contexts: ['publish', 'will'] },
  { id: 0x03, key: 'contentType', type: 'string', contexts: ['publish', 'will'] },
  { id: 0x08, key: 'responseTopic', type: 'string', contexts: ['publish', 'will'] },
  { id: 0x09, key: 'correlationData', type: 'binary', contexts: ['publish', 'will'] },
  { id: 0x0b, key: 'subscriptionIdentifiers', type: 'varint', contexts: ['publish', 'subscribe'], min: 1 },
  { id: 0x11, key: 'sessionExpiryInterval', type: 'uint32', contexts: ['connect', 'connack', 'disconnect'] },
  { id: 0x12, key: 'assignedClientIdentifier', type: 'string', contexts: ['connack'] },
  { id: 0x13, key: 'serverKeepAlive', type: 'uint16', contexts: ['connack'] },
  { id: 0x15, key: 'authenticationMethod', type: 'string', contexts: ['connect', 'connack', 'auth'] },
  { id: 0x16, key: 'authenticationData', type: 'binary', contexts: ['connect', 'connack', 'auth'] },
  { id: 0x17, key: 'requestProblemInformation', type: 'boolByte', contexts: ['connect'] },
  { id: 0x18, key: 'willDelayInterval', type: 'uint32', contexts: ['will'] },
  { id: 0x19, key: 'requestResponseInformation', type: 'boolByte', contexts: ['connect'] },
  { id: 0x1a, key: 'responseInformation', type: 'string', contexts: ['connack'] },
  { id: 0x1c, key: 'serverReference', type: 'string', contexts: ['connack', 'disconnect'] },
  { id: 0x1f, key: 'reasonString', type: 'string', contexts: ['connack', ...ACKS, 'suback', 'unsuback', 'disconnect', 'auth'] },
  { id: 0x21, key: 'receiveMaximum', type: 'uint16', contexts: ['connect', 'connack'], min: 1 },
  { id: 0x22, key: 'topicAliasMaximum', type: 'uint16', contexts: ['connect', 'connack'] },
  { id: 0x23, key: 'topicAlias', type: 'uint16', contexts: ['publish'], min: 1 },
  { id: 0x24, key: 'maximumQos', type: 'boolByte', contexts: ['connack'] },
  { id: 0x25, key: 'retainAvailable', type: 'boolByte', contexts: ['connack'] },
  {
    id: 0x26, key: 'userProperties', type: 'pair',
    contexts: ['connect', 'connack', 'publish', 'will', ...ACKS, 'subscribe', 'suback', 'unsubscribe', 'unsuback', 'disconnect', 'auth'],
  },
  { id: 0x27, key: 'maximumPacketSize', type: 'uint32', contexts: ['connect', 'connack'], min: 1 },
  { id: 0x28, key: 'wildcardSubscriptionAvailable', type: 'boolByte', contexts: ['connack'] },
  { id: 0x29, key: 'subscriptionIdentifiersAvailable', type: 'boolByte', contexts: ['connack'] },
  { id: 0x2a, key: 'sharedSubscriptionAvailable', type: 'boolByte', contexts: ['connack'] },
];

const specById: (PropertySpec | undefined)[] = [];
const specByKey = new Map<string, PropertySpec>();
for (const spec of propertySpecs) {
  specById[spec.id] = spec;
  specByKey.set(spec.key, spec);
}

const CONTEXT_BIT: Record<PropertyContext, number> = {
  connect: 1 << 0, connack: 1 << 1, publish: 1 << 2, will: 1 << 3, puback: 1 << 4, pubrec: 1 << 5,
  pubrel: 1 << 6, pubcomp: 1 << 7, subscribe: 1 << 8, suback: 1 << 9, unsubscribe: 1 << 10,
  unsuback: 1 << 11, disconnect: 1 << 12, auth: 1 << 13,
};
const allowedMask: number[] = [];
for (const spec of propertySpecs) {
  allowedMask[spec.id] = spec.contexts.reduce((mask, c) => mask | CONTEXT_BIT[c], 0);
}

/** Properties that may appear more than once in one packet. */
function repeatable(id: number, context: PropertyContext): boolean {
  return id === 0x26 || (id === 0x0b && context === 'publish');
}

/**
 * Reads a property length and the properties that follow it. Returns undefined when there are none,
 * so packets without properties do not carry an empty object.
 */
export function readProperties(r: Reader, context: PropertyContext): Properties | undefined {
  const length = r.varint('property length');
  if (length === 0) return undefined;
  const end = r.pos + length;
  if (end > r.end) throw malformed(`property length ${length} exceeds the remaining ${r.end - r.pos} bytes`);
  const props: Properties = {};
  let seenLo = 0;
  let seenHi = 0;
  const bit = CONTEXT_BIT[context];
  const outerEnd = r.end;
  r.end = end;
  while (r.pos < end) {
    const id = r.varint('property identifier');
    const spec = specById[id];
    if (spec === undefined) throw malformed(`unknown property identifier 0x${id.toString(16)}`);
    if ((allowedMask[id]! & bit) === 0) {
      // 5.0 section 2.2.2.2: an identifier not valid for its packet type makes a Malformed Packet.
      throw malformed(`property ${spec.key} (0x${id.toString(16)}) is not allowed in ${context.toUpperCase()}`);
    }
    if (!repeatable(id, context)) {
      const seen = id < 32 ? seenLo & (1 << id) : seenHi & (1 << (id - 32));
      if (seen !== 0) throw protocolViolation(`property ${spec.key} appears more than once`);
      if (id < 32) seenLo |= 1 << id;
      else seenHi |= 1 << (id - 32);
    }
    readValue(r, spec, props);
  }
  r.end = outerEnd;
  return props;
}

function readValue(r: Reader, spec: PropertySpec, props: Properties): void {
  const target = props as Record<string, unknown>;
  switch (spec.type) {
    case 'boolByte': {
      const v = r.u8(spec.key);
      if (v > 1) throw protocolViolation(`${spec.key} must be 0 or 1, got ${v}`);
      target[spec.key] = v;
      return;
    }
    case 'byte':
      target[spec.key] = r.u8(spec.key);
      return;
    case 'uint16': {
      const v = r.u16(spec.key);
      if (spec.min !== undefined && v < spec.min) throw protocolViolation(`${spec.key} must not be 0`);
      target[spec.key] = v;
      return;
    }
    case 'uint32': {
      const v = r.u32(spec.key);
      if (spec.min !== undefined && v < spec.min) throw protocolViolation(`${spec.key} must not be 0`);
      target[spec.key] = v;
      return;
    }
    case 'varint': {
      const v = r.varint(spec.key);
      if (v === 0) throw protocolViolation('subscription identifier must not be 0');
      const list = props.subscriptionIdentifiers;
      if (list === undefined) props.subscriptionIdentifiers = [v];
      else list.push(v);
      return;
    }
    case 'string':
      target[spec.key] = r.utf8(spec.key);
      return;
    case 'binary':
      target[spec.key] = r.binary(spec.key);
      return;
    case 'pair': {
      const key = r.utf8('user property name');
      const value = r.utf8('user property value');
      const list = props.userProperties;
      if (list === undefined) props.userProperties = [[key, value]];
      else list.push([key, value]);
      return;
    }
  }
}

function fail(message: string): never {
  throw new ProtocolError(0x82, message);
}

/** The byte length of the properties block without its length prefix; validates every value. */
export function propertiesLength(props: Properties | undefined, context: PropertyContext): number {
  if (props === undefined) return 0;
  let length = 0;
  const bit = CONTEXT_BIT[context];
  for (const key in props) {
    const value = (props as Record<string, unknown>)[key];
    if (value === undefined) continue;
    const spec = specByKey.get(key);
    if (spec === undefined) fail(`unknown property '${key}'`);
    if ((allowedMask[spec.id]! & bit) === 0) fail(`property ${key} is not allowed in ${context.toUpperCase()}`);
    switch (spec.type) {
      case 'boolByte':
      case 'byte':
        checkInt(key, value, 0, spec.type === 'boolByte' ? 1 : 255);
        length += 2;
        break;
      case 'uint16':
        checkInt(key, value, spec.min ?? 0, 0xffff);
        length += 3;
        break;
      case 'uint32':
        checkInt(key, value, spec.min ?? 0, 0xffffffff);
        length += 5;
        break;
      case 'varint': {
        const ids = value as number[];
        if (!Array.isArray(ids)) fail(`${key} must be an array of numbers`);
        if (context === 'subscribe' && ids.length > 1) fail('SUBSCRIBE carries at most one subscription identifier');
        for (const id of ids) {
          checkInt(key, id, 1, 268_435_455);
          length += 1 + varintLength(id);
        }
        break;
      }
      case 'string':
        if (typeof value !== 'string') fail(`${key} must be a string`);
        length += 1 + 2 + checkedUtf8Length(key, value);
        break;
      case 'binary':
        if (!Buffer.isBuffer(value)) fail(`${key} must be a Buffer`);
        if (value.length > 0xffff) fail(`${key} is longer than 65535 bytes`);
        length += 1 + 2 + value.length;
        break;
      case 'pair':
        if (!Array.isArray(value)) fail(`${key} must be an array of [name, value] pairs`);
        for (const pair of value as Array<[string, string]>) {
          length += 1 + 4 + checkedUtf8Length('user property name', pair[0]) + checkedUtf8Length('user property value', pair[1]);
        }
        break;
    }
  }
  return length;
}

function checkInt(key: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(`${key} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
}

function checkedUtf8Length(key: string, value: string): number {
  if (typeof value !== 'string') fail(`${key} must be a string`);
  const n = measureUtf8(value);
  if (n < 0) fail(`${key} ${utf8Problem(value)}`);
  if (n > 0xffff) fail(`${key} is longer than 65535 bytes`);
  return n;
}

/** Writes the property length prefix and the properties; `length` comes from propertiesLength(). */
export function writeProperties(buf: Buffer, pos: number, props: Properties | undefined, length: number): number {
  pos = writeVarint(buf, pos, length);
  if (props === undefined || length === 0) return pos;
  for (const key in props) {
    const value = (props as Record<string, unknown>)[key];
    if (value === undefined) continue;
    const spec = specByKey.get(key)!;
    switch (spec.type) {
      case 'boolByte':
      case 'byte':
        buf[pos++] = spec.id;
        buf[pos++] = value as number;
        break;
      case 'uint16':
        buf[pos++] = spec.id;
        buf[pos++] = (value as number) >>> 8;
        buf[pos++] = (value as number) & 0xff;
        break;
      case 'uint32':
        buf[pos++] = spec.id;
        buf.writeUInt32BE(value as number, pos);
        pos += 4;
        break;
      case 'varint':
        for (const id of value as number[]) {
          buf[pos++] = spec.id;
          pos = writeVarint(buf, pos, id);
        }
        break;
      case 'string':
        buf[pos++] = spec.id;
        pos = writeUtf8String(buf, pos, value as string);
        break;
      case 'binary':
        buf[pos++] = spec.id;
        pos = writeBinary(buf, pos, value as Buffer);
        break;
      case 'pair':
        for (const [k, v] of value as Array<[string, string]>) {
          buf[pos++] = spec.id;
          pos = writeUtf8String(buf, pos, k);
          pos = writeUtf8String(buf, pos, v);
        }
        break;
    }
  }
  return pos;
}
