import { inspect } from 'node:util';

const BRAND = Symbol.for('dpskit.allocator.logFields');

/**
 * Structured fields passed as the last argument of `context.info(msg, fields)`. The Functions
 * worker renders log arguments with `util.format`, which cuts objects off at depth 2 (a request
 * body would show as `[Object]`); the custom inspect makes it print the fields as one JSON line
 * instead, while the local host recognises the wrapper and keeps the fields as structured data.
 */
export class LogFields {
  readonly [BRAND] = true;
  constructor(readonly fields: Record<string, unknown>) {}

  [inspect.custom](): string {
    return JSON.stringify(this.fields);
  }

  toJSON(): Record<string, unknown> {
    return this.fields;
  }
}

export function logFields(fields: Record<string, unknown>): LogFields {
  return new LogFields(fields);
}

/** Brand check rather than `instanceof`, so that two copies of this module still recognise each other. */
export function isLogFields(value: unknown): value is LogFields {
  return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true;
}
