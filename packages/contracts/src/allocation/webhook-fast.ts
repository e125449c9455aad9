/**
 * The webhook's contract (webhook-definition.ts, the same one definition) built on plain checks
 * instead of zod, for `@dpskit/contracts/allocation`'s parse functions: a check answers only for
 * input that zod would accept, with the value zod would give (the same keys in the same order, the
 * same values); for anything else it answers UNSURE and the caller asks zod, whose issues and
 * messages are then the answer. Why: a webhook's first request after a cold start built the zod
 * schemas first, ~4.5 ms of main-thread CPU on the 2-core machine (zod/mini's ~200 schema objects,
 * most of it first-time cost that a later build does not pay), then parsed (~1.3 ms); these checks
 * take a small fraction of that, and zod is built only when a request or answer is not valid
 * (issue #13).
 *
 * Each function follows what zod 4's core does for the same schema on the way to a success
 * (webhook-fast.test.ts compares them with zod over generated valid and invalid inputs, including
 * inherited, symbol, non-enumerable and `__proto__` keys):
 * - objects (`looseObject`): not an array, not null; the shape's keys in the shape's order, each
 *   present one (`key in input`) with its checked value, an absent one only if it is optional; then
 *   every other key `for...in` yields, except `__proto__`, with its value as is;
 * - records: zod's plain-object test; own enumerable string keys in `Reflect.ownKeys` order, except
 *   `__proto__` (a symbol key: UNSURE);
 * - arrays: a new array of the checked items; strings, booleans, finite numbers, enum members and
 *   unknown values as they are; `optional` takes undefined, `nullish` also null;
 * - checks (`minLength`, `int`, `superRefine`) run on the checked value; any doubt is UNSURE.
 */

import type { WebhookZod } from './webhook-definition.js';

/** What a check answers for input it does not vouch for. */
export const UNSURE: unique symbol = Symbol('unsure');
export type Unsure = typeof UNSURE;

/** A checked value, or UNSURE. */
export type FastCheck = (input: unknown) => unknown;

/** A check on a value already of the schema's type: true to pass it. */
type Refinement = { readonly refine: (value: never) => boolean };

export interface FastSchema {
  readonly run: FastCheck;
  /** zod's optin and optout both 'optional' (`optional`, `nullish`): an object key may be absent. */
  readonly optional: boolean;
  check(...checks: Refinement[]): FastSchema;
}

function schema(run: FastCheck, optional = false): FastSchema {
  return {
    run,
    optional,
    check(...checks) {
      const tests = checks.map((c) => c.refine as (value: unknown) => boolean);
      return schema((input) => {
        const value = run(input);
        if (value === UNSURE) return UNSURE;
        for (const test of tests) if (!test(value)) return UNSURE;
        return value;
      }, optional);
    },
  };
}

/** zod core's isObject. */
function isObject(value: unknown): value is Record<PropertyKey, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** zod core's isPlainObject (what a record accepts). */
function isPlainObject(value: unknown): value is Record<PropertyKey, unknown> {
  if (!isObject(value)) return false;
  const ctor = value.constructor;
  if (ctor === undefined || typeof ctor !== 'function') return true;
  const prototype: unknown = ctor.prototype;
  return isObject(prototype) && Object.hasOwn(prototype, 'isPrototypeOf');
}

const isString = schema((input) => (typeof input === 'string' ? input : UNSURE));
const isBoolean = schema((input) => (typeof input === 'boolean' ? input : UNSURE));
// zod's number: a number, not NaN, finite.
const isNumber = schema((input) => (typeof input === 'number' && Number.isFinite(input) ? input : UNSURE));
const isUnknown = schema((input) => input);

/**
 * How many checks one object schema answers with its general code before it is compiled for its
 * shape (see `compiledLooseObject`). Not at once: generating and compiling the ~20 object checks
 * of the webhook's contract costs ~1.5 ms of main-thread CPU, which a cold start's first answer
 * would pay; a host that answers more than a few dozen requests pays it once, on the way.
 */
export const COMPILE_AFTER = 64;

/** `new Function`, or a stand-in (tests: one that throws, as where code generation is disallowed). */
export type MakeFunction = (...argsAndBody: string[]) => (...args: unknown[]) => unknown;

function looseObjectWith(compileAfter: number, makeFunction: MakeFunction) {
  return (shape: Record<string, FastSchema>): FastSchema => {
    const keys = Object.keys(shape).filter((key) => key !== '__proto__');
    const keySet = new Set(Object.keys(shape));
    const runs = keys.map((key) => (shape[key] as FastSchema).run);
    const optional = keys.map((key) => (shape[key] as FastSchema).optional);
    const general: FastCheck = (input) => {
      if (!isObject(input)) return UNSURE;
      const out: Record<string, unknown> = {};
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        const given = input[key];
        // `in` only for undefined: a key with another value is present.
        if (given === undefined && !(key in input)) {
          if (optional[i]) continue;
          return UNSURE;
        }
        const value = (runs[i] as FastCheck)(given);
        if (value === UNSURE) return UNSURE;
        out[key] = value;
      }
      for (const key in input) {
        if (keySet.has(key) || key === '__proto__') continue;
        out[key] = input[key];
      }
      return out;
    };
    if (compileAfter === 0) return schema(compiledLooseObject(keys, runs, optional, keySet, makeFunction) ?? general);
    let current = general;
    let calls = 0;
    return schema((input) => {
      if (calls < compileAfter && ++calls === compileAfter) {
        current = compiledLooseObject(keys, runs, optional, keySet, makeFunction) ?? general;
      }
      return current(input);
    });
  };
}

