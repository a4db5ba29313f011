/**
 * The orchestrator: runs one scenario end to end on the main thread.
 *
 *   target (embedded broker or reachability check) → plan devices → one long-lived piscina task per shard
 *   → prepare (consumers subscribe) → start (timeline) → stop (drain acknowledgements) → wait until
 *   deliveries go quiet → finish → merge → assertions → run.json.
 *
 * Only the reporter talks to the user; this module returns a RunResult and throws typed errors.
 */
import { rmdirSync } from 'node:fs';
import net from 'node:net';
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { packageVersion } from '../../cli/version.js';
import { RunAggregator } from '../metrics/aggregator.js';
import { sumFleets } from '../metrics/counters.js';
import { disconnectCauses, type DisconnectCause } from '../metrics/types.js';
import type { Reporter } from '../report/reporter.js';
import { runResultSchemaVersion, type RunResult, type TimelinePoint } from '../report/run-result.js';
import { prepareReportDir, reportDirFor, writeRunResult } from '../report/write-run.js';
import { writeReportFiles } from '../report/write-reports.js';
import type { ChaosAction, Scenario, TargetSpec } from '../scenario/types.js';
import type { FromShard, ShardResult, ShardTask, ToShard } from '../shard/messages.js';
import { ChaosTimeline, chaosWorkingDir } from './chaos.js';
import { startEmbeddedBroker, type EmbeddedBroker } from './embedded-broker.js';
import { emptyCheckerResult } from '../verify/checker.js';
import { busiestSourcePair, captureEnvironment, checkFileLimit, portRangeCheck } from './environment.js';
import { judgeRun } from './judge.js';
import { planDevices, sliceDeviceCounts, type RunSlice } from './plan.js';
import { expectedPublishRates } from '../scenario/rates.js';
import { PidUsageSampler, SelfUsageSampler } from '../metrics/process-usage.js';
import { deliveryPauseMs } from '../faults/profile.js';

export interface RunOptions {
  workers: number;
  reporter: Reporter;
  /** Explicit report folder; otherwise reports/<scenario>-<timestamp> under reportBase. null: write nothing. */
  reportDir?: string | null;
  reportBase?: string;
  signal?: AbortSignal;
  /** Store of the embedded broker. */
  brokerPersistence?: 'sqlite' | 'memory';
  snapshotIntervalMs?: number;
  /** The shard worker module (tests running from sources point it at the built file). */
  workerFile?: string;
  /**
   * Run only one deterministic slice of the devices (`--shard index/count`, index 1-based): those whose
   * global device number d has d % count == index - 1. Needs a target: slices share one broker.
   */
  slice?: RunSlice;
  /** A local broker process (not embedded) whose CPU and RSS go into the timeline, as the embedded broker's do. */
  brokerPid?: number;
  /**
   * A test aid (`run --clock-skew-ms`): every clock reading of the shards (stamps, receive times, the
   * checker's times) is off by this many ms, as on a machine whose clock is; `merge` must estimate it.
   */
  clockSkewMs?: number;
  /**
   * A shared t=0: chosen by a coordinating process (`run --processes`: one timeline over several
   * processes) or agreed in advance (`run --start-at TIME`). Called once the consumers are subscribed;
   * resolves with the epoch (Date.now() of t=0) to start at instead of now + 50 ms, or rejects to refuse
   * the run. Shards get `start` 50 ms ahead of it; a wait of a few seconds or more is reported as events
   * as it goes. An epoch already past still anchors the timeline (devices due earlier connect at once),
   * with a warning event and a note in run.json saying how late this run started.
   */
  startAt?: () => Promise<number>;
  /** The chaos actions this run performs (default: all); a coordinating process performs the others once. */
  chaosFilter?: (action: ChaosAction) => boolean;
}

/** Largest clock skew a run accepts (one hour: the latency histograms' range). */
export const MAX_CLOCK_SKEW_MS = 3_600_000;

/** Checks a slice: whole numbers, 1 <= index <= count. */
export function validateSlice(slice: RunSlice): string | null {
  if (!Number.isInteger(slice.count) || slice.count < 1) return `the number of slices must be a whole number of at least 1, got ${String(slice.count)}`;
  if (!Number.isInteger(slice.index) || slice.index < 1 || slice.index > slice.count) return `the slice index must be a whole number from 1 to ${slice.count}, got ${String(slice.index)}`;
  return null;
}

