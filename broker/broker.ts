/**
 * createBroker(): the reference broker as a handle — listen on TCP (port 0 for tests), accept any
 * duplex stream through handle(), read counters, close.
 */
import { EventEmitter } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { ConfigError, validateConfigValues } from './config.js';
import { packageVersion } from './version.js';
import { Connection } from './connection.js';
import { BrokerCore } from './core.js';
import type { BrokerMetrics } from './metrics.js';
import { defaultBrokerOptions, type BrokerOptions } from './options.js';
import { MemoryStore } from './store/memory.js';
import { publishSysTopics } from './sys-topics.js';

export interface Broker {
  /** Starts a TCP listener; port 0 picks a free port. Resolves with the bound address. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** The address of the first listener, or null before listen(). */
  address(): AddressInfo | null;
  /** Serves one client over any duplex stream (TCP socket, TLS, WebSocket, in-memory pair). */
  handle(stream: Duplex, remoteAddress?: string): void;
  /** Closes every client connection at once (their sessions stay); used when the store cannot commit. */
  dropAllConnections(): void;
  /** Stops listening, disconnects every client (v5: 0x8B), flushes the store. */
  close(): Promise<void>;
  readonly metrics: BrokerMetrics;
  readonly events: EventEmitter;
  /** Internal state, for tests and $SYS: sessions, retained messages, subscriptions. */
  readonly core: BrokerCore;
}

export function createBroker(options: Partial<BrokerOptions> = {}): Broker {
  // Programmatic options get the same checks as broker.yaml (a writeBufferLimit of 0 would stop all writes).
  const { authenticate: _a, store: _s, clock: _c, ...plain } = options;
  const { problems } = validateConfigValues(plain, { file: 'createBroker() options' });
  if (problems.length > 0) throw new ConfigError(problems);
  const resolved: BrokerOptions = { ...defaultBrokerOptions, ...options };
  const store = resolved.store ?? new MemoryStore();
  const core = new BrokerCore(resolved, store);
  const events = new EventEmitter();
  core.events = {
    onClientConnected: (id) => events.emit('clientConnected', id),
    onClientDisconnected: (id) => events.emit('clientDisconnected', id),
  };
  const servers: net.Server[] = [];
  const version = packageVersion();
  let sysTimer: NodeJS.Timeout | undefined;
  let closed = false;

  for (const { will, clientId } of core.deferredWills.splice(0)) core.publishWill(will, clientId);

  const handle = (stream: Duplex, remoteAddress?: string): void => {
    if (closed) {
      stream.destroy();
      return;
    }
    const conn = new Connection(core, stream, remoteAddress);
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
    dropAllConnections() {
      for (const conn of [...core.connections]) conn.destroy();
    },
    async listen(port = 1883, host = '127.0.0.1') {
      const server = net.createServer({ noDelay: true }, (socket) => {
        socket.setNoDelay(true);
        handle(socket, socket.remoteAddress);
      });
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          // Later listener errors (EMFILE while accepting, ...) must not crash the broker.
          server.on('error', (err) => events.emit('listenerError', err));
          resolve();
        });
      });
      return server.address() as AddressInfo;
    },
    address() {
      const a = servers[0]?.address();
      return a && typeof a === 'object' ? a : null;
    },
    async close() {
      if (closed) return;
      closed = true;
      core.closing = true;
      clearInterval(sysTimer);
      const closing = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
      for (const conn of [...core.connections]) {
        if (conn.state === 'connected') core.disconnect(conn, 0x8b, 'server shutting down');
        else conn.destroy();
      }
      // Give sockets a moment to flush their DISCONNECT, then force them.
      await new Promise<void>((resolve) => setImmediate(resolve));
      for (const conn of [...core.connections]) conn.destroy();
      await Promise.all(closing);
      core.close();
      store.flush();
      if (resolved.store === undefined) store.close();
    },
  };
}
