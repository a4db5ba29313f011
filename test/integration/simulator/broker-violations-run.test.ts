/**
 * Broker protocol violations end to end: runScenario (shards in real worker threads, the built worker)
 * against Aedes 1.2 in-process, which delivers QoS 2 on a QoS 1 wildcard subscription. The violations
 * reach run.json, its assertion metrics and the summary, and fail the verdict.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Aedes } from 'aedes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScenario } from '../../../simulator/orchestrator/run.js';
import { formatSummary, verdictLine } from '../../../simulator/report/summary.js';
import { readRunResult } from '../../../simulator/report/write-run.js';
import { parseScenario } from '../../../simulator/scenario/load.js';
import { requireBuilt } from '../../helpers/cli-process.js';
import { quietReporter, workerFile } from '../../helpers/run-scenario.js';

const silent = quietReporter();

describe('runScenario against Aedes 1.2 (broker violations)', () => {
  let server: net.Server;
  let url = '';
  let close: () => Promise<void> = async () => {};
  let dir = '';

  beforeAll(async () => {
    requireBuilt('simulator/shard/worker.js');
    const aedes = await Aedes.createBroker();
    server = net.createServer(aedes.handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    close = () => new Promise<void>((resolve) => server.close(() => aedes.close(() => resolve())));
    dir = mkdtempSync(path.join(tmpdir(), 'broker-violations-run-'));
  });

  afterAll(async () => {
    await close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('QoS 2 deliveries on a QoS 1 subscription are counted, kept as examples in run.json, and fail the verdict', async () => {
    const scenario = parseScenario(`
name: aedes-qos
target: { url: ${url}, protocol: 4 }
phases: { rampUp: 300ms, steady: 1500ms }
drain: 2s
fleets:
  - name: s
    count: 3
    publish: { topic: "agg/{id}", qos: 2, every: 100ms }
consumers:
  - name: c
    subscribe: [{ topic: "agg/#", qos: 1 }]
expect:
  - qos2.published > 0
  - violations.qos-above-granted == 0
`);
    const { reportPath } = await runScenario(scenario, { workers: 2, reporter: silent, reportDir: dir, workerFile });
    expect(reportPath).not.toBeNull();
    const result = readRunResult(reportPath!);
    expect(result.outcome).toBe('completed');
    const delivered = result.fleets['c']!.delivered;
    expect(delivered[2]).toBeGreaterThan(0);
    expect(delivered[1]).toBe(0);
    const v = result.brokerViolations!;
    // One per QoS 2 PUBLISH the consumer received (a resent one counts again).
    expect(v.byKind['qos-above-granted']).toBeGreaterThanOrEqual(delivered[2]);
    expect(v.total).toBe(v.byKind['qos-above-granted']);
    expect(v.byFleet).toEqual({ s: 0, c: v.total });
    expect(result.fleets['c']!.violations!['qos-above-granted']).toBe(v.total);
    expect(v.examples.length).toBeGreaterThan(0);
    expect(v.examples.length).toBeLessThanOrEqual(10); // one consumer, one shard
    expect(v.examples[0]).toMatchObject({ kind: 'qos-above-granted', clientId: 'c-0', fleet: 'c' });
    expect(v.examples[0]!.detail).toMatch(/^QoS 2 PUBLISH on agg\/s-\d, but the matching subscription was granted at most QoS 1$/);
    expect(result.assertions.map((a) => [a.source, a.passed, a.actual])).toEqual([
      ['qos2.published > 0', true, result.totals.published[2]],
      ['violations.qos-above-granted == 0', false, v.total],
    ]);
    expect(result.verdict).toBe('fail');
    const summary = formatSummary(result);
    expect(summary).toContain(`Protocol     FAIL: ${v.total} broker violation`);
    expect(summary).toContain('qos-above-granted c-0 at ');
    expect(verdictLine(result)).toBe(`FAIL: 1 of 2 assertions failed, ${v.total} protocol violations by the broker`);
  });
});
