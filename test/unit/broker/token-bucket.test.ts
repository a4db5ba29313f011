import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../../broker/token-bucket.js';

describe('TokenBucket (publishRateLimit)', () => {
  it('starts full: a burst of `capacity` passes, the next is refused', () => {
    const bucket = new TokenBucket(5, 5, 0);
    expect(Array.from({ length: 6 }, () => bucket.take(0))).toEqual([true, true, true, true, true, false]);
  });

  it('refills at `rate` per second, never above capacity', () => {
    const bucket = new TokenBucket(10, 10, 0);
    for (let i = 0; i < 10; i++) bucket.take(0);
    expect(bucket.available(0)).toBe(0);
    expect(bucket.available(100)).toBeCloseTo(1);
    expect(bucket.take(100)).toBe(true);
    expect(bucket.take(100)).toBe(false);
    expect(bucket.available(60_000)).toBe(10);
  });

  it('sustains exactly the rate: one take per 1/rate seconds always passes', () => {
    const bucket = new TokenBucket(4, 1, 0);
    for (let t = 0; t <= 10_000; t += 250) expect(bucket.take(t), `at ${t} ms`).toBe(true);
    expect(bucket.take(10_000)).toBe(false);
  });

  it('a clock that steps back adds nothing and takes nothing away', () => {
    const bucket = new TokenBucket(1, 2, 10_000);
    bucket.take(10_000);
    expect(bucket.available(5_000)).toBe(1);
    expect(bucket.available(11_000)).toBe(2);
  });

  it('refuses a rate or capacity that cannot work', () => {
    expect(() => new TokenBucket(0, 1, 0)).toThrow(RangeError);
    expect(() => new TokenBucket(1, 0.5, 0)).toThrow(RangeError);
  });
});
