/**
 * The durability rule (../shared/DESIGN.md) against the built broker as a child process: SIGKILL at random
 * moments under QoS 1 and QoS 2 load loses nothing that was acknowledged, delivers no QoS 2 message twice,
 * and keeps retained messages and subscriptions (the cycle engine is bench/soak/crash-engine.ts, also run
 * for 100+ cycles by `npm run soak:crash`). And a data dir the broker cannot use — locked by another
 * broker, a corrupt database, a path it cannot create — is refused with exit 2 and a clear message,
 * without touching what is there.
 *
 * Seeds are fixed so a failure can be replayed; CRASH_SEED=n overrides them.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAllClients, collect, connectClient } from '../helpers/broker.js';
import { killAllChildren, spawnChild, type Child } from '../helpers/child-process.js';
import { cliMain, requireBuilt } from '../helpers/cli-process.js';
import { stderrProblems } from '../helpers/log-lines.js';
import { createCrashRig, createRng, formatCycle, sumReports, type CrashRig, type CycleReport } from '../helpers/crash-harness.js';

const LISTENING = /^mqtt-sim broker listening on 127\.0\.0\.1:(\d+)$/;
const STACK_FRAME = /\n\s+at /;
const DB_FILE = 'mqtt-sim.db';

const cleanups: Array<() => void | Promise<void>> = [];
const rigs: CrashRig[] = [];

beforeAll(() => requireBuilt('cli/main.js'));

afterEach(async () => {
  await closeAllClients();
  for (const rig of rigs.splice(0)) await rig.close();
  await killAllChildren();
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-sim-crash-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function seed(fallback: number): number {
  const fromEnv = Number(process.env['CRASH_SEED']);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : fallback;
}

function startBroker(dataDir: string, ...extra: string[]): Child {
  return spawnChild(process.execPath, [cliMain, 'broker', '--port', '0', '--data-dir', dataDir, '--sys-interval', '0', ...extra]);
}

async function listeningPort(broker: Child): Promise<number> {
  const line = await broker.waitForLine((l) => LISTENING.test(l), 10_000, 'the broker never printed its listening line');
  return Number(LISTENING.exec(line)![1]);
}

/** Every file in a directory with its bytes. */
function snapshot(dir: string): Map<string, Buffer> {
  return new Map(readdirSync(dir).sort().map((name) => [name, readFileSync(join(dir, name))]));
}

async function runCycles(rig: CrashRig, cycles: number): Promise<CycleReport[]> {
  await rig.start();
  const reports: CycleReport[] = [];
  for (let i = 0; i < cycles; i++) reports.push(await rig.runCycle());
  return reports;
}

function expectDurable(reports: CycleReport[], seedUsed: number): void {
  const log = `seed ${seedUsed} (replay with CRASH_SEED=${seedUsed})\n${reports.map(formatCycle).join('\n')}`;
  const totals = sumReports(reports, 0);
  // The rig really ran under load and the kills really hit flows in progress.
  expect(reports.every((r) => r.acknowledged > 0), log).toBe(true);
  expect(totals.acknowledgedBeforeKill, log).toBeGreaterThan(0);
  expect(reports.reduce((n, r) => n + r.resentPublish + r.resentPubrel, 0), log).toBeGreaterThan(0);
  // The guarantees.
  expect({ lost: totals.lost, qos2Duplicates: totals.qos2Duplicates }, log).toEqual({ lost: 0, qos2Duplicates: 0 });
  expect(reports.filter((r) => !r.retainedOk).map((r) => r.cycle), log).toEqual([]);
  expect(reports.filter((r) => !r.subscriptionsOk).map((r) => r.cycle), log).toEqual([]);
  expect(reports.flatMap((r) => r.problems), log).toEqual([]);
}

describe('crash durability: SIGKILL under QoS 1/2 load (built broker as a child process)', () => {
  it('10 kill cycles on one data dir: nothing acknowledged lost, no QoS 2 duplicate, retained and subscriptions survive', async () => {
    const s = seed(20_240_611);
    const rig = createCrashRig({ dataDir: join(tempDir(), 'data'), seed: s });
    rigs.push(rig);
    const reports = await runCycles(rig, 10);
    expectDurable(reports, s);
    // A subscription acknowledged during the load was checked after the restart at least once.
    expect(reports.some((r) => r.subackBeforeKill), reports.map(formatCycle).join('\n')).toBe(true);
  }, 120_000);

  it('3 kill cycles with --durability power', async () => {
    const s = seed(7_777);
    const rig = createCrashRig({ dataDir: join(tempDir(), 'data'), seed: s, durability: 'power' });
    rigs.push(rig);
    expectDurable(await runCycles(rig, 3), s);
  }, 60_000);
});

