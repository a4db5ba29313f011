/**
 * Broker launchers: each broker runs in its own process, started fresh for every run and killed after it.
 *
 * - mosquitto: /usr/sbin/mosquitto with a temporary config holding the settings of BENCHMARKING.md;
 * - aedes: aedes-server.js (this folder) in a child node process;
 * - ours: `node dist/cli/main.js broker --port PORT --host 127.0.0.1`, once the CLI has that command.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, HOST, sleep, tryConnect } from '../lib/net.js';

export type BrokerName = 'mosquitto' | 'aedes' | 'ours';
export const brokerNames: readonly BrokerName[] = ['mosquitto', 'aedes', 'ours'];


const here = dirname(fileURLToPath(import.meta.url));
/** The project root: this file is dist/bench/broker/brokers.js once built. */
export const projectRoot = resolve(here, '../../..');
const oursCli = join(projectRoot, 'dist/cli/main.js');
const aedesServer = join(here, 'aedes-server.js');
export const MOSQUITTO_BIN = process.env['MOSQUITTO_BIN'] ?? '/usr/sbin/mosquitto';

/** The mosquitto.conf lines of BENCHMARKING.md, for a given port. */
/** Settings that put our broker on the footing Mosquitto runs with in BENCHMARKING.md. */
export const OURS_BASELINE_ARGS: readonly string[] = ['--persistence', 'memory', '--max-queued-messages', '100000', '--sys-interval', '0'];

/**
 * `baseline` (flag/value pairs) followed by `extra`, minus the baseline pairs whose flag `extra` sets
 * again: the CLI refuses a repeated option, so "later flags win" is done here.
 */
export function mergeFlags(baseline: readonly string[], extra: readonly string[]): string[] {
  const overridden = new Set(extra.filter((a) => a.startsWith('--')).map((a) => a.split('=', 1)[0]!));
  const kept: string[] = [];
  for (let i = 0; i < baseline.length; i += 2) {
    if (!overridden.has(baseline[i]!)) kept.push(baseline[i]!, baseline[i + 1]!);
  }
  return [...kept, ...extra];
}

export function mosquittoConfig(port: number, persistenceLocation?: string): string[] {
  return [
    `listener ${port} ${HOST}`,
    'allow_anonymous true',
    'max_queued_messages 100000',
    // 0 = no maximum in 2.0.11; a bounded value throttles QoS 1 fan-in badly.
    'max_inflight_messages 0',
    // With a location: persistence on, other settings (autosave_interval 1800 s, …) at their defaults.
    // Mosquitto wants the trailing slash.
    ...(persistenceLocation === undefined
      ? ['persistence false']
      : ['persistence true', `persistence_location ${persistenceLocation.endsWith('/') ? persistenceLocation : `${persistenceLocation}/`}`]),
  ];
}

/** uid and gid of the account Mosquitto drops to when started as root, or null. */
function mosquittoAccount(): { uid: number; gid: number } | null {
  try {
    const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('mosquitto:'));
    if (line === undefined) return null;
    const [, , uid, gid] = line.split(':');
    return { uid: Number(uid), gid: Number(gid) };
  } catch {
    return null;
  }
}

export interface RunningBroker {
  readonly name: BrokerName;
  readonly pid: number;
  readonly port: number;
  /** The persistence directory handed to the broker (StartOptions.persistentDataDir), else null. */
  readonly dataDir: string | null;
  /** Exit code or signal once the process has ended on its own, else null. */
  exitStatus(): string | null;
  /** Last lines of the broker's stdout/stderr, for error messages. */
  logTail(): string;
  /** SIGTERM, then SIGKILL after 3 s; resolves once the process is gone and temp files are removed. */
  stop(): Promise<void>;
}

/** Children still running, killed on any exit of the bench process. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});




/** Availability of our broker: the CLI must build and know the `broker` command. */
export function oursAvailability(): { available: boolean; note: string } {
  const probe = spawnSync(process.execPath, [oursCli, 'broker', '--help'], {
    cwd: projectRoot, encoding: 'utf8', timeout: 15_000,
  });
  if (probe.status === 0) return { available: true, note: `node ${oursCli} broker --port PORT --host ${HOST}` };
  const why = probe.error !== undefined
    ? probe.error.message
    : `'node dist/cli/main.js broker --help' exited with ${String(probe.status ?? probe.signal)}: ${(probe.stderr || '').trim().split('\n')[0] ?? ''}`;
  return { available: false, note: `skipped: our broker is not available yet (${why})` };
}

