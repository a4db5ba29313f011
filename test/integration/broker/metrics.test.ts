/**
 * Prometheus /metrics (broker/prometheus.ts): scraped over node:http from a real broker; the values
 * must follow the traffic, the limits and the store commits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../../broker/broker.js';
import { SqliteStore } from '../../../broker/store/sqlite.js';
import { closeAllClients, collect, connectClient, startBroker, withTimeout, type TestBroker } from '../../helpers/broker.js';
import { httpRequest, metricTypes, sample, scrape } from '../../helpers/prometheus.js';
import { closeAllRawClients, connectRaw, openRawClient, rawConnectPacket } from '../../helpers/raw-client.js';

const cleanups: Array<() => void | Promise<void>> = [];

afterEach(async () => {
  await closeAllClients();
  closeAllRawClients();
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(options: Parameters<typeof startBroker>[0] = {}): Promise<TestBroker & { metricsPort: number }> {
  const t = await startBroker(options);
  cleanups.push(() => t.close());
  const address = t.broker.metricsAddress() ?? (await t.broker.listenMetrics(0, '127.0.0.1'));
  return { ...t, metricsPort: address.port };
}

/** A port that was free a moment ago (for options that take a fixed port, where 0 means off). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves when the broker has let go of `clientId` (its connection closed and detached). */
function disconnected(broker: Broker, clientId: string): Promise<void> {
  return withTimeout(
    new Promise<void>((resolve) => {
      const onGone = (id: string): void => {
        if (id !== clientId) return;
        broker.events.off('clientDisconnected', onGone);
        resolve();
      };
      broker.events.on('clientDisconnected', onGone);
    }),
    5000,
    `the broker never saw ${clientId} disconnect`,
  );
}

const publish = (topic: string, qos: 0 | 1 | 2, extra: { retain?: boolean; packetId?: number } = {}) => ({
  type: 'publish' as const, topic, payload: Buffer.from(topic), qos, retain: extra.retain ?? false, dup: false,
  ...(extra.packetId !== undefined ? { packetId: extra.packetId } : {}),
});

