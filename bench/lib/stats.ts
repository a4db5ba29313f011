/** Small helpers for benchmark samples: median, min, max and a rounded summary of the three. */

export interface Summary {
  median: number;
  min: number;
  max: number;
}

export function median(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function min(samples: readonly number[]): number {
  let m = Number.POSITIVE_INFINITY;
  for (const s of samples) if (s < m) m = s;
  return samples.length === 0 ? Number.NaN : m;
}

export function max(samples: readonly number[]): number {
  let m = Number.NEGATIVE_INFINITY;
  for (const s of samples) if (s > m) m = s;
  return samples.length === 0 ? Number.NaN : m;
}

/** Median, min and max, rounded to whole units (ops/s). */
export function summarize(samples: readonly number[]): Summary {
  return { median: Math.round(median(samples)), min: Math.round(min(samples)), max: Math.round(max(samples)) };
}

/** Ratio a/b rounded to 3 decimals. */
export function ratio(a: number, b: number): number {
  return Math.round((a / b) * 1000) / 1000;
}
