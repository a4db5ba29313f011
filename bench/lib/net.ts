/**
 * Loopback helpers the benchmarks share: the host they use, a free port for a program that takes its
 * port on the command line (Mosquitto, our broker CLI), and a bounded check that a port accepts
 * connections.
 */
import net from 'node:net';

export const HOST = '127.0.0.1';

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A port nobody listens on right now (bound to port 0, read, released). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Whether `port` on HOST accepts a TCP connection within half a second. */
export function tryConnect(port: number): Promise<boolean> {
  return new Promise((resolveOk) => {
    const socket = net.connect({ port, host: HOST });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolveOk(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(500, () => done(false));
  });
}
