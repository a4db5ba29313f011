/**
 * createBroker(): the reference broker as a handle — listen on TCP, TLS, WebSocket or secure
 * WebSocket (port 0 for tests; see listeners/), accept any duplex stream through handle(), read
 * counters, close.
 */
import { EventEmitter } from 'node:events';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { BrokerAuth, type AuthReloadResult } from './auth/broker-auth.js';
import { ConfigError, validateConfigValues } from './config.js';
import { packageVersion } from './version.js';
import { Connection } from './connection.js';
import { openListener, type Listener, type ListenerSpec, type TransportIdentity } from './listeners/index.js';
import { BrokerCore } from './core.js';
import { admitConnection } from './limits.js';
import { closeMetricsHttp, createBrokerPrometheus, listenMetricsHttp, type BrokerPrometheus } from './prometheus.js';
import type { BrokerMetrics } from './metrics.js';
import { defaultBrokerOptions, type BrokerOptions } from './options.js';
import { MemoryStore } from './store/memory.js';
import { publishSysTopics } from './sys-topics.js';

export interface Broker {
  /** Starts a TCP listener; port 0 picks a free port. Resolves with the bound address. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** Starts a listener of any transport (tcp, tls, ws, wss); call it once per listener. Resolves with the bound address. */
  listen(spec: ListenerSpec): Promise<AddressInfo>;
  /** The address of the first listener, or null before listen(). */
  address(): AddressInfo | null;
  /**
   * Serves one client over any duplex stream (TCP socket, TLS, WebSocket, in-memory pair);
   * `identity` is what the transport verified (the CN of a client certificate).
   */
  handle(stream: Duplex, remoteAddress?: string, identity?: TransportIdentity): void;
  /** Closes every client connection at once (their sessions stay); used when the store cannot commit. */
  dropAllConnections(): void;
  /** Stops listening, disconnects every client (v5: 0x8B), flushes the store. */
  close(): Promise<void>;
  /**
   * Starts the Prometheus endpoint GET /metrics (listen() starts it on metricsPort, on its host, when
   * metricsPort is set); port 0 picks a free port. Rejects with MetricsListenError.
   */
  listenMetrics(port?: number, host?: string): Promise<AddressInfo>;
  /** The address of the metrics endpoint, or null when it is not running. */
  metricsAddress(): AddressInfo | null;
  /** Feeds the store-commit histograms; wire SqliteStore's `onCommit` option here. */
  observeStoreCommit(durationMs: number, writes: number): void;
  /**
   * Re-reads the password file and the ACL file and swaps them in together without dropping anyone
   * (SIGHUP in `mqtt-sim broker`). Throws AuthReloadError, changing nothing, when either is invalid.
   */
  reloadAuth(): AuthReloadResult;
  readonly metrics: BrokerMetrics;
  /**
   * 'clientConnected' and 'clientDisconnected' (client id), 'listenerError' (error of a bound
   * listener), 'transportError' (error, remote address: a failed TLS handshake or refused WebSocket upgrade).
   */
  readonly events: EventEmitter;
  /** Internal state, for tests and $SYS: sessions, retained messages, subscriptions. */
  readonly core: BrokerCore;
}

