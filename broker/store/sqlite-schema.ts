/**
 * The SQLite store's schema (see sqlite.ts). One file per data dir, identified by `application_id`
 * and versioned by `user_version`: a database with a higher version than SCHEMA_VERSION was written by
 * a newer mqtt-sim and is refused rather than guessed at.
 *
 * Encodings (kept compact and cheap on the hot path; no JSON around payloads):
 * - booleans are 0/1 integers;
 * - queue.state is 0 'queued', 1 'sent', 2 'pubrec-received'; it is the entry's state when it was
 *   written. A later change of state or packet id is a queue_state row instead (an append and a range
 *   delete cost a fraction of an UPDATE of a WITHOUT ROWID row); a queue entry has at most one
 *   queue_state row, which wins over its own columns, and loses it with the entry;
 * - queue.subscription_ids is NULL (absent), '' (empty list) or decimal ids joined by ',';
 * - properties columns are NULL (absent) or JSON in which every Buffer is written as {"$b64": "..."}
 *   (arrays keep their order, so user properties round-trip in order);
 * - payloads are BLOBs;
 * - a message with a single reference, a queue entry written in the same commit, is stored inline in
 *   that entry's row (queue.m_topic ... m_publisher_id, the messages columns; m_topic NOT NULL marks
 *   it) instead of in messages: one row written and deleted instead of two. Should it get a second
 *   reference later, it is moved to messages (and the m_* columns cleared) in the commit that adds it.
 *   A message id is in messages or inline in exactly one queue row, never both.
 */

/**
 * The schema version this build writes and understands.
 * - 1: the first schema.
 * - 2: adds queue_state and the queue.m_* columns. A version 1 database is migrated at open (one
 *   transaction: the table and the columns are added, user_version set to 2); mqtt-sim builds that
 *   only know version 1 then refuse the file as written by a newer mqtt-sim.
 */
export const SCHEMA_VERSION = 2;

/** 'mqts' — marks a SQLite file as an mqtt-sim store (PRAGMA application_id). */
export const APPLICATION_ID = 0x6d717473;

/** The tables every mqtt-sim store has (used to tell an mqtt-sim database from someone else's). */
export const TABLES = ['messages', 'sessions', 'subscriptions', 'retained', 'queue', 'inbound_qos2', 'queue_state'] as const;

/** The tables of a version 1 database (before queue_state). */
export const TABLES_V1 = ['messages', 'sessions', 'subscriptions', 'retained', 'queue', 'inbound_qos2'] as const;

/** Version 1 → 2. Run inside one transaction together with `user_version = 2`. */
export const MIGRATE_1_TO_2 = `
ALTER TABLE queue ADD COLUMN m_topic TEXT;
ALTER TABLE queue ADD COLUMN m_payload BLOB;
ALTER TABLE queue ADD COLUMN m_qos INTEGER;
ALTER TABLE queue ADD COLUMN m_retain INTEGER;
ALTER TABLE queue ADD COLUMN m_properties TEXT;
ALTER TABLE queue ADD COLUMN m_expires_at INTEGER;
ALTER TABLE queue ADD COLUMN m_publisher_id TEXT;

CREATE TABLE queue_state (
  id        INTEGER PRIMARY KEY,
  client_id TEXT    NOT NULL,
  seq       INTEGER NOT NULL,
  state     INTEGER NOT NULL,
  packet_id INTEGER
);
`;

/** The version 1 schema (kept to describe what MIGRATE_1_TO_2 starts from, and for its tests). */
export const CREATE_SCHEMA_V1 = `
CREATE TABLE messages (
  id           INTEGER PRIMARY KEY,
  topic        TEXT    NOT NULL,
  payload      BLOB    NOT NULL,
  qos          INTEGER NOT NULL,
  retain       INTEGER NOT NULL,
  properties   TEXT,
  expires_at   INTEGER,
  publisher_id TEXT,
  -- Unused since reference counts are derived from queue and retained (kept so existing files open).
  refs         INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
  client_id        TEXT    NOT NULL PRIMARY KEY,
  protocol_version INTEGER NOT NULL,
  expiry_interval  INTEGER NOT NULL,
  disconnected_at  INTEGER,
  will_topic       TEXT,
  will_payload     BLOB,
  will_qos         INTEGER,
  will_retain      INTEGER,
  will_properties  TEXT,
  will_due_at      INTEGER
);

CREATE TABLE subscriptions (
  client_id           TEXT    NOT NULL,
  filter              TEXT    NOT NULL,
  qos                 INTEGER NOT NULL,
  no_local            INTEGER NOT NULL,
  retain_as_published INTEGER NOT NULL,
  retain_handling     INTEGER NOT NULL,
  subscription_id     INTEGER,
  PRIMARY KEY (client_id, filter)
) WITHOUT ROWID;

CREATE TABLE retained (
  topic      TEXT    NOT NULL PRIMARY KEY,
  message_id INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE queue (
  client_id        TEXT    NOT NULL,
  seq              INTEGER NOT NULL,
  message_id       INTEGER NOT NULL,
  qos              INTEGER NOT NULL,
  state            INTEGER NOT NULL,
  packet_id        INTEGER,
  retain           INTEGER NOT NULL,
  subscription_ids TEXT,
  PRIMARY KEY (client_id, seq)
) WITHOUT ROWID;

CREATE TABLE inbound_qos2 (
  client_id TEXT    NOT NULL,
  packet_id INTEGER NOT NULL,
  PRIMARY KEY (client_id, packet_id)
) WITHOUT ROWID;
`;

/** Creates the schema in an empty database. Run inside one transaction, after `auto_vacuum` is set. */
export const CREATE_SCHEMA = CREATE_SCHEMA_V1 + MIGRATE_1_TO_2;
