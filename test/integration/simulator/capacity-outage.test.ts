/**
 * An outage is not a capacity limit: a ramp against a real broker behind a TCP forwarder that goes away
 * in the middle of step 2 (it stops listening and drops every connection once step 2's subscriber has
 * received a few messages). runScenario does not throw for that: the step runs to its end with failed
 * reconnects and nothing delivered. The ramp must not read it as the broker's limit (slo-broken, knee on
 * step 1 as the last good step below a bad one) but as an outage: stop reason error, kind
 * target-unreachable, the step left out, the knee step 1 as a lower bound, and the report written.
 *
 * The merely overloaded case, a rate-limited broker whose step above its limit must stay slo-broken, is
 * capacity-knee.test.ts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatCapacityText } from '../../../simulator/capacity/cost-model.js';
import { parseSlo, runCapacityRamp } from '../../../simulator/capacity/ramp.js';
import type { CapacityResult } from '../../../simulator/capacity/types.js';
import { parseScenario } from '../../../simulator/scenario/load.js';
import { startBroker, type TestBroker } from '../../helpers/broker.js';
import { requireBuilt } from '../../helpers/cli-process.js';
import { workerFile } from '../../helpers/run-scenario.js';

/** A TCP forwarder to `upstreamPort` that, once armed, cuts everything after `bytes` more bytes went from the broker to its clients. */
interface CuttableForwarder {
  url: string;
  /** Cut (stop listening, drop every connection) once this many more bytes reached the clients. */
  cutAfter(bytes: number): void;
  cut: Promise<void>;
  close(): void;
}

async function cuttableForwarder(upstreamPort: number): Promise<CuttableForwarder> {
  const sockets = new Set<net.Socket>();
  let budget = Infinity;
  let markCut!: () => void;
  const cut = new Promise<void>((resolve) => (markCut = resolve));
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: upstreamPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      client.write(chunk);
      budget -= chunk.length;
      if (budget <= 0) cutNow();
    });
  });
  const cutNow = (): void => {
    budget = Infinity;
    server.close();
    for (const s of sockets) s.destroy();
    markCut();
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cutAfter: (bytes) => {
      budget = bytes;
    },
    cut,
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

let broker: TestBroker;
let forwarder: CuttableForwarder;
let dir: string;

beforeAll(async () => {
  requireBuilt('simulator/shard/worker.js');
  broker = await startBroker();
  forwarder = await cuttableForwarder(broker.port);
  dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-capacity-outage-'));
});

afterAll(async () => {
  forwarder?.close();
  await broker?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('mqtt-sim capacity when the target stops answering during a step', () => {
  let result: CapacityResult;
  const started: number[] = [];

  beforeAll(async () => {
    // Two sensors at 10 msg/s (QoS 1) and one subscriber; steps of 2, 4, 6 devices (20, 40, 60 msg/s).
    const scenario = parseScenario(
      `
name: outage
seed: 11
target: { url: "${forwarder.url}", protocol: 5 }
phases: { steady: 1s }
drain: 1s
fleets:
  - name: meters
    model: sensor
    count: 2
    connect: 100/s
    publish: { topic: "outage/{id}", qos: 1, every: 100ms, payload: { size: 16 } }
consumers:
  - name: sink
    subscribe: [{ topic: "outage/#", qos: 1 }]
`,
      join(dir, 'outage.yaml'),
    );
    const slo = 'latency.e2e.p99<5s';
    ({ result } = await runCapacityRamp(scenario, {
      schedule: { mode: 'devices', start: 2, step: 2, maxSteps: 3 },
      holdMs: 3000,
      slo: { text: slo, specs: parseSlo(slo, scenario.fleets.map((f) => f.name)) },
      workers: 1,
      workerFile,
      snapshotIntervalMs: 500,
      reportDir: join(dir, 'report'),
      shardLimits: { fileDescriptorsPerProcess: 1024, cpuCoresPerShard: 1, memoryBytesPerShard: 2 ** 31 },
      onStepStart: (s) => {
        started.push(s.index);
        // About 50 deliveries to the subscriber (and their PUBACKs) into step 2, the target goes away.
        if (s.index === 2) forwarder.cutAfter(4000);
      },
    }));
  }, 60_000);

  it('ends the ramp with stop reason error, kind target-unreachable, and the knee on step 1, not bounded by step 2', async () => {
    await forwarder.cut;
    const summary = `${result.stopReason}: ${result.stopDetail}`;
    expect(started, summary).toEqual([1, 2]);
    expect(result.steps.map((s) => [s.index, s.devices, s.sloMet, s.stable]), summary).toEqual([[1, 2, true, true]]);
    expect(result.stopReason, summary).toBe('error');
    expect(result.error, summary).toMatchObject({ step: 2, refining: false, devices: 4, offeredRate: 40, kind: 'target-unreachable', duringStep: true, runJson: 'step-2/run.json' });
    // The probe after the step finds the target gone; the subscriber saw deliveries stop.
    expect(result.error!.message).toMatch(new RegExp(`^the target stopped answering during step 2: .*after the step, target ${forwarder.url} is unreachable: ECONNREFUSED`));
    expect(result.error!.message).not.toContain('omit the target');
    expect(result.knee, summary).toMatchObject({ step: 1, devices: 2 });
    expect(formatCapacityText(result)).toContain('(a lower bound: step 2 (4 devices, 40 msg/s offered) ran into an outage of the target before the SLO broke)');
  });

  it('writes capacity.json with the outage, and keeps the left-out step\'s own run.json', () => {
    const json = JSON.parse(readFileSync(join(dir, 'report', 'capacity.json'), 'utf8')) as CapacityResult;
    expect(json.stopReason).toBe('error');
    expect(json.error).toEqual(result.error);
    expect(existsSync(join(dir, 'report', 'step-2', 'run.json'))).toBe(true);
  });
});
