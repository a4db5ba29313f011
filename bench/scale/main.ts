/**
 * Scale benchmark: the most concurrent devices this machine holds with QoS 1 telemetry and nothing lost,
 * against the reference broker and against Mosquitto (one process each, so each holds at most ~19,900
 * connections under the 20,000 open-file limit), then past one process: several simulator processes
 * (`mqtt-sim run --shard i/k`) against two reference broker processes listed together as the target.
 * Every process is real: brokers and simulators are children started fresh for every step.
 *
 *   node dist/bench/scale/main.js [--quick] [--only ours,mosquitto,multi] [--sizes LIST]
 *        [--multi-devices N] [--multi-processes K] [--connect-rate R] [--interval S] [--workers W]
 *        [--persistence sqlite|memory] [--quiet-wait S] [--keep DIR]
 *
 * Parts: an idle base run (10 devices: the simulator process's own RSS), then the ramp against ours and
 * the ramp against Mosquitto (increasing sizes, stopping at the first step that fails), then the
 * multi-process step, then per-device costs and their extrapolation to 1,000,000 devices. One JSON
 * document goes to stdout; progress to stderr.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { waitForQuiet } from '../broker/quiet.js';
import { extrapolationRows } from '../../simulator/capacity/cost-model.js';
import { fileLimit, localPortRange, spareFileDescriptors } from '../../simulator/orchestrator/environment.js';
import { brokerPoints, checkModel, costModelOf, estimateFor, shardLimitsHere, simulatorPoints, type CostPoint } from './costs.js';
import { CLI, findMosquitto, killAllChildren, liveChildren } from './processes.js';
import { scaleScenarioYaml, scaleTiming, sourceAddressesNeeded, SourceAddressPool, DRAIN_S } from './scenario.js';
import { runStep, scaleMosquittoConfig, oursBrokerArgs, SHARED_START_DELAY_MS, STEP_SLACK_MS, type BrokerKind, type StepSpec } from './step.js';
import { summarizeRamp, summarizeStep, type StepResult } from './summary.js';

type Part = 'ours' | 'mosquitto' | 'multi';
const PARTS: readonly Part[] = ['ours', 'mosquitto', 'multi'];

export const FULL_SIZES = [6_600, 13_200, 19_800];
export const QUICK_SIZES = [1_000, 2_000];
const BASE_DEVICES = 10;
const BASE_STEADY_S = 6;
const TARGET_DEVICES = 1_000_000;
/** Start-up, stop and merge time of a step beyond its timeline and drain, for the wall-time estimate. */
const STEP_OVERHEAD_S = 12;

export interface Options {
  quick: boolean;
  parts: Part[];
  sizes: number[];
  multiDevices: number;
  multiProcesses: number;
  connectRate: number;
  intervalSeconds: number;
  workers: number;
  persistence: 'sqlite' | 'memory';
  quietWait: number;
  keep: string | null;
}

const usage = `usage: node dist/bench/scale/main.js [options]   (npm run bench:scale -- [options])
  --quick               development run: ramp ${QUICK_SIZES.join(', ')}, 2,000 devices over 2 brokers and 3 simulators,
                        telemetry every 10 s (so the steady phase is 15 s), connect 1000/s, no quiet-machine wait
  --only LIST           parts to run, comma separated: ours, mosquitto, multi (default all)
  --sizes LIST          devices per step of the one-process ramps (default ${FULL_SIZES.join(',')}); at most
                        the open-file hard limit less ${spareFileDescriptors + 1}
  --multi-devices N     devices of the multi-process step, spread over 2 broker processes (default 36000)
  --multi-processes K   simulator processes of the multi-process step (default 3)
  --connect-rate R      device connects per second, over all simulator processes (default 2000; --quick 1000)
  --interval S          seconds between two QoS 1 messages of a device (default 60; --quick 10)
  --workers W           worker threads per simulator process (default 1)
  --persistence P       store of the reference broker: sqlite (durable, the default) or memory
  --quiet-wait S        before each step wait up to S s for other jobs to leave the CPUs (default 30; --quick 0)
  --keep DIR            keep every step's scenario, logs and run.json in DIR (default: a temp dir, removed)
`;

