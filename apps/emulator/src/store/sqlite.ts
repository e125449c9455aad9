import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  assignedSubstatusSchema,
  type DevicePayload,
  deviceRegistrationResultSchema,
  type InitialTwin,
  initialTwinSchema,
  parseWith,
  type RegistrationOperationStatus,
  registrationOperationStatusSchema,
  x509RuntimeContextSchema,
} from '@dpskit/contracts';
import Database from 'better-sqlite3';
import type { EnrollmentMeta, EnrollmentMetaStore } from '../config/resolve.js';
import type { AttemptEntry, AttemptStore, AttemptSummary } from '../core/attempts.js';
import {
  type EnrollmentKind,
  type EnrollmentStore,
  type Page,
  pageOf,
  type RegistrationAdminStore,
  type StoredEnrollment,
} from '../core/enrollments/store.js';
import { isDeviceTransport } from '../core/events.js';
import type { OperationRecord, RegistrationRecord, RegistrationStore } from '../core/store.js';
import type { HubAssignment } from '../hub/core/assignment.js';
import type { AssignmentPushes, HubPushOutbox } from '../hub/core/pushes.js';
import { applyAssignment } from '../hub/core/store.js';
import { SqliteHubStore } from './sqlite-hub.js';
import { SqliteHubPushes, UncommittedHubPushes } from './sqlite-hub-pushes.js';