export interface RunOutcome {
  result: RunResult;
  reportPath: string | null;
  /** run.json could not be written at the end (e.g. the disk filled up during the run): why. The result and the summary are still there. */
  reportError?: string;
}

/**
 * The target did not accept a TCP connection: exit code 3. The message is the problem, then the advice
 * for a single run, kept apart so a caller with other advice (a capacity ramp) can use the problem alone.
 */
export class TargetUnreachableError extends Error {
  constructor(
    readonly problem: string,
    readonly advice = '',
  ) {
    super(advice === '' ? problem : `${problem} ${advice}`);
    this.name = 'TargetUnreachableError';
  }
}

/** The run cannot start on this machine as configured (file limit, ...): exit code 2. */
export class RunSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunSetupError';
  }
}

function defaultPort(protocol: string): number {
  switch (protocol) {
    case 'mqtts:':
      return 8883;
    case 'ws:':
      return 80;
    case 'wss:':
      return 443;
    default:
      return 1883;
  }
}

/** A TCP connect to every URL of the target, bounded, before any worker starts. */
export async function checkReachable(target: TargetSpec): Promise<void> {
  const timeoutMs = Math.min(target.connectTimeoutMs, 5000);
  await Promise.all(
    target.urls.map(
      (raw) =>
        new Promise<void>((resolve, reject) => {
          const url = new URL(raw);
          const port = url.port === '' ? defaultPort(url.protocol) : Number(url.port);
          const host = url.hostname.replace(/^\[|\]$/g, '');
          const socket = net.connect({ host, port });
          const fail = (why: string): void => {
            socket.destroy();
            reject(new TargetUnreachableError(`target ${raw} is unreachable: ${why}.`, 'Check that the broker runs and the URL is right, or omit the target to use the embedded reference broker.'));
          };
          socket.setTimeout(timeoutMs, () => fail(`no answer within ${timeoutMs} ms`));
          socket.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
          socket.once('connect', () => {
            socket.destroy();
            resolve();
          });
        }),
    ),
  );
}

/**
 * V8's young generation dominates a shard's RSS when it holds many idle devices (measured with
 * bench/simulator: 12.8 KB per idle device at 5,000 devices with Node's default, 5.2 KB with 4 MB), but a
 * small one costs throughput at high publish rates (QoS 0 per worker: 100k msg/s default vs 60k with
 * 4 MB). So shards whose scenario publishes little per worker get the small young generation.
 */
export function shardResourceLimits(scenario: Scenario, workers: number): { resourceLimits?: { maxYoungGenerationSizeMb: number } } {
  return expectedPublishRates(scenario).total / workers < LOW_RATE_PER_WORKER ? { resourceLimits: { maxYoungGenerationSizeMb: 4 } } : {};
}

/** Steady publishes per second per worker below which a shard is treated as memory-bound rather than rate-bound. */
const LOW_RATE_PER_WORKER = 10_000;

/** How long after a snapshot boundary the orchestrator takes its timeline point (snapshots in flight arrive first). */
const TICK_LAG_MS = 250;

function phaseAt(scenario: Scenario, atMs: number): TimelinePoint['phase'] {
  const { rampUpMs, steadyMs } = scenario.phases;
  if (atMs < 0) return 'prepare';
  if (atMs < rampUpMs) return 'ramp-up';
  if (atMs < rampUpMs + steadyMs) return 'steady';
  if (atMs < scenario.durationMs) return 'ramp-down';
  return 'drain';
}

/** A wait for a shared t=0 at least this long is announced by events (shorter ones, as --processes' second, are not). */
const START_WAIT_NOTICE_MS = 3000;

/** How long until the next "waiting for the shared start" event, with `leftMs` to wait: rarer the further off the start is. */
export function startWaitNoticeEveryMs(leftMs: number): number {
  if (leftMs > 3_600_000) return 1_800_000;
  if (leftMs > 600_000) return 300_000;
  if (leftMs > 120_000) return 60_000;
  return 10_000;
}

function formatWait(ms: number): string {
  const s = Math.ceil(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 120 ? `${m} min` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Resolves after `ms` unless cleared; the timer never keeps the process alive past the run. */
function delay(ms: number, timers: Set<NodeJS.Timeout>): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      timers.delete(t);
      resolve();
    }, Math.max(0, ms));
    timers.add(t);
  });
}

