/**
 * The SQLite Store (better-sqlite3, WAL): the durable backend. One database file per data dir.
 *
 * Group commit. The first write in an event-loop turn opens a transaction (BEGIN); a setImmediate
 * commits it and then runs, in registration order, every `afterCommit` effect registered before the
 * COMMIT. An effect registered with no transaction open still waits for that commit point (effects
 * never run synchronously inside `afterCommit`). `flush()` reaches the commit point now.
 *
 * Write-behind. Messages and queue entries — the per-message hot path — are not written by the call
 * that changes them: the store records the change in memory (it keeps every live queue entry and every
 * message's reference count anyway) and writes the batch's net changes just before its COMMIT, in the
 * same transaction: consecutive seqs and message ids are deleted as ranges, new rows go in multi-row
 * INSERTs, and changes that cancel within the batch are never written (an entry created and removed
 * in one batch, a message whose last reference goes in the batch that stored it). What a commit
 * contains is exactly what it contained before — every write made before the commit point, nothing
 * after — so the durability rule is untouched: an effect still runs only after the COMMIT holding the
 * writes made before it. Reads (loadQueue, loadRetained) apply the pending changes first, so they see
 * the batch. Sessions, subscriptions, the retained table and inbound QoS 2 ids are written through.
 * A write-behind failure (e.g. SQLITE_FULL) shows at the commit point: the batch is rolled back and
 * its effects dropped, as for a failed COMMIT.
 *
 * Row economy (sqlite-schema.ts has the details). A small message whose only reference is a queue
 * entry written in the same commit — every message of a fan-in to one persistent session — is stored
 * inline in that entry's row, so it costs one row insert and one delete instead of two of each. The
 * state change of a committed entry (queued → sent → pubrec-received) appends a queue_state row
 * instead of updating the WITHOUT ROWID queue row (which SQLite does as a delete plus an insert).
 * Both are plain writes of the batch, committed with it: what a commit makes durable is the same.
 *
 * Durability. WAL with `synchronous = NORMAL` ('process'): a committed transaction has been written
 * to the WAL, so it is in the OS page cache and survives SIGKILL of the broker. `synchronous = FULL`
 * ('power') also fsyncs the WAL at every commit, so it survives power loss.
 *
 * Failures. A commit that fails (e.g. SQLITE_FULL when the disk is full) is rolled back, and the
 * effects of that batch are dropped — never run — because they would acknowledge writes that are not
 * persisted. The failure is reported as a `StoreCommitError` to `options.onError`; without `onError`
 * it is thrown (from `flush()`, or from the setImmediate — an uncaught exception that stops the
 * process, the safe default). The same happens when a write fails in a way that makes SQLite roll
 * back the whole transaction (the failing call also throws its own error). The store stays open and
 * usable afterwards (its in-memory view is rebuilt from the database), but the rolled-back writes are
 * gone: the broker's in-memory state no longer matches the store, so the safe reaction is to stop
 * acknowledging and restart from the store.
 * An exception thrown by an effect does not stop the other effects of its batch; the first one is
 * rethrown once they have run.
 *
 * Opening never starts fresh over existing data and never changes a file it refuses: it fails with a
 * `StoreOpenError` for an unusable data dir, a database locked by another broker (locking_mode
 * EXCLUSIVE is taken at open and held), a file that is not a valid mqtt-sim database (PRAGMA
 * quick_check) and a database written by a newer schema version.
 *
 * Space. Messages are stored once and reference-counted by queue entries and the retained table; a
 * message is deleted when its count reaches 0. The database uses auto_vacuum = INCREMENTAL: free
 * pages are returned to the file system every few commits when many are free, and on close (which
 * also truncates the WAL).
 */
import fs from 'node:fs';
import { makeDirectory } from '../../common/make-directory.js';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Properties } from '../../protocol/packets.js';
import { APPLICATION_ID, CREATE_SCHEMA, MIGRATE_1_TO_2, SCHEMA_VERSION, TABLES, TABLES_V1 } from './sqlite-schema.js';
import type {
  DeliveryState,
  LoadedQueueEntry,
  QueueEntry,
  SessionRecord,
  Store,
  StoredMessage,
  SubscriptionRecord,
} from './types.js';

export const DEFAULT_DB_FILE_NAME = 'mqtt-sim.db';

export interface SqliteStoreOptions {
  /** Directory holding the database; created (with parents) when missing. */
  dataDir: string;
  /** 'process' (default): survives a process kill. 'power': also fsyncs each commit. */
  durability?: 'process' | 'power';
  /** Database file name inside dataDir; default `mqtt-sim.db`. */
  fileName?: string;
  /**
   * Called when a batch of writes could not be committed (it was rolled back and its afterCommit
   * effects were dropped). Without it such an error is thrown instead.
   */
  onError?: (error: StoreCommitError) => void;
  /**
   * Called after each successful COMMIT with how long the COMMIT statement took (ms; with durability
   * 'power' the fsync is in it) and how many writes the batch held. For metrics; it must not throw.
   */
  onCommit?: (durationMs: number, writes: number) => void;
}

/** The store could not be opened; nothing on disk was changed. The message says what to do. */
export class StoreOpenError extends Error {
  override readonly name = 'StoreOpenError';
}

/** A batch of writes was rolled back instead of committed; its effects were dropped, never run. */
export class StoreCommitError extends Error {
  override readonly name = 'StoreCommitError';
  /** Number of afterCommit effects that were dropped with the batch. */
  readonly droppedEffects: number;
  constructor(message: string, cause: unknown, droppedEffects: number) {
    super(message, { cause });
    this.droppedEffects = droppedEffects;
  }
}

/** Pages (4 KiB by default) that may be free before a reclaim is considered. */
const RECLAIM_MIN_FREE_PAGES = 1024;
/** Look at the free list every this many commits. */
const RECLAIM_EVERY_COMMITS = 64;
/** At most this many pages are returned per reclaim between commits (bounded work); close returns all. */
const RECLAIM_MAX_PAGES = 8192;

const STATE_CODE: Record<DeliveryState, number> = { queued: 0, sent: 1, 'pubrec-received': 2 };
const STATE_NAME: readonly DeliveryState[] = ['queued', 'sent', 'pubrec-received'];

type Statement = Database.Statement<unknown[], unknown>;

const PENDING_NONE = 0;
const PENDING_INSERT = 1;
const PENDING_UPDATE = 2;

/** A live queue entry as the store tracks it in memory (every column of its row). */
interface QueueSlot {
  clientId: string;
  seq: number;
  messageId: number;
  qos: number;
  state: number;
  packetId: number | null;
  retain: number;
  subscriptionIds: string | null;
  /** PENDING_NONE: the row is committed as is; PENDING_INSERT: not written yet; PENDING_UPDATE: state changed. */
  pending: number;
  /** The id of the entry's queue_state row (its state and packet id since it was written); 0: none. */
  stateId: number;
  /** While its INSERT is pending: the values of the message to store inline in its row, if any. */
  inlineMessage: unknown[] | undefined;
}