/**
 * Each entry moves the schema from version i to i + 1 (`PRAGMA user_version`). Exported for the
 * tests that build a database as an older version made it.
 */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE registrations (
     registration_key TEXT PRIMARY KEY,
     registration_id TEXT NOT NULL,
     enrollment_kind TEXT NOT NULL CHECK (enrollment_kind IN ('group', 'individual')),
     enrollment_id TEXT NOT NULL,
     status TEXT NOT NULL,
     assigned_hub TEXT,
     result_json TEXT NOT NULL,
     current_hub TEXT,
     current_device_id TEXT,
     current_substatus TEXT,
     initial_twin_json TEXT,
     last_updated_utc TEXT NOT NULL
   );
   CREATE INDEX registrations_by_enrollment ON registrations (enrollment_kind, enrollment_id);
   CREATE TABLE enrollments (
     kind TEXT NOT NULL CHECK (kind IN ('group', 'individual')),
     enrollment_key TEXT NOT NULL,
     enrollment_id TEXT NOT NULL,
     generated_primary_key TEXT,
     generated_secondary_key TEXT,
     content_hash TEXT NOT NULL,
     etag TEXT NOT NULL,
     created_utc TEXT NOT NULL,
     last_updated_utc TEXT NOT NULL,
     PRIMARY KEY (kind, enrollment_key)
   );`,
  // The service API's enrollments (the table above keeps the config file's generated keys).
  `CREATE TABLE service_enrollments (
     kind TEXT NOT NULL CHECK (kind IN ('group', 'individual')),
     enrollment_key TEXT NOT NULL,
     enrollment_id TEXT NOT NULL,
     record_json TEXT NOT NULL,
     seed_hash TEXT,
     PRIMARY KEY (kind, enrollment_key)
   );`,
  // Operations, persisted so that a restart after a crash answers every poll (issue 8).
  `CREATE TABLE operations (
     operation_id TEXT PRIMARY KEY,
     registration_id TEXT NOT NULL,
     enrollment_kind TEXT NOT NULL CHECK (enrollment_kind IN ('group', 'individual')),
     enrollment_id TEXT NOT NULL,
     transport TEXT NOT NULL,
     payload_json TEXT,
     created_ms INTEGER NOT NULL,
     response_json TEXT,
     finished_ms INTEGER
   );
   CREATE INDEX operations_unfinished ON operations (created_ms) WHERE finished_ms IS NULL;
   CREATE INDEX operations_finished ON operations (finished_ms) WHERE finished_ms IS NOT NULL;`,
  // The registration attempt log the web view reads (issue 14): bounded, newest kept.
  `CREATE TABLE registration_attempts (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     summary_json TEXT NOT NULL,
     detail_json TEXT NOT NULL
   );`,
  // X.509 devices' certificate details (issue 12), for a resumed allocation's webhook call.
  'ALTER TABLE operations ADD COLUMN x509_json TEXT;',
  // The emulated IoT hubs: device identities with their twins, and the telemetry received (issue 10).
  `CREATE TABLE hub_devices (
     hub_key TEXT NOT NULL,
     device_key TEXT NOT NULL,
     hub TEXT NOT NULL,
     device_id TEXT NOT NULL,
     device_json TEXT NOT NULL,
     PRIMARY KEY (hub_key, device_key)
   );
   CREATE TABLE hub_telemetry (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     hub_key TEXT NOT NULL,
     device_key TEXT NOT NULL,
     hub TEXT NOT NULL,
     device_id TEXT NOT NULL,
     body BLOB NOT NULL,
     properties_json TEXT NOT NULL,
     transport TEXT NOT NULL,
     received_utc TEXT NOT NULL
   );
   CREATE INDEX hub_telemetry_by_hub ON hub_telemetry (hub_key, id);`,
  // The web view's hub view (issue 14): a change sequence over the hub devices, which its live
  // stream follows, and each device's newest telemetry found by device.
  `ALTER TABLE hub_devices ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX hub_devices_by_change ON hub_devices (change_seq);
   CREATE INDEX hub_telemetry_by_device ON hub_telemetry (hub_key, device_key, id);`,
  // Certificate issuance (issue 12): the device's certificate signing request, signed on assignment.
  'ALTER TABLE operations ADD COLUMN csr TEXT;',
  // dps-emulator start --workers: the hubs' pushes to connected devices, for whichever process holds
  // the device's connection (SqliteHubPushes).
  `CREATE TABLE hub_pushes (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     origin TEXT NOT NULL,
     push_json TEXT NOT NULL
   );`,
  // dps-emulator start --workers: a registration id's unfinished operations, for the process about
  // to run one (firstUnfinishedOperation). Only unfinished rows: it stays as small as the work in flight.
  'CREATE INDEX operations_unfinished_by_registration ON operations (lower(registration_id)) WHERE finished_ms IS NULL;',
  // A count of enrollment changes by any process (enrollmentsVersion): with --workers, data_version
  // changes with every other worker's registration, and the enrollments were rebuilt for each.
  `CREATE TABLE enrollment_changes (id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL);
   INSERT INTO enrollment_changes (id, count) VALUES (1, 0);
   CREATE TRIGGER service_enrollments_inserted AFTER INSERT ON service_enrollments
     BEGIN UPDATE enrollment_changes SET count = count + 1; END;
   CREATE TRIGGER service_enrollments_updated AFTER UPDATE ON service_enrollments
     BEGIN UPDATE enrollment_changes SET count = count + 1; END;
   CREATE TRIGGER service_enrollments_deleted AFTER DELETE ON service_enrollments
     BEGIN UPDATE enrollment_changes SET count = count + 1; END;`,
  // IoT Hub device ids are case-sensitive (SqliteHubStore): a device is keyed by its id as it is,
  // no longer lower-cased. No two rows can collide: the old key held one device per lower-cased id.
  `UPDATE hub_devices SET device_key = device_id;
   UPDATE hub_telemetry SET device_key = device_id;`,
  // Hub telemetry numbered per hub (hub_seq) and per device (device_seq), so that keeping the newest
  // MAX_TELEMETRY_KEPT per hub and MAX_TELEMETRY_PER_DEVICE per device looks up the one message that
  // leaves each window instead of walking the hub's newest (SqliteHubStore.addTelemetry). The rows
  // kept are numbered in the order received: a window's messages are all still kept, so their numbers
  // run without gaps from the newest down, as if counted from the first message. Rebuilt without
  // AUTOINCREMENT: no sqlite_sequence row to update per message (rows are ordered by their numbers).
  `CREATE TABLE hub_telemetry_numbered (
     id INTEGER PRIMARY KEY,
     hub_key TEXT NOT NULL,
     device_key TEXT NOT NULL,
     hub_seq INTEGER NOT NULL,
     device_seq INTEGER NOT NULL,
     hub TEXT NOT NULL,
     device_id TEXT NOT NULL,
     body BLOB NOT NULL,
     properties_json TEXT NOT NULL,
     transport TEXT NOT NULL,
     received_utc TEXT NOT NULL
   );
   INSERT INTO hub_telemetry_numbered
     SELECT id, hub_key, device_key,
       row_number() OVER (PARTITION BY hub_key ORDER BY id),
       row_number() OVER (PARTITION BY hub_key, device_key ORDER BY id),
       hub, device_id, body, properties_json, transport, received_utc
     FROM hub_telemetry;
   DROP TABLE hub_telemetry;
   ALTER TABLE hub_telemetry_numbered RENAME TO hub_telemetry;
   CREATE UNIQUE INDEX hub_telemetry_by_hub ON hub_telemetry (hub_key, hub_seq);
   CREATE UNIQUE INDEX hub_telemetry_by_device ON hub_telemetry (hub_key, device_key, device_seq);`,
  // The attempt log rebuilt without AUTOINCREMENT: its row in sqlite_sequence was written by every
  // registration's commit (a WAL frame each). A new attempt's seq is then one more than the log's
  // largest, which pruning never removes (it keeps the newest) except when it empties the log
  // (`attemptHistory: 0`): the largest seq given so far is kept in registration_attempts_floor
  // then, and the first attempt after that numbered above it (appendAttempt). Seqs keep rising and
  // are never given twice, as with AUTOINCREMENT; the floor starts at AUTOINCREMENT's counter.
  // Runs again on a file it has already upgraded as it does the first time (tests that write an
  // older schema's rows set user_version back and run every migration after theirs).
  `CREATE TABLE registration_attempts_rebuilt (
     seq INTEGER PRIMARY KEY,
     summary_json TEXT NOT NULL,
     detail_json TEXT NOT NULL
   );
   INSERT INTO registration_attempts_rebuilt (seq, summary_json, detail_json)
     SELECT seq, summary_json, detail_json FROM registration_attempts;
   CREATE TABLE IF NOT EXISTS registration_attempts_floor (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
   INSERT OR IGNORE INTO registration_attempts_floor (id, seq)
     VALUES (1, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'registration_attempts'), 0));
   DROP TABLE registration_attempts;
   ALTER TABLE registration_attempts_rebuilt RENAME TO registration_attempts;`,
  // Operations pruned without an index on finished_ms (written by every registration: a B-tree
  // insert and a WAL frame per commit): pruneOperations walks the oldest rows in the order they
  // were written, which is the order they were created in.
  'DROP INDEX IF EXISTS operations_finished;',
  // How many service enrollments of each kind there are, kept by triggers as enrollment_changes is:
  // the individual enrollment quota (1,000,000 by default) is checked on every creation, and a
  // count of the rows walked them all (~64 ms at a million). Started from the rows already there.
  // An upsert that finds its row fires only the update trigger (the kind is part of the key).
  // Runs again on a file it has already upgraded (as the attempt log's rebuild above): counted anew.
  `CREATE TABLE IF NOT EXISTS enrollment_counts (
     kind TEXT PRIMARY KEY CHECK (kind IN ('group', 'individual')),
     count INTEGER NOT NULL
   );
   INSERT OR REPLACE INTO enrollment_counts (kind, count)
     SELECT 'group', count(*) FROM service_enrollments WHERE kind = 'group'
     UNION ALL SELECT 'individual', count(*) FROM service_enrollments WHERE kind = 'individual';
   CREATE TRIGGER IF NOT EXISTS service_enrollments_counted_in AFTER INSERT ON service_enrollments
     BEGIN UPDATE enrollment_counts SET count = count + 1 WHERE kind = NEW.kind; END;
   CREATE TRIGGER IF NOT EXISTS service_enrollments_counted_out AFTER DELETE ON service_enrollments
     BEGIN UPDATE enrollment_counts SET count = count - 1 WHERE kind = OLD.kind; END;
   CREATE TRIGGER IF NOT EXISTS service_enrollments_counted_moved AFTER UPDATE OF kind ON service_enrollments
     WHEN OLD.kind IS NOT NEW.kind
     BEGIN
       UPDATE enrollment_counts SET count = count - 1 WHERE kind = OLD.kind;
       UPDATE enrollment_counts SET count = count + 1 WHERE kind = NEW.kind;
     END;`,
  // The unfinished operations found for a restart's resume through operations_unfinished_by_registration
  // (the same rows: only unfinished ones), sorted by creation then: one index fewer for every
  // operation inserted unfinished (a custom allocation's) to add it to and, at its finish, remove it from.
  'DROP INDEX IF EXISTS operations_unfinished;',
  // The hubs' cloud-to-device queues (hub/core/c2d.ts): a device's messages in order (seq), each as
  // JSON beside its body; lock_connection names the MQTT connection a message is locked to, so its
  // close (or the next start) puts the message back. Runs again on a file it has upgraded (tests of
  // older schemas set user_version back).
  `CREATE TABLE IF NOT EXISTS hub_c2d (
     hub_key TEXT NOT NULL,
     device_key TEXT NOT NULL,
     seq INTEGER NOT NULL,
     lock_connection TEXT,
     message_json TEXT NOT NULL,
     body BLOB NOT NULL,
     PRIMARY KEY (hub_key, device_key, seq)
   );
   CREATE INDEX IF NOT EXISTS hub_c2d_by_lock_connection ON hub_c2d (lock_connection) WHERE lock_connection IS NOT NULL;`,
  // The hubs' cloud-to-device feedback queues (hub/core/c2d.ts feedbackOf): records in order, holder
  // naming the service link a record was sent on until it is completed or released.
  `CREATE TABLE IF NOT EXISTS hub_c2d_feedback (
     seq INTEGER PRIMARY KEY,
     hub_key TEXT NOT NULL,
     holder TEXT,
     record_json TEXT NOT NULL
   );`,
  // The hubs' Event Hubs-compatible built-in endpoint (hub/core/eventhub.ts): its events are the
  // telemetry messages, kept with them (one copy of each message, one retention rule: the hub's
  // newest 1000 and each device's newest 10) and written in the one INSERT
  // (SqliteHubStore.addTelemetry): the message's partition, its number there (partition_seq), its
  // byte offset and the next's, when it was enqueued, its device's authentication type and
  // generation id. Messages stored before this have no partition: they are no events. (A table of
  // events of their own, a second copy of each body, cost +25 us of CPU a message; this +9 us.)
  // Rebuilt, as the numbering above, so that it runs again on a file it has upgraded (tests of older
  // schemas set user_version back): a run again keeps the messages, not their event columns.
  `CREATE TABLE hub_telemetry_with_events (
     id INTEGER PRIMARY KEY,
     hub_key TEXT NOT NULL,
     device_key TEXT NOT NULL,
     hub_seq INTEGER NOT NULL,
     device_seq INTEGER NOT NULL,
     hub TEXT NOT NULL,
     device_id TEXT NOT NULL,
     body BLOB NOT NULL,
     properties_json TEXT NOT NULL,
     transport TEXT NOT NULL,
     received_utc TEXT NOT NULL,
     partition INTEGER,
     partition_seq INTEGER,
     byte_offset INTEGER,
     next_offset INTEGER,
     enqueued_ms INTEGER,
     auth_type TEXT,
     generation_id TEXT
   );
   INSERT INTO hub_telemetry_with_events
       (id, hub_key, device_key, hub_seq, device_seq, hub, device_id, body, properties_json, transport, received_utc)
     SELECT id, hub_key, device_key, hub_seq, device_seq, hub, device_id, body, properties_json, transport, received_utc
     FROM hub_telemetry;
   DROP TABLE hub_telemetry;
   ALTER TABLE hub_telemetry_with_events RENAME TO hub_telemetry;
   CREATE UNIQUE INDEX hub_telemetry_by_hub ON hub_telemetry (hub_key, hub_seq);
   CREATE UNIQUE INDEX hub_telemetry_by_device ON hub_telemetry (hub_key, device_key, device_seq);
   CREATE UNIQUE INDEX hub_telemetry_by_partition ON hub_telemetry (hub_key, partition, partition_seq)
     WHERE partition IS NOT NULL;`,
  // The hubs' module identities (hub/core/modules.ts), each with its twin, keyed as its device is
  // (hub in lower case, device id as it is) plus its module id as it is (case-sensitive).
  `CREATE TABLE IF NOT EXISTS hub_modules (
     hub_key TEXT NOT NULL,
     device_key TEXT NOT NULL,
     module_key TEXT NOT NULL,
     module_json TEXT NOT NULL,
     PRIMARY KEY (hub_key, device_key, module_key)
   );`,
  // A module's message (ModuleClient) keeps its module id in a column of its own, where the store's
  // queries and the web view read it; it was the second item of a `[properties, moduleId]` array in
  // properties_json, which the copy below takes apart. Rebuilt, as the event columns were, so that
  // it runs again on a file it has upgraded (tests of older schemas set user_version back): a run
  // again keeps the messages, not their module ids.
  `CREATE TABLE hub_telemetry_with_modules (
     id INTEGER PRIMARY KEY,
     hub_key TEXT NOT NULL,
     device_key TEXT NOT NULL,
     hub_seq INTEGER NOT NULL,
     device_seq INTEGER NOT NULL,
     hub TEXT NOT NULL,
     device_id TEXT NOT NULL,
     body BLOB NOT NULL,
     properties_json TEXT NOT NULL,
     transport TEXT NOT NULL,
     received_utc TEXT NOT NULL,
     partition INTEGER,
     partition_seq INTEGER,
     byte_offset INTEGER,
     next_offset INTEGER,
     enqueued_ms INTEGER,
     auth_type TEXT,
     generation_id TEXT,
     module_id TEXT
   );
   INSERT INTO hub_telemetry_with_modules
       (id, hub_key, device_key, hub_seq, device_seq, hub, device_id, body, properties_json, transport, received_utc,
        partition, partition_seq, byte_offset, next_offset, enqueued_ms, auth_type, generation_id, module_id)
     SELECT id, hub_key, device_key, hub_seq, device_seq, hub, device_id, body,
       CASE WHEN json_type(properties_json) = 'array' THEN json_extract(properties_json, '$[0]') ELSE properties_json END,
       transport, received_utc, partition, partition_seq, byte_offset, next_offset, enqueued_ms, auth_type, generation_id,
       CASE WHEN json_type(properties_json) = 'array' THEN json_extract(properties_json, '$[1]') END
     FROM hub_telemetry;
   DROP TABLE hub_telemetry;
   ALTER TABLE hub_telemetry_with_modules RENAME TO hub_telemetry;
   CREATE UNIQUE INDEX hub_telemetry_by_hub ON hub_telemetry (hub_key, hub_seq);
   CREATE UNIQUE INDEX hub_telemetry_by_device ON hub_telemetry (hub_key, device_key, device_seq);
   CREATE UNIQUE INDEX hub_telemetry_by_partition ON hub_telemetry (hub_key, partition, partition_seq)
     WHERE partition IS NOT NULL;`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

interface RegistrationRow {
  registration_id: string;
  enrollment_kind: 'group' | 'individual';
  enrollment_id: string;
  result_json: string;
  current_hub: string | null;
  current_device_id: string | null;
  current_substatus: string | null;
  initial_twin_json: string | null;
}

interface ServiceEnrollmentRow {
  kind: EnrollmentKind;
  enrollment_id: string;
  record_json: string;
  seed_hash: string | null;
}

interface OperationRow {
  operation_id: string;
  registration_id: string;
  enrollment_kind: 'group' | 'individual';
  enrollment_id: string;
  transport: string;
  payload_json: string | null;
  x509_json: string | null;
  csr: string | null;
  created_ms: number;
  response_json: string | null;
  finished_ms: number | null;
}

/** An OperationRow's values in its columns' order (`getOperation`, read raw). */
type OperationTuple = [
  operation_id: string,
  registration_id: string,
  enrollment_kind: 'group' | 'individual',
  enrollment_id: string,
  transport: string,
  payload_json: string | null,
  x509_json: string | null,
  csr: string | null,
  created_ms: number,
  response_json: string | null,
  finished_ms: number | null,
];

interface EnrollmentRow {
  generated_primary_key: string | null;
  generated_secondary_key: string | null;
  content_hash: string;
  etag: string;
  created_utc: string;
  last_updated_utc: string;
}

/**
 * The emulator's state in SQLite (better-sqlite3, WAL): registration records, which survive
 * restarts as DPS's do, and per-enrollment metadata (generated keys, etag, timestamps).
 * and the enrollments the service API (and the config file's seeding) wrote.
 */
/** How long a write waits for another connection's (another `--workers` process's) write lock. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

export class SqliteStore
  implements RegistrationStore, RegistrationAdminStore, EnrollmentMetaStore, EnrollmentStore, AttemptStore
{
  readonly #db: Database.Database;
  readonly #statements;
  /** Counts this connection's enrollment writes (`enrollment_changes` counts every connection's). */
  #enrollmentWrites = 0;
  /** The `data_version` last seen, and the enrollment change count (any process's) read then. */
  #dataVersion: number | undefined;
  #enrollmentChanges = 0;
  /** The emulated hubs' devices and telemetry, in the same database. */
  readonly hub: SqliteHubStore;
  /**
   * Where an assignment's writes owe pushes (a device moved away from a hub: its connection there
   * is closed): written to its outbox in the assignment's transaction, announced once that commits;
   * set by the emulator's hub.
   */
  assignmentPushes: AssignmentPushes | undefined;
  /** The pushes of the open transaction's assignments, announced only if it commits. */
  readonly #uncommittedPushes = new UncommittedHubPushes();
  readonly #assignmentOutbox: HubPushOutbox = {
    add: (push) => {
      const seq = this.assignmentPushes?.outbox?.add(push);
      this.#uncommittedPushes.add(push);
      return seq;
    },
  };
  /** Built once: `db.transaction` wraps its function anew on every call. */
  readonly #finishTransaction: (
    operationId: string,
    texts: FinishTexts,
    finishedAtMs: number,
    record: RegistrationRecord | undefined,
    hub: HubAssignment | undefined,
  ) => void;
  /** The writes `writeSoon` queued in this event-loop turn, committed together at its end. */
  #queued: QueuedWrite[] = [];
  /** Operations `createOperationSoon` queued and not yet written, by id: their finish joins the write. */
  readonly #pendingOperations = new Map<string, PendingOperation>();
  /**
   * Operations this store inserted finished (`createOperationSoon` joined by their finish) and
   * committed, as their rows hold them, until `getOperation` first reads one: the poll that comes
   * right after is answered without a read of the database (a WAL read lock, the row, the
   * response's parse and validation: ~40 us of a registration at load). A finished row never
   * changes (finishOperation updates only unfinished ones) until `pruneOperations` deletes it,
   * which drops it here too; at most MAX_HELD_OPERATIONS are kept, the oldest dropped first (then
   * read from the database, as any other).
   */
  readonly #held = new Map<string, OperationRow>();
  /**
   * The parameters of operations this store inserted unfinished (`createOperationSoon` not joined
   * by their finish: a custom allocation's webhook answers in a later turn), until their finish
   * commits: then the finished row is held (#held) as for one inserted finished, and the poll held
   * for it is answered without reading the row back and validating its response (issue #13). At
   * most MAX_HELD_OPERATIONS, the oldest dropped first (its finish is then read from the database).
   */
  readonly #unfinished = new Map<string, OperationParams>();
  /** Runs a function in a savepoint (inside a transaction): what it wrote is rolled back if it throws. */
  readonly #savepoint: (write: () => void) => void;
  readonly #writeBatch: (batch: readonly QueuedWrite[]) => void;
  /** The batch's writes one after another in its transaction, no savepoints: see flushWrites. */
  readonly #writeBatchWhole: (batch: readonly QueuedWrite[]) => void;
  /** While #writeBatchWhole runs: a finish joined to its insert runs without a savepoint too (#writeOperation). */
  #whole = false;
  /** Set when a write of #writeBatchWhole threw (rather than the transaction's begin or commit). */
  #wholeWriteThrew = false;

  private constructor(
    readonly path: string,
    db: Database.Database,
  ) {
    this.#db = db;
    this.hub = new SqliteHubStore(db, path);
    // Every write transaction begins IMMEDIATE (takes the write lock at its start): a deferred one
    // that reads first and then writes cannot wait for another process's lock (--workers share this
    // file) and fails at once with SQLITE_BUSY, whatever busy_timeout says (sqlite.org/lang_transaction.html).
    this.#finishTransaction = db.transaction(
      (
        operationId: string,
        texts: FinishTexts,
        finishedAtMs: number,
        record?: RegistrationRecord,
        hub?: HubAssignment,
      ) => this.#finishInTransaction(operationId, texts, finishedAtMs, record, hub),
    ).immediate;
    // Called inside the batch's transaction, each write is a savepoint of its own (better-sqlite3
    // nests transaction functions so): one that throws is rolled back alone.
    const savepoint = db.transaction((write: () => void) => write());
    this.#savepoint = (write) => this.#uncommittedPushes.within(() => savepoint(write));
    this.#writeBatch = db.transaction((batch: readonly QueuedWrite[]) => {
      for (const queued of batch) {
        try {
          this.#savepoint(queued.write);
        } catch (error) {
          queued.failure = { error };
        }
      }
    }).immediate;
    this.#writeBatchWhole = db.transaction((batch: readonly QueuedWrite[]) => {
      this.#whole = true;
      try {
        for (const queued of batch) {
          try {
            queued.write();
          } catch (error) {
            this.#wholeWriteThrew = true;
            throw error;
          }
        }
      } finally {
        this.#whole = false;
      }
    }).immediate;
    this.#statements = {
      dataVersion: db.prepare<[], number>('PRAGMA data_version').pluck(),
      enrollmentChanges: db.prepare<[], number>('SELECT count FROM enrollment_changes').pluck(),
      get: db.prepare<[string], RegistrationRow>('SELECT * FROM registrations WHERE registration_key = ?'),
      list: db.prepare<[], RegistrationRow>('SELECT * FROM registrations ORDER BY registration_key'),
      // The statements a registration runs take positional parameters: better-sqlite3 binds a named
      // one by looking its name up on the object passed (a V8 string made and a property read per
      // parameter, ~0.25 us each: 12 named parameters 6.5 us a run, 12 positional 3.4 us).
      put: db.prepare<RegistrationParams>(
        `INSERT INTO registrations (registration_key, registration_id, enrollment_kind, enrollment_id, status, assigned_hub,
           result_json, current_hub, current_device_id, current_substatus, initial_twin_json, last_updated_utc)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (registration_key) DO UPDATE SET registration_id = excluded.registration_id,
           enrollment_kind = excluded.enrollment_kind, enrollment_id = excluded.enrollment_id, status = excluded.status,
           assigned_hub = excluded.assigned_hub, result_json = excluded.result_json, current_hub = excluded.current_hub,
           current_device_id = excluded.current_device_id, current_substatus = excluded.current_substatus,
           initial_twin_json = excluded.initial_twin_json, last_updated_utc = excluded.last_updated_utc`,
      ),
      delete: db.prepare<[string]>('DELETE FROM registrations WHERE registration_key = ?'),
      listByGroup: db.prepare<[string, string, number], RegistrationRow>(
        `SELECT * FROM registrations WHERE enrollment_kind = 'group' AND lower(enrollment_id) = ? AND registration_key > ?
         ORDER BY registration_key LIMIT ?`,
      ),
      getEnrollment: db.prepare<[string, string], ServiceEnrollmentRow>(
        'SELECT * FROM service_enrollments WHERE kind = ? AND enrollment_key = ?',
      ),
      putEnrollment: db.prepare(
        `INSERT INTO service_enrollments (kind, enrollment_key, enrollment_id, record_json, seed_hash)
         VALUES (@kind, @key, @id, @record, @seedHash)
         ON CONFLICT (kind, enrollment_key) DO UPDATE SET enrollment_id = excluded.enrollment_id,
           record_json = excluded.record_json, seed_hash = excluded.seed_hash`,
      ),
      deleteEnrollment: db.prepare<[string, string]>(
        'DELETE FROM service_enrollments WHERE kind = ? AND enrollment_key = ?',
      ),
      listEnrollments: db.prepare<[string, string, number], ServiceEnrollmentRow & { enrollment_key: string }>(
        'SELECT * FROM service_enrollments WHERE kind = ? AND enrollment_key > ? ORDER BY enrollment_key LIMIT ?',
      ),
      // Kept by triggers (MIGRATIONS, enrollment_counts): one row read, however many there are.
      countEnrollments: db.prepare<[string], number>('SELECT count FROM enrollment_counts WHERE kind = ?').pluck(),
      countEnrollmentsOfType: db.prepare<[string, string, number], { count: number }>(
        `SELECT count(*) AS count FROM (SELECT 1 FROM service_enrollments
           WHERE kind = ? AND json_extract(record_json, '$.attestation.type') = ? LIMIT ?)`,
      ),
      // Finished already (response and finishedMs given) when its allocation ended before it was written.
      createOperation: db.prepare<OperationParams>(
        `INSERT INTO operations (operation_id, registration_id, enrollment_kind, enrollment_id, transport, payload_json,
           x509_json, csr, created_ms, response_json, finished_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      // Every poll reads one: as an array (raw), which better-sqlite3 fills by index, not as an object
      // it gives each column's name (a V8 string made and a property set per column, per row).
      getOperation: db
        .prepare<[string], OperationTuple>(
          `SELECT operation_id, registration_id, enrollment_kind, enrollment_id, transport, payload_json, x509_json,
             csr, created_ms, response_json, finished_ms FROM operations WHERE operation_id = ?`,
        )
        .raw(true),
      finishOperation: db.prepare<[string, number, string]>(
        'UPDATE operations SET response_json = ?, finished_ms = ? WHERE operation_id = ? AND finished_ms IS NULL',
      ),
      // Through the partial index of unfinished rows (MIGRATIONS: operations_unfinished dropped), not
      // a walk of every operation kept.
      unfinishedOperations: db.prepare<[], OperationRow>(
        `SELECT * FROM operations INDEXED BY operations_unfinished_by_registration WHERE finished_ms IS NULL
         ORDER BY created_ms, rowid`,
      ),
      // In rowid order: the order the operations were written, whichever process wrote them.
      firstUnfinished: db.prepare<[string], { operation_id: string; created_ms: number }>(
        `SELECT operation_id, created_ms FROM operations WHERE lower(registration_id) = ? AND finished_ms IS NULL
         ORDER BY rowid LIMIT 1`,
      ),
      // The rows written before the first one created at or after the cutoff (rowid order, a walk
      // from the oldest that stops there), those of them finished before it. An operation finishes
      // after it is created, so none written later finished before the cutoff (unless the clock
      // went back: then it waits for a later prune).
      pruneOperations: db.prepare<[number, number]>(
        `DELETE FROM operations
         WHERE rowid < coalesce((SELECT rowid FROM operations WHERE created_ms >= ? ORDER BY rowid LIMIT 1), 9223372036854775807)
           AND finished_ms IS NOT NULL AND finished_ms < ?`,
      ),
      appendAttempt: db.prepare<[string, string]>(
        'INSERT INTO registration_attempts (summary_json, detail_json) VALUES (?, ?)',
      ),
      attemptsAfter: db.prepare<[number, number], AttemptRow>(
        'SELECT seq, summary_json FROM registration_attempts WHERE seq > ? ORDER BY seq LIMIT ?',
      ),
      latestAttempts: db.prepare<[number], AttemptRow>(
        'SELECT seq, summary_json FROM registration_attempts ORDER BY seq DESC LIMIT ?',
      ),
      getAttempt: db.prepare<[number], AttemptRow & { detail_json: string }>(
        'SELECT * FROM registration_attempts WHERE seq = ?',
      ),
      pruneAttempts: db.prepare<[number]>(
        'DELETE FROM registration_attempts WHERE seq <= (SELECT max(seq) FROM registration_attempts) - ?',
      ),
      // Before a prune empties the log: the largest seq given so far (see MIGRATIONS, the attempt log).
      raiseAttemptFloor: db.prepare(
        `UPDATE registration_attempts_floor
         SET seq = max(seq, coalesce((SELECT max(seq) FROM registration_attempts), 0))`,
      ),
      attemptFloor: db.prepare<[], number>('SELECT seq FROM registration_attempts_floor').pluck(),
      renumberFirstAttempt: db.prepare<[number]>('UPDATE registration_attempts SET seq = ? WHERE seq = 1'),
      registrationCounts: db.prepare<[], { enrollment_kind: EnrollmentKind; enrollment_id: string; count: number }>(
        `SELECT enrollment_kind, lower(enrollment_id) AS enrollment_id, count(*) AS count FROM registrations
         GROUP BY enrollment_kind, lower(enrollment_id)`,
      ),
      getMeta: db.prepare<[string, string], EnrollmentRow>(
        'SELECT * FROM enrollments WHERE kind = ? AND enrollment_key = ?',
      ),
      putMeta: db.prepare(
        `INSERT INTO enrollments (kind, enrollment_key, enrollment_id, generated_primary_key, generated_secondary_key,
           content_hash, etag, created_utc, last_updated_utc)
         VALUES (@kind, @key, @id, @primary, @secondary, @hash, @etag, @created, @lastUpdated)
         ON CONFLICT (kind, enrollment_key) DO UPDATE SET enrollment_id = excluded.enrollment_id,
           generated_primary_key = excluded.generated_primary_key, generated_secondary_key = excluded.generated_secondary_key,
           content_hash = excluded.content_hash, etag = excluded.etag, created_utc = excluded.created_utc,
           last_updated_utc = excluded.last_updated_utc`,
      ),
    };
  }

  /**
   * Opens (creating folders and schema as needed) and migrates the database at `path`. A write
   * waits up to `busyTimeoutMs` (default 5000) for another connection's write lock before it fails
   * with SQLITE_BUSY.
   */
  static open(path: string, { busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS }: { busyTimeoutMs?: number } = {}): SqliteStore {
    mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma(`busy_timeout = ${busyTimeoutMs}`);
      // SQLite's own default page cache (2 MB) instead of better-sqlite3's 16 MB: every commit
      // ends with a scan of the cache's hash table (pcache1TruncateUnsafe), which grows with the
      // cache, and the pages a registration touches (the newest of each table and index, a few
      // random index leaves) fit in 2 MB; the rest is a read from the OS's file cache. Server CPU
      // per registration 6-10 % lower by bench:server's method (docs/benchmarks.md, "A fifth pass").
      db.pragma('cache_size = -2000');
      migrate(db, path);
      return new SqliteStore(path, db);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  get(registrationId: string): RegistrationRecord | undefined {
    const row = this.#statements.get.get(registrationId.toLowerCase());
    return row ? this.#toRecord(row) : undefined;
  }

  put(record: RegistrationRecord): void {
    this.#put(record, JSON.stringify(record.result));
  }

  /** `put` with the record's result already serialized (`finishTexts`). */
  #put(record: RegistrationRecord, resultText: string): void {
    this.#statements.put.run(
      record.registrationId.toLowerCase(),
      record.registrationId,
      record.enrollment.kind,
      record.enrollment.id,
      record.result.status,
      record.result.assignedHub ?? null,
      resultText,
      record.assignment?.hub ?? null,
      record.assignment?.deviceId ?? null,
      record.assignment?.substatus ?? null,
      record.initialTwin ? JSON.stringify(record.initialTwin) : null,
      record.result.lastUpdatedDateTimeUtc ?? new Date().toISOString(),
    );
  }

  list(): RegistrationRecord[] {
    return this.#statements.list.all().map((row) => this.#toRecord(row));
  }

  delete(registrationId: string): boolean {
    return this.#statements.delete.run(registrationId.toLowerCase()).changes > 0;
  }

  listByGroup(groupId: string, options: { after?: string; limit?: number } = {}): Page<RegistrationRecord> {
    const limit = options.limit ?? Number.MAX_SAFE_INTEGER;
    const rows = this.#statements.listByGroup.all(
      groupId.toLowerCase(),
      options.after ?? '',
      Math.min(limit + 1, Number.MAX_SAFE_INTEGER),
    );
    return pageOf(
      rows.map((row) => this.#toRecord(row)),
      options.limit,
      (record) => record.registrationId.toLowerCase(),
    );
  }

  getEnrollment(kind: EnrollmentKind, id: string): StoredEnrollment | undefined {
    const row = this.#statements.getEnrollment.get(kind, id.toLowerCase());
    return row ? this.#toEnrollment(row) : undefined;
  }

  putEnrollment(enrollment: StoredEnrollment): void {
    this.#statements.putEnrollment.run({
      kind: enrollment.kind,
      key: enrollment.id.toLowerCase(),
      id: enrollment.id,
      record: JSON.stringify(enrollment.record),
      seedHash: enrollment.seedHash ?? null,
    });
    this.#enrollmentWrites++;
  }

  deleteEnrollment(kind: EnrollmentKind, id: string): boolean {
    const deleted = this.#statements.deleteEnrollment.run(kind, id.toLowerCase()).changes > 0;
    if (deleted) this.#enrollmentWrites++;
    return deleted;
  }

  listEnrollments(kind: EnrollmentKind, options: { after?: string; limit?: number } = {}): Page<StoredEnrollment> {
    const limit = options.limit ?? Number.MAX_SAFE_INTEGER;
    const rows = this.#statements.listEnrollments.all(
      kind,
      options.after ?? '',
      Math.min(limit + 1, Number.MAX_SAFE_INTEGER),
    );
    return pageOf(
      rows.map((row) => this.#toEnrollment(row)),
      options.limit,
      (enrollment) => enrollment.id.toLowerCase(),
    );
  }

  countEnrollments(kind: EnrollmentKind, options: { attestationType?: string; atMost: number }): number {
    if (options.attestationType === undefined) {
      return Math.min(this.#statements.countEnrollments.get(kind) ?? 0, options.atMost);
    }
    // Groups of one attestation type (DPS allows 100 a type): counted, up to the bound.
    return this.#statements.countEnrollmentsOfType.get(kind, options.attestationType, options.atMost)?.count ?? 0;
  }

  enrollmentsVersion(): string {
    // Asked on every device request: prepared statements (db.pragma prepares one per call). Only
    // when another connection committed something (data_version) is the enrollment change count
    // read: other processes' registrations (--workers) leave it, and so the enrollments, as they are.
    const dataVersion = this.#statements.dataVersion.get();
    if (dataVersion !== this.#dataVersion) {
      this.#dataVersion = dataVersion;
      this.#enrollmentChanges = this.#statements.enrollmentChanges.get() ?? 0;
    }
    return `${this.#enrollmentChanges}:${this.#enrollmentWrites}`;
  }

  transaction<T>(fn: () => T): T {
    return this.#db.transaction(fn).immediate();
  }

  createOperation(operation: OperationRecord): void {
    this.#statements.createOperation.run(...operationParams(operation));
  }

  /**
   * `createOperation` in the transaction of this event-loop turn's writes (`writeSoon`): resolves
   * once it is committed. A `finishOperationSoon` of the operation before then (an allocation that
   * ended in the same turn: hashed, static, geoLatency) joins the write: the row is inserted
   * finished, with the record and the hub identity, instead of inserted and then updated (one
   * statement and two index changes less). Should that finish fail, the row is inserted unfinished
   * as without it, and only the finish's promise rejects.
   */
  createOperationSoon(operation: OperationRecord): Promise<void> {
    // Serialized now: a value that cannot be stored fails before anything is queued.
    const pending: PendingOperation = { params: operationParams(operation) };
    this.#pendingOperations.set(operation.operationId, pending);
    const written = this.writeSoon(() => this.#writeOperation(pending));
    // A finish that joined the write settles with it.
    written.then(
      () => {
        const { finish } = pending;
        if (finish?.failure) finish.reject(finish.failure.error);
        else if (finish) {
          this.#hold(pending.params, finish.texts.response, finish.finishedAtMs);
          finish.resolve();
        } else this.#keepUnfinished(pending.params);
      },
      (error: unknown) => pending.finish?.reject(error),
    );
    return written;
  }

  #writeOperation(pending: PendingOperation): void {
    const { finish } = pending;
    if (!finish) {
      this.#statements.createOperation.run(...pending.params);
      return;
    }
    // Run whole (flushWrites), a failing finish fails the batch's first run; in the second, it is
    // rolled back alone and the operation inserted unfinished.
    if (this.#whole) {
      this.#insertFinished(pending.params, finish);
      return;
    }
    try {
      this.#savepoint(() => this.#insertFinished(pending.params, finish));
      return;
    } catch (error) {
      finish.failure = { error };
    }
    this.#statements.createOperation.run(...pending.params);
  }

  #insertFinished(p: OperationParams, finish: NonNullable<PendingOperation['finish']>): void {
    if (finish.record) this.#put(finish.record, finish.texts.result ?? JSON.stringify(finish.record.result));
    this.#statements.createOperation.run(
      p[0],
      p[1],
      p[2],
      p[3],
      p[4],
      p[5],
      p[6],
      p[7],
      p[8],
      finish.texts.response,
      finish.finishedAtMs,
    );
    if (finish.hub) this.#applyAssignment(finish.hub, finish.finishedAtMs);
  }

  /** Keeps a committed unfinished row's parameters for its finish (see #unfinished). */
  #keepUnfinished(params: OperationParams): void {
    setKeepingAtMost(this.#unfinished, params[0], params, MAX_HELD_OPERATIONS);
  }

  /** Keeps a committed finished row for the first `getOperation` of it (see #held). */
  #hold(params: OperationParams, responseJson: string, finishedAtMs: number): void {
    setKeepingAtMost(
      this.#held,
      params[0],
      {
        operation_id: params[0],
        registration_id: params[1],
        enrollment_kind: params[2],
        enrollment_id: params[3],
        transport: params[4],
        payload_json: params[5],
        x509_json: params[6],
        csr: params[7],
        created_ms: params[8],
        response_json: responseJson,
        finished_ms: finishedAtMs,
      },
      MAX_HELD_OPERATIONS,
    );
  }

  getOperation(operationId: string): OperationRecord | undefined {
    const held = this.#held.get(operationId);
    if (held !== undefined) {
      this.#held.delete(operationId);
      // What this store wrote from a typed response, not read back from the file: not validated again.
      return this.#toOperation(held, true);
    }
    const row = this.#statements.getOperation.get(operationId);
    return row
      ? this.#toOperation({
          operation_id: row[0],
          registration_id: row[1],
          enrollment_kind: row[2],
          enrollment_id: row[3],
          transport: row[4],
          payload_json: row[5],
          x509_json: row[6],
          csr: row[7],
          created_ms: row[8],
          response_json: row[9],
          finished_ms: row[10],
        })
      : undefined;
  }

  finishOperation(
    operationId: string,
    response: RegistrationOperationStatus,
    finishedAtMs: number,
    record?: RegistrationRecord,
    hub?: HubAssignment,
  ): void {
    // Serialize before the transaction: a value that cannot be stored fails before anything changes.
    const texts = finishTexts(response, record);
    try {
      this.#finishTransaction(operationId, texts, finishedAtMs, record, hub);
    } catch (error) {
      this.#uncommittedPushes.rolledBack();
      throw error;
    }
    this.#announceCommitted();
  }

  /**
   * `finishOperation` in the transaction of this event-loop turn's writes (`writeSoon`): resolves
   * once it is committed. What depends on the operation's end (a poll's answer, the next
   * allocation of the same registration id, the registration event) waits for that.
   */
  finishOperationSoon(
    operationId: string,
    response: RegistrationOperationStatus,
    finishedAtMs: number,
    record?: RegistrationRecord,
    hub?: HubAssignment,
  ): Promise<void> {
    // Serialized now: a value that cannot be stored fails before anything is queued.
    const texts = finishTexts(response, record);
    const pending = this.#pendingOperations.get(operationId);
    if (pending && !pending.finish) {
      // Not written yet: the operation is inserted finished (createOperationSoon).
      return new Promise((resolve, reject) => {
        pending.finish = { texts, finishedAtMs, record, hub, resolve, reject };
      });
    }
    const written = this.writeSoon(() => this.#finishInTransaction(operationId, texts, finishedAtMs, record, hub));
    const params = this.#unfinished.get(operationId);
    if (params === undefined) return written;
    // Held once committed (the update found the row unfinished: this finish is the row's last
    // change), before what waits for the finish runs (the held poll reads it then).
    return written.then(() => {
      if (this.#unfinished.get(operationId) !== params) return;
      this.#unfinished.delete(operationId);
      this.#hold(params, texts.response, finishedAtMs);
    });
  }

  /**
   * Runs `write` at the end of this event-loop turn (setImmediate), in one transaction with every
   * other write queued in the turn: one commit for all of them, which is most of what a write costs
   * (bench:server). Resolves once that transaction is committed; rejects with `write`'s error
   * (only its own writes are rolled back) or with the commit's (then nothing of the batch is saved).
   * Nothing answered to a client may depend on `write` before this resolves. `write` may run twice:
   * when another write of its batch throws, the batch is rolled back and run again (flushWrites);
   * what it does outside the database must bear that.
   */
  writeSoon(write: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#queued.push({ write, resolve, reject }) === 1) setImmediate(() => this.flushWrites());
    });
  }

  /** Commits the writes `writeSoon` queued, now (also done at the end of the turn, and by `close`). */
  flushWrites(): void {
    if (this.#queued.length === 0) return;
    const batch = this.#queued;
    this.#queued = [];
    // From now on a finish is a write of its own (an update), in the next batch.
    this.#pendingOperations.clear();
    try {
      // Nearly always every write succeeds: the batch runs in its transaction without a savepoint per
      // write (SAVEPOINT and RELEASE each, and SQLite copying every page a savepoint first changes to
      // its sub-journal: ~6 us of a registration at load, store-ab). When a write throws, that whole
      // transaction is rolled back and the batch runs again, each write in a savepoint of its own,
      // so that only the failing ones are lost. A failing begin or commit is not run again.
      this.#wholeWriteThrew = false;
      try {
        this.#writeBatchWhole(batch);
      } catch (error) {
        if (!this.#wholeWriteThrew) throw error;
        this.#uncommittedPushes.rolledBack();
        this.#writeBatch(batch);
      }
    } catch (error) {
      this.#uncommittedPushes.rolledBack();
      for (const queued of batch) queued.reject(error);
      return;
    }
    this.#announceCommitted();
    for (const queued of batch) {
      if (queued.failure) queued.reject(queued.failure.error);
      else queued.resolve();
    }
  }

  #finishInTransaction(
    operationId: string,
    texts: FinishTexts,
    finishedAtMs: number,
    record: RegistrationRecord | undefined,
    hub: HubAssignment | undefined,
  ): void {
    if (record) this.#put(record, texts.result ?? JSON.stringify(record.result));
    const changed = this.#statements.finishOperation.run(texts.response, finishedAtMs, operationId).changes;
    if (changed !== 1) throw new Error(`operation ${operationId} does not exist or has already finished`);
    if (hub) this.#applyAssignment(hub, finishedAtMs);
  }

  /** The hub identity of an assignment, with the pushes it owes (both ways an operation finishes). */
  #applyAssignment(hub: HubAssignment, finishedAtMs: number): void {
    applyAssignment(this.hub, hub, new Date(finishedAtMs), this.#assignmentOutbox);
  }

  /** Hands the pushes of the transaction that has just committed to the hub. */
  #announceCommitted(): void {
    for (const push of this.#uncommittedPushes.committed()) this.assignmentPushes?.announce(push);
  }

  unfinishedOperations(): OperationRecord[] {
    return this.#statements.unfinishedOperations.all().map((row) => this.#toOperation(row));
  }

  firstUnfinishedOperation(registrationId: string): { operationId: string; createdAtMs: number } | undefined {
    const row = this.#statements.firstUnfinished.get(registrationId.toLowerCase());
    return row ? { operationId: row.operation_id, createdAtMs: row.created_ms } : undefined;
  }

  pruneOperations(finishedBeforeMs: number): number {
    for (const [operationId, row] of this.#held) {
      if ((row.finished_ms as number) < finishedBeforeMs) this.#held.delete(operationId);
    }
    return this.#statements.pruneOperations.run(finishedBeforeMs, finishedBeforeMs).changes;
  }

  appendAttempt(attempt: Omit<AttemptEntry, 'seq'>): number {
    const { detail, ...summary } = attempt;
    const seq = Number(
      this.#statements.appendAttempt.run(JSON.stringify(summary), JSON.stringify(detail)).lastInsertRowid,
    );
    // 1: the log was empty (SQLite gives one more than the largest seq left): numbered after every
    // attempt given before, pruned ones included. Seldom: pruning keeps the newest unless it keeps none.
    if (seq !== 1) return seq;
    const floor = this.#statements.attemptFloor.get() ?? 0;
    if (floor < 1) return seq;
    this.#statements.renumberFirstAttempt.run(floor + 1);
    return floor + 1;
  }

  attemptsAfter(afterSeq: number, limit: number): AttemptSummary[] {
    return this.#statements.attemptsAfter.all(afterSeq, limit).map(toAttemptSummary);
  }

  latestAttempts(limit: number): AttemptSummary[] {
    return this.#statements.latestAttempts.all(limit).map(toAttemptSummary).reverse();
  }

  getAttempt(seq: number): AttemptEntry | undefined {
    const row = this.#statements.getAttempt.get(seq);
    return row ? { ...toAttemptSummary(row), detail: JSON.parse(row.detail_json) } : undefined;
  }

  pruneAttempts(keep: number): number {
    // Only a prune that keeps none removes the newest attempt (and so the largest seq).
    if (keep <= 0) this.#statements.raiseAttemptFloor.run();
    return this.#statements.pruneAttempts.run(keep).changes;
  }

  /** How many registration records each enrollment has, keyed `kind:lower-case id`. */
  registrationCounts(): Map<string, number> {
    return new Map(
      this.#statements.registrationCounts
        .all()
        .map((row) => [`${row.enrollment_kind}:${row.enrollment_id}`, row.count]),
    );
  }

  getEnrollmentMeta(kind: 'group' | 'individual', id: string): EnrollmentMeta | undefined {
    const row = this.#statements.getMeta.get(kind, id.toLowerCase());
    if (!row) return undefined;
    const generatedKeys: EnrollmentMeta['generatedKeys'] = {};
    if (row.generated_primary_key) generatedKeys.primaryKey = row.generated_primary_key;
    if (row.generated_secondary_key) generatedKeys.secondaryKey = row.generated_secondary_key;
    return {
      generatedKeys,
      contentHash: row.content_hash,
      etag: row.etag,
      createdDateTimeUtc: row.created_utc,
      lastUpdatedDateTimeUtc: row.last_updated_utc,
    };
  }

  putEnrollmentMeta(kind: 'group' | 'individual', id: string, meta: EnrollmentMeta): void {
    this.#statements.putMeta.run({
      kind,
      key: id.toLowerCase(),
      id,
      primary: meta.generatedKeys.primaryKey ?? null,
      secondary: meta.generatedKeys.secondaryKey ?? null,
      hash: meta.contentHash,
      etag: meta.etag,
      created: meta.createdDateTimeUtc,
      lastUpdated: meta.lastUpdatedDateTimeUtc,
    });
  }

  /** The hubs' pushes through this database, written as `origin` (`dps-emulator start --workers`). */
  hubPushes(origin: string): SqliteHubPushes {
    return new SqliteHubPushes(this.#db, origin);
  }

  close(): void {
    if (!this.#db.open) return;
    this.flushWrites();
    this.#held.clear();
    this.#unfinished.clear();
    this.#db.close();
  }

  #toEnrollment(row: ServiceEnrollmentRow): StoredEnrollment {
    const record = safeJson(row.record_json);
    if (typeof record !== 'object' || record === null || !('attestation' in record)) {
      throw new Error(`enrollment "${row.enrollment_id}" in ${this.path} has an invalid record`);
    }
    return {
      kind: row.kind,
      id: row.enrollment_id,
      record: record as StoredEnrollment['record'],
      ...(row.seed_hash !== null ? { seedHash: row.seed_hash } : {}),
    };
  }

  /** `written`: a row this store has just written (#held), whose response needs no validation. */
  #toOperation(row: OperationRow, written = false): OperationRecord {
    const corrupt = (what: string) =>
      new Error(`operation "${row.operation_id}" in ${this.path} has an invalid ${what}`);
    const operation: OperationRecord = {
      operationId: row.operation_id,
      registrationId: row.registration_id,
      enrollment: { kind: row.enrollment_kind, id: row.enrollment_id },
      // Rows written before the WebSocket and AMQP transports existed say mqtt or https.
      transport: isDeviceTransport(row.transport) ? row.transport : 'mqtt',
      createdAtMs: row.created_ms,
    };
    if (row.payload_json !== null) {
      const payload = safeJson(row.payload_json);
      if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw corrupt('payload');
      operation.payload = payload as DevicePayload;
    }
    if (row.x509_json !== null) {
      const x509 = x509RuntimeContextSchema.safeParse(safeJson(row.x509_json));
      if (!x509.success) throw corrupt('x509 context');
      operation.x509 = x509.data;
    }
    if (row.csr !== null) operation.csr = row.csr;
    if (row.response_json !== null) {
      // Validated, but returned as stored: the answer keeps the field order it was sent with, and
      // its text (JSON.stringify's, finishTexts) is written to the device as it is.
      const response = safeJson(row.response_json);
      if (!written && !registrationOperationStatusSchema.safeParse(response).success) throw corrupt('response');
      operation.response = response as RegistrationOperationStatus;
      operation.responseJson = row.response_json;
      operation.finishedAtMs = row.finished_ms ?? row.created_ms;
    }
    return operation;
  }

  #toRecord(row: RegistrationRow): RegistrationRecord {
    const corrupt = (what: string, reason: string) =>
      new Error(`registration record "${row.registration_id}" in ${this.path} has an invalid ${what}: ${reason}`);
    const result = parseWith(deviceRegistrationResultSchema, safeJson(row.result_json), 'registration result');
    if (!result.ok) throw corrupt('result', result.error.message);
    const record: RegistrationRecord = {
      registrationId: row.registration_id,
      enrollment: { kind: row.enrollment_kind, id: row.enrollment_id },
      result: result.value,
    };
    if (row.current_hub && row.current_device_id) {
      const substatus = assignedSubstatusSchema.safeParse(row.current_substatus ?? 'initialAssignment');
      if (!substatus.success) throw corrupt('substatus', String(row.current_substatus));
      record.assignment = { hub: row.current_hub, deviceId: row.current_device_id, substatus: substatus.data };
    }
    if (row.initial_twin_json) {
      const twin = parseWith(initialTwinSchema, safeJson(row.initial_twin_json), 'initial twin');
      if (!twin.ok) throw corrupt('initial twin', twin.error.message);
      record.initialTwin = twin.value as InitialTwin;
    }
    return record;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The most finished operations `SqliteStore` keeps for their first poll (#held): ~1 KB each. */
export const MAX_HELD_OPERATIONS = 1024;

/** Sets `key` in `map`, first dropping the oldest entry (insertion order) if it already holds `max`. */
function setKeepingAtMost<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  if (map.size >= max) {
    for (const oldest of map.keys()) {
      map.delete(oldest);
      break;
    }
  }
  map.set(key, value);
}

