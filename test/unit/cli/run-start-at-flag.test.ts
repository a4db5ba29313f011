import { describe, expect, it } from 'vitest';
import { MAX_START_AHEAD_MS, MAX_START_LATE_MS, parseStartAtFlag, startLateProblem } from '../../../cli/commands/run.js';
import { ExitCode, UserError } from '../../../cli/exit-codes.js';

/** 2026-11-26T10:00:00Z */
const T = 1_795_687_200_000;
/** A minute before T: every valid TIME below lies in the minute ahead. */
const now = T - 60_000;

function refusal(value: string, at = now): UserError {
  try {
    parseStartAtFlag(value, at);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(ExitCode.BadUsage);
    return err as UserError;
  }
  throw new Error(`--start-at ${value} was accepted`);
}

describe('mqtt-sim run --start-at TIME', () => {
  it.each([
    ['2026-11-26T10:00:00Z', T],
    ['2026-11-26t10:00:00z', T],
    ['2026-11-26 10:00:00Z', T],
    ['2026-11-26T10:00Z', T],
    ['2026-11-26T10:00:00.250Z', T + 250],
    ['2026-11-26T10:00:00,5Z', T + 500],
    ['2026-11-26T10:00:00.123456789Z', T + 123],
    ['2026-11-26T11:00:00+01:00', T],
    ['2026-11-26T11:30:00+0130', T],
    ['2026-11-26T08:00:00-02', T],
    ['2026-11-26T05:30:00-04:30', T],
    [String(T), T],
    [` ${T} `, T],
  ])('reads %s as one instant', (value, expected) => {
    expect(parseStartAtFlag(value, now)).toBe(expected);
  });

  it.each([
    ['', '--start-at: expected an ISO 8601 time with a zone such as 2026-11-26T10:00:00Z, or milliseconds since 1970 such as 1795687200000, got ""'],
    ['soon', '--start-at: expected an ISO 8601 time with a zone such as 2026-11-26T10:00:00Z, or milliseconds since 1970 such as 1795687200000, got "soon"'],
    ['-5', 'got "-5"'],
    ['1.7e12', 'got "1.7e12"'],
    ['26/11/2026 10:00', 'got "26/11/2026 10:00"'],
    ['2026-11-26T10:00:00', '--start-at 2026-11-26T10:00:00: give the time zone: add Z for UTC (2026-11-26T10:00:00Z) or an offset such as +01:00, so every machine reads the same instant'],
    ['2026-02-30T10:00:00Z', '--start-at 2026-02-30T10:00:00Z: no such date or time'],
    ['2026-11-26T24:00:00Z', '--start-at 2026-11-26T24:00:00Z: no such date or time'],
    ['2026-11-26T10:00:00+25:00', '--start-at 2026-11-26T10:00:00+25:00: no such time zone offset: +25:00'],
    ['99999999999999999999', '--start-at 99999999999999999999: too large for milliseconds since 1970'],
  ])('refuses %j with a message naming the fix', (value, message) => {
    expect(refusal(value).message).toContain(message);
  });

  it('takes seconds since 1970 for a mistake and gives the milliseconds', () => {
    expect(refusal(String(T / 1000)).message).toBe(
      `--start-at ${T / 1000}: this looks like seconds since 1970; --start-at takes milliseconds (${T}) or an ISO time such as 2026-11-26T10:00:00.000Z`,
    );
  });

  it(`accepts a TIME up to ${MAX_START_LATE_MS / 1000} s past (the run starts at once on it) and refuses one further past`, () => {
    expect(parseStartAtFlag(String(T), T + MAX_START_LATE_MS)).toBe(T);
    const message = refusal(String(T), T + 5 * 60_000).message;
    expect(message).toContain(`--start-at ${T}: that is 5 min ago (2026-11-26T10:00:00.000Z), more than the 10 s a run may start late`);
    expect(message).toContain('Give every slice a later --start-at');
    expect(refusal('2025-11-26T10:00:00Z').message).toContain('that is 365 days ago');
  });

  it(`refuses a TIME more than ${MAX_START_AHEAD_MS / 3_600_000} h ahead`, () => {
    expect(parseStartAtFlag(String(T), T - MAX_START_AHEAD_MS)).toBe(T);
    expect(refusal('2026-11-28T10:00:00Z').message).toBe(
      '--start-at 2026-11-28T10:00:00Z: that is 2 days from now (2026-11-28T10:00:00.000Z), more than the 24 h a run may wait: check the date and the unit (milliseconds), and start the slices closer to the time',
    );
  });

  it('judges lateness again when the run is ready: within the bound it may start, past it it refuses', () => {
    expect(startLateProblem('X', T, T - 1000)).toBeNull();
    expect(startLateProblem('X', T, T + MAX_START_LATE_MS)).toBeNull();
    expect(startLateProblem('X', T, T + MAX_START_LATE_MS + 1, true)).toMatch(
      /^--start-at X: this run was ready \(its consumers subscribed\) only 10.1 s after that time \(2026-11-26T10:00:00.000Z\), more than the 10 s a run may start late: .* Give every slice a later --start-at/,
    );
    expect(startLateProblem('X', T, T + 42_000)).toMatch(/^--start-at X: that is 42.0 s ago/);
  });
});
