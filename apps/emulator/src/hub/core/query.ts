/**
 * IoT Hub's query language over device twins (`POST /devices/query`, `Registry.createQuery`): the
 * subset the emulated hubs serve, parsed and evaluated here without I/O (docs/hubs.md, "Twin
 * queries"). Sources: azure-docs iot-hub-devguide-query-language and query-twins.
 *
 * Hand-written, not a library's: IoT Hub's dialect is not one a maintained SQL parser reads. Its
 * property paths are unrooted and of any depth (`properties.reported.connectivity.type`, where
 * node-sql-parser takes at most `schema.table.column`), its lists are in brackets (`IN ['a','b']`),
 * `COUNT()` takes no argument, and `@zeit/cosmosdb-query` (Cosmos DB's SQL, the closest) wants
 * every path rooted at the collection's alias and has not been released since 2020. The grammar
 * served is small: a recursive descent over a bounded text, its nesting bounded too.
 */

/** A query IoT Hub would refuse, or one beyond the subset served: answered 400 with this message. */
export class QueryError extends Error {
  override readonly name = 'QueryError';
}

/** Queries longer than this are refused (IoT Hub's limit is reported at about 8,200 characters). */
export const MAX_QUERY_LENGTH = 8192;
/** How deep parentheses and NOTs may nest (a recursive parser's stack stays small). */
export const MAX_QUERY_DEPTH = 32;

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
/** A value in a twin, or `undefined` where the twin has nothing (a path that is not there). */
type Value = JsonValue | undefined;

type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>=';
const FUNCTIONS = {
  IS_DEFINED: 1,
  IS_NULL: 1,
  IS_BOOL: 1,
  IS_NUMBER: 1,
  IS_STRING: 1,
  IS_OBJECT: 1,
  IS_ARRAY: 1,
  IS_PRIMITIVE: 1,
  STARTSWITH: 2,
  ENDSWITH: 2,
} as const;
type FunctionName = keyof typeof FUNCTIONS;

export type Expr =
  | { kind: 'literal'; value: JsonValue }
  | { kind: 'path'; path: string[] }
  | { kind: 'compare'; op: CompareOp; left: Expr; right: Expr }
  | { kind: 'and' | 'or'; left: Expr; right: Expr }
  | { kind: 'not'; operand: Expr }
  | { kind: 'in'; operand: Expr; list: JsonValue[]; negated: boolean }
  | { kind: 'call'; fn: FunctionName; args: Expr[] };

export interface Projection {
  path: string[];
  /** The property it is answered as: its alias, else the path's last name. */
  name: string;
}

export interface TwinQuery {
  /** The collection: device twins (`FROM devices`) or module twins (`FROM devices.modules`). */
  from: 'devices' | 'devices.modules';
  /** `*`: whole twins; else the fields projected and, with `count`, `COUNT()` answered as `count`. */
  select: { kind: 'all' } | { kind: 'fields'; fields: Projection[]; count?: string };
  where?: Expr;
  groupBy?: string[][];
}

/** Whether a query's answers are twins (`x-ms-item-type: twin`) or other JSON (`raw`). */
export function isTwinQuery(query: TwinQuery): boolean {
  return query.select.kind === 'all';
}

/** Whether a query aggregates (COUNT(), GROUP BY): its answer is computed over every twin. */
export function isAggregate(query: TwinQuery): boolean {
  return query.groupBy !== undefined || (query.select.kind === 'fields' && query.select.count !== undefined);
}

type Token =
  | { type: 'word'; text: string; at: number }
  | { type: 'string'; value: string; at: number }
  | { type: 'number'; value: number; text: string; at: number }
  | { type: 'punct'; text: string; at: number }
  | { type: 'end'; at: number };

