/** Reconnect backoff: exponential growth, the cap, full jitter, and replay from a seed. */
import { describe, expect, it } from 'vitest';
import { Backoff, backoffCeiling, backoffDelay } from '../../../../simulator/client/backoff.js';
import { createPrng } from '../../../../simulator/scenario/prng.js';


const policy = { initialDelayMs: 100, maxDelayMs: 5000, multiplier: 2 };

describe('backoff', () => {
  it('grows the ceiling by the multiplier per attempt and caps it at maxDelay', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((a) => backoffCeiling(a, policy))).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  });

  it('stays finite for absurd attempt counts (no Infinity × 0)', () => {
    expect(backoffCeiling(10_000, policy)).toBe(5000);
    expect(backoffCeiling(10_000, { ...policy, initialDelayMs: 0 })).toBe(0);
  });

  it('is full jitter: random() × ceiling, from 0 up to (not including) the ceiling', () => {
    expect(backoffDelay(3, policy, () => 0)).toBe(0);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(400);
    expect(backoffDelay(3, policy, () => 0.999999)).toBe(799);
  });

  it('replays the same delays from the same seed, and different ones from another seed', () => {
    const run = (seed: number): number[] => {
      const b = new Backoff(policy, createPrng(seed));
      return Array.from({ length: 12 }, () => b.next());
    };
    const first = run(42);
    expect(run(42)).toEqual(first);
    expect(run(43)).not.toEqual(first);
    first.forEach((d, attempt) => {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(backoffCeiling(attempt, policy));
    });
  });

  it('starts over from the initial window after reset()', () => {
    const b = new Backoff(policy, () => 0.5);
    expect([b.next(), b.next(), b.next()]).toEqual([50, 100, 200]);
    b.reset();
    expect(b.next()).toBe(50);
  });
});
