import { afterEach, describe, expect, it, vi } from 'vitest';
import { Scheduler, type Timed } from '../../../../simulator/shard/scheduler.js';

class Entry implements Timed {
  heapIndex = -1;
  constructor(public atMs: number, readonly name: string, readonly log: string[]) {}
  fire(): void {
    this.log.push(this.name);
  }
}

describe('Scheduler', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires entries in time order with one timer, reporting how late each fired', () => {
    vi.useFakeTimers({ now: 1000 });
    const slips: number[] = [];
    const scheduler = new Scheduler(() => Date.now(), (late) => slips.push(late));
    const log: string[] = [];
    for (const [at, name] of [[1030, 'c'], [1010, 'a'], [1020, 'b'], [1010, 'a2']] as const) scheduler.schedule(new Entry(at, name, log));
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(15);
    expect(log.sort()).toEqual(['a', 'a2']);
    vi.advanceTimersByTime(20);
    expect(log).toEqual(['a', 'a2', 'b', 'c']);
    expect(slips.every((s) => s >= 0)).toBe(true);
    expect(scheduler.size).toBe(0);
  });

  it('reschedules an entry that schedules itself again, and removes entries', () => {
    vi.useFakeTimers({ now: 0 });
    const scheduler = new Scheduler(() => Date.now(), () => undefined);
    const log: string[] = [];
    const periodic: Timed = {
      atMs: 10,
      heapIndex: -1,
      fire() {
        log.push(`tick@${this.atMs}`);
        this.atMs += 10;
        if (this.atMs <= 30) scheduler.schedule(this);
      },
    };
    const removed = new Entry(15, 'removed', log);
    scheduler.schedule(periodic);
    scheduler.schedule(removed);
    scheduler.remove(removed);
    vi.advanceTimersByTime(100);
    expect(log).toEqual(['tick@10', 'tick@20', 'tick@30']);
  });

  it('keeps heap order under many random inserts and removals', () => {
    vi.useFakeTimers({ now: 0 });
    const scheduler = new Scheduler(() => Date.now(), () => undefined);
    const fired: number[] = [];
    const entries: Timed[] = [];
    let x = 12345;
    for (let i = 0; i < 2000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const e: Timed = { atMs: x % 5000, heapIndex: -1, fire() { fired.push(this.atMs); } };
      entries.push(e);
      scheduler.schedule(e);
    }
    for (let i = 0; i < 2000; i += 3) scheduler.remove(entries[i]!);
    vi.advanceTimersByTime(6000);
    expect(fired.length).toBe(2000 - Math.ceil(2000 / 3));
    expect([...fired].sort((a, b) => a - b)).toEqual(fired);
  });

  it('stop() cancels everything pending', () => {
    vi.useFakeTimers({ now: 0 });
    const scheduler = new Scheduler(() => Date.now(), () => undefined);
    const log: string[] = [];
    scheduler.schedule(new Entry(5, 'x', log));
    scheduler.stop();
    scheduler.schedule(new Entry(6, 'y', log));
    vi.advanceTimersByTime(50);
    expect(log).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
