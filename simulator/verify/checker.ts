/**
 * The delivery-guarantee checker: classifies every message, per recipient, and judges it against the
 * MQTT contract. A pure function of the merged ledgers and the catalogs; it runs once, on the main
 * thread, after the run has drained (the orchestrator waits for acknowledgements and for deliveries to
 * go quiet before it finishes the shards).
 *
 * Recipients. A subscriber device with non-shared subscriptions is one recipient; every shared
 * subscription (`$share/group/filter`) is one recipient whose members are the devices subscribed to it,
 * judged as a whole: the union of what its members received counts as delivered, and a message that
 * reached more than one member is a duplicate.
 *
 * Which messages a recipient is owed. A QoS 0 message counts once its publisher handed it to a
 * connection; a QoS 1/2 message once the broker acknowledged it (PUBACK / PUBCOMP). The recipient is
 * owed a message when its subscription was in force at the broker for the message's whole time bracket
 * widened by `marginMs` on both sides. The bracket of a sequence runs from its scheduled send time
 * (bounded below from the sparse time index, interpolated with the stream's minimum interval) to the
 * latest moment the broker can have routed it (the acknowledgement, or the socket write for QoS 0, of
 * the next checkpoint). "In force" comes from the session events: from SUBACK (or from a CONNACK with
 * session present once the session had subscribed) until the connection was lost (or, when the link went
 * quiet before the loss was noticed, until the last bytes from the broker arrived); a lost connection is
 * bridged when the next CONNACK says the session was still there (a persistent session keeps its
 * subscriptions and queues for it), and also when the broker *owed* the session: the device never asks
 * for a clean start, its session expiry (widened by the margin) had not passed, and the CONNACK says
 * session present = 0 all the same — the broker forgot it (a `session-lost` violation), and what it
 * acknowledged meanwhile was owed to the subscriber, so a missing message is lost, not indeterminate.
 * The gap stands otherwise (a clean session, an expired one). After the run's graceful end a
 * subscription still in force counts as in force forever. A group's subscription is in force while
 * any member's is.
 *
 * Classes, per message and recipient, counted at the effective QoS min(published QoS, granted QoS):
 * - delivered: received (first copies; a message received but never acknowledged still counts).
 * - lost: owed (acknowledged or, at QoS 0, published; subscription in force over the whole bracket)
 *   and never received.
 * - indeterminate: not received, and either the bracket overlaps a boundary of the subscription's
 *   presence, or the message was a QoS 1/2 publish the broker never acknowledged while the recipient
 *   was (at least partly) subscribed. Messages wholly outside the subscription's presence are not owed
 *   and not counted at all.
 * - duplicated: extra copies from the receivers' duplicate counts (plus, for a shared subscription,
 *   copies that reached a second member).
 * - reordered: first copies that arrived after a higher sequence of the same stream (per publisher and
 *   topic; a stream has one topic, except command streams whose topic names the receiving PLC, whose
 *   subscribers each see one topic of it).
 * - expired: MQTT 5 message expiry; scenarios do not set it yet, so it is always 0.
 *
 * Violations: lost at QoS 1 and 2; duplicated at QoS 0 and 2 (QoS 1 duplicates are allowed and only
 * counted); reordered for non-shared subscriptions (shared subscriptions promise no order: a departing
 * member's messages are redelivered to another one); session-lost (above), once per reconnect that
 * found the owed session gone; retained (below).
 *
 * Retained messages. Each SUBACK of a non-shared subscription that matches the topic of a retained
 * stream (QoS 1/2, so the broker's acknowledgement says it holds the value) is judged per topic
 * against the last value acknowledged before the subscription: the latest acknowledged sequence whose
 * acknowledgement came more than `marginMs` before the CONNACK that preceded the SUBSCRIBE. The replays
 * that followed the SUBACK (RETAIN flag set) must include one that is not older than that value
 * (same stream: a sequence at least as high; another stream of the topic: not wholly before it); no
 * replay at all while such a value exists is `retained` too — judged only when the connection stayed
 * up for `marginMs` after the SUBACK (replays follow it) and the replays were not truncated. Topics a
 * retained will may be published on are not judged (a will replaces the value with a foreign one).
 * One violation per SUBACK and topic, at the effective QoS.
 *
 * Cost: everything is done on range sets (published, acknowledged, received, and the owed / boundary
 * sets derived from the time index), so an in-order stream costs a few numbers whatever its length;
 * per-sequence work only happens for command streams (one topic per target) and for the first few
 * violating examples.
 */
import type { QoS } from '../../protocol/packets.js';
import { topicMatches } from '../../protocol/topic.js';
import type { CheckerRecords, SessionEvent } from './checker-records.js';
import { topicOf, type Catalogs, type StreamInfo, type SubscriberInfo } from './catalog.js';
import type { SerializedLedgers } from './ledger.js';
import { RangeSet } from './range-set.js';

export const deliveryClasses = ['delivered', 'lost', 'duplicated', 'reordered', 'expired', 'indeterminate'] as const;
export type DeliveryClass = (typeof deliveryClasses)[number];
export type ClassCounts = Record<DeliveryClass, number>;
export type ByQos<T> = [T, T, T];

export const violationKinds = ['lost', 'duplicated', 'reordered', 'retained', 'session-lost'] as const;
export type ViolationKind = (typeof violationKinds)[number];

