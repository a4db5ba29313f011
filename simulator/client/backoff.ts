/**
 * Reconnect delays: exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff
 * And Jitter"): delay = random() × min(maxDelay, initial × multiplier^attempt).
 *
 * Full jitter spreads a fleet that lost the broker at the same instant over the whole window instead
 * of bunching it at the window's edge, which is what keeps a reconnect storm from synchronising.
 * Randomness comes from the injected seeded PRNG so a run replays with `--seed`.
 *
 * When the attempt counter resets is the client's choice (lean-client.ts): after a successful CONNACK.
 */

export interface BackoffPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  multiplier: number;
}

/** Past this many doublings the cap has long been reached; bounding the exponent avoids Infinity × 0 = NaN. */
const MAX_EXPONENT = 64;

/** The ceiling of the jitter window for `attempt` (0 = the first retry). */
export function backoffCeiling(attempt: number, policy: BackoffPolicy): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), MAX_EXPONENT);
  const grown = policy.initialDelayMs * Math.pow(Math.max(1, policy.multiplier), exponent);
  return Math.max(0, Math.min(policy.maxDelayMs, grown));
}

/** The delay before retry number `attempt`, in whole milliseconds: random() × ceiling. */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number): number {
  return Math.floor(random() * backoffCeiling(attempt, policy));
}

/**
 * The stateful form: `next()` returns the delay for the next retry and counts the attempt; `reset()`
 * starts over. The lean client keeps only the attempt number (one field per device) and calls
 * backoffDelay() directly; this class is for callers that prefer an object.
 */
export class Backoff {
  attempt = 0;

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly random: () => number,
  ) {}

  next(): number {
    return backoffDelay(this.attempt++, this.policy, this.random);
  }

  reset(): void {
    this.attempt = 0;
  }
}
