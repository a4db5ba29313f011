/**
 * The end of every run, whole or merged from slices: the delivery checker over the merged ledgers, the
 * scenario's assertions and the verdict. runScenario and `mqtt-sim merge` both call judgeRun.
 */
import { evaluateAssertions } from '../report/assertions.js';
import type { RunResult } from '../report/run-result.js';
import type { Scenario } from '../scenario/types.js';
import { buildCatalogs } from '../verify/catalog.js';
import { checkDeliveries, emptyCheckerResult, type CheckerResult } from '../verify/checker.js';
import type { SerializedLedgers } from '../verify/ledger.js';

/** The delivery checker over the merged ledgers; a failure inside it is reported in the result, never fatal to the run. */
export function runChecker(scenario: Scenario, protocolVersion: 4 | 5, ledgers: SerializedLedgers, outcome: RunResult['outcome']): CheckerResult {
  try {
    const checker = checkDeliveries(ledgers, buildCatalogs(scenario, protocolVersion));
    if (outcome !== 'completed') checker.notes.unshift(`the run ended ${outcome} without draining: losses near the end may be messages still in flight`);
    return checker;
  } catch (err) {
    return emptyCheckerResult(1000, `the delivery checker failed: ${err instanceof Error ? err.message : String(err)} (please report this)`);
  }
}

/**
 * Fills `checker`, `assertions` and `verdict` of a result whose other fields are final. `scenario` is the
 * one the run used (its target resolved); `ledgers` are the merged ledgers of every shard (or slice).
 */
export function judgeRun(result: RunResult, scenario: Scenario, ledgers: SerializedLedgers): RunResult {
  // A broker that breaks the protocol fails the run whatever the assertions say.
  const violations = result.brokerViolations?.total ?? 0;
  if (result.shard !== undefined && result.shard.count > 1) {
    // One slice of several sees only its own devices: a message it published may be received in another
    // slice, so judging deliveries or the scenario's assertions here would report false losses. The
    // slice passes when it ran to the end without a broker protocol violation; `merge` judges the run.
    result.assertions = [];
    result.verdict = result.outcome === 'completed' && violations === 0 ? 'pass' : 'fail';
    (result.notes ??= []).push(`slice ${result.shard.index} of ${result.shard.count}: the delivery checker and the assertions run when mqtt-sim merge combines the slices`);
    return result;
  }
  result.checker = runChecker(scenario, result.target.protocolVersion, ledgers, result.outcome);
  result.assertions = evaluateAssertions(scenario.expect, result);
  result.verdict = result.outcome === 'completed' && result.assertions.every((a) => a.passed) && violations === 0 ? 'pass' : 'fail';
  return result;
}
