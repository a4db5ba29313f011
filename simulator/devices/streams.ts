/**
 * Which streams a device publishes, in stream-id order, defined once. The shards turn these into
 * Publications (devices/models.ts), the checker into its catalog of topics and QoS (verify/catalog.ts),
 * and plan.ts counts them (streamsPerDevice) to lay out stream ids; all three read this list, so they
 * cannot disagree on which id is which stream.
 * - sensor: one stream per `publish` entry.
 * - gateway: one per (logical sensor, publish entry), sensor-major.
 * - plc: its `publish` entries, then the reply to commands (its state, retained by default).
 * - consumer: one command stream when it sends commands.
 */
import type { QoS } from '../../protocol/packets.js';
import { compileTemplate } from '../scenario/templates.js';
import type { CommandSpec, FleetSpec, PublishSpec, Scenario } from '../scenario/types.js';

type Vars = Record<string, string | number>;

/** The state a PLC publishes in reply to a command when its fleet sets no `reply`. */
export const defaultPlcReply: { topic: string; qos: QoS; retain: boolean } = { topic: '{fleet}/{id}/state', qos: 1, retain: true };

export type StreamSpec =
  /** `local`: offset of the stream id from the device's first stream. `vars`: what its templates render with. */
  | { kind: 'periodic'; local: number; vars: Vars; spec: PublishSpec }
  | { kind: 'reply'; local: number; vars: Vars; topic: string; qos: QoS; retain: boolean }
  | { kind: 'commands'; local: number; vars: Vars; commands: CommandSpec; targetFleet: FleetSpec };

/** The streams of a device of `fleet` whose template variables are `vars` (plan.ts deviceVars). */
export function deviceStreamSpecs(scenario: Scenario, fleet: FleetSpec, vars: Vars): StreamSpec[] {
  const out: StreamSpec[] = [];
  switch (fleet.model) {
    case 'sensor':
    case 'plc':
      fleet.publish.forEach((spec, local) => out.push({ kind: 'periodic', local, vars, spec }));
      if (fleet.model === 'plc') out.push({ kind: 'reply', local: fleet.publish.length, vars, ...(fleet.reply ?? defaultPlcReply) });
      break;
    case 'gateway':
      for (let sensor = 0; sensor < fleet.sensorsPerDevice; sensor++) {
        const sensorVars = { ...vars, sensor };
        for (const spec of fleet.publish) out.push({ kind: 'periodic', local: out.length, vars: sensorVars, spec });
      }
      break;
    case 'consumer': {
      const commands = fleet.commands;
      if (commands) {
        const targetFleet = scenario.fleets.find((f) => f.name === commands.fleet);
        if (!targetFleet) throw new Error(`consumer ${fleet.name}: commands.fleet ${commands.fleet} does not exist`);
        out.push({ kind: 'commands', local: 0, vars, commands, targetFleet });
      }
      break;
    }
  }
  return out;
}

/** Where consumer `index` of a fleet of `count` starts in its target list: consumers of one fleet start apart, to cover it evenly. */
export function commandStart(index: number, count: number, targets: number): number {
  return Math.floor((index * targets) / Math.max(1, count));
}

/** Compiled templates by text and placeholder names: a fleet renders the same few templates for every device. */
const compiled = new Map<string, (vars: Vars) => string>();

/** A template rendered with `vars`, compiled once per (template, variable names). */
export function renderTemplate(template: string, vars: Vars): string {
  return compiledTemplate(template, Object.keys(vars))(vars);
}

/** The compiled form of a template for the given variable names (cached). */
export function compiledTemplate(template: string, names: readonly string[]): (vars: Vars) => string {
  const key = `${template}\u0000${names.join(',')}`;
  let fn = compiled.get(key);
  if (fn === undefined) {
    fn = compileTemplate(template, names);
    compiled.set(key, fn);
  }
  return fn;
}
