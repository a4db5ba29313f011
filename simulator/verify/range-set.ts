/**
 * A compact set of non-negative integers (sequence numbers), stored as sorted, disjoint, non-adjacent
 * inclusive ranges in one flat array [start0, end0, start1, end1, ...]. An in-order stream stays one
 * range whatever its length; gaps (losses) and islands (reordering) cost two numbers each.
 *
 * add() is O(1) when the value extends (or falls in) the last range, the common case for a stream
 * read in order, and a binary search plus an array splice otherwise.
 */
export class RangeSet {
  /** Flat [start, end, ...]; invariant: start <= end, end + 1 < next start. */
  private r: number[];
  private count: number;

  constructor() {
    this.r = [];
    this.count = 0;
  }

  /** Number of integers in the set. */
  get size(): number {
    return this.count;
  }

  /** Number of disjoint ranges (a measure of fragmentation and memory). */
  get rangeCount(): number {
    return this.r.length >> 1;
  }

  get isEmpty(): boolean {
    return this.count === 0;
  }

  /** Smallest member, or -1 when empty. */
  get min(): number {
    return this.r.length === 0 ? -1 : this.r[0]!;
  }

  /** Largest member, or -1 when empty. */
  get max(): number {
    return this.r.length === 0 ? -1 : this.r[this.r.length - 1]!;
  }

