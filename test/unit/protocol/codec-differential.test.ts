/**
 * Differential tests of the codec against mqtt-packet (the codec of MQTT.js), for MQTT 3.1.1 and 5.0:
 *   (i)  our encoder → mqtt-packet's parser → mapped to our shape  equals the original packet;
 *   (ii) the original mapped to mqtt-packet's shape → mqtt-packet's generator → our parser  equals the original.
 * Both sides are compared in canonical form (canonicalPacket), because several packets have more than one
 * valid encoding (an MQTT 5 ack with reason code 0x00 and no properties may or may not carry the code).
 *
 * The generators are the ones of test/helpers/packet-arbitraries.ts, constrained only where mqtt-packet
 * cannot represent a valid packet (representableUserProperties, parsableByMqttPacket, generatableByMqttPacket
 * below); the quirk behind each constraint is demonstrated by the "mqtt-packet quirks" tests at the end.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import mqtt from 'mqtt-packet';
import { encodePacket } from '../../../protocol/encoder.js';
import { PacketParser } from '../../../protocol/parser.js';
import { propertySpecs } from '../../../protocol/properties.js';
import type {
  AckPacket, AuthPacket, ConnackPacket, ConnectPacket, DisconnectPacket, Packet, PacketTypeName, Properties,
  ProtocolVersion, PublishPacket, QoS, SubackPacket, SubscribePacket, Subscription, UnsubackPacket, UnsubscribePacket,
  UserProperties, Will,
} from '../../../protocol/packets.js';
import {
  type ArbOptions, arbMqttString, arbPacket, arbPacketOfType, bufferEquality, canonicalPacket, packetTypesOf,
} from '../../helpers/packet-arbitraries.js';

expect.addEqualityTesters([bufferEquality]);

const RUNS_PER_TYPE = 1_000;

// ---------------------------------------------------------------------------------------------------------------
// Mapping between our packet objects and mqtt-packet's

/** mqtt-packet's packet objects, loosely typed: its declared types omit fields its parser sets (length, ...). */
type MqttObject = Record<string, unknown>;

const boolByteKeys = new Set<string>(propertySpecs.filter((s) => s.type === 'boolByte' && s.key !== 'maximumQos').map((s) => s.key));

/**
 * Our properties → mqtt-packet's: `maximumQos` is `maximumQoS` (a number); `subscriptionIdentifiers` is
 * `subscriptionIdentifier`, a number or, when repeated, an array; the other one-byte flags are booleans; user
 * properties are an object (null prototype, like its parser's) whose value is an array for a repeated name.
 */
function propertiesToMqtt(props: Properties): MqttObject {
  const out: MqttObject = {};
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined) continue;
    if (key === 'maximumQos') out.maximumQoS = value;
    else if (key === 'subscriptionIdentifiers') {
      const ids = value as number[];
      out.subscriptionIdentifier = ids.length === 1 ? ids[0] : [...ids];
    } else if (key === 'userProperties') {
      const obj: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
      for (const [name, v] of value as UserProperties) {
        const prev = obj[name];
        if (prev === undefined) obj[name] = v;
        else if (Array.isArray(prev)) prev.push(v);
        else obj[name] = [prev, v];
      }
      out.userProperties = obj;
    } else if (boolByteKeys.has(key)) out[key] = value === 1;
    else out[key] = value;
  }
  return out;
}

/** mqtt-packet's properties → ours (the inverse of propertiesToMqtt; unknown keys are kept so they show in diffs). */
function propertiesFromMqtt(props: MqttObject): Properties {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(props)) {
    const value = props[key];
    if (key === 'maximumQoS') out.maximumQos = value;
    else if (key === 'subscriptionIdentifier') out.subscriptionIdentifiers = Array.isArray(value) ? [...(value as number[])] : [value];
    else if (key === 'userProperties') {
      const pairs: UserProperties = [];
      const obj = value as Record<string, string | string[]>;
      for (const name of Object.getOwnPropertyNames(obj)) {
        const v = obj[name]!;
        for (const item of Array.isArray(v) ? v : [v]) pairs.push([name, item]);
      }
      out.userProperties = pairs;
    } else if (typeof value === 'boolean') out[key] = value ? 1 : 0;
    else out[key] = value;
  }
  return out as Properties;
}

