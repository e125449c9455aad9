import { LOG_LEVELS, type LogLevel, oneOf, parseOptions, UsageError } from '@dpskit/node-kit';
import { DEFAULT_PORT } from './allocator-host.js';

export type OutputFormat = 'human' | 'json';

export interface CliOptions {
  /** The Functions app folder to serve; undefined: the allocator's own tutorial app. */
  appDir: string | undefined;
  /** The function whose webhook URL is printed. */
  functionName: string | undefined;
  port: number;
  host: string | undefined;
  /** Explicit choice; undefined means: human on a terminal, JSON lines otherwise. */
  format: OutputFormat | undefined;
  /** --log-level; undefined: ALLOCATOR_LOG_LEVEL, else info. */
  logLevel: LogLevel | undefined;
  /** Where to write the ready file (JSON) once listening; removed on stop. */
  readyFile: string | undefined;
  help: boolean;
}

export const USAGE = `Usage: dpskit-allocator start [appDir] [options]
       dpskit-allocator package [appDir] [--out <dir>] [--no-zip]   (see dpskit-allocator package --help)

Serves an Azure Functions app (Node.js v4 model) over HTTP without Core Tools, as \`func start\`
does: the modules its package.json "main" names, on its host.json route prefix, with its
local.settings.json Values in the environment. Without appDir: dpskit's tutorial allocator
(POST /api/allocate). In the dpskit repository: pnpm --filter @dpskit/allocator start [-- options].

Options:
      --function <name>  the webhook function whose URL is printed (default: "allocate",
                         else the app's only POST function)
  -p, --port <n>   port to listen on, 0 for a free one (default ${DEFAULT_PORT})
      --host <h>   interface to listen on (default: 127.0.0.1 and ::1, i.e. localhost)
      --json       log one JSON object per line (default when stdout is not a terminal)
      --pretty     log human-readable lines (default on a terminal)
      --log-level <level>  debug, info, warn or error: the least severe lines printed
                   (default: ALLOCATOR_LOG_LEVEL, else info, as the Functions host logs Information)
      --ready-file <file>  once listening, write the URL, port, functions and webhook URL there
                   as JSON (for scripts: wait for the file); removed on stop
  -h, --help       show this help

Environment (or local.settings.json Values):
  ALLOCATOR_FUNCTION_KEY   the function key callers must send (?code= or x-functions-key);
                           when unset or empty a key is generated and the webhook URL printed.
  ALLOCATOR_LOG_LEVEL      the default of --log-level.`;

const OPTIONS = {
  function: { type: 'string' },
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  json: { type: 'boolean' },
  pretty: { type: 'boolean' },
  'log-level': { type: 'string' },
  'ready-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Reads `dpskit-allocator [start] [appDir] [options]`; throws `UsageError` for what cannot run. */
export function parseCliArgs(argv: readonly string[]): CliOptions {
  // `pnpm start -- --port 1` forwards the `--` separator itself; it is not an end-of-options mark here.
  const args = argv[0] === '--' ? argv.slice(1) : [...argv];
  const parsed = parseOptions(args, { options: OPTIONS, allowPositionals: true, command: 'start' });
  const { values } = parsed;
  const usage = (message: string) => new UsageError(message, { command: 'start' });
  const positionals = parsed.positionals[0] === 'start' ? parsed.positionals.slice(1) : parsed.positionals;
  if (positionals.length > 1) throw usage(`Unexpected argument '${positionals[1]}': give at most one app folder.`);
  const appDir = positionals[0];
  if (appDir !== undefined && appDir.trim() === '') throw usage('The app folder is empty.');
  if (values.function !== undefined && values.function.trim() === '') throw usage('Option --function is empty.');
  if (values.json && values.pretty) throw usage('Options --json and --pretty exclude each other.');
  if (values['ready-file'] !== undefined && values['ready-file'].trim() === '') {
    throw usage('Option --ready-file needs a file path.');
  }

  let port = DEFAULT_PORT;
  if (values.port !== undefined) {
    const parsedPort = parsePort(values.port);
    if (parsedPort === undefined) throw usage(`Invalid --port '${values.port}': expected an integer from 0 to 65535.`);
    port = parsedPort;
  }
  if (values.host !== undefined && values.host.trim() === '') throw usage('Option --host is empty.');
  return {
    appDir,
    functionName: values.function,
    port,
    host: values.host,
    format: values.json ? 'json' : values.pretty ? 'human' : undefined,
    logLevel:
      values['log-level'] === undefined
        ? undefined
        : oneOf('--log-level', values['log-level'], LOG_LEVELS, { command: 'start' }),
    readyFile: values['ready-file'],
    help: values.help ?? false,
  };
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}
