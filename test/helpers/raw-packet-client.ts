/**
 * A packet-level MQTT client for broker tests that need exact packets or a client that misbehaves
 * (never acks, never pings, sends a second CONNECT): packets are encoded with protocol/encoder.ts,
 * responses parsed with protocol/parser.ts and read in arrival order with bounded waits.
 */
import net from 'node:net';
import { encodePacket } from '../../protocol/encoder.js';
import type { ConnackPacket, ConnectPacket, Packet, PacketTypeName, ProtocolVersion } from '../../protocol/packets.js';
import { PacketParser } from '../../protocol/parser.js';
import { withTimeout } from './broker.js';

export type PacketOf<T extends PacketTypeName> = Extract<Packet, { type: T }>;

const openRawClients = new Set<RawClient>();

export class RawClient {
  readonly version: ProtocolVersion;
  readonly socket: net.Socket;
  /** Every packet received, in order; `next()` reads them one at a time. */
  readonly received: Packet[] = [];
  /** Resolves when the socket has closed (by either side). */
  readonly closed: Promise<void>;
  isClosed = false;
  private readonly parser: PacketParser;
  private readCursor = 0;
  private wake: (() => void) | undefined;
  private parseError: Error | undefined;

  private constructor(socket: net.Socket, version: ProtocolVersion) {
    this.socket = socket;
    this.version = version;
    this.parser = new PacketParser({ protocolVersion: version });
    socket.on('data', (chunk: Buffer) => {
      try {
        // Payloads are views of the chunk; copy so a packet outlives the next read.
        for (const p of this.parser.push(Buffer.from(chunk))) this.received.push(p);
      } catch (err) {
        this.parseError = err as Error;
        socket.destroy();
      }
      this.wake?.();
    });
    this.closed = new Promise<void>((resolve) => {
      socket.once('close', () => {
        this.isClosed = true;
        openRawClients.delete(this);
        this.wake?.();
        resolve();
      });
    });
    socket.on('error', () => {
      // 'close' follows; tests observe the closure, not the error.
    });
  }

  /** Opens a TCP connection to the broker (nothing is sent yet). */
  static open(port: number, version: ProtocolVersion, ms = 3000): Promise<RawClient> {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    const client = new RawClient(socket, version);
    openRawClients.add(client);
    return withTimeout(
      new Promise<RawClient>((resolve, reject) => {
        socket.once('connect', () => resolve(client));
        socket.once('error', reject);
      }),
      ms,
      `raw client never connected to port ${port}`,
    );
  }

  /** Opens a connection, sends CONNECT and waits for a CONNACK with reason code 0. */
  static async connect(port: number, connect: ConnectPacket, ms = 3000): Promise<{ client: RawClient; connack: ConnackPacket }> {
    const client = await RawClient.open(port, connect.protocolVersion, ms);
    client.send(connect);
    const connack = await client.expect('connack', ms);
    if (connack.reasonCode !== 0) throw new Error(`CONNACK refused the raw client with 0x${connack.reasonCode.toString(16)}`);
    return { client, connack };
  }

  /** Sends packets in one write, so the broker sees them pipelined in one chunk. */
  send(...packets: Packet[]): void {
    this.socket.write(Buffer.concat(packets.map((p) => encodePacket(p, this.version))));
  }

  /** The next unread packet; rejects after `ms` or when the connection closes first. */
  async next(ms = 3000): Promise<Packet> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.readCursor < this.received.length) return this.received[this.readCursor++]!;
      if (this.parseError !== undefined) throw new Error(`raw client could not parse the broker's bytes: ${this.parseError.message}`);
      if (this.isClosed) throw new Error(`connection closed; packets read so far: ${this.describe()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for a packet; read so far: ${this.describe()}`);
      await withTimeout(new Promise<void>((resolve) => { this.wake = resolve; }), left, 'packet').catch(() => undefined);
      this.wake = undefined;
    }
  }

  /** The next unread packet, which must be of `type`. */
  async expect<T extends PacketTypeName>(type: T, ms = 3000): Promise<PacketOf<T>> {
    const p = await this.next(ms);
    if (p.type !== type) throw new Error(`expected ${type.toUpperCase()}, got ${p.type.toUpperCase()} (${JSON.stringify(summary(p))})`);
    return p as PacketOf<T>;
  }

  /** Waits (bounded) until the connection is closed. */
  waitClosed(ms: number, what = 'the broker never closed the connection'): Promise<void> {
    return withTimeout(this.closed, ms, what);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private describe(): string {
    return this.received.map((p) => p.type).join(', ') || '(none)';
  }
}

function summary(p: Packet): unknown {
  if (p.type === 'publish') return { topic: p.topic, qos: p.qos, dup: p.dup, packetId: p.packetId };
  return p;
}

/** A CONNECT packet with test defaults (clean, no keepalive). */
export function connectPacket(version: ProtocolVersion, clientId: string, extra: Partial<ConnectPacket> = {}): ConnectPacket {
  return { type: 'connect', protocolVersion: version, protocolName: version === 3 ? 'MQIsdp' : 'MQTT', clean: true, keepalive: 0, clientId, ...extra };
}

/** Destroys every raw client still open and waits for their sockets to close. */
export async function closeAllRawClients(): Promise<void> {
  const open = [...openRawClients];
  openRawClients.clear();
  for (const c of open) c.destroy();
  await Promise.all(open.map((c) => c.closed));
}