export interface ViolationExample {
  kind: ViolationKind;
  stream: number;
  /** The sequence, when the ledger knows which one (lost; a duplicate across group members); null for a count. */
  seq: number | null;
  publisherClientId: string;
  /** The subscriber (non-shared) or the shared subscription (`$share/group/filter`). */
  subscriberClientId?: string;
  group?: string;
  topic: string;
  /** Effective QoS (min of published and granted). */
  qos: QoS;
  publishedQos: QoS;
  /** Epoch ms: [earliest the broker can have seen it, latest it can have routed it]; hi null when unbounded. */
  publishedAtBracket: [number, number | null] | null;
  detail: string;
}

/** Persistent subscribers' reconnects, as the checker judged them. */
export interface SessionJudgement {
  /** Reconnects of subscribers whose session the broker owed (no clean start, expiry not passed). */
  owedReconnects: number;
  /** Of those, CONNACKs with session present. */
  resumed: number;
  /** Of those, CONNACKs with session present = 0: `session-lost` violations. */
  forgotten: number;
}

/** Retained replays, as the checker judged them. */
export interface RetainedJudgement {
  /** SUBACKs whose subscriptions match at least one retained topic. */
  subscribes: number;
  /** Retained replays recorded (stream, seq). */
  replays: number;
  /** (SUBACK, topic) pairs with a value acknowledged before the subscription, i.e. judged. */
  judged: number;
  /** No replay for a topic with an acknowledged retained value. */
  missing: number;
  /** Only replays older than the last value acknowledged before the subscription. */
  stale: number;
  /** (SUBACK, topic) pairs with a value but not judged for a missing replay (connection lost right after the SUBACK, replays truncated). */
  unjudged: number;
}

/** Why messages were indeterminate, per effective QoS; the two add up to `indeterminate`. */
export interface IndeterminateCauses {
  /** QoS 1/2 publishes the broker never acknowledged (still with their publisher at the end, or sent as its link failed). */
  unacknowledged: number;
  /** Acknowledged (or, at QoS 0, published) messages whose send window crosses a moment the subscriber subscribed, lost its link, or the run ended. */
  boundary: number;
}

export interface CheckerResult {
  /** Presence boundaries are widened by this much on both sides of a message's bracket. */
  marginMs: number;
  /** Wall time the check took. */
  checkMs: number;
  /** Per effective QoS. */
  byQos: ByQos<ClassCounts>;
  /** Per effective QoS: what the `indeterminate` counts are made of. Absent in older run.json files. */
  indeterminateCauses?: ByQos<IndeterminateCauses>;
  /** Per subscriber fleet (a shared subscription counts under its members' fleet); byKind is absent in older run.json files. */
  subscribers: Record<string, { byQos: ByQos<ClassCounts>; violations: number; byKind?: Record<ViolationKind, number> }>;
  violations: { total: number; byKind: Record<ViolationKind, number>; byQos: ByQos<number> };
  /** Absent in older run.json files. */
  sessions?: SessionJudgement;
  /** Absent in older run.json files. */
  retained?: RetainedJudgement;
  /** The first violations found (at most maxExamples, plus the first of each kind found after that), enough to debug one. */
  examples: ViolationExample[];
  /** pass: no violation; fail: at least one; unchecked: the ledgers carry no session records (losses cannot be told from absences). */
  verdict: 'pass' | 'fail' | 'unchecked';
  notes: string[];
}

export interface CheckerOptions {
  /** Default 1000 ms. */
  marginMs?: number;
  /** Default 20. */
  maxExamples?: number;
  /** Clock for checkMs (tests inject one). */
  now?: () => number;
}

export function emptyClassCounts(): ClassCounts {
  return { delivered: 0, lost: 0, duplicated: 0, reordered: 0, expired: 0, indeterminate: 0 };
}

const emptyByQos = (): ByQos<ClassCounts> => [emptyClassCounts(), emptyClassCounts(), emptyClassCounts()];

function emptyByKind(): Record<ViolationKind, number> {
  return { lost: 0, duplicated: 0, reordered: 0, retained: 0, 'session-lost': 0 };
}

const emptyCauses = (): IndeterminateCauses => ({ unacknowledged: 0, boundary: 0 });

/** A result with nothing checked (e.g. an aborted run with no ledgers). */
export function emptyCheckerResult(marginMs = 1000, note?: string): CheckerResult {
  return {
    marginMs,
    checkMs: 0,
    byQos: emptyByQos(),
    indeterminateCauses: [emptyCauses(), emptyCauses(), emptyCauses()],
    subscribers: {},
    violations: { total: 0, byKind: emptyByKind(), byQos: [0, 0, 0] },
    sessions: { owedReconnects: 0, resumed: 0, forgotten: 0 },
    retained: { subscribes: 0, replays: 0, judged: 0, missing: 0, stale: 0, unjudged: 0 },
    examples: [],
    verdict: 'unchecked',
    notes: note === undefined ? [] : [note],
  };
}

// ---------------------------------------------------------------- presence

/** Sorted, disjoint [start, end] intervals (end may be Infinity) during which a subscription was in force. */
type Intervals = number[];

/** Per device: presence intervals, and the latest complete SUBACK's codes (request order) if any. */
interface Presence {
  intervals: Intervals;
  granted: number[] | null;
  /** Reconnects after a loss while the broker owed the session. */
  owedReconnects: number;
  resumed: number;
  /** Owed reconnects whose CONNACK said session present = 0: [connection lost at, reconnected at]. */
  forgotten: Array<[number, number]>;
}

