/**
 * Who publishes what and who subscribes to what, rebuilt on the main thread from the scenario alone
 * (the same pure functions the shards use: plan.ts for ids and stream layout, devices/streams.ts for each device's streams).
 * The checker reads ledgers keyed by stream id and device number; these catalogs give them a topic, a
 * QoS, a client id and the filters to match.
 */
import type { QoS } from '../../protocol/packets.js';
import { parseSharedFilter } from '../../protocol/topic.js';
import { clientIdOf, deviceVars, fleetLayout, streamsPerDevice } from '../orchestrator/plan.js';
import { commandStart, compiledTemplate, deviceStreamSpecs, renderTemplate } from '../devices/streams.js';
import type { FleetSpec, Scenario } from '../scenario/types.js';

/** A command stream's topic names its next target: topic(seq) = topics[(start + seq) % topics.length]. */
export interface TopicRotation {
  topics: string[];
  start: number;
}

export interface StreamInfo {
  stream: number;
  fleet: string;
  /** Global device number of the publisher. */
  device: number;
  clientId: string;
  topic: string | TopicRotation;
  qos: QoS;
  retain: boolean;
  /** Mean interval and jitter of a periodic stream (the schedule grows by at least interval × (1 - jitter) per seq); 0 for PLC replies. */
  intervalMs: number;
  jitter: number;
}

export interface SubscriptionInfo {
  /** As sent in SUBSCRIBE (may be `$share/group/filter`). */
  filter: string;
  /** The filter to match topics against (without the share prefix). */
  match: string;
  group: string | null;
  qos: QoS;
}

export interface SubscriberInfo {
  device: number;
  fleet: string;
  clientId: string;
  subscriptions: SubscriptionInfo[];
  /** The session outlives a connection (3.1.1 clean=false, 5.0 session expiry > 0). */
  persistent: boolean;
  /**
   * How long the broker owes the device its session after a connection is lost, ms: the session expiry
   * when the device never asks for a clean start (3.1.1 clean=false: Infinity; 5.0 clean=false: the
   * expiry interval), 0 when it does or the session ends with the connection.
   */
  sessionOwedMs: number;
}

export class StreamCatalog {
  private readonly byId: Array<StreamInfo | undefined>;
  constructor(streams: StreamInfo[], total: number) {
    this.byId = new Array<StreamInfo | undefined>(total);
    for (const s of streams) this.byId[s.stream] = s;
  }
  get(stream: number): StreamInfo | undefined {
    return this.byId[stream];
  }
  get size(): number {
    return this.byId.length;
  }
}

/** topic(seq) of a stream. */
export function topicOf(info: StreamInfo, seq: number): string {
  if (typeof info.topic === 'string') return info.topic;
  const r = info.topic;
  return r.topics[(r.start + seq) % r.topics.length]!;
}

function targetsOf(scenario: Scenario, fleet: FleetSpec, cache: Map<string, string[]>): string[] {
  let ids = cache.get(fleet.name);
  if (ids === undefined) {
    ids = Array.from({ length: fleet.count }, (_, i) => clientIdOf(scenario, fleet, i));
    cache.set(fleet.name, ids);
  }
  return ids;
}

/** The streams of one device, from the one definition the shards use too (devices/streams.ts). */
function deviceStreams(scenario: Scenario, fleet: FleetSpec, index: number, device: number, base: number, targets: Map<string, string[]>): StreamInfo[] {
  const vars = deviceVars(scenario, fleet, index);
  const common = { fleet: fleet.name, device, clientId: String(vars.id) };
  return deviceStreamSpecs(scenario, fleet, vars).map((s): StreamInfo => {
    const stream = base + s.local;
    switch (s.kind) {
      case 'periodic':
        return { ...common, stream, topic: renderTemplate(s.spec.topic, s.vars), qos: s.spec.qos, retain: s.spec.retain, intervalMs: s.spec.intervalMs, jitter: s.spec.jitter };
      case 'reply':
        return { ...common, stream, topic: renderTemplate(s.topic, s.vars), qos: s.qos, retain: s.retain, intervalMs: 0, jitter: 0 };
      case 'commands': {
        const ids = targetsOf(scenario, s.targetFleet, targets);
        const template = compiledTemplate(s.commands.topic, [...Object.keys(s.vars), 'target']);
        const topics = ids.map((target) => template({ ...s.vars, target }));
        return { ...common, stream, topic: { topics, start: commandStart(index, fleet.count, ids.length) }, qos: s.commands.qos, retain: false, intervalMs: s.commands.intervalMs, jitter: s.commands.jitter };
      }
    }
  });
}

export interface Catalogs {
  streams: StreamCatalog;
  subscribers: SubscriberInfo[];
  /** Topics a retained will may be published on: their retained value may legitimately be a will (unstamped). */
  retainedWillTopics: Set<string>;
}

/** Both catalogs for a scenario; `protocolVersion` decides what makes a session persistent. */
export function buildCatalogs(scenario: Scenario, protocolVersion: 4 | 5 = scenario.target?.protocolVersion ?? 5): Catalogs {
  const layout = fleetLayout(scenario);
  const streams: StreamInfo[] = [];
  const subscribers: SubscriberInfo[] = [];
  const targets = new Map<string, string[]>();
  const retainedWillTopics = new Set<string>();
  scenario.fleets.forEach((fleet, f) => {
    const perDevice = streamsPerDevice(fleet);
    const first = layout.streamRanges[f]!.first;
    const persistent = protocolVersion === 5 ? fleet.session.expirySec > 0 : !fleet.session.clean;
    // The lean client sends the fleet's clean flag on every CONNECT (clean start in 5.0).
    const sessionOwedMs = fleet.session.clean ? 0 : protocolVersion === 5 ? fleet.session.expirySec * 1000 : Infinity;
    for (let index = 0; index < fleet.count; index++) {
      const device = layout.fleetDeviceOffsets[f]! + index;
      if (perDevice > 0) streams.push(...deviceStreams(scenario, fleet, index, device, first + index * perDevice, targets));
      if (fleet.will?.retain === true) retainedWillTopics.add(renderTemplate(fleet.will.topic, deviceVars(scenario, fleet, index)));
      if (fleet.subscribe.length > 0) {
        const vars = deviceVars(scenario, fleet, index);
        const subscriptions = fleet.subscribe.map((s): SubscriptionInfo => {
          const filter = renderTemplate(s.topic, vars);
          const shared = parseSharedFilter(filter);
          return { filter, match: shared === null ? filter : shared.filter, group: shared === null ? null : shared.group, qos: s.qos };
        });
        subscribers.push({ device, fleet: fleet.name, clientId: String(vars.id), subscriptions, persistent, sessionOwedMs });
      }
    }
  });
  return { streams: new StreamCatalog(streams, layout.totalStreams), subscribers, retainedWillTopics };
}
