/**
 * Broker benchmark: Mosquitto, Aedes and our broker under the same load generator, measured the way
 * ../shared/BENCHMARKING.md describes (fresh broker per run, brokers alternating A B C A B C, medians with
 * min–max, generator CPU reported next to every figure).
 *
 *   node dist/bench/broker/main.js [--only SCENARIO[,..]] [--brokers mosquitto,aedes,ours]
 *                                  [--seconds S] [--runs N] [--connections N] [--parallel N]
 *
 * One JSON document goes to stdout; progress and a summary table go to stderr.
 */
import { randomInt } from 'node:crypto';
import { cpus, loadavg, totalmem } from 'node:os';
import { median as medianOf, min as minOf, max as maxOf, ratio } from '../lib/stats.js';
import {
  aedesVersion, brokerNames, mosquittoConfig, MOSQUITTO_BIN, mosquittoVersion, oursAvailability, startBroker,
  type BrokerName, type RunningBroker,
} from './brokers.js';
import type { Connection } from './client.js';
import { NOISY_OTHER_PCT, QUIET_BUSY_PCT, waitForQuiet as waitForQuietShared } from './quiet.js';
import {
  DRAIN_MAX_MS, MAX_INFLIGHT, PAYLOAD_BYTES, QOS0_WINDOW, scenarios, WARMUP_MS,
  type RunContext, type RunMeasure, type Scenario,
} from './scenarios.js';

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  only: Scenario[];
  brokers: BrokerName[];
  seconds: number;
  runs: number;
  connections: number;
  parallel: number;
  /** Longest wait for a quiet machine before each run, seconds. */
  quietWait: number;
  /** Repeats of a run disturbed by other jobs. */
  retries: number;
  /** Extra arguments for our broker's command line. */
  oursArgs: string[];
}


const usage = `usage: node dist/bench/broker/main.js [options]
  --only SCENARIO[,..]   scenarios by name or number (default: all)
                         ${scenarios.map((s) => `${s.number}=${s.name}`).join(' ')}
  --brokers LIST         mosquitto,aedes,ours (default: all three; ours is skipped while unavailable)
  --seconds S            measured window per run (default 5)
  --runs N               repetitions per broker (default 3)
  --connections N        clients for connect-rate and idle-rss (default 5000, at most 19000)
  --parallel N           handshakes in flight while connecting (default 100)
  --quiet-wait S         before each run, wait up to S seconds for other jobs to leave the CPUs
                         below ${QUIET_BUSY_PCT}% of one core (default 60; 0 = don't wait)
  --ours-args "ARGS"     extra arguments for 'mqtt-sim broker', split on spaces
                         (e.g. "--persistence memory --max-queued-messages 100000")
  --retries N            repeat a run during which other jobs used > ${NOISY_OTHER_PCT}% of one core,
                         at most N times (default 2; the last attempt counts, marked noisy)
`;

