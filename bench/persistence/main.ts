/**
 * Persistence benchmark: what durability costs on the fan-in QoS 1 flow of bench/broker (50 publishers →
 * 1 subscriber, 64 B, ≤ 32 unacknowledged per publisher), for
 *
 *   ours-memory           ours, --persistence memory
 *   ours-sqlite           ours, --persistence sqlite --durability process (PUBACK after the commit)
 *   ours-sqlite-power     ours, --persistence sqlite --durability power   (commit + fsync)
 *   mosquitto-persistent  Mosquitto 2.0.11, persistence true (persistence_location a fresh directory)
 *   mosquitto             Mosquitto 2.0.11, persistence false (the BENCHMARKING.md anchor)
 *
 * each once with a clean-session subscriber (3.1.1 clean=true: our broker persists none of its
 * deliveries) and once with a persistent-session subscriber (clean=false: every message is queued for a
 * persistent session, so our sqlite store writes every one of them — the durability case that matters).
 *
 * Method of ../shared/BENCHMARKING.md: fresh broker and fresh, empty data directory per run, variants
 * alternating A B C D E, medians with min–max over --runs runs, quiet-machine wait before each run, the
 * generator's CPU reported next to each figure.
 *
 *   node dist/bench/persistence/main.js [--runs N] [--seconds S] [--only LIST]
 *                                       [--quiet-wait S] [--retries N]
 *
 * One JSON document goes to stdout; progress and summary tables go to stderr.
 */
import { randomInt } from 'node:crypto';
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { median as medianOf, min as minOf, max as maxOf, ratio } from '../lib/stats.js';
import {
  mergeFlags, mosquittoConfig, MOSQUITTO_BIN, mosquittoVersion, OURS_BASELINE_ARGS, oursAvailability, startBroker,
  type BrokerName, type RunningBroker,
} from '../broker/brokers.js';
import type { Connection } from '../broker/client.js';
import { NOISY_OTHER_PCT, QUIET_BUSY_PCT, waitForQuiet } from '../broker/quiet.js';
import {
  DRAIN_MAX_MS, FANIN_QOS1, MAX_INFLIGHT, PAYLOAD_BYTES, runFlow, WARMUP_MS, type RunContext, type RunMeasure,
} from '../broker/scenarios.js';

// ---------------------------------------------------------------------------------------------
// What is measured

type SessionMode = 'clean' | 'persistent';

interface SessionSpec {
  name: SessionMode;
  title: string;
  clean: boolean;
}

const sessions: readonly SessionSpec[] = [
  { name: 'clean', title: 'clean-session subscriber (3.1.1 clean=true): deliveries not persisted by ours', clean: true },
  { name: 'persistent', title: 'persistent-session subscriber (3.1.1 clean=false): every message written by ours/sqlite', clean: false },
];

interface Variant {
  name: string;
  broker: BrokerName;
  description: string;
  /** Arguments over OURS_BASELINE_ARGS and --data-dir (ours only; they replace a baseline flag they repeat). */
  oursArgs: readonly string[];
  /** A fresh persistence directory: ours --data-dir, Mosquitto persistence true + persistence_location. */
  persistentDataDir: boolean;
}

const variants: readonly Variant[] = [
  {
    name: 'ours-memory', broker: 'ours', description: 'ours, --persistence memory',
    oursArgs: ['--persistence', 'memory'], persistentDataDir: true,
  },
  {
    name: 'ours-sqlite', broker: 'ours', description: 'ours, --persistence sqlite --durability process',
    oursArgs: ['--persistence', 'sqlite', '--durability', 'process'], persistentDataDir: true,
  },
  {
    name: 'ours-sqlite-power', broker: 'ours', description: 'ours, --persistence sqlite --durability power',
    oursArgs: ['--persistence', 'sqlite', '--durability', 'power'], persistentDataDir: true,
  },
  {
    name: 'mosquitto-persistent', broker: 'mosquitto', description: 'Mosquitto, persistence true (persistence_location a fresh dir)',
    oursArgs: [], persistentDataDir: true,
  },
  {
    name: 'mosquitto', broker: 'mosquitto', description: 'Mosquitto, persistence false (BENCHMARKING.md anchor)',
    oursArgs: [], persistentDataDir: false,
  },
];

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  runs: number;
  seconds: number;
  sessions: SessionSpec[];
  variants: Variant[];
  quietWait: number;
  retries: number;
}