/** The `put` statement's parameters, in its columns' order. */
type RegistrationParams = [
  key: string,
  registrationId: string,
  kind: EnrollmentKind,
  enrollmentId: string,
  status: string,
  assignedHub: string | null,
  result: string,
  currentHub: string | null,
  currentDeviceId: string | null,
  currentSubstatus: string | null,
  initialTwin: string | null,
  lastUpdated: string,
];

/** The `createOperation` statement's parameters, in its columns' order (response and finish last). */
type OperationParams = [
  operationId: string,
  registrationId: string,
  kind: 'group' | 'individual',
  enrollmentId: string,
  transport: string,
  payload: string | null,
  x509: string | null,
  csr: string | null,
  createdMs: number,
  response: string | null,
  finishedMs: number | null,
];

function operationParams(operation: OperationRecord): OperationParams {
  return [
    operation.operationId,
    operation.registrationId,
    operation.enrollment.kind,
    operation.enrollment.id,
    operation.transport,
    operation.payload === undefined ? null : JSON.stringify(operation.payload),
    operation.x509 === undefined ? null : JSON.stringify(operation.x509),
    operation.csr ?? null,
    operation.createdAtMs,
    null,
    null,
  ];
}

/** A finish's response as stored, and its record's result when it was serialized with it. */
export interface FinishTexts {
  response: string;
  result?: string;
}

