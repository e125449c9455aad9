const BRAND = Symbol.for('dpskit.allocator.logFields');
/**
 * `util.inspect.custom`, which Node registers globally under this name (its documentation says so):
 * taken from the registry rather than imported, since this module is part of the served app and an
 * ES module's import of `node:util` builds a module facade with a copy of every export, on the way to
 * the local host's first answer (issue #13).
 */
const INSPECT_CUSTOM = Symbol.for('nodejs.util.inspect.custom');

/**
 * Structured fields passed as the last argument of `context.info(msg, fields)`. The Functions
 * worker renders log arguments with `util.format`, which cuts objects off at depth 2 (a request
 * body would show as `[Object]`); the custom inspect makes it print the fields as one JSON line
 * instead, while the local host recognises the wrapper and keeps the fields as structured data.
 */
export class LogFields {
  readonly [BRAND] = true;
  /**
   * @param jsonTexts for a field whose value was made by `JSON.parse` from a text and not changed
   *   since, that text (`logFields({ body }, { body: text })`): the local host's JSON lines then
   *   write the text in place of the value's `JSON.stringify` when they can tell that both are the
   *   same (log/json-line.ts), the same bytes for less work. It must be true: a value changed after
   *   the parse would be logged as the text says.
   */
  constructor(
    readonly fields: Record<string, unknown>,
    readonly jsonTexts?: Readonly<Record<string, string>>,
  ) {}

  [INSPECT_CUSTOM](): string {
    return JSON.stringify(this.fields);
  }

  toJSON(): Record<string, unknown> {
    return this.fields;
  }
}

export function logFields(fields: Record<string, unknown>, jsonTexts?: Readonly<Record<string, string>>): LogFields {
  return new LogFields(fields, jsonTexts);
}

/** Brand check rather than `instanceof`, so that two copies of this module still recognise each other. */
export function isLogFields(value: unknown): value is LogFields {
  return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true;
}