/** Parses the command line; throws an Error with a one-line message on bad input. */
export function parseArgs(argv: readonly string[]): Options {
  let quick = false;
  let parts: Part[] = [...PARTS];
  let sizes: number[] | undefined;
  let multiDevices: number | undefined;
  let multiProcesses = 3;
  let connectRate: number | undefined;
  let intervalSeconds: number | undefined;
  let workers = 1;
  let persistence: Options['persistence'] = 'sqlite';
  let quietWait: number | undefined;
  let keep: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${arg} needs a value (see --help)`);
      return v;
    };
    const positive = (text: string, what = arg): number => {
      const n = Number(text.replace(/_/g, ''));
      if (text.trim() === '' || !Number.isSafeInteger(n) || n < 1) throw new Error(`${what}: expected a whole number of at least 1, got '${text}'`);
      return n;
    };
    switch (arg) {
      case '--quick': quick = true; break;
      case '--only': {
        parts = value().split(',').map((p) => p.trim()).filter((p) => p !== '').map((p) => {
          if (!(PARTS as readonly string[]).includes(p)) throw new Error(`--only: unknown part '${p}'; expected some of ${PARTS.join(', ')}`);
          return p as Part;
        });
        if (parts.length === 0) throw new Error(`--only: name at least one part of ${PARTS.join(', ')}`);
        break;
      }
      case '--sizes': {
        sizes = value().split(',').map((s) => positive(s.trim(), '--sizes'));
        for (let j = 1; j < sizes.length; j++) if (sizes[j]! <= sizes[j - 1]!) throw new Error(`--sizes: expected increasing sizes (the ramp stops at the first failing one), got ${sizes.join(',')}`);
        break;
      }
      case '--multi-devices': multiDevices = positive(value()); break;
      case '--multi-processes': multiProcesses = positive(value()); break;
      case '--connect-rate': connectRate = positive(value()); break;
      case '--interval': intervalSeconds = positive(value()); break;
      case '--workers': workers = positive(value()); break;
      case '--persistence': {
        const p = value();
        if (p !== 'sqlite' && p !== 'memory') throw new Error(`--persistence: expected sqlite or memory, got '${p}'`);
        persistence = p;
        break;
      }
      case '--quiet-wait': {
        const text = value();
        const n = Number(text);
        if (!Number.isFinite(n) || n < 0) throw new Error(`--quiet-wait: expected seconds (0 or more), got '${text}'`);
        quietWait = n;
        break;
      }
      case '--keep': keep = resolve(value()); break;
      case '--help':
      case '-h':
        process.stderr.write(usage);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument '${arg}'; see --help`);
    }
  }
  return {
    quick,
    parts,
    sizes: sizes ?? (quick ? QUICK_SIZES : FULL_SIZES),
    multiDevices: multiDevices ?? (quick ? 2_000 : 36_000),
    multiProcesses,
    connectRate: connectRate ?? (quick ? 1000 : 2000),
    intervalSeconds: intervalSeconds ?? (quick ? 10 : 60),
    workers,
    persistence,
    quietWait: quietWait ?? (quick ? 0 : 30),
    keep,
  };
}

/** Devices one process may hold under a hard open-file limit: its spare descriptors and its consumers' sockets left out. */
export function devicesPerProcessLimit(hardLimit: number | null, consumers: number): number | null {
  return hardLimit === null || !Number.isFinite(hardLimit) ? null : hardLimit - spareFileDescriptors - consumers;
}