/** The keys of RegistrationService's finished response, in its order. */
const FINISH_KEYS = ['operationId', 'status', 'registrationState'] as const;

/**
 * `JSON.stringify(response)` for the operations table, and the record's result for the
 * registrations table, with that result serialized once when the response carries that very
 * object (a finish without an issued certificate chain): the response's text is then spliced
 * from the result's, which is byte for byte what JSON.stringify(response) writes, as the response
 * is checked to have exactly these three keys in this order, the first two strings. Before, a
 * finish serialized the result twice (~2 us each at load).
 */
export function finishTexts(
  response: RegistrationOperationStatus,
  record: RegistrationRecord | undefined,
): FinishTexts {
  if (record === undefined || response.registrationState !== record.result)
    return { response: JSON.stringify(response) };
  let keys = 0;
  for (const key in response) {
    if (key !== FINISH_KEYS[keys++]) return { response: JSON.stringify(response) };
  }
  const { operationId, status } = response;
  if (keys !== 3 || typeof operationId !== 'string' || typeof status !== 'string') {
    return { response: JSON.stringify(response) };
  }
  const result = JSON.stringify(record.result);
  return {
    response: `{"operationId":${JSON.stringify(operationId)},"status":${JSON.stringify(status)},"registrationState":${result}}`,
    result,
  };
}

