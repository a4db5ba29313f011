import { describe, expect, it } from 'vitest';
import { MemoryStore, MemoryStoreData } from '../../../broker/store/memory.js';
import type { QueueEntry, StoredMessage } from '../../../broker/store/types.js';
import { storeContract } from '../../helpers/store-contract.js';

storeContract('memory', () => {
  const store = new MemoryStore();
  return { store, reopen: () => new MemoryStore(store.data) };
});

function msg(topic: string, extra: Partial<StoredMessage> = {}): StoredMessage {
  return { topic, payload: Buffer.from(topic), qos: 1, retain: false, ...extra };
}

function entry(seq: number, messageId: number): QueueEntry {
  return { seq, messageId, qos: 1, state: 'queued', retain: false };
}

describe('MemoryStore', () => {
  it('is the non-durable memory backend', () => {
    const store = new MemoryStore();
    expect(store.kind).toBe('memory');
    expect(store.durable).toBe(false);
  });

  it('runs afterCommit effects synchronously', () => {
    const store = new MemoryStore();
    const ran: number[] = [];
    store.afterCommit(() => ran.push(1));
    expect(ran).toEqual([1]);
    store.afterCommit(() => ran.push(2));
    expect(ran).toEqual([1, 2]);
  });

  it('a store over the same data object sees every write of the earlier one', () => {
    const data = new MemoryStoreData();
    const first = new MemoryStore(data);
    first.saveSession({ clientId: 'c1', protocolVersion: 5, expiryInterval: 10 });
    first.enqueue('c1', entry(1, first.putMessage(msg('t'))));
    const second = new MemoryStore(first.data);
    expect(second.data).toBe(data);
    expect(second.loadSessions().map((s) => s.clientId)).toEqual(['c1']);
    expect(second.loadQueue('c1').map((e) => e.message.topic)).toEqual(['t']);
    expect(second.messageCount()).toBe(1);
  });

  it('throws "store is closed" after close(); close() itself may be repeated', () => {
    const store = new MemoryStore();
    store.close();
    store.close();
    const calls: Array<() => unknown> = [
      () => store.loadSessions(),
      () => store.loadSubscriptions(),
      () => store.loadRetained(),
      () => store.loadQueue('c'),
      () => store.loadInboundQos2('c'),
      () => store.saveSession({ clientId: 'c', protocolVersion: 4, expiryInterval: 0 }),
      () => store.deleteSession('c'),
      () => store.saveSubscription({ clientId: 'c', filter: 'a', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }),
      () => store.deleteSubscription('c', 'a'),
      () => store.putMessage(msg('t')),
      () => store.setRetained('t', null),
      () => store.enqueue('c', entry(1, 1)),
      () => store.updateQueueEntry('c', 1, { state: 'sent' }),
      () => store.dequeue('c', 1),
      () => store.addInboundQos2('c', 1),
      () => store.removeInboundQos2('c', 1),
      () => store.messageCount(),
      () => store.afterCommit(() => undefined),
      () => store.flush(),
    ];
    for (const call of calls) expect(call).toThrow('store is closed');
  });

  it('closing one store leaves a store reopened over the same data usable', () => {
    const first = new MemoryStore();
    first.saveSession({ clientId: 'c1', protocolVersion: 5, expiryInterval: 10 });
    first.close();
    const second = new MemoryStore(first.data);
    expect(second.loadSessions()).toHaveLength(1);
  });

  it('rejects references to unknown messages and duplicate seqs', () => {
    const store = new MemoryStore();
    expect(() => store.enqueue('c1', entry(1, 404))).toThrow(/unknown message id 404/);
    expect(() => store.setRetained('t', 404)).toThrow(/unknown message id 404/);
    const id = store.putMessage(msg('t'));
    store.enqueue('c1', entry(1, id));
    expect(() => store.enqueue('c1', entry(1, id))).toThrow(/already exists/);
    expect(store.loadQueue('c1')).toHaveLength(1);
    store.dequeue('c1', 1);
    expect(store.messageCount()).toBe(0);
  });

  it('drops messages that nothing references when the data is reopened', () => {
    const store = new MemoryStore();
    const orphan = store.putMessage(msg('orphan'));
    const kept = store.putMessage(msg('kept'));
    store.enqueue('c1', entry(1, kept));
    expect(store.messageCount()).toBe(2);
    const reopened = new MemoryStore(store.data);
    expect(reopened.messageCount()).toBe(1);
    expect(() => reopened.setRetained('orphan', orphan)).toThrow(/unknown message id/);
  });

  // Speed is measured in bench/, not here; this checks refcounts stay exact over a large queue drained from both ends.
  it('keeps exact reference counts over 100,000 entries dequeued from both ends', () => {
    const store = new MemoryStore();
    const n = 100_000;
    const id = store.putMessage(msg('hot'));
    for (let seq = 1; seq <= n; seq++) store.enqueue('c1', entry(seq, id));
    expect(store.data.messages.get(id)?.refs).toBe(n);
    // Dequeue from the back, then the front: an array-scanning queue would be quadratic here.
    for (let seq = n; seq > n / 2; seq--) store.dequeue('c1', seq);
    for (let seq = 1; seq <= n / 2; seq++) store.dequeue('c1', seq);
    expect(store.messageCount()).toBe(0);
    expect(store.loadQueue('c1')).toEqual([]);
  });

  it('keeps message ids increasing across a reopen', () => {
    const store = new MemoryStore();
    const a = store.putMessage(msg('a'));
    store.setRetained('a', a);
    const reopened = new MemoryStore(store.data);
    expect(reopened.putMessage(msg('b'))).toBeGreaterThan(a);
  });
});
