import { describe, expect, it } from 'vitest';
import { parseShardFlag } from '../../../cli/commands/run.js';

describe('mqtt-sim run --shard INDEX/COUNT', () => {
  it('reads a 1-based slice of a count', () => {
    expect(parseShardFlag('2/4')).toEqual({ index: 2, count: 4 });
    expect(parseShardFlag(' 1 / 1 ')).toEqual({ index: 1, count: 1 });
  });

  it.each([
    ['abc', '--shard: expected INDEX/COUNT such as 2/4 (run the 2nd of 4 slices), got "abc"'],
    ['0/4', '--shard 0/4: the slice index must be from 1 to 4 (slices are numbered from 1)'],
    ['5/4', '--shard 5/4: the slice index must be from 1 to 4 (slices are numbered from 1)'],
    ['1/0', '--shard 1/0: the number of slices must be at least 1'],
  ])('refuses %s with a message naming the fix', (value, message) => {
    expect(() => parseShardFlag(value)).toThrow(message);
  });
});
