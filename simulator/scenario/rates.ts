/** What a scenario asks of the generator, computed from the normalized scenario alone. */
import type { Scenario } from './types.js';

/** Steady-state publishes per second: every fleet's periodic publications, commands and PLC replies. */
export function expectedPublishRates(scenario: Scenario): { perFleet: Record<string, number>; total: number } {
  const perFleet: Record<string, number> = {};
  for (const fleet of scenario.fleets) {
    let rate = 0;
    for (const p of fleet.publish) rate += (fleet.count * fleet.sensorsPerDevice * 1000) / p.intervalMs;
    if (fleet.commands !== undefined) rate += (fleet.count * 1000) / fleet.commands.intervalMs;
    perFleet[fleet.name] = (perFleet[fleet.name] ?? 0) + rate;
  }
  // Every command is answered by one reply from the PLC that received it.
  for (const fleet of scenario.fleets) {
    if (fleet.commands === undefined) continue;
    perFleet[fleet.commands.fleet] = (perFleet[fleet.commands.fleet] ?? 0) + (fleet.count * 1000) / fleet.commands.intervalMs;
  }
  const total = Object.values(perFleet).reduce((a, b) => a + b, 0);
  return { perFleet, total };
}
