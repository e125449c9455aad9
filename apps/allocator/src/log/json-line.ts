import type { AllocatorLogRecord } from './record.js';

/**
 * `JSON.stringify(record)`, byte for byte, built with less work for the records the host writes.
 *
 * Why: at the default level the local host wrote seven JSON lines per request, and serialising
 * them was the largest part of what info logging cost (issue #13 profile under autocannon: 7 µs
 * of the 22 µs per request between info and warn). `JSON.stringify` walks every property of the
 * record, quoting and escaping each key and value character by character; here the record's keys
 * are constants, the level and source names are known, a line's start (time, level, source), its
 * function name and invocation id and a short message equal to earlier lines' are reused as one
 * flat string already quoted, other short values are checked for a character that needs escaping
 * with one native regular expression and copied as they are, and only nested values (the request
 * body, linked hubs, a response) go to `JSON.stringify`. Fewer, flat pieces matter because the line
 * writer's join flattens each line's tree of concatenations piece by piece: with the allocator
 * host's answers no longer waking the client once each (turn-end.ts), that flattening
 * (`String::WriteToFlat`) was the largest item info logging added in perf (3.1 µs per request
 * under load); a request's six lines from ~20 pieces each to ~7 took format, join and encode in a
 * loop from 6.6 to 5.9 µs. Against `JSON.stringify(record)`, CPU time over the seven records a
 * tutorial request had then: 6.6 -> 4.7 µs, of which the request body is 1.8;
 * with the line writer's work on them (appending, then flattening and UTF-8 encoding at the write)
 * 7.8 -> 6.4 µs: a line built here is a tree of concatenations that the write flattens, where
 * `JSON.stringify`'s is one flat string. (Tried and slower: a serialiser in JavaScript for the nested
 * values too; `JSON.stringify` for all of `data`; joining an array of parts; fewer, larger constants.)
 *
 * Exactness: the fast path takes only what it can prove gives the same text: own enumerable keys
 * `time, level, source, msg[, functionName, invocationId][, data]` in that order (what every
 * record of the host and of `recordFromContextLog` has), string values, and `data` a plain object
 * without `toJSON` whose nested objects have no `toJSON` of their own (`JSON.stringify` would call
 * it with the property name as argument). Anything else, and anything that throws (a cycle, a
 * BigInt), is `JSON.stringify(record)` itself, errors included. json-line.test.ts compares both on
 * awkward and generated records and on the records of real requests.
 */
export function jsonLine(record: AllocatorLogRecord): string {
  try {
    const line = fastJsonLine(record);
    if (line !== undefined) return line;
  } catch {
    // e.g. a BigInt or a cycle in `data`: JSON.stringify below throws its own error.
  }
  return JSON.stringify(record);
}

