/**
 * Network profiles: what a device's link does to its bytes (latency, jitter, bandwidth, TCP
 * retransmission stalls, segment slicing) and to its connection (failures after a random time, then a
 * downtime during which it cannot reconnect). A profile is plain data (it crosses to worker threads);
 * times are milliseconds and bandwidths bytes per second. The YAML syntax lives in network-spec.ts,
 * the behaviour in link.ts.
 *
 * Directions: `up` is device → broker, `down` is broker → device.
 */

/** One-way latency of a segment, drawn per segment (ms). Values below 0 are clamped to 0. */
export type LatencyDist =
  | { dist: 'fixed'; ms: number }
  | { dist: 'uniform'; min: number; max: number }
  | { dist: 'normal'; mean: number; stddev: number }
  /** Pareto (heavy tail): scale `min`, shape `alpha`; draws above `max` are capped at it. */
  | { dist: 'pareto'; min: number; alpha: number; max: number };

/**
 * TCP never drops bytes: a lost segment is retransmitted after a timeout, so loss shows up as a stall of
 * that segment and of everything queued behind it. `random`: each segment is lost with probability p.
 * `gilbert-elliott`: a two-state (good/bad) Markov chain per direction, for bursty loss.
 */
export type LossModel =
  | { model: 'none' }
  | { model: 'random'; p: number; stallMs: number }
  | { model: 'gilbert-elliott'; pGoodToBad: number; pBadToGood: number; lossGood: number; lossBad: number; stallMs: number };

export interface DirectionProfile {
  latency: LatencyDist;
  /** Uniform ± jitter added to every latency draw (ms). */
  jitterMs: number;
  /** Bytes per second (a token bucket); 0: unlimited. */
  bandwidth: number;
  loss: LossModel;
  /** Writes are cut into segments of at most this many bytes, delivered separately; 0: not sliced. */
  maxSegment: number;
}

export interface DurationRangeMs {
  min: number;
  max: number;
}

/** Relative weights of how a link fails (they need not add up to 1). */
export interface FailureWeights {
  /** RST: both sockets destroyed; the device sees an error (ECONNRESET). */
  reset: number;
  /** Both directions silently stop forwarding; only keepalive notices. */
  halfOpen: number;
  /** The broker side is closed at once, the device sees the FIN only after `slowCloseMs`. */
  slowClose: number;
}

export interface DisconnectSpec {
  /** Mean time between failures (exponentially distributed), ms. */
  mtbfMs: number;
  /** How long the device's network stays down after a failure (uniform in the range), ms. */
  downtimeMs: DurationRangeMs;
}

export interface NetworkProfile {
  /** The preset it was built from (for reports). */
  preset: PresetName;
  up: DirectionProfile;
  down: DirectionProfile;
  /** null: the link never fails on its own. */
  disconnects: DisconnectSpec | null;
  failure: FailureWeights;
  /** Delay of the FIN in a slow close, ms. */
  slowCloseMs: DurationRangeMs;
}

export const presetNames = ['lan', 'wifi', 'cellular-4g', 'cellular-3g', 'satellite', 'factory-floor'] as const;
export type PresetName = (typeof presetNames)[number];

const noLoss: LossModel = { model: 'none' };
const defaultFailure: FailureWeights = { reset: 0.5, halfOpen: 0.3, slowClose: 0.2 };
const defaultSlowClose: DurationRangeMs = { min: 2_000, max: 8_000 };

function direction(d: Partial<DirectionProfile>): DirectionProfile {
  return { latency: { dist: 'fixed', ms: 0 }, jitterMs: 0, bandwidth: 0, loss: noLoss, maxSegment: 0, ...d };
}

/**
 * The presets. Figures are typical published ones (round-trip time split evenly between the directions):
 * - lan: switched Ethernet, sub-millisecond RTT: modelled as no fault at all (the real socket is used).
 * - wifi: 2–20 ms RTT, ~50 Mbit/s, occasional bursts of loss (interference, roaming) as short stalls,
 *   a rare reassociation drop.
 * - cellular-4g: LTE, 30–80 ms RTT, ~20 Mbit/s down / 5 Mbit/s up, light loss, a drop every ~30 min
 *   (cell handover, radio idle timers in carrier NATs).
 * - cellular-3g: UMTS/HSPA, 100–500 ms RTT with a heavy tail, 2 Mbit/s down / 384 kbit/s up, bursty loss
 *   with ~1 s retransmission timeouts, a drop every ~10 min.
 * - satellite: geostationary, ~600 ms RTT, 10 Mbit/s down / 1 Mbit/s up, rain-fade outages.
 * - factory-floor: industrial wireless next to motors and welders: low latency, bursty interference loss,
 *   and periodic disconnects that are often half-open.
 */
