/**
 * Crash soak: many SIGKILL/restart cycles of the broker on one data dir under QoS 1 and QoS 2 load
 * (the engine is crash-engine.ts, shared with test/e2e/crash-durability.test.ts).
 *
 *   npm run soak:crash -- [--cycles N] [--seed S] [--durability process|power] [--data-dir DIR] [--keep]
 *
 * Progress goes to stderr, one line per cycle; the totals go to stdout as one JSON document. Exit code
 * 0 when nothing acknowledged was lost, no QoS 2 message was delivered twice, and retained messages and
 * subscriptions survived every cycle; 1 otherwise; 4 when the harness itself failed.
 * The data dir is a fresh temporary one (removed afterwards unless --keep or --data-dir is given).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CrashRig, formatCycle, killAllSpawned, type CycleReport } from './crash-engine.js';

const cliMain = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

function positiveInteger(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`crash-soak: --${name} expects a positive integer, got ${JSON.stringify(text)}\n`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      cycles: { type: 'string' },
      seed: { type: 'string' },
      durability: { type: 'string' },
      'data-dir': { type: 'string' },
      keep: { type: 'boolean' },
    },
  });
  const cycles = positiveInteger('cycles', values.cycles, 100);
  const seed = positiveInteger('seed', values.seed, Math.floor(Math.random() * 2 ** 31) + 1);
  const durability = values.durability ?? 'process';
  if (durability !== 'process' && durability !== 'power') {
    process.stderr.write(`crash-soak: --durability expects process or power, got ${JSON.stringify(durability)}\n`);
    return 2;
  }
  const dataDir = values['data-dir'] ?? mkdtempSync(join(tmpdir(), 'mqtt-sim-crash-soak-'));
  const removeDir = values['data-dir'] === undefined && values.keep !== true;

  process.stderr.write(`crash-soak: ${cycles} cycles, seed ${seed}, durability ${durability}, data dir ${dataDir}\n`);
  const rig = new CrashRig({ cliMain, dataDir, seed, durability });
  const stop = (): void => {
    void rig.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  let failure: Error | undefined;
  const failed: CycleReport[] = [];
  try {
    await rig.start();
    for (let i = 0; i < cycles; i++) {
      const r = await rig.runCycle();
      if (r.lost > 0 || r.qos2Duplicates > 0 || !r.retainedOk || !r.subscriptionsOk || r.problems.length > 0) failed.push(r);
      process.stderr.write(`${formatCycle(r)}\n`);
    }
  } catch (err) {
    failure = err instanceof Error ? err : new Error(String(err));
    process.stderr.write(`crash-soak: harness failure in cycle ${rig.cycles.length + 1}: ${failure.stack ?? failure.message}\n`);
    const stderr = rig.brokerStderr().trim();
    if (stderr !== '') process.stderr.write(`broker stderr:\n${stderr}\n`);
  } finally {
    await rig.close();
    await killAllSpawned();
    if (removeDir) rmSync(dataDir, { recursive: true, force: true });
  }

  const t = rig.totals();
  const summary = {
    cycles: t.cycles,
    kills: t.kills,
    seed,
    durability,
    published: t.published,
    acknowledged: t.acknowledged,
    acknowledgedBeforeKill: t.acknowledgedBeforeKill,
    delivered: t.delivered,
    lost: t.lost,
    qos2Duplicates: t.qos2Duplicates,
    qos1Duplicates: t.qos1Duplicates,
    retainedOk: t.retainedOk,
    subscriptionsOk: t.subscriptionsOk,
    problems: t.problems,
    failedCycles: failed.map((r) => r.cycle),
    harnessFailure: failure?.message ?? null,
    durationMs: t.durationMs,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  if (failure !== undefined) return 4;
  return failed.length > 0 || t.cycles < cycles ? 1 : 0;
}

process.exitCode = await main();
