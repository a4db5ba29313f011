/**
 * One definition of a device's streams: the shards' publications (setUpDevice), the checker's catalog
 * (buildCatalogs) and the stream-id layout (streamsPerDevice) must name the same stream ids with the
 * same topic, QoS and retain flag, for every device model.
 */
import { describe, expect, it } from 'vitest';
import { Device, type Publication } from '../../../../simulator/devices/device.js';
import { setUpDevice } from '../../../../simulator/devices/models.js';
import { deviceStreamSpecs } from '../../../../simulator/devices/streams.js';
import { emptyFleetCounters } from '../../../../simulator/metrics/counters.js';
import { deviceVars, planDevices, streamsPerDevice } from '../../../../simulator/orchestrator/plan.js';
import { parseScenario } from '../../../../simulator/scenario/load.js';
import { createPrng } from '../../../../simulator/scenario/prng.js';
import { buildCatalogs, topicOf } from '../../../../simulator/verify/catalog.js';

const scenario = parseScenario(`
name: streams
seed: 11
duration: 10s
target: mqtt://127.0.0.1:1883
fleets:
  - name: s
    count: 3
    publish: [{ topic: "a/{id}", qos: 1, every: 1s }, { topic: "b/{id}", qos: 0, retain: true, every: 2s }]
  - name: gw
    model: gateway
    count: 2
    sensors: 3
    publish: [{ topic: "g/{id}/{sensor}/t", every: 1s }, { topic: "g/{id}/{sensor}/h", qos: 2, every: 1s }]
  - name: plc
    model: plc
    count: 4
    subscribe: [{ topic: "cmd/{id}", qos: 2 }]
    publish: { topic: "plc/{id}/heartbeat", every: 5s }
consumers:
  - name: scada
    count: 2
    commands: { fleet: plc, topic: "cmd/{target}", qos: 2, every: 1s }
  - name: c
    subscribe: "#"
`);

describe('device streams', () => {
  it('counts what streamsPerDevice lays out, with local ids 0..n-1 in order', () => {
    for (const fleet of scenario.fleets) {
      for (let index = 0; index < fleet.count; index++) {
        const specs = deviceStreamSpecs(scenario, fleet, deviceVars(scenario, fleet, index));
        expect(specs.length, fleet.name).toBe(streamsPerDevice(fleet));
        expect(specs.map((s) => s.local)).toEqual([...specs.keys()]);
      }
    }
  });

  it('gives the shards and the checker the same stream ids, topics, QoS and retain flags', () => {
    const catalog = buildCatalogs(scenario).streams;
    const host = { firePublication: () => undefined };
    let compared = 0;
    for (const assignment of planDevices(scenario, 1).shards[0]!) {
      const fleet = scenario.fleets[assignment.fleet]!;
      const device = new Device(assignment, fleet, emptyFleetCounters(), createPrng(scenario.seed, assignment.device));
      const setup = setUpDevice(scenario, host, device);
      const publications: Publication[] = [...setup.publications, ...(setup.reply ? [setup.reply] : [])];
      expect(publications.length).toBe(assignment.streamCount);
      for (const pub of publications) {
        const info = catalog.get(pub.stream);
        expect(info, `stream ${pub.stream}`).toBeDefined();
        expect(info!.device).toBe(assignment.device);
        expect(info!.clientId).toBe(assignment.clientId);
        expect([info!.qos, info!.retain]).toEqual([pub.qos, pub.retain]);
        // A command stream's topic names its next target: the catalog must rotate through them in the same order.
        for (let seq = 0; seq < 6; seq++) expect(topicOf(info!, seq)).toBe(typeof pub.topic === 'string' ? pub.topic : pub.topic());
        compared++;
      }
    }
    expect(compared).toBe(3 * 2 + 2 * 6 + 4 * 2 + 2);
  });
});
