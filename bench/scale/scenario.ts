/**
 * The scenario of one scale step, as YAML for `mqtt-sim run`: one fleet of N sensors sending QoS 1
 * telemetry every interval, spread round-robin over the brokers listed as the target, one consumer per
 * broker subscribed to the telemetry of that broker's devices (two broker processes share nothing, so a
 * consumer on one only sees what was published there), and `qos1.lost == 0` as the assertion.
 * Pure: the step runner writes the text to a file; the unit test parses it with the real schema.
 */

/** Name of the sensor fleet (timeline points count its connected devices under fleets[DEVICE_FLEET]). */
export const DEVICE_FLEET = 'devices';
/** Seconds of steady phase beyond one telemetry interval: every device's first publish (a random phase of its interval after CONNACK) falls inside. */
export const STEADY_MARGIN_S = 5;
/** Ramp-up beyond N / connect rate, so the last devices connect before the steady phase starts. */
export const RAMP_MARGIN_MS = 2000;
export const DRAIN_S = 5;
/** The consumers' Receive Maximum (and in-flight window). */
export const CONSUMER_INFLIGHT = 1000;
/** Telemetry body after the 20-byte stamp. */
export const PAYLOAD_BYTES = 64;
/**
 * Connections from one source address, at most. Well below the ~28k ephemeral ports of one (source,
 * broker port) pair, and low enough that binding stays cheap: a socket bound to a source address gets
 * its port from bind(), whose search slows as the address fills (measured here: 4,950 connects from one
 * address as fast as unbound ones; 9,900 took twice as long and stalled the event loop for 200-300 ms).
 */
export const DEVICES_PER_SOURCE_ADDRESS = 5_000;

export interface ScaleScenarioOptions {
  name: string;
  devices: number;
  /** One mqtt:// URL per broker process; devices go to them round-robin. */
  brokerUrls: readonly string[];
  connectRatePerSec: number;
  /** Seconds between two publishes of one device. */
  intervalSeconds: number;
  /** Local addresses the devices' sockets bind to, round-robin. */
  sourceAddresses: readonly string[];
  /** Overrides the steady phase (the idle base run needs only a few seconds); default interval + STEADY_MARGIN_S. */
  steadySeconds?: number;
}

export interface ScaleTiming {
  rampUpMs: number;
  steadyMs: number;
  drainMs: number;
  /** rampUp + steady: the timeline. */
  durationMs: number;
}

/** Ramp-up: N / rate (device i connects at i / rate) plus RAMP_MARGIN_MS; steady: one interval plus STEADY_MARGIN_S. */
export function scaleTiming(devices: number, connectRatePerSec: number, intervalSeconds: number, steadySeconds?: number): ScaleTiming {
  const rampUpMs = Math.ceil((devices / connectRatePerSec) * 1000) + RAMP_MARGIN_MS;
  const steadyMs = (steadySeconds ?? intervalSeconds + STEADY_MARGIN_S) * 1000;
  return { rampUpMs, steadyMs, drainMs: DRAIN_S * 1000, durationMs: rampUpMs + steadyMs };
}

/** The tag of broker b (0-based) in topics and consumer names: b1, b2, ... */
export function brokerTag(b: number): string {
  return `b${b + 1}`;
}

/** How many source addresses N devices need so none carries more than DEVICES_PER_SOURCE_ADDRESS connections. */
export function sourceAddressesNeeded(devices: number): number {
  return Math.max(1, Math.ceil(devices / DEVICES_PER_SOURCE_ADDRESS));
}

/**
 * Hands out loopback source addresses 127.0.0.2, 127.0.0.3, ... (127.0.0.1 stays for the consumers), a
 * fresh block for every run, so ports a previous run left in TIME_WAIT never count against the next one.
 * Wraps around after 127.0.0.254.
 */
export class SourceAddressPool {
  private next = 2;

  take(count: number): string[] {
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      out.push(`127.0.0.${this.next}`);
      this.next = this.next >= 254 ? 2 : this.next + 1;
    }
    return out;
  }
}

/** Global device numbers d in [0, devices) with d % count == index - 1: the devices slice index/count runs (plan.ts inSlice). */
export function sliceShare(devices: number, index: number, count: number): number {
  const first = index - 1;
  return first >= devices ? 0 : Math.floor((devices - 1 - first) / count) + 1;
}

function yamlList(values: readonly string[]): string {
  return `[${values.map((v) => JSON.stringify(v)).join(', ')}]`;
}

export function scaleScenarioYaml(o: ScaleScenarioOptions): string {
  if (o.brokerUrls.length === 0) throw new Error('scaleScenarioYaml: at least one broker URL');
  const t = scaleTiming(o.devices, o.connectRatePerSec, o.intervalSeconds, o.steadySeconds);
  const tags = o.brokerUrls.map((_, b) => brokerTag(b));
  const lines = [
    `name: ${o.name}`,
    'seed: 1',
    `target: ${yamlList(o.brokerUrls)}`,
    `phases: { rampUp: ${t.rampUpMs}ms, steady: ${t.steadyMs}ms }`,
    `drain: ${DRAIN_S}s`,
    'fleets:',
    `  - name: ${DEVICE_FLEET}`,
    `    count: ${o.devices}`,
    `    connect: ${o.connectRatePerSec}/s`,
    // Telemetry keeps the connection busy; a keepalive of two intervals only sends PINGREQ when a device falls silent.
    `    keepalive: ${Math.min(65535, Math.max(1, Math.round(2 * o.intervalSeconds)))}s`,
    // Device index i goes to target URL i % B (the fleet is first, so the round-robin cursor equals the index)
    // and gets the tag of the same broker: its topic tells which consumer must receive it.
    `    attributes: { broker: { cycle: ${yamlList(tags)} } }`,
    ...(o.sourceAddresses.length > 0 ? [`    sourceAddresses: ${yamlList(o.sourceAddresses)}`] : []),
    `    publish: { topic: "scale/{broker}/{id}", qos: 1, every: ${o.intervalSeconds}s, payload: { size: ${PAYLOAD_BYTES} } }`,
    'consumers:',
    ...o.brokerUrls.flatMap((url, b) => [
      `  - name: consumer-${tags[b]}`,
      `    target: ${JSON.stringify(url)}`,
      `    subscribe: [{ topic: "scale/${tags[b]}/#", qos: 1 }]`,
      // A backend consumer of a whole fleet takes hundreds of QoS 1 messages a second: it advertises a
      // Receive Maximum to match (the device default of 20 would make it the bottleneck when acks lag).
      `    inflight: ${CONSUMER_INFLIGHT}`,
    ]),
    'expect:',
    '  - qos1.lost == 0',
    '',
  ];
  return lines.join('\n');
}