/**
 * `owedMs`: how long the broker must keep the device's session after a loss (0: never); a reconnect
 * within owedMs - marginMs of the loss is owed the session.
 */
function presenceOf(events: readonly SessionEvent[], subscriptionCount: number, owedMs = 0, marginMs = 0): Presence {
  const out: number[] = [];
  let open: number | null = null;
  /** A lost connection whose fate (bridged or not) the next CONNACK decides. */
  let pendingLost: number | null = null;
  let sessionSubscribed = false;
  let ended = false;
  let granted: number[] | null = null;
  /** Earliest moment the last connection can have ended at the broker; null while connected. */
  let lostAt: number | null = null;
  /** A CONNACK accepted the device: from then on the broker holds a session for it. */
  let established = false;
  let owedReconnects = 0;
  let resumed = 0;
  const forgotten: Array<[number, number]> = [];
  const close = (at: number): void => {
    if (open !== null) out.push(open, Math.max(open, at));
    open = null;
  };
  for (const e of events) {
    if (ended) break;
    switch (e.kind) {
      case 'connected': {
        const owed = established && lostAt !== null && owedMs > 0 && e.atMs - lostAt + marginMs < owedMs;
        if (owed) {
          owedReconnects++;
          if (e.sessionPresent === true) resumed++;
          else forgotten.push([lostAt!, e.atMs]);
        }
        if (pendingLost !== null) {
          // Bridged: the session kept its subscriptions, or should have (the broker owed it).
          if (sessionSubscribed && (e.sessionPresent === true || owed)) pendingLost = null;
          else {
            close(pendingLost);
            pendingLost = null;
          }
        }
        if (e.sessionPresent !== true && !(owed && sessionSubscribed)) sessionSubscribed = false;
        else if (sessionSubscribed && open === null) open = e.atMs;
        established = true;
        lostAt = null;
        break;
      }
      case 'subscribed':
        if (e.granted !== undefined && e.granted.length === subscriptionCount) granted = e.granted;
        if (e.granted === undefined || e.granted.some((g) => g < 0x80)) {
          sessionSubscribed = true;
          if (open === null) open = e.atMs;
        }
        break;
      case 'lost':
        // A dead link may have ended the subscription at the broker as soon as the broker went quiet.
        lostAt = Math.min(e.atMs, e.quietSinceMs ?? e.atMs);
        if (open !== null && pendingLost === null) pendingLost = lostAt;
        break;
      case 'end':
        // In force up to the end; a message whose bracket (± margin) reaches past it may still have been
        // on its way when the run finished: across the boundary, so indeterminate if missing.
        if (open !== null && pendingLost === null) {
          out.push(open, Math.max(open, e.atMs));
          open = null;
        }
        ended = true;
        break;
    }
  }
  if (pendingLost !== null) close(pendingLost);
  else if (open !== null) close(events.length > 0 ? events[events.length - 1]!.atMs : open);
  return { intervals: out, granted, owedReconnects, resumed, forgotten };
}

function unionIntervals(list: readonly Intervals[]): Intervals {
  const pairs: Array<[number, number]> = [];
  for (const iv of list) for (let i = 0; i < iv.length; i += 2) pairs.push([iv[i]!, iv[i + 1]!]);
  pairs.sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  for (const [s, e] of pairs) {
    const n = out.length;
    if (n > 0 && s <= out[n - 1]!) out[n - 1] = Math.max(out[n - 1]!, e);
    else out.push(s, e);
  }
  return out;
}

const IN = 0;
const OUT = 1;
const WINDOW = 2;

/** Where [a, b] lies relative to the intervals: wholly inside one, overlapping none, or across a boundary. */
function place(iv: Intervals, a: number, b: number): typeof IN | typeof OUT | typeof WINDOW {
  let overlaps = false;
  for (let i = 0; i < iv.length; i += 2) {
    const s = iv[i]!;
    const e = iv[i + 1]!;
    if (s > b) break;
    if (e < a) continue;
    if (s <= a && b <= e) return IN;
    overlaps = true;
  }
  return overlaps ? WINDOW : OUT;
}

// ---------------------------------------------------------------- time brackets

/** A stream's checkpoints with unknown `hi` filled from the right (one connection routes a stream in order). */
interface TimeIndex {
  seqs: number[];
  lo: number[];
  hi: number[];
  /** Lower bound on how much the schedule grows per sequence. */
  step: number;
}

function timeIndexOf(points: readonly number[] | undefined, info: StreamInfo | undefined): TimeIndex | null {
  if (points === undefined || points.length < 3) return null;
  const n = Math.floor(points.length / 3);
  const seqs = new Array<number>(n);
  const lo = new Array<number>(n);
  const hi = new Array<number>(n);
  for (let k = 0; k < n; k++) {
    seqs[k] = points[3 * k]!;
    lo[k] = points[3 * k + 1]!;
    hi[k] = points[3 * k + 2]!;
  }
  let next = Infinity;
  for (let k = n - 1; k >= 0; k--) {
    if (hi[k]! >= 0) next = Math.min(next, hi[k]!);
    hi[k] = next;
  }
  // Float sums of jittered intervals: keep a millisecond of slack per step so the bound stays a bound.
  const step = info !== undefined && info.intervalMs > 0 ? Math.max(0, info.intervalMs * (1 - info.jitter) - 0.001) : 0;
  return { seqs, lo, hi, step };
}

