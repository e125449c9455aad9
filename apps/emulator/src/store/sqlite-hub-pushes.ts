import type Database from 'better-sqlite3';
import type { HubPush, HubPushOutbox } from '../hub/core/pushes.js';
import type { JsonObject } from '../hub/core/twin.js';

/** A push as the feed gives it: `origin` names the process that wrote it. */
export interface FedHubPush {
  seq: number;
  origin: string;
  push: HubPush;
}

/** How many pushes the table keeps (the newest): a follower reads them within milliseconds. */
export const HUB_PUSHES_KEPT = 10_000;

/**
 * Of those, how many relayed direct method rows (`method`, `method-end`) are kept: they carry
 * payloads of up to 128 KB, so the table holds at most ~128 MB of them (10,000 would be 1.3 GB),
 * and each is read by the other workers within their next poll (20 ms) or never.
 */
export const HUB_METHOD_PUSHES_KEPT = 1_000;

/** The table is pruned once every this many pushes a process writes. */
const PRUNE_EVERY = 64;

interface PushRow {
  seq: number;
  origin: string;
  push_json: string;
}

/**
 * The hubs' pushes in the emulator's SQLite database (table `hub_pushes`, created by
 * `SqliteStore`'s migrations): the channel between the processes of `dps-emulator start --workers`.
 * A registry call served by one process writes the push in its transaction (`add`); every process
 * follows the table (`after`) and delivers the pushes for the devices connected to it. Bounded:
 * the newest `HUB_PUSHES_KEPT` are kept.
 */
export class SqliteHubPushes implements HubPushOutbox {
  readonly #statements;
  #added = 0;
  #addedMethods = 0;

  constructor(
    db: Database.Database,
    /** Written with every push: a follower skips its own process's, which it delivered at once. */
    readonly origin: string,
  ) {
    this.#statements = {
      add: db.prepare<[string, string]>('INSERT INTO hub_pushes (origin, push_json) VALUES (?, ?)'),
      after: db.prepare<[number, number], PushRow>('SELECT * FROM hub_pushes WHERE seq > ? ORDER BY seq LIMIT ?'),
      latest: db.prepare<[], { seq: number | null }>('SELECT max(seq) AS seq FROM hub_pushes'),
      prune: db.prepare<[number]>('DELETE FROM hub_pushes WHERE seq <= (SELECT max(seq) FROM hub_pushes) - ?'),
      // Rows are written by JSON.stringify of a HubPush, `kind` first: `{"kind":"method"…` and
      // `{"kind":"method-end"…` are the relayed method rows.
      pruneMethods: db.prepare<[number]>(
        `DELETE FROM hub_pushes WHERE seq <= (SELECT max(seq) FROM hub_pushes) - ? AND push_json LIKE '{"kind":"method%'`,
      ),
    };
  }

  /** Called inside the hub store's transaction (`HubService`). */
  add(push: HubPush): number {
    const seq = Number(this.#statements.add.run(this.origin, JSON.stringify(push)).lastInsertRowid);
    if (++this.#added % PRUNE_EVERY === 0) this.#statements.prune.run(HUB_PUSHES_KEPT);
    if ((push.kind === 'method' || push.kind === 'method-end') && ++this.#addedMethods % PRUNE_EVERY === 0)
      this.#statements.pruneMethods.run(HUB_METHOD_PUSHES_KEPT);
    return seq;
  }

  /** Pushes written after `afterSeq` by any process, oldest first, at most `limit`. */
  after(afterSeq: number, limit: number): FedHubPush[] {
    return this.#statements.after.all(afterSeq, limit).flatMap((row) => {
      const push = parsePush(row.push_json);
      return push ? [{ seq: row.seq, origin: row.origin, push }] : [];
    });
  }

  /** The newest push's `seq` (0: none): a follower starts after it. */
  latest(): number {
    return this.#statements.latest.get()?.seq ?? 0;
  }
}

