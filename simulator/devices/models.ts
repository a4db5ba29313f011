/**
 * The four device models as data: which streams a device publishes and what it subscribes to.
 * - sensor: periodic telemetry, one stream per `publish` entry.
 * - gateway: many logical sensors over one connection, one stream per (sensor, publish entry).
 * - plc: subscribes to its commands, answers every command with its state (retained by default), and may
 *   also publish periodic state.
 * - consumer: a backend application: wildcard or shared subscriptions, optionally commands to a fleet.
 * Stream ids follow the order below; streamsPerDevice() in orchestrator/plan.ts must agree.
 */
import type { QoS } from '../../protocol/packets.js';
import { createPayloadBuilder } from '../scenario/generators.js';
import { compileTemplate } from '../scenario/templates.js';
import type { FleetSpec, PublishSpec, Scenario } from '../scenario/types.js';
import { clientIdOf, deviceVars } from '../orchestrator/plan.js';
import { Publication, type Device, type PublicationHost } from './device.js';

export interface DeviceSetup {
  publications: Publication[];
  reply: Publication | null;
  subscriptions: Array<{ topic: string; qos: QoS }>;
}

function render(template: string, vars: Record<string, string | number>): string {
  return compileTemplate(template, Object.keys(vars))(vars);
}

function periodic(host: PublicationHost, device: Device, stream: number, local: number, spec: PublishSpec, vars: Record<string, string | number>): Publication {
  const body = createPayloadBuilder(spec.payload, { vars, random: device.random });
  return new Publication(host, device, stream, local, render(spec.topic, vars), spec.qos, spec.retain, spec.intervalMs, spec.jitter, body);
}

/** Client ids of a fleet, rendered once per shard and shared by every consumer that commands it. */
const targetCache = new WeakMap<FleetSpec, string[]>();

function targetsOf(scenario: Scenario, fleet: FleetSpec): string[] {
  let ids = targetCache.get(fleet);
  if (!ids) {
    ids = Array.from({ length: fleet.count }, (_, i) => clientIdOf(scenario, fleet, i));
    targetCache.set(fleet, ids);
  }
  return ids;
}

export function setUpDevice(scenario: Scenario, host: PublicationHost, device: Device): DeviceSetup {
  const { fleet, assignment } = device;
  const vars = deviceVars(scenario, fleet, assignment.index);
  const base = assignment.streamBase;
  const publications: Publication[] = [];
  let reply: Publication | null = null;
  switch (fleet.model) {
    case 'sensor':
    case 'plc':
      fleet.publish.forEach((spec, i) => publications.push(periodic(host, device, base + i, i, spec, vars)));
      if (fleet.model === 'plc') {
        const r = fleet.reply ?? { topic: '{fleet}/{id}/state', qos: 1 as QoS, retain: true };
        const local = fleet.publish.length;
        const body = createPayloadBuilder(
          { kind: 'json', fields: { state: { kind: 'enum', values: ['open', 'closed', 'travelling'] }, position: { kind: 'uniform', min: 0, max: 100 }, at: { kind: 'timestamp' } } },
          { vars, random: device.random },
        );
        reply = new Publication(host, device, base + local, local, render(r.topic, vars), r.qos, r.retain, 0, 0, body);
      }
      break;
    case 'gateway': {
      let local = 0;
      for (let s = 0; s < fleet.sensorsPerDevice; s++) {
        const sensorVars = { ...vars, sensor: s };
        for (const spec of fleet.publish) {
          publications.push(periodic(host, device, base + local, local, spec, sensorVars));
          local++;
        }
      }
      break;
    }
    case 'consumer': {
      const commands = fleet.commands;
      if (commands) {
        const targetFleet = scenario.fleets.find((f) => f.name === commands.fleet);
        if (!targetFleet) throw new Error(`consumer ${fleet.name}: commands.fleet ${commands.fleet} does not exist`);
        const targets = targetsOf(scenario, targetFleet);
        const template = compileTemplate(commands.topic, [...Object.keys(vars), 'target']);
        // Consumers of the fleet start at different targets so several of them cover the fleet evenly.
        let cursor = Math.floor((assignment.index * targets.length) / Math.max(1, fleet.count));
        const topic = (): string => {
          const target = targets[cursor++ % targets.length]!;
          return template({ ...vars, target });
        };
        const body = createPayloadBuilder(commands.payload, { vars, random: device.random });
        publications.push(new Publication(host, device, base, 0, topic, commands.qos, false, commands.intervalMs, commands.jitter, body));
      }
      break;
    }
  }
  const subscriptions = fleet.subscribe.map((s) => ({ topic: render(s.topic, vars), qos: s.qos }));
  return { publications, reply, subscriptions };
}
