/**
 * A standalone fault proxy: a TCP server whose every accepted connection reaches the upstream through its
 * own fault link, seeded by the connection's index (seed, 3, index), so any MQTT client (MQTT.js,
 * mosquitto_pub, a real device) can be put on an emulated network. Each connection has its own failure
 * clock: a failure ends (or silences) that connection; the client's next connection starts afresh.
 * An unreachable upstream closes the client's connection and is counted; the proxy keeps running.
 * It writes nothing: the CLI reports through the callbacks.
 */
import net, { type AddressInfo } from 'node:net';
import { createPrng } from '../scenario/prng.js';
import { createFaultLink, type FaultLink, type LinkClock, type LinkEvent } from './link.js';
import type { NetworkProfile } from './profile.js';

export interface HostPort {
  host: string;
  port: number;
}

export interface FaultProxyOptions {
  listen: HostPort;
  upstream: HostPort;
  profile: NetworkProfile;
  seed: number;
  clock?: LinkClock;
  /** A link event of connection `index` (0-based, in accept order). */
  onEvent?: (index: number, event: LinkEvent) => void;
  /** Connection `index` could not reach the upstream; the client's connection was closed. */
  onUpstreamError?: (index: number, remote: string, error: Error) => void;
}

export interface FaultProxyStats {
  accepted: number;
  active: number;
  upstreamFailures: number;
  resets: number;
  halfOpen: number;
  slowCloses: number;
  stalls: number;
}

export interface FaultProxy {
  address: AddressInfo;
  stats: FaultProxyStats;
  close(): Promise<void>;
}

function remoteOf(socket: net.Socket): string {
  const host = socket.remoteAddress ?? '?';
  return host.includes(':') ? `[${host}]:${socket.remotePort ?? '?'}` : `${host}:${socket.remotePort ?? '?'}`;
}

/** Listens and resolves once bound (rejects with the listen error, e.g. EADDRINUSE). */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const stats: FaultProxyStats = { accepted: 0, active: 0, upstreamFailures: 0, resets: 0, halfOpen: 0, slowCloses: 0, stalls: 0 };
  const open = new Set<{ client: net.Socket; link: FaultLink }>();

  const count = (event: LinkEvent): void => {
    if (event.type === 'stall') stats.stalls++;
    else if (event.type === 'cut') {
      if (event.mode === 'reset') stats.resets++;
      else if (event.mode === 'halfOpen') stats.halfOpen++;
      else stats.slowCloses++;
    }
  };

  const accept = (client: net.Socket): void => {
    const index = stats.accepted++;
    stats.active++;
    client.setNoDelay(true);
    const remote = remoteOf(client);
    let reached = false;
    const link = createFaultLink(
      options.profile,
      createPrng(options.seed, 3, index),
      () => net.connect({ host: options.upstream.host, port: options.upstream.port, noDelay: true }),
      {
        ...(options.clock !== undefined ? { clock: options.clock } : {}),
        onEvent: (event) => {
          count(event);
          options.onEvent?.(index, event);
        },
      },
    );
    const entry = { client, link };
    open.add(entry);
    link.on('connect', () => (reached = true));

    client.on('data', (chunk: Buffer) => {
      if (!link.write(chunk)) client.pause();
    });
    link.on('drain', () => client.resume());
    link.on('data', (chunk: Buffer) => {
      if (!client.write(chunk)) link.pause();
    });
    client.on('drain', () => link.resume());
    client.on('end', () => link.end());
    link.on('end', () => client.end());
    link.on('error', (err: NodeJS.ErrnoException) => {
      if (!reached && err.code !== 'ECONNRESET') {
        stats.upstreamFailures++;
        options.onUpstreamError?.(index, remote, err);
        client.destroy();
        return;
      }
      // A reset of the emulated network reaches the client as an RST too.
      if (err.code === 'ECONNRESET' && !client.destroyed) client.resetAndDestroy();
      else client.destroy();
    });
    client.on('error', () => link.destroy());
    client.on('close', () => {
      link.destroy();
      if (open.delete(entry)) stats.active--;
    });
    link.on('close', () => {
      // Once both halves are done; a half-open link stays until the client gives up.
      if (!client.destroyed && client.writableEnded && client.readableEnded) client.destroy();
    });
  };

  const server = net.createServer({ noDelay: true }, accept);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    address: server.address() as AddressInfo,
    stats,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const { client, link } of open) {
        link.destroy();
        client.destroy();
      }
      open.clear();
      stats.active = 0;
      await closed;
    },
  };
}