export const presets: Readonly<Record<PresetName, NetworkProfile>> = {
  lan: {
    preset: 'lan',
    up: direction({}),
    down: direction({}),
    disconnects: null,
    failure: defaultFailure,
    slowCloseMs: defaultSlowClose,
  },
  wifi: {
    preset: 'wifi',
    up: direction({
      latency: { dist: 'uniform', min: 1, max: 10 }, jitterMs: 1, bandwidth: 6_250_000,
      loss: { model: 'gilbert-elliott', pGoodToBad: 0.002, pBadToGood: 0.3, lossGood: 0, lossBad: 0.2, stallMs: 200 },
    }),
    down: direction({
      latency: { dist: 'uniform', min: 1, max: 10 }, jitterMs: 1, bandwidth: 6_250_000,
      loss: { model: 'gilbert-elliott', pGoodToBad: 0.002, pBadToGood: 0.3, lossGood: 0, lossBad: 0.2, stallMs: 200 },
    }),
    disconnects: { mtbfMs: 3_600_000, downtimeMs: { min: 1_000, max: 5_000 } },
    failure: defaultFailure,
    slowCloseMs: defaultSlowClose,
  },
  'cellular-4g': {
    preset: 'cellular-4g',
    up: direction({ latency: { dist: 'normal', mean: 25, stddev: 6 }, jitterMs: 5, bandwidth: 625_000, loss: { model: 'random', p: 0.002, stallMs: 300 }, maxSegment: 1400 }),
    down: direction({ latency: { dist: 'normal', mean: 25, stddev: 6 }, jitterMs: 5, bandwidth: 2_500_000, loss: { model: 'random', p: 0.002, stallMs: 300 }, maxSegment: 1400 }),
    disconnects: { mtbfMs: 1_800_000, downtimeMs: { min: 1_000, max: 10_000 } },
    failure: defaultFailure,
    slowCloseMs: defaultSlowClose,
  },
  'cellular-3g': {
    preset: 'cellular-3g',
    up: direction({
      latency: { dist: 'pareto', min: 50, alpha: 2, max: 250 }, jitterMs: 20, bandwidth: 48_000, maxSegment: 1400,
      loss: { model: 'gilbert-elliott', pGoodToBad: 0.01, pBadToGood: 0.25, lossGood: 0.002, lossBad: 0.3, stallMs: 1_000 },
    }),
    down: direction({
      latency: { dist: 'pareto', min: 50, alpha: 2, max: 250 }, jitterMs: 20, bandwidth: 250_000, maxSegment: 1400,
      loss: { model: 'gilbert-elliott', pGoodToBad: 0.01, pBadToGood: 0.25, lossGood: 0.002, lossBad: 0.3, stallMs: 1_000 },
    }),
    disconnects: { mtbfMs: 600_000, downtimeMs: { min: 2_000, max: 30_000 } },
    failure: defaultFailure,
    slowCloseMs: defaultSlowClose,
  },
  satellite: {
    preset: 'satellite',
    up: direction({ latency: { dist: 'normal', mean: 300, stddev: 10 }, jitterMs: 10, bandwidth: 125_000, loss: { model: 'random', p: 0.005, stallMs: 1_500 }, maxSegment: 1400 }),
    down: direction({ latency: { dist: 'normal', mean: 300, stddev: 10 }, jitterMs: 10, bandwidth: 1_250_000, loss: { model: 'random', p: 0.005, stallMs: 1_500 }, maxSegment: 1400 }),
    disconnects: { mtbfMs: 3_600_000, downtimeMs: { min: 5_000, max: 60_000 } },
    failure: defaultFailure,
    slowCloseMs: defaultSlowClose,
  },
  'factory-floor': {
    preset: 'factory-floor',
    up: direction({
      latency: { dist: 'uniform', min: 0.5, max: 3 }, jitterMs: 1, bandwidth: 1_250_000, maxSegment: 512,
      loss: { model: 'gilbert-elliott', pGoodToBad: 0.005, pBadToGood: 0.1, lossGood: 0, lossBad: 0.5, stallMs: 200 },
    }),
    down: direction({
      latency: { dist: 'uniform', min: 0.5, max: 3 }, jitterMs: 1, bandwidth: 1_250_000, maxSegment: 512,
      loss: { model: 'gilbert-elliott', pGoodToBad: 0.005, pBadToGood: 0.1, lossGood: 0, lossBad: 0.5, stallMs: 200 },
    }),
    disconnects: { mtbfMs: 300_000, downtimeMs: { min: 500, max: 5_000 } },
    failure: { reset: 0.4, halfOpen: 0.5, slowClose: 0.1 },
    slowCloseMs: defaultSlowClose,
  },
};

