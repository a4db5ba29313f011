/** The delivery checker on synthetic ledgers: exact counts for every class, merge invariance, catalogs. */
import { describe, expect, it } from 'vitest';
import type { QoS } from '../../../../protocol/packets.js';
import { parseScenario } from '../../../../simulator/scenario/load.js';
import { buildCatalogs, topicOf } from '../../../../simulator/verify/catalog.js';
import { checkDeliveries, type CheckerResult } from '../../../../simulator/verify/checker.js';
import { CheckerRecorder, mergeCheckerRecords } from '../../../../simulator/verify/checker-records.js';
import { mergeLedgers, ShardLedger, type SerializedLedgers } from '../../../../simulator/verify/ledger.js';

// Devices: s0 = 0, s1 = 1, s2 = 2, c = 3, low = 4, hist = 5 and 6. Streams: s0 = 0, s1 = 1, s2 = 2.
const scenario = parseScenario(`
name: checker
duration: 10s
fleets:
  - { name: s0, count: 1, publish: { topic: "t/s0/{id}", qos: 0, every: 100ms } }
  - { name: s1, count: 1, publish: { topic: "t/s1/{id}", qos: 1, every: 100ms } }
  - { name: s2, count: 1, publish: { topic: "t/s2/{id}", qos: 2, every: 100ms } }
consumers:
  - { name: c, subscribe: [{ topic: "t/#", qos: 2 }] }
  - { name: low, subscribe: [{ topic: "t/s1/#", qos: 0 }] }
  - { name: hist, count: 2, subscribe: [{ topic: "$share/h/t/#", qos: 2 }] }
`);
const catalogs = buildCatalogs(scenario);
const T0 = 1_700_000_000_000;
const C = 3;
const LOW = 4;
const H1 = 5;
const H2 = 6;

/** One shard's recording: a ledger and its checker records, serialized together like the runtime does. */
class Shard {
  readonly ledger = new ShardLedger();
  readonly records = new CheckerRecorder();

  /** Publishes seqs [0, n) of a stream every 100 ms from T0; QoS 1/2 are acknowledged 5 ms later unless listed. */
  publish(stream: number, qos: QoS, n: number, unacked: ReadonlySet<number> = new Set()): this {
    for (let seq = 0; seq < n; seq++) {
      const at = T0 + seq * 100;
      this.ledger.published(stream, seq, qos);
      this.records.published(stream, seq, at, qos === 0 ? at + 1 : -1);
      if (qos > 0 && !unacked.has(seq)) {
        this.ledger.acknowledged(stream, seq);
        this.records.acknowledged(stream, seq, at + 5);
      }
    }
    return this;
  }

  /** A subscriber present from before T0 to the end of the run, granted what it asked for. */
  present(device: number, cat = catalogs): this {
    const sub = cat.subscribers.find((s) => s.device === device)!;
    this.records.connected(device, T0 - 2000, false);
    this.records.subscribed(device, T0 - 1900, sub.subscriptions.map((x) => x.qos));
    return this;
  }

  end(...devices: number[]): this {
    for (const d of devices) this.records.end(d, T0 + 60_000);
    return this;
  }

  receive(device: number, stream: number, qos: QoS, seqs: Iterable<number>): this {
    for (const seq of seqs) this.ledger.received(device, stream, seq, qos);
    return this;
  }

  serialize(): SerializedLedgers {
    const l = this.ledger.serialize();
    l.checker = this.records.serialize();
    return l;
  }
}

function range(from: number, to: number, except: readonly number[] = []): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) if (!except.includes(i)) out.push(i);
  return out;
}

/** Every check in this file also holds the breakdown to its total: the causes add up to indeterminate, per QoS. */
const check = (l: SerializedLedgers): CheckerResult => {
  const r = checkDeliveries(l, catalogs, { now: () => 0 });
  expect(r.indeterminateCauses!.map((c) => c.unacknowledged + c.boundary)).toEqual(r.byQos.map((k) => k.indeterminate));
  return r;
};