// A character that JSON.stringify escapes: '"', '\', C0 controls, and (lone) surrogates. Strings
// with a surrogate pair (emoji) go to JSON.stringify too, which keeps the pair as it is.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding C0 controls is the point: JSON.stringify escapes them
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function quote(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`;
}

/** One flat string of `parts` (a join builds one sequential string; `+` builds a tree the write flattens). */
function flat(...parts: string[]): string {
  return parts.join('');
}

/**
 * The start of a line up to its message, `{"time":...,"level":...,"source":...,"msg":`, kept as one
 * flat string while the time, level and source repeat (a millisecond's lines of one source).
 */
class RepeatedHead {
  #time = '';
  #level = '';
  #source = '';
  #json: string | undefined;

  of(time: string, level: string, source: string): string {
    if (this.#json === undefined || time !== this.#time || level !== this.#level || source !== this.#source) {
      this.#json = flat(
        '{"time":',
        quote(time),
        ',"level":',
        quoteName(level),
        ',"source":',
        quoteName(source),
        ',"msg":',
      );
      this.#time = time;
      this.#level = level;
      this.#source = source;
    }
    return this.#json;
  }
}

/** `,"functionName":...,"invocationId":...` as one flat string while both repeat (an invocation's lines). */
class RepeatedOrigin {
  #functionName = '';
  #invocationId = '';
  #json: string | undefined;

  of(functionName: string, invocationId: string): string {
    if (this.#json === undefined || functionName !== this.#functionName || invocationId !== this.#invocationId) {
      this.#json = flat(',"functionName":', quote(functionName), ',"invocationId":', quote(invocationId));
      this.#functionName = functionName;
      this.#invocationId = invocationId;
    }
    return this.#json;
  }
}

// The host's lines and the functions' lines alternate within a request: a head for each.
const hostHeads = new RepeatedHead();
const functionHeads = new RepeatedHead();
const otherHeads = new RepeatedHead();
const origins = new RepeatedOrigin();

// Messages repeat (`Request.Body`, `Response`, ...): each is checked and quoted once, as one flat
// string. Long ones (the host's `Executing '...' (..., Id=...)`) are unique and not kept.
const quotedMessages = new Map<string, string>();
const MAX_QUOTED_MESSAGES = 256;
const MAX_KEPT_MESSAGE = 64;

function quoteMessage(msg: string): string {
  if (msg.length > MAX_KEPT_MESSAGE) return quote(msg);
  let quoted = quotedMessages.get(msg);
  if (quoted === undefined) {
    quoted = JSON.stringify(msg);
    // Emptied when full: a function that logs ever new short messages cannot grow it.
    if (quotedMessages.size >= MAX_QUOTED_MESSAGES) quotedMessages.clear();
    quotedMessages.set(msg, quoted);
  }
  return quoted;
}

/** The level and source names of every record, quoted without a check; others are checked. */
function quoteName(name: string): string {
  switch (name) {
    case 'debug':
      return '"debug"';
    case 'info':
      return '"info"';
    case 'warn':
      return '"warn"';
    case 'error':
      return '"error"';
    case 'host':
      return '"host"';
    case 'function':
      return '"function"';
    default:
      return quote(name);
  }
}

/**
 * The fast path alone: undefined for a record it does not prove it writes as JSON.stringify does
 * (exported so that the tests can hold the host's own records to it).
 */
export function fastJsonLine(record: AllocatorLogRecord): string | undefined {
  if ((record as { toJSON?: unknown }).toJSON !== undefined) return undefined;
  const keys = Object.keys(record);
  const count = keys.length;
  if (count < 4 || keys[0] !== 'time' || keys[1] !== 'level' || keys[2] !== 'source' || keys[3] !== 'msg') {
    return undefined;
  }
  let origin: boolean;
  if (count === 4 || (count === 5 && keys[4] === 'data')) origin = false;
  else if (
    keys[4] === 'functionName' &&
    keys[5] === 'invocationId' &&
    (count === 6 || (count === 7 && keys[6] === 'data'))
  ) {
    origin = true;
  } else return undefined;

  const { time, level, source, msg } = record;
  if (typeof time !== 'string' || typeof level !== 'string' || typeof source !== 'string' || typeof msg !== 'string') {
    return undefined;
  }
  const heads = source === 'function' ? functionHeads : source === 'host' ? hostHeads : otherHeads;
  let line = heads.of(time, level, source) + quoteMessage(msg);
  if (origin) {
    const { functionName, invocationId } = record;
    if (typeof functionName !== 'string' || typeof invocationId !== 'string') return undefined;
    line += origins.of(functionName, invocationId);
  }
  if (count === 5 || count === 7) {
    const data = fieldsJson(record.data);
    if (data === undefined) return undefined;
    return `${line}${data}}`;
  }
  return `${line}}`;
}

/**
 * `,"data":` and `data` as JSON.stringify writes them inside the record, or undefined when not proven
 * the same.
 */
function fieldsJson(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const prototype: unknown = Object.getPrototypeOf(data);
  if (prototype !== Object.prototype && prototype !== null) return undefined;
  if ((data as { toJSON?: unknown }).toJSON !== undefined) return undefined;
  const fields = data as Record<string, unknown>;
  let json = ',"data":{';
  let first = true;
  for (const key of Object.keys(fields)) {
    const value = valueJson(fields[key]);
    if (value === OMITTED) continue;
    if (value === undefined) return undefined;
    json += quotedKey(key, first) + value;
    first = false;
  }
  return `${json}}`;
}

const OMITTED = '';

/** One field's value: its JSON, OMITTED where JSON.stringify leaves the property out, undefined to give up. */
function valueJson(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      return Number.isFinite(value) ? `${value}` : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
    case 'symbol':
      return OMITTED;
    case 'object':
      if (value === null) return 'null';
      // Called with the property name by JSON.stringify, with "" on its own: not the same call.
      if ((value as { toJSON?: unknown }).toJSON !== undefined) return undefined;
      // Nested values are V8's: the same walk, and faster than one in JavaScript.
      return JSON.stringify(value);
    default:
      // functions (a `toJSON` property of theirs would be called), bigint
      return undefined;
  }
}

// Keys of `data` come from a handful of log calls: each is checked and quoted once, as one flat
// string, both as the first key (`"key":`) and after another (`,"key":`).
const quotedKeys = new Map<string, readonly [first: string, next: string]>();
const MAX_QUOTED_KEYS = 512;

function quotedKey(key: string, first: boolean): string {
  let quoted = quotedKeys.get(key);
  if (quoted === undefined) {
    const json = quote(key);
    quoted = [flat(json, ':'), flat(',', json, ':')];
    if (quotedKeys.size < MAX_QUOTED_KEYS) quotedKeys.set(key, quoted);
  }
  return first ? quoted[0] : quoted[1];
}