const KEYWORDS = new Set([
  'SELECT',
  'FROM',
  'WHERE',
  'AND',
  'OR',
  'NOT',
  'IN',
  'NIN',
  'AS',
  'GROUP',
  'BY',
  'TRUE',
  'FALSE',
  'NULL',
]);
/** Words of IoT Hub's (or Cosmos DB's) language that the subset does not serve, named in the refusal. */
const UNSERVED = new Set(['TOP', 'ORDER', 'DISTINCT', 'VALUE', 'JOIN', 'LIMIT', 'OFFSET', 'HAVING', 'BETWEEN', 'LIKE']);

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text.charAt(i);
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const at = i;
    if (/[A-Za-z_$]/.test(c)) {
      const word = /^[A-Za-z0-9_$]+/.exec(text.slice(i))?.[0] ?? c;
      tokens.push({ type: 'word', text: word, at });
      i += word.length;
      continue;
    }
    const number = /^-?(\d+(\.\d+)?|\.\d+)([eE][+-]?\d+)?/.exec(text.slice(i));
    if (number && (c !== '-' || /[\d.]/.test(text.charAt(i + 1)))) {
      tokens.push({ type: 'number', value: Number(number[0]), text: number[0], at });
      i += number[0].length;
      continue;
    }
    if (c === "'" || c === '"') {
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) throw new QueryError(`The string that begins at position ${at + 1} is not closed.`);
        const d = text.charAt(i);
        if (d === '\\' && i + 1 < text.length) {
          value += text.charAt(i + 1);
          i += 2;
        } else if (d === c) {
          i++;
          break;
        } else {
          value += d;
          i++;
        }
      }
      tokens.push({ type: 'string', value, at });
      continue;
    }
    const two = text.slice(i, i + 2);
    if (two === '!=' || two === '<>' || two === '<=' || two === '>=') {
      tokens.push({ type: 'punct', text: two === '<>' ? '!=' : two, at });
      i += 2;
      continue;
    }
    if ('()[],.*=<>'.includes(c)) {
      tokens.push({ type: 'punct', text: c, at });
      i++;
      continue;
    }
    throw new QueryError(`Unexpected character "${c}" at position ${at + 1}.`);
  }
  tokens.push({ type: 'end', at: text.length });
  return tokens;
}

function describe(token: Token): string {
  switch (token.type) {
    case 'end':
      return 'the end of the query';
    case 'word':
      return `"${token.text.slice(0, 64)}"`;
    case 'string':
      return `the string '${token.value.slice(0, 64)}'`;
    case 'number':
      return `the number ${token.text.slice(0, 64)}`;
    case 'punct':
      return `"${token.text}"`;
  }
}

class Parser {
  #i = 0;
  #depth = 0;
  constructor(readonly tokens: Token[]) {}

