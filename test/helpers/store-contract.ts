/**
 * The Store contract: the behaviour every persistence backend (memory, SQLite, ...) must show.
 * A backend's test file calls `storeContract(name, open)`; `open()` is called once per test and
 * must return a store over fresh, empty data.
 *
 * `reopen()` returns a new Store over the same persisted data, as a restarted broker would see it.
 * The contract always calls `flush()` on the old store first and does not close it (a crash after a
 * commit leaves it open), so `reopen()` must work while the old store is still open; the contract
 * never uses the old store again and closes every store it saw after the test, before `cleanup()`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type {
  LoadedQueueEntry,
  QueueEntry,
  SessionRecord,
  Store,
  StoredMessage,
  SubscriptionRecord,
} from '../../broker/store/types.js';

export interface StoreHarness {
  store: Store;
  reopen: () => Store;
  cleanup?: () => void;
}

export function storeContract(name: string, open: () => StoreHarness): void {
  describe(`Store contract: ${name}`, () => {
    const opened: Store[] = [];
    const cleanups: Array<() => void> = [];

    afterEach(() => {
      for (const store of opened.splice(0)) {
        try {
          store.close();
        } catch {
          // Already closed by the test.
        }
      }
      for (const cleanup of cleanups.splice(0)) cleanup();
    });

    /** Opens fresh data for one test. `restart()` flushes the current store and reopens the data. */
    function setup(): { store: Store; restart: () => Store } {
      const harness = open();
      opened.push(harness.store);
      if (harness.cleanup) cleanups.push(harness.cleanup);
      let current = harness.store;
      return {
        store: harness.store,
        restart: () => {
          current.flush();
          current = harness.reopen();
          opened.push(current);
          return current;
        },
      };
    }

    // --------------------------------------------------------------------------------------------
    // Sessions

    it('saves and loads a session', () => {
      const { store } = setup();
      expect(store.loadSessions()).toEqual([]);
      const session: SessionRecord = { clientId: 'c1', protocolVersion: 5, expiryInterval: 3600 };
      store.saveSession(session);
      expect(store.loadSessions()).toEqual([session]);
    });

    it('overwrites a session saved again under the same client id', () => {
      const { store } = setup();
      store.saveSession({ clientId: 'c1', protocolVersion: 4, expiryInterval: 0xffffffff });
      store.saveSession({ clientId: 'c2', protocolVersion: 5, expiryInterval: 10 });
      store.saveSession({ clientId: 'c1', protocolVersion: 5, expiryInterval: 60, disconnectedAt: 1_700_000_000_000 });
      expect(byClient(store.loadSessions())).toEqual([
        { clientId: 'c1', protocolVersion: 5, expiryInterval: 60, disconnectedAt: 1_700_000_000_000 },
        { clientId: 'c2', protocolVersion: 5, expiryInterval: 10 },
      ]);
    });

    it('deletes a session and ignores deleting an unknown one', () => {
      const { store } = setup();
      store.saveSession({ clientId: 'c1', protocolVersion: 4, expiryInterval: 0xffffffff });
      store.saveSession({ clientId: 'c2', protocolVersion: 3, expiryInterval: 0xffffffff });
      store.deleteSession('c1');
      store.deleteSession('nobody');
      expect(store.loadSessions()).toEqual([{ clientId: 'c2', protocolVersion: 3, expiryInterval: 0xffffffff }]);
    });

    it('deleting a session deletes its subscriptions, queue, inbound QoS 2 ids and unreferenced messages', () => {
      const { store } = setup();
      for (const clientId of ['gone', 'kept']) {
        store.saveSession({ clientId, protocolVersion: 5, expiryInterval: 100 });
        store.saveSubscription(sub(clientId, 'a/#'));
        store.addInboundQos2(clientId, 7);
      }
      const onlyGone = store.putMessage(msg('a/1'));
      const shared = store.putMessage(msg('a/2'));
      const retainedToo = store.putMessage(msg('a/3', { retain: true }));
      store.enqueue('gone', entry(1, onlyGone));
      store.enqueue('gone', entry(2, shared));
      store.enqueue('gone', entry(3, retainedToo));
      store.enqueue('kept', entry(1, shared));
      store.setRetained('a/3', retainedToo);
      expect(store.messageCount()).toBe(3);

      store.deleteSession('gone');

      expect(store.loadSessions().map((s) => s.clientId)).toEqual(['kept']);
      expect(store.loadSubscriptions()).toEqual([sub('kept', 'a/#')]);
      expect(store.loadQueue('gone')).toEqual([]);
      expect(store.loadInboundQos2('gone')).toEqual([]);
      expect(store.loadQueue('kept').map((e) => e.messageId)).toEqual([shared]);
      expect(store.loadInboundQos2('kept')).toEqual([7]);
      expect(store.loadRetained().map((r) => r.messageId)).toEqual([retainedToo]);
      // Only the message referenced by nothing else is gone.
      expect(store.messageCount()).toBe(2);
    });

    // --------------------------------------------------------------------------------------------
    // Subscriptions

    it('saves and loads subscriptions with every option, including $share filters', () => {
      const { store } = setup();
      const subs: SubscriptionRecord[] = [
        { clientId: 'c1', filter: 'plain/topic', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        {
          clientId: 'c1',
          filter: '$share/group-1/sensors/+/temp',
          qos: 2,
          noLocal: true,
          retainAsPublished: true,
          retainHandling: 2,
          subscriptionId: 268_435_455,
        },
        { clientId: 'c2', filter: '#', qos: 1, noLocal: true, retainAsPublished: false, retainHandling: 1, subscriptionId: 1 },
        { clientId: 'c2', filter: 'ünïcödé/+/✓', qos: 1, noLocal: false, retainAsPublished: true, retainHandling: 0 },
      ];
      for (const s of subs) store.saveSubscription(s);
      expect(bySubKey(store.loadSubscriptions())).toEqual(bySubKey(subs));
    });

    it('overwrites a subscription by (clientId, filter) only', () => {
      const { store } = setup();
      store.saveSubscription(sub('c1', 'a/b', { qos: 0 }));
      store.saveSubscription(sub('c2', 'a/b', { qos: 0 }));
      store.saveSubscription(sub('c1', '$share/g/a/b', { qos: 0 }));
      store.saveSubscription(
        sub('c1', 'a/b', { qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 1, subscriptionId: 9 }),
      );
      expect(bySubKey(store.loadSubscriptions())).toEqual(
        bySubKey([
          sub('c1', '$share/g/a/b', { qos: 0 }),
          sub('c1', 'a/b', { qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 1, subscriptionId: 9 }),
          sub('c2', 'a/b', { qos: 0 }),
        ]),
      );
    });

    it('overwriting a subscription can drop its subscription id', () => {
      const { store } = setup();
      store.saveSubscription(sub('c1', 'a/b', { subscriptionId: 5 }));
      store.saveSubscription(sub('c1', 'a/b'));
      const [loaded] = store.loadSubscriptions();
      expect(loaded?.subscriptionId).toBeUndefined();
    });

    it('deletes one subscription by (clientId, filter) and ignores unknown ones', () => {
      const { store } = setup();
      store.saveSubscription(sub('c1', 'a/b'));
      store.saveSubscription(sub('c1', '$share/g/a/b'));
      store.saveSubscription(sub('c2', '$share/g/a/b'));
      store.deleteSubscription('c1', '$share/g/a/b');
      store.deleteSubscription('c1', 'not/there');
      store.deleteSubscription('nobody', 'a/b');
      expect(bySubKey(store.loadSubscriptions())).toEqual(bySubKey([sub('c1', 'a/b'), sub('c2', '$share/g/a/b')]));
    });

    // --------------------------------------------------------------------------------------------
    // Retained messages

    it('sets and loads retained messages by topic', () => {
      const { store } = setup();
      expect(store.loadRetained()).toEqual([]);
      const a = msg('r/a', { retain: true, qos: 1 });
      const b = msg('r/b', { retain: true, qos: 0 });
      const idA = store.putMessage(a);
      const idB = store.putMessage(b);
      store.setRetained('r/a', idA);
      store.setRetained('r/b', idB);
      expect(byTopic(store.loadRetained())).toEqual([
        { messageId: idA, message: a },
        { messageId: idB, message: b },
      ]);
    });

    it('replacing a retained message frees the old one', () => {
      const { store } = setup();
      const first = store.putMessage(msg('r', { retain: true, payload: Buffer.from('v1') }));
      store.setRetained('r', first);
      const second = store.putMessage(msg('r', { retain: true, payload: Buffer.from('v2') }));
      store.setRetained('r', second);
      expect(store.messageCount()).toBe(1);
      expect(store.loadRetained()).toEqual([
        { messageId: second, message: msg('r', { retain: true, payload: Buffer.from('v2') }) },
      ]);
    });

    it('setting the same retained message again keeps it', () => {
      const { store } = setup();
      const id = store.putMessage(msg('r', { retain: true }));
      store.setRetained('r', id);
      store.setRetained('r', id);
      expect(store.messageCount()).toBe(1);
      expect(store.loadRetained().map((r) => r.messageId)).toEqual([id]);
    });

    it('clearing a retained message frees it; clearing an empty topic is harmless', () => {
      const { store } = setup();
      const id = store.putMessage(msg('r', { retain: true }));
      store.setRetained('r', id);
      store.setRetained('r', null);
      store.setRetained('never/set', null);
      expect(store.loadRetained()).toEqual([]);
      expect(store.messageCount()).toBe(0);
    });

    it('a message both retained and queued lives until both references are gone', () => {
      const { store } = setup();
      const id = store.putMessage(msg('r', { retain: true, qos: 1 }));
      store.setRetained('r', id);
      store.enqueue('c1', entry(1, id));
      store.setRetained('r', null);
      expect(store.messageCount()).toBe(1);
      expect(store.loadQueue('c1')[0]?.message.topic).toBe('r');
      store.dequeue('c1', 1);
      expect(store.messageCount()).toBe(0);
    });

    // --------------------------------------------------------------------------------------------
    // Messages and queues

    it('stores a message enqueued for three clients once and deletes it after the third dequeue', () => {
      const { store } = setup();
      const message = msg('fan/out', { qos: 1 });
      const id = store.putMessage(message);
      for (const clientId of ['c1', 'c2', 'c3']) store.enqueue(clientId, entry(10, id));
      expect(store.messageCount()).toBe(1);
      for (const clientId of ['c1', 'c2', 'c3']) {
        expect(store.loadQueue(clientId)).toEqual([{ ...entry(10, id), message }]);
      }
      store.dequeue('c1', 10);
      store.dequeue('c2', 10);
      expect(store.messageCount()).toBe(1);
      expect(store.loadQueue('c3').map((e) => e.messageId)).toEqual([id]);
      store.dequeue('c3', 10);
      expect(store.messageCount()).toBe(0);
      expect(store.loadQueue('c3')).toEqual([]);
    });

    it('hands out distinct message ids', () => {
      const { store } = setup();
      const ids = Array.from({ length: 50 }, (_, i) => store.putMessage(msg(`t/${i}`)));
      expect(new Set(ids).size).toBe(50);
    });

    it('loads a queue in seq order with each entry and its message', () => {
      const { store } = setup();
      const messages = [msg('q/0'), msg('q/1', { qos: 2 }), msg('q/2', { qos: 0 })];
      const ids = messages.map((m) => store.putMessage(m));
      const entries: QueueEntry[] = [
        { seq: 5, messageId: ids[0]!, qos: 1, state: 'queued', retain: false },
        { seq: 2, messageId: ids[1]!, qos: 2, state: 'sent', packetId: 17, retain: true, subscriptionIds: [3, 4] },
        { seq: 9, messageId: ids[2]!, qos: 0, state: 'queued', retain: false },
      ];
      for (const e of entries) store.enqueue('c1', e);
      const expected: LoadedQueueEntry[] = [
        { ...entries[1]!, message: messages[1]! },
        { ...entries[0]!, message: messages[0]! },
        { ...entries[2]!, message: messages[2]! },
      ];
      expect(store.loadQueue('c1')).toEqual(expected);
      expect(store.loadQueue('nobody')).toEqual([]);
    });

    it('dequeues one entry and leaves the rest of the queue and other queues alone', () => {
      const { store } = setup();
      const a = store.putMessage(msg('a'));
      const b = store.putMessage(msg('b'));
      store.enqueue('c1', entry(1, a));
      store.enqueue('c1', entry(2, b));
      store.enqueue('c2', entry(1, a));
      store.dequeue('c1', 1);
      store.dequeue('c1', 99);
      store.dequeue('nobody', 1);
      expect(store.loadQueue('c1').map((e) => e.seq)).toEqual([2]);
      expect(store.loadQueue('c2').map((e) => e.seq)).toEqual([1]);
      expect(store.messageCount()).toBe(2);
    });

    it('preserves queue order by seq across a reopen', () => {
      const { store, restart } = setup();
      const seqs = [1, 2, 3, 10, 11, 100, 101, 1000];
      for (const seq of seqs) store.enqueue('c1', entry(seq, store.putMessage(msg(`order/${seq}`))));
      store.dequeue('c1', 3);
      store.dequeue('c1', 100);
      store.enqueue('c1', entry(1001, store.putMessage(msg('order/1001'))));
      const expected = [1, 2, 10, 11, 101, 1000, 1001];
      const reopened = restart();
      const loaded = reopened.loadQueue('c1');
      expect(loaded.map((e) => e.seq)).toEqual(expected);
      expect(loaded.map((e) => e.message.topic)).toEqual(expected.map((seq) => `order/${seq}`));
    });

    it('persists queue entry state and packet id changes across a reopen', () => {
      const { store, restart } = setup();
      const id = store.putMessage(msg('flow', { qos: 2 }));
      store.enqueue('c1', entry(1, id, { qos: 2 }));
      store.enqueue('c1', entry(2, id, { qos: 1 }));
      store.enqueue('c1', entry(3, id, { qos: 2 }));
      store.updateQueueEntry('c1', 1, { state: 'sent', packetId: 42 });
      store.updateQueueEntry('c1', 1, { state: 'pubrec-received', packetId: 42 });
      store.updateQueueEntry('c1', 2, { state: 'sent', packetId: 65535 });
      const reopened = restart();
      expect(reopened.loadQueue('c1').map(({ seq, state, packetId }) => ({ seq, state, packetId }))).toEqual([
        { seq: 1, state: 'pubrec-received', packetId: 42 },
        { seq: 2, state: 'sent', packetId: 65535 },
        { seq: 3, state: 'queued', packetId: undefined },
      ]);
    });

    it('keeps the packet id when an update omits it', () => {
      const { store } = setup();
      store.enqueue('c1', entry(1, store.putMessage(msg('flow', { qos: 2 })), { qos: 2 }));
      store.updateQueueEntry('c1', 1, { state: 'sent', packetId: 8 });
      store.updateQueueEntry('c1', 1, { state: 'pubrec-received' });
      expect(store.loadQueue('c1')[0]).toMatchObject({ state: 'pubrec-received', packetId: 8 });
    });

    it('ignores updates of entries that are not queued', () => {
      const { store } = setup();
      store.enqueue('c1', entry(1, store.putMessage(msg('x'))));
      store.updateQueueEntry('c1', 2, { state: 'sent', packetId: 1 });
      store.updateQueueEntry('nobody', 1, { state: 'sent', packetId: 1 });
      expect(store.loadQueue('c1').map(({ seq, state }) => ({ seq, state }))).toEqual([{ seq: 1, state: 'queued' }]);
      expect(store.loadQueue('nobody')).toEqual([]);
    });

    // --------------------------------------------------------------------------------------------
    // Inbound QoS 2

    it('adds, removes and loads inbound QoS 2 packet ids per client', () => {
      const { store } = setup();
      expect(store.loadInboundQos2('c1')).toEqual([]);
      store.addInboundQos2('c1', 1);
      store.addInboundQos2('c1', 65535);
      store.addInboundQos2('c1', 300);
      store.addInboundQos2('c1', 300);
      store.addInboundQos2('c2', 1);
      store.removeInboundQos2('c1', 1);
      store.removeInboundQos2('c1', 12345);
      store.removeInboundQos2('nobody', 1);
      expect(sorted(store.loadInboundQos2('c1'))).toEqual([300, 65535]);
      expect(store.loadInboundQos2('c2')).toEqual([1]);
    });

    // --------------------------------------------------------------------------------------------
    // Round trips

    it('round-trips properties and payload bytes exactly', () => {
      const { store, restart } = setup();
      const payload = Buffer.from([0x00, 0xff, 0x80, 0x7f, 0x0a, 0x0d, 0xc3, 0x28, 0x00]);
      const message: StoredMessage = {
        topic: 'props/ünïcödé',
        payload,
        qos: 2,
        retain: false,
        properties: {
          payloadFormatIndicator: 0,
          messageExpiryInterval: 120,
          contentType: 'application/octet-stream; x=ü',
          responseTopic: 'reply/to/me',
          correlationData: Buffer.from([0x00, 0x01, 0xfe, 0xff]),
          subscriptionIdentifiers: [1, 268_435_455, 7],
          userProperties: [
            ['k', 'v1'],
            ['k', 'v2'],
            ['', ''],
            ['ключ', 'значение'],
          ],
        },
      };
      const empty = msg('props/empty', { payload: Buffer.alloc(0) });
      const id = store.putMessage(message);
      const emptyId = store.putMessage(empty);
      store.enqueue('c1', entry(1, id, { qos: 2 }));
      store.enqueue('c1', entry(2, emptyId));
      store.setRetained('props/ünïcödé', id);

      for (const s of [store, restart()]) {
        const [first, second] = s.loadQueue('c1');
        expect(first?.message).toEqual(message);
        expect(Buffer.isBuffer(first?.message.payload)).toBe(true);
        expect(first?.message.payload.equals(payload)).toBe(true);
        expect(Buffer.isBuffer(first?.message.properties?.correlationData)).toBe(true);
        expect(first?.message.properties?.correlationData?.toString('hex')).toBe('0001feff');
        expect(first?.message.properties?.userProperties).toEqual(message.properties?.userProperties);
        expect(second?.message.payload.length).toBe(0);
        expect(Buffer.isBuffer(second?.message.payload)).toBe(true);
        expect(second?.message.properties).toBeUndefined();
        expect(s.loadRetained()).toEqual([{ messageId: id, message }]);
      }
    });

    it('round-trips expiresAt and publisherId, and leaves them out when absent', () => {
      const { store, restart } = setup();
      const withBoth = msg('e/1', { expiresAt: 1_900_000_000_123, publisherId: 'pub-ü-1' });
      const withNeither = msg('e/2');
      store.enqueue('c1', entry(1, store.putMessage(withBoth)));
      store.enqueue('c1', entry(2, store.putMessage(withNeither)));
      for (const s of [store, restart()]) {
        const [a, b] = s.loadQueue('c1');
        expect(a?.message.expiresAt).toBe(1_900_000_000_123);
        expect(a?.message.publisherId).toBe('pub-ü-1');
        expect(b?.message.expiresAt).toBeUndefined();
        expect(b?.message.publisherId).toBeUndefined();
      }
    });

    it('round-trips sessions with wills, will properties and dueAt', () => {
      const { store, restart } = setup();
      const sessions: SessionRecord[] = [
        {
          clientId: 'delayed',
          protocolVersion: 5,
          expiryInterval: 300,
          disconnectedAt: 1_700_000_000_000,
          will: {
            topic: 'wills/delayed',
            payload: Buffer.from([0xde, 0xad, 0x00, 0xbe, 0xef]),
            qos: 1,
            retain: true,
            properties: {
              willDelayInterval: 30,
              contentType: 'text/plain',
              correlationData: Buffer.from([0x00]),
              userProperties: [['reason', 'gone']],
            },
            dueAt: 1_700_000_030_000,
          },
        },
        {
          clientId: 'plain',
          protocolVersion: 4,
          expiryInterval: 0xffffffff,
          will: { topic: 'wills/plain', payload: Buffer.alloc(0), qos: 0, retain: false },
        },
      ];
      for (const s of sessions) store.saveSession(s);
      for (const s of [store, restart()]) {
        const loaded = byClient(s.loadSessions());
        expect(loaded).toEqual(sessions);
        expect(Buffer.isBuffer(loaded[0]?.will?.payload)).toBe(true);
        expect(loaded[0]?.will?.payload.toString('hex')).toBe('dead00beef');
        expect(Buffer.isBuffer(loaded[0]?.will?.properties?.correlationData)).toBe(true);
        expect(loaded[1]?.will?.dueAt).toBeUndefined();
        expect(loaded[1]?.disconnectedAt).toBeUndefined();
      }
    });

    it('returns copies: mutating returned records does not change the store', () => {
      const { store } = setup();
      store.saveSession({ clientId: 'c1', protocolVersion: 5, expiryInterval: 1, will: msgWill() });
      store.saveSubscription(sub('c1', 'a/#'));
      const id = store.putMessage(msg('a/1', { properties: { userProperties: [['k', 'v']], correlationData: Buffer.from('cd') } }));
      store.enqueue('c1', entry(1, id, { subscriptionIds: [1] }));
      store.setRetained('a/1', id);
      store.addInboundQos2('c1', 5);

      const session = store.loadSessions()[0]!;
      session.expiryInterval = 999;
      session.will!.payload.fill(0);
      session.will!.topic = 'changed';
      store.loadSubscriptions()[0]!.qos = 0;
      const queued = store.loadQueue('c1')[0]!;
      queued.state = 'sent';
      queued.subscriptionIds!.push(2);
      queued.message.payload.fill(0);
      queued.message.properties!.userProperties![0]![1] = 'changed';
      queued.message.properties!.correlationData!.fill(0);
      store.loadRetained()[0]!.message.topic = 'changed';
      store.loadInboundQos2('c1').push(6);

      expect(store.loadSessions()).toEqual([{ clientId: 'c1', protocolVersion: 5, expiryInterval: 1, will: msgWill() }]);
      expect(store.loadSubscriptions()).toEqual([sub('c1', 'a/#')]);
      expect(store.loadQueue('c1')).toEqual([
        {
          ...entry(1, id, { subscriptionIds: [1] }),
          message: msg('a/1', { properties: { userProperties: [['k', 'v']], correlationData: Buffer.from('cd') } }),
        },
      ]);
      expect(store.loadRetained()[0]?.message.topic).toBe('a/1');
      expect(store.loadInboundQos2('c1')).toEqual([5]);
    });

    it('keeps its own copies: mutating records after writing them does not change the store', () => {
      const { store } = setup();
      const session: SessionRecord = { clientId: 'c1', protocolVersion: 5, expiryInterval: 1, will: msgWill() };
      store.saveSession(session);
      session.expiryInterval = 2;
      session.will!.payload.fill(0);
      const subscription = sub('c1', 'a/#');
      store.saveSubscription(subscription);
      subscription.qos = 0;
      const message = msg('a/1', { payload: Buffer.from('original'), properties: { userProperties: [['k', 'v']] } });
      const id = store.putMessage(message);
      message.payload.fill(0);
      message.properties!.userProperties![0]![1] = 'changed';
      const queueEntry = entry(1, id, { subscriptionIds: [1] });
      store.enqueue('c1', queueEntry);
      queueEntry.state = 'sent';
      queueEntry.subscriptionIds!.push(2);

      expect(store.loadSessions()).toEqual([{ clientId: 'c1', protocolVersion: 5, expiryInterval: 1, will: msgWill() }]);
      expect(store.loadSubscriptions()).toEqual([sub('c1', 'a/#')]);
      const [loaded] = store.loadQueue('c1');
      expect(loaded).toMatchObject({ state: 'queued', subscriptionIds: [1] });
      expect(loaded?.message.payload.toString()).toBe('original');
      expect(loaded?.message.properties?.userProperties).toEqual([['k', 'v']]);
    });

    // --------------------------------------------------------------------------------------------
    // Commits and restarts

    it('runs afterCommit effects once, in order, once the writes before them are committed', async () => {
      const { store, restart } = setup();
      const ran: string[] = [];
      store.saveSession({ clientId: 'first', protocolVersion: 5, expiryInterval: 10 });
      store.afterCommit(() => {
        // The write before this effect is visible to the store that committed it.
        expect(store.loadSessions().map((s) => s.clientId)).toContain('first');
        ran.push('a');
      });
      const id = store.putMessage(msg('commit/1', { qos: 1 }));
      store.enqueue('first', entry(1, id));
      store.afterCommit(() => ran.push('b'));
      store.afterCommit(() => ran.push('c'));
      store.flush();
      // Every effect registered before flush() has run by the time it returns.
      expect(ran).toEqual(['a', 'b', 'c']);
      store.flush();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(ran).toEqual(['a', 'b', 'c']);

      const reopened = restart();
      expect(reopened.loadSessions().map((s) => s.clientId)).toEqual(['first']);
      expect(reopened.loadQueue('first').map((e) => e.message.topic)).toEqual(['commit/1']);
      expect(ran).toEqual(['a', 'b', 'c']);
    });

    it('runs an afterCommit effect with no writes before it', async () => {
      const { store } = setup();
      let runs = 0;
      store.afterCommit(() => runs++);
      store.flush();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(runs).toBe(1);
    });

    it('runs effects registered across several commits in registration order', async () => {
      const { store, restart } = setup();
      const ran: number[] = [];
      for (let turn = 0; turn < 3; turn++) {
        store.addInboundQos2('c1', turn + 1);
        store.afterCommit(() => ran.push(turn * 2));
        store.addInboundQos2('c1', turn + 100);
        store.afterCommit(() => ran.push(turn * 2 + 1));
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      store.flush();
      expect(ran).toEqual([0, 1, 2, 3, 4, 5]);
      expect(sorted(restart().loadInboundQos2('c1'))).toEqual([1, 2, 3, 100, 101, 102]);
    });

    it('everything written before a reopen is there after it', () => {
      const { store, restart } = setup();
      store.saveSession({ clientId: 'c1', protocolVersion: 5, expiryInterval: 100, disconnectedAt: 5 });
      store.saveSession({ clientId: 'c2', protocolVersion: 4, expiryInterval: 0xffffffff });
      store.saveSubscription(sub('c1', 'x/#', { qos: 2, subscriptionId: 3 }));
      store.saveSubscription(sub('c2', '$share/g/x/+'));
      const retained = store.putMessage(msg('x/r', { retain: true }));
      store.setRetained('x/r', retained);
      const queued = store.putMessage(msg('x/q', { qos: 2 }));
      store.enqueue('c1', entry(1, queued, { qos: 2 }));
      store.enqueue('c2', entry(4, queued, { qos: 1 }));
      store.updateQueueEntry('c1', 1, { state: 'sent', packetId: 9 });
      store.addInboundQos2('c2', 77);

      const before = snapshot(store, ['c1', 'c2']);
      const reopened = restart();
      expect(snapshot(reopened, ['c1', 'c2'])).toEqual(before);

      // The reopened store keeps working: new ids do not collide and refcounts carried over.
      const fresh = reopened.putMessage(msg('x/new'));
      expect([retained, queued]).not.toContain(fresh);
      reopened.enqueue('c1', entry(2, fresh));
      reopened.dequeue('c1', 1);
      reopened.dequeue('c2', 4);
      reopened.setRetained('x/r', null);
      expect(reopened.messageCount()).toBe(1);
      expect(reopened.loadQueue('c1').map((e) => e.message.topic)).toEqual(['x/new']);
    });

    it('a reopen after a reopen still has everything', () => {
      const { store, restart } = setup();
      store.saveSession({ clientId: 'c1', protocolVersion: 5, expiryInterval: 100 });
      const second = restart();
      second.saveSubscription(sub('c1', 'y/#'));
      const third = restart();
      expect(third.loadSessions().map((s) => s.clientId)).toEqual(['c1']);
      expect(third.loadSubscriptions()).toEqual([sub('c1', 'y/#')]);
    });

    it('rejects calls after close()', () => {
      const { store } = setup();
      store.close();
      expect(() => store.loadSessions()).toThrow();
      expect(() => store.saveSession({ clientId: 'c1', protocolVersion: 5, expiryInterval: 1 })).toThrow();
      expect(() => store.putMessage(msg('t'))).toThrow();
    });
  });
}

