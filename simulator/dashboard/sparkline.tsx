/**
 * A one-line chart of the latest values with the eight block characters ▁..█, oldest on the left.
 * `sparkline` is the pure text; `<Sparkline>` renders it.
 */
import { Text } from 'ink';

const blocks = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'] as const;

/**
 * The last `width` values as blocks, scaled to `max` (default: the largest shown). Zero is the lowest
 * block, so an idle stretch still reads as a line. Until there are `width` values the chart grows from the
 * left and is padded with spaces; then it scrolls.
 */
export function sparkline(values: readonly number[], width: number, max?: number): string {
  if (width <= 0) return '';
  const shown = values.slice(Math.max(0, values.length - width));
  const top = max ?? Math.max(0, ...shown);
  const chars = shown.map((v) => {
    if (!(top > 0) || !Number.isFinite(v) || v <= 0) return blocks[0];
    const level = Math.min(blocks.length - 1, Math.max(0, Math.ceil((v / top) * blocks.length) - 1));
    return blocks[level];
  });
  return chars.join('') + ' '.repeat(width - chars.length);
}

export interface SparklineProps {
  values: readonly number[];
  width: number;
  max?: number;
  color?: string;
}

export function Sparkline({ values, width, max, color }: SparklineProps) {
  const text = sparkline(values, width, max);
  return color === undefined ? <Text>{text}</Text> : <Text color={color}>{text}</Text>;
}
