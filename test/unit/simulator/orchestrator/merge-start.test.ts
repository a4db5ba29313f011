import { describe, expect, it } from 'vitest';
import { staggeredStartNote } from '../../../../simulator/orchestrator/merge.js';

const slice = (index: number, timelineStartedAt?: string): { shard: { index: number; count: number }; timelineStartedAt?: string } =>
  timelineStartedAt === undefined ? { shard: { index, count: 3 } } : { shard: { index, count: 3 }, timelineStartedAt };

describe('mqtt-sim merge: did the slices share one t=0?', () => {
  it('says nothing when every slice started its timeline at the same instant (run --start-at)', () => {
    expect(staggeredStartNote([slice(1, '2026-11-26T10:00:00.000Z'), slice(2, '2026-11-26T10:00:00.000Z'), slice(3, '2026-11-26T10:00:00.000Z')])).toBeNull();
  });

  it('ignores a slice whose timeline never started (interrupted before t=0)', () => {
    expect(staggeredStartNote([slice(1, '2026-11-26T10:00:00.000Z'), slice(2), slice(3, '2026-11-26T10:00:00.000Z')])).toBeNull();
  });

  it('names the earliest and the latest slice and the spread when they started apart', () => {
    expect(staggeredStartNote([slice(1, '2026-11-26T10:00:01.250Z'), slice(2, '2026-11-26T10:00:00.000Z'), slice(3, '2026-11-26T10:00:00.400Z')])).toBe(
      'the slices did not share one t=0: their timelines started up to 1250 ms apart (slice 2/3 at 2026-11-26T10:00:00.000Z, slice 1/3 at 2026-11-26T10:00:01.250Z), ' +
        'so deliveries between slices near the start and the end may be indeterminate (a subscriber in one slice not yet, or no longer, subscribed while another published); ' +
        'start every slice with the same --start-at TIME',
    );
  });
});
