/**
 * Test helpers: a raw MQTT client over TCP that sends exact packets (encoded by protocol/) and records
 * every packet the broker sends, in order, so tests can check the wire itself — topic aliases, reason
 * strings, packet sizes — where MQTT.js would hide or resolve it.
 */
import net from 'node:net';
import { encodePacket } from '../../protocol/encoder.js';
import type { ConnackPacket, ConnectPacket, Packet, ProtocolVersion } from '../../protocol/packets.js';
import { PacketParser } from '../../protocol/parser.js';
import { withTimeout } from './broker.js';

export type PacketOf<K extends Packet['type']> = Extract<Packet, { type: K }>;

export interface RawClientOptions {
  /** Protocol level used to decode what the broker sends (default 5). */
  protocolVersion?: ProtocolVersion;
  /**
   * Largest packet this client accepts. A bigger packet from the broker is a parse error that fails
   * every pending and later wait, so "never received a bigger packet" is checked on the wire.
   */
  maxPacketSize?: number;
  /** Acknowledge QoS 1 and QoS 2 deliveries (PUBACK; PUBREC then PUBCOMP). Default true. */
  autoAck?: boolean;
}

export interface RawClient {
  readonly socket: net.Socket;
  readonly version: ProtocolVersion;
  /** Every packet received from the broker, in arrival order. */
  readonly received: Packet[];
  /** The first bytes from the broker that did not parse (too large, malformed), if any. */
  readonly parseError: Error | undefined;
  send(packet: Packet): void;
  /** Received packets of one type, in arrival order. */
  all<K extends Packet['type']>(type: K): PacketOf<K>[];
  /** Waits (bounded) for the first received packet of `type` that satisfies `match`, earlier arrivals included. */
  waitFor<K extends Packet['type']>(type: K, match?: (p: PacketOf<K>) => boolean, ms?: number): Promise<PacketOf<K>>;
  /** Waits (bounded) until `n` packets of `type` have arrived; resolves with all of them. */
  waitForCount<K extends Packet['type']>(type: K, n: number, ms?: number): Promise<PacketOf<K>[]>;
  /**
   * PINGREQ → PINGRESP round trip: once it resolves, everything the broker wrote before handling the
   * PINGREQ has arrived (one ordered stream), so "nothing more came" can be asserted without sleeping.
   */
  ping(ms?: number): Promise<void>;
  /** Resolves when the broker closed the connection (bounded). */
  waitClosed(ms?: number): Promise<void>;
  isClosed(): boolean;
  destroy(): void;
}

const openRawClients = new Set<RawClient>();

