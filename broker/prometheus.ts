/**
 * Prometheus exposition of the broker: a private prom-client Registry (never the global one, so two
 * brokers in one process do not mix) and the HTTP endpoint that serves it at /metrics.
 *
 * Counters and gauges are read from BrokerMetrics and the broker's state at scrape time (collect
 * callbacks): the hot path updates each counter once, in BrokerMetrics, and pays nothing for
 * Prometheus. Only the store-commit histograms are observed as commits happen (once per group commit,
 * not per message).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BrokerCore } from './core.js';
import { hex } from './log.js';

export interface BrokerPrometheus {
  readonly registry: Registry;
  /** Feeds the store-commit histograms: how long one COMMIT took and how many writes it held. */
  observeStoreCommit(durationMs: number, writes: number): void;
}

const PREFIX = 'mqttsim_';

/** `queueFull` → `queue_full`: Prometheus label values are conventionally snake_case. */
function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export function createBrokerPrometheus(core: BrokerCore, version: string): BrokerPrometheus {
  const registry = new Registry();
  const registers = [registry];
  const m = core.metrics;

  const counter = (name: string, help: string, read: () => number): void => {
    new Counter({
      name: PREFIX + name, help, registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  };
  const labelledCounter = <L extends string>(name: string, help: string, label: L, read: () => Iterable<[string, number]>): void => {
    new Counter<L>({
      name: PREFIX + name, help, registers, labelNames: [label],
      collect() {
        this.reset();
        for (const [value, count] of read()) this.inc({ [label]: value } as Partial<Record<L, string>>, count);
      },
    });
  };
  const gauge = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name: PREFIX + name, help, registers,
      collect() {
        this.set(read());
      },
    });
  };
  const byQos = (values: readonly number[]): Array<[string, number]> => values.map((v, qos) => [String(qos), v]);
  const byKey = (record: Readonly<Record<string, number>>): Array<[string, number]> =>
    Object.entries(record).map(([key, v]) => [snake(key), v]);

  new Gauge({
    name: `${PREFIX}build_info`, help: 'Always 1; the version label says which mqtt-sim broker is running.', registers, labelNames: ['version'],
    collect() {
      this.set({ version }, 1);
    },
  });
  gauge('uptime_seconds', 'Seconds since the broker started.', () => (core.now() - core.startedAt) / 1000);

  // Connections
  gauge('connections_open', 'Open network connections, including those that have not completed CONNECT.', () => core.connections.size);
  gauge('clients_connected', 'Connected MQTT clients (CONNECT accepted).', () => m.clientsConnected);
  counter('connections_accepted_total', 'MQTT connections accepted (CONNACK success).', () => m.connectionsAccepted);
  labelledCounter('connections_rejected_total', 'Connections refused: on accept over maxConnections or while shutting down, or by a failing CONNACK.', 'reason', () => byKey(m.connectionsRejected));
  counter('connect_timeouts_total', 'Connections closed because CONNECT did not arrive within connectTimeout.', () => m.connectTimeouts);
  counter('keepalive_timeouts_total', 'Clients disconnected for silence beyond 1.5 times their keepalive.', () => m.keepaliveTimeouts);
  counter('slow_consumer_disconnects_total', 'Clients disconnected for not reading their messages within slowConsumerTimeout.', () => m.slowConsumerDisconnects);
  counter('rate_limited_total', 'Clients disconnected for publishing faster than publishRateLimit.', () => m.rateLimited);
  counter('takeovers_total', 'Connections closed because a new connection took over their client id.', () => m.takeovers);
  labelledCounter('protocol_errors_total', 'Connections closed for a protocol error, by MQTT reason code.', 'reason_code', () =>
    Object.entries(m.protocolErrorsByReason).map(([code, n]): [string, number] => [hex(Number(code)), n]));

  // Messages and bytes
  labelledCounter('messages_received_total', 'PUBLISH packets received from clients, by QoS.', 'qos', () => byQos(m.publishReceived));
  labelledCounter('messages_sent_total', 'PUBLISH packets sent to clients, by QoS.', 'qos', () => byQos(m.publishSent));
  counter('bytes_received_total', 'Bytes read from client connections.', () => m.bytesReceived);
  counter('bytes_sent_total', 'Bytes written to client connections.', () => m.bytesSent);
  labelledCounter('messages_dropped_total', 'Messages dropped by reason (queue_full, expired, slow_consumer, packet_too_large).', 'reason', () => byKey(m.dropped));
  counter('inflight_window_full_total', "QoS 1/2 deliveries that waited in a queue because the client's inflight window was full.", () => m.inflightWindowFull);
  counter('publishers_paused_total', 'Times a publisher stopped being read because a subscriber it feeds had a long queue.', () => m.publishersPaused);
  counter('wills_published_total', 'Will messages published.', () => m.willsPublished);
  counter('sessions_expired_total', 'Sessions ended by their expiry interval.', () => m.sessionsExpired);

  // Sessions and queues: walked at scrape time, once per scrape for the three gauges (a scrape collects
  // every metric within one event-loop turn; the walk is forgotten at the next one).
  let queues: { queued: number; queuedBytes: number; inflight: number } | undefined;
  const readQueues = (): { queued: number; queuedBytes: number; inflight: number } => {
    if (queues !== undefined) return queues;
    let queued = 0;
    let queuedBytes = 0;
    let inflight = 0;
    for (const session of core.sessions.values()) {
      queued += session.pendingCount;
      queuedBytes += session.queuedBytes;
      inflight += session.inflight.size;
    }
    queues = { queued, queuedBytes, inflight };
    setImmediate(() => (queues = undefined));
    return queues;
  };
  gauge('sessions', 'Sessions held (connected clients and persistent sessions of offline ones).', () => core.sessions.size);
  gauge('queued_messages', 'Messages waiting in session queues (offline, or over the inflight window), across all sessions.', () => readQueues().queued);
  gauge('queued_bytes', 'Payload bytes waiting in session queues, across all sessions.', () => readQueues().queuedBytes);
  gauge('inflight_messages', 'QoS 1/2 deliveries sent and not yet acknowledged, across all sessions.', () => readQueues().inflight);
  gauge('retained_messages', 'Retained messages held.', () => core.retained.size);
  gauge('subscriptions', 'Subscriptions in the router, shared ones included.', () => core.trie.size);
  gauge('store_messages', 'Messages held by the store (each stored once, however many queues reference it).', () => core.store.messageCount());

  const commitSeconds = new Histogram({
    name: `${PREFIX}store_commit_duration_seconds`,
    help: 'Time of one store group commit (COMMIT of the writes of one event-loop turn; with durability power, fsync included).',
    registers,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  });
  const commitWrites = new Histogram({
    name: `${PREFIX}store_commit_writes`,
    help: 'Writes grouped into one store commit.',
    registers,
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
  });

  // Process metrics (CPU, memory, event-loop lag, GC) with their standard names, in this registry only.
  collectDefaultMetrics({ register: registry });

  return {
    registry,
    observeStoreCommit(durationMs, writes) {
      commitSeconds.observe(durationMs / 1000);
      commitWrites.observe(writes);
    },
  };
}

/** Raised when the metrics endpoint cannot listen; `code` is the errno code (EADDRINUSE, ...). */
export class MetricsListenError extends Error {
  override readonly name = 'MetricsListenError';
  readonly code: string | undefined;
  readonly port: number;
  readonly host: string;
  constructor(err: unknown, port: number, host: string) {
    super(`cannot serve metrics on ${host}:${port}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    this.code = (err as NodeJS.ErrnoException | null)?.code;
    this.port = port;
    this.host = host;
  }
}

/**
 * Serves GET /metrics from `registry`; resolves once listening, rejects with MetricsListenError.
 * Errors after that (EMFILE while accepting, ...) go to `onError` and do not stop the broker.
 */
export async function listenMetricsHttp(registry: Registry, port: number, host: string, onError: (err: Error) => void): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    registry.metrics().then(
      (body) => {
        res.writeHead(200, { 'Content-Type': registry.contentType });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`cannot collect metrics: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new MetricsListenError(err, port, host)));
    server.listen(port, host, () => {
      server.removeAllListeners('error');
      server.on('error', onError);
      resolve();
    });
  });
  return server;
}

/** Stops the endpoint and closes the connections scrapers keep alive. */
export function closeMetricsHttp(server: http.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export type { AddressInfo };
