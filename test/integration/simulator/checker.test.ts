/**
 * The delivery checker end to end: runScenario against an in-process broker, shards in worker threads
 * (the built worker). A healthy run reports nothing lost or duplicated; a faulty proxy between the
 * consumer and the broker that misbehaves on exactly K messages is reported with exactly K.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { PublishPacket } from '../../../protocol/packets.js';
import { runScenario } from '../../../simulator/orchestrator/run.js';
import type { RunResult } from '../../../simulator/report/run-result.js';
import { parseScenario } from '../../../simulator/scenario/load.js';
import { readStamp } from '../../../simulator/verify/stamp.js';
import { startBroker, type TestBroker } from '../../helpers/broker.js';
import { requireBuilt } from '../../helpers/cli-process.js';
import { dropPublishes, duplicateQos2, startFaultyProxy, swapPublishes, type FaultyProxy, type ProxyPolicy } from '../../helpers/faulty-proxy.js';
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

/** QoS 1 and QoS 2 sensors; one consumer that reaches the broker at `consumerUrl` (the proxy or the broker itself). */
function scenario(brokerUrl: string, consumerUrl: string): string {
  return `
name: checker-e2e
target: ${brokerUrl}
phases: { rampUp: 300ms, steady: 3s }
drain: 3s
fleets:
  - name: q1
    count: 4
    publish: { topic: "chk/q1/{id}", qos: 1, every: 40ms }
  - name: q2
    count: 2
    publish: { topic: "chk/q2/{id}", qos: 2, every: 40ms }
consumers:
  - name: c
    target: ${consumerUrl}
    subscribe: [{ topic: "chk/q1/#", qos: 1 }, { topic: "chk/q2/#", qos: 2 }]
`;
}

/**
 * Messages well inside the consumer's subscription: at least 1.5 s after the first (the checker's 1 s
 * margin around the SUBACK, which lands just before the timeline starts).
 */
const midRun = (p: PublishPacket): boolean => (readStamp(p.payload)?.seq ?? 0) >= 40;

async function runThrough(policy: ProxyPolicy | null): Promise<RunResult> {
  broker = await startBroker();
  if (policy !== null) proxy = await startFaultyProxy({ host: '127.0.0.1', port: broker.port }, policy);
  const s = parseScenario(scenario(broker.url, proxy?.url ?? broker.url));
  const { result } = await runScenario(s, { workers: 2, reporter: silent, reportDir: null, workerFile });
  expect(result.outcome).toBe('completed');
  return result;
}

describe('delivery checker (runScenario, in-process broker)', () => {
  it('reports nothing lost or duplicated for a healthy run, and every acknowledged message delivered', async () => {
    const r = await runThrough(null);
    const c = r.checker!;
    expect(c.verdict).toBe('pass');
    expect(c.violations.total).toBe(0);
    expect(c.byQos[1].lost + c.byQos[2].lost).toBe(0);
    expect(c.byQos[2].duplicated).toBe(0);
    expect(c.byQos[1].delivered).toBe(r.ledger.acknowledged[1]);
    expect(c.byQos[2].delivered).toBe(r.ledger.acknowledged[2]);
    expect(c.byQos[1].delivered).toBeGreaterThan(200);
    expect(c.checkMs).toBeLessThan(1000);
  }, 30_000);

  it('reports exactly K lost when the path to the subscriber swallows K acknowledged messages', async () => {
    const K = 7;
    const policy = dropPublishes(K, (p) => p.qos === 1 && midRun(p));
    const r = await runThrough(policy);
    expect(policy.applied).toBe(K);
    const c = r.checker!;
    expect(c.byQos[1].lost).toBe(K);
    expect(c.subscribers['c']!.byQos[1].lost).toBe(K);
    expect(c.violations.byKind).toEqual({ lost: K, duplicated: 0, reordered: 0, retained: 0, 'session-lost': 0 });
    expect(c.verdict).toBe('fail');
    expect(c.examples.filter((e) => e.kind === 'lost')).toHaveLength(K);
    expect(c.examples[0]).toMatchObject({ subscriberClientId: 'c-0', qos: 1 });
    // Everything the broker acknowledged is accounted for: delivered + lost (+ indeterminate, none here).
    expect(c.byQos[1].delivered + c.byQos[1].lost + c.byQos[1].indeterminate).toBe(r.ledger.acknowledged[1]);
  }, 30_000);

  it('reports exactly K duplicated QoS 2 messages when the path delivers K of them twice', async () => {
    const K = 3;
    const policy = duplicateQos2(K);
    const r = await runThrough(policy);
    expect(policy.applied).toBe(K);
    const c = r.checker!;
    expect(c.byQos[2].duplicated).toBe(K);
    expect(c.violations.byKind).toEqual({ lost: 0, duplicated: K, reordered: 0, retained: 0, 'session-lost': 0 });
    expect(c.byQos[2].lost).toBe(0);
  }, 30_000);

  it('reports exactly K reordered messages when the path swaps K pairs', async () => {
    const K = 4;
    const policy = swapPublishes(K, (p) => p.qos === 1 && midRun(p));
    const r = await runThrough(policy);
    expect(policy.applied).toBe(K);
    const c = r.checker!;
    expect(c.byQos[1].reordered).toBe(K);
    expect(c.violations.byKind).toEqual({ lost: 0, duplicated: 0, reordered: K, retained: 0, 'session-lost': 0 });
  }, 30_000);
});
