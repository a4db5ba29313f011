/**
 * The broker benchmark scenarios. Each run gets a fresh broker (see brokers.ts) and returns one
 * measurement; main.ts alternates brokers and repeats runs.
 *
 * Message flows follow BENCHMARKING.md: connect and subscribe (SUBACK awaited) → 1 s warm-up → measured
 * window → publishers stop → drain of at most 2 s. Loss = published × subscribers − distinct deliveries.
 */
import type { QoS } from '../../protocol/index.js';
import type { RunningBroker } from './brokers.js';
import { HOST } from '../lib/net.js';
import { connectMany, Fixed, ioCounters, PublishTemplate, type Connection } from './client.js';
import { DeliveryLedger } from './delivery-ledger.js';
import { diskWriteBytes, MachineCpuSampler, ProcessSampler, rssKb, SelfCpuSampler, type ProcessUsage } from './proc-stat.js';

export const WARMUP_MS = 1_000;
export const DRAIN_MAX_MS = 2_000;
export const PAYLOAD_BYTES = 64;
/** QoS 0: messages a publisher may have sent that the subscriber has not seen yet. */
export const QOS0_WINDOW = 100;
/** QoS 1/2: unacknowledged messages per publisher. */
export const MAX_INFLIGHT = 32;
/** Top-ups smaller than this wait for more room, so writes stay batched (a 5 ms timer sends any remainder). */
const MIN_TOPUP_QOS0 = 16;
const MIN_TOPUP_ACKED = 8;

export interface RunContext {
  broker: RunningBroker;
  seconds: number;
  runId: number;
  /** Clients for the connect and idle-memory scenarios. */
  connections: number;
  /** Handshakes in flight at most while connecting. */
  parallel: number;
  /** Every connection the run opened; main.ts destroys them after stopping the broker. */
  opened: Connection[];
  /** Aborted when main.ts gives up on the run (time limit): the flow stops its timers. */
  signal: AbortSignal;
}

export interface RunMeasure {
  /** The scenario's headline figure, in its unit. */
  value: number;
  generatorCpuPct: number;
  brokerCpuPct: number;
  brokerRssMb: number;
  /** CPU used by everything else on the machine during the measurement (% of one core): other people's jobs. */
  otherCpuPct: number;
  /** null where the scenario sends no messages. */
  loss: number | null;
  details: Record<string, number>;
  /** Things that make the figure suspect, e.g. connections the broker closed during the run. */
  warnings: string[];
}

/** Connections that closed or failed before the run ended, described for the report. */
function lostConnections(conns: readonly Connection[], role: string): string[] {
  const lost = conns.filter((c) => c.closed || c.error !== null);
  if (lost.length === 0) return [];
  const first = lost.find((c) => c.error !== null)?.error ?? 'closed by the broker';
  return [`${lost.length} of ${conns.length} ${role} connections lost during the run (first: ${first})`];
}

export interface Scenario {
  name: string;
  number: number;
  title: string;
  unit: string;
  higherIsBetter: boolean;
  /** Secondary figures summarised next to the headline (keys of RunMeasure.details). */
  extraMetrics: { key: string; unit: string; higherIsBetter: boolean }[];
  run(ctx: RunContext): Promise<RunMeasure>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** CPU of the generator (this process), the broker and the rest of the machine over one interval. */
class Samplers {
  private readonly generator = new SelfCpuSampler();
  private readonly broker: ProcessSampler;
  private readonly machine = new MachineCpuSampler();

  constructor(pid: number) {
    this.broker = new ProcessSampler(pid);
  }

  start(): void {
    this.machine.start();
    this.generator.start();
    this.broker.start();
  }