function parseArgs(argv: readonly string[]): Options {
  const opts: Options = { only: [...scenarios], brokers: [...brokerNames], seconds: 5, runs: 3, connections: 5000, parallel: 100, quietWait: 60, retries: 2, oursArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    const positive = (integer: boolean): number => {
      const v = value();
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
        throw new Error(`${arg}: expected a positive ${integer ? 'integer' : 'number'}, got '${v}'`);
      }
      return n;
    };
    switch (arg) {
      case '--only':
        opts.only = value().split(',').filter(Boolean).map((key) => {
          const found = scenarios.find((s) => s.name === key || String(s.number) === key);
          if (found === undefined) throw new Error(`--only: unknown scenario '${key}'; known: ${scenarios.map((s) => s.name).join(', ')}`);
          return found;
        });
        break;
      case '--brokers':
        opts.brokers = value().split(',').filter(Boolean).map((name) => {
          if (!(brokerNames as readonly string[]).includes(name)) {
            throw new Error(`--brokers: unknown broker '${name}'; known: ${brokerNames.join(', ')}`);
          }
          return name as BrokerName;
        });
        break;
      case '--seconds': opts.seconds = positive(false); break;
      case '--runs': opts.runs = positive(true); break;
      case '--connections':
        opts.connections = positive(true);
        if (opts.connections > 19_000) throw new Error('--connections: at most 19000 (the process may hold 20,000 files)');
        break;
      case '--parallel': opts.parallel = positive(true); break;
      case '--ours-args':
        opts.oursArgs = value().split(/\s+/).filter(Boolean);
        break;
      case '--retries': {
        const v = value();
        opts.retries = Number(v);
        if (!Number.isInteger(opts.retries) || opts.retries < 0) throw new Error(`--retries: expected an integer >= 0, got '${v}'`);
        break;
      }
      case '--quiet-wait': {
        const v = value();
        opts.quietWait = Number(v);
        if (!Number.isFinite(opts.quietWait) || opts.quietWait < 0) throw new Error(`--quiet-wait: expected seconds >= 0, got '${v}'`);
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
  if (opts.only.length === 0) throw new Error('--only: name at least one scenario');
  if (opts.brokers.length === 0) throw new Error('--brokers: name at least one broker');
  opts.brokers = [...new Set(opts.brokers)];
  return opts;
}

// ---------------------------------------------------------------------------------------------
// Running

interface RunRecord {
  run: number;
  value?: number;
  generatorCpuPct?: number;
  brokerCpuPct?: number;
  brokerRssMb?: number;
  otherCpuPct?: number;
  /** CPU used by other jobs just before the run (% of one core). */
  busyBeforePct?: number;
  /** Earlier attempts of this run discarded because other jobs disturbed them. */
  discardedAttempts?: number;
  /** Other jobs used more than NOISY_OTHER_PCT of a core even in the attempt that counts. */
  noisy?: boolean;
  loss?: number | null;
  details?: Record<string, number>;
  warnings?: string[];
  error?: string;
}

function log(line: string): void {
  process.stderr.write(line + '\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function decimalsFor(unit: string): number {
  if (unit === 'ms') return 3;
  if (unit.startsWith('KB')) return 2;
  return 0;
}

function round(x: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}

function fmt(x: number | undefined, unit: string): string {
  if (x === undefined || !Number.isFinite(x)) return '—';
  const d = decimalsFor(unit);
  return x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** A hung run must not hang the benchmark: connect, warm-up, window and drain fit well inside this. */
function runTimeoutMs(opts: Options): number {
  return WARMUP_MS + opts.seconds * 1000 + DRAIN_MAX_MS + 90_000;
}

async function runOnce(scenario: Scenario, name: BrokerName, opts: Options, run: number): Promise<RunRecord> {
  let broker: RunningBroker | undefined;
  const opened: Connection[] = [];
  let timer: NodeJS.Timeout | undefined;
  const abort = new AbortController();
  try {
    broker = await startBroker(name, { oursArgs: opts.oursArgs });
    const ctx: RunContext = {
      broker, seconds: opts.seconds, runId: randomInt(1, 0xffffffff), connections: opts.connections,
      parallel: opts.parallel, opened, signal: abort.signal,
    };
    const limit = runTimeoutMs(opts);
    const measure: RunMeasure = await Promise.race([
      scenario.run(ctx),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`run did not finish within ${limit / 1000} s`)), limit);
      }),
    ]);
    return {
      run,
      value: round(measure.value, decimalsFor(scenario.unit)),
      generatorCpuPct: round(measure.generatorCpuPct, 1),
      brokerCpuPct: round(measure.brokerCpuPct, 1),
      brokerRssMb: round(measure.brokerRssMb, 1),
      otherCpuPct: round(measure.otherCpuPct, 1),
      loss: measure.loss,
      details: measure.details,
      ...(measure.warnings.length > 0 ? { warnings: measure.warnings } : {}),
    };
  } catch (err) {
    return { run, error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
    abort.abort();
    // The broker goes first: it then closes the sockets, so TIME_WAIT lands on its side, not on our
    // ephemeral ports.
    if (broker !== undefined) await broker.stop();
    for (const conn of opened) conn.destroy();
  }
}

