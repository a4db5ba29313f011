/**
 * A bounded poll, for state that no event announces (a deadline passing inside the broker, a frame
 * that ink writes on its own schedule). Fails with `what` once `ms` have passed; never a bare sleep.
 */
export async function waitUntil(condition: () => boolean, ms: number, what: string, everyMs = 10): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
