/**
 * "Did you mean ...?" for configuration keys, scenario keys and metric names. Shared by broker/ and
 * simulator/ (it knows nothing about MQTT and does no I/O).
 */

/** Levenshtein distance: insertions, deletions and substitutions, one row of memory. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/**
 * The candidate nearest to `name` within `maxDistance` (ties: the first), compared after `normalize`;
 * undefined when none is that close.
 */
export function closestMatch<T extends string>(name: string, candidates: readonly T[], maxDistance: number, normalize: (s: string) => string = (s) => s.toLowerCase()): T | undefined {
  const wanted = normalize(name);
  let best: T | undefined;
  let bestDistance = maxDistance + 1;
  for (const candidate of candidates) {
    const d = editDistance(wanted, normalize(candidate));
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}
