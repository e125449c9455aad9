import { decodeBase64Key, KeyError, registrationIdProblem } from '@dpskit/contracts/keys';
import { closestMatch } from '@dpskit/node-kit';
import { InvalidOptionError } from './errors.js';
import { TRANSPORTS, type TransportName } from './types.js';

// The checks of every input device-sim accepts, written once. The library runs them where its
// options enter (`registerDevice`, `runFleet`) naming the option (`idScope`); the command line runs
// the same ones where its flags and variables enter, naming those (`--id-scope`, `DPS_ID_SCOPE`).
// Nothing here loads the SDK, so parsing a command line stays cheap.

export const DEFAULT_CONCURRENCY = 50;
export const MAX_FLEET_COUNT = 10_000_000;
export const MAX_CONCURRENCY = 100_000;
export const MAX_WORKERS = 256;
/** Retries of one device's registration after transient failures. */
export const MAX_RETRIES = 100;

/** An input and the name a message should call it by: a library option or a flag/variable. */
export interface Named<T> {
  /** The library option it is or becomes, e.g. `idScope`: the error's `field`. */
  field: string;
  value: T;
  /** What the user wrote it as: `--id-scope`, `DPS_ID_SCOPE`, or the option name itself. */
  source?: string;
}

const sourceOf = (input: Named<unknown>): string => input.source ?? input.field;

export function checkIdScope(input: Named<string>): string {
  if (!/^[A-Za-z0-9]+$/.test(input.value)) {
    throw new InvalidOptionError(
      input.field,
      `${sourceOf(input)} "${input.value}" is not an ID scope (letters and digits, e.g. 0ne00000A0A)`,
    );
  }
  return input.value;
}

export function checkRegistrationId(input: Named<string>): string {
  const problem = registrationIdProblem(input.value);
  if (problem) throw new InvalidOptionError(input.field, input.source ? `${input.source}: ${problem}` : problem);
  return input.value;
}

export function checkTransport(input: Named<string>): TransportName {
  const value = input.value as TransportName;
  if (!TRANSPORTS.includes(value)) {
    const source = sourceOf(input);
    const guess = closestMatch(String(input.value), TRANSPORTS);
    throw new InvalidOptionError(
      input.field,
      `${source} must be ${TRANSPORTS.slice(0, -1).join(', ')} or ${TRANSPORTS.at(-1)}, not "${String(input.value)}"`,
      guess === undefined ? undefined : source.startsWith('-') ? `${source} ${guess}` : `${source}=${guess}`,
    );
  }
  return value;
}

/** A symmetric key as DPS shows it: base64 of at least 16 bytes. */
export function checkKey(input: Named<string>): string {
  try {
    decodeBase64Key(input.value, sourceOf(input));
  } catch (err) {
    if (err instanceof KeyError) {
      throw new InvalidOptionError(
        input.field,
        `${err.message}: pass the key exactly as DPS shows it (base64, usually ending in =)`,
      );
    }
    throw err;
  }
  return input.value;
}

/** PEM text of one or more CA certificates. */
export function checkCaPem(input: Named<string>, what = `${sourceOf(input)} must be PEM text`): string {
  if (!input.value.includes('-----BEGIN CERTIFICATE-----')) {
    throw new InvalidOptionError(input.field, `${what} (no "-----BEGIN CERTIFICATE-----" line)`);
  }
  return input.value;
}

/** A whole number in [min, max]; `unit` is said after the range, e.g. ` (milliseconds)`. */
export function checkWholeNumber(input: Named<number | string>, min: number, max: number, unit = ''): number {
  const value = typeof input.value === 'string' && /^\d+$/.test(input.value.trim()) ? Number(input.value) : input.value;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(
      input.field,
      `${sourceOf(input)} must be a whole number from ${min} to ${max}${unit}, not ${typeof input.value === 'string' ? `"${input.value}"` : input.value}`,
    );
  }
  return value;
}

/** A duration option of the library: a finite, non-negative number of milliseconds. */
export function checkMilliseconds(input: Named<number>): number {
  if (!(Number.isFinite(input.value) && input.value >= 0)) {
    throw new InvalidOptionError(input.field, `${sourceOf(input)} must be a non-negative number of milliseconds`);
  }
  return input.value;
}
