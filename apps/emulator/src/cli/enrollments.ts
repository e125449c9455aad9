import { maskWebhookUrl } from '@dpskit/contracts';
import { oneOf } from '@dpskit/node-kit';
import { EnrollmentService } from '../core/enrollments/service.js';
import type { EnrollmentKind, StoredEnrollment } from '../core/enrollments/store.js';
import { attestationView, serviceView } from '../core/enrollments/views.js';
import type { SqliteStore } from '../store/sqlite.js';
import {
  formatColumns,
  parseStoreCommandLine,
  runStoreCommand,
  STATE_OPTIONS,
  type StoreAction,
  type StoreCommandIo,
} from './state-store.js';

export const ENROLLMENTS_USAGE = `Usage: dps-emulator enrollments list [--kind group|individual] [--state-dir dir] [--json] [--show-keys]
       dps-emulator enrollments show <id> [--kind group|individual] [--state-dir dir] [--json] [--show-keys]
       dps-emulator enrollments delete <id> [--kind group|individual] [--state-dir dir] [--json]

The enrollment groups and individual enrollments in an emulator's state folder (its SQLite store:
the config file's, seeded on start, and the service API's), without opening SQLite. Works while the
emulator runs: a deleted enrollment no longer admits devices at their next registration. One seeded
from the config file comes back on the next start while the file declares it.

Options:
  --kind <kind>      group or individual (list: only that kind; show, delete: needed when a group
                     and an individual enrollment share the id)
  --state-dir <dir>  the emulator's state folder (default ./.dpskit/emulator)
  --json             print JSON: records as the service API answers them (list: an array, groups with
                     enrollmentGroupId, individual enrollments with registrationId; delete: the outcome)
  --show-keys        include the symmetric keys and the webhook URL's query (masked as ?**** otherwise)
  -h, --help         show this help
`;

const OPTIONS = {
  ...STATE_OPTIONS,
  kind: { type: 'string' },
  'show-keys': { type: 'boolean' },
} as const;

const KINDS = ['group', 'individual'] as const satisfies readonly EnrollmentKind[];
const KIND_NAMES: Record<EnrollmentKind, string> = { group: 'enrollment group', individual: 'individual enrollment' };

export interface EnrollmentsArgs {
  command: 'enrollments';
  action: StoreAction | 'help';
  id?: string;
  kind?: EnrollmentKind;
  stateDir?: string;
  json: boolean;
  showKeys: boolean;
}

/** `enrollments <action> [id] [options]`; throws `UsageError` for what cannot run. */
export function parseEnrollmentsArgs(argv: readonly string[]): EnrollmentsArgs {
  const { action, id, stateDir, json, values } = parseStoreCommandLine(
    'enrollments',
    argv,
    OPTIONS,
    'an enrollment ID (a group id or a registration ID)',
  );
  const showKeys = values['show-keys'] ?? false;
  const kind = values.kind !== undefined ? oneOf('--kind', values.kind, KINDS, { command: 'enrollments' }) : undefined;
  return {
    command: 'enrollments',
    action,
    json,
    showKeys,
    ...(id !== undefined ? { id } : {}),
    ...(kind !== undefined ? { kind } : {}),
    ...(stateDir !== undefined ? { stateDir } : {}),
  };
}

export type EnrollmentsIo = StoreCommandIo;

/** Exit codes: 0 done, 1 no state folder, no such enrollment, or an id both kinds have without --kind. */
export function runEnrollments(args: EnrollmentsArgs, io: EnrollmentsIo): number {
  return runStoreCommand(args, io, ENROLLMENTS_USAGE, (store, stateDir) => {
    if (args.action === 'list') {
      const kinds = args.kind ? [args.kind] : KINDS;
      const enrollments = kinds.flatMap((kind) => store.listEnrollments(kind).items);
      io.stdout.write(
        args.json
          ? `${JSON.stringify(
              enrollments.map((e) => view(e, args.showKeys)),
              null,
              2,
            )}\n`
          : formatTable(enrollments, stateDir, args.showKeys),
      );
      return 0;
    }
    const found = find(store, args.id as string, args.kind, stateDir, io);
    if (!found) return 1;
    const service = new EnrollmentService({ store, registrations: store, linkedHubs: [] });
    if (args.action === 'show') {
      const shown = service.get(found.kind, found.id);
      if (!shown.ok) throw new Error(shown.message);
      // As the service API's GET answers it; --show-keys adds what its attestationmechanism call
      // answers, as `az … show --show-keys` does.
      const printable = args.showKeys
        ? { ...shown.value, attestation: attestationView(found.record.attestation, true) }
        : masked(shown.value);
      io.stdout.write(args.json ? `${JSON.stringify(printable, null, 2)}\n` : formatRecord(found, printable));
      return 0;
    }
    const deleted = service.delete(found.kind, found.id);
    if (!deleted.ok) throw new Error(deleted.message);
    const seeded = found.seedHash !== undefined;
    io.stdout.write(
      args.json
        ? `${JSON.stringify({ deleted: true, kind: found.kind, id: found.id, seededFromConfig: seeded })}\n`
        : `Deleted the ${KIND_NAMES[found.kind]} "${found.id}".${
            seeded
              ? ' It came from the config file: the emulator creates it again on its next start while the file declares it.'
              : ''
          }\n`,
    );
    return 0;
  });
}