/** Opens a TCP connection to the broker; no CONNECT is sent (see connectRaw for that). */
export function openRawClient(port: number, options: RawClientOptions = {}, ms = 5000): Promise<RawClient> {
  const version = options.protocolVersion ?? 5;
  const autoAck = options.autoAck ?? true;
  const parser = new PacketParser({ protocolVersion: version, ...(options.maxPacketSize !== undefined ? { maxPacketSize: options.maxPacketSize } : {}) });
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  const received: Packet[] = [];
  const waiters = new Set<() => void>();
  let parseError: Error | undefined;
  let closed = false;
  let pings = 0;

  const wake = (): void => {
    for (const check of [...waiters]) check();
  };
  const send = (packet: Packet): void => {
    if (!socket.destroyed) socket.write(encodePacket(packet, version));
  };

  socket.on('data', (chunk: Buffer) => {
    if (parseError !== undefined) return;
    let packets: Packet[];
    try {
      packets = parser.push(chunk);
    } catch (err) {
      parseError = err instanceof Error ? err : new Error(String(err));
      wake();
      return;
    }
    for (const p of packets) {
      // Payloads are views of the socket chunk; keep copies so later chunks cannot alias them.
      if (p.type === 'publish') p.payload = Buffer.from(p.payload);
      received.push(p);
      if (p.type === 'pingresp') pings++;
      if (!autoAck) continue;
      if (p.type === 'publish' && p.qos === 1) send({ type: 'puback', packetId: p.packetId! });
      else if (p.type === 'publish' && p.qos === 2) send({ type: 'pubrec', packetId: p.packetId! });
      else if (p.type === 'pubrel') send({ type: 'pubcomp', packetId: p.packetId });
    }
    wake();
  });
  socket.on('error', () => {
    // A reset from the broker is followed by 'close'; waits report that.
  });
  socket.on('close', () => {
    closed = true;
    wake();
  });

  /**
   * A bounded wait for `ready()` to return a value; fails early on a parse error or a closed socket.
   * `what` is evaluated when the wait fails, so it can describe what had arrived by then.
   */
  const waitUntil = <T>(ready: () => T | undefined, ms: number, what: () => string, closeIsFailure = true): Promise<T> => {
    let check = (): void => {};
    let timer: NodeJS.Timeout | undefined;
    return new Promise<T>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what()}`)), ms);
      check = (): void => {
        const value = ready();
        if (value !== undefined) resolve(value);
        else if (parseError !== undefined) reject(new Error(`${what()}: the broker sent bytes that did not parse: ${parseError.message}`));
        else if (closed && closeIsFailure) {
          reject(new Error(`${what()}: the connection closed first (received: ${describe()})`));
        }
      };
      waiters.add(check);
      check();
    }).finally(() => {
      clearTimeout(timer);
      waiters.delete(check);
    });
  };

  const describe = (): string => received.map((p) => p.type).join(', ') || 'nothing';
  const all = <K extends Packet['type']>(type: K): PacketOf<K>[] =>
    received.filter((p): p is PacketOf<K> => p.type === type);

  const client: RawClient = {
    socket,
    version,
    received,
    get parseError() {
      return parseError;
    },
    send,
    all,
    waitFor(type, match = () => true, wait = 5000) {
      return waitUntil(() => all(type).find(match), wait, () => `no matching ${type.toUpperCase()} received (received: ${describe()})`);
    },
    waitForCount(type, n, wait = 5000) {
      return waitUntil(() => {
        const list = all(type);
        return list.length >= n ? list : undefined;
      }, wait, () => `expected ${n} ${type.toUpperCase()} packets, got ${all(type).length}`);
    },
    async ping(wait = 5000) {
      const target = pings + 1;
      send({ type: 'pingreq' });
      await waitUntil(() => (pings >= target ? true : undefined), wait, () => 'no PINGRESP');
    },
    async waitClosed(wait = 5000) {
      await waitUntil(() => (closed ? true : undefined), wait, () => 'the broker never closed the connection', false);
    },
    isClosed: () => closed,
    destroy() {
      openRawClients.delete(client);
      socket.destroy();
    },
  };
  openRawClients.add(client);

  return withTimeout(
    new Promise<RawClient>((resolve, reject) => {
      socket.once('connect', () => resolve(client));
      socket.once('error', reject);
    }),
    ms,
    `raw client could not connect to port ${port}`,
  );
}

/** A CONNECT with test defaults: MQTT 5 unless told otherwise, clean start, no keepalive. */
export function rawConnectPacket(fields: Partial<ConnectPacket> & { clientId: string }): ConnectPacket {
  const protocolVersion = fields.protocolVersion ?? 5;
  return {
    type: 'connect',
    protocolVersion,
    protocolName: protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
    clean: true,
    keepalive: 0,
    ...fields,
  };
}

/** Opens a raw client, sends CONNECT and waits (bounded) for the CONNACK, accepted or not. */
export async function connectRaw(
  port: number, fields: Partial<ConnectPacket> & { clientId: string }, options: RawClientOptions = {}, ms = 5000,
): Promise<{ client: RawClient; connack: ConnackPacket }> {
  const packet = rawConnectPacket(fields);
  const client = await openRawClient(port, { ...options, protocolVersion: packet.protocolVersion }, ms);
  client.send(packet);
  const connack = await client.waitFor('connack', undefined, ms);
  return { client, connack };
}

/** Destroys every raw client still open (for afterEach). */
export function closeAllRawClients(): void {
  for (const c of [...openRawClients]) c.destroy();
}
