/**
 * The baseline of part 1: MQTT.js (the `mqtt` dev dependency) on this one thread, RATE_DEVICES clients
 * publishing payloads as large as the simulator's (20-byte stamp + 64-byte body = 84 bytes) as fast as
 * they can to a fresh Mosquitto:
 *
 *   QoS 0: each client publishes back to back; a publish counts once MQTT.js reports it written (its
 *          callback, which waits for 'drain' when the socket buffer is full), in batches per event-loop
 *          turn so the clients share the thread.
 *   QoS 1: each client keeps MQTTJS_INFLIGHT publishes unacknowledged (the simulator's default inflight
 *          window) and sends the next on every PUBACK; a publish counts when it is acknowledged.
 *
 * Timeline: connect all (MQTT 5, clean start, keepalive 60 s) → 1 s warm-up, not counted → the measured
 * window → stop.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { startBroker, type RunningBroker } from '../broker/brokers.js';
import { HOST } from '../lib/net.js';
import { ProcessSampler, SelfCpuSampler } from '../broker/proc-stat.js';
import { brokerUnreadBytes, errorText, round, sleep } from './common.js';
import { BODY_BYTES, RATE_DEVICES, STAMP_BYTES, type Qos } from './rate.js';

export const MQTTJS_INFLIGHT = 20;
export const MQTTJS_WARMUP_MS = 1000;
/** QoS 0 publishes per client per event-loop turn. */
const QOS0_BATCH = 32;
/** Parallel connection handshakes (Mosquitto listens with a backlog of 100). */
const CONNECT_PARALLEL = 50;

export interface MqttjsRun {
  run: number;
  /** Written (QoS 0) or acknowledged (QoS 1) publishes per second in the measured window. */
  msgPerSec: number | null;
  /** This process (MQTT.js on the main thread), % of one core in the window. */
  processCpuPct?: number;
  brokerCpuPct?: number;
  brokerRssMb?: number;
  /** Sum of Recv-Q of Mosquitto's sockets at the end of the window: written but not yet read by the broker. */
  brokerUnreadBytesAtEnd?: number | null;
  errors?: number;
  firstError?: string;
  error?: string;
  busyBeforePct?: number;
}

function connectOne(port: number, clientId: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(`mqtt://${HOST}:${port}`, {
      clientId, protocolVersion: 5, clean: true, keepalive: 60, reconnectPeriod: 0, connectTimeout: 10_000,
    });
    const onError = (err: Error): void => {
      client.end(true);
      reject(err);
    };
    client.once('error', onError);
    client.once('connect', () => {
      client.off('error', onError);
      resolve(client);
    });
  });
}

async function connectAll(port: number, count: number): Promise<MqttClient[]> {
  const clients: MqttClient[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      clients[i] = await connectOne(port, `mqttjs-${i}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(CONNECT_PARALLEL, count) }, worker));
  } catch (err) {
    for (const c of clients) c?.end(true);
    throw err;
  }
  return clients;
}

export async function mqttjsFlood(qos: Qos, seconds: number, run: number): Promise<MqttjsRun> {
  let broker: RunningBroker | undefined;
  let clients: MqttClient[] = [];
  let running = true;
  let counting = false;
  let count = 0;
  let errors = 0;
  let firstError: string | undefined;
  const payload = Buffer.alloc(STAMP_BYTES + BODY_BYTES, 0x61);
  const onError = (err: Error | undefined | null): boolean => {
    if (!err) return false;
    errors++;
    firstError ??= err.message;
    return true;
  };
  try {
    broker = await startBroker('mosquitto');
    clients = await connectAll(broker.port, RATE_DEVICES);
    for (const c of clients) c.on('error', (err) => onError(err));

    clients.forEach((client, i) => {
      const topic = `bench/mqttjs/${i}`;
      if (qos === 0) {
        const pump = (): void => {
          for (let k = 0; k < QOS0_BATCH && running; k++) {
            let done = false;
            let waiting = false;
            client.publish(topic, payload, { qos: 0 }, (err) => {
              done = true;
              if (onError(err)) return;
              if (counting) count++;
              // Called later: the write waited for 'drain'; resume from here.
              if (waiting) setImmediate(pump);
            });
            if (!done) {
              waiting = true;
              return;
            }
          }
          if (running) setImmediate(pump);
        };
        pump();
      } else {
        const send = (): void => {
          if (!running) return;
          client.publish(topic, payload, { qos: 1 }, (err) => {
            if (onError(err)) return;
            if (counting) count++;
            send();
          });
        };
        for (let k = 0; k < MQTTJS_INFLIGHT; k++) send();
      }
    });

    await sleep(MQTTJS_WARMUP_MS);
    const brokerUsage = new ProcessSampler(broker.pid);
    const self = new SelfCpuSampler();
    brokerUsage.start();
    self.start();
    count = 0;
    counting = true;
    const started = performance.now();
    await sleep(seconds * 1000);
    counting = false;
    const elapsed = (performance.now() - started) / 1000;
    const measured = count;
    const brokerUnreadBytesAtEnd = brokerUnreadBytes(broker.port);
    running = false;
    const processCpuPct = self.stop();
    const usage = brokerUsage.stop();
    return {
      run,
      msgPerSec: Math.round(measured / elapsed),
      processCpuPct: round(processCpuPct, 1),
      brokerCpuPct: round(usage.cpuPct, 1),
      brokerRssMb: round(usage.rssMbMax, 1),
      brokerUnreadBytesAtEnd,
      errors,
      ...(firstError !== undefined ? { firstError } : {}),
    };
  } catch (err) {
    return { run, msgPerSec: null, error: errorText(err), errors, ...(firstError !== undefined ? { firstError } : {}) };
  } finally {
    running = false;
    counting = false;
    // The broker goes first, so TIME_WAIT lands on its side; then the clients are dropped without DISCONNECT.
    if (broker !== undefined) await broker.stop();
    for (const c of clients) c.end(true);
    await sleep(200);
  }
}
