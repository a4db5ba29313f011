/**
 * Simulator benchmark: what one simulator process does against Mosquitto 2.0.11 (a fresh broker per
 * measurement, the settings of ../shared/BENCHMARKING.md, started by bench/broker/brokers.ts).
 *
 *   rate    the highest publish rate one worker sustains, QoS 0 and QoS 1 (rate.ts), next to MQTT.js
 *           on one thread flooding the same Mosquitto with as many clients (mqttjs-flood.ts);
 *   memory  simulator RSS per idle connected device at 1,000, 5,000 and 19,000 devices, next to
 *           Mosquitto's RSS per connection, and the connect rate reached (memory.ts). Two readings per
 *           run: 3 s after the last device connected (V8's garbage from the connect burst not collected
 *           yet) and 20 s after (settled); each as (RSS_N - RSS_10) / N, and as the slope between
 *           consecutive sizes (RSS_b - RSS_a) / (b - a), in which every fixed cost cancels.
 *
 *   node dist/bench/simulator/main.js [--runs N] [--only rate|memory] [--quick] [--steady S]
 *                                     [--quiet-wait S] [--devices LIST]
 *
 * Runs alternate ours / baseline (rate: our QoS 0 ladder, MQTT.js QoS 0, our QoS 1 ladder, MQTT.js QoS 1;
 * memory: the base run then each N), --runs times; medians with min–max over runs. One JSON document goes
 * to stdout; progress and a summary go to stderr.
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { MOSQUITTO_BIN, mosquittoConfig, mosquittoVersion } from '../broker/brokers.js';
import { QUIET_BUSY_PCT, waitForQuiet } from '../broker/quiet.js';
import { ratio } from '../lib/stats.js';
import { fileLimit, localPortRange, spareFileDescriptors } from '../../simulator/orchestrator/environment.js';
import { errorText, fmt, log, sleep, spread, spreadText, type Spread } from './common.js';
import {
  BASE_DEVICES, CLI, commandFor, MEMORY_CONNECT_RATE, memoryMeasure, memoryRampUpMs, memoryScenarioYaml, SETTLE_MS, SETTLED_MS, STEADY_S,
  type MemoryMeasure,
} from './memory.js';
import { MQTTJS_INFLIGHT, MQTTJS_WARMUP_MS, mqttjsFlood, type MqttjsRun } from './mqttjs-flood.js';
import {
  BODY_BYTES, DRAIN_S, RAMP_UP_S, RATE_DEVICES, rateLadder, rateScenarioYaml, STAMP_BYTES, SUSTAINED_SHARE,
  type LadderRun, type Qos, type RateStep,
} from './rate.js';

// ---------------------------------------------------------------------------------------------
// Options

const FULL_LADDER = [5_000, 10_000, 20_000, 30_000, 45_000, 60_000, 80_000, 100_000, 130_000, 160_000, 200_000, 250_000, 300_000];
const QUICK_LADDER = [5_000, 20_000, 45_000, 80_000, 130_000, 200_000, 300_000];
const DEFAULT_DEVICES = [1_000, 5_000, 19_000];

interface Options {
  runs: number;
  parts: Array<'rate' | 'memory'>;
  quick: boolean;
  steadySeconds: number;
  ladder: number[];
  devices: number[];
  quietWait: number;
}

const usage = `usage: node dist/bench/simulator/main.js [options]
  --runs N         repetitions (default 3; --quick: 1)
  --only PART      rate or memory (default: both)
  --quick          1 run, fewer rate steps (${QUICK_LADDER.join(', ')}), no quiet-machine wait: for development
  --steady S       steady phase of a rate step and the MQTT.js window, seconds (default 5)
  --devices LIST   device counts of the memory part, comma separated (default ${DEFAULT_DEVICES.join(',')})
  --quiet-wait S   before each measurement wait up to S seconds for other jobs to leave the CPUs below
                   ${QUIET_BUSY_PCT}% of one core (default 60, --quick 0; 0 = don't wait)
`;

function parseArgs(argv: readonly string[]): Options {
  let runs: number | undefined;
  let quietWait: number | undefined;
  let devices: number[] | undefined;
  let quick = false;
  let steadySeconds = 5;
  let parts: Options['parts'] = ['rate', 'memory'];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    const number = (text: string, integer: boolean, allowZero: boolean): number => {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n) || n < 0 || (n === 0 && !allowZero) || (integer && !Number.isInteger(n))) {
        throw new Error(`${arg}: expected a ${allowZero ? 'non-negative' : 'positive'} ${integer ? 'integer' : 'number'}, got '${text}'`);
      }
      return n;
    };
    switch (arg) {
      case '--runs': runs = number(value(), true, false); break;
      case '--quiet-wait': quietWait = number(value(), false, true); break;
      case '--steady': steadySeconds = number(value(), true, false); break;
      case '--quick': quick = true; break;
      case '--devices': devices = value().split(',').map((d) => number(d.trim(), true, false)); break;
      case '--only': {
        const part = value();
        if (part !== 'rate' && part !== 'memory') throw new Error(`--only: expected rate or memory, got '${part}'`);
        parts = [part];
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
  return {
    runs: runs ?? (quick ? 1 : 3),
    parts,
    quick,
    steadySeconds,
    ladder: quick ? QUICK_LADDER : FULL_LADDER,
    devices: devices ?? DEFAULT_DEVICES,
    quietWait: quietWait ?? (quick ? 0 : 60),
  };
}

// ---------------------------------------------------------------------------------------------
// Rate

function describeStep(qos: Qos, run: number, step: RateStep): string {
  const head = `[rate qos${qos} run ${run}] offered ${fmt(step.offered)}/s → achieved ${fmt(step.achieved)}/s`;
  const details = [
    `published ${fmt(step.published)}/${fmt(step.expected)} scheduled`,
    `steady points ${step.steadyPoints.map((p) => fmt(p)).join(' ')}`,
    `process ${fmt(step.processCpuPct, 1)}% CPU`,
    `shard cpu ≤ ${fmt(step.shardCpuSteadyMax, 2)}`,
    `mosquitto ${fmt(step.brokerCpuPct, 1)}% CPU`,
    ...(qos === 1 ? [`acked ${fmt(step.acknowledged)}/${fmt(step.published)}`] : []),
  ].join(' · ');
  return `${head} ${step.sustained ? 'sustained' : `FAILED: ${step.failures.join('; ')}`} (${details})`;
}

function describeMqttjs(qos: Qos, r: MqttjsRun): string {
  if (r.error !== undefined) return `[mqtt.js qos${qos} run ${r.run}] FAILED: ${r.error}`;
  return `[mqtt.js qos${qos} run ${r.run}] ${fmt(r.msgPerSec)} msg/s · process ${fmt(r.processCpuPct, 1)}% CPU · mosquitto ${fmt(r.brokerCpuPct, 1)}% CPU · unread by mosquitto at the end ${fmt(r.brokerUnreadBytesAtEnd)} B${r.errors ? ` · ${r.errors} errors (${r.firstError ?? ''})` : ''}`;
}

interface RateQosResult {
  /** One ladder per run. */
  runs: LadderRun[];
  /** Highest sustained offered rate, msg/s, over runs. */
  median: number | null;
  min: number | null;
  max: number | null;
  achievedAtHighest: Spread;
  /** Offered and achieved rate and reasons of the first failing step, per run. */
  firstFailing: Array<LadderRun['firstFailing']>;
  mqttjsBaseline: Spread & { runs: MqttjsRun[] };
  /** Our median highest sustained rate / MQTT.js median msg/s. */
  ratio: number | null;
  /** Our median achieved steady rate at the highest sustained step / MQTT.js median msg/s. */
  ratioAchieved: number | null;
}