function describe(scenario: Scenario, record: RunRecord): string {
  if (record.error !== undefined) return `FAILED: ${record.error}`;
  const parts = [`${fmt(record.value, scenario.unit)} ${scenario.unit}`];
  for (const extra of scenario.extraMetrics) {
    parts.push(`${extra.key} ${fmt(record.details?.[extra.key], extra.unit)}`);
  }
  parts.push(`generator ${fmt(record.generatorCpuPct, '%')}% CPU`, `broker ${fmt(record.brokerCpuPct, '%')}% CPU`,
    `${fmt(record.brokerRssMb, 'MB')} MB`, `others ${fmt(record.otherCpuPct, '%')}% CPU`);
  if (record.loss !== null && record.loss !== undefined) parts.push(`loss ${record.loss}`);
  for (const w of record.warnings ?? []) parts.push(`WARNING ${w}`);
  return parts.join(' · ');
}

/** Waits (bounded) until other jobs leave the CPUs mostly idle; returns the last busy figure. */
function waitForQuiet(maxSeconds: number): Promise<number> {
  return waitForQuietShared(maxSeconds, log);
}

// ---------------------------------------------------------------------------------------------
// Summaries

interface Spread { median: number | null; min: number | null; max: number | null }

function spread(values: number[], decimals: number): Spread {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return { median: null, min: null, max: null };
  return {
    median: round(medianOf(finite), decimals), min: round(minOf(finite), decimals), max: round(maxOf(finite), decimals),
  };
}

interface ResultRow extends Spread {
  scenario: string;
  title: string;
  broker: BrokerName;
  unit: string;
  higherIsBetter: boolean;
  runs: RunRecord[];
  generatorCpuPct: number | null;
  generatorCpuPctMax: number | null;
  brokerCpuPct: number | null;
  brokerRssMb: number | null;
  /** Median CPU other jobs used during the measurements (% of one core); high values make figures suspect. */
  otherCpuPct: number | null;
  /** Sum over the runs; null where the scenario sends no messages. */
  lossCount: number | null;
  extra: Record<string, Spread & { unit: string; higherIsBetter: boolean }>;
  errors: string[];
  warnings: string[];
  /** Runs during which other jobs still used much CPU (after the retries). */
  noisyRuns: number;
}

function summarizeRows(scenario: Scenario, broker: BrokerName, runs: RunRecord[]): ResultRow {
  const ok = runs.filter((r) => r.error === undefined);
  const headline = spread(ok.map((r) => r.value!), decimalsFor(scenario.unit));
  const extra: ResultRow['extra'] = {};
  for (const m of scenario.extraMetrics) {
    extra[m.key] = { ...spread(ok.map((r) => r.details?.[m.key] ?? Number.NaN), decimalsFor(m.unit)), unit: m.unit, higherIsBetter: m.higherIsBetter };
  }
  const losses = ok.map((r) => r.loss).filter((l): l is number => typeof l === 'number');
  return {
    scenario: scenario.name,
    title: scenario.title,
    broker,
    unit: scenario.unit,
    higherIsBetter: scenario.higherIsBetter,
    runs,
    ...headline,
    generatorCpuPct: spread(ok.map((r) => r.generatorCpuPct!), 1).median,
    generatorCpuPctMax: spread(ok.map((r) => r.generatorCpuPct!), 1).max,
    brokerCpuPct: spread(ok.map((r) => r.brokerCpuPct!), 1).median,
    brokerRssMb: spread(ok.map((r) => r.brokerRssMb!), 1).median,
    otherCpuPct: spread(ok.map((r) => r.otherCpuPct!), 1).median,
    lossCount: losses.length > 0 ? losses.reduce((a, b) => a + b, 0) : null,
    extra,
    errors: runs.filter((r) => r.error !== undefined).map((r) => `run ${r.run}: ${r.error!}`),
    warnings: runs.flatMap((r) => (r.warnings ?? []).map((w) => `run ${r.run}: ${w}`)),
    noisyRuns: runs.filter((r) => r.noisy === true).length,
  };
}