describe('a data dir the broker cannot use is refused with exit 2, and left as it was', () => {
  it('a database locked by a running broker: the second exits 2, the first keeps working and nothing changed', async () => {
    const dataDir = join(tempDir(), 'data');
    const first = startBroker(dataDir);
    const port = await listeningPort(first);
    // The first broker is idle (no clients, no $SYS), so its files must not change while the second tries.
    const before = snapshot(dataDir);

    const second = startBroker(dataDir);
    expect(await second.exited(10_000)).toEqual({ code: 2, signal: null });
    expect(second.stderr()).toContain(`${join(dataDir, DB_FILE)} is in use by another broker (locked): stop it or choose another --data-dir`);
    expect(second.stderr()).not.toMatch(STACK_FRAME);
    expect(second.lines).toEqual([]);
    expect(snapshot(dataDir)).toEqual(before);

    // The first broker still serves, and still persists: a retained message survives its SIGKILL.
    const url = `mqtt://127.0.0.1:${port}`;
    const sub = await connectClient(url, { clientId: 'locked-sub', protocolVersion: 5 });
    const inbox = collect(sub);
    await sub.subscribeAsync('locked/#', { qos: 1 });
    const pub = await connectClient(url, { clientId: 'locked-pub', protocolVersion: 5 });
    await pub.publishAsync('locked/state', 'still-working', { qos: 1, retain: true });
    const [message] = await inbox.waitFor(1);
    expect(message!.payload.toString()).toBe('still-working');
    expect(first.hasExited()).toBe(false);
    // No plain-text message and no log record at warn or above (info records are the default log).
    expect(stderrProblems(first.stderr())).toEqual([]);

    await closeAllClients();
    first.kill('SIGKILL');
    await first.exited(10_000);
    const restarted = startBroker(dataDir);
    const check = await connectClient(`mqtt://127.0.0.1:${await listeningPort(restarted)}`, { clientId: 'locked-check', protocolVersion: 5 });
    const retained = collect(check);
    await check.subscribeAsync('locked/#', { qos: 1 });
    const [kept] = await retained.waitFor(1);
    expect(kept!.payload.toString()).toBe('still-working');
    expect(kept!.packet.retain).toBe(true);
  });

  it('garbage bytes in mqtt-sim.db: exit 2 naming the file, and the file is byte-identical afterwards', async () => {
    const dataDir = tempDir();
    const random = createRng(99);
    const garbage = Buffer.alloc(16_384, 0);
    for (let i = 0; i < garbage.length; i++) garbage[i] = Math.floor(random() * 256);
    writeFileSync(join(dataDir, DB_FILE), garbage);
    const before = snapshot(dataDir);

    const broker = startBroker(dataDir);
    expect(await broker.exited(10_000)).toEqual({ code: 2, signal: null });
    expect(broker.stderr()).toContain(`${join(dataDir, DB_FILE)} is not a valid mqtt-sim database`);
    expect(broker.stderr()).toContain('move it away to start fresh; nothing was changed');
    expect(broker.stderr()).not.toMatch(STACK_FRAME);
    expect(broker.lines).toEqual([]);
    expect(snapshot(dataDir)).toEqual(before);
  });

  it('an mqtt-sim database with a damaged page: exit 2, and the file is byte-identical afterwards', async () => {
    const dataDir = tempDir();
    // A real store with some content, closed cleanly (no WAL left).
    const writer = startBroker(dataDir);
    const client = await connectClient(`mqtt://127.0.0.1:${await listeningPort(writer)}`, { clientId: 'damage-writer', clean: false });
    for (let i = 0; i < 50; i++) await client.publishAsync(`damage/${i}`, Buffer.alloc(400, i), { qos: 1, retain: true });
    await closeAllClients();
    writer.kill('SIGTERM');
    expect(await writer.exited(10_000)).toEqual({ code: 0, signal: null });
    expect(readdirSync(dataDir)).toEqual([DB_FILE]);

    // Page 3 (the first table's b-tree root; page 2 is auto_vacuum's pointer map) overwritten with garbage.
    const file = join(dataDir, DB_FILE);
    const bytes = readFileSync(file);
    expect(bytes.length).toBeGreaterThan(4 * 4096);
    const random = createRng(3);
    for (let i = 2 * 4096; i < 3 * 4096; i++) bytes[i] = Math.floor(random() * 256);
    writeFileSync(file, bytes);
    const before = snapshot(dataDir);

    const broker = startBroker(dataDir);
    expect(await broker.exited(10_000)).toEqual({ code: 2, signal: null });
    expect(broker.stderr()).toContain(`${file} is not a valid mqtt-sim database`);
    expect(broker.stderr()).toContain('nothing was changed');
    expect(broker.stderr()).not.toMatch(STACK_FRAME);
    expect(broker.lines).toEqual([]);
    expect(snapshot(dataDir)).toEqual(before);
  });

  it('a data dir below a regular file (cannot be created, even as root): exit 2 naming the dir', async () => {
    const dir = tempDir();
    const plain = join(dir, 'plain-file');
    writeFileSync(plain, 'not a directory\n');
    const dataDir = join(plain, 'data');

    const broker = startBroker(dataDir);
    expect(await broker.exited(10_000)).toEqual({ code: 2, signal: null });
    expect(broker.stderr()).toContain(`mqtt-sim: cannot create data dir ${dataDir}: ENOTDIR`);
    expect(broker.stderr()).not.toMatch(STACK_FRAME);
    expect(broker.lines).toEqual([]);
    expect(readFileSync(plain, 'utf8')).toBe('not a directory\n');
    expect(readdirSync(dir)).toEqual(['plain-file']);
  });

  it('a data dir that is a regular file: exit 2, and the file is untouched', async () => {
    const dir = tempDir();
    const plain = join(dir, 'plain-file');
    writeFileSync(plain, 'not a directory\n');

    const broker = startBroker(plain);
    expect(await broker.exited(10_000)).toEqual({ code: 2, signal: null });
    expect(broker.stderr()).toContain(`mqtt-sim: data dir ${plain} is not a directory`);
    expect(broker.stderr()).not.toMatch(STACK_FRAME);
    expect(readFileSync(plain, 'utf8')).toBe('not a directory\n');
  });
});
