/**
 * The chaos timeline on the main thread: each action of `scenario.chaos` fires at epoch + atMs.
 *
 * Broker actions (kill, restart, pause) act on the embedded broker and run one after another, so a
 * restart never overlaps a kill still waiting out its downtime. `exec` runs a user command (the way to
 * restart an external broker). Partitions and reconnect storms go to the shards, which cut their
 * devices' links. Every action is reported as an event when it starts and when it is over, and kept as
 * a ChaosRecord for run.json.
 */
import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import type { RunEvent } from '../report/reporter.js';
import type { ChaosRecord } from '../report/run-result.js';
import type { ChaosAction } from '../scenario/types.js';
import { formatDuration } from '../scenario/units.js';
import type { ToShard } from '../shard/messages.js';
import type { EmbeddedBroker } from './embedded-broker.js';

export interface ChaosContext {
  /** The embedded broker; null when the run has a target (broker actions then fail, validation prevents it). */
  broker: EmbeddedBroker | null;
  /** Sends a message to every shard. */
  broadcast(message: ToShard): void;
  event(e: RunEvent): void;
  /** Devices per fleet name, for the records. */
  fleetSizes: Record<string, number>;
  /** Working directory of exec commands (the scenario file's folder). */
  cwd: string;
}

/** Output lines of an exec command kept in its record and event. */
const EXEC_OUTPUT_LINES = 5;
const EXEC_LINE_CHARS = 200;
/** Output kept in memory per command; the first lines are all that is reported. */
const EXEC_OUTPUT_CHARS = 8 * 1024;
/** The longest stop() waits for a broker action in progress (a restart waits for the broker to listen). */
const STOP_BOUND_MS = 30_000;

/** One action in words: `broker kill (downtime 1s)`, `partition of sensors for 10s`. */
export function describeChaosAction(action: ChaosAction): string {
  switch (action.kind) {
    case 'broker-kill':
      return `broker kill (downtime ${formatDuration(action.downtimeMs)})`;
    case 'broker-restart':
      return 'broker restart';
    case 'broker-pause':
      return `broker pause for ${formatDuration(action.durationMs)}`;
    case 'exec':
      return `exec ${JSON.stringify(action.command)}`;
    case 'partition':
      return `partition of ${action.fleet} for ${formatDuration(action.durationMs)}`;
    case 'reconnect-storm':
      return `reconnect storm of ${action.fleet}`;
  }
}

/**
 * Actions on devices (partition, reconnect storm): each process of a `run --processes` run performs them
 * on its own devices, while broker and exec actions, which act once on something shared, are its parent's.
 */
export function isDeviceChaos(action: ChaosAction): boolean {
  return action.kind === 'partition' || action.kind === 'reconnect-storm';
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The first non-empty lines of a command's output, each cut to a readable length. */
export function firstLines(output: string, lines = EXEC_OUTPUT_LINES): string[] {
  return output
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '')
    .slice(0, lines)
    .map((l) => (l.length > EXEC_LINE_CHARS ? `${l.slice(0, EXEC_LINE_CHARS)}…` : l));
}