interface RatioRow {
  scenario: string;
  metric: string;
  unit: string;
  higherIsBetter: boolean;
  /** Ratios of medians, a / b (so for lower-is-better metrics, < 1 means the first broker is better). */
  oursVsMosquitto: number | null;
  oursVsAedes: number | null;
  aedesVsMosquitto: number | null;
}

function ratios(results: ResultRow[]): RatioRow[] {
  const rows: RatioRow[] = [];
  const names = [...new Set(results.map((r) => r.scenario))];
  for (const name of names) {
    const scenario = scenarios.find((s) => s.name === name)!;
    const of = (broker: BrokerName): ResultRow | undefined => results.find((r) => r.scenario === name && r.broker === broker);
    const metrics = [
      { key: 'value', unit: scenario.unit, higherIsBetter: scenario.higherIsBetter },
      ...scenario.extraMetrics,
    ];
    for (const metric of metrics) {
      const valueOf = (broker: BrokerName): number | null => {
        const row = of(broker);
        if (row === undefined) return null;
        return metric.key === 'value' ? row.median : (row.extra[metric.key]?.median ?? null);
      };
      const r = (a: BrokerName, b: BrokerName): number | null => {
        const x = valueOf(a);
        const y = valueOf(b);
        return x === null || y === null || y === 0 ? null : ratio(x, y);
      };
      rows.push({
        scenario: name,
        metric: metric.key === 'value' ? scenario.unit : metric.key,
        unit: metric.unit,
        higherIsBetter: metric.higherIsBetter,
        oursVsMosquitto: r('ours', 'mosquitto'),
        oursVsAedes: r('ours', 'aedes'),
        aedesVsMosquitto: r('aedes', 'mosquitto'),
      });
    }
  }
  return rows;
}