function withProperties(target: MqttObject, props: Properties | undefined): MqttObject {
  if (props !== undefined) target.properties = propertiesToMqtt(props);
  return target;
}

/** Our packet → mqtt-packet's packet object for `mqtt.generate(packet, { protocolVersion })`. */
function toMqtt(p: Packet, version: ProtocolVersion): MqttObject {
  const v5 = version === 5;
  switch (p.type) {
    case 'connect': {
      const m: MqttObject = {
        cmd: 'connect', protocolId: p.protocolName, protocolVersion: p.protocolVersion,
        clean: p.clean, keepalive: p.keepalive, clientId: p.clientId,
      };
      if (p.will !== undefined) {
        m.will = withProperties({ topic: p.will.topic, payload: p.will.payload, qos: p.will.qos, retain: p.will.retain }, p.will.properties);
      }
      if (p.username !== undefined) m.username = p.username;
      if (p.password !== undefined) m.password = p.password;
      return withProperties(m, p.properties);
    }
    case 'connack':
      return v5
        ? withProperties({ cmd: 'connack', sessionPresent: p.sessionPresent, reasonCode: p.reasonCode }, p.properties)
        : { cmd: 'connack', sessionPresent: p.sessionPresent, returnCode: p.reasonCode };
    case 'publish': {
      const m: MqttObject = { cmd: 'publish', topic: p.topic, payload: p.payload, qos: p.qos, retain: p.retain, dup: p.dup };
      if (p.packetId !== undefined) m.messageId = p.packetId;
      return withProperties(m, p.properties);
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      // Our absent reason code means 0x00 Success; mqtt-packet's generator wants a number.
      return v5 ? withProperties({ cmd: p.type, messageId: p.packetId, reasonCode: p.reasonCode ?? 0 }, p.properties) : { cmd: p.type, messageId: p.packetId };
    case 'subscribe':
      return withProperties({
        cmd: 'subscribe',
        messageId: p.packetId,
        subscriptions: p.subscriptions.map((s) =>
          v5 ? { topic: s.topic, qos: s.qos, nl: s.noLocal ?? false, rap: s.retainAsPublished ?? false, rh: s.retainHandling ?? 0 } : { topic: s.topic, qos: s.qos }),
      }, p.properties);
    case 'suback':
      return withProperties({ cmd: 'suback', messageId: p.packetId, granted: [...p.reasonCodes] }, p.properties);
    case 'unsubscribe':
      return withProperties({ cmd: 'unsubscribe', messageId: p.packetId, unsubscriptions: [...p.topics] }, p.properties);
    case 'unsuback':
      return v5
        ? withProperties({ cmd: 'unsuback', messageId: p.packetId, granted: [...(p.reasonCodes ?? [])] }, p.properties)
        : { cmd: 'unsuback', messageId: p.packetId };
    case 'pingreq':
    case 'pingresp':
      return { cmd: p.type };
    case 'disconnect':
      return v5 ? withProperties({ cmd: 'disconnect', reasonCode: p.reasonCode ?? 0 }, p.properties) : { cmd: 'disconnect' };
    case 'auth':
      return withProperties({ cmd: 'auth', reasonCode: p.reasonCode ?? 0 }, p.properties);
  }
}

function num(m: MqttObject, key: string): number {
  const v = m[key];
  if (typeof v !== 'number') throw new Error(`mqtt-packet ${String(m.cmd)}.${key} is ${String(v)}, not a number`);
  return v;
}

function attachProperties<T extends { properties?: Properties }>(target: T, m: MqttObject): T {
  if (m.properties !== undefined) target.properties = propertiesFromMqtt(m.properties as MqttObject);
  return target;
}

/** mqtt-packet's parsed packet → ours. Only fields mqtt-packet sets are copied, so a missing field shows in the diff. */
function fromMqtt(m: MqttObject, version: ProtocolVersion): Packet {
  const cmd = m.cmd as PacketTypeName;
  switch (cmd) {
    case 'connect': {
      const p: ConnectPacket = {
        type: 'connect', protocolVersion: m.protocolVersion as ProtocolVersion, protocolName: m.protocolId as string,
        clean: m.clean as boolean, keepalive: num(m, 'keepalive'), clientId: m.clientId as string,
      };
      if (m.will !== undefined) {
        const w = m.will as MqttObject;
        p.will = attachProperties<Will>({ topic: w.topic as string, payload: w.payload as Buffer, qos: w.qos as QoS, retain: w.retain as boolean }, w);
      }
      if (m.username !== undefined) p.username = m.username as string;
      if (m.password !== undefined) p.password = m.password as Buffer;
      return attachProperties(p, m);
    }
    case 'connack':
      return attachProperties<ConnackPacket>({ type: 'connack', sessionPresent: m.sessionPresent as boolean, reasonCode: num(m, version === 5 ? 'reasonCode' : 'returnCode') }, m);
    case 'publish': {
      const p: PublishPacket = { type: 'publish', topic: m.topic as string, payload: m.payload as Buffer, qos: m.qos as QoS, retain: m.retain as boolean, dup: m.dup as boolean };
      if (m.messageId !== undefined) p.packetId = num(m, 'messageId');
      return attachProperties(p, m);
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp': {
      const p: AckPacket<typeof cmd> = { type: cmd, packetId: num(m, 'messageId') };
      if (m.reasonCode !== undefined) p.reasonCode = num(m, 'reasonCode');
      return attachProperties(p, m);
    }
    case 'subscribe':
      return attachProperties<SubscribePacket>({
        type: 'subscribe',
        packetId: num(m, 'messageId'),
        subscriptions: (m.subscriptions as MqttObject[]).map((s) => {
          const sub: Subscription = { topic: s.topic as string, qos: s.qos as QoS };
          if (s.nl !== undefined) sub.noLocal = s.nl as boolean;
          if (s.rap !== undefined) sub.retainAsPublished = s.rap as boolean;
          if (s.rh !== undefined) sub.retainHandling = s.rh as 0 | 1 | 2;
          return sub;
        }),
      }, m);
    case 'suback':
      return attachProperties<SubackPacket>({ type: 'suback', packetId: num(m, 'messageId'), reasonCodes: [...(m.granted as number[])] }, m);
    case 'unsubscribe':
      return attachProperties<UnsubscribePacket>({ type: 'unsubscribe', packetId: num(m, 'messageId'), topics: [...(m.unsubscriptions as string[])] }, m);
    case 'unsuback': {
      const p: UnsubackPacket = { type: 'unsuback', packetId: num(m, 'messageId') };
      if (m.granted !== undefined) p.reasonCodes = [...(m.granted as number[])];
      return attachProperties(p, m);
    }
    case 'pingreq':
    case 'pingresp':
      return { type: cmd };
    case 'disconnect':
    case 'auth': {
      const p: DisconnectPacket | AuthPacket = { type: cmd };
      if (m.reasonCode !== undefined) p.reasonCode = num(m, 'reasonCode');
      return attachProperties(p, m);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Running the two codecs

/** mqtt-packet's parser on the bytes of exactly one packet; fails the test on an error or a packet count ≠ 1. */
function mqttParse(bytes: Buffer, version: ProtocolVersion): MqttObject {
  const parser = mqtt.parser({ protocolVersion: version });
  const packets: MqttObject[] = [];
  const errors: unknown[] = [];
  parser.on('packet', (p) => packets.push(p as unknown as MqttObject));
  parser.on('error', (e) => errors.push(e));
  const left = parser.parse(bytes);
  expect(errors).toStrictEqual([]);
  expect(left).toBe(0);
  expect(packets).toHaveLength(1);
  return packets[0]!;
}

function mqttGenerate(m: MqttObject, version: ProtocolVersion): Buffer {
  return mqtt.generate(m as unknown as mqtt.Packet, { protocolVersion: version });
}

function ourParse(bytes: Buffer, version: ProtocolVersion): Packet {
  const parser = new PacketParser({ protocolVersion: version });
  const out = parser.push(bytes);
  expect(parser.hasPartialPacket).toBe(false);
  expect(out).toHaveLength(1);
  return out[0]!;
}

// ---------------------------------------------------------------------------------------------------------------
// Constraints: only where mqtt-packet cannot represent a valid packet

/** Canonical array indexes ("0", "17", ...): a JS object lists them first, in numeric order, whatever the insertion order. */
const isArrayIndex = (name: string): boolean => /^(0|[1-9][0-9]*)$/.test(name) && Number(name) < 2 ** 32 - 1;

/**
 * User properties mqtt-packet round-trips without loss: it keeps them in an object keyed by name, so
 *   - all values of one name are written together, in the object's key order: names must be grouped
 *     (each name's values contiguous) for the wire order to survive;
 *   - names that are array indexes would be reordered by the object, so none are generated;
 *   - its parser tests the previous value of a name for truthiness, so a repeated name whose first value
 *     is '' loses that value ([['a', ''], ['a', 'x']] parses as { a: 'x' }): a repeated name starts non-empty.
 * Repeated names, empty names and empty values are otherwise still generated.
 */
const representableUserProperties: fc.Arbitrary<UserProperties> = fc
  .uniqueArray(
    fc.tuple(
      fc.oneof({ weight: 3, arbitrary: arbMqttString(12) }, { weight: 1, arbitrary: fc.constantFrom('', 'a', '__proto__', 'constructor') })
        .filter((name) => !isArrayIndex(name)),
      fc.array(arbMqttString(16), { minLength: 1, maxLength: 3 }),
    ),
    { minLength: 1, maxLength: 4, selector: ([name]) => name },
  )
  .map((groups) =>
    groups.flatMap(([name, values]) => {
      const vs = values.length > 1 && values[0] === '' ? ['v', ...values.slice(1)] : values;
      return vs.map((v): [string, string] => [name, v]);
    }));

const DIFFERENTIAL_OPTIONS: ArbOptions = { userProperties: representableUserProperties };

/**
 * (i) mqtt-packet's parser reads the reason code of an AUTH unconditionally, so it rejects the valid 2-byte
 * AUTH (remaining length 0 meaning 0x00 Success, MQTT 5.0 section 3.15.2.1) as "Invalid auth reason code".
 */
function parsableByMqttPacket(p: Packet): boolean {
  return !(p.type === 'auth' && p.reasonCode === undefined && p.properties === undefined);
}

/**
 * (ii) mqtt-packet's generator refuses two valid MQTT 5 CONNECTs: a password without a user name
 * ("Username is required to use password", a 3.1.1-only rule) and an empty client id with clean start 0
 * ("clientId must be given if cleanSession set to 0", also a 3.1.1-only rule).
 */
function generatableByMqttPacket(p: Packet): boolean {
  if (p.type !== 'connect') return true;
  if (p.password !== undefined && p.username === undefined) return false;
  if (p.clientId === '' && !p.clean) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// The differential properties

describe('codec vs mqtt-packet', () => {
  for (const version of [4, 5] as const) {
    describe(`MQTT protocol level ${version}`, () => {
      for (const type of packetTypesOf(version)) {
        const arb = arbPacketOfType(type, version, DIFFERENTIAL_OPTIONS);

        it(`${type}: ours encodes → mqtt-packet parses → same packet`, () => {
          fc.assert(
            fc.property(arb.filter(parsableByMqttPacket), (packet) => {
              const theirs = mqttParse(encodePacket(packet, version), version);
              expect(canonicalPacket(fromMqtt(theirs, version), version)).toStrictEqual(canonicalPacket(packet, version));
            }),
            { numRuns: RUNS_PER_TYPE },
          );
        });

        it(`${type}: mqtt-packet generates → ours parses → same packet`, () => {
          fc.assert(
            fc.property(arb.filter(generatableByMqttPacket), (packet) => {
              const bytes = mqttGenerate(toMqtt(packet, version), version);
              const ours = ourParse(bytes, version);
              expect(canonicalPacket(ours, version)).toStrictEqual(canonicalPacket(packet, version));
              // In 3.1.1 every packet has exactly one encoding: both codecs must produce the same bytes.
              if (version === 4) expect(bytes.toString('hex')).toBe(encodePacket(packet, version).toString('hex'));
            }),
            { numRuns: RUNS_PER_TYPE },
          );
        });
      }
    });
  }

  for (const version of [4, 5] as const) {
    it(`the two mapping functions are inverses of each other (level ${version})`, () => {
      fc.assert(
        fc.property(arbPacket(version, DIFFERENTIAL_OPTIONS), (packet) => {
          expect(canonicalPacket(fromMqtt(toMqtt(packet, version), version), version)).toStrictEqual(canonicalPacket(packet, version));
        }),
        { numRuns: 500 },
      );
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// The quirks behind the constraints, demonstrated (if one of these starts failing, the constraint can go)

describe('mqtt-packet quirks that constrain the differential generators', () => {
  function mqttParseOutcome(bytes: Buffer, version: ProtocolVersion): { packets: MqttObject[]; errors: Error[] } {
    const parser = mqtt.parser({ protocolVersion: version });
    const packets: MqttObject[] = [];
    const errors: Error[] = [];
    parser.on('packet', (p) => packets.push(p as unknown as MqttObject));
    parser.on('error', (e: Error) => errors.push(e));
    parser.parse(bytes);
    return { packets, errors };
  }

  it('its parser rejects the 2-byte AUTH that means 0x00 Success', () => {
    const bytes = encodePacket({ type: 'auth' }, 5);
    expect(bytes.toString('hex')).toBe('f000');
    expect(ourParse(bytes, 5)).toStrictEqual({ type: 'auth' });
    expect(mqttParseOutcome(bytes, 5).errors.map((e) => e.message)).toStrictEqual(['Invalid auth reason code']);
  });

  it('its generator refuses an MQTT 5 CONNECT with a password and no user name', () => {
    const connect: Packet = { type: 'connect', protocolVersion: 5, protocolName: 'MQTT', clean: true, keepalive: 0, clientId: 'c', password: Buffer.from('p') };
    expect(ourParse(encodePacket(connect, 5), 5)).toStrictEqual(connect);
    expect(() => mqttGenerate(toMqtt(connect, 5), 5)).toThrow('Username is required to use password');
  });

  it('its generator refuses an MQTT 5 CONNECT with an empty client id and clean start 0', () => {
    const connect: Packet = { type: 'connect', protocolVersion: 5, protocolName: 'MQTT', clean: false, keepalive: 0, clientId: '' };
    expect(ourParse(encodePacket(connect, 5), 5)).toStrictEqual(connect);
    expect(() => mqttGenerate(toMqtt(connect, 5), 5)).toThrow('clientId must be given if cleanSession set to 0');
  });

  it('user properties go through an object: interleaved names are regrouped, array-index names sorted, a leading empty value lost', () => {
    const props = (userProperties: UserProperties): Packet => ({ type: 'puback', packetId: 1, reasonCode: 0, properties: { userProperties } });
    const viaMqttPacket = (userProperties: UserProperties): unknown => {
      const parsed = fromMqtt(mqttParse(encodePacket(props(userProperties), 5), 5), 5);
      return parsed.type === 'puback' ? parsed.properties?.userProperties : undefined;
    };
    expect(viaMqttPacket([['a', '1'], ['b', '2'], ['a', '3']])).toStrictEqual([['a', '1'], ['a', '3'], ['b', '2']]);
    expect(viaMqttPacket([['x', '1'], ['7', '2']])).toStrictEqual([['7', '2'], ['x', '1']]);
    expect(viaMqttPacket([['a', ''], ['a', 'x']])).toStrictEqual([['a', 'x']]);
  });
});
