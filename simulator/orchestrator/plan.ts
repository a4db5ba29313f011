/**
 * Turns a scenario into devices: who connects where and when, which stream ids each device owns, and
 * which shard runs it. Pure and deterministic, so the same scenario and seed give the same plan on every
 * machine (a later issue runs one slice of it per process).
 */
import type { DeviceAssignment } from '../shard/messages.js';
import type { FleetSpec, Scenario } from '../scenario/types.js';
import { compileTemplate, resolveAttributes } from '../scenario/templates.js';

export interface StreamRange {
  fleet: string;
  /** First stream id of the fleet; the fleet owns [first, first + count). */
  first: number;
  count: number;
}

export interface DevicePlan {
  shards: DeviceAssignment[][];
  totalDevices: number;
  /** Global device number of each fleet's first device. */
  fleetDeviceOffsets: number[];
  /** Contiguous stream id ranges, one per fleet, in fleet order (consumers without commands own none). */
  streamRanges: StreamRange[];
  totalStreams: number;
}

/** Streams one device of the fleet publishes: one per publication (per logical sensor for gateways), plus a PLC's reply stream and a consumer's command stream. */
export function streamsPerDevice(fleet: FleetSpec): number {
  switch (fleet.model) {
    case 'sensor':
      return fleet.publish.length;
    case 'gateway':
      return fleet.publish.length * fleet.sensorsPerDevice;
    case 'plc':
      return fleet.publish.length + 1;
    case 'consumer':
      return fleet.commands ? 1 : 0;
  }
}

/** The variables a device's templates may use. */
export function deviceVars(scenario: Scenario, fleet: FleetSpec, index: number): Record<string, string | number> {
  const attributes = resolveAttributes(fleet, index, scenario.seed);
  const vars: Record<string, string | number> = { ...attributes, fleet: fleet.name, index };
  vars.id = compileTemplate(fleet.clientId, Object.keys(vars))(vars);
  return vars;
}

/** Client id of device `index` of `fleet` (what `{id}` and `{target}` render to). */
export function clientIdOf(scenario: Scenario, fleet: FleetSpec, index: number): string {
  return String(deviceVars(scenario, fleet, index).id);
}

/**
 * When device `index` of a fleet connects, counted from t=0: at the fleet's connect rate when it has one
 * (the fleet may finish connecting before ramp-up ends, or after it when the rate is slow); spread evenly
 * over ramp-up when the rate is unlimited; all at t=0 when there is no ramp-up either. Consumers connect
 * before t=0.
 */
export function connectOffsetMs(scenario: Scenario, fleet: FleetSpec, index: number): number {
  if (fleet.model === 'consumer') return 0;
  if (Number.isFinite(fleet.connectRatePerSec) && fleet.connectRatePerSec > 0) return Math.floor((index * 1000) / fleet.connectRatePerSec);
  return scenario.phases.rampUpMs > 0 ? Math.floor((index * scenario.phases.rampUpMs) / fleet.count) : 0;
}

/** When device `index` stops publishing and disconnects: spread evenly over ramp-down; the end of the timeline otherwise. */
export function stopOffsetMs(scenario: Scenario, fleet: FleetSpec, index: number): number {
  const { rampUpMs, steadyMs, rampDownMs } = scenario.phases;
  if (fleet.model === 'consumer' || rampDownMs <= 0) return scenario.durationMs;
  return Math.floor(rampUpMs + steadyMs + ((index + 1) / fleet.count) * rampDownMs);
}

/** Where each fleet's devices and streams start, without rendering any device (shards use it to attribute stream ids). */
export function fleetLayout(scenario: Scenario): { fleetDeviceOffsets: number[]; streamRanges: StreamRange[]; totalDevices: number; totalStreams: number } {
  const fleetDeviceOffsets: number[] = [];
  const streamRanges: StreamRange[] = [];
  let device = 0;
  let stream = 0;
  for (const fleet of scenario.fleets) {
    fleetDeviceOffsets.push(device);
    const count = streamsPerDevice(fleet) * fleet.count;
    streamRanges.push({ fleet: fleet.name, first: stream, count });
    device += fleet.count;
    stream += count;
  }
  return { fleetDeviceOffsets, streamRanges, totalDevices: device, totalStreams: stream };
}

/**
 * One deterministic part of a distributed run (`mqtt-sim run --shard index/count`): the devices whose
 * global device number d satisfies d % count == index - 1 (index is 1-based).
 */
export interface RunSlice {
  index: number;
  count: number;
}

/** Whether global device number `device` belongs to the slice (every device does without one). */
export function inSlice(device: number, slice: RunSlice | undefined): boolean {
  return slice === undefined || device % slice.count === slice.index - 1;
}

/** Devices, and consumers among them, that the slice runs (all of them without a slice). */
export function sliceDeviceCounts(scenario: Scenario, slice: RunSlice | undefined): { devices: number; consumers: number } {
  let devices = 0;
  let consumers = 0;
  let device = 0;
  for (const fleet of scenario.fleets) {
    for (let index = 0; index < fleet.count; index++, device++) {
      if (!inSlice(device, slice)) continue;
      devices++;
      if (fleet.model === 'consumer') consumers++;
    }
  }
  return { devices, consumers };
}

/**
 * Devices go to shards round-robin over the global device number, so every shard carries a mix of every
 * fleet. With a slice, only its devices are planned (round-robin over their position in the slice, so the
 * shards stay balanced); stream ids and device numbers stay global, so the slices' ledgers merge.
 */
export function planDevices(scenario: Scenario, shardCount: number, slice?: RunSlice): DevicePlan {
  if (scenario.target === null) throw new Error('planDevices needs a resolved target (start the embedded broker first)');
  const shards: DeviceAssignment[][] = Array.from({ length: shardCount }, () => []);
  const layout = fleetLayout(scenario);
  let device = 0;
  let stream = 0;
  let urlCursor = 0;
  let position = 0;
  scenario.fleets.forEach((fleet, f) => {
    const perDevice = streamsPerDevice(fleet);
    const urls = fleet.targetUrls && fleet.targetUrls.length > 0 ? fleet.targetUrls : scenario.target!.urls;
    for (let index = 0; index < fleet.count; index++) {
      const url = urls[urlCursor++ % urls.length]!;
      if (!inSlice(device, slice)) {
        device++;
        stream += perDevice;
        continue;
      }
      const assignment: DeviceAssignment = {
        fleet: f,
        index,
        device,
        clientId: clientIdOf(scenario, fleet, index),
        url,
        streamBase: stream,
        streamCount: perDevice,
        connectAtMs: connectOffsetMs(scenario, fleet, index),
        stopAtMs: stopOffsetMs(scenario, fleet, index),
      };
      if (fleet.localAddresses.length > 0) assignment.localAddress = fleet.localAddresses[index % fleet.localAddresses.length]!;
      shards[position++ % shardCount]!.push(assignment);
      device++;
      stream += perDevice;
    }
  });
  return { shards, ...layout };
}

/** The fleet that owns a stream id (binary search over the ranges), or undefined for a foreign id. */
export function fleetOfStream(ranges: StreamRange[], stream: number): number | undefined {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = ranges[mid]!;
    if (stream < r.first) hi = mid - 1;
    else if (stream >= r.first + r.count) lo = mid + 1;
    else return r.count > 0 ? mid : undefined;
  }
  return undefined;
}
