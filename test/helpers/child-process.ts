/**
 * Test helpers: external programs as child processes whose stdout is read line by line, with bounded
 * waits for a line or for the exit, and a cleanup that kills whatever is still running (for afterEach).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { withTimeout } from './broker.js';

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Child {
  /** The command line, for failure messages. */
  readonly commandLine: string;
  readonly process: ChildProcess;
  /** Every stdout line so far, in order. */
  readonly lines: string[];
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Waits (bounded) for the first stdout line — earlier ones included — that satisfies `match`. */
  waitForLine(match: (line: string) => boolean, ms: number, what: string): Promise<string>;
  /** Waits (bounded) until the process exited and its output was read to the end. */
  exited(ms: number): Promise<ChildExit>;
  /** True once the process has exited. */
  hasExited(): boolean;
  kill(signal?: NodeJS.Signals): void;
}

const running = new Set<Child>();

export function spawnChild(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Child {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  const lines: string[] = [];
  let stderr = '';
  let exit: ChildExit | undefined;
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const w of [...waiters]) w();
  };

  createInterface({ input: proc.stdout! }).on('line', (line) => {
    lines.push(line);
    wake();
  });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const exitPromise = new Promise<ChildExit>((resolve) => {
    // 'close' comes after 'exit' once stdout and stderr are drained, so every line has been seen.
    proc.once('close', (code, signal) => {
      exit = { code, signal };
      running.delete(child);
      resolve(exit);
      wake();
    });
    proc.once('error', (err) => {
      stderr += `spawn failed: ${err.message}\n`;
      if (proc.pid === undefined) {
        exit = { code: null, signal: null };
        running.delete(child);
        resolve(exit);
        wake();
      }
    });
  });

  const commandLine = [command, ...args].join(' ');
  const describe = (): string =>
    `${commandLine}\n  stdout: ${lines.slice(-20).join('\n          ') || '(nothing)'}\n  stderr: ${stderr.trim() || '(nothing)'}`;

  const child: Child = {
    commandLine,
    process: proc,
    lines,
    stderr: () => stderr,
    waitForLine(match, ms, what) {
      let check = (): void => {};
      return withTimeout(
        new Promise<string>((resolve, reject) => {
          check = (): void => {
            const line = lines.find(match);
            if (line !== undefined) resolve(line);
            else if (exit !== undefined) reject(new Error(`${what}: the process exited first (${JSON.stringify(exit)})\n${describe()}`));
          };
          waiters.add(check);
          check();
        }),
        ms,
        `${what}\n${describe()}`,
      ).finally(() => waiters.delete(check));
    },
    exited(ms) {
      return withTimeout(exitPromise, ms, `the process never exited\n${describe()}`);
    },
    hasExited: () => exit !== undefined,
    kill(signal = 'SIGTERM') {
      if (exit === undefined) proc.kill(signal);
    },
  };
  running.add(child);
  return child;
}

/** Kills (SIGKILL) every child still running and waits for each to be gone. */
export async function killAllChildren(ms = 5000): Promise<void> {
  const left = [...running];
  for (const c of left) c.kill('SIGKILL');
  await Promise.all(left.map((c) => c.exited(ms)));
}