export function createBroker(options: Partial<BrokerOptions> = {}): Broker {
  // Programmatic options get the same checks as broker.yaml (a writeBufferLimit of 0 would stop all writes).
  const { authenticate: _a, store: _s, clock: _c, logger: _l, ...plain } = options;
  const { problems } = validateConfigValues(plain, { file: 'createBroker() options' });
  if (problems.length > 0) throw new ConfigError(problems);
  // Password and ACL files are read now, so a bad one fails createBroker (ConfigError) before anything starts.
  const auth = BrokerAuth.load(options);
  const resolved: BrokerOptions = { ...defaultBrokerOptions, ...options };
  if (auth !== undefined) resolved.authenticate = auth.authenticator(options.authenticate);
  const store = resolved.store ?? new MemoryStore();
  const core = new BrokerCore(resolved, store);
  core.acl = auth?.acl;
  const events = new EventEmitter();
  core.events = {
    onClientConnected: (id) => events.emit('clientConnected', id),
    onClientDisconnected: (id) => events.emit('clientDisconnected', id),
  };
  const listeners: Listener[] = [];
  const version = packageVersion();
  let sysTimer: NodeJS.Timeout | undefined;
  let closed = false;
  // Prometheus: the registry is created once metrics are asked for (metricsPort, or listenMetrics()).
  let prometheus: BrokerPrometheus | undefined = resolved.metricsPort > 0 ? createBrokerPrometheus(core, version) : undefined;
  let metricsServer: Promise<HttpServer> | undefined;
  let metricsBound: AddressInfo | null = null;
  const listenMetrics = async (port = 0, host = '127.0.0.1'): Promise<AddressInfo> => {
    if (closed) throw new Error('the broker is closed');
    if (metricsServer !== undefined) throw new Error('the metrics endpoint is already listening');
    prometheus ??= createBrokerPrometheus(core, version);
    metricsServer = listenMetricsHttp(prometheus.registry, port, host, (err) => {
      core.log.error({ event: 'listener.error', listener: 'metrics', err }, 'metrics listener error');
    });
    let server: HttpServer;
    try {
      server = await metricsServer;
    } catch (err) {
      metricsServer = undefined;
      throw err;
    }
    metricsBound = server.address() as AddressInfo;
    core.log.info({ event: 'metrics.listening', address: metricsBound.address, port: metricsBound.port }, 'metrics endpoint listening');
    return metricsBound;
  };

  for (const { will, clientId } of core.deferredWills.splice(0)) core.publishWill(will, clientId);

  const handle = (stream: Duplex, remoteAddress?: string, identity?: TransportIdentity): void => {
    if (!admitConnection(core, stream, remoteAddress, closed)) return;
    const conn = new Connection(core, stream, remoteAddress);
    conn.certificateCommonName = identity?.certificateCommonName;
    core.connections.add(conn);
  };

  if (resolved.sysInterval > 0) {
    publishSysTopics(core, version);
    sysTimer = setInterval(() => publishSysTopics(core, version), resolved.sysInterval * 1000);
    sysTimer.unref?.();
  }

  return {
    metrics: core.metrics,
    events,
    core,
    handle,
    reloadAuth() {
      return auth === undefined ? {} : auth.reload(core);
    },
    dropAllConnections() {
      for (const conn of [...core.connections]) {
        conn.closeReason ??= { reason: 'all connections dropped (the store cannot commit)' };
        conn.destroy();
      }
    },
    async listen(portOrSpec: number | ListenerSpec = 1883, host: string = '127.0.0.1') {
      if (closed) throw new Error('the broker is closed');
      const spec: ListenerSpec = typeof portOrSpec === 'number' ? { type: 'tcp', port: portOrSpec, host } : portOrSpec;
      const listener = await openListener(
        spec,
        {
          accept: handle,
          onClientError: (err, remoteAddress) => {
            core.log.info({ event: 'transport.refused', transport: spec.type, remoteAddress, err }, 'connection refused before MQTT: failed TLS handshake or WebSocket upgrade');
            events.emit('transportError', err, remoteAddress);
          },
          connectTimeout: resolved.connectTimeout,
          maxPacketSize: resolved.maxPacketSize,
        },
        // Later listener errors (EMFILE while accepting, ...) must not crash the broker.
        (err) => {
          core.log.error({ event: 'listener.error', listener: spec.type, err }, 'listener error');
          events.emit('listenerError', err);
        },
      );
      if (closed) {
        // close() ran while this listener was binding.
        listener.destroySockets();
        await listener.close();
        throw new Error('the broker is closed');
      }
      listeners.push(listener);
      core.log.info({ event: 'broker.listening', transport: spec.type, address: listener.address.address, port: listener.address.port }, 'listening');
      if (resolved.metricsPort > 0 && metricsServer === undefined) await listenMetrics(resolved.metricsPort, spec.host ?? '127.0.0.1');
      return listener.address;
    },
    address() {
      return listeners[0]?.address ?? null;
    },
    listenMetrics,
    metricsAddress() {
      return metricsBound;
    },
    observeStoreCommit(durationMs, writes) {
      prometheus?.observeStoreCommit(durationMs, writes);
    },
    async close() {
      if (closed) return;
      closed = true;
      core.closing = true;
      core.log.info({ event: 'broker.closing', connections: core.connections.size }, 'shutting down: disconnecting clients (0x8B)');
      clearInterval(sysTimer);
      const closing = listeners.map((l) => l.close());
      for (const conn of [...core.connections]) {
        if (conn.state === 'connected') core.disconnect(conn, 0x8b, 'server shutting down');
        else conn.destroy();
      }
      // Give sockets a moment to flush their DISCONNECT, then force them.
      await new Promise<void>((resolve) => setImmediate(resolve));
      for (const conn of [...core.connections]) conn.destroy();
      for (const listener of listeners) listener.destroySockets();
      await Promise.all(closing);
      const metrics = await metricsServer?.catch(() => undefined);
      if (metrics !== undefined) await closeMetricsHttp(metrics);
      metricsBound = null;
      core.close();
      store.flush();
      if (resolved.store === undefined) store.close();
      core.log.info({ event: 'broker.closed' }, 'shut down: listeners closed, store flushed');
    },
  };
}