async function runRate(opts: Options, quiet: () => Promise<number>): Promise<Record<'qos0' | 'qos1', RateQosResult>> {
  const ladders: Record<Qos, LadderRun[]> = { 0: [], 1: [] };
  const baselines: Record<Qos, MqttjsRun[]> = { 0: [], 1: [] };
  for (let run = 1; run <= opts.runs; run++) {
    for (const qos of [0, 1] as const) {
      log(`[rate qos${qos} run ${run}/${opts.runs}] stepping up: ${opts.ladder.map((r) => fmt(r)).join(', ')} msg/s`);
      const ladder = await rateLadder(qos, opts.ladder, { steadySeconds: opts.steadySeconds }, run, quiet, (step) => log(describeStep(qos, run, step)));
      ladders[qos].push(ladder);
      log(`[rate qos${qos} run ${run}/${opts.runs}] highest sustained ${fmt(ladder.highestSustained)} msg/s`);
      const busyBeforePct = await quiet();
      const base = { ...(await mqttjsFlood(qos, opts.steadySeconds, run)), busyBeforePct };
      baselines[qos].push(base);
      log(describeMqttjs(qos, base));
    }
  }
  const summarize = (qos: Qos): RateQosResult => {
    const highest = spread(ladders[qos].map((l) => l.highestSustained));
    const base = spread(baselines[qos].map((b) => b.msgPerSec));
    const achieved = spread(ladders[qos].map((l) => l.achievedAtHighest));
    return {
      runs: ladders[qos],
      median: highest.median,
      min: highest.min,
      max: highest.max,
      achievedAtHighest: achieved,
      firstFailing: ladders[qos].map((l) => l.firstFailing),
      mqttjsBaseline: { ...base, runs: baselines[qos] },
      ratio: highest.median !== null && base.median ? ratio(highest.median, base.median) : null,
      ratioAchieved: achieved.median !== null && base.median ? ratio(achieved.median, base.median) : null,
    };
  };
  return { qos0: summarize(0), qos1: summarize(1) };
}

