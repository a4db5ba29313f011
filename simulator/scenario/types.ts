/**
 * The normalized scenario: what `loadScenario()` returns once the YAML has been validated and every
 * default filled in. Durations are milliseconds, rates are events per second. The engine reads only
 * this shape; the YAML syntax (durations like `250ms`, rates like `200/s`, generator expressions like
 * `sine(800,40,60s)`) lives in schema.ts.
 */
import type { QoS } from '../../protocol/packets.js';
import type { NetworkProfile } from '../faults/profile.js';

export const scenarioFormatVersion = 1;

export interface Scenario {
  name: string;
  description?: string;
  /** Total timeline length (ramp-up + steady + ramp-down), ms. */
  durationMs: number;
  /** Seed of every random draw (PRNG); `--seed` overrides it. */
  seed: number;
  /** null: the embedded reference broker is started for the run. */
  target: TargetSpec | null;
  phases: Phases;
  /** Longest time, after the timeline, to wait for in-flight messages to be acknowledged and delivered. */
  drainMs: number;
  /** Device fleets and consumers, in file order (consumers after fleets), names unique. */
  fleets: FleetSpec[];
  /** The chaos timeline, in file order. */
  chaos: ChaosAction[];
  expect: AssertionSpec[];
  /** Named networks of the `networks:` section, resolved (present when the file has that section). */
  networks?: Record<string, NetworkProfile>;
  /** Absolute path of the file it came from, when it came from a file. */
  sourceFile?: string;
}

export interface TlsSpec {
  /** File paths, resolved against the scenario file's folder. */
  ca?: string;
  cert?: string;
  key?: string;
  /** Default true; false accepts self-signed broker certificates. */
  rejectUnauthorized: boolean;
  servername?: string;
}

export interface TargetSpec {
  /** One URL per broker node (mqtt, mqtts, ws, wss); devices are spread over them round-robin. */
  urls: string[];
  /** MQTT protocol level on the wire: 4 = 3.1.1, 5 = 5.0. */
  protocolVersion: 4 | 5;
  username?: string;
  password?: string;
  tls?: TlsSpec;
  connectTimeoutMs: number;
}

export interface Phases {
  /** Devices connect during ramp-up at their fleet's connect rate; publishing starts per device once connected. */
  rampUpMs: number;
  steadyMs: number;
  /** Devices stop publishing and disconnect, spread evenly over ramp-down. */
  rampDownMs: number;
}

export type DeviceModel = 'sensor' | 'plc' | 'gateway' | 'consumer';

/** A value generator inside a payload template. */
export type GeneratorSpec =
  | { kind: 'counter'; start: number; step: number }
  | { kind: 'sine'; mean: number; amplitude: number; periodMs: number }
  | { kind: 'randomWalk'; start: number; step: number; min: number; max: number }
  | { kind: 'gaussian'; mean: number; stddev: number }
  | { kind: 'uniform'; min: number; max: number }
  | { kind: 'enum'; values: Array<string | number | boolean> }
  | { kind: 'bytes'; size: number }
  | { kind: 'timestamp' }
  | { kind: 'constant'; value: string | number | boolean | null }
  /** A per-device attribute or `{id}`/`{fleet}`/`{index}` rendered into a string. */
  | { kind: 'template'; template: string };

/**
 * The body after the stamp (every simulator payload starts with a 20-byte stamp, see
 * simulator/verify/stamp.ts). `json`: an object whose fields are generated per message;
 * `bytes`: `size` random-looking bytes (cheap, fixed size).
 */
export type PayloadSpec =
  | { kind: 'json'; fields: Record<string, GeneratorSpec> }
  | { kind: 'bytes'; size: number };

export interface PublishSpec {
  /** Template: `{id}` (client id), `{fleet}`, `{index}` (0-based index in the fleet), `{sensor}` (gateway logical sensor index) and attribute names. */
  topic: string;
  qos: QoS;
  retain: boolean;
  /** Mean time between messages of one device (or one gateway sensor), ms. */
  intervalMs: number;
  /** Each interval is drawn uniformly in intervalMs × [1 - jitter, 1 + jitter]; 0 ≤ jitter < 1. */
  jitter: number;
  payload: PayloadSpec;
}

export interface SubscriptionSpec {
  /** Template like PublishSpec.topic; may be a `$share/group/filter`. */
  topic: string;
  qos: QoS;
}

