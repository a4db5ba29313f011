/**
 * A token bucket: `rate` tokens per second, holding at most `capacity` (the burst a client may send
 * at once). Time comes from the caller (the broker's clock), so tests can freeze or advance it.
 */
export class TokenBucket {
  readonly rate: number;
  readonly capacity: number;
  private tokens: number;
  private updatedAt: number;

  /** Starts full: a client that just connected may send its burst at once. */
  constructor(rate: number, capacity: number, now: number) {
    if (!(rate > 0) || !(capacity >= 1)) throw new RangeError(`token bucket: rate must be > 0 and capacity >= 1, got ${rate} and ${capacity}`);
    this.rate = rate;
    this.capacity = capacity;
    this.tokens = capacity;
    this.updatedAt = now;
  }

  /** Takes one token if there is one; false means the caller is over the rate. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Tokens available at `now` (for tests and diagnostics). */
  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }

  private refill(now: number): void {
    // A clock that steps back (wall-clock adjustment) adds nothing rather than removing tokens.
    const elapsed = now - this.updatedAt;
    if (elapsed <= 0) return;
    this.updatedAt = now;
    const tokens = this.tokens + (elapsed * this.rate) / 1000;
    this.tokens = tokens < this.capacity ? tokens : this.capacity;
  }
}