export function mosquittoVersion(): string {
  const out = spawnSync(MOSQUITTO_BIN, ['-h'], { encoding: 'utf8', timeout: 5_000 });
  const match = /mosquitto version (\S+)/.exec(`${out.stdout ?? ''}${out.stderr ?? ''}`);
  return match ? match[1]! : 'unknown';
}

export function aedesVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(projectRoot, 'node_modules/aedes/package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export interface StartOptions {
  /** Extra command-line arguments for our broker (e.g. --persistence memory). */
  oursArgs?: readonly string[];
  /**
   * A fresh, empty persistence directory inside the run's temporary directory: ours gets
   * `--data-dir DIR` (before oursArgs), Mosquitto gets `persistence true` + `persistence_location DIR/`
   * instead of `persistence false`. Ignored for aedes.
   */
  persistentDataDir?: boolean;
}

/** Starts `name` on a free port and resolves once the port accepts TCP connections. */
export async function startBroker(name: BrokerName, options: StartOptions = {}): Promise<RunningBroker> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `bench-${name}-`));
  const logPath = join(dir, 'broker.log');
  // The broker's output goes to a file, so reading it costs the load generator nothing.
  const logFd = openSync(logPath, 'w');
  let command: string;
  let args: string[];
  // Our broker runs in the run's temporary directory: its default data dir (./mqtt-sim-data) starts
  // empty every run and never lands in the project.
  let cwd = projectRoot;
  let dataDir: string | null = null;
  if (options.persistentDataDir === true && name !== 'aedes') {
    dataDir = join(dir, 'data');
    mkdirSync(dataDir);
  }
  switch (name) {
    case 'mosquitto': {
      const conf = join(dir, 'mosquitto.conf');
      if (dataDir !== null) {
        // Started as root, Mosquitto saves as its own account: let it reach and write the directory.
        const account = process.getuid?.() === 0 ? mosquittoAccount() : null;
        if (account !== null) {
          chmodSync(dir, 0o711);
          chownSync(dataDir, account.uid, account.gid);
        }
      }
      writeFileSync(conf, mosquittoConfig(port, dataDir ?? undefined).join('\n') + '\n');
      command = MOSQUITTO_BIN;
      args = ['-c', conf];
      break;
    }
    case 'aedes':
      command = process.execPath;
      args = [aedesServer, String(port), HOST];
      break;
    case 'ours':
      command = process.execPath;
      // The same footing as the Mosquitto anchor (persistence false, max_queued_messages 100000);
      // --ours-args adds or overrides (later flags win), e.g. "--persistence sqlite" for the durable store.
      args = [
        oursCli, 'broker', '--port', String(port), '--host', HOST,
        ...mergeFlags([...OURS_BASELINE_ARGS, ...(dataDir !== null ? ['--data-dir', dataDir] : [])], options.oursArgs ?? []),
      ];
      cwd = dir;
      break;
  }
  const child = spawn(command, args, { cwd, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  live.add(child);
  let exited: string | null = null;
  const exitPromise = new Promise<void>((resolveExit) => {
    child.once('exit', (code, signal) => {
      exited = signal !== null ? `signal ${signal}` : `exit code ${String(code)}`;
      live.delete(child);
      resolveExit();
    });
    child.once('error', (err) => {
      exited = `spawn error: ${err.message}`;
      live.delete(child);
      resolveExit();
    });
  });

  const logTail = (): string => {
    try {
      return readFileSync(logPath, 'utf8').split('\n').slice(-12).join('\n').trim();
    } catch {
      return '';
    }
  };
  const stop = async (): Promise<void> => {
    if (exited === null) {
      child.kill('SIGTERM');
      const killed = await Promise.race([exitPromise.then(() => true), sleep(3_000).then(() => false)]);
      if (!killed) {
        child.kill('SIGKILL');
        await exitPromise;
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = performance.now() + 10_000;
  for (;;) {
    if (exited !== null) {
      const tail = logTail();
      await stop();
      throw new Error(`${name} exited during start-up (${String(exited)})${tail ? `:\n${tail}` : ''}`);
    }
    if (await tryConnect(port)) break;
    if (performance.now() > deadline) {
      const tail = logTail();
      await stop();
      throw new Error(`${name} did not accept connections on ${HOST}:${port} within 10 s${tail ? `:\n${tail}` : ''}`);
    }
    await sleep(25);
  }
  if (child.pid === undefined) throw new Error(`${name} has no pid`);
  return { name, pid: child.pid, port, dataDir, exitStatus: () => exited, logTail, stop };
}
