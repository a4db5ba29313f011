/**
 * The engine end to end in-process: runScenario against a real broker in this process, shards in real
 * worker threads (the built worker), so the test can act on the broker mid-run.
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

describe('runScenario (in-process broker, worker-thread shards)', () => {
  it('binds devices to the pool of source addresses, round-robin', async () => {
    const seen = new Map<string, string>();
    broker = await startBroker({
      authenticate: (req) => {
        seen.set(req.clientId, req.remoteAddress ?? '?');
        return true;
      },
    });
    const scenario = parseScenario(`
name: pools
target: ${broker.url}
phases: { rampUp: 500ms, steady: 1s }
drain: 2s
fleets:
  - name: s
    count: 6
    sourceAddresses: [127.0.0.2, 127.0.0.3]
    publish: { topic: "p/{id}", qos: 1, every: 200ms }
`);
    const { result } = await runScenario(scenario, { workers: 2, reporter: quietReporter(), reportDir: null, workerFile });
    expect(result.outcome).toBe('completed');
    expect(result.totals.connects).toBe(6);
    const byDevice = [...Array(6).keys()].map((i) => seen.get(`s-${i}`)?.replace(/^::ffff:/, ''));
    expect(byDevice).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.2', '127.0.0.3', '127.0.0.2', '127.0.0.3']);
  });

  it('reconnects every device after the broker drops all connections, resumes sessions, and loses no acknowledged QoS 1 message', async () => {
    broker = await startBroker();
    const scenario = parseScenario(`
name: resume
target: ${broker.url}
phases: { rampUp: 500ms, steady: 5s }
drain: 5s
fleets:
  - name: s
    count: 20
    session: { clean: false, expiry: 5m }
    reconnect: { initialDelay: 50ms, maxDelay: 500ms }
    publish: { topic: "r/{id}", qos: 1, every: 100ms }
consumers:
  - name: c
    session: { clean: false, expiry: 5m }
    reconnect: { initialDelay: 50ms, maxDelay: 500ms }
    subscribe: [{ topic: "r/#", qos: 1 }]
`);
    let dropped = false;
    const b = broker;
    const reporter = quietReporter({
      point: (p) => {
        // Once everyone is connected and messages flow, cut every connection once.
        if (!dropped && p.connected === 21 && p.publishedPerSec > 0) {
          dropped = true;
          b.broker.dropAllConnections();
        }
      },
    });
    const { result } = await runScenario(scenario, { workers: 2, reporter, reportDir: null, workerFile });
    expect(dropped).toBe(true);
    const t = result.totals;
    expect(t.reconnects).toBeGreaterThanOrEqual(21);
    expect(t.disconnects.server + t.disconnects.error).toBeGreaterThanOrEqual(21);
    // Every QoS 1 publish was eventually acknowledged (resent with DUP after the reconnect)...
    expect(t.acknowledged[1]).toBe(t.published[1]);
    expect(result.ledger.acknowledged[1]).toBe(t.published[1]);
    // ...and the persistent consumer received every acknowledged message exactly once or more.
    expect(result.ledger.received[1]).toBe(result.ledger.acknowledged[1]);
    expect(result.latency['reconnect']!.count).toBeGreaterThanOrEqual(21);
  }, 40_000);
});
