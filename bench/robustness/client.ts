/**
 * A minimal well-behaved MQTT 5 client for the campaign's checks: the QoS 1 round trip that shows the
 * broker still serves clients, and the clean-up that ends the sessions and retained messages a
 * campaign left (so a memory comparison starts from an empty broker). Every wait is bounded.
 */
import net from 'node:net';
import { encodePacket } from '../../protocol/encoder.js';
import type { ConnackPacket, Packet } from '../../protocol/packets.js';
import { PacketParser } from '../../protocol/parser.js';

export class RawClient {
  private readonly parser = new PacketParser({ protocolVersion: 5 });
  private readonly received: Packet[] = [];
  private wake: (() => void) | undefined;
  private closed = false;
  private error: string | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      try {
        this.received.push(...this.parser.push(chunk));
      } catch (err) {
        this.error = (err as Error).message;
      }
      this.wake?.();
    });
    socket.on('error', (err) => {
      this.error ??= err.message;
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
  }

  /** Connects (TCP and MQTT 5 CONNECT); rejects unless CONNACK 0x00 arrives within `ms`. */
  static async connect(port: number, host: string, clientId: string, ms: number, sessionExpiry = 0): Promise<RawClient> {
    const socket = net.connect({ port, host, noDelay: true });
    const client = new RawClient(socket);
    socket.write(encodePacket({
      type: 'connect', protocolVersion: 5, protocolName: 'MQTT', clean: true, keepalive: 0, clientId,
      ...(sessionExpiry > 0 ? { properties: { sessionExpiryInterval: sessionExpiry } } : {}),
    }, 5));
    const connack = (await client.next((p) => p.type === 'connack', ms, 'CONNACK')) as ConnackPacket;
    if (connack.reasonCode !== 0) {
      client.destroy();
      throw new Error(`CONNACK 0x${connack.reasonCode.toString(16)} for ${JSON.stringify(clientId)}`);
    }
    return client;
  }

  send(packet: Packet): void {
    this.socket.write(encodePacket(packet, 5));
  }

  /** The first received packet matching `match` (it is removed; the others stay for later calls). */
  async next(match: (p: Packet) => boolean, ms: number, what: string): Promise<Packet> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.received.findIndex(match);
      if (i >= 0) {
        const p = this.received[i]!;
        this.received.splice(i, 1);
        return p;
      }
      if (this.error !== undefined) throw new Error(`waiting for ${what}: ${this.error}`);
      if (this.closed) throw new Error(`waiting for ${what}: the connection closed`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${ms} ms`);
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  /** Sends DISCONNECT (normal) and waits for the broker to close, bounded. */
  async disconnect(ms: number): Promise<void> {
    this.send({ type: 'disconnect' });
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        timer = setTimeout(resolve, deadline - Date.now());
      });
      clearTimeout(timer);
    }
    this.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * A fresh client can still use the broker: subscribe at QoS 1, publish at QoS 1, get the PUBACK and
 * the message back. Throws with the failing step.
 */
export async function qos1RoundTrip(port: number, host = '127.0.0.1', ms = 10_000): Promise<void> {
  const topic = `robustness/check/${process.pid}/${Date.now()}`;
  const client = await RawClient.connect(port, host, `robustness-check-${process.pid}`, ms);
  try {
    client.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic, qos: 1 }] });
    const suback = await client.next((p) => p.type === 'suback', ms, 'SUBACK');
    if (suback.type !== 'suback' || suback.reasonCodes[0] !== 1) throw new Error(`SUBACK ${JSON.stringify(suback)}`);
    client.send({ type: 'publish', topic, payload: Buffer.from('still alive'), qos: 1, retain: false, dup: false, packetId: 2 });
    const puback = await client.next((p) => p.type === 'puback' && p.packetId === 2, ms, 'PUBACK');
    if (puback.type === 'puback' && (puback.reasonCode ?? 0) !== 0) throw new Error(`PUBACK 0x${(puback.reasonCode ?? 0).toString(16)}`);
    const msg = await client.next((p) => p.type === 'publish' && p.topic === topic, ms, 'the published message');
    if (msg.type !== 'publish' || msg.payload.toString() !== 'still alive' || msg.qos !== 1) throw new Error(`unexpected delivery ${JSON.stringify(msg)}`);
    client.send({ type: 'puback', packetId: msg.packetId! });
    await client.disconnect(ms);
  } finally {
    client.destroy();
  }
}

/**
 * Ends the given sessions: a clean MQTT 5 CONNECT with each client id (session expiry 0) discards the
 * stored session [MQTT-3.1.2-4], and a normal DISCONNECT ends the new one. Runs `parallel` at a time.
 */
export async function endSessions(port: number, clientIds: readonly string[], host = '127.0.0.1', ms = 10_000, parallel = 16): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < clientIds.length) {
      const id = clientIds[next++]!;
      const client = await RawClient.connect(port, host, id, ms);
      await client.disconnect(ms);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, clientIds.length) }, () => worker()));
}

/** Clears retained messages: an empty retained PUBLISH per topic [MQTT-3.3.1-6]; QoS 1 so each is acknowledged. */
export async function clearRetained(port: number, topics: readonly string[], host = '127.0.0.1', ms = 10_000): Promise<void> {
  if (topics.length === 0) return;
  const client = await RawClient.connect(port, host, `robustness-clean-${process.pid}`, ms);
  try {
    let id = 0;
    for (const topic of topics) {
      id = (id % 0xffff) + 1;
      client.send({ type: 'publish', topic, payload: Buffer.alloc(0), qos: 1, retain: true, dup: false, packetId: id });
      await client.next((p) => p.type === 'puback' && p.packetId === id, ms, `PUBACK clearing ${JSON.stringify(topic)}`);
    }
    await client.disconnect(ms);
  } finally {
    client.destroy();
  }
}
