import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { type FieldIssue, parseWith } from '@dpskit/contracts';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { firstInInitialTwin } from '../hub/core/twin.js';
import {
  type OutOfRangeInteger,
  outOfRangeIntegers,
  TWIN_INTEGER_MAX,
  TWIN_INTEGER_MIN,
} from '../hub/core/twin-integers.js';
import { type EmulatorConfig, emulatorConfigSchema } from './schema.js';

/** A config that cannot be used; the message names the file and every bad field by path. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly source: string,
    readonly issues: readonly FieldIssue[],
  ) {
    super(
      `Invalid emulator config (${source}):\n${issues.map((i) => `  - ${i.path ? `${i.path}: ` : ''}${i.message}`).join('\n')}`,
    );
  }
}

/** Validates a config object (already decoded) and applies defaults. */
export function parseConfig(input: unknown, source = 'config object'): EmulatorConfig {
  const result = parseWith(emulatorConfigSchema, input, 'emulator config');
  if (!result.ok) throw new ConfigError(source, result.error.issues);
  return result.value;
}

/** Where the config's enrollments hold an initial twin (paths as `outOfRangeIntegers` writes them). */
const CONFIG_TWINS = '(?:enrollmentGroups|individualEnrollments)\\[\\d+\\]\\.initialTwin';

/**
 * Decodes JSON (`.json`) or YAML (anything else; YAML also reads JSON) and validates it. Integers
 * outside IoT Hub's range in an enrollment's initialTwin are read from the text (JSON) or as
 * BigInt (YAML): parsed as numbers they are already rounded, and the hub would refuse them.
 */
export function parseConfigText(text: string, source: string): EmulatorConfig {
  let decoded: unknown;
  let integers: OutOfRangeInteger[];
  if (extname(source).toLowerCase() === '.json') {
    try {
      decoded = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(source, [{ path: '', message: `not valid JSON: ${(err as Error).message}` }]);
    }
    integers = outOfRangeIntegers(text);
  } else {
    try {
      integers = [];
      decoded = bigIntsToNumbers(parseYaml(text, { prettyErrors: true, intAsBigInt: true }), '', integers);
    } catch (err) {
      const where =
        err instanceof YAMLParseError && err.linePos
          ? `line ${err.linePos[0].line}, column ${err.linePos[0].col}: `
          : '';
      const message = (err as Error).message.split('\n')[0] ?? String(err);
      throw new ConfigError(source, [{ path: '', message: `not valid YAML: ${where}${message}` }]);
    }
  }
  if (decoded === null || decoded === undefined) {
    throw new ConfigError(source, [{ path: '', message: 'the file is empty' }]);
  }
  const integer = firstInInitialTwin(integers, CONFIG_TWINS);
  const issue = integer && { path: integer.path, message: integer.cause };
  try {
    const config = parseConfig(decoded, source);
    if (issue) throw new ConfigError(source, [issue]);
    return config;
  } catch (err) {
    if (issue && err instanceof ConfigError && err.issues.every((i) => i.path !== issue.path)) {
      throw new ConfigError(source, [...err.issues, issue]);
    }
    throw err;
  }
}

/**
 * A YAML document read with `intAsBigInt`, its integers made numbers again (as YAML reads them
 * without the option), those outside IoT Hub's twin range noted in `found` with their path.
 */
function bigIntsToNumbers(value: unknown, path: string, found: OutOfRangeInteger[], seen = new Set<object>()): unknown {
  if (typeof value === 'bigint') {
    if (value < TWIN_INTEGER_MIN || value > TWIN_INTEGER_MAX) found.push({ path, literal: String(value) });
    return Number(value);
  }
  // Aliases share one object (or hold themselves): each is converted once.
  if (typeof value !== 'object' || value === null || seen.has(value)) return value;
  seen.add(value);
  const object = value as Record<string, unknown>;
  for (const key of Object.keys(object)) {
    const at = Array.isArray(value) ? `${path}[${key}]` : path ? `${path}.${key}` : key;
    object[key] = bigIntsToNumbers(object[key], at, found, seen);
  }
  return value;
}

export function loadConfigFile(path: string): EmulatorConfig {
  const absolute = resolve(path);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'the file does not exist' : (err as Error).message;
    throw new ConfigError(absolute, [{ path: '', message: `cannot read the config file: ${reason}` }]);
  }
  return parseConfigText(text, absolute);
}
