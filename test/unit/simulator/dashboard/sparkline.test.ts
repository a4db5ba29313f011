import { describe, expect, it } from 'vitest';
import { sparkline } from '../../../../simulator/dashboard/sparkline.js';

describe('sparkline', () => {
  it('scales values to eight blocks, zero as the lowest', () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7, 8], 9)).toBe('▁▁▂▃▄▅▆▇█');
  });

  it('grows from the left until full, then shows the latest `width` values', () => {
    expect(sparkline([8, 8], 5)).toBe('██   ');
    expect(sparkline([8, 0, 8, 0, 8, 4], 3)).toBe('▁█▄');
  });

  it('uses a given maximum, so a gauge reads against its target', () => {
    expect(sparkline([50, 100], 2, 100)).toBe('▄█');
    expect(sparkline([0, 0], 2)).toBe('▁▁');
    expect(sparkline([1, 2], 0)).toBe('');
  });
});
