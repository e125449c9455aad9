import { clip } from '../../core/client-text.js';
import type { HubDevice } from './identity.js';
import { type HubModule, moduleTwinView } from './modules.js';
import {
  Aggregation,
  isAggregate,
  isTwinQuery,
  type JsonValue,
  matches,
  parseTwinQuery,
  project,
  QueryError,
  type TwinQuery,
} from './query.js';
import { twinView } from './views.js';

/** Items a page holds when the request names no `x-ms-max-item-count` (IoT Hub documents none). */
export const DEFAULT_QUERY_PAGE_SIZE = 100;
/** The most items a page holds, whatever the request asks (then it continues). */
export const MAX_QUERY_PAGE_SIZE = 1000;
/** A page stops at this much JSON (after its first item), as the DPS service API's pages do. */
export const MAX_QUERY_PAGE_BYTES = 4 * 1024 * 1024;
/** The most groups an aggregate query makes (each is held in memory while the hub is read). */
export const MAX_QUERY_GROUPS = 10_000;
/** Devices read from the store at a time. */
const SCAN_BATCH = 256;

/** One page of a query's answer, as `POST /devices/query` answers it. */
export interface TwinQueryPage {
  items: JsonValue[];
  /** `x-ms-item-type`: `twin` for `SELECT *`, `raw` for projections and aggregates. */
  itemType: 'twin' | 'raw';
  /** The page size applied. */
  pageSize: number;
  /** `x-ms-continuation`: present when more items follow. */
  continuationToken?: string;
}

/** Reads a hub's devices in device id order, after one (`HubStore.devicesAfter` for one hub). */
export type DeviceReader = (afterDeviceId: string | undefined, limit: number) => HubDevice[];

/** Reads a hub's modules in (device id, module id) order, after one (`HubStore.modulesAfter` for one hub). */
export type ModuleReader = (
  after: readonly [deviceId: string, moduleId: string] | undefined,
  limit: number,
) => HubModule[];

const TOKEN_PREFIX = 'dpskit-query1:';

/** Where a page continues: after a device (`after`), after a module (`afterModule`), or at a row (aggregates). */
type Position = { after?: string; afterModule?: [string, string]; offset?: number };

function encodeToken(position: Position): string {
  return Buffer.from(`${TOKEN_PREFIX}${JSON.stringify(position)}`, 'utf8').toString('base64url');
}

function decodeToken(token: string): Position {
  const text = Buffer.from(token, 'base64url').toString('utf8');
  const invalid = () =>
    new QueryError(`Invalid x-ms-continuation "${clip(token)}": give back the one a page answered.`);
  if (!text.startsWith(TOKEN_PREFIX)) throw invalid();
  try {
    const position = JSON.parse(text.slice(TOKEN_PREFIX.length)) as Position;
    const module = position.afterModule;
    if (
      typeof position.after === 'string' ||
      (Array.isArray(module) && module.length === 2 && module.every((id) => typeof id === 'string')) ||
      (Number.isSafeInteger(position.offset) && (position.offset ?? -1) >= 0)
    )
      return position;
  } catch {
    // refused below
  }
  throw invalid();
}

/** `x-ms-max-item-count`: absent, empty or -1 the default; a whole number cut to the maximum. */
export function queryPageSize(header: string | undefined): number {
  if (header === undefined || header.trim() === '' || header.trim() === '-1') return DEFAULT_QUERY_PAGE_SIZE;
  const digits = header.trim();
  if (!/^\d+$/.test(digits) || Number(digits) < 1 || Number(digits) > 2_147_483_647) {
    throw new QueryError(
      `Invalid x-ms-max-item-count "${clip(header)}": give a whole number from 1 (pages hold at most ${MAX_QUERY_PAGE_SIZE}), or leave it out for ${DEFAULT_QUERY_PAGE_SIZE}.`,
    );
  }
  return Math.min(Number(digits), MAX_QUERY_PAGE_SIZE);
}

/** The `query` of a `POST /devices/query` body (`{"query": "SELECT …"}`, as the SDKs send it). */
export function queryText(body: unknown): string {
  const query = (body as { query?: unknown } | null)?.query;
  if (typeof body !== 'object' || body === null || Array.isArray(body) || typeof query !== 'string') {
    throw new QueryError(
      'The body must be a JSON object whose "query" is the query text: {"query": "SELECT * FROM devices"}.',
    );
  }
  return query;
}