const usage = `usage: node dist/bench/persistence/main.js [options]
  --runs N          repetitions per variant and session mode (default 3)
  --seconds S       measured window per run (default 5)
  --only LIST       session modes and/or variants, comma separated (default: all of both)
                    session modes: ${sessions.map((s) => s.name).join(', ')}
                    variants: ${variants.map((v) => v.name).join(', ')}
  --quiet-wait S    before each run, wait up to S seconds for other jobs to leave the CPUs below
                    ${QUIET_BUSY_PCT}% of one core (default 60; 0 = don't wait)
  --retries N       repeat a run during which other jobs used > ${NOISY_OTHER_PCT}% of one core, at most
                    N times (default 2; the last attempt counts, marked noisy)
`;

function parseArgs(argv: readonly string[]): Options {
  const opts: Options = { runs: 3, seconds: 5, sessions: [...sessions], variants: [...variants], quietWait: 60, retries: 2 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    const number = (integer: boolean, allowZero: boolean): number => {
      const v = value();
      const n = Number(v);
      if (v.trim() === '' || !Number.isFinite(n) || n < 0 || (n === 0 && !allowZero) || (integer && !Number.isInteger(n))) {
        throw new Error(`${arg}: expected a ${allowZero ? 'non-negative' : 'positive'} ${integer ? 'integer' : 'number'}, got '${v}'`);
      }
      return n;
    };
    switch (arg) {
      case '--runs': opts.runs = number(true, false); break;
      case '--seconds': opts.seconds = number(false, false); break;
      case '--quiet-wait': opts.quietWait = number(false, true); break;
      case '--retries': opts.retries = number(true, true); break;
      case '--only': {
        const keys = value().split(',').map((k) => k.trim()).filter(Boolean);
        const chosenSessions = sessions.filter((s) => keys.includes(s.name));
        const chosenVariants = variants.filter((v) => keys.includes(v.name));
        const unknown = keys.filter((k) => !sessions.some((s) => s.name === k) && !variants.some((v) => v.name === k));
        if (unknown.length > 0) {
          throw new Error(`--only: unknown '${unknown.join(', ')}'; session modes: ${sessions.map((s) => s.name).join(', ')}; variants: ${variants.map((v) => v.name).join(', ')}`);
        }
        if (keys.length === 0) throw new Error('--only: name at least one session mode or variant');
        if (chosenSessions.length > 0) opts.sessions = chosenSessions;
        if (chosenVariants.length > 0) opts.variants = chosenVariants;
        break;
      }
      case '--help':
      case '-h':
        process.stderr.write(usage);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument '${arg}'\n${usage}`);
    }
  }
  return opts;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function log(line: string): void {
  process.stderr.write(line + '\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function round(x: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}

function fmt(x: number | null | undefined, decimals: number): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  return x.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** Bytes of the regular files under `dir` (recursive), 0 when it is missing. */
function directoryBytes(dir: string): number {
  let total = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    try {
      if (entry.isDirectory()) total += directoryBytes(path);
      else if (entry.isFile()) total += statSync(path).size;
    } catch {
      // removed meanwhile
    }
  }
  return total;
}

/** File system (type and device) holding `path`, from /proc/mounts: tmpfs would make fsync free. */
function fileSystemOf(path: string): { mountPoint: string; type: string; device: string } | null {
  try {
    const real = realpathSync(path);
    let best: { mountPoint: string; type: string; device: string } | null = null;
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [device, mountPoint, type] = line.split(' ');
      if (device === undefined || mountPoint === undefined || type === undefined) continue;
      const inside = real === mountPoint || real.startsWith(mountPoint.endsWith('/') ? mountPoint : `${mountPoint}/`);
      if (inside && (best === null || mountPoint.length >= best.mountPoint.length)) best = { mountPoint, type, device };
    }
    return best;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Running

interface RunRecord {
  run: number;
  throughput?: number;
  latencyP50Ms?: number;
  latencyP99Ms?: number;
  generatorCpuPct?: number;
  brokerCpuPct?: number;
  brokerRssMb?: number;
  otherCpuPct?: number;
  busyBeforePct?: number;
  discardedAttempts?: number;
  noisy?: boolean;
  loss?: number | null;
  /** Storage writes of the broker process in the window (/proc/PID/io write_bytes), MiB/s. */
  diskWriteMbPerSec?: number;
  diskWriteBytesPerDelivery?: number;
  /** Size of the persistence directory after the drain (before the broker stops), MiB; null without one. */
  dataDirMbAfterDrain?: number | null;
  details?: Record<string, number>;
  warnings?: string[];
  error?: string;
}

function runTimeoutMs(opts: Options): number {
  return WARMUP_MS + opts.seconds * 1000 + DRAIN_MAX_MS + 90_000;
}

async function runOnce(session: SessionSpec, variant: Variant, opts: Options, run: number): Promise<RunRecord> {
  let broker: RunningBroker | undefined;
  const opened: Connection[] = [];
  let timer: NodeJS.Timeout | undefined;
  const abort = new AbortController();
  try {
    broker = await startBroker(variant.broker, { oursArgs: variant.oursArgs, persistentDataDir: variant.persistentDataDir });
    const running = broker;
    const ctx: RunContext = {
      broker: running, seconds: opts.seconds, runId: randomInt(1, 0xffffffff), connections: 0, parallel: 100, opened,
      signal: abort.signal,
    };
    const limit = runTimeoutMs(opts);
    const measure: RunMeasure = await Promise.race([
      runFlow(ctx, { ...FANIN_QOS1, subscriberClean: session.clean, diskWrites: true }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`run did not finish within ${limit / 1000} s`)), limit);
      }),
    ]);
    const dataDirMb = running.dataDir === null ? null : round(directoryBytes(running.dataDir) / 2 ** 20, 2);
    const d = measure.details;
    return {
      run,
      throughput: Math.round(measure.value),
      latencyP50Ms: d['latencyP50Ms'],
      latencyP99Ms: d['latencyP99Ms'],
      generatorCpuPct: round(measure.generatorCpuPct, 1),
      brokerCpuPct: round(measure.brokerCpuPct, 1),
      brokerRssMb: round(measure.brokerRssMb, 1),
      otherCpuPct: round(measure.otherCpuPct, 1),
      loss: measure.loss,
      diskWriteMbPerSec: d['brokerDiskWriteMbPerSec'],
      diskWriteBytesPerDelivery: d['brokerDiskWriteBytesPerDelivery'],
      dataDirMbAfterDrain: dataDirMb,
      details: d,
      ...(measure.warnings.length > 0 ? { warnings: measure.warnings } : {}),
    };
  } catch (err) {
    return { run, error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
    abort.abort();
    // The broker goes first, so TIME_WAIT lands on its side (as in bench/broker).
    if (broker !== undefined) await broker.stop();
    for (const conn of opened) conn.destroy();
  }
}

function describe(record: RunRecord): string {
  if (record.error !== undefined) return `FAILED: ${record.error}`;
  const parts = [
    `${fmt(record.throughput, 0)} msg/s`,
    `p50 ${fmt(record.latencyP50Ms, 2)} ms`,
    `p99 ${fmt(record.latencyP99Ms, 2)} ms`,
    `generator ${fmt(record.generatorCpuPct, 1)}% CPU`,
    `broker ${fmt(record.brokerCpuPct, 1)}% CPU`,
    `${fmt(record.brokerRssMb, 1)} MB`,
    `disk ${fmt(record.diskWriteMbPerSec, 2)} MB/s (${fmt(record.diskWriteBytesPerDelivery, 0)} B/msg)`,
    `others ${fmt(record.otherCpuPct, 1)}% CPU`,
    `loss ${record.loss ?? '—'}`,
  ];
  for (const w of record.warnings ?? []) parts.push(`WARNING ${w}`);
  return parts.join(' · ');
}

// ---------------------------------------------------------------------------------------------
// Summaries

interface Spread { median: number | null; min: number | null; max: number | null }

function spread(values: readonly (number | null | undefined)[], decimals: number): Spread {
  const finite = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (finite.length === 0) return { median: null, min: null, max: null };
  return { median: round(medianOf(finite), decimals), min: round(minOf(finite), decimals), max: round(maxOf(finite), decimals) };
}

interface ResultRow {
  session: SessionMode;
  variant: string;
  broker: BrokerName;
  description: string;
  /** Delivered msg/s in the measured window. */
  throughput: Spread;
  latencyP50Ms: Spread;
  latencyP99Ms: Spread;
  generatorCpuPct: Spread;
  brokerCpuPct: Spread;
  brokerRssMb: Spread;
  otherCpuPct: Spread;
  diskWriteMbPerSec: Spread;
  diskWriteBytesPerDelivery: Spread;
  dataDirMbAfterDrain: Spread;
  /** Summed over the runs: published − distinct deliveries after the 2 s drain. */
  lossCount: number | null;
  duplicates: number;
  okRuns: number;
  runs: RunRecord[];
  errors: string[];
  warnings: string[];
  noisyRuns: number;
}

function summarize(session: SessionSpec, variant: Variant, runs: RunRecord[]): ResultRow {
  const ok = runs.filter((r) => r.error === undefined);
  const losses = ok.map((r) => r.loss).filter((l): l is number => typeof l === 'number');
  return {
    session: session.name,
    variant: variant.name,
    broker: variant.broker,
    description: variant.description,
    throughput: spread(ok.map((r) => r.throughput), 0),
    latencyP50Ms: spread(ok.map((r) => r.latencyP50Ms), 3),
    latencyP99Ms: spread(ok.map((r) => r.latencyP99Ms), 3),
    generatorCpuPct: spread(ok.map((r) => r.generatorCpuPct), 1),
    brokerCpuPct: spread(ok.map((r) => r.brokerCpuPct), 1),
    brokerRssMb: spread(ok.map((r) => r.brokerRssMb), 1),
    otherCpuPct: spread(ok.map((r) => r.otherCpuPct), 1),
    diskWriteMbPerSec: spread(ok.map((r) => r.diskWriteMbPerSec), 2),
    diskWriteBytesPerDelivery: spread(ok.map((r) => r.diskWriteBytesPerDelivery), 0),
    dataDirMbAfterDrain: spread(ok.map((r) => r.dataDirMbAfterDrain), 2),
    lossCount: losses.length > 0 ? losses.reduce((a, b) => a + b, 0) : null,
    duplicates: ok.reduce((sum, r) => sum + (r.details?.['duplicates'] ?? 0), 0),
    okRuns: ok.length,
    runs,
    errors: runs.filter((r) => r.error !== undefined).map((r) => `run ${r.run}: ${r.error!}`),
    warnings: runs.flatMap((r) => (r.warnings ?? []).map((w) => `run ${r.run}: ${w}`)),
    noisyRuns: runs.filter((r) => r.noisy === true).length,
  };
}

interface RatioEntry {
  /** a / b of the medians. */
  throughput: number | null;
  /** a / b of the median p99 latencies (< 1: a is faster). */
  latencyP99: number | null;
  goal?: string;
  goalMet?: boolean | null;
}

function ratiosFor(rows: readonly ResultRow[], session: SessionMode): Record<string, RatioEntry> {
  const of = (variant: string): ResultRow | undefined => rows.find((r) => r.session === session && r.variant === variant);
  const r = (a: number | null | undefined, b: number | null | undefined): number | null =>
    a === null || a === undefined || b === null || b === undefined || b === 0 ? null : ratio(a, b);
  const pair = (a: string, b: string): RatioEntry => ({
    throughput: r(of(a)?.throughput.median, of(b)?.throughput.median),
    latencyP99: r(of(a)?.latencyP99Ms.median, of(b)?.latencyP99Ms.median),
  });
  const withGoal = (entry: RatioEntry): RatioEntry => ({
    ...entry, goal: 'throughput ratio ≥ 0.5', goalMet: entry.throughput === null ? null : entry.throughput >= 0.5,
  });
  return {
    'ours-sqlite / ours-memory': withGoal(pair('ours-sqlite', 'ours-memory')),
    'ours-sqlite-power / ours-memory': withGoal(pair('ours-sqlite-power', 'ours-memory')),
    'ours-sqlite / mosquitto-persistent': pair('ours-sqlite', 'mosquitto-persistent'),
    'ours-sqlite-power / mosquitto-persistent': pair('ours-sqlite-power', 'mosquitto-persistent'),
    'ours-memory / mosquitto': pair('ours-memory', 'mosquitto'),
    'mosquitto-persistent / mosquitto': pair('mosquitto-persistent', 'mosquitto'),
  };
}

function spreadText(s: Spread, decimals: number): string {
  return `${fmt(s.median, decimals)} (${fmt(s.min, decimals)}–${fmt(s.max, decimals)})`;
}

function printTables(rows: readonly ResultRow[], opts: Options): void {
  for (const session of opts.sessions) {
    log(`\n${session.name}: ${session.title}`);
    log(`${'variant'.padEnd(21)} ${'msg/s median (min–max)'.padEnd(28)} ${'p99 ms median (min–max)'.padEnd(26)} ${'gen CPU %'.padEnd(10)} ${'broker CPU %'.padEnd(12)} ${'RSS MB'.padEnd(7)} ${'disk MB/s'.padEnd(10)} ${'B/msg'.padEnd(6)} loss`);
    for (const row of rows.filter((r) => r.session === session.name)) {
      log(`${row.variant.padEnd(21)} ${spreadText(row.throughput, 0).padEnd(28)} ${spreadText(row.latencyP99Ms, 2).padEnd(26)} ${`${fmt(row.generatorCpuPct.median, 1)} (≤${fmt(row.generatorCpuPct.max, 0)})`.padEnd(10)} ${fmt(row.brokerCpuPct.median, 1).padEnd(12)} ${fmt(row.brokerRssMb.median, 1).padEnd(7)} ${fmt(row.diskWriteMbPerSec.median, 2).padEnd(10)} ${fmt(row.diskWriteBytesPerDelivery.median, 0).padEnd(6)} ${row.lossCount ?? '—'}${row.errors.length > 0 ? `  ERRORS ${row.errors.length}` : ''}${row.noisyRuns > 0 ? `  noisy ${row.noisyRuns}` : ''}`);
    }
    for (const [name, entry] of Object.entries(ratiosFor(rows, session.name))) {
      if (entry.throughput === null && entry.latencyP99 === null) continue;
      log(`  ${name.padEnd(40)} throughput ×${fmt(entry.throughput, 3)}  p99 ×${fmt(entry.latencyP99, 3)}${entry.goal !== undefined ? `  (goal ${entry.goal}: ${entry.goalMet === true ? 'met' : entry.goalMet === false ? 'NOT met' : '—'})` : ''}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const notes: string[] = [];
  if (opts.runs < 3) notes.push(`only ${opts.runs} run(s) per variant: BENCHMARKING.md asks for medians of at least 3`);

  let chosen = opts.variants;
  let ours: { available: boolean; note: string } | undefined;
  if (chosen.some((v) => v.broker === 'ours')) {
    ours = oursAvailability();
    if (!ours.available) {
      log(`note: ${ours.note}`);
      notes.push(`ours ${ours.note}`);
      chosen = chosen.filter((v) => v.broker !== 'ours');
    }
  }
  if (chosen.length === 0) throw new Error('no variant left to measure');
  opts.variants = chosen;

  const dataFs = fileSystemOf(tmpdir());
  if (dataFs?.type === 'tmpfs' || dataFs?.type === 'ramfs') {
    notes.push(`data directories are on ${dataFs.type} (${dataFs.mountPoint}): fsync costs nothing there, durability power is not measured`);
  }
  const [load1] = loadavg();
  log(`machine: ${cpus().length} CPUs, load average ${load1!.toFixed(2)}${load1! > 0.5 ? ' — not quiet, figures may be noisy' : ''}`);
  log(`data directories under ${tmpdir()} (${dataFs === null ? 'file system unknown' : `${dataFs.type} on ${dataFs.device}`})`);
  log(`variants ${opts.variants.map((v) => v.name).join(', ')} · sessions ${opts.sessions.map((s) => s.name).join(', ')} · ${opts.runs} run(s) × ${opts.seconds} s`);

  const records = new Map<string, RunRecord[]>();
  const total = opts.sessions.length * opts.runs * opts.variants.length;
  let done = 0;
  for (const session of opts.sessions) {
    for (let run = 1; run <= opts.runs; run++) {
      for (const variant of opts.variants) {
        let record: RunRecord;
        for (let attempt = 0; ; attempt++) {
          const busyBeforePct = await waitForQuiet(opts.quietWait, log);
          record = { ...(await runOnce(session, variant, opts, run)), busyBeforePct };
          const noisy = (record.otherCpuPct ?? 0) > NOISY_OTHER_PCT;
          if (!noisy || attempt >= opts.retries) {
            if (attempt > 0) record.discardedAttempts = attempt;
            if (noisy) record.noisy = true;
            break;
          }
          log(`[${session.name}] run ${run}/${opts.runs} ${variant.name}: other jobs used ${record.otherCpuPct}% CPU — repeating (${describe(record)})`);
          await sleep(500);
        }
        const key = `${session.name}/${variant.name}`;
        records.set(key, [...(records.get(key) ?? []), record]);
        done++;
        log(`[${done}/${total} ${session.name}] run ${run}/${opts.runs} ${variant.name}: ${describe(record)}`);
        // Let the previous broker's sockets, page cache write-back and the generator's heap settle.
        await sleep(500);
      }
    }
  }

  const results: ResultRow[] = [];
  for (const session of opts.sessions) {
    for (const variant of opts.variants) results.push(summarize(session, variant, records.get(`${session.name}/${variant.name}`) ?? []));
  }
  printTables(results, opts);

  const ratios: Record<string, Record<string, RatioEntry>> = {};
  for (const session of opts.sessions) ratios[session.name] = ratiosFor(results, session.name);

  const document = {
    benchmark: 'persistence: fan-in 50 → 1, QoS 1, 64 B — durability cost',
    node: process.version,
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', totalMemMb: Math.round(totalmem() / 2 ** 20),
      loadAverageAtStart: load1, dataDirectoryRoot: tmpdir(), dataFileSystem: dataFs,
    },
    settings: {
      seconds: opts.seconds,
      runs: opts.runs,
      order: `per session mode: fresh broker and fresh data directory per run, variants alternating (${opts.variants.map((v) => v.name).join(' ')}) × ${opts.runs}`,
      flow: `${FANIN_QOS1.publishers} publishers → ${FANIN_QOS1.subscribers} subscriber on '${FANIN_QOS1.topic}', QoS ${FANIN_QOS1.qos}, ${PAYLOAD_BYTES} B payload, ≤ ${MAX_INFLIGHT} unacknowledged per publisher (the fanin-qos1 flow of bench/broker)`,
      sessions: Object.fromEntries(opts.sessions.map((s) => [s.name, s.title])),
      warmupSeconds: WARMUP_MS / 1000,
      drainMaxSeconds: DRAIN_MAX_MS / 1000,
      quietWaitSeconds: opts.quietWait,
      quietBelowPctOfOneCore: QUIET_BUSY_PCT,
      retries: opts.retries,
      repeatRunWhenOthersAbovePctOfOneCore: NOISY_OTHER_PCT,
      generator: 'one process (this one), the bench/broker client and flow; generator CPU % counts all its threads',
      throughput: 'distinct deliveries to the subscriber in the measured window / window seconds',
      latency: 'send time stamped into the payload (performance.now(), same process) to the read that delivered it, measured-window deliveries',
      loss: 'published − distinct deliveries after the drain of at most 2 s (summed over runs in lossCount)',
      diskWrites: 'broker process write_bytes from /proc/PID/io over the measured window (bytes sent to the storage layer; socket traffic not counted)',
      variants: Object.fromEntries(opts.variants.map((v) => [v.name, {
        description: v.description,
        ...(v.broker === 'ours'
          ? { command: `node dist/cli/main.js broker --port PORT --host 127.0.0.1 ${mergeFlags([...OURS_BASELINE_ARGS, '--data-dir', 'RUNDIR/data'], v.oursArgs).join(' ')}` }
          : { binary: MOSQUITTO_BIN, config: mosquittoConfig(0, v.persistentDataDir ? 'RUNDIR/data/' : undefined).map((l) => l.replace(' 0 ', ' PORT ')) }),
      }])),
      mosquittoVersion: opts.variants.some((v) => v.broker === 'mosquitto') ? mosquittoVersion() : null,
      ours: ours ?? { available: false, note: 'not requested' },
    },
    notes: [
      ...notes,
      'ours/sqlite sends PUBACK only after the SQLite commit (group commit per event-loop turn); durability power adds an fsync per commit.',
      'ours persists sessions: with a clean-session subscriber its deliveries are not written, so the clean rows measure the store idling; the persistent rows are the durability case.',
      'Mosquitto persistence true keeps everything in memory and writes a snapshot (mosquitto.db) every autosave_interval (default 1800 s) and at shutdown; PUBACK does not wait for disk, so no message is durable on acknowledgement. Its disk writes in the window show this.',
    ],
    results,
    ratios,
  };
  await new Promise<void>((resolveWrite) => process.stdout.write(JSON.stringify(document, null, 2) + '\n', () => resolveWrite()));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`bench/persistence: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
