/**
 * A shard: thousands of devices on one event loop. It knows nothing about piscina — it talks through a
 * ShardChannel, so the same code runs in a worker thread (worker.ts) or, later, in its own process.
 *
 * Life: prepare (consumers connect and subscribe) → start (timeline: connects at the ramp-up rate,
 * publications on a fixed schedule, stops over ramp-down) → stop (no new publishes; wait for our own
 * acknowledgements) → finish (disconnect, resolve with counters, histograms and ledgers).
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { QoS } from '../../protocol/packets.js';
import { reasonCodeName } from '../../protocol/reason-codes.js';
import { LeanClient } from '../client/lean-client.js';
import { openTransport } from '../client/transport.js';
import type { LeanClientHandler, LeanClientOptions } from '../client/types.js';
import { ackToken, Device, tokenLocal, tokenSeq, type Publication, type PublicationHost } from '../devices/device.js';
import { setUpDevice } from '../devices/models.js';
import { emptyFleetCounters, emptyViolationCounts } from '../metrics/counters.js';
import { countLinkEvent } from '../faults/fault-counters.js';
import { createDeviceNetwork } from '../faults/link.js';
import { deliveryPauseMs } from '../faults/profile.js';
import { isTransparent } from '../faults/profile.js';
import { HistogramSet } from '../metrics/histograms.js';
import { LoopHealthMonitor } from '../metrics/loop-health.js';
import type { BrokerViolationExample, BrokerViolationKind, DisconnectCause, FleetCounters } from '../metrics/types.js';
import { histogramNames } from '../metrics/types.js';
import { recordsSliceClock, SliceLatencyRecorder } from '../orchestrator/clock-offsets.js';
import { fleetLayout, fleetOfStream, type RunSlice, type StreamRange } from '../orchestrator/plan.js';
import { createPrng } from '../scenario/prng.js';
import type { FleetSpec, Scenario } from '../scenario/types.js';
import { CheckerRecorder } from '../verify/checker-records.js';
import { ShardLedger } from '../verify/ledger.js';
import { preciseNowMs, readStamp, STAMP_LENGTH, writeStamp } from '../verify/stamp.js';
import type { DeviceAssignment, FromShard, ShardChaos, ShardResult, ToShard } from './messages.js';
import { Scheduler, type Timed } from './scheduler.js';

export interface ShardChannel {
  post(message: FromShard): void;
  onMessage(handler: (message: ToShard) => void): void;
  close(): void;
}

export interface ShardOptions {
  shard: number;
  scenario: Scenario;
  devices: DeviceAssignment[];
  snapshotIntervalMs: number;
  /** The slice of a distributed run (`--shard index/count`): with 2 to 64 slices, deliveries are also recorded per publishing slice. */
  slice?: RunSlice;
  /** Added to every clock reading (a test aid: this shard behaves as on a machine whose clock is off by this much). */
  clockSkewMs?: number;
}

/** The shard's clock for its clients and links (connect times, fault timing); one object shared by every client of the shard. */
function clientTimersFor(now: () => number): NonNullable<LeanClientOptions['timers']> {
  return {
    now,
    setTimeout: (fn: () => void, ms: number): unknown => setTimeout(fn, ms),
    clearTimeout: (handle: unknown): void => clearTimeout(handle as NodeJS.Timeout),
  };
}

/** The client options a fleet's devices share: all but the per-device ones (see ShardRuntime.clientOptions). */
type FleetClientOptions = Omit<LeanClientOptions, 'clientId' | 'random' | 'localAddress' | 'createStream'>;

/** Messages a device may still have waiting in its client when the run stops; beyond this a publish is refused. */
const MAX_QUEUED = 1000;
/** How long a stopping device waits for its last acknowledgements before it disconnects anyway. */
const STOP_GRACE_MS = 2000;
/** Errors kept for the report, and events forwarded to the orchestrator per shard. */
const MAX_ERRORS = 20;
/** Broker violation examples kept per shard (every violation is counted). */
const MAX_VIOLATION_EXAMPLES = 10;

class Stopper implements Timed {
  atMs: number;
  heapIndex = -1;
  constructor(readonly runtime: ShardRuntime, readonly device: Device, atMs: number, readonly final: boolean) {
    this.atMs = atMs;
  }
  fire(): void {
    if (this.final) this.runtime.disconnect(this.device);
    else this.runtime.beginStop(this.device);
  }
}