// ---------------------------------------------------------------------------------------------
// Memory

interface MemoryRow {
  devices: number;
  /** (RSS_N - RSS_base) / N at the first reading (SETTLE_MS after all connected). */
  simulatorBytesPerDevice: Spread;
  /** The same at the settled reading (SETTLED_MS after all connected). */
  simulatorBytesPerDeviceSettled: Spread;
  mosquittoBytesPerConnection: Spread;
  /** Connections/s from Mosquitto's fd count. */
  connectRate: Spread;
  connectRateFromProgress: Spread;
  simulatorRssMb: Spread;
  simulatorRssMbSettled: Spread;
  mosquittoRssMb: Spread;
  /** Runs in which every device connected and the reading was taken. */
  okRuns: number;
  runs: Array<MemoryMeasure & { run: number; simulatorBytesPerDevice?: number | null; simulatorBytesPerDeviceSettled?: number | null; mosquittoBytesPerConnection?: number | null }>;
  errors: string[];
}

/** Simulator RSS per device between two consecutive sizes of the same run: (RSS_to - RSS_from) / (to - from). */
interface MemorySlope {
  from: number;
  to: number;
  simulatorBytesPerDevice: Spread;
  simulatorBytesPerDeviceSettled: Spread;
  /** Per run (null when either measurement failed). */
  runs: Array<{ run: number; simulatorBytesPerDevice: number | null; simulatorBytesPerDeviceSettled: number | null }>;
}

interface MemoryResult {
  base: { devices: number; runs: Array<MemoryMeasure & { run: number }>; simulatorRssMb: Spread; simulatorRssMbSettled: Spread; mosquittoRssMb: Spread };
  rows: Record<string, MemoryRow>;
  /** Keyed 'from-to' (device counts). */
  slopes: Record<string, MemorySlope>;
  fileLimit: { soft: number | null; hard: number | null; neededForLargest: number; enough: boolean | null; note?: string };
}

function describeMemory(run: number, m: MemoryMeasure): string {
  const head = `[memory run ${run}] ${fmt(m.devices)} devices:`;
  if (!m.ok) return `${head} FAILED: ${m.error ?? 'unknown'}`;
  return `${head} simulator ${fmt((m.simulatorRssKb ?? NaN) / 1024, 1)} MB (settled ${fmt((m.simulatorRssKbSettled ?? NaN) / 1024, 1)} MB) · mosquitto ${fmt((m.mosquittoRssKb ?? NaN) / 1024, 1)} MB` +
    ` · connect ${fmt(m.connectRate)}/s (progress lines ${fmt(m.connectRateFromProgress)}/s) · all connected after ${fmt(m.secondsToAllConnected, 1)} s` +
    ` · stopped in ${fmt(m.stopSeconds, 1)} s${m.sigkill ? ' (SIGKILL)' : ''}`;
}