interface PendingMessage {
  /** The messages INSERT's values: id, topic, payload, qos, retain, properties, expires_at, publisher_id. */
  values: unknown[];
  /** Its only reference so far, when that is a queue entry: the message may be stored inline there. */
  inlineIn: QueueSlot | undefined;
}

/**
 * Messages up to this size (topic + payload + properties, bytes) may be stored inline in a queue row.
 * WITHOUT ROWID tables want small rows (SQLite's advice: under about 1/20 of a page); larger
 * messages go to messages, a rowid table.
 */
const INLINE_MAX_BYTES = 200;

function inlineable(values: unknown[]): boolean {
  const topic = values[1] as string;
  const payload = values[2] as Buffer;
  const properties = values[5] as string | null;
  // Characters count as bytes here: a rough bound is all this needs.
  return topic.length * 3 + payload.length + (properties === null ? 0 : properties.length * 3) <= INLINE_MAX_BYTES;
}

/** Rows per multi-row statement, largest first (64 × 15 columns stays far below SQLite's variable limit). */
const CHUNK_SIZES = [64, 16, 4, 1] as const;

function tuples(rows: number, columns: number): string {
  return new Array<string>(rows).fill(`(${new Array<string>(columns).fill('?').join(', ')})`).join(', ');
}

function messageInsertSql(rows: number): string {
  return `INSERT INTO messages (id, topic, payload, qos, retain, properties, expires_at, publisher_id) VALUES ${tuples(rows, 8)}`;
}

function queueInsertSql(rows: number): string {
  return `INSERT INTO queue (client_id, seq, message_id, qos, state, packet_id, retain, subscription_ids) VALUES ${tuples(rows, 8)}`;
}

function queueInlineInsertSql(rows: number): string {
  return `INSERT INTO queue (client_id, seq, message_id, qos, state, packet_id, retain, subscription_ids,
            m_topic, m_payload, m_qos, m_retain, m_properties, m_expires_at, m_publisher_id) VALUES ${tuples(rows, 15)}`;
}

function stateInsertSql(rows: number): string {
  return `INSERT INTO queue_state (id, client_id, seq, state, packet_id) VALUES ${tuples(rows, 5)}`;
}

interface MessageRow {
  topic: string;
  payload: Buffer;
  qos: number;
  retain: number;
  properties: string | null;
  expires_at: number | null;
  publisher_id: string | null;
}

interface QueueRow extends MessageRow {
  seq: number;
  message_id: number;
  q_qos: number;
  state: number;
  packet_id: number | null;
  q_retain: number;
  subscription_ids: string | null;
}

interface SessionRow {
  client_id: string;
  protocol_version: number;
  expiry_interval: number;
  disconnected_at: number | null;
  will_topic: string | null;
  will_payload: Buffer | null;
  will_qos: number | null;
  will_retain: number | null;
  will_properties: string | null;
  will_due_at: number | null;
}

interface SubscriptionRow {
  client_id: string;
  filter: string;
  qos: number;
  no_local: number;
  retain_as_published: number;
  retain_handling: number;
  subscription_id: number | null;
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly durable = true;
  /** Absolute path of the database file. */
  readonly file: string;
  readonly durability: 'process' | 'power';
  /**
   * The connection, for diagnostics and tests (PRAGMA reads). Writing through it bypasses the
   * reference counts and the group commit: don't.
   */
  readonly db: Database.Database;

  private readonly onError: ((error: StoreCommitError) => void) | undefined;
  private readonly onCommit: ((durationMs: number, writes: number) => void) | undefined;
  /** Writes in the open batch (for onCommit). */
  private batchWrites = 0;
  private readonly s: ReturnType<typeof prepareStatements>;
  private closed = false;
  /** True while our BEGIN is open. */
  private inTransaction = false;
  private immediate: NodeJS.Immediate | undefined;
  /** Registered effects; [effectsHead, runnableUpTo) may run now, the rest wait for the next commit. */
  private effects: Array<(() => void) | undefined> = [];
  private effectsHead = 0;
  private runnableUpTo = 0;
  private runDepth = 0;
  private commits = 0;
  private commitsSinceReclaim = 0;
  /** Never reused within a process, so an id the broker still holds can never name another message. */
  private nextMessageId: number;
  private storedMessages: number;
  /**
   * References per stored message (queue entries + retained slot), kept in memory: they follow from
   * the queue and retained tables, so they are recounted at open and after a rollback instead of
   * costing an UPDATE per enqueue and dequeue.
   */
  private readonly refs = new Map<number, number>();

  // Write-behind (see "Write-behind" in the file comment). Every live queue entry, committed or not,
  // by client id and seq; the pending changes of the open batch, applied just before its COMMIT.
  private readonly queues = new Map<string, Map<number, QueueSlot>>();
  /** Messages stored in this batch. A message released in the batch leaves it. */
  private pendingMessageInserts = new Map<number, PendingMessage>();
  /** Committed messages stored inline in a queue row (see sqlite-schema.ts): id → that entry. */
  private readonly inline = new Map<number, QueueSlot>();
  /** Inline messages that got a second reference in this batch: moved to messages first thing. */
  private pendingMaterialize: QueueSlot[] = [];
  /** Committed messages whose last reference went away in this batch. */
  private pendingMessageDeletes: number[] = [];
  /** Queue entries created in this batch (insertion order). */
  private pendingQueueInserts = new Set<QueueSlot>();
  /** Committed queue entries whose state or packet id changed in this batch. */
  private pendingQueueUpdates = new Set<QueueSlot>();
  /** Committed queue entries removed in this batch: client id → seqs. */
  private pendingQueueDeletes = new Map<string, number[]>();
  /** Committed queue_state rows that are superseded or whose entry went in this batch. */
  private pendingStateDeletes: number[] = [];
  private nextStateId = 1;
  private pendingCount = 0;
  /** Multi-row statements by row count (see chunked()). */
  private readonly multi = new Map<string, Statement>();

  /** Opens (creating when missing) the store in `options.dataDir`; throws StoreOpenError. */
  static open(options: SqliteStoreOptions): SqliteStore {
    const dataDir = path.resolve(options.dataDir);
    const file = path.join(dataDir, options.fileName ?? DEFAULT_DB_FILE_NAME);
    const empty = prepareDataDir(dataDir, file);
    let db: Database.Database;
    try {
      db = new Database(file, { timeout: 0 });
    } catch (err) {
      throw new StoreOpenError(`cannot open ${file}: ${errorMessage(err)}`, { cause: err });
    }
    try {
      initialise(db, file, options.durability ?? 'process', empty);
      return new SqliteStore(db, file, options);
    } catch (err) {
      try {
        db.close();
      } catch {
        // The open error is the one to report.
      }
      if (err instanceof StoreOpenError) throw err;
      throw new StoreOpenError(`cannot open ${file}: ${errorMessage(err)}`, { cause: err });
    }
  }

