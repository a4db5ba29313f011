/**
 * The chaos timeline end to end in-process: runScenario against a real broker in this process (its
 * authenticate hook records every connection), shards in real worker threads (the built worker).
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runScenario } from '../../../simulator/orchestrator/run.js';
import type { RunEvent } from '../../../simulator/report/reporter.js';
import { parseScenario } from '../../../simulator/scenario/load.js';
import { startBroker, type TestBroker } from '../../helpers/broker.js';
import { requireBuilt } from '../../helpers/cli-process.js';
import { quietReporter, workerFile } from '../../helpers/run-scenario.js';

beforeAll(() => requireBuilt('simulator/shard/worker.js'));

let broker: TestBroker | undefined;
afterEach(async () => {
  await broker?.close();
  broker = undefined;
});

describe('chaos timeline (in-process broker, worker-thread shards)', () => {
  it('partitions one fleet and storms another: links cut without DISCONNECT, no connection during the partition, every QoS 1 publish acknowledged', async () => {
    /** Wall-clock times of every CONNECT the broker authenticated, per client id. */
    const connects = new Map<string, number[]>();
    broker = await startBroker({
      authenticate: (req) => {
        const list = connects.get(req.clientId) ?? [];
        list.push(Date.now());
        connects.set(req.clientId, list);
        return true;
      },
    });
    const scenario = parseScenario(`
name: chaos
target: ${broker.url}
phases: { rampUp: 500ms, steady: 5s }
drain: 5s
x-device: &device
  count: 10
  session: { clean: false, expiry: 5m }
  reconnect: { initialDelay: 50ms, maxDelay: 500ms }
fleets:
  - name: cut
    <<: *device
    will: { topic: "will/{id}", qos: 1 }
    publish: { topic: "cut/{id}", qos: 1, every: 100ms }
  - name: stormy
    <<: *device
    publish: { topic: "stormy/{id}", qos: 1, every: 100ms }
consumers:
  - name: c
    session: { clean: false, expiry: 5m }
    reconnect: { initialDelay: 50ms, maxDelay: 500ms }
    subscribe: [{ topic: "cut/#", qos: 1 }, { topic: "stormy/#", qos: 1 }, { topic: "will/#", qos: 1 }]
chaos:
  - { at: 1500ms, partition: cut, duration: 2s }
  - { at: 2s, reconnectStorm: stormy }
`);
    const events: RunEvent[] = [];
    const { result } = await runScenario(scenario, { workers: 2, reporter: quietReporter({ event: (e) => events.push(e) }), reportDir: null, workerFile });
    expect(result.outcome).toBe('completed');

    // Both actions ran and are in run.json, in start order.
    expect(result.chaos.map((c) => [c.action, c.outcome])).toEqual([['partition', 'ok'], ['reconnect-storm', 'ok']]);
    const partition = result.chaos[0]!;
    expect(partition.endMs! - partition.atMs).toBe(2000);
    expect(events.some((e) => e.message.startsWith('chaos: partition of cut'))).toBe(true);
    expect(events.some((e) => e.message.startsWith('chaos: reconnect storm of stormy'))).toBe(true);

    // Every device of both fleets lost its link once (a socket error, not a DISCONNECT) and came back.
    const cut = result.fleets['cut']!;
    const stormy = result.fleets['stormy']!;
    expect(cut.disconnects.error).toBeGreaterThanOrEqual(10);
    expect(cut.reconnects).toBeGreaterThanOrEqual(10);
    expect(stormy.disconnects.error).toBeGreaterThanOrEqual(10);
    expect(stormy.reconnects).toBeGreaterThanOrEqual(10);
    expect(result.fleets['c']!.reconnects).toBe(0);
    // The partitioned devices did not say DISCONNECT, so the broker published their wills (unstamped: foreign).
    expect(result.fleets['c']!.foreign).toBeGreaterThanOrEqual(10);

    // No device of the partitioned fleet connected while it was partitioned; each connected again after.
    const epoch = Date.parse(result.timelineStartedAt!);
    const from = epoch + partition.atMs;
    const until = epoch + partition.endMs!;
    for (let i = 0; i < 10; i++) {
      const times = connects.get(`cut-${i}`) ?? [];
      expect(times.filter((t) => t >= from && t < until), `cut-${i} connected during the partition`).toEqual([]);
      expect(times.some((t) => t >= until), `cut-${i} never reconnected after the partition`).toBe(true);
    }

    // Publishes queued during the partition went out after it: every QoS 1 publish was acknowledged.
    const t = result.totals;
    expect(t.published[1]).toBeGreaterThan(0);
    expect(t.acknowledged[1]).toBe(t.published[1]);
    expect(result.ledger.received[1]).toBe(result.ledger.acknowledged[1]);
    expect(result.errors).toEqual([]);
  }, 40_000);
});
