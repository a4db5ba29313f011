/**
 * A fault link: a Duplex that stands in for a device's socket. The client reads and writes it as if it
 * were the socket; underneath, the real socket (from `connect`) carries the bytes, each direction through
 * a pipeline that adds latency, jitter, a bandwidth limit (token bucket), TCP retransmission stalls and
 * segment slicing. Latency never reorders bytes: a segment's delivery time is
 * max(previous delivery, departure + sampled latency), so a stall delays everything behind it, as in TCP.
 *
 * Link events come from a per-device network (`createDeviceNetwork`): failures at exponentially
 * distributed times (mean `mtbf`), each a reset, a half-open connection or a slow close, followed by a
 * downtime during which every connection attempt fails at once with ENETUNREACH (the device's network is
 * gone: a modem without a carrier gets "network is unreachable", not a hang). The failure clock runs in
 * real time whether or not the device is connected, and spans reconnects.
 *
 * Cost: a transparent direction (no latency, no limit, no loss, no slicing) passes bytes straight through;
 * otherwise one timer per direction (for the head of its queue) and two parallel arrays. Random draws come
 * from seeded generators derived from the injected one: one stream for link events (so the schedule of
 * failures depends on the seed alone, not on traffic), one per direction.
 */
import { Duplex } from 'node:stream';
import { createPrng } from '../scenario/prng.js';
import { isDirectionTransparent, type DirectionProfile, type LatencyDist, type NetworkProfile } from './profile.js';

export interface LinkClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export type FailureMode = 'reset' | 'halfOpen' | 'slowClose';

/** What a link or a device network reports. `atMs` is relative to when the device network was created. */
export type LinkEvent =
  /** A scheduled failure of the device's network (deterministic: depends on the seed alone). */
  | { type: 'failure'; atMs: number; mode: FailureMode; downtimeMs: number }
  /** A failure hit a live connection of the device. */
  | { type: 'cut'; atMs: number; mode: FailureMode }
  /** A connection attempt during downtime, failed with ENETUNREACH. */
  | { type: 'refused'; atMs: number; downForMs: number }
  /** The real socket connected (after the emulated handshake). */
  | { type: 'connect'; atMs: number }
  /** A segment was "lost" and stalled its direction for a retransmission timeout. */
  | { type: 'stall'; atMs: number; direction: 'up' | 'down'; stallMs: number };

export interface FaultLinkOptions {
  clock?: LinkClock;
  /** The event of the real stream after which bytes can flow (TLS: 'secureConnect'). Default 'connect'. */
  readyEvent?: string;
  onEvent?: (event: LinkEvent) => void;
  /** The device's network (failure clock and downtime); default: a fresh one for this link alone. */
  network?: DeviceNetwork;
}

const defaultClock: LinkClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Above this many queued bytes a direction applies backpressure (the writer waits, the socket pauses). */
const HIGH_WATER = 64 * 1024;
/** Token-bucket depth of a bandwidth limit: this many bytes may go out back to back. */
const BURST_BYTES = 16 * 1024;
/** A half-open connection's broker side stays open (silent) at most this long after the device gave up on it. */
const HALF_OPEN_HOLD_MS = 180_000;
/** Deliveries due within this much of now go out in the same timer callback. */
const DUE_SLACK_MS = 0.5;
const MAX_TIMER_MS = 0x7fff_ffff;

function seedOf(random: () => number): number {
  return Math.floor(random() * 0x1_0000_0000);
}

