import { describe, expect, it } from 'vitest';
import { createPayloadBuilder } from '../../../../simulator/scenario/generators.js';
import { createPrng } from '../../../../simulator/scenario/prng.js';
import type { GeneratorSpec, PayloadSpec } from '../../../../simulator/scenario/types.js';

const ctx = (seed = 1) => ({ vars: { id: 'dev-0', fleet: 'dev', index: 0, site: 'plant-1' }, random: createPrng(seed) });
const json = (fields: Record<string, GeneratorSpec>): PayloadSpec => ({ kind: 'json', fields });
const parse = (b: Buffer): Record<string, unknown> => JSON.parse(b.toString('utf8')) as Record<string, unknown>;

describe('createPayloadBuilder (json)', () => {
  it('counts per message, renders templates and constants', () => {
    const build = createPayloadBuilder(json({
      n: { kind: 'counter', start: 10, step: 5 },
      site: { kind: 'template', template: '{site}/{id}' },
      ok: { kind: 'constant', value: true },
      unit: { kind: 'constant', value: 'psi' },
    }), ctx());
    expect(parse(build(0))).toEqual({ n: 10, site: 'plant-1/dev-0', ok: true, unit: 'psi' });
    expect(parse(build(0)).n).toBe(15);
    expect(parse(build(0)).n).toBe(20);
  });

  it('computes sine from the clock and the period', () => {
    const build = createPayloadBuilder(json({ psi: { kind: 'sine', mean: 800, amplitude: 40, periodMs: 60_000 } }), ctx());
    expect(parse(build(0)).psi).toBe(800);
    expect(parse(build(15_000)).psi).toBe(840);
    expect(parse(build(45_000)).psi).toBe(760);
  });

  it('walks within bounds, starting at start', () => {
    const build = createPayloadBuilder(json({ v: { kind: 'randomWalk', start: 5, step: 2, min: 0, max: 10 } }), ctx());
    const values = Array.from({ length: 500 }, () => parse(build(0)).v as number);
    expect(values[0]).toBe(5);
    for (let i = 1; i < values.length; i++) {
      expect(values[i]).toBeGreaterThanOrEqual(0);
      expect(values[i]).toBeLessThanOrEqual(10);
      expect(Math.abs(values[i]! - values[i - 1]!)).toBeLessThanOrEqual(2.001);
    }
  });

  it('draws gaussian values with the given mean and stddev', () => {
    const build = createPayloadBuilder(json({ t: { kind: 'gaussian', mean: 70, stddev: 2 } }), ctx());
    const values = Array.from({ length: 20_000 }, () => parse(build(0)).t as number);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
    expect(mean).toBeCloseTo(70, 1);
    expect(sd).toBeGreaterThan(1.9);
    expect(sd).toBeLessThan(2.1);
  });

  it('is deterministic for the same seed (uniform, enum, bytes)', () => {
    const spec = json({ u: { kind: 'uniform', min: 0, max: 100 }, e: { kind: 'enum', values: ['open', 'closed', 3] }, b: { kind: 'bytes', size: 16 } });
    const a = createPayloadBuilder(spec, ctx(9));
    const b = createPayloadBuilder(spec, ctx(9));
    for (let i = 0; i < 20; i++) expect(a(i).equals(b(i))).toBe(true);
    const one = parse(a(0));
    expect(one.u as number).toBeGreaterThanOrEqual(0);
    expect(['open', 'closed', 3]).toContain(one.e);
    expect(one.b).toMatch(/^[A-Za-z0-9+/]{16}$/);
  });

  it('writes timestamps as ISO strings of the clock', () => {
    const build = createPayloadBuilder(json({ at: { kind: 'timestamp' } }), ctx());
    expect(parse(build(Date.UTC(2024, 0, 2, 3, 4, 5, 6))).at).toBe('2024-01-02T03:04:05.006Z');
  });
});

describe('createPayloadBuilder (bytes)', () => {
  it('returns the same pre-generated buffer of the given size every time', () => {
    const build = createPayloadBuilder({ kind: 'bytes', size: 256 }, ctx());
    const first = build(0);
    expect(first.length).toBe(256);
    expect(build(1)).toBe(first);
  });
});
