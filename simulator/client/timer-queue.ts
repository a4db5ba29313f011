/**
 * One underlying timer for all the clients that share a ClientTimers (a shard's clients share one):
 * a binary min-heap of their deadlines. A client is its own heap entry, so arming its one timer
 * allocates nothing. A Node Timeout per client would cost about 170 bytes plus a closure, and a new
 * Timeout for every arm (connect timeout, then keepalive, then backoff...), which thousands of idle
 * devices per shard pay for nothing.
 *
 * Semantics match one setTimeout per client: an entry fires once its deadline has passed on the
 * timers' clock, in deadline order, and an entry armed while the queue fires (a 0 ms backoff, say)
 * waits for the next wake-up instead of firing in the same turn.
 */
import type { ClientTimers } from './types.js';

export interface TimerEntry {
  /** Deadline on the timers' clock (meaningful while queued). */
  timerAt: number;
  /** Position in the heap; NOT_QUEUED when not armed, DUE while its wake-up is firing it. */
  timerIndex: number;
  onTimer(): void;
}

export const NOT_QUEUED = -1;
const DUE = -2;

export class TimerQueue {
  private readonly heap: TimerEntry[] = [];
  /** The one underlying timer, set for the earliest deadline (or earlier: it re-arms when nothing is due). */
  private handle: unknown = undefined;
  private handleAt = Infinity;

  constructor(private readonly timers: ClientTimers) {}

  get size(): number {
    return this.heap.length;
  }

  /** (Re-)arms the entry to fire `ms` from now. */
  arm(entry: TimerEntry, ms: number): void {
    if (entry.timerIndex >= 0) this.removeAt(entry.timerIndex);
    entry.timerAt = this.timers.now() + Math.max(0, ms);
    entry.timerIndex = this.heap.length;
    this.heap.push(entry);
    this.up(entry.timerIndex);
    this.wake();
  }

  disarm(entry: TimerEntry): void {
    const i = entry.timerIndex;
    if (i === NOT_QUEUED) return;
    entry.timerIndex = NOT_QUEUED;
    if (i === DUE) return;
    this.removeAt(i);
    if (this.heap.length === 0) this.clearHandle();
  }

  /**
   * Keeps the underlying timer at or before the earliest deadline. A later earliest deadline (the first
   * entry was disarmed) keeps the timer: it fires early, finds nothing due and re-arms, which is cheaper
   * than a new Timeout on every connect.
   */
  private wake(): void {
    const first = this.heap[0];
    if (first === undefined) {
      this.clearHandle();
      return;
    }
    if (this.handle !== undefined && this.handleAt <= first.timerAt) return;
    this.clearHandle();
    this.handleAt = first.timerAt;
    this.handle = this.timers.setTimeout(this.run, Math.max(0, first.timerAt - this.timers.now()));
  }

  private clearHandle(): void {
    if (this.handle !== undefined) {
      this.timers.clearTimeout(this.handle);
      this.handle = undefined;
    }
    this.handleAt = Infinity;
  }

  private readonly run = (): void => {
    this.handle = undefined;
    this.handleAt = Infinity;
    const now = this.timers.now();
    // Take every due entry out first: what they arm while firing waits for the next wake-up.
    let due: TimerEntry[] | null = null;
    const heap = this.heap;
    while (heap.length > 0 && heap[0]!.timerAt <= now) {
      const entry = heap[0]!;
      this.removeAt(0);
      entry.timerIndex = DUE;
      (due ??= []).push(entry);
    }
    if (due === null) {
      this.wake();
      return;
    }
    let i = 0;
    try {
      for (; i < due.length; i++) {
        const entry = due[i]!;
        // Disarmed or re-armed by an earlier callback of this turn: not due any more.
        if (entry.timerIndex !== DUE) continue;
        entry.timerIndex = NOT_QUEUED;
        entry.onTimer();
      }
    } finally {
      // A callback threw (clients catch their own errors, so only a bug gets here): the entries after it
      // did not fire; they stay due for the next wake-up.
      for (let j = i + 1; j < due.length; j++) {
        const entry = due[j]!;
        if (entry.timerIndex === DUE) {
          entry.timerIndex = NOT_QUEUED;
          this.arm(entry, 0);
        }
      }
      this.wake();
    }
  };

  private removeAt(i: number): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (i < heap.length) {
      heap[i] = last;
      last.timerIndex = i;
      this.down(i);
      this.up(last.timerIndex);
    }
  }

  private up(i: number): void {
    const h = this.heap;
    const e = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (parent.timerAt <= e.timerAt) break;
      h[i] = parent;
      parent.timerIndex = i;
      i = p;
    }
    h[i] = e;
    e.timerIndex = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    const e = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && h[r]!.timerAt < h[l]!.timerAt ? r : l;
      const child = h[c]!;
      if (child.timerAt >= e.timerAt) break;
      h[i] = child;
      child.timerIndex = i;
      i = c;
    }
    h[i] = e;
    e.timerIndex = i;
  }
}

/** One queue per ClientTimers object: every client built with the same timers shares its wake-ups. */
const queues = new WeakMap<ClientTimers, TimerQueue>();

export function timerQueueFor(timers: ClientTimers): TimerQueue {
  let queue = queues.get(timers);
  if (queue === undefined) {
    queue = new TimerQueue(timers);
    queues.set(timers, queue);
  }
  return queue;
}
