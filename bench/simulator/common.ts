/** Helpers shared by the simulator benchmark's parts: logging, rounding, spreads, a silent reporter. */
import { execFileSync } from 'node:child_process';
import { median as medianOf, min as minOf, max as maxOf } from '../lib/stats.js';
import type { Reporter } from '../../simulator/report/reporter.js';

/** Progress goes to stderr; stdout carries only the final JSON document. */
export function log(line: string): void {
  process.stderr.write(line + '\n');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function round(x: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}

/** A number with thousands separators, '—' when missing. */
export function fmt(x: number | null | undefined, decimals = 0): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  return x.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

export interface Spread {
  median: number | null;
  min: number | null;
  max: number | null;
  /** How many runs gave a value. */
  n: number;
}

/** Median, min and max of the finite values (nulls, NaN and undefined are skipped). */
export function spread(values: readonly (number | null | undefined)[], decimals = 0): Spread {
  const finite = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (finite.length === 0) return { median: null, min: null, max: null, n: 0 };
  return {
    median: round(medianOf(finite), decimals),
    min: round(minOf(finite), decimals),
    max: round(maxOf(finite), decimals),
    n: finite.length,
  };
}

export function spreadText(s: Spread, decimals = 0): string {
  return `${fmt(s.median, decimals)} (${fmt(s.min, decimals)}–${fmt(s.max, decimals)})`;
}

/** A Reporter that prints nothing: the benchmark reads the RunResult instead. */
export const silentReporter: Reporter = {
  start: () => undefined,
  phase: () => undefined,
  point: () => undefined,
  event: () => undefined,
  finish: () => undefined,
};

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Bytes the broker has not read yet from its established connections on `port` (sum of Recv-Q of the
 * broker-side sockets, from `ss`), or null when ss is unavailable: data that clients counted as written
 * but that is still sitting in kernel buffers.
 */
export function brokerUnreadBytes(port: number): number | null {
  try {
    const out = execFileSync('ss', ['-tnH', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8', timeout: 5000 });
    let total = 0;
    for (const line of out.split('\n')) {
      const recvQ = Number(line.trim().split(/\s+/)[0]);
      if (Number.isFinite(recvQ)) total += recvQ;
    }
    return total;
  } catch {
    return null;
  }
}