// ------------------------------------------------------------------------------------------------
// Builders and normalisers

function msg(topic: string, extra: Partial<StoredMessage> = {}): StoredMessage {
  return { topic, payload: Buffer.from(`payload of ${topic}`), qos: 1, retain: false, ...extra };
}

function msgWill(): NonNullable<SessionRecord['will']> {
  return { topic: 'will/t', payload: Buffer.from('bye'), qos: 1, retain: false, dueAt: 123 };
}

function sub(clientId: string, filter: string, extra: Partial<SubscriptionRecord> = {}): SubscriptionRecord {
  return { clientId, filter, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, ...extra };
}

function entry(seq: number, messageId: number, extra: Partial<QueueEntry> = {}): QueueEntry {
  return { seq, messageId, qos: 1, state: 'queued', retain: false, ...extra };
}

function byClient(sessions: SessionRecord[]): SessionRecord[] {
  return [...sessions].sort((a, b) => compare(a.clientId, b.clientId));
}

function bySubKey(subs: SubscriptionRecord[]): SubscriptionRecord[] {
  return [...subs].sort((a, b) => compare(a.clientId, b.clientId) || compare(a.filter, b.filter));
}

function byTopic<T extends { message: StoredMessage }>(items: T[]): T[] {
  return [...items].sort((a, b) => compare(a.message.topic, b.message.topic));
}

function sorted(values: number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function snapshot(store: Store, clientIds: string[]) {
  return {
    sessions: byClient(store.loadSessions()),
    subscriptions: bySubKey(store.loadSubscriptions()),
    retained: byTopic(store.loadRetained()),
    queues: clientIds.map((c) => store.loadQueue(c)),
    inbound: clientIds.map((c) => sorted(store.loadInboundQos2(c))),
    messageCount: store.messageCount(),
  };
}
