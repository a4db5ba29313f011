/** FleetCounters arithmetic: shards keep cumulative counters per fleet; the main thread sums them. */
import { brokerViolationKinds, disconnectCauses, type BrokerViolationKind, type DisconnectCause, type FaultCounters, type FleetCounters } from './types.js';

function zeroCauses(): Record<DisconnectCause, number> {
  const out = {} as Record<DisconnectCause, number>;
  for (const c of disconnectCauses) out[c] = 0;
  return out;
}

export function emptyFleetCounters(devices = 0): FleetCounters {
  return {
    connected: 0,
    devices,
    connectAttempts: 0,
    connects: 0,
    connectFailures: 0,
    reconnects: 0,
    disconnects: zeroCauses(),
    published: [0, 0, 0],
    acknowledged: [0, 0, 0],
    rejected: [0, 0, 0],
    delivered: [0, 0, 0],
    duplicates: [0, 0, 0],
    reordered: [0, 0, 0],
    retainedReceived: 0,
    foreign: 0,
    droppedOffline: 0,
    bytesOut: 0,
    bytesIn: 0,
    faults: emptyFaultCounters(),
    violations: emptyViolationCounts(),
  };
}

/** One zero per broker violation kind. */
export function emptyViolationCounts(): Record<BrokerViolationKind, number> {
  const out = {} as Record<BrokerViolationKind, number>;
  for (const k of brokerViolationKinds) out[k] = 0;
  return out;
}

export function emptyFaultCounters(): FaultCounters {
  return { disconnects: 0, resets: 0, halfOpen: 0, slowCloses: 0, refused: 0, stalls: 0 };
}

type Triple = [number, number, number];

function addTriple(into: Triple, from: Triple): void {
  into[0] += from[0];
  into[1] += from[1];
  into[2] += from[2];
}

/** Adds every field of `from` into `into` (gauges too: connected and devices are summed); returns `into`. */
export function addCounters(into: FleetCounters, from: FleetCounters): FleetCounters {
  into.connected += from.connected;
  into.devices += from.devices;
  into.connectAttempts += from.connectAttempts;
  into.connects += from.connects;
  into.connectFailures += from.connectFailures;
  into.reconnects += from.reconnects;
  for (const c of disconnectCauses) into.disconnects[c] += from.disconnects[c] ?? 0;
  addTriple(into.published, from.published);
  addTriple(into.acknowledged, from.acknowledged);
  addTriple(into.rejected, from.rejected);
  addTriple(into.delivered, from.delivered);
  addTriple(into.duplicates, from.duplicates);
  addTriple(into.reordered, from.reordered);
  into.retainedReceived += from.retainedReceived;
  into.foreign += from.foreign;
  into.droppedOffline += from.droppedOffline;
  into.bytesOut += from.bytesOut;
  into.bytesIn += from.bytesIn;
  if (from.faults !== undefined) {
    const f = (into.faults ??= emptyFaultCounters());
    f.disconnects += from.faults.disconnects;
    f.resets += from.faults.resets;
    f.halfOpen += from.faults.halfOpen;
    f.slowCloses += from.faults.slowCloses;
    f.refused += from.faults.refused;
    f.stalls += from.faults.stalls;
  }
  if (from.violations !== undefined) {
    const v = (into.violations ??= emptyViolationCounts());
    for (const k of brokerViolationKinds) v[k] += from.violations[k] ?? 0;
  }
  return into;
}

/** The sum of every fleet of a record (e.g. the run totals). */
export function sumFleets(record: Readonly<Record<string, FleetCounters>>): FleetCounters {
  const total = emptyFleetCounters();
  for (const c of Object.values(record)) addCounters(total, c);
  return total;
}

/** A deep copy. */
export function cloneCounters(c: FleetCounters): FleetCounters {
  return addCounters(emptyFleetCounters(), c);
}