/** A stored push, checked (a row that is not one is skipped, not delivered). */
function parsePush(text: string): HubPush | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const push = value as { kind?: unknown; hub?: unknown; deviceId?: unknown; desired?: unknown };
  if (typeof push.hub !== 'string' || typeof push.deviceId !== 'string') return undefined;
  if (push.kind === 'deleted' || push.kind === 'disabled' || push.kind === 'connected' || push.kind === 'c2d')
    return { kind: push.kind, hub: push.hub, deviceId: push.deviceId };
  if (push.kind === 'method' || push.kind === 'method-end') return parseMethodPush(value as Record<string, unknown>);
  if (
    push.kind === 'desired' &&
    typeof push.desired === 'object' &&
    push.desired !== null &&
    !Array.isArray(push.desired)
  )
    return { kind: 'desired', hub: push.hub, deviceId: push.deviceId, desired: push.desired as JsonObject };
  return undefined;
}

/** A relayed method request or end, its fields checked (any other row is skipped). */
function parseMethodPush(row: Record<string, unknown>): HubPush | undefined {
  const text = (name: string) => (typeof row[name] === 'string' ? (row[name] as string) : undefined);
  const int = (value: unknown) => (typeof value === 'number' && Number.isInteger(value) ? value : undefined);
  const hub = text('hub');
  const deviceId = text('deviceId');
  if (!hub || !deviceId) return undefined;
  if (row.kind === 'method') {
    const rid = text('rid');
    const methodName = text('methodName');
    const payloadJson = text('payloadJson');
    const connectDeadlineMs = int(row.connectDeadlineMs);
    const connectTimeoutInSeconds = int(row.connectTimeoutInSeconds);
    const responseTimeoutInSeconds = int(row.responseTimeoutInSeconds);
    if (
      !rid ||
      !methodName ||
      payloadJson === undefined ||
      connectDeadlineMs === undefined ||
      connectTimeoutInSeconds === undefined ||
      responseTimeoutInSeconds === undefined
    )
      return undefined;
    return {
      kind: 'method',
      rid,
      hub,
      deviceId,
      methodName,
      payloadJson,
      connectDeadlineMs,
      connectTimeoutInSeconds,
      responseTimeoutInSeconds,
    };
  }
  const end = row.end as Record<string, unknown> | undefined;
  if (typeof end !== 'object' || end === null) return undefined;
  const rid = typeof end.rid === 'string' ? end.rid : undefined;
  const status = int(end.status);
  if (!rid || status === undefined || end.hub !== hub || end.deviceId !== deviceId) return undefined;
  if (end.kind === 'answered' && typeof end.payloadJson === 'string')
    return {
      kind: 'method-end',
      hub,
      deviceId,
      end: { kind: 'answered', rid, hub, deviceId, status, payloadJson: end.payloadJson },
    };
  const outcomes = ['not-online', 'timeout', 'disconnected', 'bad-response', 'refused'] as const;
  const outcome = outcomes.find((o) => o === end.outcome);
  const errorCode = int(end.errorCode);
  if (
    end.kind !== 'failed' ||
    !outcome ||
    errorCode === undefined ||
    typeof end.code !== 'string' ||
    typeof end.message !== 'string'
  )
    return undefined;
  const info =
    typeof end.info === 'object' && end.info !== null && Object.values(end.info).every((v) => typeof v === 'string')
      ? (end.info as Record<string, string>)
      : undefined;
  return {
    kind: 'method-end',
    hub,
    deviceId,
    end: {
      kind: 'failed',
      rid,
      hub,
      deviceId,
      outcome,
      status,
      errorCode,
      code: end.code,
      message: end.message,
      ...(info ? { info } : {}),
    },
  };
}

/**
 * The pushes written in the store's open transaction, held until it ends: announced if it commits,
 * dropped if it rolls back (and those of a savepoint that rolls back, dropped alone). An
 * announcement tells a device's connection of a change, so it may only follow a committed one.
 */
export class UncommittedHubPushes {
  #pushes: HubPush[] = [];

  add(push: HubPush): void {
    this.#pushes.push(push);
  }

  /** Runs `write` (a savepoint): if it throws, the pushes it added are dropped with its writes. */
  within<T>(write: () => T): T {
    const mark = this.#pushes.length;
    try {
      return write();
    } catch (error) {
      this.#pushes.length = mark;
      throw error;
    }
  }

  /** The transaction committed: its pushes, in the order they were added, and none held any more. */
  committed(): HubPush[] {
    const pushes = this.#pushes;
    this.#pushes = [];
    return pushes;
  }

  /** The transaction rolled back: its pushes are owed to nobody. */
  rolledBack(): void {
    this.#pushes = [];
  }
}
