/**
 * The durability rule at the broker level: with the SQLite store, no byte reaches a client while a
 * transaction holding writes is still open — PUBACK, PUBREC, deliveries and SUBACK all wait for COMMIT.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createBroker, type Broker } from '../../../broker/broker.js';
import { SqliteStore } from '../../../broker/store/sqlite.js';
import { encodePacket } from '../../../protocol/encoder.js';
import type { Packet } from '../../../protocol/packets.js';
import { PacketParser } from '../../../protocol/parser.js';
import { withTimeout } from '../../helpers/broker.js';

/** An in-memory client connection whose broker side checks the store on every write. */
function pipeClient(broker: Broker, onBrokerWrite: () => void) {
  const parser = new PacketParser({ protocolVersion: 4 });
  const received: Packet[] = [];
  const waiters: Array<() => void> = [];
  let client!: Duplex;
  const server = new Duplex({
    write(chunk: Buffer, _enc, done) {
      onBrokerWrite();
      client.push(chunk);
      done();
    },
    read() {},
  });
  client = new Duplex({
    write(chunk: Buffer, _enc, done) {
      server.push(chunk);
      done();
    },
    read() {},
  });
  client.on('data', (chunk: Buffer) => {
    received.push(...parser.push(chunk));
    for (const w of waiters.splice(0)) w();
  });
  broker.handle(server);
  return {
    send: (p: Packet) => client.write(encodePacket(p, 4)),
    received,
    async waitFor(pred: (p: Packet) => boolean, what: string): Promise<Packet> {
      const found = (): Packet | undefined => received.find(pred);
      return withTimeout(
        new Promise<Packet>((resolve) => {
          const check = (): void => {
            const p = found();
            if (p) resolve(p);
            else waiters.push(check);
          };
          check();
        }),
        5000,
        what,
      );
    },
  };
}

let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe('durability rule (SQLite store)', () => {
  it('no PUBACK, PUBREC, delivery or SUBACK is written while a transaction is open', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-durability-'));
    const store = SqliteStore.open({ dataDir: dir });
    const broker = createBroker({ store, sysInterval: 0 });
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }), () => store.close(), () => broker.close());
    let writes = 0;
    let violations = 0;
    const check = (): void => {
      writes++;
      if (store.db.inTransaction) violations++;
    };
    const sub = pipeClient(broker, check);
    const pub = pipeClient(broker, check);
    sub.send({ type: 'connect', protocolVersion: 4, protocolName: 'MQTT', clean: false, keepalive: 0, clientId: 'sub' });
    pub.send({ type: 'connect', protocolVersion: 4, protocolName: 'MQTT', clean: false, keepalive: 0, clientId: 'pub' });
    await sub.waitFor((p) => p.type === 'connack', 'sub CONNACK');
    await pub.waitFor((p) => p.type === 'connack', 'pub CONNACK');
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'd/#', qos: 2 }] });
    await sub.waitFor((p) => p.type === 'suback', 'SUBACK');
    for (let i = 1; i <= 50; i++) {
      pub.send({ type: 'publish', topic: `d/${i}`, payload: Buffer.from(String(i)), qos: i % 2 === 0 ? 2 : 1, retain: i % 10 === 0, dup: false, packetId: i });
    }
    await pub.waitFor((p) => p.type === 'pubrec' && p.packetId === 50, 'PUBREC for the last publish');
    await sub.waitFor((p) => p.type === 'publish' && p.topic === 'd/50', 'delivery of the last publish');
    expect(writes).toBeGreaterThan(0);
    expect(pub.received.length + sub.received.length).toBeGreaterThan(100);
    expect(violations).toBe(0);
    expect(store.commitCount).toBeGreaterThan(0);
  });
});