/** [lo, hi] of one sequence, or null when the index does not cover it. */
function bracketOf(t: TimeIndex, seq: number): [number, number] | null {
  const { seqs } = t;
  if (seqs.length === 0 || seq < seqs[0]! || seq > seqs[seqs.length - 1]!) return null;
  let loK = 0;
  let hiK = seqs.length - 1;
  while (loK < hiK) {
    const mid = (loK + hiK + 1) >> 1;
    if (seqs[mid]! <= seq) loK = mid;
    else hiK = mid - 1;
  }
  if (seqs[loK] === seq) return [t.lo[loK]!, t.hi[loK]!];
  return [Math.floor(t.lo[loK]! + (seq - seqs[loK]!) * t.step), t.hi[loK + 1]!];
}

/**
 * The sequences owed to a recipient (bracket ± margin wholly inside its presence) and those across a
 * presence boundary, within [from, to]. Sequences outside the index count as across a boundary.
 */
function expectation(t: TimeIndex | null, iv: Intervals, marginMs: number, from: number, to: number): { owed: RangeSet; window: RangeSet } {
  const owed = new RangeSet();
  const window = new RangeSet();
  if (t === null) {
    window.addRange(from, to);
    return { owed, window };
  }
  const add = (cls: number, a: number, b: number): void => {
    if (b < a) return;
    if (cls === IN) owed.addRange(a, b);
    else if (cls === WINDOW) window.addRange(a, b);
  };
  const { seqs } = t;
  if (from < seqs[0]!) window.addRange(from, Math.min(to, seqs[0]! - 1));
  for (let k = 0; k < seqs.length; k++) {
    const c = seqs[k]!;
    if (c > to) break;
    if (c >= from) add(place(iv, t.lo[k]! - marginMs, t.hi[k]! + marginMs), c, c);
    if (k + 1 >= seqs.length) break;
    // Open segment (c, next): hi is the next checkpoint's; lo grows by `step` per sequence.
    const a = Math.max(c + 1, from);
    const b = Math.min(seqs[k + 1]! - 1, to);
    if (a > b) continue;
    const hi = t.hi[k + 1]! + marginMs;
    const loAt = (seq: number): number => t.lo[k]! + (seq - c) * t.step - marginMs;
    // Split where lo(seq) - margin crosses a presence boundary: the class is constant in between.
    const cuts: number[] = [];
    if (t.step > 0) {
      for (const x of iv) {
        if (!Number.isFinite(x)) continue;
        const seq = c + Math.ceil((x + marginMs - t.lo[k]!) / t.step);
        if (seq > a && seq <= b) cuts.push(seq);
        if (seq + 1 > a && seq + 1 <= b) cuts.push(seq + 1);
      }
      cuts.sort((p, q) => p - q);
    }
    let start = a;
    for (const cut of cuts) {
      if (cut <= start) continue;
      add(place(iv, loAt(start), hi), start, cut - 1);
      start = cut;
    }
    // lo grows inside a piece, so classify a piece by its worst case: the lowest lo (its first seq) for
    // "inside", and require both ends to agree for "outside" — a piece is never wider than between cuts.
    const first = place(iv, loAt(start), hi);
    const last = place(iv, loAt(b), hi);
    add(first === last ? first : WINDOW, start, b);
  }
  if (to > seqs[seqs.length - 1]!) window.addRange(Math.max(from, seqs[seqs.length - 1]! + 1), to);
  return { owed, window };
}

// ---------------------------------------------------------------- recipients

interface Member {
  device: number;
  fleet: string;
  clientId: string;
}

interface Recipient {
  /** Subscriber client id, or `$share/group/filter`. */
  name: string;
  shared: boolean;
  fleet: string;
  members: Member[];
  presence: Intervals;
}

interface FilterEntry {
  recipient: Recipient;
  qos: QoS;
}

interface ParsedReceiver {
  received: RangeSet;
  duplicates: number;
  reordered: number;
}

const minQos = (a: QoS, b: QoS): QoS => (a < b ? a : b);

/**
 * Classifies every message of the merged ledgers. `ledgers` must be merged (mergeLedgers) when it came
 * from several shards; `catalogs` from buildCatalogs on the same scenario.
 */
