/**
 * The unit syntax of scenario files: durations (`250ms`, `1.5s`, `2m`, `1h`), rates (`200/s`, `5/m`,
 * `1/h`), percentages (`10%`) and duration ranges (`2s..15s`). Parsers return a result instead of
 * throwing so the schema can attach the message to the YAML path it came from.
 */

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(message: string): Parsed<T> => ({ ok: false, message });

const unitMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
type TimeUnit = keyof typeof unitMs;

const DURATION = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)$/;
const RATE = /^(\d+(?:\.\d+)?|\.\d+)\s*\/\s*(ms|s|m|h)$/;
const PERCENT = /^(-?\d+(?:\.\d+)?|\.\d+)\s*%$/;

/** How a YAML value reads in a message: `"fast"`, `3`, `a list`, `nothing`. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

/** Milliseconds from `250ms`, `1.5s`, `2m`, `1h` or `0`. A plain number other than 0 is rejected with the fix. */
export function parseDuration(input: unknown): Parsed<number> {
  if (input === 0 || input === '0') return ok(0);
  if (typeof input === 'number' && Number.isFinite(input)) {
    return fail(`expected a duration with a unit, got the plain number ${input}; write ${input}s for seconds or ${input}ms for milliseconds`);
  }
  if (typeof input !== 'string') return fail(`expected a duration like 500ms, 1s, 2m or 1h, got ${describeValue(input)}`);
  const text = input.trim();
  const match = DURATION.exec(text);
  if (match === null) {
    if (/^-/.test(text)) return fail(`expected a duration of 0 or more, got ${JSON.stringify(input)}`);
    if (/^\d+(?:\.\d+)?$/.test(text)) return fail(`expected a duration with a unit, got ${JSON.stringify(input)}; write ${text}s for seconds or ${text}ms for milliseconds`);
    return fail(`expected a duration like 500ms, 1s, 2m or 1h, got ${JSON.stringify(input)}`);
  }
  // Rounded to a microsecond so 0.1s + 0.2s style sums stay exact enough to compare.
  return ok(Math.round(Number(match[1]) * unitMs[match[2] as TimeUnit] * 1000) / 1000);
}

/** Events per second from `200/s`, `5/m`, `1/h` (or `20/ms`). Must be above 0. */
export function parseRate(input: unknown): Parsed<number> {
  if (typeof input === 'number') return fail(`expected a rate with a unit, got the plain number ${input}; write ${input}/s (per second) or ${input}/m (per minute)`);
  if (typeof input !== 'string') return fail(`expected a rate like 200/s, 5/m or 1/h, got ${describeValue(input)}`);
  const match = RATE.exec(input.trim());
  if (match === null) return fail(`expected a rate like 200/s, 5/m or 1/h, got ${JSON.stringify(input)}`);
  const perSecond = (Number(match[1]) * 1000) / unitMs[match[2] as TimeUnit];
  if (!(perSecond > 0)) return fail(`expected a rate above 0, got ${JSON.stringify(input)}`);
  return ok(perSecond);
}

/** A fraction from `10%` (0.1) or a plain number (0.1 stays 0.1). */
export function parsePercentage(input: unknown): Parsed<number> {
  if (typeof input === 'number' && Number.isFinite(input)) return ok(input);
  if (typeof input !== 'string') return fail(`expected a percentage like 10% or a fraction like 0.1, got ${describeValue(input)}`);
  const match = PERCENT.exec(input.trim());
  if (match === null) return fail(`expected a percentage like 10% or a fraction like 0.1, got ${JSON.stringify(input)}`);
  return ok(Number(match[1]) / 100);
}

export interface DurationRange {
  /** Milliseconds. */
  min: number;
  max: number;
}

/** `2s..15s` → { min: 2000, max: 15000 }; a single duration gives min = max. */
export function parseDurationRange(input: unknown): Parsed<DurationRange> {
  if (typeof input === 'string' && input.includes('..')) {
    const [low, high, ...rest] = input.split('..');
    if (rest.length > 0) return fail(`expected a range like 2s..15s, got ${JSON.stringify(input)}`);
    const min = parseDuration(low!.trim());
    if (!min.ok) return fail(`the lower end of ${JSON.stringify(input)}: ${min.message}`);
    const max = parseDuration(high!.trim());
    if (!max.ok) return fail(`the upper end of ${JSON.stringify(input)}: ${max.message}`);
    if (min.value > max.value) return fail(`expected the lower end first, got ${JSON.stringify(input)}; write ${high!.trim()}..${low!.trim()}`);
    return ok({ min: min.value, max: max.value });
  }
  const single = parseDuration(input);
  if (!single.ok) return fail(`${single.message} (or a range like 2s..15s)`);
  return ok({ min: single.value, max: single.value });
}

/** The shortest readable form of a duration in milliseconds: `250ms`, `1.5s`, `2m`, `1h30m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms === 0) return '0s';
  if (ms < 1000) return `${trim(ms)}ms`;
  if (ms < 60_000 || ms % 1000 !== 0) return `${trim(ms / 1000)}s`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return `${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${s > 0 ? `${s}s` : ''}`;
}

/** A rate in events per second, as the scenario would write it: `200/s`, `0.5/s`. */
export function formatRate(perSecond: number): string {
  if (perSecond === Infinity) return 'unlimited';
  return `${trim(perSecond)}/s`;
}

function trim(n: number): string {
  return String(Number(n.toFixed(3)));
}
