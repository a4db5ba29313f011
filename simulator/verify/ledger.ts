/**
 * Delivery ledgers: per stream, what its publisher sent and what the broker acknowledged; per
 * (subscriber, stream), what arrived. Sequences live in RangeSets, so an in-order stream costs a few
 * numbers however long it runs. A shard records into a ShardLedger and returns serialize(); the
 * orchestrator (or `mqtt-sim merge`, across machines) combines them with mergeLedgers.
 */
import type { LedgerSummary } from '../report/run-result.js';
import { mergeCheckerRecords, type CheckerRecords } from './checker-records.js';
import { RangeSet } from './range-set.js';

export type Qos = 0 | 1 | 2;

/** The wire form of a ledger: JSON-safe, order-canonical (sorted by stream, then subscriber). */
export interface SerializedLedgers {
  version: 1;
  /** Range arrays are flat [start, end, start, end, ...], inclusive. */
  streams: Array<{ stream: number; qos: Qos; published: number[]; acknowledged: number[] }>;
  receivers: Array<{ subscriber: number; stream: number; received: number[]; duplicates: number; reordered: number }>;
  /** Publish-time index and subscriber session events for the delivery checker (absent in older ledgers). */
  checker?: CheckerRecords;
}

/** received() answers. */
export const RECEIVED_IN_ORDER = 0;
export const RECEIVED_OUT_OF_ORDER = 1;
export const RECEIVED_DUPLICATE = 2;
export type ReceiveClass = typeof RECEIVED_IN_ORDER | typeof RECEIVED_OUT_OF_ORDER | typeof RECEIVED_DUPLICATE;

interface StreamEntry {
  qos: Qos;
  /** True once published() was called here: its QoS is the publisher's, not a subscriber's guess. */
  fromPublisher: boolean;
  published: RangeSet;
  acknowledged: RangeSet;
}

interface ReceiverEntry {
  received: RangeSet;
  duplicates: number;
  reordered: number;
}

export class ShardLedger {
  private readonly streams = new Map<number, StreamEntry>();
  /** stream → subscriber → entry. */
  private readonly receivers = new Map<number, Map<number, ReceiverEntry>>();
  // One-entry caches: a device publishes runs of messages on the same stream, a subscriber
  // often receives runs from the same stream.
  private lastStreamId = -1;
  private lastStream: StreamEntry | undefined;
  private lastRecvStreamId = -1;
  private lastRecvMap: Map<number, ReceiverEntry> | undefined;

  private stream(stream: number, qos: Qos, fromPublisher: boolean): StreamEntry {
    if (stream === this.lastStreamId && this.lastStream !== undefined) {
      const e = this.lastStream;
      if (fromPublisher && !e.fromPublisher) {
        e.qos = qos;
        e.fromPublisher = true;
      }
      return e;
    }
    let e = this.streams.get(stream);
    if (e === undefined) {
      e = { qos, fromPublisher, published: new RangeSet(), acknowledged: new RangeSet() };
      this.streams.set(stream, e);
    } else if (fromPublisher && !e.fromPublisher) {
      e.qos = qos;
      e.fromPublisher = true;
    }
    this.lastStreamId = stream;
    this.lastStream = e;
    return e;
  }

  /** The publisher sent (stream, seq) at `qos`. */
  published(stream: number, seq: number, qos: Qos): void {
    this.stream(stream, qos, true).published.add(seq);
  }

  /**
   * The broker acknowledged (stream, seq) with a success code (PUBACK for QoS 1, PUBCOMP for QoS 2).
   * A stream never published here is recorded at QoS 1 until a published() call says otherwise.
   */
  acknowledged(stream: number, seq: number): void {
    this.stream(stream, 1, false).acknowledged.add(seq);
  }

  /**
   * Subscriber `subscriber` (global device number) received (stream, seq); `qos` is the publisher's QoS
   * from the stamp. Returns 0 for a first copy in order, 1 for a first copy out of order (lower than the
   * highest sequence this subscriber already had from the stream), 2 for a duplicate.
   */
  received(subscriber: number, stream: number, seq: number, qos: Qos): ReceiveClass {
    let bySub: Map<number, ReceiverEntry> | undefined;
    if (stream === this.lastRecvStreamId && this.lastRecvMap !== undefined) {
      bySub = this.lastRecvMap;
    } else {
      bySub = this.receivers.get(stream);
      if (bySub === undefined) {
        bySub = new Map();
        this.receivers.set(stream, bySub);
        // Remember the stream's QoS even when its publisher runs elsewhere, so summaries can classify it.
        if (!this.streams.has(stream)) this.stream(stream, qos, false);
      }
      this.lastRecvStreamId = stream;
      this.lastRecvMap = bySub;
    }
    let entry = bySub.get(subscriber);
    if (entry === undefined) {
      entry = { received: new RangeSet(), duplicates: 0, reordered: 0 };
      bySub.set(subscriber, entry);
    }
    const set = entry.received;
    const highest = set.max;
    if (!set.add(seq)) {
      entry.duplicates++;
      return RECEIVED_DUPLICATE;
    }
    if (seq < highest) {
      entry.reordered++;
      return RECEIVED_OUT_OF_ORDER;
    }
    return RECEIVED_IN_ORDER;
  }

  /** Number of streams known to this ledger (published, acknowledged or received here). */
  get streamCount(): number {
    return this.streams.size;
  }