export function checkDeliveries(ledgers: SerializedLedgers, catalogs: Catalogs, options: CheckerOptions = {}): CheckerResult {
  const now = options.now ?? (() => performance.now());
  const started = now();
  const marginMs = options.marginMs ?? 1000;
  const maxExamples = options.maxExamples ?? 20;
  const records: CheckerRecords | undefined = ledgers.checker;
  const result = emptyCheckerResult(marginMs);
  result.verdict = 'pass';
  const notes = result.notes;
  if (records === undefined) notes.push('the ledgers carry no session records: missing messages are counted as indeterminate, never as lost');

  // Presence per subscribing device.
  const sessions = new Map<number, readonly SessionEvent[]>();
  for (const s of records?.sessions ?? []) sessions.set(s.device, s.events);
  const fleetCounts = (fleet: string): { byQos: ByQos<ClassCounts>; violations: number; byKind?: Record<ViolationKind, number> } =>
    (result.subscribers[fleet] ??= { byQos: emptyByQos(), violations: 0, byKind: emptyByKind() });
  const sessionJudgement = result.sessions!;
  /** Session losses per device, judged once the violate() helper exists. */
  const forgottenSessions: Array<{ sub: SubscriberInfo; lost: Array<[number, number]> }> = [];

  // Recipients and the filter index: exact filters in a map, wildcard filters deduplicated in a list.
  const exact = new Map<string, FilterEntry[]>();
  const wildcard = new Map<string, FilterEntry[]>();
  const groups = new Map<string, { recipient: Recipient; qos: QoS; intervals: Intervals[] }>();
  const addFilter = (filter: string, entry: FilterEntry): void => {
    const index = filter.includes('+') || filter.includes('#') ? wildcard : exact;
    let list = index.get(filter);
    if (list === undefined) index.set(filter, (list = []));
    list.push(entry);
  };
  const unknownPresence: Intervals = [];
  for (const sub of catalogs.subscribers) {
    fleetCounts(sub.fleet);
    const events = sessions.get(sub.device) ?? [];
    const presence = records === undefined ? { intervals: unknownPresence, granted: null } : presenceOf(events, sub.subscriptions.length, sub.sessionOwedMs, marginMs);
    if ('forgotten' in presence) {
      sessionJudgement.owedReconnects += presence.owedReconnects;
      sessionJudgement.resumed += presence.resumed;
      sessionJudgement.forgotten += presence.forgotten.length;
      if (presence.forgotten.length > 0) forgottenSessions.push({ sub, lost: presence.forgotten });
    }
    const member: Member = { device: sub.device, fleet: sub.fleet, clientId: sub.clientId };
    let own: Recipient | null = null;
    sub.subscriptions.forEach((s, i) => {
      const code = presence.granted?.[i];
      if (code !== undefined && code >= 0x80) return; // refused: never in force
      const qos = (code === undefined ? s.qos : Math.min(code, 2)) as QoS;
      if (s.group === null) {
        own ??= { name: sub.clientId, shared: false, fleet: sub.fleet, members: [member], presence: presence.intervals };
        addFilter(s.match, { recipient: own, qos });
        return;
      }
      const key = `$share/${s.group}/${s.match}`;
      let g = groups.get(key);
      if (g === undefined) {
        const recipient: Recipient = { name: key, shared: true, fleet: sub.fleet, members: [], presence: [] };
        g = { recipient, qos, intervals: [] };
        groups.set(key, g);
        addFilter(s.match, { recipient, qos });
      }
      g.recipient.members.push(member);
      g.intervals.push(presence.intervals);
      if (qos > g.qos) g.qos = qos;
    });
  }
  for (const g of groups.values()) g.recipient.presence = records === undefined ? unknownPresence : unionIntervals(g.intervals);
  // The group's QoS is the highest any member was granted (addFilter saw only the first member's).
  for (const list of [...exact.values(), ...wildcard.values()]) {
    for (const e of list) if (e.recipient.shared) e.qos = groups.get(e.recipient.name)!.qos;
  }

  const matchCache = new Map<string, Map<Recipient, QoS>>();
  const matchesOf = (topic: string): Map<Recipient, QoS> => {
    let m = matchCache.get(topic);
    if (m !== undefined) return m;
    m = new Map();
    const take = (list: FilterEntry[]): void => {
      for (const e of list) {
        const prev = m!.get(e.recipient);
        // Overlapping subscriptions: one delivery at the highest granted QoS.
        if (prev === undefined || e.qos > prev) m!.set(e.recipient, e.qos);
      }
    };
    const direct = exact.get(topic);
    if (direct !== undefined) take(direct);
    for (const [filter, list] of wildcard) if (topicMatches(filter, topic)) take(list);
    matchCache.set(topic, m);
    return m;
  };

  // Receivers by stream, then device.
  const receivers = new Map<number, Map<number, ParsedReceiver>>();
  for (const r of ledgers.receivers) {
    let bySub = receivers.get(r.stream);
    if (bySub === undefined) receivers.set(r.stream, (bySub = new Map()));
    bySub.set(r.subscriber, { received: RangeSet.fromJSON(r.received), duplicates: r.duplicates, reordered: r.reordered });
  }
  const times = new Map<number, number[]>();
  for (const t of records?.times ?? []) times.set(t.stream, t.points);
  const matchedPairs = new Set<string>();

  const violate = (kind: ViolationKind, qos: QoS, fleet: string, count: number, example: () => ViolationExample[]): void => {
    if (count <= 0) return;
    result.violations.total += count;
    result.violations.byKind[kind] += count;
    result.violations.byQos[qos] += count;
    const f = fleetCounts(fleet);
    f.violations += count;
    (f.byKind ??= emptyByKind())[kind] += count;
    if (result.examples.length < maxExamples) {
      for (const ex of example()) if (result.examples.length < maxExamples) result.examples.push(ex);
    } else if (!result.examples.some((e) => e.kind === kind)) {
      // Every kind gets at least one example, even when another kind filled the list.
      const first = example()[0];
      if (first !== undefined) result.examples.push(first);
    }
  };

  // Persistent sessions the broker forgot although it owed them.
  for (const { sub, lost } of forgottenSessions) {
    const qos = sub.subscriptions.reduce<QoS>((q, x) => (x.qos > q ? x.qos : q), 0);
    violate('session-lost', qos, sub.fleet, lost.length, () =>
      lost.map(([lostAt, back]) => ({
        kind: 'session-lost' as const,
        stream: -1,
        seq: null,
        publisherClientId: '',
        subscriberClientId: sub.clientId,
        topic: sub.subscriptions.map((x) => x.filter).join(' '),
        qos,
        publishedQos: qos,
        publishedAtBracket: [lostAt, back] as [number, number],
        detail: `reconnected ${Math.round(back - lostAt)} ms after losing its connection without asking for a clean start, and the CONNACK said session present = 0: the broker forgot a session it owed (expiry ${Number.isFinite(sub.sessionOwedMs) ? `${Math.round(sub.sessionOwedMs / 1000)} s` : 'none'}); what it acknowledged meanwhile counts as owed`,
      })),
    );
  }

  const count = (fleet: string, qos: QoS, cls: DeliveryClass, n: number): void => {
    if (n === 0) return;
    result.byQos[qos][cls] += n;
    fleetCounts(fleet).byQos[qos][cls] += n;
  };

  let foreignStreams = 0;
  for (const s of ledgers.streams) {
    const info = catalogs.streams.get(s.stream);
    if (info === undefined) {
      foreignStreams++;
      continue;
    }
    const published = RangeSet.fromJSON(s.published);
    const acknowledged = RangeSet.fromJSON(s.acknowledged);
    const q = s.qos;
    const bySub = receivers.get(s.stream);
    const index = timeIndexOf(times.get(s.stream), info);

    // The topics of the stream, each with the sequences it carries (null: all of them).
    const domains: Array<{ topic: string; seqs: RangeSet | null }> = [];
    if (typeof info.topic === 'string') domains.push({ topic: info.topic, seqs: null });
    else {
      let maxSeq = published.max;
      for (const r of bySub?.values() ?? []) maxSeq = Math.max(maxSeq, r.received.max);
      const n = info.topic.topics.length;
      const perTopic = new Map<string, RangeSet>();
      for (let t = 0; t < n && t <= maxSeq; t++) {
        const topic = info.topic.topics[(info.topic.start + t) % n]!;
        if (matchesOf(topic).size === 0) continue;
        const set = new RangeSet();
        for (let seq = t; seq <= maxSeq; seq += n) set.add(seq);
        const prev = perTopic.get(topic);
        perTopic.set(topic, prev === undefined ? set : prev.union(set));
      }
      for (const [topic, seqs] of perTopic) domains.push({ topic, seqs });
    }

    for (const { topic, seqs } of domains) {
      for (const [recipient, granted] of matchesOf(topic)) {
        const eq = minQos(q, granted);
        const fleet = recipient.fleet;
        // What the recipient received: one member's set, or the union of a group's members'.
        let received = new RangeSet();
        let duplicates = 0;
        let reordered = 0;
        let crossMember: RangeSet | null = null;
        for (const m of recipient.members) {
          matchedPairs.add(`${m.device}:${s.stream}`);
          const r = bySub?.get(m.device);
          if (r === undefined) continue;
          const mine = seqs === null ? r.received : r.received.intersection(seqs);
          if (recipient.shared && !received.isEmpty) {
            const both = received.intersection(mine);
            if (!both.isEmpty) crossMember = crossMember === null ? both : crossMember.union(both);
            duplicates += both.size;
          }
          received = recipient.members.length === 1 ? mine : received.union(mine);
          duplicates += r.duplicates;
          reordered += r.reordered;
        }
        const pub = seqs === null ? published : published.intersection(seqs);
        const owedCandidates = q === 0 ? pub : seqs === null ? acknowledged : acknowledged.intersection(seqs);
        const unacked = q === 0 ? new RangeSet() : pub.difference(owedCandidates);
        const missing = owedCandidates.difference(received);
        const missingUnacked = unacked.difference(received);

        count(fleet, eq, 'delivered', received.size);
        count(fleet, eq, 'duplicated', duplicates);
        count(fleet, eq, 'reordered', reordered);

        if (!missing.isEmpty || !missingUnacked.isEmpty) {
          const from = Math.min(missing.isEmpty ? Infinity : missing.min, missingUnacked.isEmpty ? Infinity : missingUnacked.min);
          const to = Math.max(missing.max, missingUnacked.max);
          const { owed, window } = records === undefined ? { owed: new RangeSet(), window: RangeSet.fromJSON([from, to]) } : expectation(index, recipient.presence, marginMs, from, to);
          const lost = missing.intersection(owed);
          const boundary = missing.intersectionSize(window);
          const unacknowledged = missingUnacked.intersectionSize(owed) + missingUnacked.intersectionSize(window);
          count(fleet, eq, 'lost', lost.size);
          count(fleet, eq, 'indeterminate', boundary + unacknowledged);
          const causes = result.indeterminateCauses![eq];
          causes.boundary += boundary;
          causes.unacknowledged += unacknowledged;
          if (eq >= 1) {
            violate('lost', eq, fleet, lost.size, () => {
              const out: ViolationExample[] = [];
              lost.forEachRange((a, b) => {
                for (let seq = a; seq <= b && out.length < maxExamples; seq++) {
                  const bracket = index === null ? null : bracketOf(index, seq);
                  out.push({
                    ...exampleBase('lost', info, recipient, topicOf(info, seq), eq, q),
                    seq,
                    publishedAtBracket: bracket === null ? null : [bracket[0], Number.isFinite(bracket[1]) ? bracket[1] : null],
                    detail: `${q === 0 ? 'published' : 'acknowledged by the broker'}, never delivered to ${recipient.shared ? 'any member of the group' : 'the subscriber'} although ${recipient.shared ? 'the group was' : 'it was'} subscribed throughout`,
                  });
                }
              });
              return out;
            });
          }
        }
        if (eq !== 1) {
          violate('duplicated', eq, fleet, duplicates, () => [
            {
              ...exampleBase('duplicated', info, recipient, topic, eq, q),
              seq: crossMember === null ? null : crossMember.min,
              publishedAtBracket: null,
              detail: `${duplicates} extra cop${duplicates === 1 ? 'y' : 'ies'} of this stream${crossMember === null ? '' : ` (${crossMember.size} reached two members of the group, the first is seq ${crossMember.min})`}; QoS ${eq} allows none`,
            },
          ]);
        }
        if (!recipient.shared) {
          violate('reordered', eq, fleet, reordered, () => [
            {
              ...exampleBase('reordered', info, recipient, topic, eq, q),
              seq: null,
              publishedAtBracket: null,
              detail: `${reordered} message(s) arrived after a later one of the same publisher and topic`,
            },
          ]);
        }
      }
    }
  }

  if (records !== undefined) judgeRetained(ledgers, catalogs, records, times, marginMs, result.retained!, violate);

  // Deliveries no catalog subscription explains (a filter the checker cannot see): counted, not judged.
  let unexplained = 0;
  const subscriberFleet = new Map<number, string>(catalogs.subscribers.map((s: SubscriberInfo) => [s.device, s.fleet]));
  const qosOf = new Map<number, QoS>(ledgers.streams.map((s) => [s.stream, s.qos]));
  for (const r of ledgers.receivers) {
    if (matchedPairs.has(`${r.subscriber}:${r.stream}`) || catalogs.streams.get(r.stream) === undefined) continue;
    const n = RangeSet.fromJSON(r.received).size;
    unexplained += n;
    count(subscriberFleet.get(r.subscriber) ?? '?', qosOf.get(r.stream) ?? 0, 'delivered', n);
  }
  if (unexplained > 0) notes.push(`${unexplained} deliveries matched no subscription of the scenario; counted as delivered, not judged`);
  if (foreignStreams > 0) notes.push(`${foreignStreams} stream(s) are not in the scenario's catalog and were skipped`);
  notes.push('expired is always 0: scenarios set no message expiry');

  if (records === undefined) result.verdict = result.violations.total > 0 ? 'fail' : 'unchecked';
  else result.verdict = result.violations.total > 0 ? 'fail' : 'pass';
  result.checkMs = Math.round((now() - started) * 10) / 10;
  return result;
}

