/** Counts a device's link events into its fleet's fault counters (cheap: a switch and an increment). */
import type { FaultCounters, FleetCounters } from '../metrics/types.js';
import { emptyFaultCounters } from '../metrics/counters.js';
import type { LinkEvent } from './link.js';

export function countLinkEvent(counters: FleetCounters, event: LinkEvent): void {
  const f: FaultCounters = (counters.faults ??= emptyFaultCounters());
  switch (event.type) {
    case 'cut':
      f.disconnects++;
      if (event.mode === 'reset') f.resets++;
      else if (event.mode === 'halfOpen') f.halfOpen++;
      else f.slowCloses++;
      break;
    case 'refused':
      f.refused++;
      break;
    case 'stall':
      f.stalls++;
      break;
    case 'failure':
    case 'connect':
      break;
  }
}
