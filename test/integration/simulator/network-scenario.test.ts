/**
 * A scenario whose sensors sit on a flaky network (frequent failures of every kind, short downtimes):
 * run in-process against the reference broker with worker-thread shards (the built worker). Devices
 * reconnect, resume their sessions and get every QoS 1 message acknowledged; the link events are counted.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runScenario } from '../../../simulator/orchestrator/run.js';
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

const silent = quietReporter();

describe('a fleet on a flaky network', () => {
  it('reconnects through failures and downtimes and gets every QoS 1 publish acknowledged', async () => {
    broker = await startBroker();
    const scenario = parseScenario(`
name: flaky
target: ${broker.url}
seed: 5
phases: { rampUp: 500ms, steady: 5500ms }
drain: 15s
networks:
  flaky:
    preset: lan
    latency: 1ms..4ms
    maxSegment: 64
    disconnects: { mtbf: 2s, downtime: 200ms..500ms }
    slowClose: 100ms..300ms
fleets:
  - name: sensors
    count: 10
    network: flaky
    keepalive: 1s
    session: { clean: false, expiry: 5m }
    reconnect: { initialDelay: 50ms, maxDelay: 300ms }
    publish: { topic: "flaky/{id}", qos: 1, every: 200ms }
consumers:
  - name: historian
    session: { clean: false, expiry: 5m }
    subscribe: [{ topic: "flaky/#", qos: 1 }]
`);
    expect(scenario.fleets[0]!.network?.disconnects).toEqual({ mtbfMs: 2000, downtimeMs: { min: 200, max: 500 } });
    const { result } = await runScenario(scenario, { workers: 2, reporter: silent, reportDir: null, workerFile });
    expect(result.outcome).toBe('completed');
    const t = result.totals;
    expect(t.reconnects).toBeGreaterThan(0);
    expect(t.published[1]).toBeGreaterThan(0);
    expect(t.acknowledged[1]).toBe(t.published[1]);
    const sensors = result.fleets['sensors']!;
    expect(sensors.faults!.disconnects).toBeGreaterThan(0);
    expect(sensors.faults!.disconnects).toBe(sensors.faults!.resets + sensors.faults!.halfOpen + sensors.faults!.slowCloses);
    // The consumer is on the plain socket: no faults counted for it.
    expect(result.fleets['historian']!.faults!.disconnects).toBe(0);
    // Disconnects the profile injected are counted, not reported as errors of the run.
    expect(result.errors.filter((e) => / (disconnected|connect failed) \(/.test(e))).toEqual([]);
  }, 60_000);
});
