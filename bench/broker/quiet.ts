/**
 * Waiting for a quiet machine (BENCHMARKING.md: "Wait for the machine to be quiet first"), shared by the
 * broker and persistence benchmarks.
 */
import { MachineCpuSampler } from './proc-stat.js';

/** CPU used by others (% of one core) below which the machine counts as quiet. */
export const QUIET_BUSY_PCT = 25;
/** A run during which other jobs used more than this (% of one core) is repeated, up to --retries times. */
export const NOISY_OTHER_PCT = 40;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Waits (bounded) until other jobs leave the CPUs mostly idle; returns the last busy figure (% of one
 * core, one decimal). Nothing of ours runs at this point, so all busy CPU belongs to someone else.
 */
export async function waitForQuiet(maxSeconds: number, log: (line: string) => void): Promise<number> {
  const deadline = performance.now() + maxSeconds * 1000;
  let warned = false;
  for (;;) {
    const machine = new MachineCpuSampler();
    machine.start();
    await sleep(500);
    const busy = Math.round(machine.stop() * 10) / 10;
    if (busy < QUIET_BUSY_PCT || performance.now() >= deadline) {
      if (busy >= QUIET_BUSY_PCT) log(`  machine still busy (${busy}% of one core used by other jobs); measuring anyway`);
      return busy;
    }
    if (!warned) {
      log(`  waiting up to ${maxSeconds} s for other jobs (${busy}% of one core busy) …`);
      warned = true;
    }
  }
}