class Connector implements Timed {
  atMs: number;
  heapIndex = -1;
  constructor(readonly runtime: ShardRuntime, readonly device: Device, atMs: number) {
    this.atMs = atMs;
  }
  fire(): void {
    this.runtime.connect(this.device);
  }
}

export class ShardRuntime implements PublicationHost {
  readonly shard: number;
  private readonly scenario: Scenario;
  private readonly devices: Device[] = [];
  private readonly counters: Record<string, FleetCounters> = {};
  private readonly fleetCounters: FleetCounters[] = [];
  private readonly streamRanges: StreamRange[];
  private readonly histograms = new HistogramSet();
  private readonly health = new LoopHealthMonitor();
  private readonly ledger = new ShardLedger();
  /** Publish times and subscriber sessions for the delivery checker. */
  private readonly checkerRecords = new CheckerRecorder();
  private readonly scheduler: Scheduler;
  private readonly errors: string[] = [];
  private readonly violationExamples: BrokerViolationExample[] = [];
  private readonly e2eFleetNames: string[];
  private snapshotTimer: NodeJS.Timeout | null = null;
  private epochMs = 0;
  private publishing = false;
  private finished: ((result: ShardResult) => void) | null = null;
  private readonly done: Promise<ShardResult>;
  private eventsSent = 0;
  private tls: ConnectionOptions | undefined;
  /** Per fleet index: time on the shard's clock (this.now) until which a chaos partition keeps its devices offline; 0: none. */
  private readonly partitionedUntil: number[] = [];
  /** True while chaos cuts links: those disconnects are the experiment, not errors worth reporting. */
  private cutting = false;
  /**
   * The shard's one clock (epoch ms, sub-millisecond): stamps, receive times, the schedule, checker
   * records. The machine's clock plus `clockSkewMs`, which tests use to stand for a machine whose clock is off.
   */
  readonly now: () => number;
  private readonly skewMs: number;
  private readonly timers: NonNullable<LeanClientOptions['timers']>;
  /** Deliveries per publishing slice (a slice of 2 to 64), for the clock offsets of `mqtt-sim merge`. */
  private readonly sliceLatency: SliceLatencyRecorder | null;
  /** Per fleet index: the options its devices' client options inherit (clientOptions). */
  private readonly fleetClientOptions: Array<FleetClientOptions | undefined> = [];

  constructor(private readonly options: ShardOptions, private readonly channel: ShardChannel) {
    this.shard = options.shard;
    this.scenario = options.scenario;
    const skew = options.clockSkewMs ?? 0;
    this.skewMs = skew;
    this.now = skew === 0 ? preciseNowMs : () => preciseNowMs() + skew;
    this.timers = clientTimersFor(this.now);
    this.sliceLatency = recordsSliceClock(options.slice) ? new SliceLatencyRecorder(options.scenario, options.slice.count) : null;
    this.scheduler = new Scheduler(this.now, (late) => this.health.recordSlip(late));
    this.streamRanges = fleetLayout(this.scenario).streamRanges;
    this.e2eFleetNames = this.scenario.fleets.map((f) => histogramNames.e2eFleet(f.name));
    for (const fleet of this.scenario.fleets) {
      const c = emptyFleetCounters(0);
      this.counters[fleet.name] = c;
      this.fleetCounters.push(c);
    }
    this.done = new Promise((resolve) => (this.finished = resolve));
    this.tls = this.loadTls();
    // Structured cloning gave every assignment its own copy of the broker URL: keep one string per URL.
    const urls = new Map<string, string>();
    for (const a of options.devices) {
      const url = urls.get(a.url);
      if (url === undefined) urls.set(a.url, a.url);
      else a.url = url;
      const fleet = this.scenario.fleets[a.fleet]!;
      const counters = this.fleetCounters[a.fleet]!;
      counters.devices++;
      const device = new Device(a, fleet, counters, createPrng(this.scenario.seed, 1, a.device));
      this.devices.push(device);
    }
    channel.onMessage((m) => this.onControl(m));
  }

  /** Resolves when the shard has finished (after `finish` or `abort`). */
  result(): Promise<ShardResult> {
    return this.done;
  }