describe('buildCatalogs', () => {
  it('renders topics, QoS and subscriptions from the scenario, with the stream ids the shards use', () => {
    expect(catalogs.streams.get(1)).toMatchObject({ fleet: 's1', device: 1, clientId: 's1-0', topic: 't/s1/s1-0', qos: 1, intervalMs: 100 });
    expect(catalogs.subscribers.map((s) => [s.device, s.clientId, s.subscriptions[0]!.group, s.subscriptions[0]!.match])).toEqual([
      [3, 'c-0', null, 't/#'],
      [4, 'low-0', null, 't/s1/#'],
      [5, 'hist-0', 'h', 't/#'],
      [6, 'hist-1', 'h', 't/#'],
    ]);
  });

  it('computes the rotating topic of a command stream like the consumer model', () => {
    const s = parseScenario(`
name: cmd
duration: 10s
fleets:
  - { name: plcs, model: plc, count: 3, subscribe: [{ topic: "cmd/{id}", qos: 2 }] }
consumers:
  - { name: scada, count: 2, commands: { fleet: plcs, topic: "cmd/{target}", qos: 2, every: 100ms } }
`);
    const cat = buildCatalogs(s);
    // plcs own one stream each (no periodic publish, one reply stream), so scada-0 is stream 3, scada-1 stream 4.
    const first = cat.streams.get(3)!;
    const second = cat.streams.get(4)!;
    expect([0, 1, 2, 3].map((seq) => topicOf(first, seq))).toEqual(['cmd/plcs-0', 'cmd/plcs-1', 'cmd/plcs-2', 'cmd/plcs-0']);
    expect(topicOf(second, 0)).toBe('cmd/plcs-1'); // floor(1 × 3 / 2) = 1
  });
});