/** Polls (bounded) until the condition holds. */
async function until(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition never held');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('GET /metrics', () => {
  it('serves the Prometheus text format with every broker metric, typed; other paths and methods are refused', async () => {
    const t = await start();
    const res = await httpRequest(t.metricsPort, '/metrics');
    expect(res.status).toBe(200);
    expect(res.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    const types = metricTypes(res.body);
    const expected: Record<string, string> = {
      mqttsim_build_info: 'gauge',
      mqttsim_uptime_seconds: 'gauge',
      mqttsim_connections_open: 'gauge',
      mqttsim_clients_connected: 'gauge',
      mqttsim_connections_accepted_total: 'counter',
      mqttsim_connections_rejected_total: 'counter',
      mqttsim_connect_timeouts_total: 'counter',
      mqttsim_keepalive_timeouts_total: 'counter',
      mqttsim_slow_consumer_disconnects_total: 'counter',
      mqttsim_rate_limited_total: 'counter',
      mqttsim_takeovers_total: 'counter',
      mqttsim_protocol_errors_total: 'counter',
      mqttsim_messages_received_total: 'counter',
      mqttsim_messages_sent_total: 'counter',
      mqttsim_bytes_received_total: 'counter',
      mqttsim_bytes_sent_total: 'counter',
      mqttsim_messages_dropped_total: 'counter',
      mqttsim_inflight_window_full_total: 'counter',
      mqttsim_publishers_paused_total: 'counter',
      mqttsim_wills_published_total: 'counter',
      mqttsim_sessions_expired_total: 'counter',
      mqttsim_sessions: 'gauge',
      mqttsim_queued_messages: 'gauge',
      mqttsim_queued_bytes: 'gauge',
      mqttsim_inflight_messages: 'gauge',
      mqttsim_retained_messages: 'gauge',
      mqttsim_subscriptions: 'gauge',
      mqttsim_store_messages: 'gauge',
      mqttsim_store_commit_duration_seconds: 'histogram',
      mqttsim_store_commit_writes: 'histogram',
      // Process metrics under their standard names.
      process_cpu_user_seconds_total: 'counter',
      nodejs_eventloop_lag_seconds: 'gauge',
    };
    for (const [name, type] of Object.entries(expected)) expect(types.get(name), name).toBe(type);
    expect(res.body).toMatch(/^mqttsim_build_info\{version="\d+\.\d+\.\d+[^"]*"\} 1$/m);

    expect((await httpRequest(t.metricsPort, '/')).status).toBe(404);
    expect((await httpRequest(t.metricsPort, '/metrics', 'POST')).status).toBe(405);
    const head = await httpRequest(t.metricsPort, '/metrics', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('values follow the traffic: connections, messages by QoS, bytes, queues, inflight, drops, retained, subscriptions, protocol errors', async () => {
    const t = await start({ maxQueuedMessages: 2 });
    const before = (await scrape(t.metricsPort)).samples;
    for (const key of ['mqttsim_clients_connected', 'mqttsim_connections_open', 'mqttsim_sessions', 'mqttsim_bytes_received_total', 'mqttsim_messages_received_total{qos="1"}', 'mqttsim_messages_dropped_total{reason="queue_full"}']) {
      expect(sample(before, key), key).toBe(0);
    }

    // A persistent subscriber that never acknowledges and takes 2 messages in flight (MQTT 5 Receive Maximum).
    const { client: sub } = await connectRaw(
      t.port,
      { clientId: 'm-sub', clean: false, properties: { sessionExpiryInterval: 3600, receiveMaximum: 2 } },
      { autoAck: false },
    );
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'm/#', qos: 2 }] });
    await sub.waitFor('suback');
    const pub = await connectClient(t.url, { protocolVersion: 5, clientId: 'm-pub' });
    await pub.publishAsync('m/a', 'a', { qos: 0 });
    await pub.publishAsync('m/b', 'b', { qos: 1 });
    await pub.publishAsync('m/c', 'c', { qos: 2 });
    await pub.publishAsync('m/d', 'd', { qos: 1 }); // the window is full: m/d waits in the queue
    await pub.publishAsync('m/r', 'retained', { qos: 0, retain: true });
    await sub.waitForCount('publish', 4);
    await sub.ping();
    expect(sub.all('publish').map((p) => p.topic)).toEqual(['m/a', 'm/b', 'm/c', 'm/r']);

    const online = (await scrape(t.metricsPort)).samples;
    expect(sample(online, 'mqttsim_clients_connected')).toBe(2);
    expect(sample(online, 'mqttsim_connections_open')).toBe(2);
    expect(sample(online, 'mqttsim_connections_accepted_total')).toBe(2);
    expect(sample(online, 'mqttsim_sessions')).toBe(2);
    expect(sample(online, 'mqttsim_subscriptions')).toBe(1);
    expect(sample(online, 'mqttsim_retained_messages')).toBe(1);
    expect([0, 1, 2].map((q) => sample(online, `mqttsim_messages_received_total{qos="${q}"}`))).toEqual([2, 2, 1]);
    expect([0, 1, 2].map((q) => sample(online, `mqttsim_messages_sent_total{qos="${q}"}`))).toEqual([2, 1, 1]);
    expect(sample(online, 'mqttsim_inflight_messages')).toBe(2);
    expect(sample(online, 'mqttsim_queued_messages')).toBe(1);
    expect(sample(online, 'mqttsim_queued_bytes')).toBe(1);
    expect(sample(online, 'mqttsim_inflight_window_full_total')).toBe(1);
    expect(sample(online, 'mqttsim_bytes_received_total')).toBeGreaterThan(0);
    expect(sample(online, 'mqttsim_bytes_sent_total')).toBeGreaterThan(0);

    // Offline: the session keeps its inflight and queued messages; over maxQueuedMessages one is dropped.
    const gone = disconnected(t.broker, 'm-sub');
    sub.destroy();
    await gone;
    await pub.publishAsync('m/e', 'e', { qos: 1 });
    await pub.publishAsync('m/f', 'f', { qos: 1 });

    // A protocol error: a second CONNECT on one connection [MQTT-3.1.0-2].
    const { client: bad } = await connectRaw(t.port, { clientId: 'm-bad' });
    const badGone = disconnected(t.broker, 'm-bad');
    bad.send(rawConnectPacket({ clientId: 'm-bad' }));
    expect((await bad.waitFor('disconnect')).reasonCode).toBe(0x82);
    await badGone;

    const offline = (await scrape(t.metricsPort)).samples;
    expect(sample(offline, 'mqttsim_clients_connected')).toBe(1);
    expect(sample(offline, 'mqttsim_sessions')).toBe(2);
    expect(sample(offline, 'mqttsim_inflight_messages')).toBe(2);
    expect(sample(offline, 'mqttsim_queued_messages')).toBe(2);
    expect(sample(offline, 'mqttsim_messages_dropped_total{reason="queue_full"}')).toBe(1);
    expect(sample(offline, 'mqttsim_messages_dropped_total{reason="expired"}')).toBe(0);
    expect(sample(offline, 'mqttsim_protocol_errors_total{reason_code="0x82"}')).toBe(1);
    expect(sample(offline, 'mqttsim_bytes_received_total')).toBeGreaterThan(sample(online, 'mqttsim_bytes_received_total'));
    expect(sample(offline, 'mqttsim_connections_accepted_total')).toBe(3);
  });

  it('limit hits: rejected connections by reason, connect timeouts, rate-limited clients', async () => {
    const clock = { t: 5_000_000 };
    const t = await start({ maxConnections: 1, connectTimeout: 0.2, publishRateLimit: 1, clock: { now: () => clock.t } });
    // The one slot: a connection that never sends CONNECT, closed by the connect timeout once the
    // broker's (injected) clock passes it.
    const idle = await openRawClient(t.port);
    await until(() => t.broker.core.connections.size === 1);
    clock.t += 1_000;
    await idle.waitClosed();
    // The slot again: a client that publishes faster than 1/s (clock frozen), disconnected with 0x96 ...
    const left = disconnected(t.broker, 'fast');
    const { client: fast } = await connectRaw(t.port, { clientId: 'fast' });
    // ... while it holds the slot, a second connection is refused on accept.
    const over = await openRawClient(t.port);
    await over.waitClosed();
    fast.send(publish('rate/1', 0));
    fast.send(publish('rate/2', 0));
    expect((await fast.waitFor('disconnect')).reasonCode).toBe(0x96);
    await left;
    // Refused by CONNACK (3.1.1: an empty client id needs a clean session).
    const { connack } = await connectRaw(t.port, { clientId: '', clean: false, protocolVersion: 4 });
    expect(connack.reasonCode).toBe(2);

    const { samples } = await scrape(t.metricsPort);
    expect(sample(samples, 'mqttsim_connect_timeouts_total')).toBe(1);
    expect(sample(samples, 'mqttsim_connections_rejected_total{reason="max_connections"}')).toBe(1);
    expect(sample(samples, 'mqttsim_connections_rejected_total{reason="connack_refused"}')).toBe(1);
    expect(sample(samples, 'mqttsim_connections_rejected_total{reason="shutting_down"}')).toBe(0);
    expect(sample(samples, 'mqttsim_rate_limited_total')).toBe(1);
    expect([...samples.keys()].filter((k) => k.startsWith('mqttsim_protocol_errors_total'))).toEqual([]);
  });

  it('store commits fill the commit histograms (SqliteStore onCommit); every commit is observed once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-metrics-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    let broker: Broker | undefined;
    const store = SqliteStore.open({ dataDir: dir, onCommit: (ms, writes) => broker?.observeStoreCommit(ms, writes) });
    cleanups.push(() => store.close());
    const t = await start({ store });
    broker = t.broker;

    const empty = (await scrape(t.metricsPort)).samples;
    expect(sample(empty, 'mqttsim_store_commit_duration_seconds_count')).toBe(0);

    const sub = await connectClient(t.url, { protocolVersion: 5, clientId: 'c-sub', clean: false, properties: { sessionExpiryInterval: 3600 } });
    const inbox = collect(sub);
    await sub.subscribeAsync('c/#', { qos: 1 });
    const pub = await connectClient(t.url, { protocolVersion: 5, clientId: 'c-pub' });
    for (let i = 0; i < 5; i++) await pub.publishAsync('c/x', `m${i}`, { qos: 1 });
    await pub.publishAsync('c/retained', 'r', { qos: 1, retain: true });
    await inbox.waitFor(6);
    // The subscriber's PUBACKs precede this SUBSCRIBE on its connection, and a SUBACK leaves only after
    // the commit: once it is back, every write of this test is committed and observed.
    await sub.subscribeAsync('c/settle', { qos: 0 });

    const { samples } = await scrape(t.metricsPort);
    const count = sample(samples, 'mqttsim_store_commit_duration_seconds_count');
    expect(count).toBeGreaterThanOrEqual(6);
    expect(count).toBe(store.commitCount);
    expect(sample(samples, 'mqttsim_store_commit_duration_seconds_bucket{le="+Inf"}')).toBe(count);
    expect(sample(samples, 'mqttsim_store_commit_duration_seconds_sum')).toBeGreaterThan(0);
    expect(sample(samples, 'mqttsim_store_commit_writes_count')).toBe(count);
    expect(sample(samples, 'mqttsim_store_commit_writes_sum')).toBeGreaterThanOrEqual(count);
    expect(sample(samples, 'mqttsim_store_commit_writes_bucket{le="1"}')).toBeLessThanOrEqual(count);
    expect(sample(samples, 'mqttsim_store_messages')).toBe(store.messageCount());
    expect(sample(samples, 'mqttsim_retained_messages')).toBe(1);
  });

  it('metricsPort: listen() starts the endpoint on the broker host; close() stops it', async () => {
    const port = await freePort();
    const t = await start({ metricsPort: port });
    expect(t.broker.metricsAddress()).toMatchObject({ address: '127.0.0.1', port });
    await connectClient(t.url, { clientId: 'mp' });
    expect(sample((await scrape(port)).samples, 'mqttsim_clients_connected')).toBe(1);
    await t.close();
    expect(t.broker.metricsAddress()).toBeNull();
    await expect(httpRequest(port, '/metrics')).rejects.toThrow(/ECONNREFUSED/);
  });

  it('each broker has its own registry: two in one process do not mix', async () => {
    const a = await start();
    const b = await start();
    await connectClient(a.url, { clientId: 'only-a' });
    expect(sample((await scrape(a.metricsPort)).samples, 'mqttsim_clients_connected')).toBe(1);
    expect(sample((await scrape(b.metricsPort)).samples, 'mqttsim_clients_connected')).toBe(0);
  });
});
