/**
 * A lean MQTT 3.1.1 client for the load generator: one net.Socket, our PacketParser for input, and one
 * write per batch for output. No session state beyond what the scenarios keep themselves.
 *
 * Output is assembled in an `Outbox` (a growable scratch buffer) while a batch of incoming packets is
 * handled, and written as one Buffer at the end (`flush`). PUBLISH packets are stamped from a prebuilt
 * `PublishTemplate` (fixed header, topic, packet id and payload), so sending allocates nothing per message.
 */
import net from 'node:net';
import { encodePacket, encodePublishHeader, PacketParser, publishPacketIdOffset } from '../../protocol/index.js';
import type { Packet, QoS } from '../../protocol/index.js';

/** First bytes of the four acknowledgement packets (PUBREL carries the mandatory flags 0b0010). */
export const Fixed = { Puback: 0x40, Pubrec: 0x50, Pubrel: 0x62, Pubcomp: 0x70 } as const;
export type AckByte = (typeof Fixed)[keyof typeof Fixed];

/** Bytes waiting to be written on one connection. */
export class Outbox {
  /** Starts small: idle and connect-rate clients number in the thousands. */
  buf: Buffer = Buffer.allocUnsafe(256);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** PUBACK, PUBREC, PUBREL or PUBCOMP for `packetId` (3.1.1: four bytes). */
  ack(firstByte: AckByte, packetId: number): void {
    this.ensure(4);
    const b = this.buf;
    const p = this.pos;
    b[p] = firstByte;
    b[p + 1] = 2;
    b[p + 2] = packetId >> 8;
    b[p + 3] = packetId & 0xff;
    this.pos = p + 4;
  }

  append(bytes: Buffer): void {
    this.ensure(bytes.length);
    bytes.copy(this.buf, this.pos);
    this.pos += bytes.length;
  }

  /** The pending bytes as a Buffer of their own (the scratch buffer is reused), or null. */
  take(): Buffer | null {
    if (this.pos === 0) return null;
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    this.pos = 0;
    return out;
  }
}

/**
 * Payload layout (little endian): send time (float64 ms of performance.now(), offset 0), run id (u32, 8),
 * publisher index (u32, 12), sequence number (u32, 16), filler up to the payload size.
 */
export const PayloadOffset = { sentAt: 0, runId: 8, publisher: 12, sequence: 16, minimumSize: 20 } as const;

/** One publisher's PUBLISH packet, stamped with time, sequence and packet id per message. */
export class PublishTemplate {
  private readonly bytes: Buffer;
  private readonly idOffset: number;
  private readonly payloadStart: number;
  readonly length: number;

  constructor(topic: string, qos: QoS, payloadSize: number, runId: number, publisher: number) {
    if (payloadSize < PayloadOffset.minimumSize) throw new Error(`payload must be at least ${PayloadOffset.minimumSize} bytes`);
    const payload = Buffer.alloc(payloadSize, 0x2e);
    payload.writeUInt32LE(runId, PayloadOffset.runId);
    payload.writeUInt32LE(publisher, PayloadOffset.publisher);
    const header = encodePublishHeader(
      { type: 'publish', topic, payload, qos, retain: false, dup: false, packetId: qos > 0 ? 1 : undefined }, 4,
    );
    this.bytes = Buffer.concat([header, payload]);
    this.idOffset = publishPacketIdOffset(header);
    this.payloadStart = header.length;
    this.length = this.bytes.length;
  }

  /** Appends one PUBLISH to `out`. `packetId` is ignored at QoS 0. */
  write(out: Outbox, sentAt: number, sequence: number, packetId: number): void {
    out.ensure(this.length);
    const b = out.buf;
    const p = out.pos;
    this.bytes.copy(b, p);
    b.writeDoubleLE(sentAt, p + this.payloadStart + PayloadOffset.sentAt);
    b.writeUInt32LE(sequence, p + this.payloadStart + PayloadOffset.sequence);
    if (this.idOffset >= 0) {
      b[p + this.idOffset] = packetId >> 8;
      b[p + this.idOffset + 1] = packetId & 0xff;
    }
    out.pos = p + this.length;
  }
}

/** Socket reads and writes of all connections of this process, to relate the generator's CPU to its I/O. */
export const ioCounters = { reads: 0, writes: 0 };

export type PacketHandler = (packet: Packet, conn: Connection) => void;

/**
 * One read buffer for every connection (sockets use `onread`, not 'data' events: no stream machinery and
 * no allocation per read). Safe because each read is handled synchronously before the next one: the
 * parser copies partial packets into its own buffers, and handlers use payload views only while
 * handling (decoded strings, numbers and arrays are copies).
 */
const sharedReadBuffer = Buffer.allocUnsafe(64 * 1024);

/** A connected, CONNACKed MQTT client. */
export class Connection {
  readonly parser = new PacketParser({ protocolVersion: 4 });
  readonly out = new Outbox();
  /** performance.now() when the chunk being handled was read: one clock reading per read, not per packet. */
  now = 0;
  onPacket: PacketHandler = () => {};
  /** Runs after the packets of one read were handled, before the outbox is flushed. */
  afterRead: ((conn: Connection) => void) | null = null;
  closed = false;
  error: string | null = null;

