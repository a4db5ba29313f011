/**
 * A manual clock for code that takes ClientTimers (the lean client, its timer queue): timers fire only
 * inside advance(), in time order. Tracks what is pending, how many at most, and every delay asked for.
 */
import type { ClientTimers } from '../../simulator/client/types.js';

export class FakeTimers implements ClientTimers {
  private seq = 0;
  readonly pending = new Map<number, { at: number; fn: () => void; ms: number }>();
  maxPending = 0;
  readonly delays: number[] = [];

  constructor(public t = 1_000_000) {}

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { at: this.t + ms, fn, ms });
    this.delays.push(ms);
    this.maxPending = Math.max(this.maxPending, this.pending.size);
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.pending) if (e[1].at <= end && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.pending.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}
