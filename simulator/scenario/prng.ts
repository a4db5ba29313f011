/**
 * The simulator's only source of randomness: a seeded sfc32 generator (Chris Doty-Humphrey's Small Fast
 * Counting generator, 128-bit state) whose state comes from splitmix32-style mixing of the seed and salts.
 * The same (seed, ...salt) always yields the same sequence, so `--seed` replays a run; salts (fleet, device
 * index, purpose) give every consumer of randomness its own independent stream.
 */

/** A 32-bit avalanche mix (the splitmix32 / murmur3 finalizer family). */
function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad);
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97);
  return (x ^ (x >>> 15)) >>> 0;
}

/** The low and high 32 bits of an integer part, so seeds beyond 2^32 still differ. */
function words(n: number): [number, number] {
  if (!Number.isFinite(n)) return [0x7ff00000, n > 0 ? 1 : n < 0 ? 2 : 3];
  const t = Math.trunc(n);
  const lo = t >>> 0;
  const hi = Math.floor(t / 0x1_0000_0000) >>> 0;
  return [lo, hi];
}

/** One 32-bit seed from a seed and any number of salts; order matters. */
export function deriveSeed(seed: number, ...salt: number[]): number {
  let h = 0x6a09e667;
  for (const value of [seed, ...salt]) {
    const [lo, hi] = words(value);
    h = mix32(h ^ lo);
    h = mix32(h ^ hi);
  }
  return h;
}

/** FNV-1a of a string, for salting with names (fleet, attribute). */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A deterministic generator of floats in [0, 1). */
export function createPrng(seed: number, ...salt: number[]): () => number {
  let s = deriveSeed(seed, ...salt);
  const next = (): number => {
    s = (s + 0x9e3779b9) | 0;
    return mix32(s);
  };
  let a = next();
  let b = next();
  let c = next();
  let d = 1;
  const step = (): number => {
    // sfc32
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  // Discard the first outputs: sfc32 needs a few rounds to decorrelate from the seed.
  for (let i = 0; i < 12; i++) step();
  return () => step() / 0x1_0000_0000;
}

/** An integer in [min, max] (both inclusive) from a generator. */
export function randomInt(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}
