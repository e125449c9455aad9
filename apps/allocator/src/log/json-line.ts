import type { AllocatorLogRecord } from './record.js';

/**
 * `JSON.stringify(record)`, byte for byte, built with less work for the records the host writes.
 *
 * Why: at the default level the local host wrote seven JSON lines per request, and serialising
 * them was the largest part of what info logging cost (issue #13 profile under autocannon: 7 µs
 * of the 22 µs per request between info and warn). `JSON.stringify` walks every property of the
 * record, quoting and escaping each key and value character by character; here the record's keys
 * are constants, the level and source names are known, a timestamp, function name or invocation
 * id equal to the previous line's is not checked again, other short values are checked for a
 * character that needs escaping with one native regular expression and copied as they are, and
 * only nested values (the request body, linked hubs, a response) go to `JSON.stringify`. CPU time
 * over the seven records of a tutorial request: 6.6 -> 4.7 µs, of which the request body is 1.8;
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

/**
 * `quote` for a field whose value repeats from line to line (the timestamp within a millisecond,
 * the function name, one invocation's id on its four lines): the last value's JSON is kept, and a
 * string equal to it (most often the very same string) is not checked again.
 */
class RepeatedQuote {
  #text = '';
  #json = '""';

  of(text: string): string {
    if (text !== this.#text) {
      this.#json = quote(text);
      this.#text = text;
    }
    return this.#json;
  }
}

const times = new RepeatedQuote();
const functionNames = new RepeatedQuote();
const invocationIds = new RepeatedQuote();

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
  let line = `{"time":${times.of(time)},"level":${quoteName(level)},"source":${quoteName(source)},"msg":${quote(msg)}`;
  if (origin) {
    const { functionName, invocationId } = record;
    if (typeof functionName !== 'string' || typeof invocationId !== 'string') return undefined;
    line += `,"functionName":${functionNames.of(functionName)},"invocationId":${invocationIds.of(invocationId)}`;
  }
  if (count === 5 || count === 7) {
    const data = fieldsJson(record.data);
    if (data === undefined) return undefined;
    line += `,"data":${data}`;
  }
  return `${line}}`;
}

/** `data` as JSON.stringify writes it inside the record, or undefined when not proven the same. */
function fieldsJson(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const prototype: unknown = Object.getPrototypeOf(data);
  if (prototype !== Object.prototype && prototype !== null) return undefined;
  if ((data as { toJSON?: unknown }).toJSON !== undefined) return undefined;
  const fields = data as Record<string, unknown>;
  let json = '{';
  let separator = '';
  for (const key of Object.keys(fields)) {
    const value = valueJson(fields[key]);
    if (value === OMITTED) continue;
    if (value === undefined) return undefined;
    json += `${separator}${quotedKey(key)}${value}`;
    separator = ',';
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

// Keys of `data` come from a handful of log calls: each is checked and quoted once.
const quotedKeys = new Map<string, string>();
const MAX_QUOTED_KEYS = 512;

function quotedKey(key: string): string {
  let quoted = quotedKeys.get(key);
  if (quoted === undefined) {
    quoted = `${quote(key)}:`;
    if (quotedKeys.size < MAX_QUOTED_KEYS) quotedKeys.set(key, quoted);
  }
  return quoted;
}
