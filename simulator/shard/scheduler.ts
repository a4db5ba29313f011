/**
 * One timer per shard instead of one per device: a binary min-heap of timed entries (publications,
 * connects, stops) keyed by their scheduled wall-clock time. Entries fire in time order; late entries
 * fire at once and report how late they were (schedule slip), so a saturated generator shows up.
 */

import { heapPush, heapRemoveAt, type HeapEntry } from '../../common/indexed-heap.js';

export interface Timed extends HeapEntry {
  /** Scheduled time, epoch ms. */
  atMs: number;
  /** Position in the heap, -1 when not scheduled (maintained by the scheduler). */
  heapIndex: number;
  /** Called at (or after) atMs with the current time; may call schedule(this) again for the next time. */
  fire(nowMs: number): void;
}

/** At most this many entries fire per turn; the rest wait for the next turn so socket I/O is not starved. */
const BATCH = 2000;

export class Scheduler {
  private readonly heap: Timed[] = [];
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private immediate: NodeJS.Immediate | null = null;
  private stopped = false;

  constructor(
    private readonly now: () => number,
    private readonly onSlip: (lateMs: number) => void,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  schedule(entry: Timed): void {
    if (this.stopped) return;
    if (entry.heapIndex >= 0) this.remove(entry);
    heapPush(this.heap, entry);
    this.arm();
  }

  remove(entry: Timed): void {
    const i = entry.heapIndex;
    if (i < 0) return;
    heapRemoveAt(this.heap, i);
    entry.heapIndex = -1;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
    for (const e of this.heap) e.heapIndex = -1;
    this.heap.length = 0;
  }

  private arm(): void {
    if (this.immediate || this.heap.length === 0) return;
    const at = this.heap[0]!.atMs;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.run, Math.max(0, at - this.now()));
  }

  private readonly run = (): void => {
    this.timer = null;
    this.timerAt = Infinity;
    this.immediate = null;
    const now = this.now();
    let fired = 0;
    while (this.heap.length > 0 && this.heap[0]!.atMs <= now) {
      if (fired++ >= BATCH) {
        this.immediate = setImmediate(this.run);
        return;
      }
      const entry = this.heap[0]!;
      this.onSlip(now - entry.atMs);
      this.remove(entry);
      entry.fire(now);
      if (this.stopped) return;
    }
    this.arm();
  };
}
