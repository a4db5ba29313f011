/** The checker's judgement of persistent sessions (session-lost) and retained replays, on synthetic records. */
import { describe, expect, it } from 'vitest';
import type { QoS } from '../../../../protocol/packets.js';
import { parseScenario } from '../../../../simulator/scenario/load.js';
import { buildCatalogs, type Catalogs } from '../../../../simulator/verify/catalog.js';
import { checkDeliveries, type CheckerResult } from '../../../../simulator/verify/checker.js';
import { CheckerRecorder, RETAINED_CHECKPOINT_MS } from '../../../../simulator/verify/checker-records.js';
import { ShardLedger, type SerializedLedgers } from '../../../../simulator/verify/ledger.js';

// Devices: st-0 = 0, st-1 = 1, live-0 = 2, p-0 = 3 (persistent), k-0 = 4 (clean), w-0 = 5 (shared). Streams: st = 0, 1; live = 2.
function scenarioWith(expiry: string): string {
  return `
name: sessions
duration: 10s
fleets:
  - { name: st, count: 2, publish: { topic: "st/{id}", qos: 1, retain: true, every: 100ms } }
  - { name: live, count: 1, publish: { topic: "live/{id}", qos: 1, every: 100ms } }
consumers:
  - { name: p, session: { clean: false, expiry: ${expiry} }, subscribe: [{ topic: "live/#", qos: 1 }] }
  - { name: k, subscribe: [{ topic: "st/#", qos: 1 }] }
  - { name: w, subscribe: [{ topic: "$share/g/st/#", qos: 1 }] }
`;
}
const catalogs = buildCatalogs(parseScenario(scenarioWith('1m')));
const T0 = 1_700_000_000_000;
const P = 3;
const K = 4;
const W = 5;

class Shard {
  readonly ledger = new ShardLedger();
  readonly records = new CheckerRecorder();

  /** Seqs [0, n) every 100 ms from T0, acknowledged 5 ms later; `retain` marks the stream retained in the time index. */
  publish(stream: number, qos: QoS, n: number, retain = false): this {
    for (let seq = 0; seq < n; seq++) {
      const at = T0 + seq * 100;
      this.ledger.published(stream, seq, qos);
      this.records.published(stream, seq, at, -1, retain);
      this.ledger.acknowledged(stream, seq);
      this.records.acknowledged(stream, seq, at + 5);
    }
    return this;
  }

  present(device: number, granted: number[] = [1]): this {
    this.records.connected(device, T0 - 2000, false);
    this.records.subscribed(device, T0 - 1900, granted);
    return this;
  }

