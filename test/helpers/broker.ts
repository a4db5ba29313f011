/** Test helpers: a real broker on port 0, MQTT.js clients connected to it, and bounded waits. */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { createBroker, type Broker } from '../../broker/broker.js';
import type { BrokerOptions } from '../../broker/options.js';

/**
 * A loopback port that refuses connections (ECONNREFUSED): nothing listens on port 1, and no test's
 * port-0 listener can be given it (the kernel picks those from the ephemeral range). A port freed by
 * closing a listener is not safe: another test file's broker may be given it meanwhile.
 */
export const REFUSED_PORT = 1;

export interface TestBroker {
  broker: Broker;
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function startBroker(options: Partial<BrokerOptions> = {}): Promise<TestBroker> {
  const broker = createBroker({ sysInterval: 0, ...options });
  const address = await broker.listen(0, '127.0.0.1');
  return { broker, port: address.port, url: `mqtt://127.0.0.1:${address.port}`, close: () => broker.close() };
}

const openClients = new Set<MqttClient>();

/** Connects an MQTT.js client and resolves once CONNACK arrived (rejects on error or after `ms`). */
export function connectClient(url: string, options: IClientOptions = {}, ms = 5000): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: ms, ...options });
  openClients.add(client);
  return withTimeout(
    new Promise<MqttClient>((resolve, reject) => {
      client.once('connect', () => resolve(client));
      client.once('error', reject);
    }),
    ms,
    `client ${options.clientId ?? ''} never received CONNACK`,
  );
}

/** Ends every client opened by connectClient (forcefully: tests must not hang on close). */
export async function closeAllClients(): Promise<void> {
  const closing = [...openClients].map((c) => new Promise<void>((resolve) => c.end(true, {}, () => resolve())));
  openClients.clear();
  await Promise.all(closing);
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export interface Received {
  topic: string;
  payload: Buffer;
  packet: mqtt.IPublishPacket;
}

/** Collects messages on a client; `next(n)` waits (bounded) until n messages have arrived in total. */
export function collect(client: MqttClient): { messages: Received[]; waitFor(n: number, ms?: number): Promise<Received[]> } {
  const messages: Received[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  client.on('message', (topic, payload, packet) => {
    messages.push({ topic, payload, packet });
    for (const w of [...waiters]) if (messages.length >= w.n) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
  });
  return {
    messages,
    waitFor(n, ms = 5000) {
      if (messages.length >= n) return Promise.resolve(messages);
      return withTimeout(
        new Promise<Received[]>((resolve) => waiters.push({ n, resolve: () => resolve(messages) })),
        ms,
        `expected ${n} messages, got ${messages.length}: ${messages.map((m) => m.topic).join(', ')}`,
      );
    },
  };
}
