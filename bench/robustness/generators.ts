/**
 * fast-check generators of the robustness campaign: the valid packets a well-behaved client may send
 * (chosen so the broker keeps the connection open: no fatal cross-field combinations), the mutations
 * applied to them, and a whole connection's plan. bench/ cannot import test/, so these are the
 * campaign's own; test/helpers/packet-arbitraries.ts stays the arbitraries of the codec tests.
 *
 * "Benign" here means more than "decodable": the broker must accept the packet without closing the
 * connection. So PUBLISH topics never contain wildcards, topic aliases stay within the broker's
 * maximum, retained messages go only to a bounded pool of topics (the broker keeps them, so random
 * topics would make its memory grow by design), persistent sessions only use a bounded pool of
 * client ids, No Local is never set on a shared subscription, keepalives are 0 or at least 60 s, and
 * a v5 DISCONNECT never raises the session expiry.
 */
import fc from 'fast-check';
import type { AckPacket, DisconnectPacket, Packet, Properties, PublishPacket, QoS, SubscribePacket, Subscription, UnsubscribePacket } from '../../protocol/packets.js';
import { allowedReasonCodes } from '../../protocol/reason-codes.js';

export type Version = 3 | 4 | 5;

/** Characters of generated strings: ASCII and 2-, 3- and 4-byte UTF-8 sequences (no '/', '+', '#', U+0000). */
const CHARS = ['a', 'b', 'c', 'k', 'x', 'y', 'z', '0', '7', '-', '_', '.', ' ', 'é', 'ß', '€', '中', '😀', '\u{10FFFF}', '\u00a0'];
const LEVELS = ['a', 'b', 'c', 'é', 'x1', '😀'];
/** Topics that may carry retained messages and wills: the broker keeps at most this many retained messages. */
export const POOL_TOPICS: readonly string[] = LEVELS.flatMap((a) => LEVELS.map((b) => `rb/${a}/${b}`));
const FILTERS = ['#', 'rb/#', 'rb/+/+', 'rb/a/+', '+/+/+', 'rb/é/#', 'rbx/#', 'rb/a/b', 'rb/😀/+'];
const SHARED_FILTERS = ['$share/g1/rb/#', '$share/g2/+/a/#'];
/** Filters the broker refuses in their SUBACK slot (the connection stays). */
const BAD_FILTERS = ['rb/#/x', 'rb/a+', '', 'a/#b'];
/** Client ids of persistent sessions: the only ids that may keep a session after the connection. */
export const CLIENT_ID_POOL = 24;

export const arbText = (maxLength: number): fc.Arbitrary<string> =>
  fc.array(fc.constantFrom(...CHARS), { maxLength }).map((a) => a.join(''));

/** `n` bytes from a xorshift seed: large payloads without generating every byte through fast-check. */
export function seededBytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const arbSmallBytes = (maxLength: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));

const arbPayload: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 14, arbitrary: arbSmallBytes(40) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 200, max: 3000 }), fc.integer()).map(([n, s]) => seededBytes(n, s)) },
);

const arbUserProperties = fc.array(fc.tuple(arbText(6), arbText(8)), { minLength: 1, maxLength: 2 });
const arbPacketId = fc.integer({ min: 1, max: 0xffff });
const arbQos = fc.constantFrom<QoS>(0, 1, 2);
const arbPoolTopic = fc.constantFrom(...POOL_TOPICS);

/** A topic name: mostly from the pool, sometimes a fresh one under rbx/. */
const arbTopic: fc.Arbitrary<{ topic: string; pooled: boolean }> = fc.oneof(
  { weight: 4, arbitrary: arbPoolTopic.map((topic) => ({ topic, pooled: true })) },
  { weight: 1, arbitrary: arbText(10).map((s) => ({ topic: `rbx/${s}`, pooled: false })) },
);

/** A valid packet the broker accepts; `terminal` marks a DISCONNECT (the broker closes after it). */
export interface BenignItem {
  packet: Packet;
  terminal: boolean;
  /** v5 PUBLISH that should use an alias set earlier in the stream instead of its topic (decided when realised). */
  aliasOnly?: boolean;
}

function withProps<T extends PublishPacket | SubscribePacket | UnsubscribePacket>(p: T, props: Properties | null): T {
  if (props !== null && Object.keys(props).length > 0) p.properties = props;
  return p;
}

