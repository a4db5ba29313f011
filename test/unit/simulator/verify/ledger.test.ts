/** ShardLedger classification, serialization, and merging across shards. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mergeLedgers, ShardLedger, summarizeLedgers, type SerializedLedgers } from '../../../../simulator/verify/ledger.js';

describe('ShardLedger.received', () => {
  it('classifies first copies in order (0), first copies out of order (1) and duplicates (2)', () => {
    const l = new ShardLedger();
    expect(l.received(10, 1, 0, 1)).toBe(0);
    expect(l.received(10, 1, 1, 1)).toBe(0);
    expect(l.received(10, 1, 3, 1)).toBe(0); // a gap is not a reorder
    expect(l.received(10, 1, 2, 1)).toBe(1); // lower than the highest (3) already received
    expect(l.received(10, 1, 2, 1)).toBe(2);
    expect(l.received(10, 1, 3, 1)).toBe(2);
    expect(l.received(10, 1, 4, 1)).toBe(0);
  });

  it('tracks order and duplicates per (subscriber, stream)', () => {
    const l = new ShardLedger();
    expect(l.received(1, 7, 5, 2)).toBe(0);
    expect(l.received(2, 7, 5, 2)).toBe(0); // another subscriber: a first copy, not a duplicate
    expect(l.received(1, 8, 0, 2)).toBe(0); // another stream: not out of order
    expect(l.received(2, 7, 4, 2)).toBe(1);
    expect(l.received(1, 7, 5, 2)).toBe(2);
    const s = l.serialize();
    expect(s.receivers).toEqual([
      { subscriber: 1, stream: 7, received: [5, 5], duplicates: 1, reordered: 0 },
      { subscriber: 1, stream: 8, received: [0, 0], duplicates: 0, reordered: 0 },
      { subscriber: 2, stream: 7, received: [4, 5], duplicates: 0, reordered: 1 },
    ]);
  });
});

describe('ShardLedger.serialize and summarizeLedgers', () => {
  it('serializes ranges per stream and summarizes per QoS of the stream', () => {
    const l = new ShardLedger();
    for (let seq = 0; seq < 10; seq++) l.published(100, seq, 1);
    for (let seq = 0; seq < 10; seq++) if (seq !== 4) l.acknowledged(100, seq);
    for (let seq = 0; seq < 5; seq++) l.published(200, seq, 0);
    l.received(1, 100, 0, 1);
    l.received(1, 100, 2, 1);
    l.received(1, 100, 1, 1);
    l.received(1, 100, 1, 1);
    l.received(2, 200, 3, 0);
    const s = l.serialize();
    expect(s).toEqual({
      version: 1,
      streams: [
        { stream: 100, qos: 1, published: [0, 9], acknowledged: [0, 3, 5, 9] },
        { stream: 200, qos: 0, published: [0, 4], acknowledged: [] },
      ],
      receivers: [
        { subscriber: 1, stream: 100, received: [0, 2], duplicates: 1, reordered: 1 },
        { subscriber: 2, stream: 200, received: [3, 3], duplicates: 0, reordered: 0 },
      ],
    });
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
    expect(summarizeLedgers(s)).toEqual({
      streams: 2,
      published: [5, 10, 0],
      acknowledged: [0, 9, 0],
      received: [1, 3, 0],
      duplicates: [0, 1, 0],
      reordered: [0, 1, 0],
    });
  });

  it('knows the QoS of a stream that is only received in this shard', () => {
    const l = new ShardLedger();
    l.received(3, 42, 0, 2);
    expect(l.serialize().streams).toEqual([{ stream: 42, qos: 2, published: [], acknowledged: [] }]);
    expect(summarizeLedgers(l.serialize()).received).toEqual([0, 0, 1]);
  });
});

/** One recorded event: publish (and maybe ack) by the stream's owner, or a delivery to a subscriber. */
type Event =
  | { kind: 'pub'; stream: number; seq: number; acked: boolean }
  | { kind: 'recv'; subscriber: number; stream: number; seq: number };

