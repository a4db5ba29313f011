/**
 * Listeners: each transport accepts connections and hands the broker one duplex stream per client
 * ("transports only produce streams"). tcp.ts, tls.ts and websocket.ts build the servers; this file
 * binds one, keeps track of its sockets and closes it.
 */
import type { AddressInfo, Server, Socket } from 'node:net';
import { createTcpServer } from './tcp.js';
import { createTlsServer } from './tls.js';
import type { ListenerContext, ListenerSpec } from './types.js';
import { createWebSocketServer, defaultWebSocketPath } from './websocket.js';

export { TlsSetupError, checkTlsOptions } from './tls.js';
export { defaultWebSocketPath } from './websocket.js';
export type {
  ListenerContext, ListenerSpec, ListenerType, TcpListenerSpec, TlsListenerSpec, TlsOptions, TransportIdentity,
  WsListenerSpec, WssListenerSpec,
} from './types.js';

export const defaultListenerHost = '127.0.0.1';

export interface Listener {
  readonly spec: ListenerSpec;
  /** The bound address (the real port when spec.port was 0). */
  readonly address: AddressInfo;
  /** Stops accepting; resolves once every socket it accepted has closed. */
  close(): Promise<void>;
  /** Destroys the sockets still open (connections not handed to the broker yet: TLS handshakes, plain HTTP), so close() can resolve. */
  destroySockets(): void;
}

function createServer(spec: ListenerSpec, context: ListenerContext): Server {
  switch (spec.type) {
    case 'tcp': return createTcpServer(context);
    case 'tls': return createTlsServer(spec, context);
    case 'ws':
    case 'wss': return createWebSocketServer(spec, context);
  }
}

/**
 * Binds a listener. Rejects with the listen error (EADDRINUSE, ...) or a TlsSetupError;
 * `onServerError` receives the errors of a bound server (EMFILE while accepting, ...), which must not crash the broker.
 */
export async function openListener(spec: ListenerSpec, context: ListenerContext, onServerError: (err: Error) => void): Promise<Listener> {
  const server = createServer(spec, context);
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(spec.port, spec.host ?? defaultListenerHost, () => {
      server.off('error', reject);
      server.on('error', onServerError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return {
    spec,
    address,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    destroySockets() {
      for (const socket of sockets) socket.destroy();
    },
  };
}

function hostPort(address: AddressInfo): string {
  return address.address.includes(':') ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

/** How a listener is announced: HOST:PORT for plain TCP, a URL for the others (tls://, ws://HOST:PORT/mqtt, wss://...). */
export function describeListener(spec: ListenerSpec, address: AddressInfo): string {
  switch (spec.type) {
    case 'tcp': return hostPort(address);
    case 'tls': return `tls://${hostPort(address)}`;
    case 'ws':
    case 'wss': return `${spec.type}://${hostPort(address)}${spec.path ?? defaultWebSocketPath}`;
  }
}
