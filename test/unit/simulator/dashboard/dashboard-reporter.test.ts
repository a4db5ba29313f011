/**
 * The dashboard reporter on fake terminal streams: it draws while the run goes, hands Ctrl-C (a key in
 * raw mode) to onInterrupt instead of exiting, and at finish leaves the final frame, prints the summary
 * and gives the terminal back.
 */
import { EventEmitter } from 'node:events';
import { stripVTControlCharacters } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createDashboardReporter, type DashboardReporter } from '../../../../simulator/dashboard/dashboard-reporter.js';
import { formatSummary } from '../../../../simulator/report/summary.js';
import { waitUntil } from '../../../helpers/wait.js';
import { countersAt, fixture, startInfo, t0 } from './fixture-run.js';

// Under CI (CI or CONTINUOUS_INTEGRATION set), ink draws no live frames: it keeps the last one and writes it
// only at unmount, and it decides this once, when it is first imported. The product never puts the dashboard
// on a CI terminal (chooseReporter picks plain lines there), so these tests take ink out of CI mode, before
// any import, to test the live drawing a user's terminal gets.
vi.hoisted(() => {
  process.env['CI'] = '0';
  delete process.env['CONTINUOUS_INTEGRATION'];
});

class FakeTerminal extends EventEmitter {
  columns = 100;
  rows = 40;
  isTTY = true;
  output = '';
  write = (chunk: string): boolean => {
    this.output += chunk;
    return true;
  };
}

class FakeKeyboard extends EventEmitter {
  isTTY = true;
  rawMode = false;
  private pending: string[] = [];
  setRawMode(on: boolean): this {
    this.rawMode = on;
    return this;
  }
  setEncoding(): this {
    return this;
  }
  read(): string | null {
    return this.pending.shift() ?? null;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  pause(): this {
    return this;
  }
  press(data: string): void {
    this.pending.push(data);
    this.emit('readable');
  }
}

const open: DashboardReporter[] = [];
afterEach(() => {
  for (const r of open.splice(0)) r.close();
});

function setup(onInterrupt: () => void = () => undefined) {
  const stdout = new FakeTerminal();
  const stdin = new FakeKeyboard();
  let now = t0;
  const reporter = createDashboardReporter({
    stdout: stdout as unknown as NodeJS.WriteStream,
    stderr: new FakeTerminal() as unknown as NodeJS.WriteStream,
    stdin: stdin as unknown as NodeJS.ReadStream,
    clock: () => now,
    maxFps: 1000,
    patchConsole: false,
    onInterrupt,
  });
  open.push(reporter);
  return { stdout, stdin, reporter, advance: (ms: number) => (now += ms), text: () => stripVTControlCharacters(stdout.output) };
}

/** React commits and ink writes on their own schedule: wait (bounded) until the frame shows `what`. */
const drawn = (text: () => string, what: string | RegExp): Promise<void> =>
  waitUntil(() => (typeof what === 'string' ? text().includes(what) : what.test(text())), 5_000, `the dashboard to draw ${what}`);

describe('dashboard reporter', () => {
  it('draws the live area from the reporter calls', async () => {
    const { reporter, advance, text } = setup();
    const result = fixture();
    reporter.start(startInfo(result));
    advance(12_400);
    reporter.phase('steady', 12_000);
    reporter.point(result.timeline[2]!, countersAt(result, 12_000));
    await drawn(text, 'mqtt-sim run pipeline-small  steady  elapsed 12s of 1m 00s');
    await drawn(text, /pressure-sensors +200\/200 +3,412/);
  });

  it('passes Ctrl-C to onInterrupt instead of exiting, in raw mode', async () => {
    let interrupts = 0;
    const { reporter, stdin } = setup(() => interrupts++);
    reporter.start(startInfo(fixture()));
    await waitUntil(() => stdin.rawMode, 5_000, 'the dashboard to put stdin in raw mode');
    stdin.press('\u0003');
    await waitUntil(() => interrupts > 0, 5_000, 'Ctrl-C to reach onInterrupt');
    expect(interrupts).toBe(1);
    reporter.interrupted();
    reporter.close();
    expect(stdin.rawMode).toBe(false);
  });

  it('at finish leaves the final frame, prints the summary after it and releases the terminal', async () => {
    const { reporter, stdin, stdout, advance, text } = setup();
    const result = fixture();
    reporter.start(startInfo(result));
    await drawn(text, 'mqtt-sim run pipeline-small');
    advance(65_400);
    reporter.finish(result, 'reports/pipeline-small');
    const out = stripVTControlCharacters(stdout.output);
    const summaryAt = out.indexOf(formatSummary(result));
    expect(summaryAt).toBeGreaterThan(0);
    expect(out.lastIndexOf('delivery checker: PASS')).toBeLessThan(summaryAt);
    expect(out.endsWith('report: reports/pipeline-small/run.json\n')).toBe(true);
    expect(stdin.rawMode).toBe(false);
    // Nothing is drawn after the end.
    const length = stdout.output.length;
    reporter.event({ atMs: 70_000, level: 'info', message: 'late' });
    // An absence has no event to wait on: give React and ink's throttle several turns to misbehave.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(stdout.output.length).toBe(length);
  });
});
