/**
 * Metric shapes shared by shard workers (which record) and the orchestrator (which merges).
 * Latencies are recorded in microseconds in hdr histograms and reported in milliseconds.
 */

export type DisconnectCause =
  /** We closed it on purpose (ramp-down, end of run). */
  | 'normal'
  /** The broker sent DISCONNECT (v5) or closed the socket. */
  | 'server'
  /** The socket failed (ECONNRESET, EPIPE, ...). */
  | 'error'
  /** No PINGRESP / CONNACK in time. */
  | 'timeout'
  /** CONNACK with a failure reason code. */
  | 'refused'
  /** A malformed packet from the broker. */
  | 'protocol';

export const disconnectCauses: readonly DisconnectCause[] = ['normal', 'server', 'error', 'timeout', 'refused', 'protocol'];

/**
 * Protocol violations by the broker that a simulated client saw on its own connection (the lean client
 * judges them; see simulator/client/lean-client.ts for exactly what each kind checks):
 * - `qos-above-granted`: a PUBLISH at a QoS above the granted maximum of every matching subscription.
 * - `receive-maximum-exceeded` (v5): more QoS 1/2 PUBLISHes unacknowledged than our Receive Maximum.
 * - `packet-too-large` (v5): a packet larger than the Maximum Packet Size we advertised.
 * - `unknown-packet-id`: a PUBACK, PUBREC, PUBCOMP, SUBACK or UNSUBACK for a packet id we have no flow awaiting.
 * - `retain-misuse` (v5): RETAIN=1 where no retained replay can happen and Retain As Published is off.
 * - `topic-alias-misuse` (v5): an alias of 0 or above our Topic Alias Maximum, or an unknown alias with an empty topic.
 */
export type BrokerViolationKind =
  | 'qos-above-granted'
  | 'receive-maximum-exceeded'
  | 'packet-too-large'
  | 'unknown-packet-id'
  | 'retain-misuse'
  | 'topic-alias-misuse';

export const brokerViolationKinds: readonly BrokerViolationKind[] = [
  'qos-above-granted', 'receive-maximum-exceeded', 'packet-too-large', 'unknown-packet-id', 'retain-misuse', 'topic-alias-misuse',
];

/** One broker violation as a client saw it: the first few per shard are kept for the report. */
export interface BrokerViolationExample {
  kind: BrokerViolationKind;
  clientId: string;
  fleet: string;
  /** Wall-clock time, ISO 8601. */
  at: string;
  /** Ms from t=0 of the timeline (0 before it started). */
  atMs: number;
  detail: string;
}

/** Cumulative counters of one fleet in one shard (or merged). QoS-indexed arrays are [qos0, qos1, qos2]. */
export interface FleetCounters {
  /** Gauge: devices connected now. */
  connected: number;
  /** Devices the fleet has in this shard (target). */
  devices: number;
  connectAttempts: number;
  connects: number;
  connectFailures: number;
  reconnects: number;
  disconnects: Record<DisconnectCause, number>;
  published: [number, number, number];
  /** PUBACK (QoS 1) / PUBCOMP (QoS 2) with a success reason code. */
  acknowledged: [number, number, number];
  /** Acknowledgements with a failure reason code (v5), e.g. 0x87 not authorized, 0x97 quota exceeded. */
  rejected: [number, number, number];
  /** Deliveries received by this fleet's devices, by the QoS they arrived at (live, non-retained, first copy). */
  delivered: [number, number, number];
  /** Second and later copies of the same (stream, seq) at the same subscriber. */
  duplicates: [number, number, number];
  /** Deliveries of a sequence lower than one already received from the same stream (out of order). */
  reordered: [number, number, number];
  /** Messages delivered with the retain flag (replayed retained state at subscribe time). */
  retainedReceived: number;
  /** Deliveries without a simulator stamp (not from this run). */
  foreign: number;
  /** QoS 0 messages not sent because the device was offline, or queue overflow for QoS 1/2. */
  droppedOffline: number;
  bytesOut: number;
  bytesIn: number;
  /** Network faults of the fleet's links (simulator/faults); absent in counters from before they existed. */
  faults?: FaultCounters;
  /** Protocol violations by the broker seen by the fleet's clients; absent in counters from before they existed. */
  violations?: Record<BrokerViolationKind, number>;
}

/** Link events of fleets with a `network:`. */
export interface FaultCounters {
  /** Failures that cut a live connection (resets + halfOpen + slowCloses). */
  disconnects: number;
  resets: number;
  halfOpen: number;
  slowCloses: number;
  /** Connection attempts refused because the device's network was down. */
  refused: number;
  /** Segments "lost" and delivered after a retransmission stall. */
  stalls: number;
}

/** The generator's own health, so a saturated generator is reported instead of blamed on the broker. */
export interface GeneratorHealth {
  /** Event-loop delay of the shard over the interval (perf_hooks.monitorEventLoopDelay), ms. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** How late scheduled publishes actually went out, p99 over the interval, ms. */
  scheduleSlipP99Ms: number;
  scheduleSlipMaxMs: number;
  /** CPU time used by the shard thread over the interval, as a fraction of one core (0..1+). */
  cpu: number;
}

/** Encoded hdr histograms (hdr-histogram-js compressed base64), keyed by metric name. */
export type EncodedHistograms = Record<string, string>;

/**
 * Histogram names: `e2e` (scheduled send → delivery, all QoS), `e2e.qos0|1|2`, `e2e@<fleet>` (by the
 * publishing fleet), `ack.qos1|2` (publish → PUBACK/PUBCOMP), `connect` (socket open → CONNACK for a
 * first connection), `reconnect` (disconnect → CONNACK again), `slip` (schedule slip).
 */
export const histogramNames = {
  e2e: 'e2e',
  e2eQos: (qos: 0 | 1 | 2) => `e2e.qos${qos}`,
  e2eFleet: (fleet: string) => `e2e@${fleet}`,
  ackQos: (qos: 1 | 2) => `ack.qos${qos}`,
  connect: 'connect',
  reconnect: 'reconnect',
  slip: 'slip',
} as const;