  /** `socket` must deliver its reads to onData() through `onread` (connect() sets that up). */
  constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('error', (err) => {
      this.error ??= err.message;
    });
    socket.on('close', () => {
      this.closed = true;
    });
  }

  onData(chunk: Buffer): void {
    ioCounters.reads++;
    this.now = performance.now();
    let packets: Packet[];
    try {
      packets = this.parser.push(chunk);
    } catch (err) {
      this.error ??= `protocol error from broker: ${String(err)}`;
      this.socket.destroy();
      return;
    }
    const handler = this.onPacket;
    for (let i = 0; i < packets.length; i++) handler(packets[i]!, this);
    if (this.afterRead !== null) this.afterRead(this);
    // Acks go out after every read, not held back for larger batches: holding them grows the broker's
    // inflight lists and changes its work (Mosquitto lost ~10 % with 1 ms of hold).
    this.flush();
  }

  /** Writes whatever the outbox holds as one Buffer. Returns false when the socket asks to wait for 'drain'. */
  flush(): boolean {
    const bytes = this.out.take();
    if (bytes === null) return !this.socket.writableNeedDrain;
    if (this.closed || this.socket.destroyed) return false;
    ioCounters.writes++;
    return this.socket.write(bytes);
  }

  /** Sends a packet right away (control traffic: SUBSCRIBE, DISCONNECT). */
  send(packet: Packet): void {
    this.out.append(encodePacket(packet, 4));
    this.flush();
  }

  /** Resolves with the first packet for which `match` returns true, or rejects after `timeoutMs`. */
  expect(match: (p: Packet) => boolean, what: string, timeoutMs: number): Promise<Packet> {
    return new Promise((resolvePacket, reject) => {
      const previous = this.onPacket;
      const timer = setTimeout(() => {
        this.onPacket = previous;
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.onPacket = (p, conn) => {
        if (match(p)) {
          clearTimeout(timer);
          this.onPacket = previous;
          resolvePacket(p);
        } else {
          previous(p, conn);
        }
      };
    });
  }

  async subscribe(topic: string, qos: QoS, timeoutMs = 10_000): Promise<void> {
    const packetId = 1;
    const acked = this.expect((p) => p.type === 'suback' && p.packetId === packetId, `SUBACK for '${topic}'`, timeoutMs);
    this.send({ type: 'subscribe', packetId, subscriptions: [{ topic, qos }] });
    const suback = await acked;
    if (suback.type === 'suback' && (suback.reasonCodes[0] ?? 0x80) >= 0x80) {
      throw new Error(`subscription to '${topic}' refused (return code ${suback.reasonCodes[0]})`);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface ConnectOptions {
  port: number;
  host: string;
  clientId: string;
  keepalive?: number;
  localAddress?: string;
  timeoutMs?: number;
  /** 3.1.1 clean-session flag (default true); false asks the broker to keep a persistent session. */
  clean?: boolean;
}

/** TCP connect, CONNECT (3.1.1, clean session unless `clean: false`), wait for a successful CONNACK. */
export function connect(options: ConnectOptions): Promise<Connection> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolveConn, reject) => {
    // The read callback needs the Connection, which needs the socket: hence the late binding.
    let conn: Connection | null = null;
    const socket = net.connect({
      port: options.port, host: options.host,
      ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
      onread: {
        buffer: sharedReadBuffer,
        callback: (bytes: number, buf: Uint8Array): boolean => {
          conn!.onData((buf as Buffer).subarray(0, bytes));
          return true;
        },
      },
    });
    conn = new Connection(socket);
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(`${options.clientId}: ${why}`));
    };
    const timer = setTimeout(() => fail(`no CONNACK within ${timeoutMs} ms`), timeoutMs);
    socket.once('error', (err) => fail(err.message));
    socket.once('close', () => fail('connection closed before CONNACK'));
    conn.onPacket = (p) => {
      if (settled) return;
      if (p.type !== 'connack') return fail(`expected CONNACK, got ${p.type.toUpperCase()}`);
      if (p.reasonCode !== 0) return fail(`CONNACK return code ${p.reasonCode}`);
      settled = true;
      clearTimeout(timer);
      conn.onPacket = () => {};
      resolveConn(conn);
    };
    socket.once('connect', () => {
      conn.send({
        type: 'connect', protocolVersion: 4, protocolName: 'MQTT', clean: options.clean ?? true,
        keepalive: options.keepalive ?? 0, clientId: options.clientId,
      });
    });
  });
}

/**
 * Connects `count` clients with at most `parallel` handshakes in flight (Mosquitto listens with a
 * backlog of 100; a larger burst measures SYN retry timers, not the broker).
 */
export async function connectMany(
  count: number, parallel: number, optionsOf: (index: number) => ConnectOptions,
): Promise<{ connections: Connection[]; failures: string[] }> {
  const connections: Connection[] = [];
  const failures: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      try {
        connections.push(await connect(optionsOf(index)));
      } catch (err) {
        failures.push(err instanceof Error ? err.message : String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  return { connections, failures };
}
