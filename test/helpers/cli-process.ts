/**
 * Test helpers for the built CLI (dist/cli/main.js) as a child process: spawn it, wait (bounded) for
 * a line on stdout or for the exit, and kill whatever is still running after each test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const cliMain = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** Fails with the fix when dist/ lacks a file the test needs (npm test builds it in pretest). */
export function requireBuilt(relativePath: string): void {
  const path = fileURLToPath(new URL(`../../dist/${relativePath}`, import.meta.url));
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run build\` before this suite (npm test does it in pretest)`);
}

export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stdout line matching `pattern`; rejects after `ms` or if the process exits first. */
  waitForLine(pattern: RegExp, ms?: number): Promise<RegExpExecArray>;
  /** Resolves with the exit code (null if killed by a signal); rejects after `ms`. */
  waitForExit(ms?: number): Promise<number | null>;
}

const running = new Set<ChildProcess>();

/** Like withTimeout, but the failure message is built when it fires, so it shows the output so far. */
function bounded<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what()}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export function spawnCli(args: string[]): CliProcess {
  // A fresh working directory per run: the broker's default data dir (./mqtt-sim-data) lands there.
  const cwd = mkdtempSync(join(tmpdir(), 'mqtt-sim-cli-'));
  const child = spawn(process.execPath, [cliMain, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (t: string) => (out += t));
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (err += t));
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      running.delete(child);
      rmSync(cwd, { recursive: true, force: true });
      resolve(code);
    });
  });
  // Output may still be in the pipes at 'exit'; 'close' means both streams ended.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const describe = (): string => `stdout: ${JSON.stringify(out)}, stderr: ${JSON.stringify(err)}`;

  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitForLine(pattern, ms = 10_000) {
      return bounded(
        new Promise<RegExpExecArray>((resolve, reject) => {
          const check = (): boolean => {
            for (const line of out.split('\n')) {
              const match = pattern.exec(line);
              if (match !== null) {
                resolve(match);
                return true;
              }
            }
            return false;
          };
          if (check()) return;
          const onData = (): void => {
            if (check()) child.stdout!.off('data', onData);
          };
          child.stdout!.on('data', onData);
          void closed.then(() => {
            if (!check()) reject(new Error(`mqtt-sim ${args.join(' ')} exited before printing ${pattern}; ${describe()}`));
          });
        }),
        ms,
        () => `mqtt-sim ${args.join(' ')} never printed a line matching ${pattern}; ${describe()}`,
      );
    },
    waitForExit(ms = 10_000) {
      return bounded(
        Promise.all([exited, closed]).then(([code]) => code),
        ms,
        () => `mqtt-sim ${args.join(' ')} did not exit; ${describe()}`,
      );
    },
  };
}

/** SIGKILLs every spawned CLI process still running; call in afterEach. */
export async function killAllCli(): Promise<void> {
  const waits = [...running].map((child) => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  }));
  running.clear();
  await Promise.all(waits);
}