export interface WillSpec {
  topic: string;
  payload: string;
  qos: QoS;
  retain: boolean;
  delaySec: number;
}

/** Per-device attribute: a fixed value, or one picked per device (by index round-robin or seeded random). */
export type AttributeSpec =
  | { kind: 'value'; value: string | number }
  | { kind: 'cycle'; values: Array<string | number> }
  | { kind: 'pick'; values: Array<string | number> }
  | { kind: 'range'; min: number; max: number };

/** Commands a consumer sends to the devices of another fleet (e.g. SCADA → PLCs), one target per send, round-robin. */
export interface CommandSpec {
  /** Name of the fleet whose devices receive the commands. */
  fleet: string;
  /** Template; `{target}` is the receiving device's client id. */
  topic: string;
  qos: QoS;
  intervalMs: number;
  jitter: number;
  payload: PayloadSpec;
}

export interface FleetSpec {
  name: string;
  model: DeviceModel;
  count: number;
  /** Template, default `{fleet}-{index}`. Client ids are unique across the scenario. */
  clientId: string;
  attributes: Record<string, AttributeSpec>;
  /** Connections per second while ramping up (spread over the ramp). Infinity: as fast as possible. */
  connectRatePerSec: number;
  session: { clean: boolean; expirySec: number };
  keepaliveSec: number;
  will?: WillSpec;
  /** Periodic publications (sensor, gateway per logical sensor, plc state). Empty for a pure consumer. */
  publish: PublishSpec[];
  subscribe: SubscriptionSpec[];
  /** Gateway: logical sensors per connection (each publishes every PublishSpec). 1 for other models. */
  sensorsPerDevice: number;
  /** PLC: publishes its state on this template (retained, at the given QoS) in reply to every command. */
  reply?: { topic: string; qos: QoS; retain: boolean };
  /** Consumer: commands it sends. */
  commands?: CommandSpec;
  /** Inbound receive maximum the device advertises (v5) and its outbound in-flight window. */
  inflight: number;
  /** Local source addresses the fleet's sockets bind to, round-robin (e.g. 127.0.0.2, 127.0.0.3). */
  localAddresses: string[];
  /** Reconnect after an unexpected disconnect: exponential backoff with full jitter. */
  reconnect: { initialDelayMs: number; maxDelayMs: number; multiplier: number };
  /** Fleet-level target override (URLs); null: the scenario target. */
  targetUrls?: string[];
  /** The network every device of the fleet connects through (its fault link); absent: the plain socket. */
  network?: NetworkProfile;
  /** The name the fleet's `network:` gave (a `networks:` entry or a preset). */
  networkName?: string;
}

/** An `expect` entry: `metric op value`, e.g. `latency.e2e.p99 < 500ms`, `qos1.lost == 0`. */
export interface AssertionSpec {
  /** As written, for reports. */
  source: string;
  metric: string;
  op: '<' | '<=' | '>' | '>=' | '==' | '!=';
  /** Milliseconds for durations, plain numbers otherwise. */
  value: number;
}

/**
 * One entry of the chaos timeline. `atMs` is from the start of the timeline (t=0, before ramp-up).
 * Broker actions act on the embedded broker only; `exec` runs a user command (for external brokers).
 */
export type ChaosAction =
  /** SIGKILL the embedded broker, then start it again (same port, same data dir) after downtimeMs. */
  | { kind: 'broker-kill'; atMs: number; downtimeMs: number }
  /** SIGTERM (graceful shutdown), then start it again at once. */
  | { kind: 'broker-restart'; atMs: number }
  /** SIGSTOP, SIGCONT after durationMs: the broker holds every connection open but answers nothing. */
  | { kind: 'broker-pause'; atMs: number; durationMs: number }
  /** A shell command; its exit code and first lines of output become run events. */
  | { kind: 'exec'; atMs: number; command: string; timeoutMs: number }
  /** Every device of the fleet loses its link (no DISCONNECT) and cannot connect for durationMs. */
  | { kind: 'partition'; atMs: number; fleet: string; durationMs: number }
  /** Every device of the fleet drops its connection (no DISCONNECT) and reconnects at once, with backoff jitter. */
  | { kind: 'reconnect-storm'; atMs: number; fleet: string };