  private constructor(db: Database.Database, file: string, options: SqliteStoreOptions) {
    this.db = db;
    this.file = file;
    this.durability = options.durability ?? 'process';
    this.onError = options.onError;
    this.onCommit = options.onCommit;
    this.s = prepareStatements(db);
    this.nextMessageId = ((this.s.maxMessageId.get() as number | null) ?? 0) + 1;
    this.nextStateId = ((this.s.maxStateId.get() as number | null) ?? 0) + 1;
    this.storedMessages = 0;
    this.resync();
  }

  /** Number of COMMITs so far (one per event-loop turn with writes, plus flushes). */
  get commitCount(): number {
    return this.commits;
  }

  // ----------------------------------------------------------------------------------------------
  // Recovery

  loadSessions(): SessionRecord[] {
    this.check();
    return (this.s.selectSessions.all() as SessionRow[]).map(rowToSession);
  }

  loadSubscriptions(): SubscriptionRecord[] {
    this.check();
    return (this.s.selectSubscriptions.all() as SubscriptionRow[]).map(rowToSubscription);
  }

  loadRetained(): Array<{ messageId: number; message: StoredMessage }> {
    this.check();
    this.applyForRead();
    const rows = this.s.selectRetained.all() as Array<MessageRow & { message_id: number }>;
    return rows.map((row) => ({ messageId: row.message_id, message: rowToMessage(row) }));
  }

  loadQueue(clientId: string): LoadedQueueEntry[] {
    this.check();
    this.applyForRead();
    const rows = this.s.selectQueue.all(clientId) as QueueRow[];
    const slots = this.queues.get(clientId);
    return rows.map((row) => {
      // The in-memory slot has the latest state and packet id (the row's own, or its queue_state row's).
      const slot = slots?.get(row.seq);
      if (slot !== undefined) {
        row.state = slot.state;
        row.packet_id = slot.packetId;
      }
      const entry: LoadedQueueEntry = {
        seq: row.seq,
        messageId: row.message_id,
        qos: row.q_qos as LoadedQueueEntry['qos'],
        state: STATE_NAME[row.state] ?? 'queued',
        retain: row.q_retain !== 0,
        message: rowToMessage(row),
      };
      if (row.packet_id !== null) entry.packetId = row.packet_id;
      if (row.subscription_ids !== null) entry.subscriptionIds = decodeIds(row.subscription_ids);
      return entry;
    });
  }

  loadInboundQos2(clientId: string): number[] {
    this.check();
    return this.s.selectInbound.all(clientId) as number[];
  }

  // ----------------------------------------------------------------------------------------------
  // Sessions

  saveSession(session: SessionRecord): void {
    this.begin();
    try {
      const will = session.will;
      this.s.upsertSession.run(
        session.clientId,
        session.protocolVersion,
        session.expiryInterval,
        session.disconnectedAt ?? null,
        will ? will.topic : null,
        will ? will.payload : null,
        will ? will.qos : null,
        will ? (will.retain ? 1 : 0) : null,
        will?.properties !== undefined ? encodeProperties(will.properties) : null,
        will?.dueAt ?? null,
      );
    } catch (err) {
      throw this.writeFailed(err);
    }
  }