/**
 * The general object check above written out for one shape, as JavaScript compiled by
 * `new Function`: the same steps on the same keys in the same order (reads, `in` tests, checks,
 * writes, then `for...in` for the other keys), each key a literal. Why: in the general code one
 * property read and one write serve every key of every object schema, so V8 finds them
 * megamorphic and looks each up in its stub cache, and `out` takes its keys through generic
 * stores; here each read and write has its own site, one key, one shape. The toaster request's
 * check went from ~3.2 to ~1.3 us in a loop (issue #13; in the host's profile under load the
 * megamorphic keyed loads and stores and the key set were ~5% of its CPU). Undefined where code
 * generation is not allowed (`--disallow-code-generation-from-strings`, a CSP): the general code
 * stays. webhook-fast.test.ts holds both to each other on generated inputs, trap for trap.
 */
function compiledLooseObject(
  keys: readonly string[],
  runs: readonly FastCheck[],
  optional: readonly boolean[],
  keySet: ReadonlySet<string>,
  makeFunction: MakeFunction,
): FastCheck | undefined {
  const lines = [
    '"use strict";',
    'return function looseObject(input) {',
    'if (typeof input !== "object" || input === null || Array.isArray(input)) return UNSURE;',
    'const out = {};',
    'let given;',
    'let value;',
  ];
  keys.forEach((key, i) => {
    const name = JSON.stringify(key);
    lines.push(
      `given = input[${name}];`,
      `if (given === undefined && !(${name} in input)) {${optional[i] ? '' : ' return UNSURE;'} } else {`,
      `  value = runs[${i}](given);`,
      '  if (value === UNSURE) return UNSURE;',
      `  out[${name}] = value;`,
      '}',
    );
  });
  const skipped = new Set([...keySet, '__proto__']);
  lines.push(
    'for (const key in input) {',
    `  switch (key) {${[...skipped].map((key) => ` case ${JSON.stringify(key)}:`).join('')} continue; }`,
    '  out[key] = input[key];',
    '}',
    'return out;',
    '};',
  );
  try {
    return makeFunction('UNSURE', 'runs', lines.join('\n'))(UNSURE, runs) as FastCheck;
  } catch {
    return undefined;
  }
}

function record(keyType: FastSchema, valueType: FastSchema): FastSchema {
  return schema((input) => {
    if (!isPlainObject(input)) return UNSURE;
    const out: Record<string, unknown> = {};
    for (const key of Reflect.ownKeys(input)) {
      if (key === '__proto__' || !Object.prototype.propertyIsEnumerable.call(input, key)) continue;
      if (typeof key !== 'string') return UNSURE;
      const outKey = keyType.run(key);
      if (typeof outKey !== 'string') return UNSURE;
      if (outKey === '__proto__') continue;
      const value = valueType.run(input[key]);
      if (value === UNSURE) return UNSURE;
      out[outKey] = value;
    }
    return out;
  });
}

function array(element: FastSchema): FastSchema {
  return schema((input) => {
    if (!Array.isArray(input)) return UNSURE;
    const out = new Array<unknown>(input.length);
    for (let i = 0; i < input.length; i++) {
      const value = element.run(input[i]);
      if (value === UNSURE) return UNSURE;
      out[i] = value;
    }
    return out;
  });
}

/**
 * The definition's functions on these checks, typed as the definition's zod (as webhook-schemas.ts
 * does for zod/mini): only `run` is used on what it builds. `minLength` vouches only for strings of
 * at least twice the minimum in UTF-16 units or a minimum of 1 (where zod counts code points, the
 * two agree); `int` for safe integers; `superRefine` when the refinement adds no issue. An object
 * check is compiled for its shape after `compileAfter` checks (0: from the start; Infinity: never)
 * with `makeFunction`.
 */
export function fastWebhookFunctions(
  compileAfter: number = COMPILE_AFTER,
  makeFunction: MakeFunction = Function as unknown as MakeFunction,
) {
  return {
    array,
    boolean: () => isBoolean,
    enum: (values: readonly string[]) => {
      const members = new Set<unknown>(values);
      return schema((input) => (members.has(input) ? input : UNSURE));
    },
    int: (): Refinement => ({ refine: (value: number) => Number.isSafeInteger(value) }),
    looseObject: looseObjectWith(compileAfter, makeFunction),
    minLength: (minimum: number): Refinement => ({
      refine: (value: string) => value.length >= minimum && (minimum <= 1 || value.length >= 2 * minimum),
    }),
    nullish: (inner: FastSchema) =>
      schema((input) => (input === undefined || input === null ? input : inner.run(input)), true),
    number: () => isNumber,
    optional: (inner: FastSchema) => schema((input) => (input === undefined ? undefined : inner.run(input)), true),
    record,
    string: () => isString,
    superRefine: (refinement: (value: unknown, ctx: { addIssue(issue: unknown): void }) => void): Refinement => {
      // One context for every call: a refinement runs to its end before the next can start.
      let passed = true;
      const ctx = {
        addIssue: () => {
          passed = false;
        },
      };
      return {
        refine: (value: unknown) => {
          passed = true;
          refinement(value, ctx);
          return passed;
        },
      };
    },
    unknown: () => isUnknown,
  } satisfies Record<keyof WebhookZod, unknown>;
}

export const fastWebhookZod = fastWebhookFunctions() as unknown as WebhookZod;

/** The fast check of a schema the definition built on fastWebhookZod. */
export function fastCheck(built: unknown): FastCheck {
  return (built as FastSchema).run;
}