function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export async function runScenario(input: Scenario, options: RunOptions): Promise<RunOutcome> {
  const reporter = options.reporter;
  const snapshotIntervalMs = options.snapshotIntervalMs ?? 1000;
  const startedAt = new Date();
  let scenario = input;
  let broker: EmbeddedBroker | null = null;
  const slice = options.slice;
  if (slice !== undefined) {
    const problem = validateSlice(slice);
    if (problem !== null) throw new RunSetupError(`--shard ${slice.index}/${slice.count}: ${problem}`);
    if (scenario.target === null) {
      throw new RunSetupError(`--shard ${slice.index}/${slice.count} needs a target (--target URL or a target in the scenario): every slice must run against the same broker, and each would otherwise start its own embedded one`);
    }
  }
  if (options.clockSkewMs !== undefined && !(Number.isFinite(options.clockSkewMs) && Math.abs(options.clockSkewMs) <= MAX_CLOCK_SKEW_MS)) {
    throw new RunSetupError(`--clock-skew-ms: expected a number of milliseconds from -${MAX_CLOCK_SKEW_MS} to ${MAX_CLOCK_SKEW_MS}, got ${String(options.clockSkewMs)}`);
  }
  // With a slice, only its devices (and consumers) run here.
  const own = sliceDeviceCounts(scenario, slice);
  const totalDevices = own.devices;

  if (options.brokerPid !== undefined && process.platform === 'linux' && !new PidUsageSampler(options.brokerPid).exists()) {
    throw new RunSetupError(`--broker-pid ${options.brokerPid}: no such process on this machine. Give the pid of the broker process the run targets (e.g. pgrep mosquitto), or leave it out.`);
  }
  const limit = checkFileLimit(totalDevices);
  if (!limit.ok) throw new RunSetupError(limit.message ?? 'not enough file descriptors for this many devices');
  const reportDir = options.reportDir === null ? null : (options.reportDir ?? reportDirFor(slice === undefined ? scenario.name : `${scenario.name}-shard-${slice.index}of${slice.count}`, startedAt, options.reportBase));
  // Created now, so a folder that cannot be written is said before the run, not after it; the folders
  // made for it are removed again (while empty) if the run does not get going.
  let createdDirs: string[] = [];
  const dropNewReportDir = (): void => {
    for (const dir of createdDirs.reverse()) {
      try {
        rmdirSync(dir);
      } catch {
        return; // Not empty (someone wrote there) or gone: leave it and its parents.
      }
    }
  };
  if (reportDir !== null) {
    try {
      createdDirs = prepareReportDir(reportDir);
    } catch (err) {
      throw new RunSetupError((err as Error).message);
    }
  }

  let target: TargetSpec;
  try {
    if (scenario.target === null) {
      broker = await startEmbeddedBroker({ persistence: options.brokerPersistence ?? 'sqlite' });
      target = { urls: [broker.url], protocolVersion: 5, connectTimeoutMs: 10_000 };
      scenario = { ...scenario, target };
    } else {
      target = scenario.target;
      await checkReachable(target);
    }
  } catch (err) {
    dropNewReportDir();
    throw err;
  }

  const workers = Math.max(1, Math.min(options.workers, totalDevices));
  const plan = planDevices(scenario, workers, slice);
  const busiest = busiestSourcePair(plan.shards.flat());
  const localPorts = portRangeCheck(busiest.devices);
  if (!localPorts.ok) {
    if (broker) await broker.stop().catch(() => undefined);
    dropNewReportDir();
    throw new RunSetupError(`${localPorts.message ?? 'not enough local ports'} (busiest pair: ${busiest.pair})`);
  }
  const fleetNames = scenario.fleets.map((f) => f.name);
  const aggregator = new RunAggregator(fleetNames, workers);
  const pool = new Piscina({
    filename: options.workerFile ?? new URL('../shard/worker.js', import.meta.url).href,
    minThreads: workers,
    maxThreads: workers,
    idleTimeout: 60_000,
    ...shardResourceLimits(scenario, workers),
  });

  const ports: Array<import('node:worker_threads').MessagePort> = [];
  const waiters = new Map<string, { count: number; resolve: () => void }>();
  const readyFailures: string[] = [];
  let readyConnected = 0;
  let outstandingAfterDrain = 0;
  const arrive = (kind: string): void => {
    const w = waiters.get(kind);
    if (w && --w.count === 0) {
      waiters.delete(kind);
      w.resolve();
    }
  };
  const expect = (kind: string): Promise<void> =>
    new Promise((resolve) => waiters.set(kind, { count: workers, resolve }));
  const broadcast = (message: ToShard): void => {
    for (const port of ports) port.postMessage(message);
  };
  let epochMs = 0;
  const nowAt = (): number => (epochMs === 0 ? -1 : Date.now() - epochMs);
  const chaos = new ChaosTimeline((scenario.chaos ?? []).filter(options.chaosFilter ?? (() => true)), {
    broker,
    broadcast,
    event: (e) => reporter.event(e),
    fleetSizes: Object.fromEntries(scenario.fleets.map((f) => [f.name, f.count])),
    cwd: chaosWorkingDir(scenario.sourceFile),
  });

  const onShardMessage = (m: FromShard): void => {
    switch (m.type) {
      case 'ready':
        readyConnected += m.connected;
        if (m.failed > 0) readyFailures.push(m.firstError ?? `${m.failed} consumer(s) failed to connect`);
        arrive('ready');
        break;
      case 'snapshot':
        aggregator.addSnapshot(m.shard, m.snapshot);
        break;
      case 'drained':
        outstandingAfterDrain += m.outstanding;
        arrive('drained');
        break;
      case 'event':
        reporter.event({ atMs: m.atMs, level: m.level, message: m.message });
        break;
    }
  };

  const readyAll = expect('ready');
  const tasks: Array<Promise<ShardResult>> = plan.shards.map((devices, shard) => {
    const channel = new MessageChannel();
    ports.push(channel.port1);
    channel.port1.on('message', onShardMessage);
    const task: ShardTask = { shard, shardCount: workers, scenario, devices, snapshotIntervalMs, port: channel.port2 };
    if (slice !== undefined) task.slice = slice;
    if (options.clockSkewMs !== undefined && options.clockSkewMs !== 0) task.clockSkewMs = options.clockSkewMs;
    return pool.run(task, { transferList: [channel.port2] }) as Promise<ShardResult>;
  });
  // A shard that crashes must end the run instead of leaving it waiting for messages that never come.
  let shardFailure: Error | null = null;
  const failed = new Promise<never>((_, reject) => {
    for (const t of tasks) t.catch((err: unknown) => {
      shardFailure = err instanceof Error ? err : new Error(String(err));
      reject(shardFailure);
    });
  });
  failed.catch(() => undefined);

  reporter.start({
    scenario,
    targetDescription: broker ? `embedded reference broker ${broker.url} (pid ${broker.pid})` : target.urls.join(', '),
    workers,
    devices: totalDevices,
  });

  let aborted = false;
  const abortPromise = new Promise<void>((resolve) => {
    if (options.signal?.aborted) resolve();
    options.signal?.addEventListener('abort', () => resolve(), { once: true });
  }).then(() => {
    aborted = true;
  });

  let ticker: NodeJS.Timeout | null = null;
  let lastPhase = '';
  const selfUsage = new SelfUsageSampler();
  const pidUsage = broker === null && options.brokerPid !== undefined ? new PidUsageSampler(options.brokerPid) : null;
  const brokerSample = (): { cpu: number; rssBytes: number } | undefined => (broker !== null ? broker.sample() : (pidUsage?.sample() ?? undefined));
  const tick = (atMs = nowAt()): void => {
    const phase = phaseAt(scenario, atMs);
    if (phase !== lastPhase) {
      lastPhase = phase;
      reporter.phase(phase, Math.max(0, atMs));
    }
    const point = aggregator.point(Math.max(0, atMs), phase, brokerSample());
    point.simulator = selfUsage.sample();
    reporter.point(point, aggregator.latestCounters());
  };

  const timers = new Set<NodeJS.Timeout>();
  let outcome: RunResult['outcome'] = 'completed';
  const errors: string[] = [];
  let results: ShardResult[] = [];
  let coordinatedEpochMs: number | null = null;
  /** What run.json should say about the start (a late start on a shared t=0). */
  const startNotes: string[] = [];
  try {
    // Prepare: consumers connect and subscribe before anything is published.
    broadcast({ type: 'prepare' });
    await Promise.race([readyAll, failed, abortPromise, delay(target.connectTimeoutMs + 15_000, timers)]);
    if (!aborted) {
      if (waiters.has('ready')) throw new Error('shards did not report ready in time');
      const consumers = own.consumers;
      if (consumers > 0 && readyConnected === 0) {
        outcome = 'unreachable';
        errors.push(...readyFailures);
        throw new TargetUnreachableError(`no consumer could connect and subscribe: ${readyFailures[0] ?? 'unknown reason'}`);
      }
      for (const f of readyFailures) errors.push(f);
      if (options.startAt !== undefined) {
        const at = await Promise.race([options.startAt(), failed, abortPromise.then(() => null)]);
        if (at !== null) {
          const shared = new Date(at).toISOString();
          let noticeAt = at - Date.now() >= START_WAIT_NOTICE_MS ? Date.now() : Infinity;
          while (!aborted && Date.now() < at - 50) {
            const leftMs = at - Date.now();
            if (Date.now() >= noticeAt) {
              reporter.event({ atMs: 0, level: 'info', message: `consumers subscribed; waiting for the shared start at ${shared} (in ${formatWait(leftMs)})` });
              noticeAt = leftMs - startWaitNoticeEveryMs(leftMs) >= START_WAIT_NOTICE_MS ? Date.now() + startWaitNoticeEveryMs(leftMs) : Infinity;
            }
            await Promise.race([delay(Math.min(at - 50, noticeAt) - Date.now(), timers), failed, abortPromise]);
          }
          coordinatedEpochMs = at;
        }
      }
    }
    if (!aborted) {
      epochMs = coordinatedEpochMs ?? Date.now() + 50;
      const lateMs = Date.now() - epochMs;
      if (lateMs > 0) {
        reporter.event({ atMs: lateMs, level: 'warn', message: `this process started its timeline ${lateMs} ms after the shared t=0` });
        // Never late without a shared t=0 (now + 50 ms).
        startNotes.push(
          `this run started ${lateMs} ms after its shared t=0 (${new Date(epochMs).toISOString()}), on that t=0 all the same: ` +
            `devices due to connect in those ${lateMs} ms connected at once, and its timeline was that much shorter than the other slices'`,
        );
      }
      broadcast({ type: 'start', epochMs });
      chaos.start(epochMs);
      // Points are taken a little after each snapshot boundary (epoch + k × interval), when every shard's
      // snapshot for that boundary has arrived, and are stamped with the boundary itself.
      const nextTick = (): void => {
        const k = Math.floor((Date.now() - epochMs) / snapshotIntervalMs) + 1;
        ticker = setTimeout(() => {
          tick(k * snapshotIntervalMs);
          nextTick();
        }, epochMs + k * snapshotIntervalMs + TICK_LAG_MS - Date.now());
      };
      nextTick();
      const timelineEnd = delay(epochMs + scenario.durationMs - Date.now(), timers);
      await Promise.race([timelineEnd, failed, abortPromise]);
    }
    if (!aborted) {
      const drainedAll = expect('drained');
      broadcast({ type: 'stop' });
      await Promise.race([drainedAll, failed, abortPromise, delay(scenario.drainMs + 5000, timers)]);
      // Deliveries to consumers in other shards trail the acknowledgements: wait until they go quiet.
      // Quiet also needs every subscriber connected with no (re)connect during the interval: a
      // persistent session resumed just before the end gets its queued messages only after its CONNACK,
      // and ending the run then would count them as lost (seen under load with 3G links that fail often).
      // Devices that subscribe (PLCs taking commands) leave during ramp-down; consumers stay to the end.
      const subscriberFleets = scenario.fleets.filter((f) => f.subscribe.length > 0 && (f.model === 'consumer' || scenario.phases.rampDownMs <= 0));
      const subscribers = subscriberFleets.map((f) => f.name);
      // Over lossy links deliveries pause for retransmission stalls while messages are still on their way
      // (3G: a second each, chained in bursts): quiet must last longer than the slowest such pause.
      const quietMs = Math.max(0, ...subscriberFleets.map((f) => (f.network === undefined ? 0 : deliveryPauseMs(f.network))));
      const quietDeadline = Date.now() + scenario.drainMs;
      let last = '';
      let quietSince = Date.now();
      while (!aborted && Date.now() < quietDeadline) {
        await Promise.race([delay(snapshotIntervalMs + 100, timers), abortPromise, failed]);
        const counters = aggregator.latestCounters();
        const totals = sumFleets(counters);
        const seen = totals.delivered[0] + totals.delivered[1] + totals.delivered[2] + totals.duplicates[0] + totals.duplicates[1] + totals.duplicates[2];
        const subs = subscribers.map((name) => counters[name]).filter((c) => c !== undefined);
        const settled = subs.every((c) => c.connected >= c.devices);
        const state = `${seen}/${subs.reduce((n, c) => n + c.connects, 0)}`;
        if (state !== last || !settled) {
          last = state;
          quietSince = Date.now();
          continue;
        }
        if (Date.now() - quietSince >= quietMs) break;
      }
      if (outstandingAfterDrain > 0) errors.push(`${outstandingAfterDrain} QoS 1/2 publish(es) were still unacknowledged after the ${scenario.drainMs} ms drain`);
    }
    if (aborted) outcome = 'aborted';
    broadcast({ type: aborted ? 'abort' : 'finish' });
    results = await bounded(Promise.race([Promise.all(tasks), failed]), 20_000, 'every shard finishing');
    await chaos.stop();
    if (ticker) {
      clearTimeout(ticker);
      ticker = null;
      tick();
    }
  } catch (err) {
    for (const t of timers) clearTimeout(t);
    if (ticker) clearTimeout(ticker);
    await chaos.stop();
    broadcast({ type: 'abort' });
    await bounded(Promise.allSettled(tasks), 10_000, 'shards stopping').catch(() => undefined);
    await pool.destroy().catch(() => undefined);
    if (broker) await broker.stop().catch(() => undefined);
    if (err instanceof TargetUnreachableError) throw err;
    if (shardFailure) throw new Error(`a shard worker failed: ${(shardFailure as Error).message}`);
    throw err;
  }
  for (const t of timers) clearTimeout(t);
  await pool.destroy().catch(() => undefined);
  for (const port of ports) port.close();

  const merged = aggregator.finish(results);
  let brokerInfo: RunResult['broker'];
  if (broker) {
    const stats = broker.stats();
    brokerInfo = { embedded: true, pid: broker.pid, cpuSeconds: stats.cpuSeconds, peakRssBytes: stats.peakRssBytes, version: broker.version };
    await broker.stop().catch((err: unknown) => errors.push(`embedded broker did not stop cleanly: ${err instanceof Error ? err.message : String(err)}`));
  }
  const disconnects = Object.fromEntries(disconnectCauses.map((c) => [c, merged.totals.disconnects[c]])) as Record<DisconnectCause, number>;
  const result: RunResult = {
    schemaVersion: runResultSchemaVersion,
    tool: { name: 'mqtt-sim', version: packageVersion() },
    scenario: input,
    environment: captureEnvironment(workers),
    target: { embedded: broker !== null, urls: target.urls, protocolVersion: target.protocolVersion },
    startedAt: startedAt.toISOString(),
    ...(epochMs !== 0 ? { timelineStartedAt: new Date(epochMs).toISOString() } : {}),
    finishedAt: new Date().toISOString(),
    outcome,
    totals: merged.totals,
    fleets: merged.fleets,
    latency: merged.latency,
    histograms: merged.histograms,
    timeline: aggregator.timeline,
    ledger: merged.ledger,
    checker: emptyCheckerResult(),
    brokerViolations: merged.brokerViolations,
    generator: merged.generator,
    assertions: [],
    verdict: 'fail',
    errors: [...errors, ...merged.errors],
    disconnectCauses: disconnects,
    chaos: chaos.records,
  };
  if (brokerInfo) result.broker = brokerInfo;
  if (startNotes.length > 0) result.notes = [...startNotes];
  if (slice !== undefined) {
    // The raw ledgers let `mqtt-sim merge` run the checker across every slice.
    result.shard = { index: slice.index, count: slice.count };
    if (merged.clock !== undefined) result.sliceClock = merged.clock;
    result.ledgers = merged.ledgers;
  }
  judgeRun(result, scenario, merged.ledgers);

  let reportPath: string | null = null;
  let reportError: string | undefined;
  if (reportDir !== null) {
    try {
      reportPath = writeRunResult(reportDir, result);
      // report.html, summary.md, junit.xml: a failure is reported, run.json is already safe.
      for (const problem of writeReportFiles(reportDir, result).problems) reporter.event({ atMs: Math.max(0, nowAt()), level: 'error', message: problem });
    } catch (err) {
      // The folder was writable at the start (e.g. the disk filled up since): the result is still
      // printed, and the caller says what was not kept.
      reportError = (err as Error).message;
      reporter.event({ atMs: Math.max(0, nowAt()), level: 'error', message: reportError });
    }
  }
  reporter.finish(result, reportPath === null ? null : reportPath.replace(/\/run\.json$/, ''));
  return reportError === undefined ? { result, reportPath } : { result, reportPath, reportError };
}