/**
 * One page of a query's answer over a hub's devices, read a batch at a time in device id order.
 * Twins and projections continue after the last device answered (a device created or deleted
 * meanwhile neither repeats nor skips another); aggregates are counted over the whole hub for each
 * page and continue at an offset in their rows.
 */
export function runTwinQuery(
  read: DeviceReader,
  text: string,
  options: {
    pageSize?: string;
    continuation?: string;
    c2dCount?: (device: HubDevice) => number;
    /** The hub's modules, for `FROM devices.modules` (without it such a query answers none). */
    readModules?: ModuleReader;
  },
): TwinQueryPage {
  const query = parseTwinQuery(text);
  const pageSize = queryPageSize(options.pageSize);
  const position =
    options.continuation === undefined || options.continuation === '' ? {} : decodeToken(options.continuation);
  const itemType = isTwinQuery(query) ? 'twin' : 'raw';
  if (isAggregate(query)) {
    const aggregation = new Aggregation(query, MAX_QUERY_GROUPS);
    for (const { twin } of twins(read, query, {}, options)) aggregation.add(twin);
    const rows = aggregation.rows();
    const offset = position.offset ?? 0;
    const page = bounded(rows.slice(offset, offset + pageSize));
    const next = offset + page.length;
    return {
      items: page,
      itemType,
      pageSize,
      ...(next < rows.length ? { continuationToken: encodeToken({ offset: next }) } : {}),
    };
  }
  const items: JsonValue[] = [];
  let bytes = 2;
  let last: Position | undefined;
  for (const { twin, at } of twins(read, query, position, options)) {
    const item = project(query, twin);
    const size = Buffer.byteLength(JSON.stringify(item)) + 1;
    if (items.length >= pageSize || (items.length > 0 && bytes + size > MAX_QUERY_PAGE_BYTES)) {
      // One more matches: the page continues after the last one answered.
      return { items, itemType, pageSize, continuationToken: encodeToken(last as Position) };
    }
    items.push(item);
    bytes += size;
    last = at;
  }
  return { items, itemType, pageSize };
}

/**
 * The twins (as `GET /twins/{id}`, or `GET /twins/{id}/modules/{mid}` for `FROM devices.modules`,
 * answers them) the query's WHERE keeps, after the position given, each with its own position.
 */
function* twins(
  read: DeviceReader,
  query: TwinQuery,
  from: Position,
  options: { c2dCount?: (device: HubDevice) => number; readModules?: ModuleReader },
): Generator<{ twin: JsonValue; at: Position }> {
  if (query.from === 'devices.modules') {
    const readModules = options.readModules;
    if (!readModules) return;
    let cursor: readonly [string, string] | undefined = from.afterModule;
    for (;;) {
      const batch = readModules(cursor, SCAN_BATCH);
      for (const module of batch) {
        const twin = moduleTwinView(module) as JsonValue;
        cursor = [module.identity.deviceId, module.identity.moduleId];
        if (matches(query, twin)) yield { twin, at: { afterModule: [...cursor] } };
      }
      if (batch.length < SCAN_BATCH) return;
    }
  }
  let cursor = from.after;
  for (;;) {
    const batch = read(cursor, SCAN_BATCH);
    for (const device of batch) {
      const twin = twinView(device, options.c2dCount?.(device)) as JsonValue;
      cursor = device.identity.deviceId;
      if (matches(query, twin)) yield { twin, at: { after: cursor } };
    }
    if (batch.length < SCAN_BATCH) return;
  }
}

/** Rows cut where their JSON would pass MAX_QUERY_PAGE_BYTES (never before the first). */
function bounded(rows: JsonValue[]): JsonValue[] {
  let bytes = 2;
  const kept: JsonValue[] = [];
  for (const row of rows) {
    const size = Buffer.byteLength(JSON.stringify(row)) + 1;
    if (kept.length > 0 && bytes + size > MAX_QUERY_PAGE_BYTES) break;
    kept.push(row);
    bytes += size;
  }
  return kept;
}