export function isPresetName(name: string): name is PresetName {
  return (presetNames as readonly string[]).includes(name);
}

/** Field-by-field overrides of a preset; `latency`, `jitterMs`, ... apply to both directions, `up`/`down` to one. */
export interface NetworkOverrides {
  /** Default lan. */
  preset?: PresetName;
  latency?: LatencyDist;
  jitterMs?: number;
  bandwidth?: number;
  loss?: LossModel;
  maxSegment?: number;
  up?: Partial<DirectionProfile>;
  down?: Partial<DirectionProfile>;
  disconnects?: DisconnectSpec | null;
  failure?: Partial<FailureWeights>;
  slowCloseMs?: DurationRangeMs;
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * A complete profile from a preset name or from overrides of one (a copy: presets are never mutated).
 * Throws for an unknown preset name; scenario files are validated before they get here.
 */
export function resolveProfile(nameOrOverrides: string | NetworkOverrides): NetworkProfile {
  const o: NetworkOverrides = typeof nameOrOverrides === 'string' ? { preset: nameOrOverrides as PresetName } : nameOrOverrides;
  const name = o.preset ?? 'lan';
  const base = presets[name];
  if (base === undefined) throw new Error(`unknown network preset ${JSON.stringify(name)}; expected one of ${presetNames.join(', ')}`);
  const both = defined({ latency: o.latency, jitterMs: o.jitterMs, bandwidth: o.bandwidth, loss: o.loss, maxSegment: o.maxSegment });
  const dir = (d: DirectionProfile, own: Partial<DirectionProfile> | undefined): DirectionProfile =>
    structuredClone({ ...d, ...both, ...defined(own ?? {}) });
  return {
    preset: name,
    up: dir(base.up, o.up),
    down: dir(base.down, o.down),
    disconnects: o.disconnects !== undefined ? (o.disconnects === null ? null : structuredClone(o.disconnects)) : structuredClone(base.disconnects),
    failure: { ...base.failure, ...defined(o.failure ?? {}) },
    slowCloseMs: { ...(o.slowCloseMs ?? base.slowCloseMs) },
  };
}

/** True when a direction changes nothing: bytes pass straight through. */
export function isDirectionTransparent(d: DirectionProfile): boolean {
  return d.bandwidth === 0 && d.maxSegment === 0 && d.jitterMs === 0 && d.loss.model === 'none' && d.latency.dist === 'fixed' && d.latency.ms === 0;
}

/** True when the profile does nothing at all (lan): no link needs to be inserted. */
export function isTransparent(p: NetworkProfile): boolean {
  return p.disconnects === null && isDirectionTransparent(p.up) && isDirectionTransparent(p.down);
}

/** Mean of a latency distribution (ms), for tables. */
export function meanLatency(l: LatencyDist): number {
  switch (l.dist) {
    case 'fixed':
      return l.ms;
    case 'uniform':
      return (l.min + l.max) / 2;
    case 'normal':
      return l.mean;
    case 'pareto':
      // Uncapped mean; with the cap it is a little lower.
      return l.alpha > 1 ? (l.alpha * l.min) / (l.alpha - 1) : l.max;
  }
}

/** The longest one-way delay a latency distribution gives (normal: mean + 4 standard deviations). */
export function latencyCeilingMs(l: LatencyDist): number {
  switch (l.dist) {
    case 'fixed':
      return l.ms;
    case 'uniform':
    case 'pareto':
      return l.max;
    case 'normal':
      return l.mean + 4 * l.stddev;
  }
}

/**
 * How long deliveries over this network can pause while bytes are still on their way, ms: a round trip
 * at the latency ceiling plus two retransmission stalls each way (bursty loss chains them). A run's drain
 * does not call deliveries finished before they have been quiet for longer than this.
 */
export function deliveryPauseMs(p: NetworkProfile): number {
  const side = (d: DirectionProfile): number => latencyCeilingMs(d.latency) + d.jitterMs + (d.loss.model === 'none' ? 0 : 2 * d.loss.stallMs);
  return side(p.up) + side(p.down);
}