  stop(): { generatorCpuPct: number; broker: ProcessUsage; otherCpuPct: number } {
    const generatorCpuPct = this.generator.stop();
    const broker = this.broker.stop();
    const machine = this.machine.stop();
    return { generatorCpuPct, broker, otherCpuPct: Math.max(0, machine - generatorCpuPct - broker.cpuPct) };
  }
}

// ---------------------------------------------------------------------------------------------
// Message flows

export type Drive =
  | { kind: 'window'; window: number }
  | { kind: 'inflight'; max: number }
  | { kind: 'rate'; perSecond: number; max: number };

export interface FlowSpec {
  publishers: number;
  subscribers: number;
  qos: QoS;
  topic: string;
  drive: Drive;
  /** Subscribers connect with this 3.1.1 clean-session flag (default true: clean sessions). */
  subscriberClean?: boolean;
  /** Adds the broker's storage writes in the window (/proc/PID/io write_bytes) to the details. */
  diskWrites?: boolean;
}

class Publisher {
  /** Messages sent so far; also the next sequence number. */
  sent = 0;
  inflight = 0;
  private nextId = 1;

  constructor(
    readonly index: number,
    readonly conn: Connection,
    private readonly template: PublishTemplate,
    private readonly qos: QoS,
  ) {}

  /** Appends `count` PUBLISH packets to the outbox; the caller flushes. */
  publish(count: number, now: number): void {
    const out = this.conn.out;
    for (let i = 0; i < count; i++) {
      let id = 0;
      if (this.qos > 0) {
        id = this.nextId;
        this.nextId = id === 0xffff ? 1 : id + 1;
        this.inflight++;
      }
      this.template.write(out, now, this.sent++, id);
    }
  }
}

function clientId(ctx: RunContext, role: string, index: number): string {
  return `bench-${ctx.runId.toString(36)}-${role}${index}`;
}

async function connectAll(ctx: RunContext, count: number, role: string, clean = true): Promise<Connection[]> {
  const { connections, failures } = await connectMany(count, ctx.parallel, (i) => ({
    port: ctx.broker.port, host: HOST, clientId: clientId(ctx, role, i), clean,
  }));
  ctx.opened.push(...connections);
  if (failures.length > 0) throw new Error(`${failures.length} of ${count} ${role} connections failed: ${failures[0]}`);
  return connections;
}

export async function runFlow(ctx: RunContext, spec: FlowSpec): Promise<RunMeasure> {
  const ledger = new DeliveryLedger(ctx.runId, spec.publishers, spec.subscribers);

  const subscribers = await connectAll(ctx, spec.subscribers, 's', spec.subscriberClean ?? true);
  await Promise.all(subscribers.map((conn) => conn.subscribe(spec.topic, spec.qos)));
  subscribers.forEach((conn, s) => {
    conn.onPacket = (p, c) => {
      if (p.type === 'publish') {
        ledger.record(s, p.payload, c.now);
        if (p.qos === 1) c.out.ack(Fixed.Puback, p.packetId!);
        else if (p.qos === 2) c.out.ack(Fixed.Pubrec, p.packetId!);
      } else if (p.type === 'pubrel') {
        c.out.ack(Fixed.Pubcomp, p.packetId);
      }
    };
  });

  const publishers = (await connectAll(ctx, spec.publishers, 'p')).map((conn, i) =>
    new Publisher(i, conn, new PublishTemplate(spec.topic, spec.qos, PAYLOAD_BYTES, ctx.runId, i), spec.qos));
  for (const pub of publishers) {
    pub.conn.onPacket = (p, c) => {
      if (p.type === 'puback' || p.type === 'pubcomp') pub.inflight--;
      else if (p.type === 'pubrec') c.out.ack(Fixed.Pubrel, p.packetId);
    };
  }

  let running = true;
  const timers: NodeJS.Timeout[] = [];
  const drive = spec.drive;
  const stopDriving = (): void => {
    running = false;
    for (const t of timers) clearInterval(t);
  };
  ctx.signal.addEventListener('abort', stopDriving, { once: true });

  /** Messages `pub` may send now. */
  const room = (pub: Publisher): number => {
    if (drive.kind === 'window') {
      // Sequence numbers arrive in order per publisher, so the highest one seen marks what the
      // subscriber has caught up to even if the broker dropped some on the way.
      let seen = Number.POSITIVE_INFINITY;
      for (let s = 0; s < spec.subscribers; s++) {
        seen = Math.min(seen, ledger.highest[s * spec.publishers + pub.index]! + 1);
      }
      return drive.window - (pub.sent - seen);
    }
    return drive.max - pub.inflight;
  };
  const topUp = (pub: Publisher, minimum: number): void => {
    if (!running || pub.conn.closed || pub.conn.socket.writableNeedDrain) return;
    const n = room(pub);
    if (n < minimum || n <= 0) return;
    pub.publish(n, performance.now());
    pub.conn.flush();
  };

  if (drive.kind === 'rate') {
    const perPublisher = drive.perSecond / spec.publishers;
    const started = performance.now();
    timers.push(setInterval(() => {
      if (!running) return;
      const now = performance.now();
      const target = Math.floor((perPublisher * (now - started)) / 1000);
      for (const pub of publishers) {
        if (pub.conn.closed || pub.conn.socket.writableNeedDrain) continue;
        let n = target - pub.sent;
        if (spec.qos > 0) n = Math.min(n, drive.max - pub.inflight);
        if (n <= 0) continue;
        pub.publish(n, now);
        pub.conn.flush();
      }
    }, 1));
  } else {
    const minimum = drive.kind === 'window' ? MIN_TOPUP_QOS0 : MIN_TOPUP_ACKED;
    if (drive.kind === 'window') {
      // The subscriber's reads open the publishers' windows.
      for (const sub of subscribers) {
        sub.afterRead = () => {
          for (const pub of publishers) topUp(pub, minimum);
        };
      }
    } else {
      for (const pub of publishers) pub.conn.afterRead = () => topUp(pub, minimum);
    }
    for (const pub of publishers) pub.conn.socket.on('drain', () => topUp(pub, 1));
    timers.push(setInterval(() => {
      for (const pub of publishers) topUp(pub, 1);
    }, 5));
    for (const pub of publishers) topUp(pub, 1);
  }

  await sleep(WARMUP_MS);
  const samplers = new Samplers(ctx.broker.pid);
  ledger.measuring = true;
  const sentBefore = publishers.reduce((sum, p) => sum + p.sent, 0);
  const readsBefore = ioCounters.reads;
  const writesBefore = ioCounters.writes;
  const diskBefore = spec.diskWrites === true ? diskWriteBytes(ctx.broker.pid) : Number.NaN;
  samplers.start();
  const windowStart = performance.now();
  await sleep(ctx.seconds * 1000);
  ledger.measuring = false;
  const diskWritten = spec.diskWrites === true ? diskWriteBytes(ctx.broker.pid) - diskBefore : Number.NaN;
  const windowPublished = publishers.reduce((sum, p) => sum + p.sent, 0) - sentBefore;
  const windowReads = ioCounters.reads - readsBefore;
  const windowWrites = ioCounters.writes - writesBefore;
  const windowSeconds = (performance.now() - windowStart) / 1000;
  const { generatorCpuPct, broker: usage, otherCpuPct } = samplers.stop();
  const windowDeliveries = ledger.windowDeliveries;

  stopDriving();
  ctx.signal.removeEventListener('abort', stopDriving);
  const published = publishers.reduce((sum, p) => sum + p.sent, 0);
  const expected = published * spec.subscribers;
  const distinctBeforeDrain = ledger.distinct;
  const drainStart = performance.now();
  while (ledger.distinct < expected && performance.now() - drainStart < DRAIN_MAX_MS && ctx.broker.exitStatus() === null) {
    await sleep(10);
  }
  const drainMs = performance.now() - drainStart;
  const brokerGone = ctx.broker.exitStatus();
  if (brokerGone !== null) throw new Error(`broker died during the run (${brokerGone}): ${ctx.broker.logTail()}`);

  const warnings = [...lostConnections(subscribers, 'subscriber'), ...lostConnections(publishers.map((p) => p.conn), 'publisher')];
  const latency = ledger.latencyPercentiles();
  const details: Record<string, number> = {
    windowSeconds: round(windowSeconds, 3),
    windowDeliveries,
    publishedPerSec: Math.round(windowPublished / windowSeconds),
    generatorReadsPerSec: Math.round(windowReads / windowSeconds),
    generatorWritesPerSec: Math.round(windowWrites / windowSeconds),
    published,
    expectedDeliveries: expected,
    distinctDeliveries: ledger.distinct,
    duplicates: ledger.duplicates,
    foreign: ledger.foreign,
    drainMs: Math.round(drainMs),
    // Deliveries still arriving after the publishers stopped: the broker's backlog.
    deliveredDuringDrain: ledger.distinct - distinctBeforeDrain,
    brokerRssMbLast: round(usage.rssMbLast, 1),
  };
  if (spec.diskWrites === true) {
    details['brokerDiskWriteMbPerSec'] = round(diskWritten / 2 ** 20 / windowSeconds, 2);
    details['brokerDiskWriteBytesPerDelivery'] = windowDeliveries > 0 ? Math.round(diskWritten / windowDeliveries) : 0;
  }
  if (spec.qos > 0 || drive.kind === 'rate') {
    details['latencyP50Ms'] = round(latency.p50, 3);
    details['latencyP99Ms'] = round(latency.p99, 3);
    details['latencySamples'] = latency.samples;
  }
  return {
    value: windowDeliveries / windowSeconds,
    generatorCpuPct,
    brokerCpuPct: usage.cpuPct,
    brokerRssMb: usage.rssMbMax,
    otherCpuPct,
    loss: expected - ledger.distinct,
    details,
    warnings,
  };
}

/** The latency scenario's headline is p50 (ms); throughput becomes a detail. */
async function runLatency(ctx: RunContext): Promise<RunMeasure> {
  const m = await runFlow(ctx, {
    publishers: 5, subscribers: 1, qos: 1, topic: 'bench/latency',
    drive: { kind: 'rate', perSecond: 5_000, max: MAX_INFLIGHT },
  });
  m.details['deliveredPerSec'] = Math.round(m.value);
  return { ...m, value: m.details['latencyP50Ms'] ?? Number.NaN };
}

// ---------------------------------------------------------------------------------------------
// Connections

/** Spreads clients over 127.0.0.x source addresses when one address's ~28k ephemeral ports would not do. */
function sourceAddress(index: number, count: number): string | undefined {
  const addresses = Math.ceil(count / 20_000);
  return addresses <= 1 ? undefined : `127.0.0.${1 + (index % addresses)}`;
}

async function connectClients(ctx: RunContext, role: string): Promise<{ seconds: number; ok: number; failures: string[] }> {
  const start = performance.now();
  const { connections, failures } = await connectMany(ctx.connections, ctx.parallel, (i) => ({
    port: ctx.broker.port, host: HOST, clientId: clientId(ctx, role, i),
    localAddress: sourceAddress(i, ctx.connections), timeoutMs: 15_000,
  }));
  const seconds = (performance.now() - start) / 1000;
  ctx.opened.push(...connections);
  return { seconds, ok: connections.length, failures };
}

async function runConnectRate(ctx: RunContext): Promise<RunMeasure> {
  const samplers = new Samplers(ctx.broker.pid);
  samplers.start();
  const { seconds, ok, failures } = await connectClients(ctx, 'c');
  const { generatorCpuPct, broker: usage, otherCpuPct } = samplers.stop();
  if (ctx.broker.exitStatus() !== null) throw new Error(`broker died during the run: ${ctx.broker.logTail()}`);
  return {
    value: ok / seconds,
    generatorCpuPct,
    brokerCpuPct: usage.cpuPct,
    brokerRssMb: usage.rssMbMax,
    otherCpuPct,
    loss: null,
    details: { connected: ok, failed: failures.length, seconds: round(seconds, 3) },
    warnings: failures.length > 0 ? [`${failures.length} connects failed (first: ${failures[0]})`] : [],
  };
}

/** Median of a few RSS readings 100 ms apart, KiB. */
async function steadyRss(pid: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    if (i > 0) await sleep(100);
    samples.push(rssKb(pid));
  }
  samples.sort((a, b) => a - b);
  return samples[2]!;
}

