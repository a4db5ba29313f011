/**
 * The four device models as data: which streams a device publishes and what it subscribes to.
 * - sensor: periodic telemetry, one stream per `publish` entry.
 * - gateway: many logical sensors over one connection, one stream per (sensor, publish entry).
 * - plc: subscribes to its commands, answers every command with its state (retained by default), and may
 *   also publish periodic state.
 * - consumer: a backend application: wildcard or shared subscriptions, optionally commands to a fleet.
 * Which streams a device has, and in which id order, is defined once in devices/streams.ts.
 */
import type { QoS } from '../../protocol/packets.js';
import { createPayloadBuilder, type PayloadBuilder } from '../scenario/generators.js';
import type { TemplateVars } from '../scenario/templates.js';
import type { FleetSpec, PayloadSpec, Scenario } from '../scenario/types.js';
import { clientIdOf, deviceVars } from '../orchestrator/plan.js';
import { Publication, type Device, type PublicationHost } from './device.js';
import { commandStart, compiledTemplate, deviceStreamSpecs, renderTemplate } from './streams.js';

export interface DeviceSetup {
  publications: readonly Publication[];
  reply: Publication | null;
  subscriptions: Array<{ topic: string; qos: QoS }>;
}

/** The payload of a PLC's reply: its state after the command. */
const plcState: PayloadSpec = {
  kind: 'json',
  fields: { state: { kind: 'enum', values: ['open', 'closed', 'travelling'] }, position: { kind: 'uniform', min: 0, max: 100 }, at: { kind: 'timestamp' } },
};

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

/**
 * A stream's body: `bytes` payloads are generated once (from the stream's PRNG, at setup as before), so
 * the publication keeps that Buffer rather than a builder closure and the context it holds on to — a few
 * hundred bytes per device that an idle fleet would carry for nothing.
 */
function fixedOrBuilder(payload: PayloadSpec, vars: TemplateVars, random: () => number): Buffer | PayloadBuilder {
  const builder = createPayloadBuilder(payload, { vars, random });
  return payload.kind === 'bytes' ? keepFixedBody(builder(0)) : builder;
}

/** Fixed bodies up to this size are kept side by side in slabs of BODY_SLAB bytes. */
const SMALL_BODY = 4096;
const BODY_SLAB = 64 * 1024;
let bodySlab: Buffer | null = null;
let bodySlabUsed = 0;

/**
 * A copy of a small fixed body in a slab that holds nothing else. Left in Node's shared 8 KB pool, each
 * body would keep alive the whole slab it came from, including the short-lived buffers allocated next to
 * it (packets encoded while devices connect): about twice its size.
 */
function keepFixedBody(body: Buffer): Buffer {
  if (body.length === 0 || body.length > SMALL_BODY) return body;
  const size = body.length;
  if (bodySlab === null || bodySlabUsed + size > bodySlab.length) {
    bodySlab = Buffer.allocUnsafeSlow(BODY_SLAB);
    bodySlabUsed = 0;
  }
  const kept = bodySlab.subarray(bodySlabUsed, bodySlabUsed + size);
  body.copy(kept);
  // 8-byte aligned, as Node's pool does.
  bodySlabUsed = (bodySlabUsed + size + 7) & ~7;
  return kept;
}

export function setUpDevice(scenario: Scenario, host: PublicationHost, device: Device): DeviceSetup {
  const { fleet, assignment } = device;
  const vars = deviceVars(scenario, fleet, assignment.index);
  const base = assignment.streamBase;
  const publications: Publication[] = [];
  let reply: Publication | null = null;
  for (const s of deviceStreamSpecs(scenario, fleet, vars)) {
    switch (s.kind) {
      case 'periodic': {
        const body = fixedOrBuilder(s.spec.payload, s.vars, device.random);
        publications.push(new Publication(host, device, base + s.local, s.local, renderTemplate(s.spec.topic, s.vars), s.spec.qos, s.spec.retain, s.spec.intervalMs, s.spec.jitter, body));
        break;
      }
      case 'reply': {
        const body = createPayloadBuilder(plcState, { vars: s.vars, random: device.random });
        reply = new Publication(host, device, base + s.local, s.local, renderTemplate(s.topic, s.vars), s.qos, s.retain, 0, 0, body);
        break;
      }
      case 'commands': {
        const { commands } = s;
        const targets = targetsOf(scenario, s.targetFleet);
        const template = compiledTemplate(commands.topic, [...Object.keys(s.vars), 'target']);
        let cursor = commandStart(assignment.index, fleet.count, targets.length);
        const topic = (): string => template({ ...s.vars, target: targets[cursor++ % targets.length]! });
        const body = fixedOrBuilder(commands.payload, s.vars, device.random);
        publications.push(new Publication(host, device, base + s.local, s.local, topic, commands.qos, false, commands.intervalMs, commands.jitter, body));
        break;
      }
    }
  }
  const subscriptions = fleet.subscribe.map((sub) => ({ topic: renderTemplate(sub.topic, vars), qos: sub.qos }));
  // slice(): an array grown by push keeps room for 16 more entries; a device keeps its streams for the whole run.
  return { publications: publications.slice(), reply, subscriptions };
}
