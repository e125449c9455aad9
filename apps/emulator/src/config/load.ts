import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { type FieldIssue, parseWith } from '@dpskit/contracts';
import { parse as parseYaml, YAMLParseError } from 'yaml';
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

/** Decodes JSON (`.json`) or YAML (anything else; YAML also reads JSON) and validates it. */
export function parseConfigText(text: string, source: string): EmulatorConfig {
  let decoded: unknown;
  if (extname(source).toLowerCase() === '.json') {
    try {
      decoded = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(source, [{ path: '', message: `not valid JSON: ${(err as Error).message}` }]);
    }
  } else {
    try {
      decoded = parseYaml(text, { prettyErrors: true });
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
  return parseConfig(decoded, source);
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
