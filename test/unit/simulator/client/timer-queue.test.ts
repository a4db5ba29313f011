/**
 * The timer queue the lean clients of a shard share: one underlying timer, entries fire in deadline
 * order once due, disarm and re-arm work at any time (also from a callback of the same wake-up), and
 * what a callback arms waits for the next wake-up.
 */
import { describe, expect, it } from 'vitest';
import { NOT_QUEUED, TimerQueue, type TimerEntry } from '../../../../simulator/client/timer-queue.js';
import { FakeTimers } from '../../../helpers/fake-timers.js';

function entry(name: string, fired: string[], onTimer?: () => void): TimerEntry {
  return { atMs: 0, heapIndex: NOT_QUEUED, onTimer: onTimer ?? (() => fired.push(name)) };
}

describe('TimerQueue', () => {
  it('fires entries in deadline order, each once its deadline has passed, on one underlying timer', () => {
    const timers = new FakeTimers(1_000);
    const queue = new TimerQueue(timers);
    const fired: string[] = [];
    const names = ['e', 'b', 'd', 'a', 'c'];
    const delays = [500, 200, 400, 100, 300];
    names.forEach((n, i) => queue.arm(entry(n, fired), delays[i]!));
    timers.advance(99);
    expect(fired).toEqual([]);
    timers.advance(1);
    expect(fired).toEqual(['a']);
    timers.advance(400);
    expect(fired).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(timers.maxPending).toBe(1);
    expect(timers.pending.size).toBe(0);
    expect(queue.size).toBe(0);
  });

  it('re-arming moves the deadline; disarming cancels it and the last disarm clears the underlying timer', () => {
    const timers = new FakeTimers(1_000);
    const queue = new TimerQueue(timers);
    const fired: string[] = [];
    const a = entry('a', fired);
    const b = entry('b', fired);
    queue.arm(a, 100);
    queue.arm(b, 200);
    queue.arm(a, 300);
    timers.advance(250);
    expect(fired).toEqual(['b']);
    queue.disarm(a);
    expect(a.heapIndex).toBe(NOT_QUEUED);
    expect(timers.pending.size).toBe(0);
    timers.advance(1000);
    expect(fired).toEqual(['b']);
  });

  it('a callback may disarm or re-arm another entry due in the same wake-up; that entry then does not fire', () => {
    const timers = new FakeTimers(1_000);
    const queue = new TimerQueue(timers);
    const fired: string[] = [];
    const b = entry('b', fired);
    const c = entry('c', fired);
    const a = entry('a', fired, () => {
      fired.push('a');
      queue.disarm(b);
      queue.arm(c, 50);
    });
    queue.arm(a, 100);
    queue.arm(b, 100);
    queue.arm(c, 100);
    timers.advance(100);
    expect(fired).toEqual(['a']);
    timers.advance(50);
    expect(fired).toEqual(['a', 'c']);
  });

  it('an entry armed with 0 ms by its own callback fires at the next wake-up, not in the same turn', () => {
    const timers = new FakeTimers(1_000);
    const queue = new TimerQueue(timers);
    let count = 0;
    const again: TimerEntry = {
      atMs: 0,
      heapIndex: NOT_QUEUED,
      onTimer: () => {
        count++;
        if (count < 3) queue.arm(again, 0);
      },
    };
    let wakeUps = 0;
    const setTimeout = timers.setTimeout.bind(timers);
    timers.setTimeout = (fn, ms) => setTimeout(() => { wakeUps++; fn(); }, ms);
    queue.arm(again, 10);
    timers.advance(10);
    expect(count).toBe(3);
    expect(wakeUps).toBe(3);
  });

  it('a wake-up that finds nothing due (the earliest entry was disarmed) re-arms for the next deadline', () => {
    const timers = new FakeTimers(1_000);
    const queue = new TimerQueue(timers);
    const fired: string[] = [];
    const a = entry('a', fired);
    queue.arm(a, 100);
    queue.arm(entry('b', fired), 1000);
    queue.disarm(a);
    timers.advance(999);
    expect(fired).toEqual([]);
    timers.advance(1);
    expect(fired).toEqual(['b']);
  });
});