/** Steps larger than one process may hold under the hard limit, as one-line problems (empty when all fit). */
export function sizeProblems(opts: Options, hardLimit: number | null): string[] {
  const perProcess = devicesPerProcessLimit(hardLimit, 1);
  const perMultiSim = devicesPerProcessLimit(hardLimit, 2);
  if (perProcess === null || perMultiSim === null) return [];
  const out: string[] = [];
  if (opts.parts.includes('ours') || opts.parts.includes('mosquitto')) {
    for (const n of opts.sizes) {
      if (n > perProcess) out.push(`--sizes ${n}: one process holds at most ${perProcess} devices under the open-file hard limit ${hardLimit}; the multi part goes past one process`);
    }
  }
  if (opts.parts.includes('multi')) {
    const perSim = Math.ceil(opts.multiDevices / opts.multiProcesses);
    const perBroker = Math.ceil(opts.multiDevices / 2);
    if (perSim > perMultiSim) out.push(`--multi-devices ${opts.multiDevices} over ${opts.multiProcesses} simulator processes is ${perSim} per process, above the ${perMultiSim} one holds; raise --multi-processes`);
    if (perBroker > perProcess) out.push(`--multi-devices ${opts.multiDevices} over 2 brokers is ${perBroker} per broker process, above the ${perProcess} one holds under the open-file limit`);
  }
  return out;
}

/** Rough wall time of the whole run, seconds: timelines, drains and per-step overhead, every ramp step assumed to pass. */
export function estimateWallSeconds(opts: Options, mosquittoAvailable: boolean): number {
  const step = (devices: number, steady?: number): number => {
    const t = scaleTiming(devices, opts.connectRate, opts.intervalSeconds, steady);
    return (t.durationMs + t.drainMs) / 1000 + STEP_OVERHEAD_S + opts.quietWait / 4;
  };
  let total = step(BASE_DEVICES, BASE_STEADY_S);
  for (const part of opts.parts) {
    if (part === 'multi') total += step(opts.multiDevices) + (opts.multiProcesses > 1 ? SHARED_START_DELAY_MS / 1000 : 0);
    else if (part === 'ours' || mosquittoAvailable) for (const n of opts.sizes) total += step(n);
  }
  return Math.round(total);
}

function log(line: string): void {
  process.stderr.write(line + '\n');
}

function fmt(x: number | null | undefined, decimals = 0): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  return x.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

const kib = (bytes: number | null): string => (bytes === null ? '—' : `${fmt(bytes / 1024, 2)} KiB`);
const mcore = (cores: number | null): string => (cores === null ? '—' : `${fmt(cores * 1e6, 2)} µcore`);

