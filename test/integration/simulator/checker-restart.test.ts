/**
 * The delivery checker against brokers that forget on restart, and against ours under the harshest
 * network: runScenario in-process, shards in worker threads (the built worker).
 *
 * - Our broker with `--persistence memory`, SIGKILLed and restarted on the same port, forgets
 *   everything: each persistent subscriber is owed its session (one `session-lost` each, and what was
 *   acknowledged meanwhile is lost), and a clean subscriber that resubscribes misses the retained value
 *   of each of K topics whose publishers are cut off until after it resubscribed (K `retained`).
 * - A proxy that forgets the retained values of K topics (sessions kept) is reported with exactly K.
 * - The embedded reference broker (sqlite) under 3G links failing every few seconds plus a
 *   broker kill: no violation at all, with reconnects and link faults having happened.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runScenario } from '../../../simulator/orchestrator/run.js';
import type { RunResult } from '../../../simulator/report/run-result.js';
import { parseScenario } from '../../../simulator/scenario/load.js';
import { startBroker, type TestBroker } from '../../helpers/broker.js';
import { requireBuilt } from '../../helpers/cli-process.js';
import { forgetRetained, startFaultyProxy, type FaultyProxy } from '../../helpers/faulty-proxy.js';
import { quietReporter, workerFile } from '../../helpers/run-scenario.js';

beforeAll(() => requireBuilt('simulator/shard/worker.js'));

let broker: TestBroker | undefined;
let proxy: FaultyProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  await broker?.close();
  proxy = undefined;
  broker = undefined;
});

const silent = quietReporter();

describe('delivery checker: brokers that forget on restart', () => {
  it('a memory broker killed and restarted: one session-lost per persistent subscriber, K retained for K forgotten topics', async () => {
    const K = 3;
    const scenario = parseScenario(`
name: forgetful
phases: { rampUp: 300ms, steady: 6s }
drain: 3s
x-device: &device
  session: { clean: false, expiry: 5m }
  reconnect: { initialDelay: 50ms, maxDelay: 300ms }
fleets:
  - name: state
    <<: *device
    count: ${K}
    publish: { topic: "mem/state/{id}", qos: 1, retain: true, every: 200ms }
  - name: live
    <<: *device
    count: 4
    publish: { topic: "mem/live/{id}", qos: 1, every: 100ms }
consumers:
  - name: keep
    <<: *device
    count: 2
    subscribe: [{ topic: "mem/live/#", qos: 1 }]
  - name: watch
    reconnect: { initialDelay: 50ms, maxDelay: 300ms }
    subscribe: [{ topic: "mem/state/#", qos: 1 }]
chaos:
  # The retained publishers are cut off before the kill until well after watch has resubscribed.
  - { at: 1500ms, partition: state, duration: 3500ms }
  - { at: 2500ms, broker: kill, downtime: 300ms }
`);
    const { result } = await runScenario(scenario, { workers: 2, reporter: silent, reportDir: null, workerFile, brokerPersistence: 'memory' });
    expect(result.outcome).toBe('completed');
    expect(result.chaos.map((c) => [c.action, c.outcome])).toEqual([['partition', 'ok'], ['broker-kill', 'ok']]);
    const c = result.checker!;
    expect(c.verdict).toBe('fail');
    expect(c.violations.byKind['session-lost']).toBe(2);
    expect(c.subscribers['keep']!.byKind!['session-lost']).toBe(2);
    expect(c.sessions).toMatchObject({ forgotten: 2, resumed: 0 });
    expect(c.violations.byKind.retained).toBe(K);
    expect(c.subscribers['watch']!.byKind).toMatchObject({ retained: K, 'session-lost': 0, lost: 0 });
    expect(c.retained).toMatchObject({ missing: K, stale: 0 });
    // The lost messages fill the examples; the first retained one is kept all the same.
    const retained = c.examples.filter((e) => e.kind === 'retained');
    expect(retained.length).toBeGreaterThanOrEqual(1);
    expect(retained[0]).toMatchObject({ subscriberClientId: 'watch-0', qos: 1 });
    expect(retained[0]!.topic).toMatch(/^mem\/state\/state-[0-2]$/);
    // The gap was owed to the persistent subscribers: what they missed is lost, nothing indeterminate.
    // (How many depends on whether publishers got through before the subscribers resubscribed.)
    const keep = c.subscribers['keep']!.byQos[1];
    expect(keep.indeterminate).toBe(0);
    expect(c.violations.byKind.lost).toBe(keep.lost);
    // The clean consumer is owed nothing across its gap.
    expect(c.subscribers['watch']!.byQos[1].lost).toBe(0);
  }, 30_000);

  it('a broker that forgets the retained values of K topics (sessions kept): exactly K retained violations', async () => {
    const K = 2;
    broker = await startBroker();
    const forgotten = (topic: string): boolean => topic === 'ret/state/state-1' || topic === 'ret/state/state-3';
    const policy = forgetRetained(forgotten);
    proxy = await startFaultyProxy({ host: '127.0.0.1', port: broker.port }, policy);
    const scenario = parseScenario(`
name: forget-retained
target: ${broker.url}
phases: { rampUp: 300ms, steady: 4s }
drain: 3s
fleets:
  - name: state
    count: 4
    session: { clean: false, expiry: 5m }
    publish: { topic: "ret/state/{id}", qos: 1, retain: true, every: 300ms }
consumers:
  - name: watch
    target: ${proxy.url}
    reconnect: { initialDelay: 50ms, maxDelay: 300ms }
    subscribe: [{ topic: "ret/state/#", qos: 1 }]
  - name: keep
    session: { clean: false, expiry: 5m }
    reconnect: { initialDelay: 50ms, maxDelay: 300ms }
    subscribe: [{ topic: "ret/state/#", qos: 1 }]
chaos:
  - { at: 2500ms, reconnectStorm: watch }
  - { at: 2500ms, reconnectStorm: keep }
`);
    const { result } = await runScenario(scenario, { workers: 2, reporter: silent, reportDir: null, workerFile });
    expect(result.outcome).toBe('completed');
    expect(policy.applied).toBe(K);
    const c = result.checker!;
    expect(c.violations.byKind).toEqual({ lost: 0, duplicated: 0, reordered: 0, retained: K, 'session-lost': 0 });
    expect(c.subscribers['watch']!.violations).toBe(K);
    expect(c.retained).toMatchObject({ missing: K, stale: 0 });
    // keep resumed its session: no new SUBSCRIBE, no replay, nothing to judge; watch judged all four topics.
    expect(c.sessions).toMatchObject({ owedReconnects: 1, resumed: 1, forgotten: 0 });
    expect(c.retained!.judged).toBe(4);
  }, 30_000);
});

describe('delivery checker: our broker under the harshest network', () => {
  it('3G links failing every ~3 s plus a broker kill, persistent QoS 1/2 sessions: zero violations', async () => {
    const scenario = parseScenario(`
name: harsh
# The consumer's first link failure comes 3.2 s after it starts connecting (the schedule depends on the
# seed alone): it subscribes before it, as a consumer must (a failure during prepare aborts the run).
seed: 7
phases: { rampUp: 500ms, steady: 7s }
drain: 3s
networks:
  harsh: { preset: cellular-3g, disconnects: { mtbf: 3s, downtime: 200ms..1s } }
x-device: &device
  session: { clean: false, expiry: 10m }
  keepalive: 2s
  reconnect: { initialDelay: 50ms, maxDelay: 500ms }
  network: harsh
fleets:
  - name: q1
    <<: *device
    count: 6
    publish: { topic: "harsh/q1/{id}", qos: 1, every: 100ms }
  - name: q2
    <<: *device
    count: 4
    publish: { topic: "harsh/q2/{id}", qos: 2, every: 200ms }
  - name: state
    <<: *device
    count: 2
    publish: { topic: "harsh/state/{id}", qos: 1, retain: true, every: 500ms }
consumers:
  - name: c
    <<: *device
    inflight: 100
    subscribe: [{ topic: "harsh/q1/#", qos: 1 }, { topic: "harsh/q2/#", qos: 2 }, { topic: "harsh/state/#", qos: 1 }]
chaos:
  - { at: 3s, broker: kill, downtime: 500ms }
`);
    const { result } = await runScenario(scenario, { workers: 2, reporter: silent, reportDir: null, workerFile });
    expect(result.outcome).toBe('completed');
    expect(result.chaos[0]).toMatchObject({ action: 'broker-kill', outcome: 'ok' });
    const t = result.totals;
    expect(t.reconnects).toBeGreaterThan(12);
    expect(t.faults?.disconnects ?? 0).toBeGreaterThan(0);
    expect(result.fleets['c']!.reconnects).toBeGreaterThanOrEqual(1);
    const c = result.checker!;
    expect(c.examples).toEqual([]);
    expect(c.violations.total).toBe(0);
    expect(c.byQos[1].lost).toBe(0);
    expect(c.byQos[2].lost).toBe(0);
    expect(c.byQos[2].duplicated).toBe(0);
    expect(c.byQos[1].delivered).toBeGreaterThan(200);
    expect(c.byQos[2].delivered).toBeGreaterThan(20);
    expect(c.sessions!.owedReconnects).toBeGreaterThanOrEqual(1);
    expect(c.sessions!.forgotten).toBe(0);
    expect(c.verdict).toBe('pass');
  }, 30_000);
});
