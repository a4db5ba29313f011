/**
 * Test helpers: the crash-cycle engine (bench/soak/crash-engine.ts, shared with the crash soak script)
 * wired to the suite's child-process helpers, so afterEach's killAllChildren() covers the broker child.
 */
import { CrashRig, type CrashRigOptions } from '../../bench/soak/crash-engine.js';
import { spawnChild } from './child-process.js';
import { cliMain } from './cli-process.js';

export {
  CrashRig, createRng, formatCycle, sumReports,
  type CrashRigOptions, type CrashTotals, type CycleReport,
} from '../../bench/soak/crash-engine.js';

/** A crash rig running the built CLI (dist/cli/main.js), its broker spawned through spawnChild. */
export function createCrashRig(options: Omit<CrashRigOptions, 'cliMain' | 'spawn'>): CrashRig {
  return new CrashRig({ cliMain, spawn: (command, args) => spawnChild(command, args), ...options });
}