const DEVICES = 12;
const qosOf = (stream: number): 0 | 1 | 2 => (stream % 3) as 0 | 1 | 2;
/** Stream s is published by device s % DEVICES. */
const ownerOf = (stream: number): number => stream % DEVICES;

const arbEvent: fc.Arbitrary<Event> = fc.oneof(
  fc.record({ kind: fc.constant('pub' as const), stream: fc.nat({ max: 30 }), seq: fc.nat({ max: 60 }), acked: fc.boolean() }),
  fc.record({ kind: fc.constant('recv' as const), subscriber: fc.nat({ max: DEVICES - 1 }), stream: fc.nat({ max: 30 }), seq: fc.nat({ max: 60 }) }),
);

function record(l: ShardLedger, e: Event): void {
  if (e.kind === 'pub') {
    l.published(e.stream, e.seq, qosOf(e.stream));
    if (e.acked && qosOf(e.stream) > 0) l.acknowledged(e.stream, e.seq);
  } else {
    l.received(e.subscriber, e.stream, e.seq, qosOf(e.stream));
  }
}

/** Records the events into `parts` shards, each device living in shard device % parts. */
function split(events: readonly Event[], parts: number): SerializedLedgers[] {
  const ledgers = Array.from({ length: parts }, () => new ShardLedger());
  for (const e of events) {
    const device = e.kind === 'pub' ? ownerOf(e.stream) : e.subscriber;
    record(ledgers[device % parts]!, e);
  }
  return ledgers.map((l) => l.serialize());
}

describe('mergeLedgers', () => {
  it('merging a ledger split across 2 and 4 shards gives the unsplit ledger', () => {
    fc.assert(
      fc.property(fc.array(arbEvent, { maxLength: 400 }), (events) => {
        const whole = new ShardLedger();
        for (const e of events) record(whole, e);
        const expected = whole.serialize();
        for (const parts of [2, 4]) {
          const merged = mergeLedgers(split(events, parts));
          expect(merged).toEqual(expected);
          expect(summarizeLedgers(merged)).toEqual(summarizeLedgers(expected));
        }
        // Merging is associative and order-insensitive.
        const four = split(events, 4);
        expect(mergeLedgers([mergeLedgers(four.slice(0, 2)), mergeLedgers(four.slice(2))])).toEqual(expected);
        expect(mergeLedgers([...four].reverse())).toEqual(expected);
      }),
    );
  });

  it('a stream published in one shard and received in another merges under the publisher QoS', () => {
    const publisher = new ShardLedger();
    for (let seq = 0; seq < 4; seq++) {
      publisher.published(9, seq, 2);
      publisher.acknowledged(9, seq);
    }
    const subscriber = new ShardLedger();
    subscriber.received(5, 9, 0, 0); // a stamp read wrongly, say: the publisher's word wins
    subscriber.received(5, 9, 1, 0);
    subscriber.received(5, 9, 3, 0);
    const merged = mergeLedgers([subscriber.serialize(), publisher.serialize()]);
    expect(merged.streams).toEqual([{ stream: 9, qos: 2, published: [0, 3], acknowledged: [0, 3] }]);
    expect(summarizeLedgers(merged)).toEqual({
      streams: 1, published: [0, 0, 4], acknowledged: [0, 0, 4], received: [0, 0, 3], duplicates: [0, 0, 0], reordered: [0, 0, 0],
    });
  });

  it('sums duplicates and reordered, and counts copies held by two parts for the same subscriber as duplicates', () => {
    const a: SerializedLedgers = { version: 1, streams: [], receivers: [{ subscriber: 1, stream: 2, received: [0, 9], duplicates: 2, reordered: 1 }] };
    const b: SerializedLedgers = { version: 1, streams: [], receivers: [{ subscriber: 1, stream: 2, received: [5, 14], duplicates: 1, reordered: 3 }] };
    expect(mergeLedgers([a, b]).receivers).toEqual([{ subscriber: 1, stream: 2, received: [0, 14], duplicates: 2 + 1 + 5, reordered: 4 }]);
  });

  it('rejects an unknown ledger version', () => {
    expect(() => mergeLedgers([{ version: 2 } as unknown as SerializedLedgers])).toThrow(/version 2/);
  });
});