async function runMemory(opts: Options, quiet: () => Promise<number>): Promise<MemoryResult> {
  const limit = fileLimit();
  const largest = Math.max(...opts.devices);
  const needed = largest + spareFileDescriptors;
  const soft = limit === null ? null : Number.isFinite(limit.soft) ? limit.soft : null;
  const hard = limit === null ? null : Number.isFinite(limit.hard) ? limit.hard : null;
  const enough = limit === null ? null : limit.soft >= needed;
  const limitInfo: MemoryResult['fileLimit'] = { soft, hard, neededForLargest: needed, enough };
  if (enough === false) {
    limitInfo.note = `the open-file soft limit ${soft} is below the ${needed} the largest run needs (${largest} sockets + ${spareFileDescriptors} spare): ` +
      'the simulator refuses to start it (and Mosquitto, which inherits the limit, could not accept them); raise it with ulimit -n';
    log(`WARNING: ${limitInfo.note}`);
  } else {
    log(`open files: soft limit ${fmt(soft)}, hard ${fmt(hard)}; the largest run needs about ${fmt(needed)} in the simulator and as many in Mosquitto`);
  }

  const baseRuns: Array<MemoryMeasure & { run: number }> = [];
  const perN = new Map<number, MemoryRow['runs']>();
  for (let run = 1; run <= opts.runs; run++) {
    let busyBeforePct = await quiet();
    const base = { ...(await memoryMeasure(BASE_DEVICES)), busyBeforePct, run };
    baseRuns.push(base);
    log(describeMemory(run, base));
    for (const devices of opts.devices) {
      busyBeforePct = await quiet();
      const m = { ...(await memoryMeasure(devices)), busyBeforePct, run };
      const perDevice = (value: number | undefined, baseValue: number | undefined): number | null =>
        m.ok && base.ok && value !== undefined && baseValue !== undefined && Number.isFinite(value - baseValue) ? Math.round(((value - baseValue) * 1024) / devices) : null;
      const row = {
        ...m,
        simulatorBytesPerDevice: perDevice(m.simulatorRssKb, base.simulatorRssKb),
        simulatorBytesPerDeviceSettled: perDevice(m.simulatorRssKbSettled, base.simulatorRssKbSettled),
        mosquittoBytesPerConnection: perDevice(m.mosquittoRssKb, base.mosquittoRssKb),
      };
      perN.set(devices, [...(perN.get(devices) ?? []), row]);
      log(`${describeMemory(run, m)}${m.ok && base.ok ? ` → ${fmt(row.simulatorBytesPerDevice)} B/device (settled ${fmt(row.simulatorBytesPerDeviceSettled)}; mosquitto ${fmt(row.mosquittoBytesPerConnection)} B/connection)` : ''}`);
      await sleep(500);
    }
  }
  const mb = (kb: number | undefined): number | null => (kb === undefined || !Number.isFinite(kb) ? null : kb / 1024);
  const rows: Record<string, MemoryRow> = {};
  for (const devices of opts.devices) {
    const runs = perN.get(devices) ?? [];
    rows[String(devices)] = {
      devices,
      simulatorBytesPerDevice: spread(runs.map((r) => r.simulatorBytesPerDevice)),
      simulatorBytesPerDeviceSettled: spread(runs.map((r) => r.simulatorBytesPerDeviceSettled)),
      mosquittoBytesPerConnection: spread(runs.map((r) => r.mosquittoBytesPerConnection)),
      connectRate: spread(runs.map((r) => r.connectRate)),
      connectRateFromProgress: spread(runs.map((r) => r.connectRateFromProgress)),
      simulatorRssMb: spread(runs.map((r) => mb(r.simulatorRssKb)), 1),
      simulatorRssMbSettled: spread(runs.map((r) => mb(r.simulatorRssKbSettled)), 1),
      mosquittoRssMb: spread(runs.map((r) => mb(r.mosquittoRssKb)), 1),
      okRuns: runs.filter((r) => r.ok).length,
      runs,
      errors: [
        ...runs.filter((r) => !r.ok).map((r) => `run ${r.run}: ${r.error ?? 'unknown'}`),
        ...baseRuns.filter((b) => !b.ok).map((b) => `run ${b.run}: the ${BASE_DEVICES}-device base run failed, so no per-device figure: ${b.error ?? 'unknown'}`),
      ],
    };
  }
  // Between consecutive sizes of the same run: the base's fixed costs, and the noise of its RSS, cancel.
  const slopes: Record<string, MemorySlope> = {};
  const sizes = [...opts.devices].sort((a, b) => a - b);
  for (let i = 1; i < sizes.length; i++) {
    const from = sizes[i - 1]!;
    const to = sizes[i]!;
    const runs: MemorySlope['runs'] = [];
    for (let run = 1; run <= opts.runs; run++) {
      const a = perN.get(from)?.find((r) => r.run === run);
      const b = perN.get(to)?.find((r) => r.run === run);
      const slope = (va: number | undefined, vb: number | undefined): number | null =>
        a?.ok === true && b?.ok === true && va !== undefined && vb !== undefined && Number.isFinite(vb - va) ? Math.round(((vb - va) * 1024) / (to - from)) : null;
      runs.push({ run, simulatorBytesPerDevice: slope(a?.simulatorRssKb, b?.simulatorRssKb), simulatorBytesPerDeviceSettled: slope(a?.simulatorRssKbSettled, b?.simulatorRssKbSettled) });
    }
    slopes[`${from}-${to}`] = {
      from,
      to,
      simulatorBytesPerDevice: spread(runs.map((r) => r.simulatorBytesPerDevice)),
      simulatorBytesPerDeviceSettled: spread(runs.map((r) => r.simulatorBytesPerDeviceSettled)),
      runs,
    };
  }
  return {
    base: {
      devices: BASE_DEVICES,
      runs: baseRuns,
      simulatorRssMb: spread(baseRuns.map((r) => mb(r.simulatorRssKb)), 1),
      simulatorRssMbSettled: spread(baseRuns.map((r) => mb(r.simulatorRssKbSettled)), 1),
      mosquittoRssMb: spread(baseRuns.map((r) => mb(r.mosquittoRssKb)), 1),
    },
    rows,
    slopes,
    fileLimit: limitInfo,
  };
}