/** One draw of a latency distribution (ms, ≥ 0). */
export function sampleLatency(l: LatencyDist, random: () => number): number {
  switch (l.dist) {
    case 'fixed':
      return l.ms;
    case 'uniform':
      return l.min + (l.max - l.min) * random();
    case 'normal': {
      // Box-Muller; 1 - u keeps the logarithm finite.
      const u = 1 - random();
      const v = random();
      return Math.max(0, l.mean + l.stddev * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
    }
    case 'pareto':
      return Math.min(l.max, l.min / Math.pow(1 - random(), 1 / l.alpha));
  }
}

function pickMode(w: NetworkProfile['failure'], u: number): FailureMode {
  const total = w.reset + w.halfOpen + w.slowClose;
  if (total <= 0) return 'reset';
  const x = u * total;
  if (x < w.reset) return 'reset';
  if (x < w.reset + w.halfOpen) return 'halfOpen';
  return 'slowClose';
}

// ------------------------------------------------------------------------------------------------
// The device network: failure clock and downtime gate, shared by every connection attempt of a device.

interface Failure {
  at: number;
  mode: FailureMode;
}

export class DeviceNetwork {
  readonly origin: number;
  private readonly eventRandom: () => number;
  private readonly linkSeed: number;
  private links = 0;
  /**
   * The schedule is kept relative to the origin, so the same seed gives bit-identical failure times
   * whatever the clock read at the start (origin + t - origin is not always t in floating point).
   */
  private nextFailureRel = Infinity;
  private downUntilRel = -Infinity;
  failures = 0;
  lastFailure: Failure | null = null;

  constructor(
    readonly profile: NetworkProfile,
    random: () => number,
    readonly clock: LinkClock = defaultClock,
    readonly onEvent?: (event: LinkEvent) => void,
  ) {
    this.origin = clock.now();
    this.eventRandom = createPrng(seedOf(random), 1);
    this.linkSeed = seedOf(random);
    if (profile.disconnects !== null && profile.disconnects.mtbfMs > 0) this.nextFailureRel = this.timeToFailure();
  }

  /** Absolute clock time of the next failure; Infinity when the profile has no disconnects. */
  get nextFailureAt(): number {
    return this.origin + this.nextFailureRel;
  }

  /** Absolute clock time until which the network is down (after a failure). */
  get downUntil(): number {
    return this.origin + this.downUntilRel;
  }

  private timeToFailure(): number {
    return -this.profile.disconnects!.mtbfMs * Math.log(1 - this.eventRandom());
  }

  /** Processes the failures due by `now` (with `force`, the next one even if the timer fired a hair early). */
  advance(now: number, force = false): void {
    const d = this.profile.disconnects;
    if (d === null) return;
    while (now >= this.nextFailureAt || force) {
      force = false;
      const atRel = this.nextFailureRel;
      const mode = pickMode(this.profile.failure, this.eventRandom());
      const downtimeMs = d.downtimeMs.min + (d.downtimeMs.max - d.downtimeMs.min) * this.eventRandom();
      this.failures++;
      this.lastFailure = { at: this.origin + atRel, mode };
      this.downUntilRel = atRel + downtimeMs;
      this.nextFailureRel = this.downUntilRel + this.timeToFailure();
      this.onEvent?.({ type: 'failure', atMs: atRel, mode, downtimeMs });
    }
  }

  /** A seeded generator for the next link (connection attempt). */
  nextLinkRandom(): () => number {
    return createPrng(this.linkSeed, this.links++);
  }

  emit(event: LinkEvent): void {
    this.onEvent?.(event);
  }

  /** Relative time for events. */
  at(now: number): number {
    return now - this.origin;
  }
}

/** A real stream and the event after which bytes can flow on it (as the client's transport opens it). */
export interface RealStream {
  stream: Duplex;
  readyEvent: string;
}

/**
 * One device's network: every connection attempt of the device goes through `createStream`, which opens
 * the real stream with `open(url, options)` (typically the client's own transport) inside a fault link.
 */
export function createDeviceNetwork<O>(
  profile: NetworkProfile,
  random: () => number,
  open: (url: URL, options: O) => RealStream,
  options: { clock?: LinkClock; onEvent?: (event: LinkEvent) => void } = {},
): { network: DeviceNetwork; createStream: (url: URL, options: O) => Duplex } {
  const network = new DeviceNetwork(profile, random, options.clock ?? defaultClock, options.onEvent);
  return {
    network,
    createStream(url: URL, clientOptions: O): Duplex {
      return new FaultLink(profile, network.nextLinkRandom(), () => open(url, clientOptions), { network });
    },
  };
}

/**
 * A fault link around one connection attempt. `connect` opens the real stream; it is not called when the
 * device's network is down (the link then fails with ENETUNREACH on the next tick).
 */
export function createFaultLink(profile: NetworkProfile, random: () => number, connect: () => Duplex | RealStream, options: FaultLinkOptions = {}): FaultLink {
  return new FaultLink(profile, random, connect, options);
}

// ------------------------------------------------------------------------------------------------
// One direction's pipeline.

class Pipe {
  /** Queued segments (views of the written chunks, no copies); null is the end-of-stream marker. */
  readonly segments: Array<Buffer | null> = [];
  readonly times: number[] = [];
  head = 0;
  queuedBytes = 0;
  lastDelivery = -Infinity;
  /** Token bucket as a theoretical arrival time (GCRA). */
  tat = -Infinity;
  bad = false;
  timer: unknown = undefined;
  random: (() => number) | null = null;
  fire: (() => void) | null = null;

  constructor(readonly profile: DirectionProfile, readonly transparent: boolean, readonly seed: number) {}

  get empty(): boolean {
    return this.head >= this.segments.length;
  }

  rng(): () => number {
    return (this.random ??= createPrng(this.seed));
  }

  /** Whether the next segment is "lost" (and stalls), advancing the Gilbert-Elliott chain. */
  lost(): boolean {
    const loss = this.profile.loss;
    switch (loss.model) {
      case 'none':
        return false;
      case 'random':
        return loss.p > 0 && this.rng()() < loss.p;
      case 'gilbert-elliott': {
        const r = this.rng();
        this.bad = this.bad ? r() >= loss.pBadToGood : r() < loss.pGoodToBad;
        const p = this.bad ? loss.lossBad : loss.lossGood;
        return p > 0 && r() < p;
      }
    }
  }

  push(segment: Buffer | null, at: number): void {
    this.segments.push(segment);
    this.times.push(at);
    if (segment !== null) this.queuedBytes += segment.length;
  }

  shift(): Buffer | null {
    const s = this.segments[this.head]!;
    this.segments[this.head] = null;
    this.head++;
    if (s !== null) this.queuedBytes -= s.length;
    if (this.head === this.segments.length) {
      this.segments.length = 0;
      this.times.length = 0;
      this.head = 0;
    } else if (this.head >= 1024) {
      this.segments.splice(0, this.head);
      this.times.splice(0, this.head);
      this.head = 0;
    }
    return s;
  }

  clear(): void {
    this.segments.length = 0;
    this.times.length = 0;
    this.head = 0;
    this.queuedBytes = 0;
  }
}

// ------------------------------------------------------------------------------------------------
// Listeners on the real stream: shared functions, the stream carries its link.

const LINK = Symbol('faultLink');
type Upstream = Duplex & { [LINK]?: FaultLink | null; resetAndDestroy?: () => unknown };

function onUpReady(this: Upstream): void { this[LINK]?.upstreamReady(); }
function onUpData(this: Upstream, chunk: Buffer): void { this[LINK]?.upstreamData(chunk); }
function onUpEnd(this: Upstream): void { this[LINK]?.upstreamEnd(); }
function onUpError(this: Upstream, err: Error): void { this[LINK]?.upstreamError(err); }
function onUpClose(this: Upstream): void { this[LINK]?.upstreamEnd(); }
function onOrphanData(): void { /* a half-open connection's broker bytes go nowhere */ }
function ignoreError(): void { /* the link already ended */ }

type LinkState = 'connecting' | 'open' | 'halfOpen' | 'closing' | 'done';

function netError(code: string, message: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(message);
  err.code = code;
  return err;
}

export class FaultLink extends Duplex {
  private state: LinkState = 'connecting';
  private upstream: Upstream | null = null;
  private readonly up: Pipe;
  private readonly down: Pipe;
  private readonly network: DeviceNetwork;
  private readonly clock: LinkClock;
  private readonly failureBase: number;
  private failureTimer: unknown = undefined;
  private connectTimer: unknown = undefined;
  private pendingWrite: ((error?: Error | null) => void) | null = null;
  private pendingFinal: ((error?: Error | null) => void) | null = null;
  private pausedUpstream = false;
  private readerWaiting = false;
  private upstreamEnded = false;

  constructor(readonly profile: NetworkProfile, random: () => number, connect: () => Duplex | RealStream, options: FaultLinkOptions) {
    super({ allowHalfOpen: true });
    const network = options.network ?? new DeviceNetwork(profile, random, options.clock ?? defaultClock, options.onEvent);
    this.network = network;
    this.clock = network.clock;
    const seed = seedOf(random);
    this.up = new Pipe(profile.up, isDirectionTransparent(profile.up), seed ^ 0x5bd1e995);
    this.down = new Pipe(profile.down, isDirectionTransparent(profile.down), seed ^ 0x1b873593);
    const now = this.clock.now();
    network.advance(now);
    this.failureBase = network.failures;
    if (now < network.downUntil) {
      const downForMs = network.downUntil - now;
      network.emit({ type: 'refused', atMs: network.at(now), downForMs });
      this.state = 'done';
      process.nextTick(() => this.destroy(netError('ENETUNREACH', `connect ENETUNREACH: the device's network is down for another ${Math.ceil(downForMs)} ms`)));
      return;
    }
    const opened = connect();
    const upstream: Upstream = opened instanceof Duplex ? opened : opened.stream;
    upstream[LINK] = this;
    this.upstream = upstream;
    upstream.on(opened instanceof Duplex ? (options.readyEvent ?? 'connect') : opened.readyEvent, onUpReady);
    upstream.on('data', onUpData);
    upstream.on('end', onUpEnd);
    upstream.on('error', onUpError);
    upstream.on('close', onUpClose);
    this.armFailureTimer(now);
  }

  private armFailureTimer(now: number): void {
    const at = this.network.nextFailureAt;
    if (at === Infinity) return;
    // setTimeout holds at most 2^31-1 ms; a longer wait re-arms when it fires.
    this.failureTimer = this.clock.setTimeout(() => this.onFailureTimer(), Math.min(MAX_TIMER_MS, Math.max(0, at - now)));
  }

  /** True once the emulated connection is established and forwarding. */
  get established(): boolean {
    return this.state === 'open';
  }

  // ---- the real stream ---------------------------------------------------------------------------

  /** @internal */
  upstreamReady(): void {
    if (this.state !== 'connecting') return;
    // The handshake costs one round trip of the emulated network.
    const rtt = this.up.transparent && this.down.transparent ? 0
      : sampleLatency(this.profile.up.latency, this.up.rng()) + sampleLatency(this.profile.down.latency, this.down.rng());
    if (rtt <= 0) this.opened();
    else this.connectTimer = this.clock.setTimeout(() => {
      this.connectTimer = undefined;
      this.opened();
    }, rtt);
  }

  private opened(): void {
    if (this.state !== 'connecting') return;
    this.state = 'open';
    this.network.emit({ type: 'connect', atMs: this.network.at(this.clock.now()) });
    this.emit('connect');
    if (!this.up.empty) this.deliver(this.up);
  }

  /** @internal */
  upstreamData(chunk: Buffer): void {
    if (this.state !== 'open' && this.state !== 'connecting') return;
    if (this.down.transparent && this.down.empty) {
      if (!this.push(chunk)) {
        this.readerWaiting = false;
        this.pauseUpstream();
      }
      return;
    }
    this.enqueue(this.down, chunk);
    if (this.down.queuedBytes > HIGH_WATER) this.pauseUpstream();
  }

  /** @internal 'end' or 'close' of the real stream: the end travels down the pipeline like the bytes before it. */
  upstreamEnd(): void {
    if (this.upstreamEnded) return;
    this.upstreamEnded = true;
    if (this.state !== 'open' && this.state !== 'connecting') return;
    this.enqueue(this.down, null);
  }

  /** @internal */
  upstreamError(err: Error): void {
    if (this.state === 'done' || this.state === 'halfOpen') return;
    this.finishWith(err);
  }

  private pauseUpstream(): void {
    if (this.pausedUpstream || this.upstream === null) return;
    this.pausedUpstream = true;
    this.upstream.pause();
  }

  private resumeUpstream(): void {
    if (!this.pausedUpstream || this.upstream === null || this.down.queuedBytes > HIGH_WATER / 2 || this.readerWaiting === false) return;
    this.pausedUpstream = false;
    this.upstream.resume();
  }

  // ---- Duplex ------------------------------------------------------------------------------------

  override _read(): void {
    this.readerWaiting = true;
    this.resumeUpstream();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.state === 'halfOpen' || this.state === 'closing') {
      // The link is dead but nobody told the device: its bytes vanish.
      callback();
      return;
    }
    if (this.state === 'done') {
      callback(netError('EPIPE', 'write EPIPE: the link is closed'));
      return;
    }
    if (this.state === 'open' && this.up.transparent && this.up.empty) {
      if (this.upstream!.write(chunk)) callback();
      else this.upstream!.once('drain', () => callback());
      return;
    }
    this.enqueue(this.up, chunk);
    if (this.up.queuedBytes > HIGH_WATER) this.pendingWrite = callback;
    else callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.state !== 'open' && this.state !== 'connecting') {
      callback();
      return;
    }
    this.pendingFinal = callback;
    if (this.state === 'open' && this.up.empty) this.endUpstream();
    else this.enqueue(this.up, null);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const wasHalfOpen = this.state === 'halfOpen';
    this.state = 'done';
    this.stopTimers();
    this.up.clear();
    this.down.clear();
    const upstream = this.upstream;
    this.upstream = null;
    if (upstream !== null) {
      upstream[LINK] = null;
      upstream.on('error', ignoreError);
      if (wasHalfOpen) this.orphan(upstream);
      else upstream.destroy();
    }
    const pending = this.pendingWrite;
    this.pendingWrite = null;
    pending?.(err);
    callback(err);
  }

  private stopTimers(): void {
    if (this.failureTimer !== undefined) this.clock.clearTimeout(this.failureTimer);
    if (this.connectTimer !== undefined) this.clock.clearTimeout(this.connectTimer);
    if (this.up.timer !== undefined) this.clock.clearTimeout(this.up.timer);
    if (this.down.timer !== undefined) this.clock.clearTimeout(this.down.timer);
    this.failureTimer = this.connectTimer = this.up.timer = this.down.timer = undefined;
  }

  /**
   * The device gave up on a half-open connection; the broker still sees it open and silent, until its
   * keepalive expires, a session takeover closes it, or our hold bound. It never keeps the process alive.
   */
  private orphan(upstream: Upstream): void {
    upstream.on('data', onOrphanData);
    upstream.resume();
    (upstream as Duplex & { unref?: () => void }).unref?.();
    const timer = setTimeout(() => upstream.destroy(), HALF_OPEN_HOLD_MS);
    timer.unref();
    upstream.once('close', () => clearTimeout(timer));
  }

  private endUpstream(): void {
    const final = this.pendingFinal;
    this.pendingFinal = null;
    this.upstream?.end();
    final?.();
  }

  private finishWith(err: Error | null): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.destroy(err ?? undefined);
  }

  // ---- pipelines ---------------------------------------------------------------------------------

  /** Queues a chunk (or the end marker) with its delivery times, then makes sure the direction's timer runs. */
  private enqueue(pipe: Pipe, chunk: Buffer | null): void {
    const now = this.clock.now();
    const p = pipe.profile;
    if (chunk === null || pipe.transparent) {
      pipe.push(chunk, Math.max(now, pipe.lastDelivery));
    } else {
      const size = p.maxSegment > 0 ? p.maxSegment : chunk.length;
      for (let offset = 0; offset < chunk.length; offset += size) {
        const segment = offset === 0 && size >= chunk.length ? chunk : chunk.subarray(offset, Math.min(chunk.length, offset + size));
        let depart = now;
        if (p.bandwidth > 0) {
          const cost = (segment.length * 1000) / p.bandwidth;
          pipe.tat = Math.max(pipe.tat, now) + cost;
          depart = Math.max(now, pipe.tat - (BURST_BYTES * 1000) / p.bandwidth);
        }
        const r = pipe.rng();
        let latency = sampleLatency(p.latency, r);
        if (p.jitterMs > 0) latency = Math.max(0, latency + (2 * r() - 1) * p.jitterMs);
        if (pipe.lost()) {
          const stallMs = (p.loss as { stallMs: number }).stallMs;
          latency += stallMs;
          this.network.emit({ type: 'stall', atMs: this.network.at(now), direction: pipe === this.up ? 'up' : 'down', stallMs });
        }
        const at = Math.max(pipe.lastDelivery, depart + latency);
        pipe.lastDelivery = at;
        pipe.push(segment, at);
      }
    }
    this.deliver(pipe);
  }

  /** Hands over every segment that is due, then arms the timer for the next one. */
  private deliver(pipe: Pipe): void {
    if (pipe.timer !== undefined) {
      this.clock.clearTimeout(pipe.timer);
      pipe.timer = undefined;
    }
    const isUp = pipe === this.up;
    if (isUp && this.state !== 'open') return;
    const now = this.clock.now();
    while (!pipe.empty && pipe.times[pipe.head]! <= now + DUE_SLACK_MS) {
      const segment = pipe.shift();
      if (isUp) {
        if (segment === null) {
          this.endUpstream();
          continue;
        }
        this.upstream!.write(segment);
      } else {
        if (segment === null) {
          this.push(null);
          continue;
        }
        if (!this.push(segment)) this.readerWaiting = false;
      }
      if (this.state !== 'open' && this.state !== 'connecting') return;
    }
    if (isUp) {
      if (this.pendingWrite !== null && pipe.queuedBytes <= HIGH_WATER / 2) {
        const cb = this.pendingWrite;
        this.pendingWrite = null;
        cb();
      }
    } else {
      // Resumes only when the reader wants more (else _read will).
      this.resumeUpstream();
    }
    if (!pipe.empty) {
      pipe.fire ??= () => {
        pipe.timer = undefined;
        this.deliver(pipe);
      };
      pipe.timer = this.clock.setTimeout(pipe.fire, Math.max(0, pipe.times[pipe.head]! - now));
    }
  }

  // ---- link events -------------------------------------------------------------------------------

  private onFailureTimer(): void {
    this.failureTimer = undefined;
    if (this.state === 'done' || this.state === 'halfOpen' || this.state === 'closing') return;
    const network = this.network;
    const now = this.clock.now();
    if (network.failures === this.failureBase) {
      // Timers may fire a hair early (or early on purpose, for very long waits).
      if (now < network.nextFailureAt - 2) {
        this.armFailureTimer(now);
        return;
      }
      network.advance(now, true);
    }
    const failure = network.lastFailure;
    if (failure === null) return;
    this.fail(failure.mode);
  }

  /** Applies a failure now (also usable by tests and chaos actions). */
  fail(mode: FailureMode): void {
    if (this.state === 'done' || this.state === 'halfOpen' || this.state === 'closing') return;
    const now = this.clock.now();
    this.network.emit({ type: 'cut', atMs: this.network.at(now), mode });
    this.up.clear();
    this.down.clear();
    this.stopTimers();
    const upstream = this.upstream;
    switch (mode) {
      case 'reset': {
        if (upstream !== null) {
          upstream[LINK] = null;
          upstream.on('error', ignoreError);
          // An RST towards the broker where the socket can send one, a plain close otherwise.
          try {
            if (typeof upstream.resetAndDestroy === 'function' && (upstream as { pending?: boolean }).pending === false) upstream.resetAndDestroy();
            else upstream.destroy();
          } catch {
            upstream.destroy();
          }
          this.upstream = null;
        }
        this.finishWith(netError('ECONNRESET', 'read ECONNRESET: the connection was reset by the network'));
        return;
      }
      case 'halfOpen': {
        this.state = 'halfOpen';
        const pending = this.pendingWrite;
        this.pendingWrite = null;
        pending?.();
        // Neither side hears anything from now on; the broker's bytes are read and dropped.
        if (upstream !== null) {
          upstream.on('data', onOrphanData);
          if (this.pausedUpstream) upstream.resume();
        }
        return;
      }
      case 'slowClose': {
        this.state = 'closing';
        const pending = this.pendingWrite;
        this.pendingWrite = null;
        pending?.();
        if (upstream !== null) {
          upstream.on('data', onOrphanData);
          upstream.resume();
          upstream.end();
        }
        const range = this.profile.slowCloseMs;
        const delay = range.min + (range.max - range.min) * this.down.rng()();
        this.connectTimer = this.clock.setTimeout(() => {
          this.connectTimer = undefined;
          if (this.state !== 'closing') return;
          this.push(null);
        }, delay);
        return;
      }
    }
  }
}
