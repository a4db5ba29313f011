/**
 * The dashboard reporter: folds the orchestrator's calls into a DashboardState (state.ts) and draws it
 * with ink at a bounded frame rate. ink owns the terminal while the run lasts; at the end the final frame
 * stays, the summary (the same text as the plain reporter's) is printed below it, and the terminal is
 * handed back (raw mode off, stdin released).
 *
 * Ctrl-C: ink puts stdin in raw mode to read keys, so Ctrl-C arrives as input, not as SIGINT. ink's own
 * Ctrl-C exit is turned off and the key is passed to `onInterrupt`, which stops the run like SIGINT does
 * (gracefully, still writing the report).
 */
import { render, useInput, useStdin, useStdout, type Instance } from 'ink';
import { useEffect, useState } from 'react';
import { formatReportLine } from '../report/plain-reporter.js';
import type { Reporter } from '../report/reporter.js';
import { formatSummary } from '../report/summary.js';
import { truncate } from './columns.js';
import { Dashboard, liveLines } from './dashboard.js';
import { initialDashboardState, reduceDashboard, type DashboardAction, type DashboardState } from './state.js';

export interface DashboardReporterOptions {
  stdout?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
  stderr?: NodeJS.WriteStream;
  /** Wall clock, ms (default Date.now). */
  clock?: () => number;
  /** Most frames per second ink draws (default 8). */
  maxFps?: number;
  /** Ctrl-C was pressed in the dashboard. */
  onInterrupt?: () => void;
  /** Route console.* output above the live area instead of across it (default true; tests turn it off). */
  patchConsole?: boolean;
}

export interface DashboardReporter extends Reporter {
  /** Shows that the run is stopping (after Ctrl-C or a signal). */
  interrupted(): void;
  /** Unmounts the dashboard and gives the terminal back; safe to call more than once (the CLI calls it on errors). */
  close(): void;
}

/** The terminal's size, following resizes (ink re-lays out on resize, but only a state change re-renders us). */
function useTerminalSize(): { columns: number; rows: number } {
  const { stdout } = useStdout();
  const read = () => ({ columns: stdout.columns > 0 ? stdout.columns : 80, rows: typeof stdout.rows === 'number' && stdout.rows > 0 ? stdout.rows : 24 });
  const [size, setSize] = useState(read);
  useEffect(() => {
    const onResize = (): void => setSize(read());
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  return size;
}

interface LiveDashboardProps {
  state: DashboardState;
  now: number;
  onInterrupt: () => void;
}

function LiveDashboard({ state, now, onInterrupt }: LiveDashboardProps) {
  const { columns, rows } = useTerminalSize();
  const { isRawModeSupported } = useStdin();
  useInput(
    (input, key) => {
      if (key.ctrl && input === 'c') onInterrupt();
    },
    { isActive: isRawModeSupported && state.result === null },
  );
  return <Dashboard state={state} now={now} width={columns} height={rows} />;
}

export function createDashboardReporter(options: DashboardReporterOptions = {}): DashboardReporter {
  const stdout = options.stdout ?? process.stdout;
  const clock = options.clock ?? Date.now;
  const onInterrupt = options.onInterrupt ?? (() => undefined);
  let state = initialDashboardState();
  let instance: Instance | null = null;
  let ticker: NodeJS.Timeout | null = null;
  let closed = false;

  const view = () => <LiveDashboard state={state} now={clock()} onInterrupt={onInterrupt} />;
  const draw = (): void => {
    if (closed) return;
    if (instance === null) {
      size = terminalSize();
      stdout.on('resize', onResize);
      instance = render(view(), {
        stdout,
        stdin: options.stdin ?? process.stdin,
        stderr: options.stderr ?? process.stderr,
        exitOnCtrlC: false,
        maxFps: options.maxFps ?? 8,
        patchConsole: options.patchConsole ?? true,
      });
      // The elapsed time moves even when no point arrives (prepare, a stalled shard).
      ticker = setInterval(draw, 1000);
      ticker.unref();
    } else {
      instance.rerender(view());
    }
  };
  /**
   * A narrower terminal re-wraps the lines on screen, so ink's count of the lines it drew goes wrong and
   * its next erase leaves pieces of old frames behind (a wider one is safe: our lines never wrap). This
   * runs before ink's own resize handler (registered first): clear the screen, put back the latest log
   * lines that fit above the live area, then as many empty lines as ink drew last, which are what ink's
   * handler erases before it draws the live area at the new size.
   */
  let size = { columns: 0, rows: 0 };
  const terminalSize = () => ({ columns: stdout.columns > 0 ? stdout.columns : 80, rows: typeof stdout.rows === 'number' && stdout.rows > 0 ? stdout.rows : 24 });
  const onResize = (): void => {
    const before = size;
    size = terminalSize();
    if (instance === null || size.columns >= before.columns) return;
    const now = clock();
    // ink writes its frame with a trailing newline, and erases that many lines plus the one it ends on.
    const drawn = liveLines(state, now, before.columns, before.rows).length + 1;
    const room = Math.max(0, size.rows - liveLines(state, now, size.columns, size.rows).length - 1);
    const sgr: Record<string, string> = { info: '', warn: '\u001b[33m', error: '\u001b[31m' };
    const recent = room === 0 ? [] : state.log.slice(-room).map((l) => `${sgr[l.level]}${truncate(l.text, size.columns)}${sgr[l.level] === '' ? '' : '\u001b[39m'}\n`);
    stdout.write(`\u001b[2J\u001b[H${recent.join('')}${'\n'.repeat(drawn - 1)}`);
  };
  const dispatch = (action: DashboardAction): void => {
    state = reduceDashboard(state, action);
    draw();
  };
  const close = (): void => {
    if (closed) return;
    closed = true;
    if (ticker !== null) clearInterval(ticker);
    ticker = null;
    instance?.unmount();
    instance = null;
    stdout.off('resize', onResize);
  };

  return {
    start(info) {
      dispatch({ type: 'start', at: clock(), info });
    },
    phase(name, atMs) {
      dispatch({ type: 'phase', at: clock(), name, atMs });
    },
    point(point, live) {
      dispatch(live === undefined ? { type: 'point', at: clock(), point } : { type: 'point', at: clock(), point, live });
    },
    event(event) {
      dispatch({ type: 'event', at: clock(), event });
    },
    interrupted() {
      dispatch({ type: 'interrupt', at: clock() });
    },
    finish(result, reportDir) {
      dispatch({ type: 'finish', at: clock(), result, reportDir });
      close();
      stdout.write(`\n${formatSummary(result)}`);
      if (reportDir !== null) stdout.write(`${formatReportLine(reportDir)}\n`);
    },
    close,
  };
}