// ---------------------------------------------------------------------------------------------

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

function printSummary(rate: Record<'qos0' | 'qos1', RateQosResult> | null, memory: MemoryResult | null): void {
  log('\nsummary');
  if (rate !== null) {
    for (const key of ['qos0', 'qos1'] as const) {
      const r = rate[key];
      log(`  ${key}: highest sustained ${spreadText({ median: r.median, min: r.min, max: r.max, n: r.runs.length })} msg/s per worker` +
        ` (achieved ${spreadText(r.achievedAtHighest)}) · MQTT.js ${spreadText(r.mqttjsBaseline)} msg/s · ratio ${fmt(r.ratio, 3)}`);
      for (const f of r.firstFailing) if (f !== null) log(`    first failing step ${fmt(f.offered)}/s (achieved ${fmt(f.achieved)}/s): ${f.reasons.join('; ')}`);
    }
  }
  if (memory !== null) {
    for (const row of Object.values(memory.rows)) {
      log(`  ${fmt(row.devices).padStart(6)} devices: simulator ${spreadText(row.simulatorBytesPerDevice)} B/device (settled ${spreadText(row.simulatorBytesPerDeviceSettled)}) · mosquitto ${spreadText(row.mosquittoBytesPerConnection)} B/connection` +
        ` · connect ${spreadText(row.connectRate)}/s · ${row.okRuns}/${row.runs.length} runs ok`);
      for (const e of row.errors) log(`    ${e.split('\n')[0]}`);
    }
    for (const slope of Object.values(memory.slopes)) {
      log(`  slope ${fmt(slope.from)} → ${fmt(slope.to)} devices: simulator ${spreadText(slope.simulatorBytesPerDevice)} B/device (settled ${spreadText(slope.simulatorBytesPerDeviceSettled)})`);
    }
  }
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const notes: string[] = [];
  if (opts.runs < 3) notes.push(`only ${opts.runs} run(s): BENCHMARKING.md asks for medians of at least 3`);
  if (opts.quick) notes.push('--quick: development run (1 run, fewer rate steps, no quiet-machine wait); not a reference figure');
  const [load1] = loadavg();
  log(`machine: ${cpus().length} CPUs, load average ${load1!.toFixed(2)}${load1! > 0.5 ? ' — not quiet, figures may be noisy' : ''}`);
  const quiet = (): Promise<number> => (opts.quietWait > 0 ? waitForQuiet(opts.quietWait, log) : Promise.resolve(Number.NaN));

  let rate: Record<'qos0' | 'qos1', RateQosResult> | null = null;
  let memory: MemoryResult | null = null;
  if (opts.parts.includes('rate')) rate = await runRate(opts, quiet);
  if (opts.parts.includes('memory')) memory = await runMemory(opts, quiet);
  printSummary(rate, memory);

  const limit = fileLimit();
  const largestRow = memory?.rows[String(19_000)];
  const everySize = (pick: (row: MemoryRow) => Spread): boolean | null => {
    const rows = memory === null ? [] : Object.values(memory.rows);
    if (rows.length === 0 || rows.some((r) => pick(r).median === null)) return null;
    return rows.every((r) => pick(r).median! <= 8192);
  };
  const goals = {
    /** All 19,000 devices connected in one simulator process (one worker) in every run. */
    devicesPerProcess19000: largestRow === undefined ? null : largestRow.runs.length > 0 && largestRow.okRuns === largestRow.runs.length,
    /** Median simulator RSS per idle device at 19,000 devices ≤ 8 KiB (first reading). */
    bytesPerDeviceMax8KB: largestRow === undefined || largestRow.simulatorBytesPerDevice.median === null ? null : largestRow.simulatorBytesPerDevice.median <= 8192,
    /** The same at every measured size (first reading). */
    bytesPerDeviceMax8KBEverySize: everySize((r) => r.simulatorBytesPerDevice),
    /** The same at every measured size, settled reading. */
    bytesPerDeviceMax8KBEverySizeSettled: everySize((r) => r.simulatorBytesPerDeviceSettled),
  };
  const document = {
    benchmark: 'simulator: sustained publish rate per worker and RSS per idle device, against Mosquitto',
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      totalMemMb: Math.round(totalmem() / 2 ** 20),
      node: process.version,
      mosquittoVersion: mosquittoVersion(),
      mosquittoBinary: MOSQUITTO_BIN,
      loadAverageAtStart: load1,
      openFiles: limit === null ? null : { soft: Number.isFinite(limit.soft) ? limit.soft : null, hard: Number.isFinite(limit.hard) ? limit.hard : null },
      localPortRange: localPortRange(),
      kernel: readText('/proc/sys/kernel/osrelease'),
    },
    method: [
      `Mosquitto ${MOSQUITTO_BIN} started fresh for every measurement with the BENCHMARKING.md settings (${mosquittoConfig(0).slice(1).join('; ')}), killed after it.`,
      `rate: the simulator runs in this process through runScenario(parseScenario(yaml), { workers: 1, silent reporter, reportDir: null }) (one piscina worker thread from dist/simulator/shard/worker.js): ${RATE_DEVICES} sensors, connect unlimited, ` +
        `one publication each at offered/${RATE_DEVICES} msg/s, payload { size: ${BODY_BYTES} } (${STAMP_BYTES}-byte stamp + ${BODY_BYTES} B = ${STAMP_BYTES + BODY_BYTES} B), MQTT 5, phases rampUp ${RAMP_UP_S}s + steady ${opts.steadySeconds}s, drain ${DRAIN_S}s. ` +
        `Offered rates step up ${opts.ladder.join(', ')} msg/s until a step fails. A step is sustained when the achieved rate is >= ${SUSTAINED_SHARE * 100}% of the offered rate, ` +
        `result.generator.saturated is false, the run completed with all ${RATE_DEVICES} devices connected, and for QoS 1 totals.acknowledged[1] === totals.published[1] after the drain. ` +
        `The figure per run is the highest sustained offered rate; median/min/max are over runs. 'published' counts messages handed to the client (QoS 1: including those waiting for window space), as the simulator does. ` +
        'achieved = offered x totals.published / the publishes the schedule offered (devices connect spread evenly over the ramp-up, plan.ts connectOffsetMs, then publish at offered/count msg/s to the end of the timeline; expected = sum over devices of (duration - connect offset) x rate). ' +
        "It replaces the mean of the 'steady' timeline points (reported as steadyPointsMean), which alias: each point is the difference of the latest shard snapshots at an orchestrator tick, two unsynchronized 1 s timers, so intervals hold 0, 1 or 2 snapshots' worth.",
      `rate baseline: MQTT.js ${readMqttVersion()} on the main thread of this process, ${RATE_DEVICES} clients (MQTT 5, clean start), ${STAMP_BYTES + BODY_BYTES}-byte payloads, to a fresh Mosquitto; ${MQTTJS_WARMUP_MS / 1000} s warm-up, then ${opts.steadySeconds} s measured. ` +
        `QoS 0: back-to-back publishes, counted when MQTT.js's callback reports them written (it waits for 'drain' on a full socket buffer). QoS 1: at most ${MQTTJS_INFLIGHT} unacknowledged per client, counted on PUBACK. brokerUnreadBytesAtEnd = sum of Recv-Q of Mosquitto's sockets (ss) at the end of the window: written but not yet read by the broker. ` +
        'ratio = our median highest sustained offered rate / MQTT.js median msg/s (ratioAchieved uses our achieved rate at that step). Runs alternate: our QoS 0 ladder, MQTT.js QoS 0, our QoS 1 ladder, MQTT.js QoS 1.',
      `memory: the built CLI as a child process: node ${CLI.replace(/^.*\/dist\//, 'dist/')} ${commandFor('SCENARIO.yaml', 0).slice(2).join(' ').replace(':0', ':PORT')}; N sensors connecting at ${MEMORY_CONNECT_RATE}/s, keepalive 60s, one QoS 1 publication every 1h (idle), ` +
        `phases rampUp N/${MEMORY_CONNECT_RATE} s exactly (the simulator spreads a fleet's connects evenly over the whole ramp-up when it is longer than count/rate, so a ramp-up with a 2 s margin would offer fewer connections/s; the margin is in the steady phase), steady ${STEADY_S} s. Once a progress line shows 'connected N/N' the benchmark waits ${SETTLE_MS / 1000} s and reads VmRSS of the CLI process (main + shard thread) and of Mosquitto, ` +
        `then reads them again ${SETTLED_MS / 1000} s after all connected ('settled'), and stops the CLI with SIGINT (SIGKILL after 20 s). Per device = (RSS_N - RSS_base) / N with RSS_base measured the same way with N = ${BASE_DEVICES} in the same run (Mosquitto likewise, per connection). ` +
        `The first reading (simulatorBytesPerDevice, the figure since the benchmark exists) comes right after the connect burst: the worker's old generation still holds the garbage of the connects and each thread's young generation is as large as the burst made it; V8's memory reducer collects and shrinks them, usually 6 to 14 s later (now and then after the settled reading, which is then close to the first), which the settled reading (simulatorBytesPerDeviceSettled) shows: what an idle fleet costs while it stays idle. ` +
        'With a ~100 MB process, both readings of one process vary by a few MB from run to run (more on a busy machine: which heap pages happen to be resident), i.e. by several KB per device at 1,000 devices; slopes = (RSS_b - RSS_a) / (b - a) between consecutive sizes of the same run, at both readings, leave out every fixed cost and that noise of the base and are the marginal cost of one more device. ' +
        `connectRate: Mosquitto's open fds (/proc/PID/fd) polled every 100 ms; sockets gained between the first poll that saw one and the first that saw all N / the time between those polls (connectRateFromProgress: the same from the 1 s progress lines). ` +
        'Each run measures the base, then each N in turn.',
      'goals: devicesPerProcess19000 = every 19,000-device run connected all devices in one simulator process with one worker; bytesPerDeviceMax8KB = median simulator bytes per device at 19,000 <= 8192 (first reading); bytesPerDeviceMax8KBEverySize = the same at every measured size; bytesPerDeviceMax8KBEverySizeSettled = the same with the settled reading.',
      `Before each measurement: wait up to ${opts.quietWait} s for other jobs to use < ${QUIET_BUSY_PCT}% of one core (busyBeforePct per run).`,
    ].join('\n'),
    settings: {
      runs: opts.runs,
      quick: opts.quick,
      steadySeconds: opts.steadySeconds,
      ladder: opts.ladder,
      devices: opts.devices,
      quietWaitSeconds: opts.quietWait,
      rateScenarioExample: rateScenarioYaml(0, opts.ladder[0]!, 0, { steadySeconds: opts.steadySeconds }).replace(':0\n', ':PORT\n'),
      memoryScenarioExample: memoryScenarioYaml(1000, 0).replace(':0\n', ':PORT\n'),
      memoryRampUpMsFor19000: memoryRampUpMs(19_000),
      memoryReadingsAfterAllConnectedMs: [SETTLE_MS, SETTLED_MS],
    },
    notes,
    rate,
    memory: memory === null ? null : { ...memory.rows, base: memory.base, slopes: memory.slopes, fileLimit: memory.fileLimit },
    goals,
  };
  await new Promise<void>((resolveWrite) => process.stdout.write(JSON.stringify(document, null, 2) + '\n', () => resolveWrite()));
}

function readMqttVersion(): string {
  try {
    const url = new URL('../../../node_modules/mqtt/package.json', import.meta.url);
    return (JSON.parse(readFileSync(url, 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`bench/simulator: ${errorText(err)}`);
    process.exit(2);
  },
);


