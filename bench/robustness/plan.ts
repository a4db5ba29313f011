/**
 * Turns a generated PlanSpec into the bytes one connection sends (frames, chunking) and into what the
 * broker must do with them (the Expectation), decided from how the stream was built.
 */
import fc from 'fast-check';
import { encodePacket } from '../../protocol/encoder.js';
import type { ConnectPacket, Packet, ProtocolVersion } from '../../protocol/packets.js';
import { arbPlan, type PlanOptions, type PlanSpec, type Version } from './generators.js';
import { mutate, mutateConnect, type Effect } from './mutations.js';
import { announcedLevel, scanStream, type StreamScan } from './wire.js';

export interface PlannedFrame {
  bytes: Buffer;
  /** Packet type, or the mutation label for mutated frames. */
  label: string;
  mutated: boolean;
  effect: Effect;
}

type Fatal = Extract<Effect, { kind: 'fatal' }>;

export type Expectation =
  /** Nothing decidable beyond the invariants every answer must satisfy. */
  | { kind: 'none' }
  /**
   * The first frame is not a CONNECT: the broker must answer nothing [MQTT-3.1.0-1] and, once that
   * frame is complete, close the connection.
   */
  | { kind: 'silent'; mustClose: boolean }
  /** A CONNECT the broker must refuse: never CONNACK 0x00; close after at most a refusing CONNACK. */
  | { kind: 'refuse'; fatal: Fatal }
  /**
   * A valid CONNECT: CONNACK 0x00 first, then what the first non-benign frame decides: `open` (none:
   * the broker must still answer a PINGREQ), `terminal` (a client DISCONNECT: close, no DISCONNECT
   * back), a fatal frame (close; v5 DISCONNECT with one of its codes), or `unknown`.
   */
  | {
      kind: 'accept';
      clean: boolean;
      then: 'open' | 'terminal' | 'unknown' | Fatal;
      /** Frame index of the first non-benign frame (frames.length when there is none). */
      firstBad: number;
      /** A pool client id: another connection may take the session over (v5 DISCONNECT 0x8E). */
      allowTakeover: boolean;
      /** A resumed v5 session may hold QoS 2 ids from earlier connections: 0x93 is legitimate. */
      allowReceiveMaximumExceeded: boolean;
    };

export interface ConnectionPlan {
  index: number;
  seed: number;
  version: Version;
  connectMode: PlanSpec['connectMode'];
  clientId: string | undefined;
  frames: PlannedFrame[];
  stream: Buffer;
  /** The stream cut into the writes the client makes. */
  chunks: Buffer[];
  /** Cumulative end offset of each frame in the stream. */
  frameEnds: number[];
  scan: StreamScan;
  /** The version the broker's answers are read in: the level the first CONNECT announces, else 4. */
  responseVersion: ProtocolVersion;
  expectation: Expectation;
}

export interface RealizeOptions extends PlanOptions {
  seed: number;
  /** The broker's maximum packet size (bytes, fixed header included). */
  maxPacketSize: number;
}

/** 32-bit mix (splitmix-style), for per-connection seeds and client id tags. */
export function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

export function connectionSeed(seed: number, index: number): number {
  return mix32((seed ^ mix32(index + 0x9e3779b9)) >>> 0) | 0;
}

/** Builds plans for one campaign: one fast-check sample per connection, seeded by (seed, index). */
export class Planner {
  private readonly arb: fc.Arbitrary<PlanSpec>;
  constructor(readonly options: RealizeOptions) {
    this.arb = arbPlan(options);
  }

  plan(index: number): ConnectionPlan {
    const seed = connectionSeed(this.options.seed, index);
    const spec = fc.sample(this.arb, { seed, numRuns: 1 })[0]!;
    return realize(spec, index, seed, this.options);
  }
}

/**
 * A client id unique to this connection: the index plus a tag derived from it, so a bit flip in
 * another connection's CONNECT cannot turn its id into this one (which would take this session over).
 */
function uniqueClientId(seed: number, index: number): string {
  const tag = mix32((seed ^ Math.imul(index, 0x01000193)) >>> 0).toString(16).padStart(8, '0').slice(0, 6);
  return `u${index.toString(36)}.${tag}`;
}

function buildConnect(spec: PlanSpec, index: number, seed: number): ConnectPacket {
  const v = spec.version;
  const t = spec.connect;
  const idKind = v === 3 && t.idKind === 'empty' ? 'unique' : t.idKind;
  const clientId = idKind === 'pool' ? `p${t.poolIndex}` : idKind === 'empty' ? '' : uniqueClientId(seed, index);
  // Only pool ids may leave a session behind: every other CONNECT asks for a clean, expiring session.
  const persistentAllowed = idKind === 'pool';
  const p: ConnectPacket = {
    type: 'connect',
    protocolVersion: v,
    protocolName: v === 3 ? 'MQIsdp' : 'MQTT',
    clean: persistentAllowed ? t.clean : v === 5 ? t.clean : true,
    keepalive: t.keepalive,
    clientId,
  };
  if (t.will !== null) {
    p.will = { topic: t.will.topic, payload: t.will.payload, qos: t.will.qos, retain: t.will.retain };
    if (v === 5 && t.will.properties !== null) p.will.properties = t.will.properties;
  }
  if (t.username !== null) p.username = t.username;
  if (t.password !== null && (v === 5 || t.username !== null)) p.password = t.password;
  if (v === 5 && t.properties !== null) {
    const props = { ...t.properties };
    if (!persistentAllowed) delete props.sessionExpiryInterval;
    if (Object.keys(props).length > 0) p.properties = props;
  }
  return p;
}