  private loadTls(): ConnectionOptions | undefined {
    const tls = this.scenario.target?.tls;
    if (!tls) return undefined;
    const options: ConnectionOptions = { rejectUnauthorized: tls.rejectUnauthorized };
    if (tls.ca) options.ca = readFileSync(tls.ca);
    if (tls.cert) options.cert = readFileSync(tls.cert);
    if (tls.key) options.key = readFileSync(tls.key);
    if (tls.servername) options.servername = tls.servername;
    return options;
  }

  private onControl(m: ToShard): void {
    try {
      switch (m.type) {
        case 'prepare':
          this.prepare();
          break;
        case 'start':
          this.start(m.epochMs);
          break;
        case 'stop':
          void this.stop();
          break;
        case 'finish':
          void this.finish(true);
          break;
        case 'abort':
          void this.finish(false);
          break;
        case 'chaos':
          this.chaos(m.action);
          break;
      }
    } catch (err) {
      this.recordError(`shard ${this.shard}: ${err instanceof Error ? err.message : String(err)}`);
      void this.finish(false);
    }
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  private prepare(): void {
    this.snapshotTimer = setInterval(() => this.postSnapshot(), this.options.snapshotIntervalMs);
    const consumers = this.devices.filter((d) => d.fleet.model === 'consumer');
    let pending = consumers.length;
    let failed = 0;
    let firstError: string | undefined;
    const settle = (): void => {
      if (--pending === 0) {
        const msg: FromShard = { type: 'ready', shard: this.shard, connected: consumers.length - failed, failed };
        if (firstError !== undefined) msg.firstError = firstError;
        this.channel.post(msg);
      }
    };
    if (consumers.length === 0) {
      this.channel.post({ type: 'ready', shard: this.shard, connected: 0, failed: 0 });
      return;
    }
    const deadline = this.scenario.target!.connectTimeoutMs + 5000;
    for (const d of consumers) {
      const timer = setTimeout(() => d.onReady?.(`${d.assignment.clientId}: not connected and subscribed within ${deadline} ms`), deadline);
      d.onReady = (error?: string): void => {
        d.onReady = null;
        clearTimeout(timer);
        if (error !== undefined) {
          failed++;
          firstError ??= error;
        }
        settle();
      };
      this.connect(d);
    }
  }

  private start(epochMs: number): void {
    // The orchestrator's t=0 on this shard's clock (a skewed machine's orchestrator reads the same skewed clock).
    this.epochMs = epochMs + this.skewMs;
    this.alignSnapshots();
    this.publishing = true;
    for (const d of this.devices) {
      const a = d.assignment;
      if (d.fleet.model === 'consumer') {
        // Consumers are connected already; their commands start with the timeline.
        this.startPublications(d, epochMs);
      } else {
        this.scheduler.schedule(new Connector(this, d, epochMs + a.connectAtMs));
      }
      if (a.stopAtMs < this.scenario.durationMs) this.scheduler.schedule(new Stopper(this, d, epochMs + a.stopAtMs, false));
    }
  }

  private async stop(): Promise<void> {
    this.publishing = false;
    for (const d of this.devices) for (const p of d.publications) this.deactivate(p);
    const deadline = this.now() + this.scenario.drainMs;
    let outstanding = this.outstanding();
    while (outstanding > 0 && this.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      outstanding = this.outstanding();
    }
    this.channel.post({ type: 'drained', shard: this.shard, outstanding });
  }

  private outstanding(): number {
    let n = 0;
    for (const d of this.devices) n += d.outstanding;
    return n;
  }

  private async finish(graceful: boolean): Promise<void> {
    if (this.finished === null) return;
    this.publishing = false;
    this.scheduler.stop();
    const closing: Array<Promise<void>> = [];
    const endMs = this.now();
    for (const d of this.devices) {
      if (d.state === 'planned' || d.state === 'stopped') continue;
      // After the drain, a subscription still in force counts as in force to the end of the run; on a
      // lossy link the end is set back by how long deliveries can pause on it, so a message routed just
      // before the finish and still on its way is indeterminate if missing, not lost.
      if (graceful && d.hasSubscriptions) {
        const network = d.fleet.network;
        this.checkerRecords.end(d.assignment.device, endMs - (network === undefined ? 0 : deliveryPauseMs(network)));
      }
      d.state = 'stopped';
      if (graceful) closing.push(d.client.stop(true).catch(() => undefined));
      else d.client.destroy();
    }
    await Promise.all(closing);
    if (this.snapshotTimer) clearTimeout(this.snapshotTimer); // an interval before start, a timeout after: Node clears both
    const ledgers = this.ledger.serialize();
    ledgers.checker = this.checkerRecords.serialize();
    this.postSnapshot();
    this.health.close();
    const resolve = this.finished;
    this.finished = null;
    resolve({
      shard: this.shard,
      fleets: this.counters,
      histograms: this.histograms.cumulative(),
      ledgers,
      errors: this.errors,
      brokerViolations: this.violationExamples,
      ...(this.sliceLatency !== null ? { clock: this.sliceLatency.toRecord() } : {}),
    });
  }

  /**
   * From t=0 on, snapshots go out on the boundaries epoch + k × interval in every shard, so each
   * timeline point the orchestrator takes just after a boundary holds exactly one interval of every shard.
   */
  private alignSnapshots(): void {
    if (this.snapshotTimer) clearTimeout(this.snapshotTimer); // an interval before start, a timeout after: Node clears both
    const interval = this.options.snapshotIntervalMs;
    const next = (): void => {
      const now = this.now();
      const k = Math.floor((now - this.epochMs) / interval) + 1;
      this.snapshotTimer = setTimeout(() => {
        this.postSnapshot();
        next();
      }, this.epochMs + k * interval - now);
    };
    next();
  }

  private postSnapshot(): void {
    const atMs = this.epochMs === 0 ? 0 : this.now() - this.epochMs;
    this.channel.post({
      type: 'snapshot',
      shard: this.shard,
      snapshot: { atMs, fleets: this.counters, interval: this.histograms.takeInterval(), health: this.health.sample() },
    });
  }

  private recordError(message: string): void {
    if (this.errors.length < MAX_ERRORS) this.errors.push(message);
    if (this.eventsSent < MAX_ERRORS) {
      this.eventsSent++;
      const atMs = this.epochMs === 0 ? 0 : Math.round(this.now() - this.epochMs);
      this.channel.post({ type: 'event', shard: this.shard, atMs, level: 'warn', message });
    }
  }

  // ---- chaos -----------------------------------------------------------------------------------

  /** Cuts the links of this shard's devices of one fleet; a partition also holds their reconnects until it ends. */
  private chaos(action: ShardChaos): void {
    const fleet = this.scenario.fleets.findIndex((f) => f.name === action.fleet);
    if (fleet < 0 || this.finished === null) return;
    let holdMs = 0;
    if (action.kind === 'partition') {
      // Timeline time → the shard's clock: epochMs is the orchestrator's t=0 on it.
      const until = this.epochMs + action.untilMs;
      this.partitionedUntil[fleet] = until;
      holdMs = until - this.now();
      if (holdMs <= 0) return;
    }
    const detail = action.kind === 'partition' ? 'link cut by a chaos partition' : 'link cut by a chaos reconnect storm';
    this.cutting = true;
    try {
      for (const d of this.devices) {
        if (d.assignment.fleet !== fleet || d.state === 'planned' || d.state === 'stopped') continue;
        d.client.cut('error', detail, holdMs);
      }
    } finally {
      this.cutting = false;
    }
  }

  // ---- devices ---------------------------------------------------------------------------------

  connect(d: Device): void {
    if (d.state !== 'planned') return;
    const setup = setUpDevice(this.scenario, this, d);
    d.publications = setup.publications;
    d.reply = setup.reply;
    d.client = new LeanClient<Device>(this.clientOptions(d), handler, d);
    d.runtime = this;
    d.hasSubscriptions = setup.subscriptions.length > 0;
    if (d.hasSubscriptions) d.client.subscribe(setup.subscriptions);
    d.state = 'connecting';
    // A device due to connect during a partition of its fleet waits for the network like the others.
    const holdMs = (this.partitionedUntil[d.assignment.fleet] ?? 0) - this.now();
    if (holdMs > 0) d.client.cut('error', 'partitioned', holdMs);
    d.client.start();
  }

  /**
   * A device's client options: its own object holds only what differs per device (client id, PRNG, and
   * where set a URL, local address or network link); everything else it inherits from its fleet's
   * options, built once per shard (an options object per device would cost a few hundred bytes each).
   */
  private clientOptions(d: Device): LeanClientOptions {
    const fleet = d.fleet;
    const a = d.assignment;
    const base = (this.fleetClientOptions[a.fleet] ??= this.fleetOptions(fleet, a.url));
    const options = Object.create(base) as LeanClientOptions;
    options.clientId = a.clientId;
    options.random = d.random;
    if (a.url !== base.url) options.url = a.url;
    if (a.localAddress !== undefined) options.localAddress = a.localAddress;
    if (fleet.network !== undefined && !isTransparent(fleet.network)) options.createStream = deviceNetworkStream(d, this.scenario.seed, fleet.network, this.timers);
    return options;
  }

  /** The client options every device of a fleet shares; `url` is the first device's (others override it). */
  private fleetOptions(fleet: FleetSpec, url: string): FleetClientOptions {
    const target = this.scenario.target!;
    const options: FleetClientOptions = {
      url,
      protocolVersion: target.protocolVersion,
      clean: fleet.session.clean,
      sessionExpirySec: fleet.session.expirySec,
      keepaliveSec: fleet.keepaliveSec,
      inflightWindow: fleet.inflight,
      receiveMaximum: fleet.inflight,
      maxQueued: MAX_QUEUED,
      connectTimeoutMs: target.connectTimeoutMs,
      reconnect: { enabled: true, ...fleet.reconnect },
      timers: this.timers,
    };
    if (target.username !== undefined) options.username = target.username;
    if (target.password !== undefined) options.password = target.password;
    if (this.tls) options.tls = this.tls;
    if (fleet.will) options.will = { ...fleet.will, payload: Buffer.from(fleet.will.payload) };
    return options;
  }

  /** First CONNACK: the device's publications start, each at a random phase of its interval so a fleet does not publish in lockstep. */
  startPublications(d: Device, fromMs: number): void {
    if (!this.publishing) return;
    for (const p of d.publications) {
      if (p.intervalMs <= 0) continue;
      p.atMs = fromMs + d.random() * p.intervalMs;
      p.active = true;
      this.scheduler.schedule(p);
    }
  }

  private deactivate(p: Publication): void {
    p.active = false;
    this.scheduler.remove(p);
  }

  /** Ramp-down: stop publishing, disconnect once the last acknowledgements are in (or after a grace period). */
  beginStop(d: Device): void {
    if (d.state === 'stopped' || d.state === 'planned') {
      d.state = 'stopped';
      return;
    }
    d.state = 'stopping';
    for (const p of d.publications) this.deactivate(p);
    if (d.outstanding === 0) this.disconnect(d);
    else this.scheduler.schedule(new Stopper(this, d, this.now() + STOP_GRACE_MS, true));
  }

  disconnect(d: Device): void {
    if (d.state === 'stopped') return;
    d.state = 'stopped';
    void d.client.stop(true).catch(() => undefined);
  }

  firePublication(p: Publication, nowMs: number): void {
    if (!p.active || !this.publishing) return;
    const scheduled = p.atMs;
    p.advance(p.device.random);
    this.scheduler.schedule(p);
    this.publish(p, scheduled, nowMs);
  }

  /** Stamps and hands one message to the client; `scheduledMs` is when it was due (latency is measured from it). */
  publish(p: Publication, scheduledMs: number, nowMs: number): void {
    const d = p.device;
    const body = typeof p.body === 'function' ? p.body(scheduledMs) : p.body;
    const payload = Buffer.allocUnsafe(STAMP_LENGTH + body.length);
    const seq = p.seq++;
    writeStamp(payload, 0, p.stream, seq, p.qos, scheduledMs);
    body.copy(payload, STAMP_LENGTH);
    const topic = typeof p.topic === 'string' ? p.topic : p.topic();
    const token = ackToken(p, seq);
    const c = d.counters;
    if (!d.client.publish(topic, payload, p.qos, p.retain, token)) {
      c.droppedOffline++;
      return;
    }
    this.ledger.published(p.stream, seq, p.qos);
    this.checkerRecords.published(p.stream, seq, scheduledMs, p.qos === 0 ? this.now() : -1, p.retain);
    c.published[p.qos]++;
    if (p.qos > 0) (d.pending ??= new Map()).set(token, nowMs);
  }

  // ---- client callbacks (one shared handler, called with the device) -----------------------------

  onConnect(d: Device, connectMs: number, reconnect: boolean, sessionPresent: boolean): void {
    const c = d.counters;
    c.connectAttempts++;
    c.connects++;
    c.connected++;
    const now = this.now();
    if (d.hasSubscriptions) this.checkerRecords.connected(d.assignment.device, now, sessionPresent);
    if (reconnect) {
      c.reconnects++;
      if (d.lostAtMs > 0) this.histograms.record(histogramNames.reconnect, Math.round((now - d.lostAtMs) * 1000));
    } else {
      this.histograms.record(histogramNames.connect, Math.round(connectMs * 1000));
    }
    d.lostAtMs = 0;
    if (!d.everConnected) {
      d.everConnected = true;
      if (d.state === 'connecting') d.state = 'running';
      if (d.fleet.model !== 'consumer') this.startPublications(d, now);
    }
    if (!d.hasSubscriptions) d.onReady?.();
  }

  onDisconnect(d: Device, cause: DisconnectCause, detail: string, wasConnected: boolean): void {
    const c = d.counters;
    if (wasConnected) {
      c.connected--;
      c.disconnects[cause]++;
      d.lostAtMs = this.now();
      if (d.hasSubscriptions) this.checkerRecords.lost(d.assignment.device, d.lostAtMs, d.lastInboundMs);
    } else {
      c.connectAttempts++;
      c.connectFailures++;
    }
    const injected = this.now() <= d.faultUntilMs;
    if (cause !== 'normal' && !this.cutting && !injected) this.recordError(`${d.assignment.clientId}: ${wasConnected ? 'disconnected' : 'connect failed'} (${cause}${detail ? `: ${detail}` : ''})`);
    if (!d.everConnected && d.onReady && cause !== 'normal') {
      // A consumer that cannot connect during prepare fails readiness at once rather than at the deadline.
      d.onReady(`${d.assignment.clientId}: ${cause}${detail ? ` (${detail})` : ''}`);
    }
  }

  onMessage(d: Device, payload: Buffer, qos: QoS, retain: boolean): void {
    const c = d.counters;
    const stamp = readStamp(payload);
    if (stamp === null) {
      c.foreign++;
      return;
    }
    if (retain) {
      // Retained state replayed at subscribe time is not a live delivery of that message; the checker
      // judges it against the last value acknowledged before the subscription.
      c.retainedReceived++;
      this.checkerRecords.retainedReplay(d.assignment.device, stamp.stream, stamp.seq);
      return;
    }
    const kind = this.ledger.received(d.assignment.device, stamp.stream, stamp.seq, stamp.qos as QoS);
    if (kind === 2) {
      c.duplicates[qos]++;
      return;
    }
    c.delivered[qos]++;
    if (kind === 1) c.reordered[qos]++;
    const rawMicros = (this.now() - stamp.scheduledMs) * 1000;
    const micros = Math.max(1, Math.round(rawMicros));
    // Across slices the raw latency holds the clock offset between the machines: merge estimates and removes it.
    this.sliceLatency?.record(stamp.stream, stamp.qos as QoS, rawMicros);
    this.histograms.record(histogramNames.e2e, micros);
    this.histograms.record(histogramNames.e2eQos(stamp.qos as QoS), micros);
    const f = fleetOfStream(this.streamRanges, stamp.stream);
    if (f !== undefined) this.histograms.record(this.e2eFleetNames[f]!, micros);
    // A PLC answers every command with its state.
    if (d.reply !== null && this.publishing && d.state === 'running') {
      const now = this.now();
      this.publish(d.reply, now, now);
    }
  }

  onAck(d: Device, token: number, qos: 1 | 2, reasonCode: number): void {
    const c = d.counters;
    const sentAt = d.pending?.get(token);
    if (sentAt !== undefined) {
      d.pending!.delete(token);
      this.histograms.record(histogramNames.ackQos(qos), Math.max(1, Math.round((this.now() - sentAt) * 1000)));
    }
    if (reasonCode < 0x80) {
      c.acknowledged[qos]++;
      const local = tokenLocal(token);
      const pub = local === d.publications.length && d.reply ? d.reply : d.publications[local];
      if (pub) {
        this.ledger.acknowledged(pub.stream, tokenSeq(token));
        this.checkerRecords.acknowledged(pub.stream, tokenSeq(token), this.now());
      }
    } else {
      c.rejected[qos]++;
      this.recordError(`${d.assignment.clientId}: publish rejected with ${reasonCodeName(reasonCode)} (0x${reasonCode.toString(16)})`);
    }
    if (d.state === 'stopping' && d.outstanding === 0) this.disconnect(d);
  }

  onSubscribed(d: Device, granted: number[]): void {
    d.subscribed = true;
    this.checkerRecords.subscribed(d.assignment.device, this.now(), granted);
    const refused = granted.filter((g) => g >= 0x80);
    if (refused.length > 0) {
      this.recordError(`${d.assignment.clientId}: subscription refused (${refused.map((g) => reasonCodeName(g)).join(', ')})`);
      d.onReady?.(`${d.assignment.clientId}: subscription refused (${refused.map((g) => reasonCodeName(g)).join(', ')})`);
      return;
    }
    d.onReady?.();
  }

  /** The broker broke the protocol on this device's connection: counted per fleet, the first few kept with a warning event. */
  onViolation(d: Device, kind: BrokerViolationKind, detail: string): void {
    const c = d.counters;
    (c.violations ??= emptyViolationCounts())[kind]++;
    if (this.violationExamples.length >= MAX_VIOLATION_EXAMPLES) return;
    const atMs = this.epochMs === 0 ? 0 : Math.round(this.now() - this.epochMs);
    const clientId = d.assignment.clientId;
    this.violationExamples.push({ kind, clientId, fleet: d.fleet.name, at: new Date().toISOString(), atMs, detail });
    if (this.eventsSent < MAX_ERRORS) {
      this.eventsSent++;
      this.channel.post({ type: 'event', shard: this.shard, atMs, level: 'warn', message: `${clientId}: broker violation ${kind}: ${detail}` });
    }
  }

  onBytes(d: Device, out: number, inb: number): void {
    d.counters.bytesOut += out;
    d.counters.bytesIn += inb;
    if (inb > 0 && d.hasSubscriptions) d.lastInboundMs = this.now();
  }
}

/**
 * The device's network (simulator/faults): a fault link around every connection attempt, with its own
 * seeded stream of draws, and a failure clock and downtime that span its reconnects.
 */
function deviceNetworkStream(d: Device, seed: number, profile: NonNullable<Device['fleet']['network']>, timers: NonNullable<LeanClientOptions['timers']>): LeanClientOptions['createStream'] {
  const counters = d.counters;
  let plain: LeanClientOptions | undefined;
  const { createStream } = createDeviceNetwork<LeanClientOptions>(
    profile,
    createPrng(seed, 2, d.assignment.device),
    (url, options) => {
      // The real socket, opened as the client would open it without the hook (the device's options
      // inherit most fields from its fleet's, so they are extended rather than copied).
      if (plain === undefined) {
        plain = Object.create(options) as LeanClientOptions;
        plain.createStream = undefined;
      }
      return openTransport(url, plain);
    },
    {
      clock: timers,
      onEvent: (event) => {
        countLinkEvent(counters, event);
        // What follows a failure is expected: the cut itself, refused connects during the downtime, a
        // slow close, and for a half-open link the keepalive timeout (1.5 × keepalive) that notices it.
        // (Event times are relative to the link's origin; the current time is what the comparison needs.)
        const now = timers.now();
        if (event.type === 'failure') {
          d.faultUntilMs = Math.max(d.faultUntilMs, now + event.downtimeMs + 1500 * d.fleet.keepaliveSec + FAULT_GRACE_MS);
        } else if (event.type === 'cut' || event.type === 'refused') {
          d.faultUntilMs = Math.max(d.faultUntilMs, now + FAULT_GRACE_MS);
        }
      },
    },
  );
  return createStream;
}

/** Slack after an injected failure's downtime (and keepalive detection) within which a disconnect is still attributed to it. */
const FAULT_GRACE_MS = 5000;

/** The one handler object every client of every shard shares; the device is the context. */
const handler: LeanClientHandler<Device> = {
  onConnect: (d, sessionPresent, connectMs, reconnect) => d.runtime!.onConnect(d, connectMs, reconnect, sessionPresent),
  onDisconnect: (d, cause, detail, wasConnected) => d.runtime!.onDisconnect(d, cause, detail, wasConnected),
  onMessage: (d, _topic, payload, qos, retain) => d.runtime!.onMessage(d, payload, qos, retain),
  onAck: (d, token, qos, reasonCode) => d.runtime!.onAck(d, token, qos, reasonCode),
  onSubscribed: (d, granted) => d.runtime!.onSubscribed(d, granted),
  onBytes: (d, out, inb) => d.runtime!.onBytes(d, out, inb),
  onViolation: (d, kind, detail) => d.runtime!.onViolation(d, kind, detail),
};