function printTable(results: ResultRow[]): void {
  log('\nscenario        broker     median (min–max)                       generator CPU  broker CPU  RSS MB  others  loss');
  for (const row of results) {
    const extras = Object.entries(row.extra).map(([k, v]) => `${k} ${fmt(v.median ?? undefined, v.unit)}`).join(', ');
    const figure = `${fmt(row.median ?? undefined, row.unit)} (${fmt(row.min ?? undefined, row.unit)}–${fmt(row.max ?? undefined, row.unit)}) ${row.unit}`;
    log(`${row.scenario.padEnd(15)} ${row.broker.padEnd(10)} ${figure.padEnd(38)} ${`${fmt(row.generatorCpuPct ?? undefined, '%')}% (max ${fmt(row.generatorCpuPctMax ?? undefined, '%')})`.padEnd(14)} ${`${fmt(row.brokerCpuPct ?? undefined, '%')}%`.padEnd(11)} ${fmt(row.brokerRssMb ?? undefined, 'MB').padEnd(7)} ${`${fmt(row.otherCpuPct ?? undefined, '%')}%`.padEnd(7)} ${row.lossCount ?? '—'}${extras ? `   ${extras}` : ''}${row.errors.length ? `   ERRORS: ${row.errors.length}` : ''}`);
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const notes: string[] = [];
  let brokers = opts.brokers;
  let ours: { available: boolean; note: string } | undefined;
  if (brokers.includes('ours')) {
    ours = oursAvailability();
    if (!ours.available) {
      log(`note: ${ours.note}`);
      notes.push(`ours ${ours.note}`);
      brokers = brokers.filter((b) => b !== 'ours');
    }
  }
  if (brokers.length === 0) throw new Error('no broker left to measure');

  const [load1] = loadavg();
  log(`machine: ${cpus().length} CPUs, load average ${load1!.toFixed(2)}${load1! > 0.5 ? ' — not quiet, figures may be noisy' : ''}`);
  log(`brokers ${brokers.join(', ')} · scenarios ${opts.only.map((s) => s.name).join(', ')} · ${opts.runs} run(s) × ${opts.seconds} s`);

  const records = new Map<string, RunRecord[]>();
  for (const [si, scenario] of opts.only.entries()) {
    for (let run = 1; run <= opts.runs; run++) {
      for (const broker of brokers) {
        let record: RunRecord;
        for (let attempt = 0; ; attempt++) {
          const busyBeforePct = await waitForQuiet(opts.quietWait);
          record = { ...(await runOnce(scenario, broker, opts, run)), busyBeforePct };
          const noisy = (record.otherCpuPct ?? 0) > NOISY_OTHER_PCT;
          if (!noisy || attempt >= opts.retries) {
            if (attempt > 0) record.discardedAttempts = attempt;
            if (noisy) record.noisy = true;
            break;
          }
          log(`[${si + 1}/${opts.only.length} ${scenario.name}] run ${run}/${opts.runs} ${broker}: other jobs used ${record.otherCpuPct}% CPU — repeating (${describe(scenario, record)})`);
          await sleep(500);
        }
        const key = `${scenario.name}/${broker}`;
        records.set(key, [...(records.get(key) ?? []), record]);
        log(`[${si + 1}/${opts.only.length} ${scenario.name}] run ${run}/${opts.runs} ${broker}: ${describe(scenario, record)}`);
        // Let the previous broker's sockets and the generator's heap settle before the next run.
        await sleep(500);
      }
    }
  }

  const results: ResultRow[] = [];
  for (const scenario of opts.only) {
    for (const broker of brokers) results.push(summarizeRows(scenario, broker, records.get(`${scenario.name}/${broker}`) ?? []));
  }
  printTable(results);

  const document = {
    node: process.version,
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', totalMemMb: Math.round(totalmem() / 2 ** 20), loadAverageAtStart: load1 },
    settings: {
      seconds: opts.seconds,
      runs: opts.runs,
      order: `fresh broker per run, brokers alternating (${brokers.join(' ')}) × ${opts.runs}`,
      warmupSeconds: WARMUP_MS / 1000,
      drainMaxSeconds: DRAIN_MAX_MS / 1000,
      payloadBytes: PAYLOAD_BYTES,
      qos0WindowPerPublisher: QOS0_WINDOW,
      maxInflightPerPublisher: MAX_INFLIGHT,
      connections: opts.connections,
      parallelHandshakes: opts.parallel,
      quietWaitSeconds: opts.quietWait,
      quietBelowPctOfOneCore: QUIET_BUSY_PCT,
      retries: opts.retries,
      repeatRunWhenOthersAbovePctOfOneCore: NOISY_OTHER_PCT,
      generator: 'one process (this one): lean MQTT 3.1.1 clients over net.Socket, protocol/ PacketParser, one write per batch; generator CPU % counts all its threads',
      latency: 'send time stamped into the payload (performance.now(), same process) to the read that delivered it; sorted samples of the measured window',
      loss: 'published × subscribers − distinct deliveries after the drain (all runs summed in lossCount)',
      brokers: {
        mosquitto: { binary: MOSQUITTO_BIN, version: mosquittoVersion(), config: mosquittoConfig(0).map((l) => l.replace(' 0 ', ' PORT ')) },
        aedes: { version: aedesVersion(), setup: 'await Aedes.createBroker() (default options) behind net.createServer(aedes.handle), own node process' },
        ours: ours === undefined
          ? { available: false, note: 'not requested' }
          : { ...ours, extraArgs: opts.oursArgs, cwd: 'a fresh temporary directory per run (its default ./mqtt-sim-data starts empty)' },
      },
    },
    notes,
    results,
    ratios: ratios(results),
  };
  await new Promise<void>((resolveWrite) => process.stdout.write(JSON.stringify(document, null, 2) + '\n', () => resolveWrite()));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`bench/broker: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