  serialize(): SerializedLedgers {
    const streams: SerializedLedgers['streams'] = [];
    for (const id of [...this.streams.keys()].sort(byNumber)) {
      const e = this.streams.get(id)!;
      streams.push({ stream: id, qos: e.qos, published: e.published.toJSON(), acknowledged: e.acknowledged.toJSON() });
    }
    const receivers: SerializedLedgers['receivers'] = [];
    for (const [stream, bySub] of this.receivers) {
      for (const [subscriber, e] of bySub) {
        receivers.push({ subscriber, stream, received: e.received.toJSON(), duplicates: e.duplicates, reordered: e.reordered });
      }
    }
    receivers.sort(byReceiver);
    return { version: 1, streams, receivers };
  }
}

function byNumber(a: number, b: number): number {
  return a - b;
}

function byReceiver(a: { subscriber: number; stream: number }, b: { subscriber: number; stream: number }): number {
  return a.subscriber - b.subscriber || a.stream - b.stream;
}

export function emptyLedgers(): SerializedLedgers {
  return { version: 1, streams: [], receivers: [] };
}

/**
 * Combines ledgers of several shards (or machines). Ranges of the same stream, and of the same
 * (subscriber, stream), are united; duplicates and reordered are summed. When two parts both hold a
 * sequence for the same (subscriber, stream) — the subscriber moved between parts — the overlap is
 * counted as duplicates too, so the result is the same however the deliveries were split. A stream's
 * QoS comes from a part that published it when there is one.
 */
export function mergeLedgers(parts: readonly SerializedLedgers[]): SerializedLedgers {
  const streams = new Map<number, { qos: Qos; fromPublisher: boolean; published: RangeSet; acknowledged: RangeSet }>();
  const receivers = new Map<string, { subscriber: number; stream: number; received: RangeSet; duplicates: number; reordered: number }>();
  for (const part of parts) {
    if (part.version !== 1) throw new Error(`mergeLedgers: unsupported ledger version ${String(part.version)}`);
    for (const s of part.streams) {
      const published = RangeSet.fromJSON(s.published);
      const acknowledged = RangeSet.fromJSON(s.acknowledged);
      const fromPublisher = published.size > 0;
      const e = streams.get(s.stream);
      if (e === undefined) {
        streams.set(s.stream, { qos: s.qos, fromPublisher, published, acknowledged });
        continue;
      }
      if (fromPublisher && !e.fromPublisher) {
        e.qos = s.qos;
        e.fromPublisher = true;
      }
      e.published.unionInPlace(published);
      e.acknowledged.unionInPlace(acknowledged);
    }
    for (const r of part.receivers) {
      const key = `${r.subscriber}:${r.stream}`;
      const received = RangeSet.fromJSON(r.received);
      const e = receivers.get(key);
      if (e === undefined) {
        receivers.set(key, { subscriber: r.subscriber, stream: r.stream, received, duplicates: r.duplicates, reordered: r.reordered });
        continue;
      }
      const overlap = e.received.intersectionSize(received);
      e.received.unionInPlace(received);
      e.duplicates += r.duplicates + overlap;
      e.reordered += r.reordered;
    }
  }
  const out = emptyLedgers();
  for (const id of [...streams.keys()].sort(byNumber)) {
    const e = streams.get(id)!;
    out.streams.push({ stream: id, qos: e.qos, published: e.published.toJSON(), acknowledged: e.acknowledged.toJSON() });
  }
  for (const e of receivers.values()) {
    out.receivers.push({ subscriber: e.subscriber, stream: e.stream, received: e.received.toJSON(), duplicates: e.duplicates, reordered: e.reordered });
  }
  out.receivers.sort(byReceiver);
  const checker = mergeCheckerRecords(parts.map((p) => p.checker));
  if (checker !== undefined) out.checker = checker;
  return out;
}

/** Number of integers in a flat [start, end, ...] range array. */
function flatSize(flat: readonly number[]): number {
  let n = 0;
  for (let i = 0; i < flat.length; i += 2) n += flat[i + 1]! - flat[i]! + 1;
  return n;
}

/**
 * Totals per QoS of the stream (the publisher's QoS): published and acknowledged sequences, distinct
 * (subscriber, stream, seq) receptions, duplicates and reordered deliveries. Receivers of a stream the
 * ledger does not know are counted at QoS 0. Expects a merged (or single-shard) ledger; for several
 * parts, call mergeLedgers first.
 */
export function summarizeLedgers(l: SerializedLedgers): LedgerSummary {
  const qosOf = new Map<number, Qos>();
  const summary: LedgerSummary = {
    streams: l.streams.length,
    published: [0, 0, 0],
    acknowledged: [0, 0, 0],
    received: [0, 0, 0],
    duplicates: [0, 0, 0],
    reordered: [0, 0, 0],
  };
  for (const s of l.streams) {
    qosOf.set(s.stream, s.qos);
    summary.published[s.qos] += flatSize(s.published);
    summary.acknowledged[s.qos] += flatSize(s.acknowledged);
  }
  for (const r of l.receivers) {
    const q = qosOf.get(r.stream) ?? 0;
    summary.received[q] += flatSize(r.received);
    summary.duplicates[q] += r.duplicates;
    summary.reordered[q] += r.reordered;
  }
  return summary;
}