function arbPublish(version: Version, aliasMax: number): fc.Arbitrary<BenignItem> {
  const props: fc.Arbitrary<Properties | null> =
    version === 5
      ? fc.option(
          fc.record(
            {
              payloadFormatIndicator: fc.constant(0),
              messageExpiryInterval: fc.integer({ min: 0, max: 3600 }),
              contentType: arbText(10),
              responseTopic: arbPoolTopic,
              correlationData: arbSmallBytes(12),
              userProperties: arbUserProperties,
              ...(aliasMax > 0 ? { topicAlias: fc.integer({ min: 1, max: aliasMax }) } : {}),
            },
            { requiredKeys: [] },
          ) as fc.Arbitrary<Properties>,
          { freq: 2, nil: null },
        )
      : fc.constant(null);
  return fc
    .record({
      topic: arbTopic,
      qos: arbQos,
      retain: fc.boolean(),
      dup: fc.boolean(),
      packetId: arbPacketId,
      payload: arbPayload,
      props,
      aliasOnly: version === 5 && aliasMax > 0 ? fc.integer({ min: 0, max: 5 }).map((n) => n === 0) : fc.constant(false),
    })
    .map((r): BenignItem => {
      const packet = withProps<PublishPacket>(
        {
          type: 'publish',
          topic: r.topic.topic,
          payload: r.payload,
          qos: r.qos,
          // Retained messages stay in the broker: only the bounded pool of topics may carry them.
          retain: r.retain && r.topic.pooled,
          dup: r.dup && r.qos > 0,
          ...(r.qos > 0 ? { packetId: r.packetId } : {}),
        },
        r.props,
      );
      return r.aliasOnly ? { packet, terminal: false, aliasOnly: true } : { packet, terminal: false };
    });
}

function arbAck(type: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp', version: Version): fc.Arbitrary<BenignItem> {
  if (version !== 5) return arbPacketId.map((packetId) => ({ packet: { type, packetId }, terminal: false }));
  return fc
    .record({
      packetId: arbPacketId,
      code: fc.option(fc.constantFrom(...allowedReasonCodes[type]), { freq: 2, nil: null }),
      reasonString: fc.option(arbText(12), { freq: 3, nil: null }),
    })
    .map((r): BenignItem => {
      const packet: AckPacket<typeof type> = { type, packetId: r.packetId };
      if (r.code !== null) packet.reasonCode = r.code;
      if (r.reasonString !== null) packet.properties = { reasonString: r.reasonString };
      return { packet, terminal: false };
    });
}

function arbSubscribe(version: Version): fc.Arbitrary<BenignItem> {
  const filter = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...FILTERS) },
    { weight: 2, arbitrary: fc.constantFrom(...SHARED_FILTERS) },
    { weight: 1, arbitrary: fc.constantFrom(...BAD_FILTERS) },
  );
  return fc
    .record({
      packetId: arbPacketId,
      subs: fc.array(
        fc.record({ filter, qos: arbQos, noLocal: fc.boolean(), rap: fc.boolean(), rh: fc.constantFrom<0 | 1 | 2>(0, 1, 2) }),
        { minLength: 1, maxLength: 3 },
      ),
      subId: version === 5 ? fc.option(fc.integer({ min: 1, max: 268_435_455 }), { freq: 3, nil: null }) : fc.constant(null),
      user: version === 5 ? fc.option(arbUserProperties, { freq: 4, nil: null }) : fc.constant(null),
    })
    .map((r): BenignItem => {
      const subscriptions = r.subs.map((s): Subscription => {
        const sub: Subscription = { topic: s.filter, qos: s.qos };
        if (version === 5) {
          // [MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error: never in a benign packet.
          sub.noLocal = s.noLocal && !s.filter.startsWith('$share/');
          sub.retainAsPublished = s.rap;
          sub.retainHandling = s.rh;
        }
        return sub;
      });
      const props: Properties = {};
      if (r.subId !== null) props.subscriptionIdentifiers = [r.subId];
      if (r.user !== null) props.userProperties = r.user;
      return { packet: withProps<SubscribePacket>({ type: 'subscribe', packetId: r.packetId, subscriptions }, props), terminal: false };
    });
}

