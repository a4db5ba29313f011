/** RangeSet against a plain Set oracle (fast-check), plus the compactness it exists for. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RangeSet } from '../../../../simulator/verify/range-set.js';

/** Values from a small domain, so collisions, adjacency and range merges are frequent. */
const arbValues = fc.array(fc.nat({ max: 200 }), { maxLength: 300 });

function fromValues(values: readonly number[]): { set: RangeSet; oracle: Set<number> } {
  const set = new RangeSet();
  const oracle = new Set<number>();
  for (const v of values) {
    const wasNew = !oracle.has(v);
    oracle.add(v);
    expect(set.add(v)).toBe(wasNew);
  }
  return { set, oracle };
}

/** The flat ranges the oracle's members form: sorted, disjoint, non-adjacent. */
function oracleRanges(oracle: Set<number>): number[] {
  const sorted = [...oracle].sort((a, b) => a - b);
  const out: number[] = [];
  for (const v of sorted) {
    if (out.length > 0 && out[out.length - 1] === v - 1) out[out.length - 1] = v;
    else out.push(v, v);
  }
  return out;
}

describe('RangeSet', () => {
  it('add reports new members and has/size/toJSON match a Set', () => {
    fc.assert(
      fc.property(arbValues, (values) => {
        const { set, oracle } = fromValues(values);
        expect(set.size).toBe(oracle.size);
        expect(set.toJSON()).toEqual(oracleRanges(oracle));
        for (let v = 0; v <= 201; v++) expect(set.has(v)).toBe(oracle.has(v));
        expect(set.min).toBe(oracle.size === 0 ? -1 : Math.min(...oracle));
        expect(set.max).toBe(oracle.size === 0 ? -1 : Math.max(...oracle));
      }),
    );
  });

  it('union (new and in place) equals the Set union', () => {
    fc.assert(
      fc.property(arbValues, arbValues, (a, b) => {
        const x = fromValues(a);
        const y = fromValues(b);
        const expected = oracleRanges(new Set([...x.oracle, ...y.oracle]));
        const before = x.set.toJSON();
        const u = x.set.union(y.set);
        expect(u.toJSON()).toEqual(expected);
        expect(u.size).toBe(new Set([...a, ...b]).size);
        expect(x.set.toJSON()).toEqual(before); // union() leaves its operands alone
        x.set.unionInPlace(y.set);
        expect(x.set.toJSON()).toEqual(expected);
        expect(x.set.size).toBe(u.size);
      }),
    );
  });

  it('difference, differenceSize and intersectionSize match the Set ones', () => {
    fc.assert(
      fc.property(arbValues, arbValues, (a, b) => {
        const x = fromValues(a);
        const y = fromValues(b);
        const diff = new Set([...x.oracle].filter((v) => !y.oracle.has(v)));
        expect(x.set.difference(y.set).toJSON()).toEqual(oracleRanges(diff));
        expect(x.set.differenceSize(y.set)).toBe(diff.size);
        expect(x.set.intersectionSize(y.set)).toBe(x.oracle.size - diff.size);
      }),
    );
  });

  it('toJSON/fromJSON round-trip, and fromJSON normalizes unordered, overlapping and touching ranges', () => {
    fc.assert(
      fc.property(arbValues, (values) => {
        const { set } = fromValues(values);
        expect(RangeSet.fromJSON(set.toJSON()).equals(set)).toBe(true);
      }),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: 100 }), fc.nat({ max: 10 })), { maxLength: 30 }), (pairs) => {
        const flat = pairs.flatMap(([s, len]) => [s, s + len]);
        const oracle = new Set<number>();
        for (const [s, len] of pairs) for (let v = s; v <= s + len; v++) oracle.add(v);
        const set = RangeSet.fromJSON(flat);
        expect(set.toJSON()).toEqual(oracleRanges(oracle));
        expect(set.size).toBe(oracle.size);
      }),
    );
  });

  it('addRange adds every integer of the range', () => {
    fc.assert(
      fc.property(arbValues, fc.nat({ max: 250 }), fc.nat({ max: 20 }), (values, start, len) => {
        const { set, oracle } = fromValues(values);
        set.addRange(start, start + len);
        for (let v = start; v <= start + len; v++) oracle.add(v);
        expect(set.toJSON()).toEqual(oracleRanges(oracle));
        expect(set.size).toBe(oracle.size);
      }),
    );
  });

  it('rejects invalid input', () => {
    expect(() => new RangeSet().add(-1)).toThrow(RangeError);
    expect(() => new RangeSet().add(1.5)).toThrow(RangeError);
    expect(() => RangeSet.fromJSON([1])).toThrow(/odd length/);
    expect(() => RangeSet.fromJSON([5, 4])).toThrow(/invalid range/);
    expect(() => RangeSet.fromJSON([-1, 4])).toThrow(/invalid range/);
  });

  it('keeps an in-order stream as one range, and a stream with one gap as two', () => {
    const set = new RangeSet();
    for (let seq = 0; seq < 100_000; seq++) set.add(seq);
    expect(set.toJSON()).toEqual([0, 99_999]);
    expect(set.rangeCount).toBe(1);
    const gap = new RangeSet();
    for (let seq = 0; seq < 1000; seq++) if (seq !== 500) gap.add(seq);
    expect(gap.toJSON()).toEqual([0, 499, 501, 999]);
    gap.add(500);
    expect(gap.toJSON()).toEqual([0, 999]);
  });

  it('handles the full uint32 sequence range', () => {
    const set = new RangeSet();
    expect(set.add(0xffffffff)).toBe(true);
    expect(set.add(0xfffffffe)).toBe(true);
    expect(set.add(0)).toBe(true);
    expect(set.toJSON()).toEqual([0, 0, 0xfffffffe, 0xffffffff]);
    expect(set.size).toBe(3);
  });
});

describe('RangeSet.intersection', () => {
  it('holds exactly the members of both (against a Set oracle)', () => {
    fc.assert(
      fc.property(arbValues, arbValues, (a, b) => {
        const x = fromValues(a);
        const y = fromValues(b);
        const both = [...x.oracle].filter((v) => y.oracle.has(v)).sort((p, q) => p - q);
        const got = x.set.intersection(y.set);
        const members: number[] = [];
        got.forEachRange((s, e) => {
          for (let v = s; v <= e; v++) members.push(v);
        });
        expect(members).toEqual(both);
        expect(got.size).toBe(both.length);
        expect(got.size).toBe(x.set.intersectionSize(y.set));
      }),
    );
  });
});
