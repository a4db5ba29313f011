/**
 * A binary min-heap of entries that know their own position, so one can be removed or moved in
 * O(log n) without a search, and scheduling one allocates nothing: the shard's scheduler (publications,
 * connects, stops) and the clients' timer queue both keep their entries in one. Plain functions over an
 * array, no class, so the hot paths stay monomorphic. No I/O.
 */

export interface HeapEntry {
  /** The key: a time in ms. */
  atMs: number;
  /** Position in the heap while in it; the owner gives it meaning outside (e.g. -1: not in the heap). */
  heapIndex: number;
}

/** Adds `entry` (not in the heap) in key order. */
export function heapPush<T extends HeapEntry>(heap: T[], entry: T): void {
  entry.heapIndex = heap.length;
  heap.push(entry);
  siftUp(heap, entry.heapIndex);
}

/** Takes out the entry at position `i`; the removed entry's heapIndex is left for the caller to set. */
export function heapRemoveAt<T extends HeapEntry>(heap: T[], i: number): void {
  const last = heap.pop()!;
  if (i < heap.length) {
    heap[i] = last;
    last.heapIndex = i;
    siftDown(heap, i);
    siftUp(heap, last.heapIndex);
  }
}

function siftUp<T extends HeapEntry>(h: T[], i: number): void {
  const e = h[i]!;
  while (i > 0) {
    const p = (i - 1) >> 1;
    const parent = h[p]!;
    if (parent.atMs <= e.atMs) break;
    h[i] = parent;
    parent.heapIndex = i;
    i = p;
  }
  h[i] = e;
  e.heapIndex = i;
}

function siftDown<T extends HeapEntry>(h: T[], i: number): void {
  const n = h.length;
  const e = h[i]!;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    const c = r < n && h[r]!.atMs < h[l]!.atMs ? r : l;
    const child = h[c]!;
    if (child.atMs >= e.atMs) break;
    h[i] = child;
    child.heapIndex = i;
    i = c;
  }
  h[i] = e;
  e.heapIndex = i;
}