function arbUnsubscribe(version: Version): fc.Arbitrary<BenignItem> {
  return fc
    .record({
      packetId: arbPacketId,
      topics: fc.array(fc.constantFrom(...FILTERS, ...SHARED_FILTERS, ...BAD_FILTERS), { minLength: 1, maxLength: 3 }),
      user: version === 5 ? fc.option(arbUserProperties, { freq: 4, nil: null }) : fc.constant(null),
    })
    .map((r): BenignItem => ({
      packet: withProps<UnsubscribePacket>({ type: 'unsubscribe', packetId: r.packetId, topics: r.topics }, r.user === null ? null : { userProperties: r.user }),
      terminal: false,
    }));
}

function arbDisconnect(version: Version): fc.Arbitrary<BenignItem> {
  if (version !== 5) return fc.constant<BenignItem>({ packet: { type: 'disconnect' }, terminal: true });
  return fc
    .record({
      code: fc.option(fc.constantFrom(0x00, 0x04, 0x80, 0x83, 0x90, 0x99), { freq: 2, nil: null }),
      reasonString: fc.option(arbText(12), { freq: 3, nil: null }),
    })
    .map((r): BenignItem => {
      const packet: DisconnectPacket = { type: 'disconnect' };
      if (r.code !== null) packet.reasonCode = r.code;
      if (r.reasonString !== null) packet.properties = { reasonString: r.reasonString };
      return { packet, terminal: true };
    });
}

/** Any benign client packet after CONNECT, PUBLISH the most likely. */
export function arbBenign(version: Version, aliasMax: number): fc.Arbitrary<BenignItem> {
  return fc.oneof(
    { weight: 16, arbitrary: arbPublish(version, aliasMax) },
    { weight: 2, arbitrary: arbAck('puback', version) },
    { weight: 2, arbitrary: arbAck('pubrec', version) },
    { weight: 2, arbitrary: arbAck('pubrel', version) },
    { weight: 2, arbitrary: arbAck('pubcomp', version) },
    { weight: 4, arbitrary: arbSubscribe(version) },
    { weight: 2, arbitrary: arbUnsubscribe(version) },
    { weight: 2, arbitrary: fc.constant<BenignItem>({ packet: { type: 'pingreq' }, terminal: false }) },
    { weight: 1, arbitrary: arbDisconnect(version) },
  );
}

/** The parts of a CONNECT drawn by fast-check; the client id is fixed when the plan is realised. */
export interface ConnectTemplate {
  idKind: 'unique' | 'pool' | 'empty';
  poolIndex: number;
  clean: boolean;
  keepalive: number;
  will: { topic: string; payload: Buffer; qos: QoS; retain: boolean; properties: Properties | null } | null;
  username: string | null;
  password: Buffer | null;
  properties: Properties | null;
}

export function arbConnectTemplate(version: Version): fc.Arbitrary<ConnectTemplate> {
  const willProps: fc.Arbitrary<Properties | null> =
    version === 5
      ? fc.option(
          fc.record(
            {
              willDelayInterval: fc.integer({ min: 0, max: 2 }),
              messageExpiryInterval: fc.integer({ min: 0, max: 600 }),
              contentType: arbText(8),
              payloadFormatIndicator: fc.constant(0),
              userProperties: arbUserProperties,
            },
            { requiredKeys: [] },
          ) as fc.Arbitrary<Properties>,
          { freq: 2, nil: null },
        )
      : fc.constant(null);
  const props: fc.Arbitrary<Properties | null> =
    version === 5
      ? fc.option(
          fc.record(
            {
              sessionExpiryInterval: fc.oneof(fc.integer({ min: 0, max: 600 }), fc.constant(0xffffffff)),
              receiveMaximum: fc.integer({ min: 16, max: 0xffff }),
              maximumPacketSize: fc.integer({ min: 65_536, max: 268_435_455 }),
              topicAliasMaximum: fc.integer({ min: 0, max: 100 }),
              requestResponseInformation: fc.constantFrom(0, 1),
              requestProblemInformation: fc.constantFrom(0, 1),
              userProperties: arbUserProperties,
            },
            { requiredKeys: [] },
          ) as fc.Arbitrary<Properties>,
          { freq: 3, nil: null },
        )
      : fc.constant(null);
  return fc.record({
    idKind: fc.oneof(
      { weight: 6, arbitrary: fc.constant<'unique'>('unique') },
      { weight: 3, arbitrary: fc.constant<'pool'>('pool') },
      { weight: 1, arbitrary: fc.constant<'empty'>('empty') },
    ),
    poolIndex: fc.integer({ min: 0, max: CLIENT_ID_POOL - 1 }),
    clean: fc.boolean(),
    // Keep alive 1-59 s could expire while a connection waits under load; 0 or >= 60 s never does here.
    keepalive: fc.oneof(fc.constant(0), fc.integer({ min: 60, max: 0xffff })),
    will: fc.option(
      fc.record({ topic: arbPoolTopic, payload: arbSmallBytes(24), qos: arbQos, retain: fc.boolean(), properties: willProps }),
      { freq: 3, nil: null },
    ),
    username: fc.option(arbText(12), { freq: 3, nil: null }),
    password: fc.option(arbSmallBytes(16), { freq: 3, nil: null }),
    properties: props,
  });
}

