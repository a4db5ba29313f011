import { describe, expect, it } from 'vitest';
import { connectOffsetMs, fleetLayout, fleetOfStream, planDevices, stopOffsetMs, streamsPerDevice } from '../../../../simulator/orchestrator/plan.js';
import { parseScenario } from '../../../../simulator/scenario/load.js';

const yaml = `
name: plan
seed: 7
target: [mqtt://127.0.0.1:1883, mqtt://127.0.0.1:1884]
phases: { rampUp: 10s, steady: 20s, rampDown: 10s }
fleets:
  - name: s
    count: 10
    connect: 2/s
    publish: [{ topic: "a/{id}", every: 1s }, { topic: "b/{id}", every: 1s }]
    sourceAddresses: [127.0.0.2, 127.0.0.3]
  - name: gw
    model: gateway
    count: 3
    sensors: 4
    publish: { topic: "g/{id}/{sensor}", every: 1s }
  - name: plc
    model: plc
    count: 2
    subscribe: [{ topic: "cmd/{id}", qos: 2 }]
consumers:
  - name: c
    count: 2
    subscribe: "a/#"
  - name: scada
    commands: { fleet: plc, topic: "cmd/{target}", qos: 2, every: 1s }
`;

describe('planDevices', () => {
  const scenario = parseScenario(yaml);

  it('gives every device a contiguous block of stream ids in fleet order, and fleets contiguous ranges', () => {
    expect(scenario.fleets.map(streamsPerDevice)).toEqual([2, 4, 1, 0, 1]);
    const layout = fleetLayout(scenario);
    expect(layout.streamRanges).toEqual([
      { fleet: 's', first: 0, count: 20 },
      { fleet: 'gw', first: 20, count: 12 },
      { fleet: 'plc', first: 32, count: 2 },
      { fleet: 'c', first: 34, count: 0 },
      { fleet: 'scada', first: 34, count: 1 },
    ]);
    expect(layout.totalDevices).toBe(18);
    expect(layout.totalStreams).toBe(35);
    expect([0, 19, 20, 31, 32, 34, 35].map((s) => fleetOfStream(layout.streamRanges, s))).toEqual([0, 0, 1, 1, 2, 4, undefined]);
  });

  it('spreads devices round-robin over shards, target URLs and source addresses, deterministically', () => {
    const plan = planDevices(scenario, 3);
    expect(plan.shards.map((s) => s.length)).toEqual([6, 6, 6]);
    const all = plan.shards.flat().sort((a, b) => a.device - b.device);
    expect(all.map((d) => d.device)).toEqual([...Array(18).keys()]);
    expect(new Set(all.map((d) => d.clientId)).size).toBe(18);
    expect(all.slice(0, 4).map((d) => d.url)).toEqual(['mqtt://127.0.0.1:1883', 'mqtt://127.0.0.1:1884', 'mqtt://127.0.0.1:1883', 'mqtt://127.0.0.1:1884']);
    expect(all.slice(0, 3).map((d) => d.localAddress)).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.2']);
    expect(all[10]!.localAddress).toBeUndefined();
    for (const d of plan.shards[1]!) expect(d.device % 3).toBe(1);
    expect(planDevices(scenario, 3)).toEqual(plan);
  });

  it('connects at the fleet rate, spreads unlimited fleets over the ramp, and stops over ramp-down', () => {
    const [s, gw, , c] = scenario.fleets;
    // 2/s → 500 ms apart, even though the 10 s ramp would allow 1 s apart.
    expect([0, 1, 9].map((i) => connectOffsetMs(scenario, s!, i))).toEqual([0, 500, 4500]);
    // gw has no rate: its 3 devices are spread over the 10 s ramp.
    expect(connectOffsetMs(scenario, gw!, 2)).toBe(Math.floor((2 * 10_000) / 3));
    expect(connectOffsetMs(scenario, c!, 1)).toBe(0);
    expect([0, 9].map((i) => stopOffsetMs(scenario, s!, i))).toEqual([31_000, 40_000]);
    expect(stopOffsetMs(scenario, c!, 0)).toBe(40_000);
  });
});