/** An operation queued by `createOperationSoon`, and the finish that joined it. */
interface PendingOperation {
  params: OperationParams;
  finish?: {
    texts: FinishTexts;
    finishedAtMs: number;
    record: RegistrationRecord | undefined;
    hub: HubAssignment | undefined;
    resolve: () => void;
    reject: (error: unknown) => void;
    /** Set when the finish threw (its savepoint was rolled back; the row was inserted unfinished). */
    failure?: { error: unknown };
  };
}

interface QueuedWrite {
  write: () => void;
  resolve: () => void;
  reject: (error: unknown) => void;
  /** Set when `write` threw (its savepoint was rolled back). */
  failure?: { error: unknown };
}

interface AttemptRow {
  seq: number;
  summary_json: string;
}

function toAttemptSummary(row: AttemptRow): AttemptSummary {
  return { seq: row.seq, ...(JSON.parse(row.summary_json) as Omit<AttemptSummary, 'seq'>) };
}

function migrate(db: Database.Database, path: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    throw new Error(
      `${path} has schema version ${version}, newer than this emulator knows (${MIGRATIONS.length}); use a newer @dpskit/emulator or another --state-dir`,
    );
  }
  for (let next = version; next < MIGRATIONS.length; next++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[next] as string);
      db.pragma(`user_version = ${next + 1}`);
    }).immediate();
  }
}
