import { describe, expect, it } from 'vitest';
import { addCounters, cloneCounters, emptyFleetCounters, sumFleets } from '../../../../simulator/metrics/counters.js';
import { brokerViolationKinds, disconnectCauses, type FleetCounters } from '../../../../simulator/metrics/types.js';

/** Counters where every field has a distinct value derived from `k`. */
function filled(k: number): FleetCounters {
  const c = emptyFleetCounters(k);
  c.connected = k + 1;
  c.connectAttempts = k + 2;
  c.connects = k + 3;
  c.connectFailures = k + 4;
  c.reconnects = k + 5;
  disconnectCauses.forEach((cause, i) => (c.disconnects[cause] = k * 10 + i));
  c.published = [k, k + 1, k + 2];
  c.acknowledged = [k + 3, k + 4, k + 5];
  c.rejected = [k + 6, k + 7, k + 8];
  c.delivered = [k + 9, k + 10, k + 11];
  c.duplicates = [k + 12, k + 13, k + 14];
  c.reordered = [k + 15, k + 16, k + 17];
  c.retainedReceived = k + 18;
  c.foreign = k + 19;
  c.droppedOffline = k + 20;
  c.bytesOut = k + 21;
  c.bytesIn = k + 22;
  c.faults = { disconnects: k + 23, resets: k + 24, halfOpen: k + 25, slowCloses: k + 26, refused: k + 27, stalls: k + 28 };
  brokerViolationKinds.forEach((kind, i) => (c.violations![kind] = k + 29 + i));
  return c;
}

describe('counters', () => {
  it('emptyFleetCounters is all zeros but the device target', () => {
    const c = emptyFleetCounters(25);
    expect(c.devices).toBe(25);
    expect(c.disconnects).toEqual({ normal: 0, server: 0, error: 0, timeout: 0, refused: 0, protocol: 0 });
    expect(c.published).toEqual([0, 0, 0]);
    expect(c.faults).toEqual({ disconnects: 0, resets: 0, halfOpen: 0, slowCloses: 0, refused: 0, stalls: 0 });
    expect(c.violations).toEqual({
      'qos-above-granted': 0, 'receive-maximum-exceeded': 0, 'packet-too-large': 0, 'unknown-packet-id': 0, 'retain-misuse': 0, 'topic-alias-misuse': 0,
    });
    expect(emptyFleetCounters().devices).toBe(0);
  });

  it('addCounters sums every field, gauges included', () => {
    const sum = addCounters(filled(1), filled(100));
    const expected = filled(0);
    const one = filled(1);
    const hundred = filled(100);
    // Every numeric leaf of the sum is the sum of the leaves.
    const walk = (a: unknown, b: unknown, c: unknown, path: string): void => {
      if (typeof a === 'number') {
        expect(a, path).toBe((b as number) + (c as number));
        return;
      }
      for (const key of Object.keys(a as object)) {
        walk((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], (c as Record<string, unknown>)[key], `${path}.${key}`);
      }
    };
    walk(sum, one, hundred, 'counters');
    expect(Object.keys(sum).sort()).toEqual(Object.keys(expected).sort());
    expect(sum.connected).toBe(2 + 101);
  });

  it('sumFleets adds every fleet of a record', () => {
    const total = sumFleets({ a: filled(1), b: filled(2), c: filled(3) });
    expect(total.devices).toBe(6);
    expect(total.published).toEqual([6, 9, 12]);
    expect(total.disconnects.protocol).toBe(10 + 20 + 30 + 15);
    expect(sumFleets({})).toEqual(emptyFleetCounters());
  });

  it('cloneCounters is a deep copy', () => {
    const a = filled(4);
    const b = cloneCounters(a);
    expect(b).toEqual(a);
    b.published[0] = 999;
    b.disconnects.error = 999;
    expect(a.published[0]).toBe(4);
    expect(a.disconnects.error).toBe(42);
  });
});

describe('fault counters', () => {
  it('addCounters accepts counters without faults (from before they existed) and keeps the sum', () => {
    const into = emptyFleetCounters();
    into.faults!.stalls = 2;
    const old = emptyFleetCounters();
    delete old.faults;
    addCounters(into, old);
    expect(into.faults!.stalls).toBe(2);
    const bare = emptyFleetCounters();
    delete bare.faults;
    const from = emptyFleetCounters();
    from.faults!.resets = 3;
    expect(addCounters(bare, from).faults).toEqual({ disconnects: 0, resets: 3, halfOpen: 0, slowCloses: 0, refused: 0, stalls: 0 });
  });
});

describe('broker violation counters', () => {
  it('addCounters accepts counters without violations (from before they existed) and keeps the sum', () => {
    const into = emptyFleetCounters();
    into.violations!['qos-above-granted'] = 2;
    const old = emptyFleetCounters();
    delete old.violations;
    addCounters(into, old);
    expect(into.violations!['qos-above-granted']).toBe(2);
    const bare = emptyFleetCounters();
    delete bare.violations;
    const from = emptyFleetCounters();
    from.violations!['receive-maximum-exceeded'] = 3;
    expect(addCounters(bare, from).violations).toMatchObject({ 'receive-maximum-exceeded': 3, 'qos-above-granted': 0 });
  });

  it('cloneCounters copies the violation counts, not the record', () => {
    const a = filled(1);
    const b = cloneCounters(a);
    b.violations!['retain-misuse'] = 999;
    expect(a.violations!['retain-misuse']).toBe(1 + 29 + brokerViolationKinds.indexOf('retain-misuse'));
  });
});
