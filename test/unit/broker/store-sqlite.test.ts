import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import ts from 'typescript';
import { afterEach, describe, expect, it } from 'vitest';
import { APPLICATION_ID, CREATE_SCHEMA_V1, SCHEMA_VERSION } from '../../../broker/store/sqlite-schema.js';
import { SqliteStore, StoreCommitError, StoreOpenError, type SqliteStoreOptions } from '../../../broker/store/sqlite.js';
import type { QueueEntry, StoredMessage } from '../../../broker/store/types.js';
import { killAllChildren, spawnChild } from '../../helpers/child-process.js';
import { storeContract } from '../../helpers/store-contract.js';

// ------------------------------------------------------------------------------------------------
// Temp dirs and stores, cleaned up after every test

const tempDirs: string[] = [];
const openStores: SqliteStore[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(os.tmpdir() + '/mqtt-sim-');
  tempDirs.push(dir);
  return dir;
}

function open(dataDir: string, options: Omit<SqliteStoreOptions, 'dataDir'> = {}): SqliteStore {
  const store = SqliteStore.open({ dataDir, ...options });
  openStores.push(store);
  return store;
}

afterEach(async () => {
  await killAllChildren();
  for (const store of openStores.splice(0)) store.closeWithoutFlush();
  for (const dir of tempDirs.splice(0)) {
    // chmod'ed dirs (non-root runs) must be writable again to be removed.
    try {
      fs.chmodSync(dir, 0o755);
      for (const name of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, name), 0o755);
    } catch {
      // Best effort.
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------------------------------------
// The contract. reopen() simulates a crash right after the last commit: it copies the database files
// as they are on disk (what a SIGKILL at that instant leaves behind, since a commit has written the
// WAL) and opens a new store on the copy. The old store keeps the directory and its EXCLUSIVE lock and
// stays readable, which the contract relies on (`for (const s of [store, restart()])` reads the old
// store after the restart).

storeContract('sqlite', () => {
  const dirs = [fs.mkdtempSync(os.tmpdir() + '/mqtt-sim-')];
  const stores = [SqliteStore.open({ dataDir: dirs[0]! })];
  return {
    store: stores[0]!,
    reopen: () => {
      const from = dirs[dirs.length - 1]!;
      const to = fs.mkdtempSync(os.tmpdir() + '/mqtt-sim-');
      dirs.push(to);
      for (const name of fs.readdirSync(from)) fs.copyFileSync(path.join(from, name), path.join(to, name));
      const store = SqliteStore.open({ dataDir: to });
      stores.push(store);
      return store;
    },
    cleanup: () => {
      for (const store of stores) store.closeWithoutFlush();
      for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteStore: crash and reopen on the same data dir', () => {
  it('closeWithoutFlush() releases the lock; a store opened on the same dir has everything committed', () => {
    const dir = tempDir();
    const first = open(dir);
    first.saveSession({ clientId: 'c1', protocolVersion: 5, expiryInterval: 100 });
    first.saveSubscription({ clientId: 'c1', filter: 'a/#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 });
    const id = first.putMessage(msg('a/1'));
    first.enqueue('c1', entry(1, id));
    first.setRetained('a/1', id);
    first.flush();
    first.closeWithoutFlush();
    const second = open(dir);
    expect(second.loadSessions().map((s) => s.clientId)).toEqual(['c1']);
    expect(second.loadSubscriptions().map((s) => s.filter)).toEqual(['a/#']);
    expect(second.loadQueue('c1').map((e) => e.messageId)).toEqual([id]);
    expect(second.loadRetained().map((r) => r.messageId)).toEqual([id]);
    expect(second.messageCount()).toBe(1);
  });
});

// ------------------------------------------------------------------------------------------------

function msg(topic: string, extra: Partial<StoredMessage> = {}): StoredMessage {
  return { topic, payload: Buffer.from(`payload of ${topic}`), qos: 1, retain: false, ...extra };
}

function entry(seq: number, messageId: number, extra: Partial<QueueEntry> = {}): QueueEntry {
  return { seq, messageId, qos: 1, state: 'queued', retain: false, ...extra };
}

/** Resolves after the commit point the store scheduled (setImmediate callbacks run in order). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function openError(dataDir: string, options: Omit<SqliteStoreOptions, 'dataDir'> = {}): StoreOpenError {
  try {
    open(dataDir, options);
  } catch (err) {
    expect(err).toBeInstanceOf(StoreOpenError);
    return err as StoreOpenError;
  }
  throw new Error(`opening ${dataDir} did not fail`);
}

function dirSnapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir).sort()) out[name] = fs.readFileSync(path.join(dir, name)).toString('hex');
  return out;
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

describe('SqliteStore: opening', () => {
  it('creates the data dir and mqtt-sim.db in WAL mode with an exclusive lock', () => {
    const dir = path.join(tempDir(), 'nested', 'data');
    const store = open(dir);
    expect(store.kind).toBe('sqlite');
    expect(store.durable).toBe(true);
    expect(store.file).toBe(path.join(dir, 'mqtt-sim.db'));
    expect(fs.existsSync(store.file)).toBe(true);
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('locking_mode', { simple: true })).toBe('exclusive');
    expect(store.db.pragma('auto_vacuum', { simple: true })).toBe(2); // INCREMENTAL
    expect(store.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    // EXCLUSIVE before the first WAL access: no shared-memory file.
    expect(fs.existsSync(store.file + '-shm')).toBe(false);
  });

  it("uses synchronous = NORMAL for durability 'process' (default) and FULL for 'power'", () => {
    expect(open(tempDir()).db.pragma('synchronous', { simple: true })).toBe(1);
    expect(open(tempDir(), { durability: 'process' }).db.pragma('synchronous', { simple: true })).toBe(1);
    const power = open(tempDir(), { durability: 'power' });
    expect(power.durability).toBe('power');
    expect(power.db.pragma('synchronous', { simple: true })).toBe(2);
  });

  it('honours fileName', () => {
    const dir = tempDir();
    const store = open(dir, { fileName: 'other.db' });
    expect(store.file).toBe(path.join(dir, 'other.db'));
    expect(fs.existsSync(path.join(dir, 'mqtt-sim.db'))).toBe(false);
  });

  it('refuses a data dir that is locked by another broker, and leaves that broker working', () => {
    const dir = tempDir();
    const first = open(dir);
    first.saveSession({ clientId: 'c1', protocolVersion: 5, expiryInterval: 10 });
    first.flush();

    const error = openError(dir);
    expect(error.message).toBe(
      `${path.join(dir, 'mqtt-sim.db')} is in use by another broker (locked): stop it or choose another --data-dir`,
    );

    first.saveSession({ clientId: 'c2', protocolVersion: 5, expiryInterval: 10 });
    first.close();
    const second = open(dir);
    expect(second.loadSessions().map((s) => s.clientId)).toEqual(['c1', 'c2']);
  });

  it('refuses a file of garbage bytes and leaves it (and the dir) byte-identical', () => {
    const dir = tempDir();
    const garbage = Buffer.alloc(16384);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) % 251;
    fs.writeFileSync(path.join(dir, 'mqtt-sim.db'), garbage);
    const before = dirSnapshot(dir);

    const error = openError(dir);
    expect(error.message).toMatch(/mqtt-sim\.db is not a valid mqtt-sim database \(.+\): move it away to start fresh; nothing was changed$/);
    expect(dirSnapshot(dir)).toEqual(before);
    // Still refused the second time: nothing was "repaired" or started fresh.
    expect(openError(dir).message).toMatch(/is not a valid mqtt-sim database/);
    expect(dirSnapshot(dir)).toEqual(before);
  });

  it('refuses a database whose pages are corrupt (quick_check) and leaves it unchanged', () => {
    const dir = tempDir();
    const store = open(dir);
    for (let i = 0; i < 200; i++) store.enqueue('c1', entry(i, store.putMessage(msg(`t/${i}`, { payload: Buffer.alloc(500, i) }))));
    store.close();
    const file = path.join(dir, 'mqtt-sim.db');
    const bytes = fs.readFileSync(file);
    expect(bytes.length).toBeGreaterThan(4 * 4096);
    // Scribble over the b-tree page headers of pages 3 and 4 (page 1 holds the file header).
    bytes.fill(0xff, 2 * 4096, 2 * 4096 + 64);
    bytes.fill(0x00, 3 * 4096, 3 * 4096 + 64);
    fs.writeFileSync(file, bytes);
    const before = dirSnapshot(dir);

    expect(openError(dir).message).toMatch(/is not a valid mqtt-sim database \(.+\): move it away to start fresh; nothing was changed$/);
    expect(dirSnapshot(dir)).toEqual(before);
  });

  it('refuses a SQLite database that belongs to something else', () => {
    const dir = tempDir();
    const file = path.join(dir, 'mqtt-sim.db');
    const other = new Database(file);
    other.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices VALUES (1, 9.5)');
    other.close();
    const before = dirSnapshot(dir);
    expect(openError(dir).message).toMatch(/is not a valid mqtt-sim database \(it holds tables \(invoices\) but no mqtt-sim schema\)/);
    expect(dirSnapshot(dir)).toEqual(before);
  });

  it('refuses a database written by a newer schema version and leaves it unchanged', () => {
    const dir = tempDir();
    const store = open(dir);
    store.saveSession({ clientId: 'c1', protocolVersion: 5, expiryInterval: 10 });
    store.close();
    const raw = new Database(path.join(dir, 'mqtt-sim.db'));
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    const before = dirSnapshot(dir);

    const error = openError(dir);
    expect(error.message).toContain(`was written by a newer mqtt-sim (schema version ${SCHEMA_VERSION + 1}`);
    expect(error.message).toContain('nothing was changed');
    expect(dirSnapshot(dir)).toEqual(before);
  });

  it('migrates a schema version 1 database to version 2 and keeps its data', () => {
    const dir = tempDir();
    // A database as version 1 wrote it.
    const raw = new Database(path.join(dir, 'mqtt-sim.db'));
    raw.pragma('auto_vacuum = INCREMENTAL');
    raw.pragma('journal_mode = WAL');
    raw.exec(CREATE_SCHEMA_V1);
    raw.pragma(`application_id = ${APPLICATION_ID}`);
    raw.pragma('user_version = 1');
    raw.exec(`INSERT INTO sessions (client_id, protocol_version, expiry_interval) VALUES ('c1', 4, ${0xffffffff})`);
    raw.exec(`INSERT INTO messages (id, topic, payload, qos, retain) VALUES (1, 'v1/1', x'01', 1, 0), (2, 'v1/2', x'02', 1, 0)`);
    raw.exec(`INSERT INTO queue (client_id, seq, message_id, qos, state, packet_id, retain) VALUES ('c1', 1, 1, 1, 1, 7, 0), ('c1', 2, 2, 1, 0, NULL, 0)`);
    raw.close();

    const migrated = open(dir);
    expect(migrated.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(migrated.loadQueue('c1').map(({ seq, state, packetId, message }) => ({ seq, state, packetId, topic: message.topic }))).toEqual([
      { seq: 1, state: 'sent', packetId: 7, topic: 'v1/1' },
      { seq: 2, state: 'queued', packetId: undefined, topic: 'v1/2' },
    ]);
    expect(migrated.messageCount()).toBe(2);
    migrated.updateQueueEntry('c1', 2, { state: 'sent', packetId: 8 });
    migrated.enqueue('c1', entry(3, migrated.putMessage(msg('v2/3'))));
    migrated.close();
    const reopened = open(dir);
    expect(reopened.loadQueue('c1').map(({ seq, state, packetId, message }) => ({ seq, state, packetId, topic: message.topic }))).toEqual([
      { seq: 1, state: 'sent', packetId: 7, topic: 'v1/1' },
      { seq: 2, state: 'sent', packetId: 8, topic: 'v1/2' },
      { seq: 3, state: 'queued', packetId: undefined, topic: 'v2/3' },
    ]);
    expect(reopened.messageCount()).toBe(3);
  });

  it('refuses a data dir that cannot be created or written', () => {
    const base = tempDir();
    const isRoot = process.getuid?.() === 0;
    let dataDir: string;
    if (isRoot) {
      // chmod does not stop root: a path below a regular file can never be a directory.
      const file = path.join(base, 'a-file');
      fs.writeFileSync(file, 'x');
      dataDir = path.join(file, 'sub');
    } else {
      const readOnly = path.join(base, 'read-only');
      fs.mkdirSync(readOnly, { mode: 0o555 });
      dataDir = path.join(readOnly, 'sub');
    }
    const error = openError(dataDir);
    expect(error.message).toMatch(new RegExp(`^cannot create data dir ${escape(dataDir)}: E(NOTDIR|ACCES)`));
    expect(fs.existsSync(dataDir)).toBe(false);

    if (!isRoot) {
      const readOnly = path.join(base, 'read-only');
      expect(openError(readOnly).message).toMatch(/^data dir .* is not writable/);
    }
  });

  it('refuses a data dir that is a file', () => {
    const file = path.join(tempDir(), 'not-a-dir');
    fs.writeFileSync(file, 'x');
    expect(openError(file).message).toBe(`data dir ${file} is not a directory`);
    expect(fs.readFileSync(file, 'utf8')).toBe('x');
  });
});

describe('SqliteStore: group commit', () => {
  it('makes the writes of one event-loop turn one transaction', async () => {
    const store = open(tempDir());
    const before = store.commitCount;
    for (let i = 1; i <= 100; i++) {
      store.enqueue('c1', entry(i, store.putMessage(msg(`t/${i}`))));
      store.updateQueueEntry('c1', i, { state: 'sent', packetId: i });
    }
    expect(store.db.inTransaction).toBe(true);
    expect(store.commitCount).toBe(before);
    await nextTurn();
    expect(store.db.inTransaction).toBe(false);
    expect(store.commitCount).toBe(before + 1);

    for (let i = 1; i <= 100; i++) store.dequeue('c1', i);
    await nextTurn();
    expect(store.commitCount).toBe(before + 2);

    // A turn that only reads commits nothing.
    store.loadQueue('c1');
    store.messageCount();
    await nextTurn();
    expect(store.commitCount).toBe(before + 2);
    expect(store.messageCount()).toBe(0);
  });

  it('never runs an effect synchronously, even with no transaction open', async () => {
    const store = open(tempDir());
    const ran: string[] = [];
    store.afterCommit(() => ran.push('no writes'));
    expect(ran).toEqual([]);
    await nextTurn();
    expect(ran).toEqual(['no writes']);

    store.saveSession({ clientId: 'c1', protocolVersion: 5, expiryInterval: 10 });
    store.afterCommit(() => ran.push('after write'));
    expect(ran).toEqual(['no writes']);
    await nextTurn();
    expect(ran).toEqual(['no writes', 'after write']);
  });

  it('runs effects only after COMMIT: a copy of the files taken inside the effect (a kill at that instant) has the data', async () => {
    const dir = tempDir();
    const snapshot = tempDir();
    const store = open(dir);
    const commitsBefore = store.commitCount;
    let checked = false;

    store.saveSession({ clientId: 'c1', protocolVersion: 5, expiryInterval: 100 });
    const id = store.putMessage(msg('durable/1', { qos: 2, payload: Buffer.from([0, 1, 2, 255]) }));
    store.enqueue('c1', entry(1, id, { qos: 2 }));
    store.setRetained('durable/1', id);
    store.addInboundQos2('c1', 9);
    store.afterCommit(() => {
      expect(store.db.inTransaction).toBe(false);
      expect(store.commitCount).toBe(commitsBefore + 1);
      // The committed transaction is in the WAL (OS page cache), not only in SQLite's own memory.
      for (const name of fs.readdirSync(dir)) fs.copyFileSync(path.join(dir, name), path.join(snapshot, name));
      checked = true;
    });
    await nextTurn();
    expect(checked).toBe(true);
    store.closeWithoutFlush();

    const recovered = open(snapshot);
    expect(recovered.loadSessions().map((s) => s.clientId)).toEqual(['c1']);
    const [queued] = recovered.loadQueue('c1');
    expect(queued?.message.topic).toBe('durable/1');
    expect(queued?.message.payload.toString('hex')).toBe('000102ff');
    expect(recovered.loadRetained().map((r) => r.messageId)).toEqual([id]);
    expect(recovered.loadInboundQos2('c1')).toEqual([9]);
    expect(recovered.messageCount()).toBe(1);
  });

  it('a crash before the commit loses the uncommitted writes and their effects never run', async () => {
    const dir = tempDir();
    const store = open(dir);
    store.saveSession({ clientId: 'kept', protocolVersion: 5, expiryInterval: 100 });
    store.enqueue('kept', entry(1, store.putMessage(msg('kept/1'))));
    let keptRan = 0;
    store.afterCommit(() => keptRan++);
    store.flush();
    expect(keptRan).toBe(1);

    let lostRan = 0;
    store.saveSession({ clientId: 'lost', protocolVersion: 5, expiryInterval: 100 });
    store.enqueue('kept', entry(2, store.putMessage(msg('lost/2'))));
    store.dequeue('kept', 1);
    store.afterCommit(() => lostRan++);
    store.closeWithoutFlush();
    await sleep(20);
    expect(lostRan).toBe(0);
    expect(keptRan).toBe(1);
    expect(() => store.loadSessions()).toThrow('store is closed');

    const reopened = open(dir);
    expect(reopened.loadSessions().map((s) => s.clientId)).toEqual(['kept']);
    expect(reopened.loadQueue('kept').map((e) => e.message.topic)).toEqual(['kept/1']);
    expect(reopened.messageCount()).toBe(1);
  });

  it('keeps registration order when effects write, register more effects and flush', async () => {
    const store = open(tempDir());
    const ran: string[] = [];
    store.addInboundQos2('c1', 1);
    store.afterCommit(() => {
      ran.push('a');
      store.addInboundQos2('c1', 2);
      store.afterCommit(() => ran.push('d'));
      store.flush(); // Re-entrant: b and c were registered before d and still run first.
      ran.push('a-end');
    });
    store.afterCommit(() => ran.push('b'));
    store.afterCommit(() => ran.push('c'));
    await nextTurn();
    expect(ran).toEqual(['a', 'b', 'c', 'd', 'a-end']);

    // flush() drains effects registered (after writes) by the effects it runs.
    ran.length = 0;
    store.afterCommit(() => {
      ran.push('x');
      store.addInboundQos2('c1', 3);
      store.afterCommit(() => ran.push('y'));
    });
    store.flush();
    expect(ran).toEqual(['x', 'y']);
    expect(store.db.inTransaction).toBe(false);
  });

  it('runs the other effects of a batch when one throws, then rethrows the first error', () => {
    const store = open(tempDir());
    const ran: number[] = [];
    store.afterCommit(() => ran.push(1));
    store.afterCommit(() => {
      throw new Error('effect 2 failed');
    });
    store.afterCommit(() => ran.push(3));
    store.afterCommit(() => {
      throw new Error('effect 4 failed');
    });
    expect(() => store.flush()).toThrow('effect 2 failed');
    expect(ran).toEqual([1, 3]);
    store.flush();
    expect(ran).toEqual([1, 3]);
  });

  it('close() flushes pending writes and effects; later calls throw; close() may be repeated', () => {
    const dir = tempDir();
    const store = open(dir);
    let ran = 0;
    store.saveSession({ clientId: 'c1', protocolVersion: 4, expiryInterval: 0xffffffff });
    store.afterCommit(() => ran++);
    store.close();
    store.close();
    expect(ran).toBe(1);
    const calls: Array<() => unknown> = [
      () => store.loadSessions(),
      () => store.loadQueue('c'),
      () => store.saveSession({ clientId: 'c', protocolVersion: 4, expiryInterval: 0 }),
      () => store.putMessage(msg('t')),
      () => store.enqueue('c', entry(1, 1)),
      () => store.dequeue('c', 1),
      () => store.messageCount(),
      () => store.afterCommit(() => undefined),
      () => store.flush(),
    ];
    for (const call of calls) expect(call).toThrow('store is closed');
    expect(open(dir).loadSessions().map((s) => s.clientId)).toEqual(['c1']);
  });
});

describe('SqliteStore: failures', () => {
  /**
   * Makes the next COMMIT fail for real: a deferred foreign key violated in a TEMP table (the main
   * database is untouched) is only checked at COMMIT, which then fails and leaves the transaction open.
   */
  function armCommitFailure(store: SqliteStore): () => void {
    store.db.pragma('foreign_keys = ON');
    store.db.exec(
      'CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY); ' +
        'CREATE TEMP TABLE child (pid INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)',
    );
    return () => store.db.prepare('INSERT INTO temp.child VALUES (404)').run();
  }

  it('a failed COMMIT rolls the batch back, drops its effects and reports to onError; the store keeps working', async () => {
    const dir = tempDir();
    const errors: StoreCommitError[] = [];
    const store = open(dir, { onError: (err) => errors.push(err) });
    const violate = armCommitFailure(store);
    store.saveSession({ clientId: 'before', protocolVersion: 5, expiryInterval: 1 });
    await nextTurn();

    const ran: string[] = [];
    store.saveSession({ clientId: 'lost', protocolVersion: 5, expiryInterval: 1 });
    store.enqueue('lost', entry(1, store.putMessage(msg('lost/1'))));
    store.afterCommit(() => ran.push('ack lost/1'));
    expect(store.messageCount()).toBe(1);
    violate();
    await nextTurn();

    expect(ran).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(StoreCommitError);
    expect(errors[0]?.message).toMatch(/^commit failed: the writes of this batch were rolled back and 1 pending effect\(s\) dropped: /);
    expect(errors[0]?.droppedEffects).toBe(1);
    expect(store.db.inTransaction).toBe(false);
    expect(store.loadSessions().map((s) => s.clientId)).toEqual(['before']);
    expect(store.messageCount()).toBe(0);

    // The next batch commits normally and its effects run.
    store.saveSession({ clientId: 'after', protocolVersion: 5, expiryInterval: 1 });
    store.afterCommit(() => ran.push('ack after'));
    await nextTurn();
    expect(ran).toEqual(['ack after']);
    store.closeWithoutFlush();
    expect(open(dir).loadSessions().map((s) => s.clientId)).toEqual(['after', 'before']);
  });

  it('without onError a failed COMMIT is thrown from flush(), and the effects are still dropped', () => {
    const store = open(tempDir());
    const violate = armCommitFailure(store);
    let ran = 0;
    store.addInboundQos2('c1', 1);
    store.afterCommit(() => ran++);
    violate();
    expect(() => store.flush()).toThrow(StoreCommitError);
    expect(ran).toBe(0);
    expect(store.loadInboundQos2('c1')).toEqual([]);
    store.flush();
    expect(ran).toBe(0);
  });

  it('a disk-full write (SQLITE_FULL) at the commit point drops the batch and its effects', async () => {
    const dir = tempDir();
    const errors: StoreCommitError[] = [];
    const store = open(dir, { onError: (err) => errors.push(err) });
    store.saveSession({ clientId: 'before', protocolVersion: 5, expiryInterval: 1 });
    store.flush();
    // Cap the file at its current size: the next page allocation fails as a full disk would.
    store.db.pragma(`max_page_count = ${store.db.pragma('page_count', { simple: true }) as number}`);

    const ran: string[] = [];
    store.saveSession({ clientId: 'lost', protocolVersion: 5, expiryInterval: 1 });
    store.afterCommit(() => ran.push('ack lost'));
    // Messages and queue entries are written behind, at the commit point: the failure shows there.
    store.putMessage(msg('big', { payload: Buffer.alloc(256 * 1024) }));
    await nextTurn();

    expect(ran).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/^commit failed: the writes of this batch were rolled back and 1 pending effect\(s\) dropped: .*full/);
    expect(store.loadSessions().map((s) => s.clientId)).toEqual(['before']);
    expect(store.messageCount()).toBe(0);

    store.db.pragma('max_page_count = 1073741823');
    store.saveSession({ clientId: 'after', protocolVersion: 5, expiryInterval: 1 });
    store.afterCommit(() => ran.push('ack after'));
    await nextTurn();
    expect(ran).toEqual(['ack after']);
    store.closeWithoutFlush();
    expect(open(dir).loadSessions().map((s) => s.clientId)).toEqual(['after', 'before']);
  });

  it('a disk-full write-through (a session with a large will) that rolls back the transaction drops the batch', async () => {
    const dir = tempDir();
    const errors: StoreCommitError[] = [];
    const store = open(dir, { onError: (err) => errors.push(err) });
    store.saveSession({ clientId: 'before', protocolVersion: 5, expiryInterval: 1 });
    store.flush();
    store.db.pragma(`max_page_count = ${store.db.pragma('page_count', { simple: true }) as number}`);

    const ran: string[] = [];
    store.enqueue('before', entry(1, store.putMessage(msg('lost/1'))));
    store.afterCommit(() => ran.push('ack lost'));
    const will = { topic: 'w', payload: Buffer.alloc(256 * 1024), qos: 1 as const, retain: false };
    expect(() => store.saveSession({ clientId: 'big', protocolVersion: 5, expiryInterval: 1, will })).toThrow(/full/);
    await nextTurn();

    expect(ran).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/^write failed and SQLite rolled back the transaction/);
    expect(store.loadSessions().map((s) => s.clientId)).toEqual(['before']);
    expect(store.loadQueue('before')).toEqual([]);
    expect(store.messageCount()).toBe(0);
    store.db.pragma('max_page_count = 1073741823');
  });

  it('rejects unknown message ids and duplicate seqs without changing reference counts', () => {
    const store = open(tempDir());
    expect(() => store.enqueue('c1', entry(1, 404))).toThrow(/unknown message id 404/);
    expect(() => store.setRetained('t', 404)).toThrow(/unknown message id 404/);
    const id = store.putMessage(msg('t'));
    store.enqueue('c1', entry(1, id));
    expect(() => store.enqueue('c1', entry(1, id))).toThrow(/already exists/);
    expect(store.loadQueue('c1')).toHaveLength(1);
    store.dequeue('c1', 1);
    expect(store.messageCount()).toBe(0);
    // The batch survived the statement errors.
    expect(store.db.inTransaction).toBe(true);
    store.flush();
  });
});

describe('SqliteStore: restart and space', () => {
  it('a message stored inline in its only queue entry moves to messages when it gets another reference', async () => {
    const dir = tempDir();
    const store = open(dir);
    const a = store.putMessage(msg('inline/a', { payload: Buffer.from('aa'), properties: { contentType: 'x' } }));
    const b = store.putMessage(msg('inline/b', { payload: Buffer.alloc(0) }));
    const c = store.putMessage(msg('inline/c'));
    const d = store.putMessage(msg('inline/d'));
    store.enqueue('c1', entry(1, a));
    store.enqueue('c1', entry(2, b));
    store.enqueue('c1', entry(3, c));
    store.enqueue('c5', entry(1, d));
    await nextTurn();
    const inlineRows = (): number => store.db.prepare('SELECT count(*) FROM queue WHERE m_topic IS NOT NULL').pluck().get() as number;
    expect(inlineRows()).toBe(4);
    expect(store.db.prepare('SELECT count(*) FROM messages').pluck().get()).toBe(0);
    expect(store.messageCount()).toBe(4);

    // a: a second queue entry, then the first goes in the same batch. b: retained. c: its holder's
    // session is deleted in the batch that gives it a second reference. d: stays inline.
    store.enqueue('c2', entry(1, a));
    store.dequeue('c1', 1);
    store.setRetained('inline/b', b);
    store.enqueue('c3', entry(1, c));
    store.deleteSession('c1');
    await nextTurn();
    expect(store.messageCount()).toBe(4);
    store.enqueue('c4', entry(1, d));
    store.flush();
    store.closeWithoutFlush();

    const reopened = open(dir);
    expect(reopened.messageCount()).toBe(4);
    expect(reopened.loadQueue('c1')).toEqual([]);
    const [qa] = reopened.loadQueue('c2');
    expect(qa?.message.topic).toBe('inline/a');
    expect(qa?.message.payload.toString()).toBe('aa');
    expect(qa?.message.properties).toEqual({ contentType: 'x' });
    expect(reopened.loadQueue('c3').map((e) => e.message.topic)).toEqual(['inline/c']);
    expect(reopened.loadQueue('c4').map((e) => e.message.topic)).toEqual(['inline/d']);
    const retained = reopened.loadRetained();
    expect(retained.map((r) => [r.messageId, r.message.topic, r.message.payload.length])).toEqual([[b, 'inline/b', 0]]);
    expect(reopened.db.prepare('SELECT count(*) FROM queue WHERE m_topic IS NOT NULL').pluck().get()).toBe(0);
    reopened.dequeue('c2', 1);
    reopened.dequeue('c3', 1);
    reopened.dequeue('c4', 1);
    reopened.dequeue('c5', 1);
    reopened.setRetained('inline/b', null);
    reopened.flush();
    expect(reopened.messageCount()).toBe(0);
    expect(reopened.db.prepare('SELECT count(*) FROM messages').pluck().get()).toBe(0);
    expect(reopened.putMessage(msg('next'))).toBeGreaterThan(d);
  });

  it('state changes of committed entries survive a crash, latest wins, and leave no rows behind', async () => {
    const dir = tempDir();
    const store = open(dir);
    for (let seq = 1; seq <= 4; seq++) store.enqueue('c', entry(seq, store.putMessage(msg(`s/${seq}`, { qos: 2 })), { qos: 2 }));
    await nextTurn();
    store.updateQueueEntry('c', 1, { state: 'sent', packetId: 11 });
    store.updateQueueEntry('c', 2, { state: 'sent', packetId: 12 });
    store.updateQueueEntry('c', 3, { state: 'sent', packetId: 13 });
    await nextTurn();
    store.updateQueueEntry('c', 1, { state: 'pubrec-received' });
    store.updateQueueEntry('c', 2, { state: 'pubrec-received', packetId: 12 });
    store.dequeue('c', 3);
    await nextTurn();
    // In the same batch: changed, then removed; changed twice.
    store.updateQueueEntry('c', 4, { state: 'sent', packetId: 14 });
    store.dequeue('c', 2);
    store.updateQueueEntry('c', 4, { state: 'pubrec-received' });
    store.flush();
    // A change left uncommitted by the crash.
    store.updateQueueEntry('c', 1, { state: 'queued', packetId: 99 });
    store.closeWithoutFlush();

    const reopened = open(dir);
    expect(reopened.loadQueue('c').map(({ seq, state, packetId }) => ({ seq, state, packetId }))).toEqual([
      { seq: 1, state: 'pubrec-received', packetId: 11 },
      { seq: 4, state: 'pubrec-received', packetId: 14 },
    ]);
    expect(reopened.db.prepare('SELECT count(*) FROM queue_state').pluck().get()).toBe(2);
    reopened.dequeue('c', 1);
    reopened.deleteSession('c');
    reopened.flush();
    expect(reopened.db.prepare('SELECT count(*) FROM queue_state').pluck().get()).toBe(0);
    expect(reopened.messageCount()).toBe(0);
  });

  it('drops unreferenced messages at open and keeps message ids increasing', () => {
    const dir = tempDir();
    const store = open(dir);
    const orphan = store.putMessage(msg('orphan'));
    const kept = store.putMessage(msg('kept'));
    store.enqueue('c1', entry(1, kept));
    store.flush();
    expect(store.messageCount()).toBe(2);
    store.closeWithoutFlush();
    const reopened = open(dir);
    expect(reopened.messageCount()).toBe(1);
    expect(() => reopened.setRetained('orphan', orphan)).toThrow(/unknown message id/);
    expect(reopened.putMessage(msg('next'))).toBeGreaterThan(kept);
  });

  it('gives the space of ~20k dequeued 1 KiB messages back to the file system', async () => {
    const dir = tempDir();
    const store = open(dir);
    const n = 20_000;
    const payload = Buffer.alloc(1024, 0x5a);
    for (let seq = 1; seq <= n; seq++) {
      store.enqueue(`c${seq % 4}`, entry(seq, store.putMessage(msg(`space/${seq % 100}`, { payload }))));
      if (seq % 1000 === 0) await nextTurn();
    }
    store.flush();
    const pageSize = store.db.pragma('page_size', { simple: true }) as number;
    const peakPages = store.db.pragma('page_count', { simple: true }) as number;
    expect(peakPages * pageSize).toBeGreaterThan(n * 1024);

    // Dequeue in 200 turns, as acknowledgements would: the periodic reclaim runs between commits.
    for (let seq = 1; seq <= n; seq++) {
      store.dequeue(`c${seq % 4}`, seq);
      if (seq % 100 === 0) await nextTurn();
    }
    store.flush();
    expect(store.messageCount()).toBe(0);
    const pagesBeforeClose = store.db.pragma('page_count', { simple: true }) as number;
    expect(pagesBeforeClose).toBeLessThan(peakPages / 2);

    store.close();
    const file = path.join(dir, 'mqtt-sim.db');
    const total = fileSize(file) + fileSize(file + '-wal');
    expect(total).toBeLessThan(256 * 1024);
    // And it is still a working store.
    expect(open(dir).messageCount()).toBe(0);
  });
});

// ------------------------------------------------------------------------------------------------
// A real SIGKILL: a child process writes continuously and prints an acknowledgement from each
// afterCommit effect; it is killed at an arbitrary point. Everything acknowledged must be there, and
// the queue must be exactly the state of one commit (each turn is atomic).

/**
 * Transpiles the store to plain ESM in `dir` (type-only imports vanish) and returns sqlite.mjs's path.
 * sqlite.ts may import at runtime only node builtins, better-sqlite3, ./sqlite-schema.js and
 * ../../common/make-directory.js.
 */
function buildStoreForChild(dir: string): string {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const betterSqlite = pathToFileURL(createRequire(import.meta.url).resolve('better-sqlite3')).href;
  for (const file of ['broker/store/sqlite.ts', 'broker/store/sqlite-schema.ts', 'common/make-directory.ts']) {
    const source = fs.readFileSync(path.join(root, file), 'utf8');
    const out = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
    }).outputText
      .replace(/from 'better-sqlite3'/g, `from '${betterSqlite}'`)
      .replace(/from '\.\/sqlite-schema\.js'/g, "from './sqlite-schema.mjs'")
      .replace(/from '\.\.\/\.\.\/common\/make-directory\.js'/g, "from './make-directory.mjs'");
    fs.writeFileSync(path.join(dir, path.basename(file).replace(/\.ts$/, '.mjs')), out);
  }
  return path.join(dir, 'sqlite.mjs');
}

const CHILD_SCRIPT = `
import { SqliteStore } from './sqlite.mjs';
const store = SqliteStore.open({ dataDir: process.argv[2] });
const payload = Buffer.alloc(300, 7);
let seq = 0;
function turn() {
  for (let i = 0; i < 50; i++) {
    seq++;
    const id = store.putMessage({ topic: 'kill/' + seq, payload, qos: 1, retain: false });
    store.enqueue('c', { seq, messageId: id, qos: 1, state: 'queued', retain: false });
  }
  const acked = seq;
  store.afterCommit(() => process.stdout.write('acked ' + acked + '\\n'));
  setImmediate(turn);
}
turn();
`;

describe('SqliteStore: SIGKILL', () => {
  it('loses nothing acknowledged when the process is killed mid-stream', async () => {
    const work = tempDir();
    const dataDir = path.join(work, 'data');
    buildStoreForChild(work);
    fs.writeFileSync(path.join(work, 'child.mjs'), CHILD_SCRIPT);
    const child = spawnChild(process.execPath, [path.join(work, 'child.mjs'), dataDir]);
    await child.waitForLine((line) => /^acked (\d+)$/.test(line) && Number(line.slice(6)) >= 5000, 20_000, 'acks from the child');
    child.kill('SIGKILL');
    const exit = await child.exited(10_000);
    expect(exit.signal).toBe('SIGKILL');
    const acked = Math.max(...child.lines.filter((l) => l.startsWith('acked ')).map((l) => Number(l.slice(6))));

    const store = open(dataDir);
    const seqs = store.loadQueue('c').map((e) => e.seq);
    expect(seqs.length).toBeGreaterThanOrEqual(acked);
    expect(seqs.length % 50).toBe(0);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    expect(store.messageCount()).toBe(seqs.length);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