// ------------------------------------------------------------------------------------------------
// Mutations

export type ConnectFieldVariant =
  | 'reserved-flag' | 'will-qos-3' | 'will-flags-without-will' | 'password-without-user' | 'protocol-name'
  | 'protocol-level' | 'long-v3-client-id' | 'empty-id-persistent' | 'auth-method' | 'receive-maximum-0'
  | 'will-topic-wildcard';

export type ConfusionVariant = 'connack' | 'suback' | 'unsuback' | 'pingresp' | 'auth' | 'connect' | 'connect-bad-level' | 'type-0';

export type MutationSpec =
  | { kind: 'bitflip'; bits: number[] }
  /** Cut the body; `fixLength` rewrites the remaining length to match (else the next bytes become body). */
  | { kind: 'truncate'; keep: number; fixLength: boolean }
  | { kind: 'length'; variant: 'delta' | 'random' | 'non-minimal' | 'five-byte'; value: number }
  /** A remaining length above the broker's maximum packet size, followed by a little of the body. */
  | { kind: 'oversized'; extra: number; tail: number }
  | { kind: 'random'; bytes: Uint8Array; framed: boolean; firstByte: number }
  | { kind: 'property'; variant: 'duplicate' | 'foreign' | 'unknown-id'; pick: number }
  | { kind: 'flags'; pick: number }
  | { kind: 'utf8'; pick: number }
  | { kind: 'confusion'; variant: ConfusionVariant; pick: number }
  | { kind: 'connect-field'; variant: ConnectFieldVariant; pick: number };

export type MutationKind = MutationSpec['kind'];

const pick = fc.integer({ min: 0, max: 0x7fffffff });

/** A mutation of a packet after CONNECT (or of a first packet that is not a CONNECT). */
export function arbMutation(firstInStream: boolean): fc.Arbitrary<MutationSpec> {
  const confusions: ConfusionVariant[] = firstInStream
    ? ['connack', 'suback', 'unsuback', 'pingresp', 'auth', 'type-0']
    : ['connack', 'suback', 'unsuback', 'pingresp', 'auth', 'connect', 'connect-bad-level', 'type-0'];
  return fc.oneof(
    { weight: 4, arbitrary: fc.array(fc.integer({ min: 0, max: 0x7fffffff }), { minLength: 1, maxLength: 3 }).map((bits): MutationSpec => ({ kind: 'bitflip', bits })) },
    { weight: 2, arbitrary: fc.record({ keep: fc.integer({ min: 0, max: 999 }), fixLength: fc.boolean() }).map((r): MutationSpec => ({ kind: 'truncate', ...r })) },
    {
      weight: 2,
      arbitrary: fc
        .record({ variant: fc.constantFrom<'delta' | 'random' | 'non-minimal' | 'five-byte'>('delta', 'random', 'non-minimal', 'five-byte'), value: fc.integer({ min: 0, max: 0x7fffffff }) })
        .map((r): MutationSpec => ({ kind: 'length', ...r })),
    },
    { weight: 1, arbitrary: fc.record({ extra: fc.integer({ min: 0, max: 0x7fffffff }), tail: fc.integer({ min: 0, max: 16 }) }).map((r): MutationSpec => ({ kind: 'oversized', ...r })) },
    {
      weight: 2,
      arbitrary: fc
        .record({ bytes: fc.uint8Array({ minLength: 1, maxLength: 48 }), framed: fc.boolean(), firstByte: fc.integer({ min: 0, max: 255 }) })
        .map((r): MutationSpec => ({ kind: 'random', ...r })),
    },
    { weight: 1, arbitrary: fc.record({ variant: fc.constantFrom<'duplicate' | 'foreign' | 'unknown-id'>('duplicate', 'foreign', 'unknown-id'), pick }).map((r): MutationSpec => ({ kind: 'property', ...r })) },
    { weight: 1, arbitrary: pick.map((p): MutationSpec => ({ kind: 'flags', pick: p })) },
    { weight: 1, arbitrary: pick.map((p): MutationSpec => ({ kind: 'utf8', pick: p })) },
    { weight: 1, arbitrary: fc.record({ variant: fc.constantFrom(...confusions), pick }).map((r): MutationSpec => ({ kind: 'confusion', ...r })) },
  );
}

