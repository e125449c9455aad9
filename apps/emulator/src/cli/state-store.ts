import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type OptionValues, parseOptions, UsageError, unknownCommand } from '@dpskit/node-kit';
import { SqliteStore } from '../store/sqlite.js';

// What the commands over an emulator's state folder (`registrations`, `enrollments`) share: their
// options, their `<action> [id]` command line, and opening the store without creating one.

export const STORE_ACTIONS = ['list', 'show', 'delete'] as const;
export type StoreAction = (typeof STORE_ACTIONS)[number];

export const STATE_OPTIONS = {
  'state-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface StoreCommandLine<V> {
  action: StoreAction | 'help';
  /** The record's id (show, delete). */
  id?: string;
  stateDir?: string;
  json: boolean;
  /** Every option's value, the command's own ones included. */
  values: V;
}

/**
 * `<command> list|show <id>|delete <id> [options]`; throws `UsageError` for what cannot run.
 * `idName` says what the id is in errors ("a registration ID").
 */
export function parseStoreCommandLine<T extends typeof STATE_OPTIONS>(
  command: string,
  argv: readonly string[],
  options: T,
  idName: string,
): StoreCommandLine<OptionValues<T>> {
  const { values, positionals } = parseOptions(argv, { options, allowPositionals: true, command });
  const details = { command };
  // Every table extends STATE_OPTIONS, so these values have its types.
  const common = values as OptionValues<typeof STATE_OPTIONS>;
  const stateDir = common['state-dir'];
  const base = { json: common.json ?? false, values, ...(stateDir ? { stateDir } : {}) };
  if (common.help) return { ...base, action: 'help' };
  const [action, id, ...rest] = positionals;
  if (action === undefined) throw new UsageError('Missing the action: list, show <id> or delete <id>', details);
  if (!(STORE_ACTIONS as readonly string[]).includes(action))
    throw unknownCommand(action, STORE_ACTIONS, { ...details, label: 'action' });
  if (action === 'list') {
    if (id !== undefined) throw new UsageError(`unexpected argument "${id}"`, details);
    return { ...base, action: 'list' };
  }
  if (id === undefined || id.trim() === '') throw new UsageError(`${action} needs ${idName}`, details);
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`, details);
  return { ...base, action: action as StoreAction, id };
}

/** The state folder a command reads: `--state-dir`, else the emulator's default. */
export function stateDirOf(stateDir: string | undefined): string {
  return resolve(stateDir ?? join('.dpskit', 'emulator'));
}

/**
 * Opens the SQLite store of a state folder, or says on `stderr` that there is none and returns
 * undefined: reading must never create a state folder. Works while the emulator runs (WAL).
 */
export function openStateStore(stateDir: string, stderr: NodeJS.WritableStream): SqliteStore | undefined {
  const dbPath = join(stateDir, 'emulator.db');
  if (!existsSync(dbPath)) {
    stderr.write(
      `dps-emulator: no emulator state in ${stateDir} (no emulator.db): start the emulator there first, or pass --state-dir.\n`,
    );
    return undefined;
  }
  return SqliteStore.open(dbPath);
}

/** Lines of cells in columns two spaces apart, the header first. */
export function formatColumns(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export interface StoreCommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/**
 * Runs a store command: its help, or `run` over the state folder's store (closed afterwards).
 * Exit code 1 when the folder has no store.
 */
export function runStoreCommand(
  args: { action: StoreAction | 'help'; stateDir?: string },
  io: StoreCommandIo,
  usage: string,
  run: (store: SqliteStore, stateDir: string) => number,
): number {
  if (args.action === 'help') {
    io.stdout.write(usage);
    return 0;
  }
  const stateDir = stateDirOf(args.stateDir);
  const store = openStateStore(stateDir, io.stderr);
  if (!store) return 1;
  try {
    return run(store, stateDir);
  } finally {
    store.close();
  }
}