describe('checkDeliveries', () => {
  it('a healthy run: every message delivered, nothing lost or duplicated, pass', () => {
    const s = new Shard().publish(0, 0, 50).publish(1, 1, 50).publish(2, 2, 50).present(C).present(H1).present(H2).present(LOW);
    for (const stream of [0, 1, 2]) s.receive(C, stream, [0, 1, 2][stream] as QoS, range(0, 49));
    s.receive(H1, 1, 1, range(0, 49)).receive(LOW, 1, 1, range(0, 49));
    s.receive(H2, 0, 0, range(0, 49)).receive(H1, 2, 2, range(0, 24)).receive(H2, 2, 2, range(25, 49));
    const r = check(s.end(C, H1, H2, LOW).serialize());
    expect(r.verdict).toBe('pass');
    expect(r.violations.total).toBe(0);
    // c: 50 per QoS; hist group: 50 per QoS; low (QoS 0 subscription): the 50 QoS 1 messages count at QoS 0.
    expect(r.byQos.map((k) => k.delivered)).toEqual([150, 100, 100]);
    expect(r.byQos.every((k) => k.lost === 0 && k.indeterminate === 0 && k.duplicated === 0)).toBe(true);
    expect(r.subscribers['hist']!.byQos[2].delivered).toBe(50);
    expect(r.subscribers['low']!.byQos[0].delivered).toBe(50);
  });

  it('lost: acknowledged QoS 1 messages a present subscriber never received, with examples', () => {
    const s = new Shard().publish(1, 1, 100).present(C).receive(C, 1, 1, range(0, 99, [40, 41, 42, 43, 44])).end(C);
    const r = check(s.serialize());
    expect(r.subscribers['c']!.byQos[1]).toMatchObject({ delivered: 95, lost: 5, indeterminate: 0 });
    expect(r.violations).toEqual({ total: 5, byKind: { lost: 5, duplicated: 0, reordered: 0, retained: 0, 'session-lost': 0 }, byQos: [0, 5, 0] });
    expect(r.verdict).toBe('fail');
    expect(r.examples.map((e) => e.seq)).toEqual([40, 41, 42, 43, 44]);
    expect(r.examples[0]).toMatchObject({ kind: 'lost', stream: 1, publisherClientId: 's1-0', subscriberClientId: 'c-0', topic: 't/s1/s1-0', qos: 1, publishedQos: 1 });
    // Between checkpoints 32 and 64: from its interpolated schedule to the ack of seq 64.
    const [lo, hi] = r.examples[0]!.publishedAtBracket!;
    expect(lo).toBeLessThanOrEqual(T0 + 4000);
    expect(lo).toBeGreaterThan(T0 + 3900);
    expect(hi).toBe(T0 + 6405);
  });

  it('QoS 0 losses are counted but allowed; QoS 0 duplicates are violations', () => {
    const s = new Shard().publish(0, 0, 20).present(C).receive(C, 0, 0, [...range(0, 19, [3, 4, 5]), 7]).end(C);
    const r = check(s.serialize());
    expect(r.byQos[0]).toMatchObject({ delivered: 17, lost: 3, duplicated: 1 });
    expect(r.violations.byKind).toEqual({ lost: 0, duplicated: 1, reordered: 0, retained: 0, 'session-lost': 0 });
  });

  it('duplicated QoS 2 is a violation; duplicated QoS 1 is only counted', () => {
    const s = new Shard().publish(1, 1, 20).publish(2, 2, 20).present(C);
    s.receive(C, 1, 1, [...range(0, 19), 5, 6]).receive(C, 2, 2, [...range(0, 19), 10]);
    const r = check(s.end(C).serialize());
    expect(r.byQos[1].duplicated).toBe(2);
    expect(r.byQos[2].duplicated).toBe(1);
    expect(r.violations).toEqual({ total: 1, byKind: { lost: 0, duplicated: 1, reordered: 0, retained: 0, 'session-lost': 0 }, byQos: [0, 0, 1] });
    expect(r.examples[0]).toMatchObject({ kind: 'duplicated', qos: 2, subscriberClientId: 'c-0', seq: null });
  });

  it('reordered: a message after a later one of the same publisher and topic', () => {
    const s = new Shard().publish(1, 1, 20).present(C).receive(C, 1, 1, [...range(0, 9), 11, 10, ...range(12, 19)]).end(C);
    const r = check(s.serialize());
    expect(r.byQos[1]).toMatchObject({ delivered: 20, reordered: 1, lost: 0 });
    expect(r.violations.byKind.reordered).toBe(1);
  });

  it('indeterminate around a clean-session gap, lost where the subscriber was present throughout', () => {
    // c drops at +3 s and is back (no session) and subscribed at +5.1 s; messages every 100 ms.
    const s = new Shard().publish(1, 1, 100).present(C);
    s.records.lost(C, T0 + 3000);
    s.records.connected(C, T0 + 5000, false);
    s.records.subscribed(C, T0 + 5100, [2]);
    s.receive(C, 1, 1, range(0, 99, [...range(30, 51), 70, 71])).end(C);
    const r = check(s.serialize());
    // 30..51 straddle the gap (± the 1 s margin, checkpoints every 32); 70 and 71 came well after the resubscribe.
    expect(r.subscribers['c']!.byQos[1]).toMatchObject({ delivered: 76, lost: 2, indeterminate: 22 });
    // All 22 were acknowledged: they are indeterminate because of the gap, not the publisher.
    expect(r.indeterminateCauses![1]).toEqual({ unacknowledged: 0, boundary: 22 });
    expect(r.examples.map((e) => e.seq)).toEqual([70, 71]);
  });

  it('a persistent session that resumed (session present) owes every message of the gap', () => {
    const s = new Shard().publish(1, 1, 100).present(C);
    s.records.lost(C, T0 + 3000);
    s.records.connected(C, T0 + 5000, true);
    s.receive(C, 1, 1, range(0, 99, [...range(30, 51), 70, 71])).end(C);
    expect(check(s.serialize()).subscribers['c']!.byQos[1]).toMatchObject({ delivered: 76, lost: 24, indeterminate: 0 });
  });

  it('messages wholly outside the subscription are not owed, and not counted', () => {
    const s = new Shard().publish(1, 1, 100);
    s.records.connected(C, T0 + 7000, false);
    s.records.subscribed(C, T0 + 7000, [2]);
    s.receive(C, 1, 1, range(81, 99)).end(C);
    const k = check(s.serialize()).subscribers['c']!.byQos[1];
    // 0..32 were routed (acks of checkpoints 32 and 0, + 1 s margin) before +7 s - 1 s: not owed, not counted.
    // 33..80 may have been routed on either side of the SUBACK (+ margin): indeterminate. 81.. were owed and came.
    expect(k.delivered).toBe(19);
    expect(k.lost).toBe(0);
    expect(k.indeterminate).toBe(48);
  });

  it('a shared subscription is judged as a group: delivered to one member, duplicates across members', () => {
    const s = new Shard().publish(1, 1, 100).publish(2, 2, 100).present(H1).present(H2);
    // QoS 2: split between the members, seq 10 reached both, seq 77 reached neither.
    s.receive(H1, 2, 2, range(0, 49)).receive(H2, 2, 2, [...range(50, 99, [77]), 10]);
    // QoS 1: overlapping halves (20 messages to both members: allowed at QoS 1).
    s.receive(H1, 1, 1, range(0, 59)).receive(H2, 1, 1, range(40, 99));
    const r = check(s.end(H1, H2).serialize());
    expect(r.subscribers['hist']!.byQos[2]).toMatchObject({ delivered: 99, lost: 1, duplicated: 1 });
    expect(r.subscribers['hist']!.byQos[1]).toMatchObject({ delivered: 100, lost: 0, duplicated: 20 });
    expect(r.violations).toEqual({ total: 2, byKind: { lost: 1, duplicated: 1, reordered: 0, retained: 0, 'session-lost': 0 }, byQos: [0, 0, 2] });
    expect(r.examples.find((e) => e.kind === 'duplicated')).toMatchObject({ group: '$share/h/t/#', seq: 10 });
    expect(r.examples.find((e) => e.kind === 'lost')).toMatchObject({ group: '$share/h/t/#', seq: 77 });
  });

  it('judges at the effective QoS: QoS 1 through a QoS 0 subscription may be lost, not duplicated', () => {
    const s = new Shard().publish(1, 1, 30).present(LOW).receive(LOW, 1, 0, [...range(0, 29, [1, 2, 3, 4, 5]), 9]).end(LOW);
    const r = check(s.serialize());
    expect(r.subscribers['low']!.byQos[0]).toMatchObject({ delivered: 25, lost: 5, duplicated: 1 });
    expect(r.subscribers['low']!.byQos[1]).toMatchObject({ delivered: 0, lost: 0 });
    expect(r.violations.byKind).toEqual({ lost: 0, duplicated: 1, reordered: 0, retained: 0, 'session-lost': 0 });
  });

  it('uses the granted QoS from SUBACK over the requested one', () => {
    const s = new Shard().publish(2, 2, 10);
    s.records.connected(C, T0 - 2000, false);
    s.records.subscribed(C, T0 - 1900, [1]);
    s.receive(C, 2, 1, range(0, 9)).end(C);
    expect(check(s.serialize()).subscribers['c']!.byQos[1].delivered).toBe(10);
  });

  it('unacknowledged QoS 1/2 publishes are indeterminate, not lost', () => {
    const s = new Shard().publish(1, 1, 100, new Set(range(90, 99))).present(C).receive(C, 1, 1, range(0, 89)).end(C);
    const r = check(s.serialize());
    expect(r.byQos[1]).toMatchObject({ delivered: 90, lost: 0, indeterminate: 10 });
    expect(r.indeterminateCauses).toEqual([
      { unacknowledged: 0, boundary: 0 },
      { unacknowledged: 10, boundary: 0 },
      { unacknowledged: 0, boundary: 0 },
    ]);
    expect(r.verdict).toBe('pass');
  });

  it('without session records nothing is called lost', () => {
    const s = new Shard().publish(1, 1, 10).receive(C, 1, 1, range(0, 7));
    const l = s.ledger.serialize();
    const r = check(l);
    expect(r.subscribers['c']!.byQos[1]).toMatchObject({ delivered: 8, lost: 0, indeterminate: 2 });
    // The group and the QoS 0 subscriber received nothing: all indeterminate, none lost.
    expect(r.byQos.map((k) => [k.lost, k.indeterminate])).toEqual([[0, 10], [0, 12], [0, 0]]);
    expect(r.verdict).toBe('unchecked');
  });

  it('merging two shards gives the same result as one', () => {
    const build = (a: Shard, b: Shard): void => {
      a.publish(1, 1, 100).publish(2, 2, 100, new Set([99]));
      b.publish(0, 0, 100).present(C).present(H1);
      a.present(H2);
      b.receive(C, 1, 1, range(0, 99, [50])).receive(C, 2, 2, [...range(0, 98), 3]).receive(C, 0, 0, range(0, 99, [7]));
      b.receive(H1, 1, 1, range(0, 49)).receive(H1, 2, 2, range(0, 40));
      a.receive(H2, 1, 1, range(50, 99, [60])).receive(H2, 2, 2, range(41, 98)).receive(H2, 0, 0, range(0, 99));
      b.records.lost(C, T0 + 5000);
      b.records.connected(C, T0 + 6000, false);
      b.records.subscribed(C, T0 + 6000, [2]);
      a.end(H2);
      b.end(C, H1);
    };
    const one = new Shard();
    build(one, one);
    const a = new Shard();
    const b = new Shard();
    build(a, b);
    const merged = mergeLedgers([a.serialize(), b.serialize()]);
    const single = check(one.serialize());
    expect(check(merged)).toEqual(single);
    expect(single.violations.total).toBeGreaterThan(0);
    // Seq 99 of the QoS 2 stream was never acknowledged: indeterminate for c and for the group.
    expect(single.byQos[2].indeterminate).toBe(2);
  });

  it('a command stream is judged per target: each PLC is owed only the commands on its topic', () => {
    const s = parseScenario(`
name: cmd
duration: 10s
fleets:
  - { name: plcs, model: plc, count: 3, subscribe: [{ topic: "cmd/{id}", qos: 2 }] }
consumers:
  - { name: scada, commands: { fleet: plcs, topic: "cmd/{target}", qos: 2, every: 100ms } }
`);
    const cat = buildCatalogs(s);
    const shard = new Shard().publish(3, 2, 30);
    for (const plc of [0, 1, 2]) shard.present(plc, cat);
    // Command seq goes to plcs-(seq % 3); plcs-1 misses seq 13.
    for (let seq = 0; seq < 30; seq++) if (seq !== 13) shard.receive(seq % 3, 3, 2, [seq]);
    shard.end(0, 1, 2);
    const r = checkDeliveries(shard.serialize(), cat, { now: () => 0 });
    expect(r.subscribers['plcs']!.byQos[2]).toMatchObject({ delivered: 29, lost: 1, indeterminate: 0 });
    expect(r.examples).toHaveLength(1);
    expect(r.examples[0]).toMatchObject({ kind: 'lost', seq: 13, topic: 'cmd/plcs-1', subscriberClientId: 'plcs-1', publisherClientId: 'scada-0' });
    expect(r.notes.filter((n) => n.includes('matched no subscription'))).toEqual([]);
  });
});

describe('mergeCheckerRecords', () => {
  it('unites checkpoints and interleaves session events by time', () => {
    const a = new CheckerRecorder();
    const b = new CheckerRecorder();
    a.published(1, 0, 100, -1);
    a.acknowledged(1, 0, 110);
    b.connected(7, 50, false);
    a.subscribed(7, 60, [1]);
    const m = mergeCheckerRecords([a.serialize(), undefined, b.serialize()])!;
    expect(m.times).toEqual([{ stream: 1, points: [0, 100, 110] }]);
    expect(m.sessions[0]!.events.map((e) => e.kind)).toEqual(['connected', 'subscribed']);
    expect(mergeCheckerRecords([undefined])).toBeUndefined();
  });

  it('keeps a checkpoint every 32nd sequence plus the first and the last', () => {
    const r = new CheckerRecorder();
    for (let seq = 5; seq < 70; seq++) r.published(3, seq, 1000 + seq, 1000 + seq + 0.5);
    expect(r.serialize().times[0]!.points.filter((_, i) => i % 3 === 0)).toEqual([5, 32, 64, 69]);
  });
});
