/**
 * Flow control: a fan-in faster than its subscriber pauses the publishers (TCP backpressure) instead
 * of acknowledging messages the queue limits would then drop.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker, withTimeout, type TestBroker } from '../../helpers/broker.js';
import { closeAllRawClients, connectRaw } from '../../helpers/raw-client.js';

let tb: TestBroker | undefined;
afterEach(async () => {
  closeAllRawClients();
  await tb?.close();
  tb = undefined;
});

async function until(what: string, predicate: () => boolean, ms = 5000): Promise<void> {
  await withTimeout(
    new Promise<void>((resolve) => {
      const poll = (): void => (predicate() ? resolve() : void setImmediate(poll));
      poll();
    }),
    ms,
    what,
  );
}

describe('publisher flow control', () => {
  it('pauses a publisher while its subscriber is behind and loses nothing once it catches up', async () => {
    // A queue limit far below what is published: without flow control most messages would be dropped.
    tb = await startBroker({ publisherBackpressure: 20, maxQueuedMessages: 60, maxInflight: 10 });
    const { client: sub } = await connectRaw(tb.port, { clientId: 'slow-sub', protocolVersion: 4 }, { protocolVersion: 4, autoAck: false });
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'fc/#', qos: 1 }] });
    await sub.waitFor('suback');
    const { client: pub } = await connectRaw(tb.port, { clientId: 'fast-pub', protocolVersion: 4 }, { protocolVersion: 4 });

    // The publisher sends in batches of 20 and waits for each batch's PUBACKs, like a windowed client.
    const total = 500;
    const publishing = (async () => {
      for (let sent = 0; sent < total; ) {
        for (let k = 0; k < 20; k++) {
          sent++;
          pub.send({ type: 'publish', topic: `fc/${sent}`, payload: Buffer.from(String(sent)), qos: 1, retain: false, dup: false, packetId: sent });
        }
        await pub.waitForCount('puback', sent, 10_000);
      }
    })();
    await until('the publisher was never paused', () => tb!.broker.metrics.publishersPaused > 0);

    // The subscriber now acknowledges everything it receives; every message must arrive, in order.
    const seen: number[] = [];
    await until(`not every message arrived`, () => {
      for (const p of sub.all('publish').slice(seen.length)) {
        seen.push(Number(p.payload.toString()));
        sub.send({ type: 'puback', packetId: p.packetId! });
      }
      return seen.length >= total;
    }, 10_000);
    await publishing;
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(tb.broker.metrics.dropped.queueFull).toBe(0);
  });

  it('a subscriber that stays behind longer than slowConsumerTimeout releases its publishers', async () => {
    tb = await startBroker({ publisherBackpressure: 5, maxQueuedMessages: 50, maxInflight: 5, slowConsumerTimeout: 0.2 });
    const { client: sub } = await connectRaw(tb.port, { clientId: 'stuck-sub', protocolVersion: 4 }, { protocolVersion: 4, autoAck: false });
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'fc/#', qos: 1 }] });
    await sub.waitFor('suback');
    const { client: pub } = await connectRaw(tb.port, { clientId: 'pub', protocolVersion: 4 }, { protocolVersion: 4 });
    for (let i = 1; i <= 200; i++) {
      pub.send({ type: 'publish', topic: 'fc/x', payload: Buffer.from(String(i)), qos: 1, retain: false, dup: false, packetId: i });
    }
    // The subscriber never acks: after the timeout the publisher is read again, every publish is
    // acknowledged, and what the subscriber's queue cannot hold is dropped and counted.
    await pub.waitForCount('puback', 200, 10_000);
    expect(tb.broker.metrics.publishersPaused).toBeGreaterThan(0);
    expect(tb.broker.metrics.dropped.queueFull).toBeGreaterThan(0);
  });
});
