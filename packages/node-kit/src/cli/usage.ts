import { closestMatch } from './suggest.js';

export interface UsageErrorDetails {
  /** The command whose help to point at (`start`, `fleet`, `keys derive`); none: the program's help. */
  command?: string;
  /** What the user probably meant, e.g. `--count` or `--transport mqtt`. */
  suggestion?: string;
}

/** A command line that cannot run: nothing was done; the message says what is wrong (exit code 2). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly command: string | undefined;
  readonly suggestion: string | undefined;

  constructor(message: string, details: UsageErrorDetails = {}) {
    super(message);
    this.command = details.command;
    this.suggestion = details.suggestion;
  }
}

/** The exit code of a usage error in every dpskit CLI. */
export const EXIT_USAGE = 2;

/**
 * How every dpskit CLI reports a usage error on stderr:
 * ```
 * device-sim: unknown option --coutn
 * Did you mean --count?
 * Run "device-sim fleet --help" for the options.
 * ```
 */
export function formatUsageError(program: string, err: UsageError): string {
  const help = err.command ? `${program} ${err.command} --help` : `${program} --help`;
  const suggestion = err.suggestion ? `Did you mean ${err.suggestion}?\n` : '';
  return `${program}: ${err.message}\n${suggestion}Run "${help}" for the options.\n`;
}

/** Writes the usage error as every dpskit CLI does (see `formatUsageError`); returns the exit code, 2. */
export function reportUsageError(
  program: string,
  stderr: { write(text: string): unknown },
  err: UsageError,
): typeof EXIT_USAGE {
  stderr.write(formatUsageError(program, err));
  return EXIT_USAGE;
}

/**
 * Runs a CLI's argument parser. A `UsageError` is reported on `stderr` (`reportUsageError`) and
 * comes back as `{ ok: false, exitCode: 2 }` for the CLI to return; any other error is a bug and
 * propagates.
 */
export function parseCommandLine<T>(
  program: string,
  stderr: { write(text: string): unknown },
  parse: () => T,
): { ok: true; value: T } | { ok: false; exitCode: typeof EXIT_USAGE } {
  try {
    return { ok: true, value: parse() };
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return { ok: false, exitCode: reportUsageError(program, stderr, err) };
  }
}

/** An unknown command word, with the closest known one as the suggestion. */
export function unknownCommand(
  word: string,
  known: readonly string[],
  details: Omit<UsageErrorDetails, 'suggestion'> & { label?: string } = {},
): UsageError {
  const suggestion = closestMatch(word, known);
  return new UsageError(`unknown ${details.label ?? 'command'} "${word}"`, {
    ...(details.command !== undefined ? { command: details.command } : {}),
    ...(suggestion !== undefined ? { suggestion } : {}),
  });
}

/** `value` if it is one of `choices`, else a usage error naming them and suggesting the closest. */
export function oneOf<const T extends string>(
  flag: string,
  value: string,
  choices: readonly T[],
  details: Omit<UsageErrorDetails, 'suggestion'> = {},
): T {
  if ((choices as readonly string[]).includes(value)) return value as T;
  const list =
    choices.length > 1 ? `${choices.slice(0, -1).join(', ')} or ${choices[choices.length - 1]}` : (choices[0] ?? '');
  const suggestion = closestMatch(value, choices);
  throw new UsageError(`${flag} must be ${list}, not "${value}"`, {
    ...details,
    ...(suggestion !== undefined ? { suggestion: `${flag} ${suggestion}` } : {}),
  });
}