  receive(device: number, stream: number, seqs: Iterable<number>): this {
    for (const seq of seqs) this.ledger.received(device, stream, seq, 1);
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

const check = (l: SerializedLedgers, cat: Catalogs = catalogs): CheckerResult => checkDeliveries(l, cat, { now: () => 0 });

describe('persistent sessions', () => {
  it('the catalog says how long each subscriber is owed its session', () => {
    expect(catalogs.subscribers.map((s) => [s.clientId, s.persistent, s.sessionOwedMs])).toEqual([
      ['p-0', true, 60_000],
      ['k-0', false, 0],
      ['w-0', false, 0],
    ]);
    expect(buildCatalogs(parseScenario(scenarioWith('1m')), 4).subscribers[0]!.sessionOwedMs).toBe(Infinity);
  });

  it('session present = 0 within the expiry is session-lost, and the messages of the gap are lost, not indeterminate', () => {
    const s = new Shard().publish(2, 1, 100).present(P);
    s.records.lost(P, T0 + 3000);
    s.records.connected(P, T0 + 5000, false);
    s.records.subscribed(P, T0 + 5100, [1]);
    s.receive(P, 2, range(0, 99, range(30, 51))).records.end(P, T0 + 60_000);
    const r = check(s.serialize());
    expect(r.subscribers['p']!.byQos[1]).toMatchObject({ delivered: 78, lost: 22, indeterminate: 0 });
    expect(r.violations.byKind).toEqual({ lost: 22, duplicated: 0, reordered: 0, retained: 0, 'session-lost': 1 });
    expect(r.subscribers['p']!.byKind).toMatchObject({ lost: 22, 'session-lost': 1 });
    expect(r.sessions).toEqual({ owedReconnects: 1, resumed: 0, forgotten: 1 });
    const ex = r.examples.find((e) => e.kind === 'session-lost')!;
    expect(ex).toMatchObject({ subscriberClientId: 'p-0', publishedAtBracket: [T0 + 3000, T0 + 5000], qos: 1 });
    expect(ex.detail).toContain('session present = 0');
    expect(r.verdict).toBe('fail');
  });

  it('a resumed session is counted, not a violation', () => {
    const s = new Shard().publish(2, 1, 100).present(P);
    s.records.lost(P, T0 + 3000);
    s.records.connected(P, T0 + 5000, true);
    s.receive(P, 2, range(0, 99)).records.end(P, T0 + 60_000);
    const r = check(s.serialize());
    expect(r.violations.total).toBe(0);
    expect(r.sessions).toEqual({ owedReconnects: 1, resumed: 1, forgotten: 0 });
  });

  it('an expired session is not owed: session present = 0 is fine and the gap is indeterminate', () => {
    const cat = buildCatalogs(parseScenario(scenarioWith('2s')));
    const s = new Shard().publish(2, 1, 100).present(P);
    // Gap 2 s: with the 1 s margin it may have expired (2 s expiry).
    s.records.lost(P, T0 + 3000);
    s.records.connected(P, T0 + 5000, false);
    s.records.subscribed(P, T0 + 5100, [1]);
    s.receive(P, 2, range(0, 99, range(30, 51))).records.end(P, T0 + 60_000);
    const r = check(s.serialize(), cat);
    expect(r.violations.total).toBe(0);
    expect(r.subscribers['p']!.byQos[1]).toMatchObject({ lost: 0, indeterminate: 22 });
    expect(r.sessions!.owedReconnects).toBe(0);
  });

  it('a clean-session subscriber is never owed its gap', () => {
    const s = new Shard().publish(0, 1, 100, true).present(K);
    s.records.lost(K, T0 + 3000);
    s.records.connected(K, T0 + 3500, false);
    s.records.subscribed(K, T0 + 3600, [1]);
    s.records.retainedReplay(K, 0, 34);
    s.receive(K, 0, range(0, 99, range(28, 40))).records.end(K, T0 + 60_000);
    const r = check(s.serialize());
    expect(r.violations.total).toBe(0);
    expect(r.subscribers['k']!.byQos[1].lost).toBe(0);
    expect(r.sessions!.forgotten).toBe(0);
  });
});

describe('retained replays', () => {
  /** st-0 and st-1 publish 50 retained values (acked by T0 + 4.905 s); k resubscribes at T0 + 6.6 s. */
  function resubscribed(lostAfterMs: number | null): Shard {
    const s = new Shard().publish(0, 1, 50, true).publish(1, 1, 50, true).present(K).present(W);
    s.receive(K, 0, range(0, 49)).receive(K, 1, range(0, 49)).receive(W, 0, range(0, 49)).receive(W, 1, range(0, 49));
    s.records.lost(K, T0 + 6000);
    s.records.connected(K, T0 + 6500, false);
    s.records.subscribed(K, T0 + 6600, [1]);
    if (lostAfterMs !== null) s.records.lost(K, T0 + 6600 + lostAfterMs);
    s.records.end(K, T0 + 60_000);
    s.records.end(W, T0 + 60_000);
    return s;
  }

  it('the first subscription, before any value was acknowledged, expects no replay', () => {
    const s = new Shard().publish(0, 1, 50, true).publish(1, 1, 50, true).present(K).receive(K, 0, range(0, 49)).receive(K, 1, range(0, 49));
    s.records.end(K, T0 + 60_000);
    const r = check(s.serialize());
    expect(r.violations.total).toBe(0);
    expect(r.retained).toMatchObject({ subscribes: 1, judged: 0, missing: 0, stale: 0 });
  });

  it('current replays of every retained topic pass', () => {
    const s = resubscribed(null);
    s.records.retainedReplay(K, 0, 49);
    s.records.retainedReplay(K, 1, 49);
    const r = check(s.serialize());
    expect(r.violations.total).toBe(0);
    expect(r.retained).toEqual({ subscribes: 2, replays: 2, judged: 2, missing: 0, stale: 0, unjudged: 0 });
  });

  it('a topic with an acknowledged value and no replay is one retained violation', () => {
    const s = resubscribed(null);
    s.records.retainedReplay(K, 0, 49);
    const r = check(s.serialize());
    expect(r.violations.byKind).toMatchObject({ retained: 1, lost: 0 });
    expect(r.retained).toMatchObject({ judged: 2, missing: 1, stale: 0 });
    expect(r.examples[0]).toMatchObject({ kind: 'retained', subscriberClientId: 'k-0', publisherClientId: 'st-1', topic: 'st/st-1', seq: 49, qos: 1 });
    expect(r.examples[0]!.detail).toContain('no retained message');
    // Even when other kinds filled the examples, the first of each kind is kept.
    const full = checkDeliveries(s.serialize(), catalogs, { now: () => 0, maxExamples: 0 });
    expect(full.examples.map((e) => e.kind)).toEqual(['retained']);
  });

  it('a replay older than the last value acknowledged before the subscription is a retained violation', () => {
    const s = resubscribed(null);
    s.records.retainedReplay(K, 0, 20);
    s.records.retainedReplay(K, 1, 49);
    const r = check(s.serialize());
    expect(r.violations.byKind.retained).toBe(1);
    expect(r.retained).toMatchObject({ missing: 0, stale: 1 });
    expect(r.examples[0]).toMatchObject({ kind: 'retained', topic: 'st/st-0', seq: 20 });
  });

  it('an old replay next to a current one (a queued copy) is fine', () => {
    const s = resubscribed(null);
    s.records.retainedReplay(K, 0, 20);
    s.records.retainedReplay(K, 0, 49);
    s.records.retainedReplay(K, 1, 49);
    expect(check(s.serialize()).violations.total).toBe(0);
  });

  it('a value acknowledged within the margin of the subscription may be missed', () => {
    // The replay of st-0 is seq 40 while seqs up to 49 were acked before the CONNACK: only what was acked
    // more than 1 s before it (T0 + 5.5 s) counts, which is all 50 here — so use a resubscribe right after.
    const s = new Shard().publish(0, 1, 50, true).present(K).receive(K, 0, range(0, 49));
    s.records.lost(K, T0 + 4000);
    s.records.connected(K, T0 + 4500, false); // cutoff T0 + 3.5 s: seqs up to ~34 known acked before
    s.records.subscribed(K, T0 + 4600, [1]);
    s.records.retainedReplay(K, 0, 40);
    s.records.end(K, T0 + 60_000);
    expect(check(s.serialize()).violations.total).toBe(0);
  });

  it('no verdict on a missing replay when the connection was lost right after the SUBACK', () => {
    const r = check(resubscribed(200).serialize());
    expect(r.violations.total).toBe(0);
    expect(r.retained).toMatchObject({ judged: 0, missing: 0, unjudged: 2 });
  });

  it('shared subscriptions get no retained messages and are not judged', () => {
    const r = check(resubscribed(null).serialize());
    // k misses both (2 violations); w (shared, present throughout) is not judged.
    expect(r.violations.byKind.retained).toBe(2);
    expect(r.subscribers['w']!.violations).toBe(0);
  });

  it('replays attach to the latest SUBACK of the device and are kept in run.json form', () => {
    const rec = new CheckerRecorder();
    rec.retainedReplay(9, 1, 1); // before any SUBACK: nothing to attach to
    rec.connected(9, 10, false);
    rec.subscribed(9, 20, [1]);
    rec.retainedReplay(9, 3, 7);
    rec.retainedReplay(9, 4, 2);
    const events = rec.serialize().sessions[0]!.events;
    expect(events[1]).toMatchObject({ kind: 'subscribed', retained: [3, 7, 4, 2] });
  });

  it('a retained stream gets a checkpoint at least every second', () => {
    const rec = new CheckerRecorder();
    for (let seq = 0; seq < 60; seq++) rec.published(1, seq, 1000 + seq * 250, -1, true);
    for (let seq = 0; seq < 60; seq++) rec.published(2, seq, 1000 + seq * 250, -1, false);
    const [retained, plain] = rec.serialize().times;
    const los = retained!.points.filter((_, i) => i % 3 === 1);
    for (let i = 1; i < los.length; i++) expect(los[i]! - los[i - 1]!).toBeLessThanOrEqual(RETAINED_CHECKPOINT_MS);
    expect(plain!.points.filter((_, i) => i % 3 === 0)).toEqual([0, 32, 59]);
  });
});
