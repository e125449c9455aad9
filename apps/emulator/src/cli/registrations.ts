import type { RegistrationRecord } from '../core/store.js';
import {
  formatColumns,
  parseStoreCommandLine,
  runStoreCommand,
  STATE_OPTIONS,
  type StoreAction,
  type StoreCommandIo,
} from './state-store.js';

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

export interface RegistrationsArgs {
  command: 'registrations';
  action: StoreAction | 'help';
  registrationId?: string;
  stateDir?: string;
  json: boolean;
}

/** `registrations <action> [id] [options]`; throws `UsageError` for what cannot run. */
export function parseRegistrationsArgs(argv: readonly string[]): RegistrationsArgs {
  const { action, id, stateDir, json } = parseStoreCommandLine(
    'registrations',
    argv,
    STATE_OPTIONS,
    'a registration ID',
  );
  return {
    command: 'registrations',
    action,
    json,
    ...(stateDir !== undefined ? { stateDir } : {}),
    ...(id !== undefined ? { registrationId: id } : {}),
  };
}

export type RegistrationsIo = StoreCommandIo;

/** Exit codes: 0 done, 1 no state folder or no such record. */
export function runRegistrations(args: RegistrationsArgs, io: RegistrationsIo): number {
  return runStoreCommand(args, io, REGISTRATIONS_USAGE, (store, stateDir) => {
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
  });
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
  const count = `${records.length} registration record${records.length === 1 ? '' : 's'} in ${stateDir}`;
  return records.length ? `${formatColumns(header, rows)}\n${count}\n` : `${count}\n`;
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