export class ChaosTimeline {
  readonly records: ChaosRecord[] = [];
  private epochMs = 0;
  private stopping = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Waits in progress (downtime, pause); stop() ends them early. */
  private readonly waits = new Set<() => void>();
  /** Exec commands still running: stop() kills them. */
  private readonly commands = new Set<() => void>();
  /** Broker actions run in sequence on this chain. */
  private brokerChain: Promise<void> = Promise.resolve();
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly actions: readonly ChaosAction[], private readonly ctx: ChaosContext) {}

  /** Run time now, ms from t=0. */
  private now(): number {
    return Date.now() - this.epochMs;
  }

  /** Schedules every action at epochMs + atMs (epochMs: Date.now() of t=0). */
  start(epochMs: number): void {
    this.epochMs = epochMs;
    for (const action of this.actions) this.later(epochMs + action.atMs - Date.now(), () => this.fire(action));
  }

  /**
   * The run is over or aborted: nothing more fires, waits end at once (a paused broker is resumed), exec
   * commands are killed; resolves once a broker action in progress is done (bounded).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const end of [...this.waits]) end();
    for (const kill of [...this.commands]) kill();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.running]),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, STOP_BOUND_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  private later(ms: number, fn: () => void): void {
    if (this.stopping) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, Math.max(0, ms));
    this.timers.add(t);
  }

  /** Resolves after ms, or at once when stop() is called; true when the full time passed. */
  private wait(ms: number): Promise<boolean> {
    if (this.stopping) return Promise.resolve(false);
    return new Promise((resolve) => {
      const end = (full: boolean): void => {
        clearTimeout(t);
        this.waits.delete(early);
        resolve(full);
      };
      const early = (): void => end(false);
      const t = setTimeout(() => end(true), Math.max(0, ms));
      this.waits.add(early);
    });
  }

  private track(work: Promise<void>): void {
    const p = work.catch(() => undefined).finally(() => this.running.delete(p));
    this.running.add(p);
  }

  private fire(action: ChaosAction): void {
    if (this.stopping) return;
    const atMs = Math.max(0, this.now());
    const record: ChaosRecord = { atMs, action: action.kind, outcome: 'ok', detail: '' };
    this.records.push(record);
    this.ctx.event({ atMs, level: 'info', message: `chaos: ${describeChaosAction(action)}` });
    const done = (outcome: ChaosRecord['outcome'], detail: string): void => {
      record.outcome = outcome;
      record.detail = detail;
      record.endMs ??= Math.max(0, this.now());
      this.ctx.event({ atMs: record.endMs, level: outcome === 'ok' ? 'info' : 'error', message: `chaos: ${describeChaosAction(action)}: ${detail}` });
    };
    const failed = (err: unknown): void => done('failed', errorText(err));
    switch (action.kind) {
      case 'broker-kill':
      case 'broker-restart':
      case 'broker-pause': {
        const broker = this.ctx.broker;
        if (broker === null) {
          done('failed', 'no embedded broker in this run (it has a target); use exec for an external broker');
          return;
        }
        const step = this.brokerChain.then(() => this.brokerAction(action, broker, done)).catch(failed);
        this.brokerChain = step;
        this.track(step);
        return;
      }
      case 'exec':
        this.track(this.exec(action, done).catch(failed));
        return;
      case 'partition': {
        const untilMs = atMs + action.durationMs;
        record.endMs = untilMs;
        this.ctx.broadcast({ type: 'chaos', action: { kind: 'partition', fleet: action.fleet, untilMs } });
        const devices = this.ctx.fleetSizes[action.fleet] ?? 0;
        record.detail = `${devices} device(s) of ${action.fleet} cut off (no DISCONNECT) until ${formatDuration(untilMs)}`;
        this.later(this.epochMs + untilMs - Date.now(), () =>
          this.ctx.event({ atMs: untilMs, level: 'info', message: `chaos: partition of ${action.fleet} lifted; its devices reconnect with their backoff` }));
        return;
      }
      case 'reconnect-storm': {
        this.ctx.broadcast({ type: 'chaos', action: { kind: 'storm', fleet: action.fleet } });
        record.endMs = atMs;
        record.detail = `${this.ctx.fleetSizes[action.fleet] ?? 0} device(s) of ${action.fleet} dropped their connections (no DISCONNECT) and reconnect`;
        return;
      }
    }
  }

  private async brokerAction(
    action: Extract<ChaosAction, { kind: 'broker-kill' | 'broker-restart' | 'broker-pause' }>,
    broker: EmbeddedBroker,
    done: (outcome: ChaosRecord['outcome'], detail: string) => void,
  ): Promise<void> {
    const pid = broker.pid;
    switch (action.kind) {
      case 'broker-kill': {
        broker.kill('SIGKILL');
        const full = await this.wait(action.downtimeMs);
        if (!full) {
          done('ok', `killed pid ${pid} (SIGKILL); the run ended before the restart`);
          return;
        }
        await broker.restart();
        done('ok', `killed pid ${pid} (SIGKILL), restarted after ${formatDuration(action.downtimeMs)} as pid ${broker.pid} on ${broker.url}`);
        return;
      }
      case 'broker-restart': {
        await broker.restart();
        done('ok', `stopped pid ${pid} (SIGTERM), restarted as pid ${broker.pid} on ${broker.url}`);
        return;
      }
      case 'broker-pause': {
        broker.kill('SIGSTOP');
        const full = await this.wait(action.durationMs);
        broker.kill('SIGCONT');
        done('ok', full ? `paused pid ${pid} (SIGSTOP), resumed (SIGCONT) after ${formatDuration(action.durationMs)}` : `paused pid ${pid} (SIGSTOP), resumed (SIGCONT) early: the run ended`);
        return;
      }
    }
  }

  /** Runs the command in a shell; a non-zero exit, a timeout or a spawn failure is reported, never thrown. */
  private exec(action: Extract<ChaosAction, { kind: 'exec' }>, done: (outcome: ChaosRecord['outcome'], detail: string) => void): Promise<void> {
    const startedAt = Date.now();
    return new Promise((resolve) => {
      // Its own process group, so a timeout ends the shell and whatever it started.
      const child = spawn(action.command, { shell: true, cwd: this.ctx.cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      const collect = (text: string): void => {
        if (output.length < EXEC_OUTPUT_CHARS) output += text;
      };
      child.stdout!.setEncoding('utf8').on('data', collect);
      child.stderr!.setEncoding('utf8').on('data', collect);
      let why: string | null = null;
      const killGroup = (reason: string): void => {
        why ??= reason;
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      };
      const timer = setTimeout(() => killGroup(`timed out after ${formatDuration(action.timeoutMs)}`), action.timeoutMs);
      const kill = (): void => killGroup('killed: the run ended');
      this.commands.add(kill);
      let settled = false;
      const finish = (outcome: ChaosRecord['outcome'], status: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.commands.delete(kill);
        const lines = firstLines(output);
        done(outcome, `${status} in ${Date.now() - startedAt} ms${lines.length > 0 ? `; output:\n    ${lines.join('\n    ')}` : ''}`);
        resolve();
      };
      child.once('error', (err) => finish('failed', `could not start: ${err.message}`));
      child.once('close', (code, signal) => {
        if (why !== null) finish('failed', why);
        else if (code === 0) finish('ok', 'exit code 0');
        else finish('failed', code !== null ? `exit code ${code}` : `ended by ${signal ?? 'a signal'}`);
      });
    });
  }
}

/** The folder exec commands run in: the scenario file's, else the current one. */
export function chaosWorkingDir(sourceFile: string | undefined): string {
  return sourceFile === undefined ? process.cwd() : dirname(sourceFile);
}