/** A mutation of the CONNECT itself: the generic ones plus CONNECT-specific field corruptions. */
export function arbConnectMutation(version: Version): fc.Arbitrary<MutationSpec> {
  const fields: ConnectFieldVariant[] = ['reserved-flag', 'will-qos-3', 'will-flags-without-will', 'protocol-name', 'protocol-level', 'will-topic-wildcard'];
  if (version !== 5) fields.push('password-without-user');
  if (version === 3) fields.push('long-v3-client-id');
  if (version === 4) fields.push('empty-id-persistent');
  if (version === 5) fields.push('auth-method', 'receive-maximum-0');
  return fc.oneof(
    { weight: 3, arbitrary: arbMutation(true).filter((m) => m.kind !== 'confusion' && m.kind !== 'random') },
    { weight: 2, arbitrary: fc.record({ variant: fc.constantFrom(...fields), pick }).map((r): MutationSpec => ({ kind: 'connect-field', ...r })) },
  );
}

// ------------------------------------------------------------------------------------------------
// A connection's plan

export interface PlanItem {
  base: BenignItem;
  mutation: MutationSpec | null;
}

export interface PlanSpec {
  version: Version;
  /** valid CONNECT, mutated CONNECT, or no CONNECT at all (the first packet is something else). */
  connectMode: 'valid' | 'mutated' | 'none';
  connect: ConnectTemplate;
  connectMutation: MutationSpec;
  items: PlanItem[];
  /** Chunk boundaries, as raw numbers reduced modulo the stream length when realised. */
  cuts: number[];
  /** Write the first bytes one at a time (splits every fixed header of the first frames). */
  dribble: number;
}

export interface PlanOptions {
  /** The broker's Topic Alias Maximum (benign PUBLISH packets stay within it). */
  topicAliasMaximum: number;
  /** Most packets after CONNECT in one connection. */
  maxItems: number;
}

export function arbPlan(options: PlanOptions): fc.Arbitrary<PlanSpec> {
  const aliasMax = Math.min(options.topicAliasMaximum, 64);
  // Built once per version (fc.chain would rebuild the whole tree for every sample).
  const perVersion = (version: Version): fc.Arbitrary<PlanSpec> => {
    const benign = arbBenign(version, aliasMax);
    const mutation = arbMutation(false);
    // How often packets after CONNECT are mutated: rarely (long sessions), sometimes, often, or always.
    const items = (percent: number): fc.Arbitrary<PlanItem[]> =>
      fc.array(
        fc
          .tuple(benign, percent >= 100 ? mutation : fc.oneof({ weight: 100 - percent, arbitrary: fc.constant(null) }, { weight: percent, arbitrary: mutation }))
          .map(([base, m]): PlanItem => ({ base, mutation: m })),
        { maxLength: options.maxItems, size: 'max' },
      );
    return fc
      .record({
        connectMode: fc.oneof(
          { weight: 15, arbitrary: fc.constant<'valid'>('valid') },
          { weight: 4, arbitrary: fc.constant<'mutated'>('mutated') },
          { weight: 1, arbitrary: fc.constant<'none'>('none') },
        ),
        connect: arbConnectTemplate(version),
        connectMutation: arbConnectMutation(version),
        items: fc.oneof(items(5), items(15), items(40), items(100)),
        firstMutation: arbMutation(true),
        cuts: fc.array(fc.integer({ min: 0, max: 0x7fffffff }), { maxLength: 6 }),
        dribble: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 24 }) }),
      })
      .map((r): PlanSpec => {
        const items = r.items;
        if (r.connectMode === 'none' && items.length > 0 && items[0]!.mutation !== null) items[0] = { base: items[0]!.base, mutation: r.firstMutation };
        return { version, connectMode: r.connectMode, connect: r.connect, connectMutation: r.connectMutation, items, cuts: r.cuts, dribble: r.dribble };
      });
  };
  return fc.oneof({ weight: 1, arbitrary: perVersion(3) }, { weight: 3, arbitrary: perVersion(4) }, { weight: 4, arbitrary: perVersion(5) });
}
