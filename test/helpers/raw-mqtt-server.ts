/**
 * A raw MQTT server for client tests: a net server speaking our codec whose connections are scripted
 * packet by packet, so a test can play a broker that misbehaves in exactly the way it wants.
 */
import net from 'node:net';
import { PacketParser, encodePacket, type Packet } from '../../protocol/index.js';
import { withTimeout } from './broker.js';

export interface RawConn {
  socket: net.Socket;
  /** Every packet received on this connection, in order. */
  packets: Packet[];
  /** Writes the packets in one socket write, so they reach the client in one chunk. */
  send(...packets: Packet[]): void;
  /** The next received packet of this type (after the ones already returned), bounded by waitMs. */
  next(type: Packet['type']): Promise<Packet>;
}

export interface RawServer {
  url: string;
  port: number;
  conns: RawConn[];
  remoteAddresses: string[];
  /** The next connection not yet returned, bounded by waitMs. */
  nextConn(): Promise<RawConn>;
  close(): Promise<void>;
}

const open = new Set<RawServer>();

export async function startRawServer(version: 4 | 5, options: { waitMs?: number; onConn?: (c: RawConn) => void } = {}): Promise<RawServer> {
  const waitMs = options.waitMs ?? 10_000;
  const conns: RawConn[] = [];
  const remoteAddresses: string[] = [];
  const connWaiters: Array<() => void> = [];
  const server = net.createServer((socket) => {
    remoteAddresses.push(socket.remoteAddress ?? '');
    const parser = new PacketParser({ protocolVersion: version });
    const packets: Packet[] = [];
    const waiters = new Set<() => void>();
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      try {
        packets.push(...parser.push(chunk));
      } catch {
        socket.destroy();
      }
      for (const w of [...waiters]) w();
    });
    let consumed = 0;
    const conn: RawConn = {
      socket,
      packets,
      send: (...list) => { if (!socket.destroyed) socket.write(Buffer.concat(list.map((p) => encodePacket(p, version)))); },
      next: (type) => {
        let w = (): void => {};
        return withTimeout(new Promise<Packet>((resolve) => {
          w = () => {
            while (consumed < packets.length) {
              const p = packets[consumed++]!;
              if (p.type === type) { resolve(p); return; }
            }
          };
          waiters.add(w);
          w();
        }), waitMs, `the raw server never received ${type.toUpperCase()} (got ${packets.map((p) => p.type).join(', ')})`).finally(() => waiters.delete(w));
      },
    };
    conns.push(conn);
    options.onConn?.(conn);
    for (const w of connWaiters.splice(0)) w();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  let taken = 0;
  const raw: RawServer = {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    conns,
    remoteAddresses,
    nextConn: () => withTimeout(new Promise<RawConn>((resolve) => {
      const check = (): void => { if (taken < conns.length) resolve(conns[taken++]!); else connWaiters.push(check); };
      check();
    }), waitMs, 'no connection reached the raw server'),
    close: () => new Promise<void>((resolve) => {
      open.delete(raw);
      for (const c of conns) c.socket.destroy();
      server.close(() => resolve());
    }),
  };
  open.add(raw);
  return raw;
}

/** Closes every raw server still open; call in afterEach. */
export async function closeAllRawServers(): Promise<void> {
  await Promise.all([...open].map((s) => s.close()));
}