  /** Adds `n` (a non-negative integer); returns true when it was not in the set yet. */
  add(n: number): boolean {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`RangeSet.add: expected a non-negative integer, got ${n}`);
    const r = this.r;
    const len = r.length;
    if (len === 0) {
      r.push(n, n);
      this.count = 1;
      return true;
    }
    const lastEnd = r[len - 1]!;
    // Fast paths: the in-order stream.
    if (n === lastEnd + 1) {
      r[len - 1] = n;
      this.count++;
      return true;
    }
    if (n > lastEnd) {
      r.push(n, n);
      this.count++;
      return true;
    }
    if (n >= r[len - 2]!) return false;
    return this.addSlow(n);
  }

  private addSlow(n: number): boolean {
    const r = this.r;
    // i = index (in ranges) of the first range whose start is > n.
    const i = this.upperBound(n);
    if (i > 0 && n <= r[2 * i - 1]!) return false; // inside the previous range
    const joinsPrev = i > 0 && r[2 * i - 1] === n - 1;
    const joinsNext = 2 * i < r.length && r[2 * i] === n + 1;
    if (joinsPrev && joinsNext) {
      r[2 * i - 1] = r[2 * i + 1]!;
      r.splice(2 * i, 2);
    } else if (joinsPrev) {
      r[2 * i - 1] = n;
    } else if (joinsNext) {
      r[2 * i] = n;
    } else {
      r.splice(2 * i, 0, n, n);
    }
    this.count++;
    return true;
  }

  /** Index (in ranges, not array slots) of the first range whose start is greater than n. */
  private upperBound(n: number): number {
    const r = this.r;
    let lo = 0;
    let hi = r.length >> 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (r[2 * mid]! <= n) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  has(n: number): boolean {
    const r = this.r;
    if (!Number.isInteger(n)) return false;
    const len = r.length;
    if (len === 0 || n < r[0]! || n > r[len - 1]!) return false;
    const i = this.upperBound(n);
    return i > 0 && n <= r[2 * i - 1]!;
  }

  /** Adds every integer of [start, end] (inclusive). */
  addRange(start: number, end: number): void {
    if (end < start) return;
    if (this.r.length === 0 || start > this.r[this.r.length - 1]! + 1) {
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0) {
        throw new RangeError(`RangeSet.addRange: invalid range [${start}, ${end}]`);
      }
      this.r.push(start, end);
      this.count += end - start + 1;
      return;
    }
    this.unionInPlace(RangeSet.fromJSON([start, end]));
  }

  /** A new set holding the members of both. */
  union(other: RangeSet): RangeSet {
    const out = new RangeSet();
    out.setFlat(mergeFlat(this.r, other.r));
    return out;
  }

  /** Adds every member of `other` to this set; returns this. */
  unionInPlace(other: RangeSet): this {
    if (other.r.length === 0) return this;
    const r = this.r;
    // Fast path: other lies entirely after this set (shards appending, ledgers merged in order).
    if (r.length === 0 || other.r[0]! > r[r.length - 1]! + 1) {
      for (let k = 0; k < other.r.length; k++) r.push(other.r[k]!);
      this.count += other.count;
      return this;
    }
    this.setFlat(mergeFlat(r, other.r));
    return this;
  }

  /** Number of members present in both sets. */
  intersectionSize(other: RangeSet): number {
    const a = this.r;
    const b = other.r;
    let i = 0;
    let j = 0;
    let total = 0;
    while (i < a.length && j < b.length) {
      const lo = Math.max(a[i]!, b[j]!);
      const hi = Math.min(a[i + 1]!, b[j + 1]!);
      if (lo <= hi) total += hi - lo + 1;
      if (a[i + 1]! < b[j + 1]!) i += 2;
      else j += 2;
    }
    return total;
  }

  /** Number of members of this set that are not in `other` (e.g. acknowledged but never received). */
  differenceSize(other: RangeSet): number {
    return this.count - this.intersectionSize(other);
  }

  /** A new set with the members of this set that are not in `other`. */
  difference(other: RangeSet): RangeSet {
    const a = this.r;
    const b = other.r;
    const out: number[] = [];
    let j = 0;
    for (let i = 0; i < a.length; i += 2) {
      let start = a[i]!;
      const end = a[i + 1]!;
      while (j < b.length && b[j + 1]! < start) j += 2;
      let k = j;
      while (start <= end) {
        if (k >= b.length || b[k]! > end) {
          out.push(start, end);
          break;
        }
        if (b[k]! > start) out.push(start, b[k]! - 1);
        start = b[k + 1]! + 1;
        k += 2;
      }
    }
    const set = new RangeSet();
    set.setFlat(out);
    return set;
  }

  /** A new set with the members present in both sets (linear in the number of ranges). */
  intersection(other: RangeSet): RangeSet {
    const a = this.r;
    const b = other.r;
    const out: number[] = [];
    let i = 0;
    let j = 0;
    while (i < a.length && j < b.length) {
      const lo = Math.max(a[i]!, b[j]!);
      const hi = Math.min(a[i + 1]!, b[j + 1]!);
      if (lo <= hi) out.push(lo, hi);
      if (a[i + 1]! < b[j + 1]!) i += 2;
      else j += 2;
    }
    const set = new RangeSet();
    set.setFlat(out);
    return set;
  }

  /** Calls `fn(start, end)` for each range in ascending order. */
  forEachRange(fn: (start: number, end: number) => void): void {
    const r = this.r;
    for (let i = 0; i < r.length; i += 2) fn(r[i]!, r[i + 1]!);
  }

  clone(): RangeSet {
    const out = new RangeSet();
    out.r = this.r.slice();
    out.count = this.count;
    return out;
  }

  equals(other: RangeSet): boolean {
    if (this.count !== other.count || this.r.length !== other.r.length) return false;
    for (let i = 0; i < this.r.length; i++) if (this.r[i] !== other.r[i]) return false;
    return true;
  }

  /** Flat [start, end, start, end, ...], ascending; a copy. */
  toJSON(): number[] {
    return this.r.slice();
  }

  /**
   * From a flat [start, end, ...] array. Ranges may come in any order and may overlap or touch (they
   * are normalized); throws a RangeError for an odd length, a negative or non-integer bound, or start > end.
   */
  static fromJSON(flat: readonly number[]): RangeSet {
    if (flat.length % 2 !== 0) throw new RangeError(`RangeSet.fromJSON: odd length ${flat.length}`);
    let ordered = true;
    for (let i = 0; i < flat.length; i += 2) {
      const s = flat[i]!;
      const e = flat[i + 1]!;
      if (!Number.isSafeInteger(s) || !Number.isSafeInteger(e) || s < 0 || e < s) {
        throw new RangeError(`RangeSet.fromJSON: invalid range [${s}, ${e}] at index ${i}`);
      }
      if (i > 0 && s <= flat[i - 1]! + 1) ordered = false;
    }
    const out = new RangeSet();
    if (ordered) {
      out.setFlat(flat.slice());
      return out;
    }
    const pairs: Array<[number, number]> = [];
    for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i]!, flat[i + 1]!]);
    pairs.sort((x, y) => x[0] - y[0]);
    const norm: number[] = [];
    for (const [s, e] of pairs) {
      const n = norm.length;
      if (n > 0 && s <= norm[n - 1]! + 1) {
        if (e > norm[n - 1]!) norm[n - 1] = e;
      } else {
        norm.push(s, e);
      }
    }
    out.setFlat(norm);
    return out;
  }

  /** Takes ownership of an already normalized flat array. */
  private setFlat(flat: number[]): void {
    let count = 0;
    for (let i = 0; i < flat.length; i += 2) count += flat[i + 1]! - flat[i]! + 1;
    this.r = flat;
    this.count = count;
  }
}

/** Linear merge of two normalized flat range arrays into a normalized one. */
function mergeFlat(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let s: number;
    let e: number;
    if (j >= b.length || (i < a.length && a[i]! <= b[j]!)) {
      s = a[i]!;
      e = a[i + 1]!;
      i += 2;
    } else {
      s = b[j]!;
      e = b[j + 1]!;
      j += 2;
    }
    const n = out.length;
    if (n > 0 && s <= out[n - 1]! + 1) {
      if (e > out[n - 1]!) out[n - 1] = e;
    } else {
      out.push(s, e);
    }
  }
  return out;
}