/** The one-line account of a step for stderr. */
export function describeStep(s: StepResult): string {
  const head = `[${s.label}] ${s.ok ? 'ok' : 'FAILED'} · connected ${fmt(s.connected.max)}/${fmt(s.devices)}` +
    ` in ${fmt(s.connected.secondsToAll)} s (${fmt(s.connectRate.perSec)}/s, broker side ${fmt(s.connectRate.brokerSidePerSec)}/s, connect p50 ${fmt(s.connectRate.latencyP50Ms, 1)} ms p99 ${fmt(s.connectRate.latencyP99Ms, 1)} ms)`;
  const q = `qos1 published ${fmt(s.qos1.published)} acked ${fmt(s.qos1.acknowledged)} delivered ${fmt(s.qos1.delivered)} lost ${fmt(s.qos1.lost)}`;
  const res = `simulator ${kib(s.simulator.rssBytesPerDevice)}/device, ${fmt(s.simulator.cpuCores, 3)} cores (${mcore(s.simulator.cpuCoresPerDevice)}/device)` +
    ` · broker ${kib(s.broker.rssBytesPerDevice)}/device, ${fmt(s.broker.cpuCores, 3)} cores (${mcore(s.broker.cpuCoresPerDevice)}/device)`;
  const tail = [...s.failures.map((f) => `  failure: ${f}`), ...s.warnings.slice(0, 5).map((w) => `  warning: ${w}`)];
  return [`${head} · ${q} · ${res} · ${fmt(s.wallSeconds)} s`, ...tail].join('\n');
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first (npm run bench:scale builds)`);
  const limit = fileLimit();
  const hard = limit === null || !Number.isFinite(limit.hard) ? null : limit.hard;
  const soft = limit === null || !Number.isFinite(limit.soft) ? null : limit.soft;
  const problems = sizeProblems(opts, hard);
  if (problems.length > 0) throw new Error(problems.join('\n'));
  const mosquitto = findMosquitto();
  const notes: string[] = [];
  if (opts.quick) notes.push(`--quick: development run (small sizes, telemetry every ${opts.intervalSeconds} s instead of 60 s); not a reference figure`);
  if (opts.parts.includes('mosquitto') && mosquitto.path === null) notes.push(`mosquitto part skipped: ${mosquitto.reason}`);

  const [load1] = loadavg();
  log(`machine: ${cpus().length} CPUs, ${fmt(totalmem() / 2 ** 30, 1)} GiB, load average ${load1!.toFixed(2)}${load1! > 0.5 ? ' (not quiet: figures may be noisy)' : ''}`);
  log(`open files: soft ${fmt(soft)}, hard ${fmt(hard)}${soft !== null && hard !== null && soft < hard ? ' (children get the soft limit raised to the hard one through sh -c ulimit -n)' : ''}; local ports ${JSON.stringify(localPortRange())}`);
  log(`estimated wall time: about ${fmt(estimateWallSeconds(opts, mosquitto.path !== null) / 60, 1)} min`);

  const root = opts.keep ?? mkdtempSync(join(tmpdir(), 'bench-scale-'));
  const pool = new SourceAddressPool();
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`\nbench/scale: ${signal}: stopping ${liveChildren()} child process(es)`);
    killAllChildren();
    if (opts.keep === null) rmSync(root, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const quiet = async (): Promise<void> => {
    if (opts.quietWait > 0) await waitForQuiet(opts.quietWait, log);
  };
  const specFor = (label: string, broker: BrokerKind, brokers: number, devices: number, simulatorProcesses: number, steadySeconds?: number): StepSpec => ({
    label, broker, brokers, devices, simulatorProcesses,
    workers: opts.workers,
    connectRatePerSec: opts.connectRate,
    intervalSeconds: opts.intervalSeconds,
    ...(steadySeconds !== undefined ? { steadySeconds } : {}),
    persistence: opts.persistence,
    sourceAddresses: pool.take(Math.max(2, sourceAddressesNeeded(devices))),
    mosquittoBin: mosquitto.path,
    dir: join(root, label),
  });
  const run = async (spec: StepSpec, simulatorIdle: number | null): Promise<StepResult> => {
    await quiet();
    const t = scaleTiming(spec.devices, spec.connectRatePerSec, spec.intervalSeconds, spec.steadySeconds);
    log(`[${spec.label}] ${fmt(spec.devices)} devices, ${spec.brokers} ${spec.broker} broker(s), ${spec.simulatorProcesses} simulator process(es), ` +
      `connect ${fmt(spec.connectRatePerSec)}/s, ramp-up ${fmt(t.rampUpMs / 1000, 1)} s + steady ${fmt(t.steadyMs / 1000)} s + drain ${DRAIN_S} s, sources ${spec.sourceAddresses.join(' ')}`);
    const raw = await runStep(spec, log);
    const summary = summarizeStep(raw, simulatorIdle);
    return summary;
  };

  try {
    // The simulator process with almost no devices: the RSS every simulator process has before its devices.
    const baseBroker: BrokerKind = opts.parts.includes('ours') || opts.parts.includes('multi') || mosquitto.path === null ? 'ours' : 'mosquitto';
    const base = await run(specFor('base', baseBroker, 1, BASE_DEVICES, 1, BASE_STEADY_S), null);
    const simulatorIdleRss = base.simulator.steadyRssBytes;
    const baseOk = base.connected.max >= BASE_DEVICES && simulatorIdleRss !== null;
    log(`[base] simulator idle RSS ${fmt(simulatorIdleRss === null ? null : simulatorIdleRss / 2 ** 20, 1)} MiB with ${BASE_DEVICES} devices${baseOk ? '' : ` (FAILED: ${base.failures.join('; ')})`}`);
    if (!baseOk) notes.push(`the idle base run failed (${base.failures.join('; ')}): no simulator RSS per device`);
    const idle = baseOk ? simulatorIdleRss : null;

    const ramps: Partial<Record<'ours' | 'mosquitto', { steps: StepResult[]; skipped?: string }>> = {};
    for (const kind of ['ours', 'mosquitto'] as const) {
      if (!opts.parts.includes(kind)) continue;
      if (kind === 'mosquitto' && mosquitto.path === null) {
        ramps[kind] = { steps: [], skipped: mosquitto.reason };
        log(`[mosquitto] skipped: ${mosquitto.reason}`);
        continue;
      }
      const steps: StepResult[] = [];
      for (const n of opts.sizes) {
        const s = await run(specFor(`${kind}-${n}`, kind, 1, n, 1), idle);
        steps.push(s);
        log(describeStep(s));
        if (!s.ok) {
          log(`[${kind}] the ramp stops at ${fmt(n)} devices`);
          break;
        }
      }
      ramps[kind] = { steps };
    }

    let multi: StepResult | null = null;
    if (opts.parts.includes('multi')) {
      multi = await run(specFor(`multi-${opts.multiDevices}`, 'ours', 2, opts.multiDevices, opts.multiProcesses), idle);
      log(describeStep(multi));
    }

    // Costs and the extrapolation to a million devices.
    const basePoint: CostPoint | null = baseOk ? { devices: BASE_DEVICES, rssBytes: base.simulator.peakRssBytes, cpuCores: base.simulator.cpuCores } : null;
    const allRampSteps = [...(ramps.ours?.steps ?? []), ...(ramps.mosquitto?.steps ?? [])];
    const simPoints = simulatorPoints(allRampSteps, basePoint);
    const limits = shardLimitsHere(hard, cpus().length, totalmem());
    const perBroker: Record<string, unknown> = {};
    for (const kind of ['ours', 'mosquitto'] as const) {
      const steps = ramps[kind]?.steps ?? [];
      if (steps.length === 0) continue;
      const model = costModelOf(simPoints, brokerPoints(steps), opts.intervalSeconds);
      let estimate = null;
      try {
        estimate = estimateFor(model, TARGET_DEVICES, limits, opts.intervalSeconds);
      } catch (err) {
        notes.push(`${kind}: no extrapolation: ${err instanceof Error ? err.message : String(err)}`);
      }
      perBroker[kind] = {
        costModel: model,
        million: estimate,
        ...(kind === 'ours' && multi !== null && multi.ok ? { modelCheck: checkModel(model, multi) } : {}),
      };
      if (estimate !== null) {
        log(`\n[${kind}] extrapolation to ${fmt(TARGET_DEVICES)} devices:`);
        for (const [k, v] of extrapolationRows(estimate.extrapolation)) log(`  ${k}: ${v}`);
        log(`  broker processes by open files: ${fmt(estimate.brokerProcessesByFileLimit)}, by CPU (one core each): ${fmt(estimate.brokerProcessesByCpu)}`);
        log(`  QoS 1 publishes: ${fmt(estimate.publishesPerSec)}/s; source addresses: ${fmt(estimate.sourceAddresses)}`);
        log('  assumptions:');
        for (const a of [...estimate.extrapolation.assumptions, ...estimate.assumptions]) log(`    - ${a}`);
      }
      const check = perBroker[kind] as { modelCheck?: ReturnType<typeof checkModel> };
      if (check.modelCheck !== undefined) {
        const c = check.modelCheck;
        const mib = (b: number | null): string => (b === null ? '—' : `${fmt(b / 2 ** 20, 1)} MiB`);
        log(`  model check at ${fmt(c.devices)} devices (${c.simulatorProcesses} simulators, ${c.brokers} brokers): simulator predicted ${mib(c.predicted.simulatorRssBytes)} / ${fmt(c.predicted.simulatorCpuCores, 3)} cores, measured ${mib(c.measured.simulatorRssBytes)} / ${fmt(c.measured.simulatorCpuCores, 3)} cores;` +
          ` brokers predicted ${mib(c.predicted.brokerRssBytes)} / ${fmt(c.predicted.brokerCpuCores, 3)} cores, measured ${mib(c.measured.brokerRssBytes)} / ${fmt(c.measured.brokerCpuCores, 3)} cores`);
      }
    }

    const summaryOf = (kind: 'ours' | 'mosquitto'): unknown => {
      const r = ramps[kind];
      if (r === undefined) return null;
      if (r.skipped !== undefined) return { skipped: r.skipped };
      const ramp = summarizeRamp(r.steps);
      return { ...ramp, steps: r.steps };
    };
    const goals = {
      /** Devices reached with every device connected and nothing lost, one reference broker process. */
      oursMaxDevices: ramps.ours === undefined ? null : summarizeRamp(ramps.ours.steps).maxDevices,
      mosquittoMaxDevices: ramps.mosquitto === undefined || ramps.mosquitto.skipped !== undefined ? null : summarizeRamp(ramps.mosquitto.steps).maxDevices,
      /** At least 35,000 devices over several simulator processes and two brokers, all connected, nothing lost. */
      multiProcess35000: multi === null ? null : multi.ok && multi.devices >= 35_000,
    };
    log(`\nsummary: ours ${fmt(goals.oursMaxDevices)} devices · mosquitto ${fmt(goals.mosquittoMaxDevices)} devices · multi ${multi === null ? '—' : `${fmt(multi.connected.max)}/${fmt(multi.devices)} ${multi.ok ? 'ok' : 'FAILED'}`}`);

    const document = {
      benchmark: 'scale: most concurrent devices with QoS 1 telemetry and nothing lost, ours vs Mosquitto, and past one process',
      date: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
        totalMemBytes: totalmem(),
        node: process.version,
        loadAverageAtStart: load1,
        openFiles: { soft, hard },
        localPortRange: localPortRange(),
        mosquitto: mosquitto.path === null ? { available: false, reason: mosquitto.reason } : { available: true, binary: mosquitto.path, version: mosquitto.version },
      },
      settings: { ...opts, keep: opts.keep, targetDevices: TARGET_DEVICES, baseDevices: BASE_DEVICES },
      method: methodText(opts),
      commands: {
        ours: `node dist/cli/main.js ${oursBrokerArgs(0, opts.persistence, 'STEPDIR/ours-1-data').slice(1).join(' ').replace(' 0 ', ' PORT ')}`,
        mosquitto: scaleMosquittoConfig(0).map((l) => l.replace(' 0 ', ' PORT ')),
        simulator: 'node dist/cli/main.js run STEPDIR/scenario.yaml --target mqtt://127.0.0.1:PORT [--target ...] --json --no-dashboard ' +
          `--workers ${opts.workers} --report-dir STEPDIR/slice-i [--shard i/k] [--broker-pid PID with one broker]; k > 1: node dist/cli/main.js merge STEPDIR/slice-*/run.json --out STEPDIR/merged`,
        scenarioExample: scaleScenarioYaml({
          name: 'bench-scale-multi-EXAMPLE', devices: opts.multiDevices, brokerUrls: ['mqtt://127.0.0.1:PORT1', 'mqtt://127.0.0.1:PORT2'],
          connectRatePerSec: opts.connectRate, intervalSeconds: opts.intervalSeconds, sourceAddresses: ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'],
        }),
      },
      notes,
      base,
      ours: summaryOf('ours'),
      mosquitto: summaryOf('mosquitto'),
      multi,
      costs: perBroker,
      goals,
      ...(opts.keep !== null ? { keptIn: opts.keep } : {}),
    };
    await new Promise<void>((resolveWrite) => process.stdout.write(JSON.stringify(document, null, 2) + '\n', () => resolveWrite()));
  } finally {
    killAllChildren();
    if (opts.keep === null) rmSync(root, { recursive: true, force: true });
  }
}

function methodText(opts: Options): string {
  return [
    'Every step starts fresh broker process(es) and simulator process(es) and kills them after it; nothing is reused between steps.',
    `Scenario (generated, see commands.scenarioExample): one fleet of N sensors, connect ${opts.connectRate}/s over all simulator processes from t=0, ` +
      `QoS 1 telemetry every ${opts.intervalSeconds} s (64-byte body + 20-byte stamp, MQTT 5, clean sessions), first publish at a random phase of the interval after CONNACK; ` +
      `phases rampUp ceil(N/rate) + 2 s, steady ${opts.intervalSeconds} + 5 s (so every device publishes at least once after the last one connected), drain ${DRAIN_S} s. ` +
      'Devices go round-robin over the brokers listed as the target; one consumer per broker subscribes (QoS 1) to the topics of that broker\'s devices, so the delivery checker judges every message. ' +
      'Sockets bind to fresh 127.0.0.x source addresses per step (at most 10,000 devices per address), so no (source, broker port) pair nears the ~28k ephemeral ports and no TIME_WAIT of an earlier step counts.',
    'A step passes when the timeline shows all N devices of the fleet connected at once, the run completed, the checker judged it with qos1.lost == 0, every publish was acknowledged and delivered, at least N were published, no broker protocol violation, and no process died. The one-process ramps stop at the first failing step; the most devices reached is the last passing step.',
    'connectRate.perSec = N / seconds from t=0 to all connected (interpolated between the timeline points, 1 s apart, around the moment the fleet reached N); brokerSidePerSec = broker sockets gained (open fds polled every 200 ms) / time between the first poll above idle and the first with all; latency from the run\'s connect histogram (CONNECT sent → CONNACK).',
    'Resources from /proc every second (utime+stime, VmRSS) of every broker and simulator process. Steady window: from the latest of (all of a slice\'s devices connected, steady phase began) over the simulator processes to the first end of a steady phase. ' +
      'CPU = mean over the window (cores, summed over processes); steady RSS = the last reading in the window; RSS per device = (steady RSS − idle RSS) / N, idle = a broker\'s RSS 1 s after it accepted connections (before any client), ' +
      `a simulator's = its RSS at the end of a ${BASE_DEVICES}-device base run (times the simulator processes). A Node process's idle RSS still holds start-up garbage that its first collections under load free, ` +
      'so at small N this per-step figure reads low (it can be negative); the fitted slope over the passing steps (costs.<broker>.costModel.perDevice) is the cost of one more device and feeds the extrapolation. ' +
      'connectCpuMsPerDevice = CPU time from t=0 to all connected / N.',
    `Our broker: --persistence ${opts.persistence} (${opts.persistence === 'sqlite' ? 'the default durable store' : 'memory store'}), --log-level warn. Mosquitto: BENCHMARKING.md settings, persistence false, max_connections -1, log_type error+warning.`,
    `Simulator: mqtt-sim run --json, ${opts.workers} worker thread(s) per process; several processes split the device numbers with --shard i/k and their run.json files are combined by mqtt-sim merge (the checker runs on the merged ledgers). ` +
      `A step is bounded: the simulators are interrupted ${STEP_SLACK_MS / 1000} s after timeline + drain. Children whose soft open-file limit is too low start through sh -c 'ulimit -n HARD && exec ...'.`,
    'The extrapolation uses simulator/capacity/cost-model.ts (fitLine, extrapolate) on lines fitted over the passing one-process steps; see costs.<broker>.million.assumptions. ' +
      'With several simulator processes, every slice gets the same t=0 (run --start-at, 10 s after they are spawned): slices on separate timelines leave a consumer unsubscribed while another slice still publishes.',
    'One run per step (no repetitions): the full run must fit in about 15 minutes.',
  ].join('\n');
}

// Run only as the entry point, so the unit test can import the option parser.
if (process.argv[1] !== undefined && resolve(process.argv[1]).endsWith(join('bench', 'scale', 'main.js'))) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      killAllChildren();
      log(`bench/scale: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(2);
    },
  );
}