  deleteSession(clientId: string): void {
    this.begin();
    // Pending moves of inline messages read this client's rows, which go now: apply them first.
    if (this.pendingMaterialize.length > 0) this.applyForRead();
    try {
      this.s.deleteSession.run(clientId);
      this.s.deleteSubscriptionsOf.run(clientId);
      this.s.deleteInboundOf.run(clientId);
      // The committed rows go now (pending deletes of this client's rows with them); entries created in
      // this batch are simply never written.
      this.s.deleteQueueOf.run(clientId);
      this.pendingQueueDeletes.delete(clientId);
      const queue = this.queues.get(clientId);
      if (queue !== undefined) {
        this.queues.delete(clientId);
        for (const slot of queue.values()) {
          if (slot.stateId !== 0) {
            this.pendingStateDeletes.push(slot.stateId);
            this.pendingCount++;
          }
          if (slot.pending === PENDING_INSERT) this.pendingQueueInserts.delete(slot);
          else if (slot.pending === PENDING_UPDATE) this.pendingQueueUpdates.delete(slot);
          this.release(slot.messageId);
        }
      }
    } catch (err) {
      throw this.writeFailed(err);
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Subscriptions

  saveSubscription(sub: SubscriptionRecord): void {
    this.begin();
    try {
      this.s.upsertSubscription.run(
        sub.clientId,
        sub.filter,
        sub.qos,
        sub.noLocal ? 1 : 0,
        sub.retainAsPublished ? 1 : 0,
        sub.retainHandling,
        sub.subscriptionId ?? null,
      );
    } catch (err) {
      throw this.writeFailed(err);
    }
  }

  deleteSubscription(clientId: string, filter: string): void {
    this.begin();
    try {
      this.s.deleteSubscription.run(clientId, filter);
    } catch (err) {
      throw this.writeFailed(err);
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Messages and the retained table

  putMessage(message: StoredMessage): number {
    this.begin();
    // Encoded (and the payload copied) now, so the caller may reuse its objects; written at commit.
    const values = [
      0,
      message.topic,
      Buffer.from(message.payload),
      message.qos,
      message.retain ? 1 : 0,
      message.properties !== undefined ? encodeProperties(message.properties) : null,
      message.expiresAt ?? null,
      message.publisherId ?? null,
    ];
    const id = this.nextMessageId++;
    values[0] = id;
    this.refs.set(id, 0);
    this.pendingMessageInserts.set(id, { values, inlineIn: undefined });
    this.pendingCount++;
    this.storedMessages++;
    return id;
  }

  setRetained(topic: string, messageId: number | null): void {
    this.begin();
    try {
      // Take the new reference before dropping the old one so re-setting the same id is safe.
      if (messageId !== null) this.addRef(messageId);
      const previous = this.s.selectRetainedId.get(topic) as number | undefined;
      if (messageId === null) {
        if (previous !== undefined) this.s.deleteRetained.run(topic);
      } else {
        this.s.upsertRetained.run(topic, messageId);
      }
      if (previous !== undefined) this.release(previous);
    } catch (err) {
      throw this.writeFailed(err);
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Queues

  enqueue(clientId: string, entry: QueueEntry): void {
    this.begin();
    const refs = this.refs.get(entry.messageId);
    if (refs === undefined) throw new Error(`unknown message id ${entry.messageId}`);
    let queue = this.queues.get(clientId);
    if (queue === undefined) {
      queue = new Map();
      this.queues.set(clientId, queue);
    } else if (queue.has(entry.seq)) {
      throw new Error(`queue entry ${entry.seq} already exists for client ${JSON.stringify(clientId)}`);
    }
    const slot: QueueSlot = {
      clientId,
      seq: entry.seq,
      messageId: entry.messageId,
      qos: entry.qos,
      state: STATE_CODE[entry.state],
      packetId: entry.packetId ?? null,
      retain: entry.retain ? 1 : 0,
      subscriptionIds: entry.subscriptionIds !== undefined ? entry.subscriptionIds.join(',') : null,
      pending: PENDING_INSERT,
      stateId: 0,
      inlineMessage: undefined,
    };
    this.refs.set(entry.messageId, refs + 1);
    const pending = this.pendingMessageInserts.get(entry.messageId);
    if (pending !== undefined) pending.inlineIn = refs === 0 ? slot : undefined;
    else if (refs > 0) this.uninline(entry.messageId);
    queue.set(entry.seq, slot);
    this.pendingQueueInserts.add(slot);
    this.pendingCount++;
  }

  /** Sets the entry's state, and its packet id when one is given (an omitted packet id is kept). */
  updateQueueEntry(clientId: string, seq: number, change: { state: DeliveryState; packetId?: number }): void {
    this.begin();
    const slot = this.queues.get(clientId)?.get(seq);
    if (slot === undefined) return;
    slot.state = STATE_CODE[change.state];
    if (change.packetId !== undefined) slot.packetId = change.packetId;
    // An entry created in this batch is written with its latest state; a committed one gets a
    // queue_state row at the commit point (the last change of the batch wins).
    if (slot.pending === PENDING_NONE) {
      slot.pending = PENDING_UPDATE;
      this.pendingQueueUpdates.add(slot);
      this.pendingCount++;
    }
  }

  dequeue(clientId: string, seq: number): void {
    this.begin();
    const queue = this.queues.get(clientId);
    const slot = queue?.get(seq);
    if (queue === undefined || slot === undefined) return;
    queue.delete(seq);
    if (queue.size === 0) this.queues.delete(clientId);
    if (slot.stateId !== 0) {
      this.pendingStateDeletes.push(slot.stateId);
      this.pendingCount++;
    }
    if (slot.pending === PENDING_INSERT) {
      // Created and removed in the same batch: never written.
      this.pendingQueueInserts.delete(slot);
    } else {
      if (slot.pending === PENDING_UPDATE) this.pendingQueueUpdates.delete(slot);
      const seqs = this.pendingQueueDeletes.get(clientId);
      if (seqs === undefined) this.pendingQueueDeletes.set(clientId, [seq]);
      else seqs.push(seq);
      this.pendingCount++;
    }
    slot.pending = PENDING_NONE;
    this.release(slot.messageId);
  }

  // ----------------------------------------------------------------------------------------------
  // Inbound QoS 2

  addInboundQos2(clientId: string, packetId: number): void {
    this.begin();
    try {
      this.s.insertInbound.run(clientId, packetId);
    } catch (err) {
      throw this.writeFailed(err);
    }
  }

  removeInboundQos2(clientId: string, packetId: number): void {
    this.begin();
    try {
      this.s.deleteInbound.run(clientId, packetId);
    } catch (err) {
      throw this.writeFailed(err);
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Metrics, commits, lifecycle

  messageCount(): number {
    this.check();
    return this.storedMessages;
  }

  afterCommit(effect: () => void): void {
    this.check();
    this.effects.push(effect);
    this.schedule();
  }

  /**
   * Commits now and runs every effect registered so far, including effects registered (after new
   * writes) by those effects, before returning.
   */
  flush(): void {
    this.check();
    this.drain();
  }

  /** Flushes, returns free pages to the file system, truncates the WAL and closes. Repeatable. */
  close(): void {
    if (this.closed) return;
    try {
      this.drain();
    } finally {
      if (!this.closed) this.shutdown(true);
    }
  }

  /**
   * Closes as a crash would: the open transaction (the writes of the current turn) is rolled back and
   * pending effects are dropped without running. Committed data is untouched. For tests.
   */
  closeWithoutFlush(): void {
    if (this.closed) return;
    this.shutdown(false);
  }

  // ----------------------------------------------------------------------------------------------
  // Group commit

  private check(): void {
    if (this.closed) throw new Error('store is closed');
  }

  /** Every write starts here: the first write of a turn opens the batch's transaction. */
  private begin(): void {
    if (this.closed) throw new Error('store is closed');
    this.batchWrites++;
    if (!this.inTransaction) {
      this.s.begin.run();
      this.inTransaction = true;
      this.schedule();
    }
  }

  private schedule(): void {
    if (this.immediate === undefined) this.immediate = setImmediate(this.onImmediate);
  }

  private readonly onImmediate = (): void => {
    this.immediate = undefined;
    if (this.closed) return;
    this.commitPoint();
  };

  /** Commit points until nothing is pending (effects may write and register more effects). */
  private drain(): void {
    for (let round = 0; round < 1000 && (this.inTransaction || this.effectsHead < this.effects.length); round++) {
      this.commitPoint();
      if (this.closed) return;
    }
  }

  /** Commits the open transaction (if any), then runs every effect registered before the commit. */
  private commitPoint(): void {
    let committed = false;
    let failure: StoreCommitError | undefined;
    let commitMs = 0;
    const writes = this.batchWrites;
    this.batchWrites = 0;
    if (this.inTransaction) {
      try {
        const started = this.onCommit !== undefined ? performance.now() : 0;
        if (this.pendingCount > 0) this.applyPending();
        this.s.commit.run();
        if (this.onCommit !== undefined) commitMs = performance.now() - started;
        this.inTransaction = false;
        this.commits++;
        committed = true;
      } catch (err) {
        failure = this.abortBatch(err, 'commit failed');
      }
    }
    if (failure === undefined) this.runnableUpTo = this.effects.length;
    try {
      this.runEffects();
    } finally {
      if (committed) this.onCommit?.(commitMs, writes);
      if (committed && ++this.commitsSinceReclaim >= RECLAIM_EVERY_COMMITS) {
        this.commitsSinceReclaim = 0;
        this.reclaimSpace(false);
      }
      if (failure !== undefined) this.report(failure);
    }
  }

  /** Runs the runnable effects in order; an effect's exception is rethrown after the others ran. */
  private runEffects(): void {
    let failed = false;
    let firstError: unknown;
    this.runDepth++;
    try {
      while (this.effectsHead < this.runnableUpTo) {
        const effect = this.effects[this.effectsHead];
        this.effects[this.effectsHead++] = undefined;
        try {
          effect!();
        } catch (err) {
          if (!failed) {
            failed = true;
            firstError = err;
          }
        }
      }
    } finally {
      this.runDepth--;
      if (this.runDepth === 0 && this.effectsHead > 0) {
        this.effects = this.effects.slice(this.effectsHead);
        this.runnableUpTo -= this.effectsHead;
        this.effectsHead = 0;
      }
    }
    if (failed) throw firstError;
  }

  /**
   * The batch's transaction is gone (rolled back by us or by SQLite): drop the effects that were
   * waiting for it and resynchronise the counters with the database.
   */
  private abortBatch(cause: unknown, what: string): StoreCommitError {
    try {
      if (this.db.inTransaction) this.s.rollback.run();
    } catch {
      // Nothing more can be done; the cause is what gets reported.
    }
    this.inTransaction = false;
    this.batchWrites = 0;
    const dropped = this.effects.length - this.runnableUpTo;
    this.effects.length = this.runnableUpTo;
    try {
      this.resync();
    } catch {
      // Keep the old count; a failing database reports itself on the next write.
    }
    return new StoreCommitError(
      `${what}: the writes of this batch were rolled back and ${dropped} pending effect(s) dropped: ${errorMessage(cause)}`,
      cause,
      dropped,
    );
  }

  private report(error: StoreCommitError): void {
    if (this.onError) this.onError(error);
    else throw error;
  }

  /**
   * A write threw. Statement-level errors (a constraint, an unknown id) leave the batch intact; if
   * SQLite rolled back the whole transaction (e.g. SQLITE_FULL, I/O error) the batch is lost, which is
   * reported like a failed commit. Returns the error for the caller to throw.
   */
  private writeFailed(err: unknown): unknown {
    if (this.inTransaction && !this.db.inTransaction) {
      const failure = this.abortBatch(err, 'write failed and SQLite rolled back the transaction');
      this.onError?.(failure);
    }
    return err;
  }

  /** A reference other than a queue entry (the retained table): the message cannot stay inline. */
  private addRef(messageId: number): void {
    const n = this.refs.get(messageId);
    if (n === undefined) throw new Error(`unknown message id ${messageId}`);
    this.refs.set(messageId, n + 1);
    const pending = this.pendingMessageInserts.get(messageId);
    if (pending !== undefined) pending.inlineIn = undefined;
    else this.uninline(messageId);
  }

  /** A committed inline message gets a second reference: it moves to messages in this batch. */
  private uninline(messageId: number): void {
    const slot = this.inline.get(messageId);
    if (slot === undefined) return;
    this.inline.delete(messageId);
    this.pendingMaterialize.push(slot);
    this.pendingCount++;
  }

  /** Drops one reference; deletes the message with its last one. */
  private release(messageId: number): void {
    const n = this.refs.get(messageId);
    if (n === undefined) return;
    if (n > 1) {
      this.refs.set(messageId, n - 1);
      return;
    }
    this.refs.delete(messageId);
    this.storedMessages--;
    // Stored in this batch: never written. Inline: it goes with its queue row (whose removal is what
    // released it). Otherwise its row goes with the batch.
    if (this.pendingMessageInserts.delete(messageId) || this.inline.delete(messageId)) return;
    this.pendingMessageDeletes.push(messageId);
    this.pendingCount++;
  }

  /**
   * Rebuilds the in-memory view from the database (at open and after a rollback): the queue index,
   * the reference counts (queue entries + retained slots) and the message count. Drops pending writes.
   */
  private resync(): void {
    this.clearPending();
    this.queues.clear();
    this.refs.clear();
    this.inline.clear();
    for (const id of this.s.allMessageIds.all() as number[]) this.refs.set(id, 0);
    for (const row of this.s.allQueueRows.all() as unknown[][]) {
      const clientId = row[0] as string;
      const slot: QueueSlot = {
        clientId,
        seq: row[1] as number,
        messageId: row[2] as number,
        qos: row[3] as number,
        state: row[4] as number,
        packetId: row[5] as number | null,
        retain: row[6] as number,
        subscriptionIds: row[7] as string | null,
        pending: PENDING_NONE,
        stateId: 0,
        inlineMessage: undefined,
      };
      let queue = this.queues.get(clientId);
      if (queue === undefined) {
        queue = new Map();
        this.queues.set(clientId, queue);
      }
      queue.set(slot.seq, slot);
      this.refs.set(slot.messageId, (this.refs.get(slot.messageId) ?? 0) + 1);
      if (row[8] === 1) this.inline.set(slot.messageId, slot);
    }
    for (const row of this.s.allStateRows.all() as unknown[][]) {
      // In id order, so the latest row of an entry wins (a commit never leaves more than one).
      const slot = this.queues.get(row[1] as string)?.get(row[2] as number);
      if (slot === undefined) continue;
      slot.stateId = row[0] as number;
      slot.state = row[3] as number;
      slot.packetId = row[4] as number | null;
    }
    for (const id of this.s.allRetainedIds.all() as number[]) this.refs.set(id, (this.refs.get(id) ?? 0) + 1);
    this.storedMessages = (this.s.countMessages.get() as number) + this.inline.size;
  }

  private clearPending(): void {
    this.pendingMessageInserts = new Map();
    this.pendingMaterialize = [];
    this.pendingMessageDeletes = [];
    this.pendingQueueInserts = new Set();
    this.pendingQueueUpdates = new Set();
    this.pendingQueueDeletes = new Map();
    this.pendingStateDeletes = [];
    this.pendingCount = 0;
  }

  /** A read sees the batch's writes: they are applied (not committed) first. */
  private applyForRead(): void {
    if (this.pendingCount === 0 || !this.inTransaction) return;
    try {
      this.applyPending();
    } catch (err) {
      // Some of the batch may have been applied: the batch as a whole is gone.
      const failure = this.abortBatch(err, 'write failed and the batch was rolled back');
      this.report(failure);
      throw err;
    }
  }

  /**
   * Writes the batch's pending changes inside its open transaction, as few statements as possible:
   * deletes as ranges of consecutive keys, inserts as multi-row INSERTs. Deletes go first, so an entry
   * removed and created again under the same key in one batch ends up created.
   */
  private applyPending(): void {
    const s = this.s;
    if (this.pendingMaterialize.length > 0) {
      // Before any queue row goes: the rows holding these messages are still there.
      for (const slot of this.pendingMaterialize) {
        s.materializeMessage.run(slot.clientId, slot.seq);
        s.clearInline.run(slot.clientId, slot.seq);
      }
      this.pendingMaterialize = [];
    }
    if (this.pendingQueueDeletes.size > 0) {
      for (const [clientId, seqs] of this.pendingQueueDeletes) {
        forRuns(seqs, (lo, hi) => s.deleteQueueRange.run(clientId, lo, hi));
      }
      this.pendingQueueDeletes = new Map();
    }
    if (this.pendingMessageDeletes.length > 0) {
      forRuns(this.pendingMessageDeletes, (lo, hi) => s.deleteMessageRange.run(lo, hi));
      this.pendingMessageDeletes = [];
    }
    if (this.pendingMessageInserts.size > 0) {
      const messages = this.pendingMessageInserts;
      this.pendingMessageInserts = new Map();
      const rows: unknown[][] = [];
      for (const [id, message] of messages) {
        const slot = message.inlineIn;
        if (slot !== undefined && slot.pending === PENDING_INSERT && inlineable(message.values)) {
          slot.inlineMessage = message.values;
          this.inline.set(id, slot);
        } else {
          rows.push(message.values);
        }
      }
      if (rows.length > 0) {
        this.chunked('messages', messageInsertSql, rows.values(), rows.length, undefined, (row, out) => {
          for (let i = 0; i < row.length; i++) out.push(row[i]);
        });
      }
    }
    if (this.pendingQueueInserts.size > 0) {
      const slots = this.pendingQueueInserts;
      this.pendingQueueInserts = new Set();
      const plain: QueueSlot[] = [];
      const withMessage: QueueSlot[] = [];
      for (const slot of slots) (slot.inlineMessage === undefined ? plain : withMessage).push(slot);
      if (plain.length > 0) {
        this.chunked('queue', queueInsertSql, plain.values(), plain.length, undefined, (slot, out) => {
          slot.pending = PENDING_NONE;
          out.push(slot.clientId, slot.seq, slot.messageId, slot.qos, slot.state, slot.packetId, slot.retain, slot.subscriptionIds);
        });
      }
      if (withMessage.length > 0) {
        this.chunked('queue-inline', queueInlineInsertSql, withMessage.values(), withMessage.length, undefined, (slot, out) => {
          const m = slot.inlineMessage!;
          slot.pending = PENDING_NONE;
          slot.inlineMessage = undefined;
          out.push(
            slot.clientId, slot.seq, slot.messageId, slot.qos, slot.state, slot.packetId, slot.retain, slot.subscriptionIds,
            m[1], m[2], m[3], m[4], m[5], m[6], m[7],
          );
        });
      }
    }
    if (this.pendingQueueUpdates.size > 0) {
      // A committed entry's new state is a new queue_state row; the one it had (if any) goes.
      const slots = this.pendingQueueUpdates;
      this.pendingQueueUpdates = new Set();
      for (const slot of slots) {
        if (slot.stateId !== 0) this.pendingStateDeletes.push(slot.stateId);
      }
      this.chunked('state', stateInsertSql, slots.values(), slots.size, undefined, (slot, out) => {
        slot.pending = PENDING_NONE;
        slot.stateId = this.nextStateId++;
        out.push(slot.stateId, slot.clientId, slot.seq, slot.state, slot.packetId);
      });
    }
    if (this.pendingStateDeletes.length > 0) {
      forRuns(this.pendingStateDeletes, (lo, hi) => s.deleteStateRange.run(lo, hi));
      this.pendingStateDeletes = [];
    }
    this.pendingCount = 0;
  }

  /**
   * Runs a multi-row statement (`sql(n)` takes n rows' values, then `last` if given) over `count`
   * rows in chunks of CHUNK_SIZES rows; each size's statement is prepared once.
   */
  private chunked<T>(
    name: string, sql: (rows: number) => string, rows: Iterator<T>, count: number, last: unknown,
    push: (row: T, out: unknown[]) => void,
  ): void {
    let left = count;
    const values: unknown[] = [];
    for (const size of CHUNK_SIZES) {
      if (left < size) continue;
      const key = `${name}:${size}`;
      let statement = this.multi.get(key);
      if (statement === undefined) {
        statement = this.db.prepare(sql(size));
        this.multi.set(key, statement);
      }
      while (left >= size) {
        values.length = 0;
        for (let i = 0; i < size; i++) push(rows.next().value as T, values);
        if (last !== undefined) values.push(last);
        statement.run(values);
        left -= size;
      }
    }
  }

  /** Returns free pages to the file system (bounded unless `all`); never fails a batch. */
  private reclaimSpace(all: boolean): void {
    if (this.inTransaction) return;
    try {
      const free = this.s.freelistCount.get() as number;
      if (free === 0) return;
      if (!all) {
        const pages = this.s.pageCount.get() as number;
        if (free < RECLAIM_MIN_FREE_PAGES || free * 4 < pages) return;
      }
      this.db.pragma(`incremental_vacuum(${all ? free : Math.min(free, RECLAIM_MAX_PAGES)})`);
    } catch {
      // Space is reclaimed later; a failed vacuum changes no data.
      try {
        if (this.db.inTransaction) this.s.rollback.run();
      } catch {
        // Ignore.
      }
    }
  }

  private shutdown(clean: boolean): void {
    this.closed = true;
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.immediate = undefined;
    this.effects = [];
    this.effectsHead = 0;
    this.runnableUpTo = 0;
    try {
      if (this.db.inTransaction) this.s.rollback.run();
      this.inTransaction = false;
      if (clean) {
        this.reclaimSpace(true);
        try {
          this.db.pragma('wal_checkpoint(TRUNCATE)');
        } catch {
          // Closing checkpoints too; a failed checkpoint loses nothing (the WAL is replayed at open).
        }
      }
    } finally {
      this.db.close();
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Opening

/** Checks (creating when missing) the data dir; returns true when the database file is missing or empty. */
function prepareDataDir(dataDir: string, file: string): boolean {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(dataDir);
  } catch (err) {
    const code = errorCode(err);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') {
      throw new StoreOpenError(`cannot use data dir ${dataDir}: ${errorMessage(err)}`, { cause: err });
    }
  }
  if (stat && !stat.isDirectory()) throw new StoreOpenError(`data dir ${dataDir} is not a directory`);
  if (!stat) {
    try {
      makeDirectory(dataDir);
    } catch (err) {
      throw new StoreOpenError(`cannot create data dir ${dataDir}: ${errorMessage(err)}`, { cause: err });
    }
  }
  try {
    fs.accessSync(dataDir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw new StoreOpenError(`data dir ${dataDir} is not writable: ${errorMessage(err)}`, { cause: err });
  }
  let fileStat: fs.Stats | undefined;
  try {
    fileStat = fs.statSync(file);
  } catch {
    return true;
  }
  if (!fileStat.isFile()) {
    throw new StoreOpenError(`${file} is not a regular file: move it away or choose another --data-dir`);
  }
  try {
    fs.accessSync(file, fs.constants.R_OK | fs.constants.W_OK);
  } catch (err) {
    throw new StoreOpenError(`${file} is not writable: ${errorMessage(err)}`, { cause: err });
  }
  return fileStat.size === 0;
}

/** Locks, validates and (when empty) creates the database; throws StoreOpenError. */
function initialise(db: Database.Database, file: string, durability: 'process' | 'power', empty: boolean): void {
  const invalid = (reason: string, cause?: unknown): StoreOpenError =>
    new StoreOpenError(
      `${file} is not a valid mqtt-sim database (${reason}): move it away to start fresh; nothing was changed`,
      { cause },
    );
  const classify = (err: unknown): StoreOpenError => {
    const code = errorCode(err);
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code?.startsWith('SQLITE_BUSY_')) {
      return new StoreOpenError(
        `${file} is in use by another broker (locked): stop it or choose another --data-dir`,
        { cause: err },
      );
    }
    if (code === 'SQLITE_NOTADB' || code?.startsWith('SQLITE_CORRUPT')) return invalid(errorMessage(err), err);
    return new StoreOpenError(`cannot open ${file}: ${errorMessage(err)}`, { cause: err });
  };

  // The lock first, before anything reads or writes: EXCLUSIVE locking mode holds every lock it
  // takes until close, and EXCLUSIVE before the first WAL access means no shared-memory file.
  // auto_vacuum only takes effect before page 1 exists, and taking the lock on an empty file writes
  // page 1, so an empty file gets it first (a file with content is never touched before validation).
  try {
    if (empty) db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN IMMEDIATE');
    db.exec('COMMIT');
  } catch (err) {
    throw classify(err);
  }

  // Read-only validation.
  let fresh: boolean;
  let version: number;
  try {
    const problems = (db.pragma('quick_check(5)') as Array<{ quick_check: string }>).map((r) => r.quick_check);
    if (problems.length !== 1 || problems[0] !== 'ok') {
      throw invalid(`quick_check: ${problems.join('; ').replace(/\s*\n\s*/g, '; ').slice(0, 300)}`);
    }
    const applicationId = db.pragma('application_id', { simple: true }) as number;
    version = db.pragma('user_version', { simple: true }) as number;
    const objects = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
    if (applicationId !== 0 && applicationId !== APPLICATION_ID) {
      throw invalid(`application_id ${applicationId} belongs to another program`);
    }
    if (version > SCHEMA_VERSION) {
      throw new StoreOpenError(
        `${file} was written by a newer mqtt-sim (schema version ${version}; this version understands up to ${SCHEMA_VERSION}): ` +
          'upgrade mqtt-sim or choose another --data-dir; nothing was changed',
      );
    }
    if (version === 0) {
      if (objects.length > 0) throw invalid(`it holds tables (${objects.slice(0, 5).join(', ')}) but no mqtt-sim schema`);
      fresh = true;
    } else {
      const missing = (version === 1 ? TABLES_V1 : TABLES).filter((t) => !objects.includes(t));
      if (missing.length > 0) throw invalid(`schema version ${version} but tables missing: ${missing.join(', ')}`);
      fresh = false;
    }
  } catch (err) {
    if (err instanceof StoreOpenError) throw err;
    throw classify(err);
  }

  // From here on the file is ours to write.
  if (fresh && db.pragma('auto_vacuum', { simple: true }) !== 2) {
    // An empty database someone created without it: VACUUM rebuilds it with auto_vacuum on.
    db.pragma('auto_vacuum = INCREMENTAL');
    db.exec('VACUUM');
  }
  const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
  if (mode !== 'wal') throw new StoreOpenError(`cannot open ${file}: journal_mode WAL refused (${mode})`);
  db.pragma(`synchronous = ${durability === 'power' ? 'FULL' : 'NORMAL'}`);
  // Keep the WAL from staying large after a big batch has been checkpointed.
  db.pragma(`journal_size_limit = ${16 * 1024 * 1024}`);
  db.pragma('cache_size = -16384');
  if (fresh) {
    db.exec('BEGIN');
    try {
      db.exec(CREATE_SCHEMA);
      db.pragma(`application_id = ${APPLICATION_ID}`);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
      db.exec('COMMIT');
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw err;
    }
  } else {
    if (version === 1) {
      db.exec('BEGIN');
      try {
        db.exec(MIGRATE_1_TO_2);
        db.pragma('user_version = 2');
        db.exec('COMMIT');
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw new StoreOpenError(
          `${file}: migrating schema version 1 to 2 failed (${errorMessage(err)}); the file was left at version 1`,
          { cause: err },
        );
      }
    }
    // A restart drops messages that nothing references (stored, but their queue entries or retained
    // slot never committed, or the broker never referenced them). Each commit leaves at most one
    // queue_state row per queue entry and none for removed entries; this only guards that invariant.
    db.exec('DELETE FROM messages WHERE id NOT IN (SELECT message_id FROM queue UNION SELECT message_id FROM retained)');
    db.exec(
      `DELETE FROM queue_state WHERE id NOT IN (SELECT max(id) FROM queue_state GROUP BY client_id, seq)
         OR NOT EXISTS (SELECT 1 FROM queue q WHERE q.client_id = queue_state.client_id AND q.seq = queue_state.seq)`,
    );
  }
}

function prepareStatements(db: Database.Database) {
  const p = (sql: string): Statement => db.prepare(sql);
  const pluck = (sql: string): Statement => db.prepare(sql).pluck();
  const messageColumns = 'm.topic, m.payload, m.qos, m.retain, m.properties, m.expires_at, m.publisher_id';
  return {
    begin: p('BEGIN'),
    commit: p('COMMIT'),
    rollback: p('ROLLBACK'),
    freelistCount: pluck('PRAGMA freelist_count'),
    pageCount: pluck('PRAGMA page_count'),
    maxMessageId: pluck('SELECT max(x) FROM (SELECT max(id) AS x FROM messages UNION ALL SELECT max(message_id) FROM queue)'),
    countMessages: pluck('SELECT count(*) FROM messages'),

    selectSessions: p('SELECT * FROM sessions ORDER BY client_id'),
    upsertSession: p(
      `INSERT OR REPLACE INTO sessions (client_id, protocol_version, expiry_interval, disconnected_at,
         will_topic, will_payload, will_qos, will_retain, will_properties, will_due_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    deleteSession: p('DELETE FROM sessions WHERE client_id = ?'),

    selectSubscriptions: p('SELECT * FROM subscriptions ORDER BY client_id, filter'),
    upsertSubscription: p(
      `INSERT OR REPLACE INTO subscriptions
         (client_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    deleteSubscription: p('DELETE FROM subscriptions WHERE client_id = ? AND filter = ?'),
    deleteSubscriptionsOf: p('DELETE FROM subscriptions WHERE client_id = ?'),

    deleteMessageRange: p('DELETE FROM messages WHERE id BETWEEN ? AND ?'),
    allMessageIds: pluck('SELECT id FROM messages'),
    allRetainedIds: pluck('SELECT message_id FROM retained'),
    allQueueRows: db
      .prepare(
        'SELECT client_id, seq, message_id, qos, state, packet_id, retain, subscription_ids, m_topic IS NOT NULL FROM queue',
      )
      .raw() as Statement,

    selectRetained: p(`SELECT r.message_id, ${messageColumns} FROM retained r JOIN messages m ON m.id = r.message_id`),
    selectRetainedId: pluck('SELECT message_id FROM retained WHERE topic = ?'),
    upsertRetained: p(
      'INSERT INTO retained (topic, message_id) VALUES (?, ?) ON CONFLICT (topic) DO UPDATE SET message_id = excluded.message_id',
    ),
    deleteRetained: p('DELETE FROM retained WHERE topic = ?'),

    // A message is either inline in its queue row or in messages, so each coalesce picks that one.
    selectQueue: p(
      `SELECT q.seq, q.message_id, q.qos AS q_qos, q.state, q.packet_id, q.retain AS q_retain, q.subscription_ids,
              coalesce(q.m_topic, m.topic) AS topic, coalesce(q.m_payload, m.payload) AS payload,
              coalesce(q.m_qos, m.qos) AS qos, coalesce(q.m_retain, m.retain) AS retain,
              coalesce(q.m_properties, m.properties) AS properties, coalesce(q.m_expires_at, m.expires_at) AS expires_at,
              coalesce(q.m_publisher_id, m.publisher_id) AS publisher_id
       FROM queue q LEFT JOIN messages m ON m.id = q.message_id
       WHERE q.client_id = ? AND (q.m_topic IS NOT NULL OR m.id IS NOT NULL) ORDER BY q.seq`,
    ),
    deleteQueueRange: p('DELETE FROM queue WHERE client_id = ? AND seq BETWEEN ? AND ?'),
    deleteQueueOf: p('DELETE FROM queue WHERE client_id = ?'),
    materializeMessage: p(
      `INSERT INTO messages (id, topic, payload, qos, retain, properties, expires_at, publisher_id)
       SELECT message_id, m_topic, m_payload, m_qos, m_retain, m_properties, m_expires_at, m_publisher_id
       FROM queue WHERE client_id = ? AND seq = ? AND m_topic IS NOT NULL`,
    ),
    clearInline: p(
      `UPDATE queue SET m_topic = NULL, m_payload = NULL, m_qos = NULL, m_retain = NULL, m_properties = NULL,
         m_expires_at = NULL, m_publisher_id = NULL WHERE client_id = ? AND seq = ?`,
    ),
    maxStateId: pluck('SELECT max(id) FROM queue_state'),
    allStateRows: db.prepare('SELECT id, client_id, seq, state, packet_id FROM queue_state ORDER BY id').raw() as Statement,
    deleteStateRange: p('DELETE FROM queue_state WHERE id BETWEEN ? AND ?'),

    selectInbound: pluck('SELECT packet_id FROM inbound_qos2 WHERE client_id = ? ORDER BY packet_id'),
    insertInbound: p('INSERT OR IGNORE INTO inbound_qos2 (client_id, packet_id) VALUES (?, ?)'),
    deleteInbound: p('DELETE FROM inbound_qos2 WHERE client_id = ? AND packet_id = ?'),
    deleteInboundOf: p('DELETE FROM inbound_qos2 WHERE client_id = ?'),
  };
}

// ------------------------------------------------------------------------------------------------
// Rows and encodings

function rowToMessage(row: MessageRow): StoredMessage {
  const message: StoredMessage = {
    topic: row.topic,
    payload: asBuffer(row.payload),
    qos: row.qos as StoredMessage['qos'],
    retain: row.retain !== 0,
  };
  if (row.properties !== null) message.properties = decodeProperties(row.properties);
  if (row.expires_at !== null) message.expiresAt = row.expires_at;
  if (row.publisher_id !== null) message.publisherId = row.publisher_id;
  return message;
}

function rowToSession(row: SessionRow): SessionRecord {
  const session: SessionRecord = {
    clientId: row.client_id,
    protocolVersion: row.protocol_version as SessionRecord['protocolVersion'],
    expiryInterval: row.expiry_interval,
  };
  if (row.disconnected_at !== null) session.disconnectedAt = row.disconnected_at;
  if (row.will_topic !== null) {
    const will: NonNullable<SessionRecord['will']> = {
      topic: row.will_topic,
      payload: asBuffer(row.will_payload),
      qos: (row.will_qos ?? 0) as StoredMessage['qos'],
      retain: row.will_retain === 1,
    };
    if (row.will_properties !== null) will.properties = decodeProperties(row.will_properties);
    if (row.will_due_at !== null) will.dueAt = row.will_due_at;
    session.will = will;
  }
  return session;
}

function rowToSubscription(row: SubscriptionRow): SubscriptionRecord {
  const sub: SubscriptionRecord = {
    clientId: row.client_id,
    filter: row.filter,
    qos: row.qos as SubscriptionRecord['qos'],
    noLocal: row.no_local !== 0,
    retainAsPublished: row.retain_as_published !== 0,
    retainHandling: row.retain_handling as SubscriptionRecord['retainHandling'],
  };
  if (row.subscription_id !== null) sub.subscriptionId = row.subscription_id;
  return sub;
}

/** SQLite may hand back an empty BLOB as null; payloads are always Buffers. */
function asBuffer(value: Buffer | null): Buffer {
  return value ?? Buffer.alloc(0);
}

function decodeIds(text: string): number[] {
  return text === '' ? [] : text.split(',').map(Number);
}

/** Properties as JSON; Buffers (at any depth) become {"$b64": "..."}; undefined fields are left out. */
function encodeProperties(properties: Properties): string {
  return JSON.stringify(toJsonValue(properties));
}

function decodeProperties(text: string): Properties {
  return JSON.parse(text, reviveBuffers) as Properties;
}

function toJsonValue(value: unknown): unknown {
  if (value instanceof Uint8Array) {
    return { $b64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  }
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      const item = (value as Record<string, unknown>)[key];
      if (item !== undefined) out[key] = toJsonValue(item);
    }
    return out;
  }
  return value;
}

function reviveBuffers(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const b64 = (value as { $b64?: unknown }).$b64;
    if (typeof b64 === 'string' && Object.keys(value).length === 1) return Buffer.from(b64, 'base64');
  }
  return value;
}

/** Calls `run(lo, hi)` for each run of consecutive integers in `values` (any order). */
function forRuns(values: readonly number[], run: (lo: number, hi: number) => void): void {
  const sorted = values.length === 1 ? values : Float64Array.from(values).sort();
  let lo = sorted[0]!;
  let hi = lo;
  for (let i = 1; i < sorted.length; i++) {
    const v = sorted[i]!;
    if (v <= hi + 1) {
      if (v > hi) hi = v;
      continue;
    }
    run(lo, hi);
    lo = hi = v;
  }
  run(lo, hi);
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
