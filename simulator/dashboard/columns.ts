/**
 * Lines of the dashboard as colored segments, and tables that fit a terminal width: the least important
 * columns go first, then the name column is shortened with "…". Every line the live area draws is at
 * most `width` characters, so the terminal never wraps it (a wrapped line breaks ink's redraw).
 */

export interface Segment {
  text: string;
  color?: string;
  bold?: boolean;
  dim?: boolean;
}

export type Line = Segment[];

export interface Cell {
  text: string;
  color?: string;
  bold?: boolean;
  dim?: boolean;
}

export interface Column {
  header: string;
  align: 'left' | 'right';
  /** 0: always kept; otherwise columns with the highest number are dropped first when the width is short. */
  drop: number;
  /** The column that shrinks (truncated with "…") when dropping is not enough, down to this width. */
  shrinkTo?: number;
}

const gap = '  ';

/** Shortens text to `width` characters, ending with "…" when something was cut. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return '';
  if (text.length <= width) return text;
  return width === 1 ? '…' : `${text.slice(0, width - 1)}…`;
}

export function lineLength(line: Line): number {
  return line.reduce((n, s) => n + s.text.length, 0);
}

/** Cuts a line of segments to `width` characters (the last visible segment ends with "…"). */
export function clipLine(line: Line, width: number): Line {
  if (lineLength(line) <= width) return line;
  const out: Line = [];
  let left = width;
  for (const s of line) {
    if (left <= 0) break;
    if (s.text.length <= left) {
      out.push(s);
      left -= s.text.length;
    } else {
      out.push({ ...s, text: truncate(s.text, left) });
      left = 0;
    }
  }
  return out;
}

/** A header line and one line per row, laid out in at most `width` characters. */
export function layoutTable(columns: readonly Column[], rows: readonly (readonly Cell[])[], width: number, indent = ''): { header: Line; rows: Line[] } {
  const natural = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => r[i]?.text.length ?? 0)));
  const kept = columns.map((_, i) => i);
  const total = (): number => indent.length + kept.reduce((n, i) => n + natural[i]!, 0) + gap.length * Math.max(0, kept.length - 1);
  while (total() > width) {
    const candidates = kept.filter((i) => columns[i]!.drop > 0);
    if (candidates.length === 0) break;
    const worst = candidates.reduce((a, b) => (columns[b]!.drop >= columns[a]!.drop ? b : a));
    kept.splice(kept.indexOf(worst), 1);
  }
  const widths = natural.slice();
  for (const i of kept) {
    const shrinkTo = columns[i]!.shrinkTo;
    if (shrinkTo === undefined) continue;
    const over = total() - width;
    if (over > 0) {
      widths[i] = Math.max(shrinkTo, natural[i]! - over);
      natural[i] = widths[i]!;
    }
  }
  const render = (cells: readonly Cell[], isHeader: boolean): Line => {
    const line: Line = indent === '' ? [] : [{ text: indent }];
    kept.forEach((i, k) => {
      const c = columns[i]!;
      const cell = cells[i] ?? { text: '' };
      const text = truncate(cell.text, widths[i]!);
      const padded = c.align === 'left' ? text.padEnd(widths[i]!) : text.padStart(widths[i]!);
      const segment: Segment = { text: padded };
      if (isHeader) segment.dim = true;
      if (cell.color !== undefined) segment.color = cell.color;
      if (cell.bold === true) segment.bold = true;
      if (cell.dim === true) segment.dim = true;
      if (k > 0) line.push({ text: gap });
      line.push(segment);
    });
    // Trailing spaces of a left-aligned last column are not drawn.
    const last = line[line.length - 1];
    if (last !== undefined) line[line.length - 1] = { ...last, text: last.text.trimEnd() };
    return clipLine(line, width);
  };
  return { header: render(columns.map((c) => ({ text: c.header })), true), rows: rows.map((r) => render(r, false)) };
}
