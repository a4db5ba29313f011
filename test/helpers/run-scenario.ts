/**
 * Helpers for tests that call runScenario in-process: shards run in real worker threads from the built
 * worker (vitest does not compile worker files), and a reporter that prints nothing.
 */
import { fileURLToPath } from 'node:url';
import type { Reporter } from '../../simulator/report/reporter.js';

/** dist/simulator/shard/worker.js; pair it with requireBuilt('simulator/shard/worker.js'). */
export const workerFile = fileURLToPath(new URL('../../dist/simulator/shard/worker.js', import.meta.url));

/** A reporter that prints nothing; pass the callbacks a test wants to watch. */
export function quietReporter(hooks: Partial<Reporter> = {}): Reporter {
  return { start() {}, phase() {}, point() {}, event() {}, finish() {}, ...hooks };
}
