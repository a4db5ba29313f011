import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration, parseDurationRange, parsePercentage, parseRate } from '../../../../simulator/scenario/units.js';

describe('parseDuration', () => {
  it.each([
    ['250ms', 250], ['1s', 1000], ['1.5s', 1500], ['2m', 120_000], ['1h', 3_600_000], [0, 0], ['0', 0], ['0s', 0], [' 3 s ', 3000],
  ])('%j is %d ms', (input, ms) => expect(parseDuration(input)).toEqual({ ok: true, value: ms }));

  it('rejects a plain number other than 0 and shows the fix', () => {
    expect(parseDuration(5)).toEqual({ ok: false, message: 'expected a duration with a unit, got the plain number 5; write 5s for seconds or 5ms for milliseconds' });
    expect(parseDuration('5')).toEqual({ ok: false, message: 'expected a duration with a unit, got "5"; write 5s for seconds or 5ms for milliseconds' });
  });

  it('rejects negative durations, unknown units and non-strings', () => {
    expect(parseDuration('-1s')).toEqual({ ok: false, message: 'expected a duration of 0 or more, got "-1s"' });
    expect(parseDuration('1d')).toEqual({ ok: false, message: 'expected a duration like 500ms, 1s, 2m or 1h, got "1d"' });
    expect(parseDuration(true)).toEqual({ ok: false, message: 'expected a duration like 500ms, 1s, 2m or 1h, got true' });
  });
});

describe('parseRate', () => {
  it.each([['200/s', 200], ['5/m', 5 / 60], ['1/h', 1 / 3600], ['2/ms', 2000], ['0.5/s', 0.5]])('%s is %d per second', (input, perSec) => {
    const r = parseRate(input);
    expect(r.ok && r.value).toBeCloseTo(perSec, 12);
  });
  it('rejects plain numbers, zero and garbage', () => {
    expect(parseRate(200)).toEqual({ ok: false, message: 'expected a rate with a unit, got the plain number 200; write 200/s (per second) or 200/m (per minute)' });
    expect(parseRate('0/s')).toEqual({ ok: false, message: 'expected a rate above 0, got "0/s"' });
    expect(parseRate('fast')).toEqual({ ok: false, message: 'expected a rate like 200/s, 5/m or 1/h, got "fast"' });
  });
});

describe('parsePercentage', () => {
  it('reads 10% and plain fractions', () => {
    expect(parsePercentage('10%')).toEqual({ ok: true, value: 0.1 });
    expect(parsePercentage('2.5%')).toEqual({ ok: true, value: 0.025 });
    expect(parsePercentage(0.1)).toEqual({ ok: true, value: 0.1 });
    expect(parsePercentage('ten')).toEqual({ ok: false, message: 'expected a percentage like 10% or a fraction like 0.1, got "ten"' });
  });
});

describe('parseDurationRange', () => {
  it('reads min..max and single durations', () => {
    expect(parseDurationRange('2s..15s')).toEqual({ ok: true, value: { min: 2000, max: 15_000 } });
    expect(parseDurationRange('500ms .. 1s')).toEqual({ ok: true, value: { min: 500, max: 1000 } });
    expect(parseDurationRange('3s')).toEqual({ ok: true, value: { min: 3000, max: 3000 } });
  });
  it('rejects reversed ends and bad parts', () => {
    expect(parseDurationRange('15s..2s')).toEqual({ ok: false, message: 'expected the lower end first, got "15s..2s"; write 2s..15s' });
    expect(parseDurationRange('2..15s')).toEqual({ ok: false, message: 'the lower end of "2..15s": expected a duration with a unit, got "2"; write 2s for seconds or 2ms for milliseconds' });
  });
});

describe('formatDuration', () => {
  it.each([[0, '0s'], [250, '250ms'], [1500, '1.5s'], [60_000, '1m'], [90_000, '1m30s'], [3_600_000, '1h']])('%d ms is %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
