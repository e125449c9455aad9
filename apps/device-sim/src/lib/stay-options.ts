import { InvalidOptionError } from './errors.js';
import { checkMilliseconds, type Named } from './inputs.js';

// The options of a device that stays on its hub (`connect.stay`), and their checks: no SDK here, so
// the command line parses `--method` without loading it.

/** How a device answers a direct method: a status and a JSON payload, or `'no-answer'`. */
export type MethodAnswer = { status: number; payload?: unknown } | 'no-answer';

/** The method name that stands for every method the answers do not name. */
export const ANY_METHOD = '*';

/** IoT Hub carries a method's status as a 32-bit integer; the SDK refuses 0 (it must be truthy). */
const MAX_METHOD_STATUS = 2_147_483_647;
/** IoT Hub's limit on a method name. */
const MAX_METHOD_NAME = 100;
/** At most this many named answers. */
export const MAX_METHOD_ANSWERS = 100;

/** `telemetryIntervalMs` at least this (a device sending faster than this is a load test for `fleet`). */
export const MIN_TELEMETRY_INTERVAL_MS = 100;

const EXAMPLE = `e.g. --method 'reboot=200:{"rebooting":true}', --method 'getLog=404' or --method '*=501'`;

/**
 * Parses `name=status[:json-payload]` (or `name=none`, no answer) as `--method` takes it: the name
 * up to the first `=` (`*` for every other method), a whole status, and after the first `:` the
 * answer's payload as JSON.
 */
export function parseMethodAnswer(text: string, source = '--method'): { name: string; answer: MethodAnswer } {
  const eq = text.indexOf('=');
  if (eq <= 0) {
    throw new InvalidOptionError('methods', `${source} "${text}" is not name=status[:json-payload]: ${EXAMPLE}`);
  }
  const name = text.slice(0, eq);
  const rest = text.slice(eq + 1);
  checkMethodName({ field: 'methods', value: name, source });
  if (rest.trim().toLowerCase() === 'none') return { name, answer: 'no-answer' };
  const colon = rest.indexOf(':');
  const statusText = (colon < 0 ? rest : rest.slice(0, colon)).trim();
  if (!/^\d+$/.test(statusText) || Number(statusText) < 1 || Number(statusText) > MAX_METHOD_STATUS) {
    throw new InvalidOptionError(
      'methods',
      `${source} "${name}": the status must be a whole number from 1 to ${MAX_METHOD_STATUS} (or none: no answer), not "${statusText}"`,
    );
  }
  const status = Number(statusText);
  if (colon < 0) return { name, answer: { status } };
  const payloadText = rest.slice(colon + 1);
  try {
    return { name, answer: { status, payload: JSON.parse(payloadText) } };
  } catch (err) {
    throw new InvalidOptionError(
      'methods',
      `${source} "${name}": the payload after "${statusText}:" is not JSON (${err instanceof Error ? err.message : String(err)}): ${EXAMPLE}`,
    );
  }
}

function checkMethodName(input: Named<string>): void {
  const source = input.source ?? input.field;
  if (input.value.length > MAX_METHOD_NAME || /[\s/?#+]/.test(input.value) || input.value === '') {
    throw new InvalidOptionError(
      input.field,
      `${source}: "${input.value}" is not a method name (1 to ${MAX_METHOD_NAME} characters, no spaces, /, ?, # or +; * stands for every other method)`,
    );
  }
}

/** The library's `stay` options, checked where they enter (`registerDevice`, `connectToHub`). */
export function checkStayOptions(stay: {
  methods?: Readonly<Record<string, MethodAnswer>>;
  telemetryIntervalMs?: number;
}): void {
  const names = Object.keys(stay.methods ?? {});
  if (names.length > MAX_METHOD_ANSWERS) {
    throw new InvalidOptionError('methods', `at most ${MAX_METHOD_ANSWERS} method answers, not ${names.length}`);
  }
  for (const name of names) {
    checkMethodName({ field: 'methods', value: name, source: 'methods' });
    const answer = stay.methods?.[name];
    if (answer === 'no-answer') continue;
    if (
      typeof answer !== 'object' ||
      answer === null ||
      !Number.isInteger(answer.status) ||
      answer.status < 1 ||
      answer.status > MAX_METHOD_STATUS
    ) {
      throw new InvalidOptionError(
        'methods',
        `methods["${name}"] must be 'no-answer' or { status: 1 to ${MAX_METHOD_STATUS}, payload?: JSON value }`,
      );
    }
  }
  if (stay.telemetryIntervalMs !== undefined) {
    checkMilliseconds({ field: 'telemetryIntervalMs', value: stay.telemetryIntervalMs });
    if (stay.telemetryIntervalMs < MIN_TELEMETRY_INTERVAL_MS) {
      throw new InvalidOptionError(
        'telemetryIntervalMs',
        `telemetryIntervalMs must be at least ${MIN_TELEMETRY_INTERVAL_MS} ms, not ${stay.telemetryIntervalMs}`,
      );
    }
  }
}