/** The enrollment `id` names (of `kind` when given); says why on stderr when there is not exactly one. */
function find(
  store: SqliteStore,
  id: string,
  kind: EnrollmentKind | undefined,
  stateDir: string,
  io: EnrollmentsIo,
): StoredEnrollment | undefined {
  const matches = (kind ? [kind] : KINDS)
    .map((k) => store.getEnrollment(k, id))
    .filter((e): e is StoredEnrollment => e !== undefined);
  if (matches.length === 1) return matches[0];
  io.stderr.write(
    matches.length === 0
      ? `dps-emulator: no ${kind ? KIND_NAMES[kind] : 'enrollment group or individual enrollment'} "${id}" in ${stateDir}.\n`
      : `dps-emulator: "${id}" is both an enrollment group and an individual enrollment in ${stateDir}: pass --kind group or --kind individual.\n`,
  );
  return undefined;
}

/** A record as the service API's query answers it; keys and the webhook query only with --show-keys. */
function view(enrollment: StoredEnrollment, showKeys: boolean): Record<string, unknown> {
  const record = serviceView(enrollment.record, { secrets: showKeys });
  return showKeys ? record : masked(record);
}

function masked(record: Record<string, unknown>): Record<string, unknown> {
  const definition = record.customAllocationDefinition as { webhookUrl?: unknown } | undefined;
  if (typeof definition?.webhookUrl !== 'string') return record;
  return {
    ...record,
    customAllocationDefinition: { ...definition, webhookUrl: maskWebhookUrl(definition.webhookUrl) },
  };
}

function hubsOf(record: StoredEnrollment['record']): string {
  return record.iotHubs?.join(',') ?? record.iotHubHostName ?? '(all linked)';
}

function formatTable(enrollments: StoredEnrollment[], stateDir: string, showKeys: boolean): string {
  const rows = enrollments.map((e) => {
    const webhook = e.record.customAllocationDefinition?.webhookUrl;
    return [
      e.kind,
      e.id,
      e.record.attestation.type,
      e.record.allocationPolicy ?? 'hashed',
      e.record.provisioningStatus ?? 'enabled',
      hubsOf(e.record),
      webhook ? (showKeys ? webhook : maskWebhookUrl(webhook)) : '',
      e.seedHash !== undefined ? 'config file' : 'service API',
    ];
  });
  const header = ['KIND', 'ID', 'ATTESTATION', 'ALLOCATION', 'STATUS', 'HUBS', 'WEBHOOK', 'FROM'];
  const count = `${enrollments.length} enrollment${enrollments.length === 1 ? '' : 's'} in ${stateDir}`;
  return enrollments.length ? `${formatColumns(header, rows)}\n${count}\n` : `${count}\n`;
}

function formatRecord(stored: StoredEnrollment, printable: Record<string, unknown>): string {
  const record = stored.record;
  const webhook = (printable.customAllocationDefinition as { webhookUrl?: string } | undefined)?.webhookUrl;
  const lines = [
    `${stored.kind === 'group' ? 'enrollmentGroupId' : 'registrationId   '}  ${stored.id}`,
    `kind               ${KIND_NAMES[stored.kind]}`,
    `attestation        ${record.attestation.type}`,
    `provisioningStatus ${record.provisioningStatus ?? 'enabled'}`,
    `allocationPolicy   ${record.allocationPolicy ?? 'hashed'}`,
    `iotHubs            ${hubsOf(record)}`,
  ];
  if (webhook) lines.push(`webhookUrl         ${webhook}`);
  lines.push(`from               ${stored.seedHash !== undefined ? 'the config file' : 'the service API'}`);
  if (record.lastUpdatedDateTimeUtc) lines.push(`lastUpdated        ${record.lastUpdatedDateTimeUtc}`);
  lines.push('', 'Full record: --json (keys: --show-keys)');
  return `${lines.join('\n')}\n`;
}