  get peek(): Token {
    return this.tokens[this.#i] as Token;
  }

  next(): Token {
    const token = this.peek;
    if (token.type !== 'end') this.#i++;
    return token;
  }

  isWord(word: string, token = this.peek): boolean {
    return token.type === 'word' && token.text.toUpperCase() === word;
  }

  isPunct(text: string, token = this.peek): boolean {
    return token.type === 'punct' && token.text === text;
  }

  fail(expected: string, token = this.peek): never {
    if (token.type === 'word' && UNSERVED.has(token.text.toUpperCase())) {
      throw new QueryError(
        `${token.text.toUpperCase()} (position ${token.at + 1}) is not served by the emulated hubs' queries (see the emulator's docs/hubs.md, Twin queries).`,
      );
    }
    throw new QueryError(`Expected ${expected} at position ${token.at + 1}, found ${describe(token)}.`);
  }

  expectWord(word: string): void {
    if (!this.isWord(word)) this.fail(word);
    this.next();
  }

  expectPunct(text: string): void {
    if (!this.isPunct(text)) this.fail(`"${text}"`);
    this.next();
  }

  query(): TwinQuery {
    this.expectWord('SELECT');
    const select = this.selectList();
    this.expectWord('FROM');
    const from = this.next();
    if (from.type !== 'word' || from.text.toLowerCase() !== 'devices') this.fail('the collection devices', from);
    let collection: TwinQuery['from'] = 'devices';
    if (this.isPunct('.')) {
      this.next();
      const sub = this.next();
      if (sub.type !== 'word' || sub.text.toLowerCase() !== 'modules')
        throw new QueryError(
          `FROM devices.${sub.type === 'word' ? sub.text.slice(0, 64) : '…'}: only device and module twins (FROM devices, FROM devices.modules) are served; jobs are not emulated.`,
        );
      collection = 'devices.modules';
    }
    const query: TwinQuery = { from: collection, select };
    if (this.isWord('WHERE')) {
      this.next();
      query.where = this.expression();
    }
    if (this.isWord('GROUP')) {
      this.next();
      this.expectWord('BY');
      const groupBy = [this.path()];
      while (this.isPunct(',')) {
        this.next();
        groupBy.push(this.path());
      }
      query.groupBy = groupBy;
    }
    if (this.peek.type !== 'end') this.fail(query.groupBy ? 'the end of the query' : 'WHERE, GROUP BY or the end');
    checkShape(query);
    return query;
  }

  selectList(): TwinQuery['select'] {
    if (this.isPunct('*')) {
      this.next();
      return { kind: 'all' };
    }
    const fields: Projection[] = [];
    let count: string | undefined;
    for (;;) {
      if (this.isWord('COUNT')) {
        const at = this.next().at;
        this.expectPunct('(');
        this.expectPunct(')');
        if (count !== undefined) throw new QueryError(`COUNT() is selected twice (position ${at + 1}).`);
        count = this.alias() ?? '$1';
      } else {
        const path = this.path();
        fields.push({ path, name: this.alias() ?? (path[path.length - 1] as string) });
      }
      if (!this.isPunct(',')) break;
      this.next();
    }
    const names = new Set<string>();
    for (const name of [...fields.map((f) => f.name), ...(count === undefined ? [] : [count])]) {
      if (names.has(name))
        throw new QueryError(`Two selected values are both named "${name}": give one an alias (AS).`);
      names.add(name);
    }
    return count === undefined ? { kind: 'fields', fields } : { kind: 'fields', fields, count };
  }

  alias(): string | undefined {
    if (!this.isWord('AS')) return undefined;
    this.next();
    const name = this.next();
    if (name.type !== 'word') this.fail('a name after AS', name);
    return name.text;
  }

  /** `a.b.c`: names after a dot may be keywords (`tags.from`). */
  path(): string[] {
    const first = this.next();
    const upper = first.type === 'word' ? first.text.toUpperCase() : '';
    // A twin's top level has no property named as a keyword (TOP, ORDER…: refused by name in fail).
    if (first.type !== 'word' || KEYWORDS.has(upper) || UNSERVED.has(upper) || upper === 'COUNT')
      this.fail('a property (deviceId, tags.…, properties.reported.…)', first);
    const path = [first.text];
    while (this.isPunct('.')) {
      this.next();
      const part = this.next();
      if (part.type !== 'word') this.fail('a property name after "."', part);
      path.push(part.text);
    }
    if (this.isPunct('[')) this.fail('a property name ("[…]" indexing is not served)');
    return path;
  }

  nest<T>(fn: () => T): T {
    if (++this.#depth > MAX_QUERY_DEPTH)
      throw new QueryError(`The condition nests deeper than ${MAX_QUERY_DEPTH} (parentheses and NOT).`);
    try {
      return fn();
    } finally {
      this.#depth--;
    }
  }

  expression(): Expr {
    let left = this.conjunction();
    while (this.isWord('OR')) {
      this.next();
      left = { kind: 'or', left, right: this.conjunction() };
    }
    return left;
  }

  conjunction(): Expr {
    let left = this.unary();
    while (this.isWord('AND')) {
      this.next();
      left = { kind: 'and', left, right: this.unary() };
    }
    return left;
  }

  unary(): Expr {
    if (this.isWord('NOT')) {
      this.next();
      return this.nest(() => ({ kind: 'not', operand: this.unary() }));
    }
    return this.comparison();
  }

  comparison(): Expr {
    const left = this.operand();
    const token = this.peek;
    if (token.type === 'punct' && ['=', '!=', '<', '<=', '>', '>='].includes(token.text)) {
      this.next();
      return { kind: 'compare', op: token.text as CompareOp, left, right: this.operand() };
    }
    const negated = this.isWord('NIN') || (this.isWord('NOT') && this.isWord('IN', this.tokens[this.#i + 1]));
    if (negated || this.isWord('IN')) {
      if (this.isWord('NOT')) this.next();
      this.next();
      return { kind: 'in', operand: left, list: this.list(), negated };
    }
    return left;
  }

  list(): JsonValue[] {
    if (this.isPunct('(')) this.fail("\"[\" (IoT Hub writes lists in brackets: IN ['a', 'b'])");
    this.expectPunct('[');
    const values: JsonValue[] = [];
    if (!this.isPunct(']')) {
      for (;;) {
        const value = this.literal();
        if (value === undefined) this.fail('a string, number, true, false or null in the list');
        values.push(value);
        if (!this.isPunct(',')) break;
        this.next();
      }
    }
    this.expectPunct(']');
    return values;
  }

  literal(): JsonValue | undefined {
    const token = this.peek;
    if (token.type === 'string' || token.type === 'number') {
      this.next();
      return token.value;
    }
    for (const [word, value] of [
      ['TRUE', true],
      ['FALSE', false],
      ['NULL', null],
    ] as const) {
      if (this.isWord(word)) {
        this.next();
        return value;
      }
    }
    return undefined;
  }

  operand(): Expr {
    const value = this.literal();
    if (value !== undefined) return { kind: 'literal', value };
    if (this.isPunct('(')) {
      this.next();
      const inner = this.nest(() => this.expression());
      this.expectPunct(')');
      return inner;
    }
    const token = this.peek;
    if (token.type === 'word' && this.isPunct('(', this.tokens[this.#i + 1])) {
      const fn = token.text.toUpperCase();
      if (!(fn in FUNCTIONS)) {
        throw new QueryError(
          `The function ${token.text.slice(0, 64)} (position ${token.at + 1}) is not served; the emulated hubs' queries take ${Object.keys(FUNCTIONS).join(', ')}.`,
        );
      }
      this.next();
      this.next();
      const args: Expr[] = [];
      if (!this.isPunct(')')) {
        for (;;) {
          args.push(this.nest(() => this.operand()));
          if (!this.isPunct(',')) break;
          this.next();
        }
      }
      this.expectPunct(')');
      const arity = FUNCTIONS[fn as FunctionName];
      if (args.length !== arity)
        throw new QueryError(`${fn} takes ${arity} argument${arity === 1 ? '' : 's'}, not ${args.length}.`);
      return { kind: 'call', fn: fn as FunctionName, args };
    }
    return { kind: 'path', path: this.path() };
  }
}

/** What a well-formed query may not combine. */
function checkShape(query: TwinQuery): void {
  const { select, groupBy } = query;
  if (groupBy) {
    if (select.kind === 'all')
      throw new QueryError('SELECT * cannot be grouped: select the GROUP BY properties and COUNT().');
    const grouped = new Set(groupBy.map((path) => path.join('.')));
    for (const field of select.fields) {
      if (!grouped.has(field.path.join('.')))
        throw new QueryError(`${field.path.join('.')} is selected but not in GROUP BY.`);
    }
  } else if (select.kind === 'fields' && select.count !== undefined && select.fields.length > 0) {
    throw new QueryError(`${select.fields[0]?.path.join('.')} is selected beside COUNT() without GROUP BY.`);
  }
}

/** Parses a query; throws `QueryError` naming what is wrong and where. */
export function parseTwinQuery(text: string): TwinQuery {
  if (text.length > MAX_QUERY_LENGTH)
    throw new QueryError(`The query is ${text.length} characters long; at most ${MAX_QUERY_LENGTH} are taken.`);
  if (text.trim() === '') throw new QueryError('The query is empty.');
  return new Parser(tokenize(text)).query();
}

function typeOf(value: JsonValue): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

function deepEqual(a: JsonValue, b: JsonValue): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * A comparison as Cosmos DB (the store behind IoT Hub's twins) makes it: `undefined` when either
 * side is undefined or their types differ (so `tags.x != 'a'` keeps no twin without `tags.x`);
 * `<`, `>` … of numbers and strings (ordinal) only.
 */
function compare(op: CompareOp, a: Value, b: Value): boolean | undefined {
  if (a === undefined || b === undefined || typeOf(a) !== typeOf(b)) return undefined;
  if (op === '=') return deepEqual(a, b);
  if (op === '!=') return !deepEqual(a, b);
  if (!(typeof a === 'number' || typeof a === 'string')) return undefined;
  const [x, y] = [a as number | string, b as number | string];
  return op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y;
}

function lookup(document: JsonValue, path: readonly string[]): Value {
  let value: Value = document;
  for (const name of path) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, name))
      return undefined;
    value = value[name];
  }
  return value;
}

/** An expression's value over a twin; a WHERE keeps the twins it is `true` for. */
export function evaluate(expr: Expr, twin: JsonValue): Value {
  switch (expr.kind) {
    case 'literal':
      return expr.value;
    case 'path':
      return lookup(twin, expr.path);
    case 'compare':
      return compare(expr.op, evaluate(expr.left, twin), evaluate(expr.right, twin));
    case 'and': {
      const [a, b] = [evaluate(expr.left, twin), evaluate(expr.right, twin)];
      if (a === false || b === false) return false;
      return a === true && b === true ? true : undefined;
    }
    case 'or': {
      const [a, b] = [evaluate(expr.left, twin), evaluate(expr.right, twin)];
      if (a === true || b === true) return true;
      return a === false && b === false ? false : undefined;
    }
    case 'not': {
      const a = evaluate(expr.operand, twin);
      return typeof a === 'boolean' ? !a : undefined;
    }
    case 'in': {
      const a = evaluate(expr.operand, twin);
      if (a === undefined) return undefined;
      const found = expr.list.some((item) => compare('=', a, item) === true);
      return expr.negated ? !found : found;
    }
    case 'call': {
      const [a, b] = expr.args.map((arg) => evaluate(arg, twin));
      switch (expr.fn) {
        case 'IS_DEFINED':
          return a !== undefined;
        case 'IS_NULL':
          return a === null;
        case 'IS_BOOL':
          return typeof a === 'boolean';
        case 'IS_NUMBER':
          return typeof a === 'number';
        case 'IS_STRING':
          return typeof a === 'string';
        case 'IS_OBJECT':
          return a !== null && typeof a === 'object' && !Array.isArray(a);
        case 'IS_ARRAY':
          return Array.isArray(a);
        case 'IS_PRIMITIVE':
          return a === null || ['string', 'number', 'boolean'].includes(typeof a);
        case 'STARTSWITH':
          return typeof a === 'string' && typeof b === 'string' ? a.startsWith(b) : undefined;
        case 'ENDSWITH':
          return typeof a === 'string' && typeof b === 'string' ? a.endsWith(b) : undefined;
      }
    }
  }
}

/** Whether a twin is in the query's answer (its WHERE is `true` for it). */
export function matches(query: TwinQuery, twin: JsonValue): boolean {
  return query.where === undefined || evaluate(query.where, twin) === true;
}

/** A twin as a non-aggregate query answers it: whole, or its projected fields (absent ones left out). */
export function project(query: TwinQuery, twin: JsonValue): JsonValue {
  if (query.select.kind === 'all') return twin;
  const row: Record<string, JsonValue> = {};
  for (const field of query.select.fields) {
    const value = lookup(twin, field.path);
    if (value !== undefined) row[field.name] = value;
  }
  return row;
}

/**
 * Counts twins into groups (an aggregate query: COUNT() and GROUP BY). Feed it the matching twins in
 * order; `rows()` answers one row per group, in the order each group was first seen. `maxGroups`
 * bounds the memory: one group more is a `QueryError`.
 */
export class Aggregation {
  readonly #groups = new Map<string, { row: Record<string, JsonValue>; count: number }>();
  constructor(
    readonly query: TwinQuery,
    readonly maxGroups: number,
  ) {}

  add(twin: JsonValue): void {
    const fields = this.query.select.kind === 'fields' ? this.query.select.fields : [];
    const values = (this.query.groupBy ?? []).map((path) => lookup(twin, path));
    const key = JSON.stringify(values.map((v) => (v === undefined ? { undefined: true } : v)));
    let group = this.#groups.get(key);
    if (!group) {
      if (this.#groups.size >= this.maxGroups)
        throw new QueryError(
          `The query makes more than ${this.maxGroups} groups; the emulated hubs answer at most that many.`,
        );
      const row: Record<string, JsonValue> = {};
      for (const field of fields) {
        const value = lookup(twin, field.path);
        if (value !== undefined) row[field.name] = value;
      }
      group = { row, count: 0 };
      this.#groups.set(key, group);
    }
    group.count++;
  }

  rows(): JsonValue[] {
    const count = this.query.select.kind === 'fields' ? this.query.select.count : undefined;
    // COUNT() of no twin at all is still one row (0), as SQL's aggregate without GROUP BY.
    if (this.#groups.size === 0 && !this.query.groupBy && count !== undefined) return [{ [count]: 0 }];
    return [...this.#groups.values()].map(({ row, count: n }) => (count === undefined ? row : { ...row, [count]: n }));
  }
}