async function runIdleRss(ctx: RunContext): Promise<RunMeasure> {
  const pid = ctx.broker.pid;
  await sleep(500);
  const before = await steadyRss(pid);
  const samplers = new Samplers(pid);
  samplers.start();
  const { ok, failures, seconds } = await connectClients(ctx, 'i');
  const { generatorCpuPct, broker: usage, otherCpuPct } = samplers.stop();
  await sleep(1_000);
  const after = await steadyRss(pid);
  if (ctx.broker.exitStatus() !== null) throw new Error(`broker died during the run: ${ctx.broker.logTail()}`);
  if (ok === 0) throw new Error(`no client connected: ${failures[0] ?? ''}`);
  return {
    value: (after - before) / ok,
    generatorCpuPct,
    brokerCpuPct: usage.cpuPct,
    brokerRssMb: after / 1024,
    otherCpuPct,
    loss: null,
    details: {
      connected: ok, failed: failures.length, connectSeconds: round(seconds, 3),
      rssBeforeMb: round(before / 1024, 2), rssAfterMb: round(after / 1024, 2),
    },
    warnings: [
      ...(failures.length > 0 ? [`${failures.length} connects failed (first: ${failures[0]})`] : []),
      ...lostConnections(ctx.opened, 'idle'),
    ],
  };
}

