import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseOptions, UsageError, unknownCommand } from '@dpskit/node-kit';
import type { RegistrationRecord } from '../core/store.js';
import { SqliteStore } from '../store/sqlite.js';

export const REGISTRATIONS_USAGE = `Usage: dps-emulator registrations list [--state-dir dir] [--json]
       dps-emulator registrations show <registrationId> [--state-dir dir] [--json]
       dps-emulator registrations delete <registrationId> [--state-dir dir] [--json]

The registration records in an emulator's state folder (its SQLite store), without opening SQLite.
Works while the emulator runs: after "delete", the device's next registration is a first one.

Options:
  --state-dir <dir>  the emulator's state folder (default ./.dpskit/emulator)
  --json             print JSON (list: an array of records; show: one record; delete: the outcome)
  -h, --help         show this help
`;

const ACTIONS = ['list', 'show', 'delete'] as const;
type Action = (typeof ACTIONS)[number];

export interface RegistrationsArgs {
  command: 'registrations';
  action: Action | 'help';
  registrationId?: string;
  stateDir?: string;
  json: boolean;
}

const OPTIONS = {
  'state-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** `registrations <action> [id] [options]`; throws `UsageError` for what cannot run. */
export function parseRegistrationsArgs(argv: readonly string[]): RegistrationsArgs {
  const { values, positionals } = parseOptions(argv, {
    options: OPTIONS,
    allowPositionals: true,
    command: 'registrations',
  });
  const details = { command: 'registrations' };
  const json = values.json ?? false;
  const base = {
    command: 'registrations' as const,
    json,
    ...(values['state-dir'] ? { stateDir: values['state-dir'] } : {}),
  };
  if (values.help) return { ...base, action: 'help' };
  const [action, id, ...rest] = positionals;
  if (action === undefined) throw new UsageError('Missing the action: list, show <id> or delete <id>', details);
  if (!(ACTIONS as readonly string[]).includes(action))
    throw unknownCommand(action, ACTIONS, { ...details, label: 'action' });
  if (action === 'list') {
    if (id !== undefined) throw new UsageError(`unexpected argument "${id}"`, details);
    return { ...base, action: 'list' };
  }
  if (id === undefined || id.trim() === '') throw new UsageError(`${action} needs a registration ID`, details);
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`, details);
  return { ...base, action: action as Action, registrationId: id };
}

export interface RegistrationsIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Exit codes: 0 done, 1 no state folder or no such record. */
export function runRegistrations(args: RegistrationsArgs, io: RegistrationsIo): number {
  if (args.action === 'help') {
    io.stdout.write(REGISTRATIONS_USAGE);
    return 0;
  }
  const stateDir = resolve(args.stateDir ?? join('.dpskit', 'emulator'));
  const dbPath = join(stateDir, 'emulator.db');
  // Reading must not create a state folder where there is none.
  if (!existsSync(dbPath)) {
    io.stderr.write(
      `dps-emulator: no emulator state in ${stateDir} (no emulator.db): start the emulator there first, or pass --state-dir.\n`,
    );
    return 1;
  }
  const store = SqliteStore.open(dbPath);
  try {
    if (args.action === 'list') {
      const records = store.list();
      io.stdout.write(args.json ? `${JSON.stringify(records, null, 2)}\n` : formatTable(records, stateDir));
      return 0;
    }
    const id = args.registrationId as string;
    const notFound = () => {
      io.stderr.write(`dps-emulator: no registration record "${id}" in ${stateDir}.\n`);
      return 1;
    };
    if (args.action === 'show') {
      const record = store.get(id);
      if (!record) return notFound();
      io.stdout.write(args.json ? `${JSON.stringify(record, null, 2)}\n` : formatRecord(record));
      return 0;
    }
    if (!store.delete(id)) return notFound();
    io.stdout.write(
      args.json
        ? `${JSON.stringify({ deleted: true, registrationId: id })}\n`
        : `Deleted the registration record "${id}".\n`,
    );
    return 0;
  } finally {
    store.close();
  }
}

function formatTable(records: RegistrationRecord[], stateDir: string): string {
  const rows = records.map((r) => [
    r.registrationId,
    r.result.status,
    r.result.assignedHub ?? (r.result.errorCode !== undefined ? `error ${r.result.errorCode}` : ''),
    `${r.enrollment.kind} ${r.enrollment.id}`,
    r.result.lastUpdatedDateTimeUtc ?? '',
  ]);
  const header = ['REGISTRATION ID', 'STATUS', 'HUB / ERROR', 'ENROLLMENT', 'LAST UPDATED'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const count = `${records.length} registration record${records.length === 1 ? '' : 's'} in ${stateDir}`;
  return records.length ? `${[line(header), ...rows.map(line)].join('\n')}\n${count}\n` : `${count}\n`;
}

function formatRecord(record: RegistrationRecord): string {
  const lines = [
    `registrationId  ${record.registrationId}`,
    `enrollment      ${record.enrollment.kind} ${record.enrollment.id}`,
    `status          ${record.result.status}`,
  ];
  if (record.result.assignedHub) lines.push(`assignedHub     ${record.result.assignedHub}`);
  if (record.result.deviceId) lines.push(`deviceId        ${record.result.deviceId}`);
  if (record.result.errorCode !== undefined)
    lines.push(`error           ${record.result.errorCode} ${record.result.errorMessage ?? ''}`.trimEnd());
  if (record.assignment) lines.push(`current hub     ${record.assignment.hub} (${record.assignment.substatus})`);
  if (record.result.lastUpdatedDateTimeUtc) lines.push(`lastUpdated     ${record.result.lastUpdatedDateTimeUtc}`);
  lines.push('', 'Full record: --json');
  return `${lines.join('\n')}\n`;
}
