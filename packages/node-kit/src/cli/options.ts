import { type ParseArgsConfig, parseArgs } from 'node:util';
import { closestMatch } from './suggest.js';
import { UsageError } from './usage.js';

/** One option of a command: `--name <value>` (string) or `--name` (boolean), maybe with `-x`. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** May be given more than once; the values are collected in order. */
  multiple?: boolean;
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

type ValueOf<S extends OptionSpec> = S['type'] extends 'boolean'
  ? S['multiple'] extends true
    ? boolean[]
    : boolean
  : S['multiple'] extends true
    ? string[]
    : string;

export type OptionValues<T extends OptionTable> = { -readonly [K in keyof T]?: ValueOf<T[K]> };

export interface ParseOptionsConfig<T extends OptionTable> {
  options: T;
  /** Allow arguments that are not options (default false: each is a usage error). */
  allowPositionals?: boolean;
  /** The command the help pointer of an error names (`start`, `fleet`, ...). */
  command?: string;
}

/**
 * Parses a command line against an option table, refusing what does not fit with a `UsageError`
 * in dpskit's own words: `unknown option --coutn` (suggesting `--count`), `--count needs a value`,
 * `--json takes no value`, `unexpected argument "x"`. Node's `parseArgs` only splits the command
 * line into tokens here (`strict: false, tokens: true`): its strict mode would throw its own
 * messages, which name no suggestion and would have to be reworded by pattern.
 */
export function parseOptions<T extends OptionTable>(
  args: readonly string[],
  config: ParseOptionsConfig<T>,
): { values: OptionValues<T>; positionals: string[] } {
  const table: OptionTable = config.options;
  const details = config.command !== undefined ? { command: config.command } : {};
  const { tokens } = parseArgs({
    args: [...args],
    options: table as ParseArgsConfig['options'],
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  for (const token of tokens) {
    if (token.kind === 'option-terminator') continue;
    if (token.kind === 'positional') {
      if (!config.allowPositionals) throw new UsageError(`unexpected argument "${token.value}"`, details);
      positionals.push(token.value);
      continue;
    }
    const spec = Object.hasOwn(table, token.name) ? table[token.name] : undefined;
    if (!spec) {
      const known = Object.keys(table);
      const guess = token.rawName.startsWith('--') ? closestMatch(token.name, known) : undefined;
      throw new UsageError(`unknown option ${token.rawName}`, {
        ...details,
        ...(guess !== undefined ? { suggestion: `--${guess}` } : {}),
      });
    }
    const flag = `--${token.name}`;
    let value: string | boolean;
    if (spec.type === 'string') {
      if (token.value === undefined) throw new UsageError(`${flag} needs a value`, details);
      // `--payload --json`, `--timeout -1`: the next word looks like an option, so it is not taken as
      // the value; a value that does start with "-" can still be given inline.
      if (!token.inlineValue && token.value.startsWith('--')) throw new UsageError(`${flag} needs a value`, details);
      if (!token.inlineValue && token.value.startsWith('-') && token.value !== '-') {
        throw new UsageError(
          `${flag} needs a value (a value starting with "-" is written ${flag}=${token.value})`,
          details,
        );
      }
      value = token.value;
    } else {
      if (token.value !== undefined) throw new UsageError(`${flag} takes no value`, details);
      value = true;
    }
    if (spec.multiple) values[token.name] = [...((values[token.name] as unknown[] | undefined) ?? []), value];
    else values[token.name] = value;
  }
  return { values: values as OptionValues<T>, positionals };
}