function round(x: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}

// ---------------------------------------------------------------------------------------------
// The table

/** The fan-in QoS 1 flow: 50 publishers → 1 subscriber, at most MAX_INFLIGHT unacknowledged per publisher. */
export const FANIN_QOS1: FlowSpec = {
  publishers: 50, subscribers: 1, qos: 1, topic: 'bench/fanin', drive: { kind: 'inflight', max: MAX_INFLIGHT },
};

const latencyMetrics = [
  { key: 'latencyP50Ms', unit: 'ms', higherIsBetter: false },
  { key: 'latencyP99Ms', unit: 'ms', higherIsBetter: false },
];

export const scenarios: readonly Scenario[] = [
  {
    name: 'fanin-qos0', number: 1, title: 'fan-in 50 → 1, QoS 0, 64 B', unit: 'msg/s', higherIsBetter: true, extraMetrics: [],
    run: (ctx) => runFlow(ctx, {
      publishers: 50, subscribers: 1, qos: 0, topic: 'bench/fanin', drive: { kind: 'window', window: QOS0_WINDOW },
    }),
  },
  {
    name: 'fanin-qos1', number: 2, title: 'fan-in 50 → 1, QoS 1, 64 B', unit: 'msg/s', higherIsBetter: true, extraMetrics: latencyMetrics,
    run: (ctx) => runFlow(ctx, FANIN_QOS1),
  },
  {
    name: 'fanin-qos2', number: 3, title: 'fan-in 50 → 1, QoS 2, 64 B', unit: 'msg/s', higherIsBetter: true, extraMetrics: latencyMetrics,
    run: (ctx) => runFlow(ctx, {
      publishers: 50, subscribers: 1, qos: 2, topic: 'bench/fanin', drive: { kind: 'inflight', max: MAX_INFLIGHT },
    }),
  },
  {
    name: 'fanout-qos0', number: 4, title: 'fan-out 1 → 200, QoS 0, 2,000 msg/s offered', unit: 'deliveries/s', higherIsBetter: true,
    extraMetrics: [],
    run: (ctx) => runFlow(ctx, {
      publishers: 1, subscribers: 200, qos: 0, topic: 'bench/fanout', drive: { kind: 'rate', perSecond: 2_000, max: 0 },
    }),
  },
  {
    name: 'latency-qos1', number: 5, title: 'latency at 5,000 msg/s QoS 1 (5 publishers → 1): p50', unit: 'ms', higherIsBetter: false,
    extraMetrics: [{ key: 'latencyP99Ms', unit: 'ms', higherIsBetter: false }, { key: 'deliveredPerSec', unit: 'msg/s', higherIsBetter: true }],
    run: runLatency,
  },
  {
    name: 'connect-rate', number: 6, title: '5,000 connects, ≤100 handshakes in flight', unit: 'connections/s', higherIsBetter: true,
    extraMetrics: [],
    run: runConnectRate,
  },
  {
    name: 'idle-rss', number: 7, title: 'RSS per idle connection (5,000 clients)', unit: 'KB/connection', higherIsBetter: false,
    extraMetrics: [],
    run: runIdleRss,
  },
];