// ---------------------------------------------------------------- retained

interface RetainedStream {
  info: StreamInfo;
  qos: QoS;
  acked: RangeSet;
  index: TimeIndex | null;
}

type Violate = (kind: ViolationKind, qos: QoS, fleet: string, count: number, example: () => ViolationExample[]) => void;

/** The highest acknowledged sequence of the stream known to have been routed by `t` (null: none). */
function ackedBefore(rs: RetainedStream, t: number): number | null {
  const index = rs.index;
  if (index === null || rs.acked.isEmpty) return null;
  // hi is non-decreasing in seq (filled from the right with the minimum of later acknowledgements).
  let lo = 0;
  let hi = index.seqs.length - 1;
  let k = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (index.hi[mid]! <= t) {
      k = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (k < 0) return null;
  const upTo = rs.acked.intersection(RangeSet.fromJSON([0, index.seqs[k]!]));
  return upTo.isEmpty ? null : upTo.max;
}

/** Whether the connection of the SUBACK at events[i] stayed up for marginMs after it (its replays had time to arrive). */
function replayWindowComplete(events: readonly SessionEvent[], i: number, marginMs: number): boolean {
  const at = events[i]!.atMs + marginMs;
  for (let j = i + 1; j < events.length; j++) {
    const e = events[j]!;
    if (e.kind === 'lost') return Math.min(e.atMs, e.quietSinceMs ?? e.atMs) >= at;
    if (e.kind === 'end') return e.atMs >= at;
  }
  return false;
}

function judgeRetained(
  ledgers: SerializedLedgers,
  catalogs: Catalogs,
  records: CheckerRecords,
  times: Map<number, number[]>,
  marginMs: number,
  out: RetainedJudgement,
  violate: Violate,
): void {
  const byStream = new Map<number, RetainedStream>();
  const byTopic = new Map<string, RetainedStream[]>();
  for (const s of ledgers.streams) {
    const info = catalogs.streams.get(s.stream);
    if (info === undefined || !info.retain || typeof info.topic !== 'string') continue;
    const rs: RetainedStream = { info, qos: s.qos, acked: RangeSet.fromJSON(s.acknowledged), index: timeIndexOf(times.get(s.stream), info) };
    byStream.set(s.stream, rs);
    if (catalogs.retainedWillTopics.has(info.topic)) continue;
    let list = byTopic.get(info.topic);
    if (list === undefined) byTopic.set(info.topic, (list = []));
    list.push(rs);
  }
  if (byTopic.size === 0) return;
  const topicsOfFilter = new Map<string, string[]>();
  const matching = (filter: string): string[] => {
    let list = topicsOfFilter.get(filter);
    if (list === undefined) {
      list = [...byTopic.keys()].filter((t) => topicMatches(filter, t));
      topicsOfFilter.set(filter, list);
    }
    return list;
  };
  const sessions = new Map<number, readonly SessionEvent[]>();
  for (const s of records.sessions) sessions.set(s.device, s.events);

  for (const sub of catalogs.subscribers) {
    const events = sessions.get(sub.device);
    if (events === undefined) continue;
    let connectedAt: number | null = null;
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      if (e.kind === 'connected') connectedAt = e.atMs;
      if (e.kind !== 'subscribed') continue;
      const granted = e.granted !== undefined && e.granted.length === sub.subscriptions.length ? e.granted : null;
      // Topic → the highest QoS a matching non-shared subscription was granted.
      const topics = new Map<string, QoS>();
      sub.subscriptions.forEach((x, k) => {
        if (x.group !== null) return; // no retained messages for shared subscriptions
        const code = granted?.[k] ?? x.qos;
        if (code >= 0x80) return;
        const q = Math.min(code, 2) as QoS;
        for (const t of matching(x.match)) if ((topics.get(t) ?? -1) < q) topics.set(t, q);
      });
      if (topics.size === 0) continue;
      out.subscribes++;
      const replays = new Map<string, Array<[RetainedStream, number]>>();
      const flat = e.retained ?? [];
      out.replays += flat.length / 2;
      for (let k = 0; k + 1 < flat.length; k += 2) {
        const rs = byStream.get(flat[k]!);
        if (rs === undefined) continue;
        const t = rs.info.topic as string;
        let list = replays.get(t);
        if (list === undefined) replays.set(t, (list = []));
        list.push([rs, flat[k + 1]!]);
      }
      // The broker handled the SUBSCRIBE after the CONNACK that preceded it reached us.
      const cutoff = (connectedAt ?? e.atMs) - marginMs;
      const windowComplete = e.retainedTruncated !== true && replayWindowComplete(events, i, marginMs);
      for (const [topic, grantedQos] of topics) {
        // The last value of each QoS 1/2 stream of the topic acknowledged before the subscription.
        const last: Array<[RetainedStream, number]> = [];
        for (const rs of byTopic.get(topic)!) {
          if (rs.qos === 0) continue;
          const m = ackedBefore(rs, cutoff);
          if (m !== null) last.push([rs, m]);
        }
        if (last.length === 0) continue;
        const got = replays.get(topic);
        const newest = last.reduce((a, b) => ((bracketOf(b[0].index!, b[1])?.[0] ?? 0) > (bracketOf(a[0].index!, a[1])?.[0] ?? 0) ? b : a));
        const [rs, m] = newest;
        const eq = minQos(rs.qos, grantedQos);
        const bracket = bracketOf(rs.index!, m);
        const base = {
          kind: 'retained' as const,
          stream: rs.info.stream,
          publisherClientId: rs.info.clientId,
          subscriberClientId: sub.clientId,
          topic,
          qos: eq,
          publishedQos: rs.qos,
        };
        if (got === undefined) {
          if (!windowComplete) {
            out.unjudged++;
            continue;
          }
          out.judged++;
          out.missing++;
          violate('retained', eq, sub.fleet, 1, () => [
            {
              ...base,
              seq: m,
              publishedAtBracket: bracket === null ? null : [bracket[0], Number.isFinite(bracket[1]) ? bracket[1] : null],
              detail: `subscribed (SUBACK at ${new Date(e.atMs).toISOString()}) and got no retained message for this topic, although seq ${m} was acknowledged with RETAIN more than ${marginMs} ms before the subscription`,
            },
          ]);
          continue;
        }
        out.judged++;
        const fresh = got.some(([r, q]) =>
          last.every(([b, mb]) => {
            if (b === r) return q >= mb;
            const later = bracketOf(b.index!, mb);
            const replayed = r.index === null ? null : bracketOf(r.index, q);
            return later === null || replayed === null || later[0] <= replayed[1] + marginMs;
          }),
        );
        if (fresh) continue;
        out.stale++;
        const [r0, q0] = got[got.length - 1]!;
        violate('retained', eq, sub.fleet, 1, () => [
          {
            ...base,
            stream: r0.info.stream,
            publisherClientId: r0.info.clientId,
            seq: q0,
            publishedAtBracket: bracket === null ? null : [bracket[0], Number.isFinite(bracket[1]) ? bracket[1] : null],
            detail: `subscribed (SUBACK at ${new Date(e.atMs).toISOString()}) and was replayed a stale retained value (seq ${q0} of ${r0.info.clientId}), although seq ${m} of ${rs.info.clientId} was acknowledged with RETAIN more than ${marginMs} ms before the subscription`,
          },
        ]);
      }
    }
  }
}

function exampleBase(kind: ViolationKind, info: StreamInfo, r: Recipient, topic: string, qos: QoS, publishedQos: QoS): Omit<ViolationExample, 'seq' | 'publishedAtBracket' | 'detail'> {
  const base: Omit<ViolationExample, 'seq' | 'publishedAtBracket' | 'detail'> = { kind, stream: info.stream, publisherClientId: info.clientId, topic, qos, publishedQos };
  if (r.shared) base.group = r.name;
  else base.subscriberClientId = r.name;
  return base;
}
