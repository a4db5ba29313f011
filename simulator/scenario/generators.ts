/**
 * Payload bodies at run time. A builder is created once per publishing stream (device, gateway sensor,
 * command sender) and called for every message, thousands of times a second, so everything that can be
 * computed up front is: JSON keys, constants, rendered templates, enum texts, random byte pools.
 * The builder returns the BODY; the caller prepends the 20-byte stamp.
 */
import { createPrng } from './prng.js';
import { compileTemplate, type TemplateVars } from './templates.js';
import type { GeneratorSpec, PayloadSpec } from './types.js';

export interface PayloadContext {
  /** Values of the placeholders of `template` fields (id, fleet, index, attributes, sensor, target). */
  vars: TemplateVars;
  /** The stream's seeded PRNG (see prng.ts). */
  random: () => number;
}

export type PayloadBuilder = (nowMs: number) => Buffer;

/** Produces the JSON text of one field value. */
type FieldText = (nowMs: number) => string;

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const POOL_CHARS = 64 * 1024;
let base64Pool: string | undefined;

/** A fixed pool of base64 characters that `bytes(n)` fields slice from (the same in every process). */
function pool(): string {
  if (base64Pool === undefined) {
    const random = createPrng(0x6d717474);
    let text = '';
    for (let i = 0; i < POOL_CHARS; i++) text += BASE64[Math.floor(random() * 64)];
    base64Pool = text;
  }
  return base64Pool;
}

/** Finite numbers rounded to 3 decimals keep payloads compact and realistic; JSON has no NaN. */
function numberText(x: number): string {
  if (!Number.isFinite(x)) return 'null';
  return String(Math.round(x * 1000) / 1000);
}

function fieldText(spec: GeneratorSpec, ctx: PayloadContext): FieldText {
  const random = ctx.random;
  switch (spec.kind) {
    case 'constant': {
      const text = JSON.stringify(spec.value);
      return () => text;
    }
    case 'template': {
      const text = JSON.stringify(compileTemplate(spec.template, Object.keys(ctx.vars))(ctx.vars));
      return () => text;
    }
    case 'counter': {
      let next = spec.start;
      return () => {
        const text = numberText(next);
        next += spec.step;
        return text;
      };
    }
    case 'sine': {
      const { mean, amplitude, periodMs } = spec;
      const w = (2 * Math.PI) / periodMs;
      return (nowMs) => numberText(mean + amplitude * Math.sin(w * nowMs));
    }
    case 'randomWalk': {
      let value = spec.start;
      let first = true;
      return () => {
        if (first) first = false;
        else value = Math.min(spec.max, Math.max(spec.min, value + (random() * 2 - 1) * spec.step));
        return numberText(value);
      };
    }
    case 'gaussian': {
      // Box-Muller gives two independent normals per pair of draws; keep the second for the next call.
      let spare: number | null = null;
      return () => {
        let z: number;
        if (spare !== null) {
          z = spare;
          spare = null;
        } else {
          const u = 1 - random(); // (0, 1]: log(0) is -Infinity
          const v = random();
          const r = Math.sqrt(-2 * Math.log(u));
          z = r * Math.cos(2 * Math.PI * v);
          spare = r * Math.sin(2 * Math.PI * v);
        }
        return numberText(spec.mean + spec.stddev * z);
      };
    }
    case 'uniform': {
      const span = spec.max - spec.min;
      return () => numberText(spec.min + random() * span);
    }
    case 'enum': {
      const texts = spec.values.map((v) => JSON.stringify(v));
      return () => texts[Math.floor(random() * texts.length)]!;
    }
    case 'bytes': {
      // `size` base64 characters (rounded up to a multiple of 4) at a random offset of the shared pool.
      const length = Math.ceil(spec.size / 4) * 4;
      const chars = pool();
      if (length === 0) return () => '""';
      if (length > chars.length) {
        const text = JSON.stringify(chars.repeat(Math.ceil(length / chars.length)).slice(0, length));
        return () => text;
      }
      const slots = Math.floor((chars.length - length) / 4) + 1;
      return () => {
        const start = Math.floor(random() * slots) * 4;
        return '"' + chars.slice(start, start + length) + '"';
      };
    }
    case 'timestamp':
      return (nowMs) => '"' + new Date(nowMs).toISOString() + '"';
  }
}

/** Random-looking bytes from the stream's PRNG, generated once. */
function randomBuffer(size: number, random: () => number): Buffer {
  const buffer = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) buffer[i] = Math.floor(random() * 256);
  return buffer;
}

/**
 * Compiles a payload spec for one stream. `json`: a fresh Buffer per message with each field's generated
 * value; `bytes`: the same pre-generated Buffer every time (do not mutate it).
 */
export function createPayloadBuilder(spec: PayloadSpec, ctx: PayloadContext): PayloadBuilder {
  if (spec.kind === 'bytes') {
    const body = randomBuffer(spec.size, ctx.random);
    return () => body;
  }
  const entries = Object.entries(spec.fields);
  if (entries.length === 0) {
    const empty = Buffer.from('{}');
    return () => empty;
  }
  const prefixes = entries.map(([key], i) => (i === 0 ? '{' : ',') + JSON.stringify(key) + ':');
  const values = entries.map(([, field]) => fieldText(field, ctx));
  const n = entries.length;
  return (nowMs) => {
    let text = '';
    for (let i = 0; i < n; i++) text += prefixes[i]! + values[i]!(nowMs);
    return Buffer.from(text + '}', 'utf8');
  };
}
