import { describe, expect, it } from 'vitest';
import { clipLine, layoutTable, truncate, type Column, type Line } from '../../../../simulator/dashboard/columns.js';

const text = (line: Line): string => line.map((s) => s.text).join('');

const columns: Column[] = [
  { header: 'fleet', align: 'left', drop: 0, shrinkTo: 6 },
  { header: 'out/s', align: 'right', drop: 0 },
  { header: 'p50 ms', align: 'right', drop: 2 },
  { header: 'p99 ms', align: 'right', drop: 1 },
];
const rows = [[{ text: 'pressure-sensors' }, { text: '3,412' }, { text: '3.1' }, { text: '18' }]];

describe('layoutTable', () => {
  it('aligns columns two spaces apart when they fit', () => {
    const t = layoutTable(columns, rows, 80);
    expect(text(t.header)).toBe('fleet             out/s  p50 ms  p99 ms');
    expect(text(t.rows[0]!)).toBe('pressure-sensors  3,412     3.1      18');
  });

  it('drops the columns with the highest drop number first, then shortens the name column', () => {
    expect(text(layoutTable(columns, rows, 33).rows[0]!)).toBe('pressure-sensors  3,412      18');
    expect(text(layoutTable(columns, rows, 20).rows[0]!)).toBe('pressure-sen…  3,412');
  });

  it('never returns a line wider than asked', () => {
    for (const w of [5, 10, 15]) for (const l of [layoutTable(columns, rows, w).header, ...layoutTable(columns, rows, w).rows]) expect(text(l).length).toBeLessThanOrEqual(w);
  });
});

describe('truncate and clipLine', () => {
  it('cut with an ellipsis', () => {
    expect(truncate('abcdef', 4)).toBe('abc…');
    expect(truncate('abc', 4)).toBe('abc');
    expect(text(clipLine([{ text: 'abc' }, { text: 'def', color: 'red' }], 5))).toBe('abcd…');
  });
});
