import yargs from 'yargs';
import { describe, expect, it } from 'vitest';
import { capacityCommandBuilder, capacityExitCode, parseByteSize, scheduleFromArgs, stepFailureLines, type CapacityArgs } from '../../../cli/commands/capacity.js';
import { errorCapacityResult, outageCapacityResult } from '../simulator/capacity/fixture-capacity.js';
import { ExitCode, UserError } from '../../../cli/exit-codes.js';

/** Parses `mqtt-sim capacity` arguments exactly as the command declares them, without running it. */
function parse(argv: string[]): CapacityArgs {
  return capacityCommandBuilder(
    yargs().strict().exitProcess(false).fail((message, error) => {
      throw error ?? new Error(message);
    }),
  ).parseSync(argv);
}

describe('mqtt-sim capacity flags', () => {
  it('parses with their defaults; --slo is required and --ramp takes devices or rate', () => {
    expect(parse(['--slo', 'qos1.lost==0'])).toMatchObject({ slo: 'qos1.lost==0', ramp: 'devices', 'max-steps': 8, hold: '30s', refine: 0, 'shard-cores': 1, 'shard-memory': '2GiB', report: true, json: false });
    expect(parse(['--slo', 'qos1.lost==0', '--ramp', 'rate', '--no-report', '--target', 'mqtt://a:1883', 'mqtt://b:1883'])).toMatchObject({ ramp: 'rate', report: false, target: ['mqtt://a:1883', 'mqtt://b:1883'] });
    expect(() => parse([])).toThrow(/Missing required argument: slo/);
    expect(() => parse(['--slo', 'x', '--ramp', 'both'])).toThrow(/Invalid values/);
  });

  it('builds the schedule: the scenario\'s own load by default, --step or --factor', () => {
    const base = { ramp: 'devices' as const, 'max-steps': 4 };
    expect(scheduleFromArgs(base, 250)).toEqual({ mode: 'devices', start: 250, maxSteps: 4 });
    expect(scheduleFromArgs({ ...base, start: 100, step: 50 }, 250)).toEqual({ mode: 'devices', start: 100, step: 50, maxSteps: 4 });
    expect(scheduleFromArgs({ ...base, factor: 1.5 }, 250)).toEqual({ mode: 'devices', start: 250, factor: 1.5, maxSteps: 4 });
    expect(scheduleFromArgs({ ramp: 'rate', 'max-steps': 3, step: 0.5 }, 1)).toEqual({ mode: 'rate', start: 1, step: 0.5, maxSteps: 3 });
  });

  it.each([
    [{ step: 10, factor: 2 }, '--step and --factor both given: choose one (--step adds load per step, --factor multiplies it)'],
    [{ factor: 1 }, '--factor: expected a number above 1 (e.g. 1.5), got 1'],
    [{ start: 2.5 }, '--start: expected a whole number of at least 1, got 2.5'],
    [{ step: 0 }, '--step: expected a whole number of at least 1, got 0'],
    [{ 'max-steps': 0 }, '--max-steps: expected a whole number of at least 1, got 0'],
    [{ 'max-steps': 500 }, '--max-steps: at most 100 steps, got 500'],
  ])('refuses %o with exit 2 and the fix', (flags, message) => {
    const call = (): unknown => scheduleFromArgs({ ramp: 'devices', 'max-steps': 8, ...flags }, 100);
    expect(call).toThrow(UserError);
    expect(call).toThrow(message);
    try {
      call();
    } catch (err) {
      expect((err as UserError).exitCode).toBe(ExitCode.BadUsage);
    }
  });

  it('reads memory sizes for --shard-memory', () => {
    expect(parseByteSize('2GiB')).toBe(2 * 1024 ** 3);
    expect(parseByteSize('512MiB')).toBe(512 * 1024 ** 2);
    expect(parseByteSize('1.5G')).toBe(1.5 * 1024 ** 3);
    expect(parseByteSize('4GB')).toBe(4e9);
    expect(parseByteSize('4096')).toBe(4096);
    expect(parseByteSize('lots')).toBeNull();
    expect(parseByteSize('2 GiBs')).toBeNull();
    expect(parseByteSize('0')).toBeNull();
  });

  it('exits 0 with a knee, 1 without one or when interrupted, and 3 or 4 after a step failed with an error', () => {
    const knee = { step: 2, devices: 20, offeredRate: 200, deliveredPerSec: 200 };
    const failed = (kind: 'target-unreachable' | 'internal') => ({ step: 3, refining: false, devices: 30, offeredRate: 300, kind, message: 'x' });
    expect(capacityExitCode({ stopReason: 'slo-broken', knee })).toBe(ExitCode.Ok);
    expect(capacityExitCode({ stopReason: 'max-steps', knee })).toBe(ExitCode.Ok);
    expect(capacityExitCode({ stopReason: 'generator-saturated', knee })).toBe(ExitCode.Ok);
    expect(capacityExitCode({ stopReason: 'slo-broken', knee: null })).toBe(ExitCode.AssertionFailed);
    expect(capacityExitCode({ stopReason: 'aborted', knee })).toBe(ExitCode.AssertionFailed);
    // The ramp did not finish, knee or not: the code says why.
    expect(capacityExitCode({ stopReason: 'error', knee, error: failed('target-unreachable') })).toBe(ExitCode.Unreachable);
    expect(capacityExitCode({ stopReason: 'error', knee, error: failed('internal') })).toBe(ExitCode.Internal);
    // The target stopped answering during a step: an outage, exit 3 as for an unreachable target.
    expect(capacityExitCode({ stopReason: 'error', knee, error: { ...failed('target-unreachable'), duringStep: true } })).toBe(ExitCode.Unreachable);
  });

  it('says on stderr which step failed and why, and for an outage that the step is left out, with its run', () => {
    expect(stepFailureLines(errorCapacityResult(), '/tmp/out', undefined)).toEqual([
      `step 3 could not reach the target, so the ramp stopped there: ${errorCapacityResult().error!.message}`,
      'the report covers the 2 steps before it; exit code 3 (target unreachable)',
    ]);
    expect(stepFailureLines(outageCapacityResult(), '/tmp/out', undefined)).toEqual([
      'step 3 is left out, an outage is not a capacity limit: the target stopped answering during step 3: after the step, target mqtt://127.0.0.1:40123 is unreachable: ECONNREFUSED (its run: /tmp/out/step-3/run.json)',
      'the report covers the 2 steps before it; exit code 3 (target unreachable)',
    ]);
  });
});
