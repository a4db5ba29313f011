import { describe, expect, it } from 'vitest';
import { chooseReporter } from '../../../../simulator/report/choose-reporter.js';

describe('chooseReporter', () => {
  const tty = { isTTY: true, json: false, noDashboard: false, env: {} };

  it('uses the dashboard on an interactive terminal', () => {
    expect(chooseReporter(tty)).toBe('dashboard');
  });

  it('uses plain lines when stdout is not a terminal (pipes, files, spawned processes)', () => {
    expect(chooseReporter({ ...tty, isTTY: false })).toBe('plain');
    expect(chooseReporter({ ...tty, isTTY: undefined })).toBe('plain');
  });

  it('uses plain lines with --no-dashboard or under CI, even on a terminal', () => {
    expect(chooseReporter({ ...tty, noDashboard: true })).toBe('plain');
    expect(chooseReporter({ ...tty, env: { CI: 'true' } })).toBe('plain');
    expect(chooseReporter({ ...tty, env: { CI: '1' } })).toBe('plain');
    expect(chooseReporter({ ...tty, env: { CI: 'false' } })).toBe('dashboard');
    expect(chooseReporter({ ...tty, env: { CI: '0' } })).toBe('dashboard');
    // ink's rule: a CI variable that is set, even empty, means CI, and so does CONTINUOUS_INTEGRATION.
    expect(chooseReporter({ ...tty, env: { CI: '' } })).toBe('plain');
    expect(chooseReporter({ ...tty, env: { CONTINUOUS_INTEGRATION: 'true' } })).toBe('plain');
    expect(chooseReporter({ ...tty, env: { CONTINUOUS_INTEGRATION: 'false' } })).toBe('dashboard');
  });

  it('uses json with --json, whatever the terminal', () => {
    expect(chooseReporter({ ...tty, json: true })).toBe('json');
    expect(chooseReporter({ ...tty, json: true, isTTY: false, noDashboard: true, env: { CI: 'true' } })).toBe('json');
  });
});
