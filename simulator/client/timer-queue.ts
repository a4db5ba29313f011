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
import { heapPush, heapRemoveAt, type HeapEntry } from '../../common/indexed-heap.js';
import type { ClientTimers } from './types.js';

export interface TimerEntry extends HeapEntry {
  /** Deadline on the timers' clock (meaningful while queued). */
  atMs: number;
  /** Position in the heap; NOT_QUEUED when not armed, DUE while its wake-up is firing it. */
  heapIndex: number;
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
    if (entry.heapIndex >= 0) heapRemoveAt(this.heap, entry.heapIndex);
    entry.atMs = this.timers.now() + Math.max(0, ms);
    heapPush(this.heap, entry);
    this.wake();
  }

  disarm(entry: TimerEntry): void {
    const i = entry.heapIndex;
    if (i === NOT_QUEUED) return;
    entry.heapIndex = NOT_QUEUED;
    if (i === DUE) return;
    heapRemoveAt(this.heap, i);
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
    if (this.handle !== undefined && this.handleAt <= first.atMs) return;
    this.clearHandle();
    this.handleAt = first.atMs;
    this.handle = this.timers.setTimeout(this.run, Math.max(0, first.atMs - this.timers.now()));
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
    while (heap.length > 0 && heap[0]!.atMs <= now) {
      const entry = heap[0]!;
      heapRemoveAt(this.heap, 0);
      entry.heapIndex = DUE;
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
        if (entry.heapIndex !== DUE) continue;
        entry.heapIndex = NOT_QUEUED;
        entry.onTimer();
      }
    } finally {
      // A callback threw (clients catch their own errors, so only a bug gets here): the entries after it
      // did not fire; they stay due for the next wake-up.
      for (let j = i + 1; j < due.length; j++) {
        const entry = due[j]!;
        if (entry.heapIndex === DUE) {
          entry.heapIndex = NOT_QUEUED;
          this.arm(entry, 0);
        }
      }
      this.wake();
    }
  };
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