/** Chunk boundaries: the raw cuts reduced into the stream, plus single bytes for the first `dribble` bytes. */
function chunk(stream: Buffer, cuts: number[], dribble: number): Buffer[] {
  if (stream.length <= 1) return stream.length === 0 ? [] : [stream];
  const points = new Set<number>();
  for (const c of cuts) points.add(1 + (c % (stream.length - 1)));
  for (let i = 1; i <= Math.min(dribble, stream.length - 1); i++) points.add(i);
  const sorted = [...points].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of sorted) {
    out.push(stream.subarray(from, p));
    from = p;
  }
  out.push(stream.subarray(from));
  return out;
}

export function realize(spec: PlanSpec, index: number, seed: number, options: RealizeOptions): ConnectionPlan {
  const v = spec.version;
  const frames: PlannedFrame[] = [];
  let connect: ConnectPacket | undefined;
  if (spec.connectMode !== 'none') {
    connect = buildConnect(spec, index, seed);
    if (spec.connectMode === 'valid') {
      frames.push({ bytes: encodePacket(connect, v), label: 'connect', mutated: false, effect: { kind: 'benign' } });
    } else {
      const m = mutateConnect(connect, spec.connectMutation, v, options.maxPacketSize);
      frames.push({ bytes: m.bytes, label: `connect/${m.label}`, mutated: true, effect: m.effect });
    }
  }
  const aliases: number[] = [];
  for (const item of spec.items) {
    const base = item.base.packet;
    if (item.mutation === null) {
      let packet: Packet = base;
      if (packet.type === 'publish') {
        const alias = packet.properties?.topicAlias;
        if (item.base.aliasOnly === true && aliases.length > 0) {
          // 3.3.2.3.4: an empty topic name with an alias this connection has set.
          packet = { ...packet, topic: '', properties: { ...packet.properties, topicAlias: aliases[0]! } };
        } else if (alias !== undefined) {
          aliases.push(alias);
        }
      }
      frames.push({ bytes: encodePacket(packet, v), label: packet.type, mutated: false, effect: item.base.terminal ? { kind: 'terminal' } : { kind: 'benign' } });
      if (packet.type === 'publish' && packet.qos === 2 && packet.packetId! % 2 === 0) {
        // Half of the QoS 2 publishes are released in the same stream (PUBREL → PUBCOMP).
        frames.push({ bytes: encodePacket({ type: 'pubrel', packetId: packet.packetId! }, v), label: 'pubrel', mutated: false, effect: { kind: 'benign' } });
      }
    } else {
      const m = mutate(base, encodePacket(base, v), item.mutation, v, options.maxPacketSize);
      frames.push({ bytes: m.bytes, label: m.label, mutated: true, effect: m.effect });
    }
  }
  const stream = Buffer.concat(frames.map((f) => f.bytes));
  const frameEnds: number[] = [];
  let end = 0;
  for (const f of frames) frameEnds.push((end += f.bytes.length));
  const scan = scanStream(stream, options.maxPacketSize);
  const plan: ConnectionPlan = {
    index, seed, version: v, connectMode: spec.connectMode, clientId: connect?.clientId,
    frames, stream, chunks: chunk(stream, spec.cuts, spec.dribble), frameEnds, scan,
    responseVersion: announcedLevel(stream) ?? 4,
    expectation: { kind: 'none' },
  };
  plan.expectation = expectationOf(plan, spec, connect);
  return plan;
}

function expectationOf(plan: ConnectionPlan, spec: PlanSpec, connect: ConnectPacket | undefined): Expectation {
  const { stream, frames, scan } = plan;
  if (stream.length === 0) return { kind: 'silent', mustClose: false };
  if (stream[0]! >> 4 !== 1) {
    // The broker closes once the first frame is complete (a non-CONNECT first packet) or unreadable.
    const complete = scan.frames > 0 || scan.end === 'broken';
    return { kind: 'silent', mustClose: complete };
  }
  if (spec.connectMode === 'none' || connect === undefined) return { kind: 'none' };
  const first = frames[0]!.effect;
  if (first.kind === 'fatal') return { kind: 'refuse', fatal: first };
  if (first.kind !== 'benign') return { kind: 'none' };
  let firstBad = frames.length;
  for (let i = 1; i < frames.length; i++) {
    if (frames[i]!.effect.kind !== 'benign') {
      firstBad = i;
      break;
    }
  }
  const bad = frames[firstBad]?.effect;
  const then: Extract<Expectation, { kind: 'accept' }>['then'] =
    bad === undefined ? 'open' : bad.kind === 'terminal' ? 'terminal' : bad.kind === 'fatal' ? bad : 'unknown';
  const pool = spec.connect.idKind === 'pool' && connect.clientId !== '' && connect.clientId.startsWith('p');
  let qos2 = false;
  for (let i = 1; i < firstBad; i++) {
    const b = frames[i]!.bytes[0]!;
    if (b >> 4 === 3 && ((b >> 1) & 3) === 2) qos2 = true;
  }
  return {
    kind: 'accept',
    clean: connect.clean,
    then,
    firstBad,
    allowTakeover: pool,
    allowReceiveMaximumExceeded: pool && !connect.clean && plan.version === 5 && qos2,
  };
}
