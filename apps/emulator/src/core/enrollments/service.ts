import {
  createCosmosEtag,
  DpsErrorCode,
  DpsErrorMessage,
  formatDpsTimestamp,
  generateSymmetricKey,
} from '@dpskit/contracts';
import { clip } from '../client-text.js';
import { type EmulatedEnrollment, type EnrollmentSet, enrollmentSet, type UnverifiableEnrollment } from '../model.js';
import type { RegistrationRecord } from '../store.js';
import { certificateUses, describeCertificateConflict, findCertificateConflict } from './certificate-conflicts.js';
import type { EnrollmentKind, EnrollmentStore, Page, RegistrationAdminStore, StoredEnrollment } from './store.js';
import { idFieldOf, validateEnrollment } from './validate.js';
import { attestationView, buildRecord, registrationStateView, serviceView, toEmulated } from './views.js';

/** A service API outcome, independent of HTTP: a value, or a DPS error code (its status is code / 1000) and message. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; errorCode: number; message: string };

export interface QueryPage {
  items: Record<string, unknown>[];
  /** The page size applied (`x-ms-max-item-count` as the service took it). */
  pageSize: number;
  /** Opaque; present when more items follow. */
  continuationToken?: string;
}

export interface BulkResult {
  isSuccessful: boolean;
  errors: { registrationId: string; errorCode: number; errorStatus: string }[];
}

/** DPS caps bulk operations at 10 enrollments. */
export const MAX_BULK_ENROLLMENTS = 10;
/** Page size when the request names none (DPS does not document its default). */
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
/** The largest `x-ms-max-item-count` taken (then cut to MAX_PAGE_SIZE): the SDKs' page size is a 32-bit int. */
export const MAX_PAGE_SIZE_HEADER = 2_147_483_647;
/**
 * A page of a query's answer stops at this much JSON (at least one item): Cosmos DB's limit on one
 * page of a query response, the store behind DPS. Enrollments may be up to 1 MiB each (unknown
 * fields round-trip), so 1000 of them made one answer of up to 1 GiB, built in memory at once (and
 * past V8's longest string, 512 MiB, a RangeError out of the response writer).
 */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024;

/**
 * How many enrollments the service API creates: DPS's documented quotas (azure-docs
 * iot-dps-limits, 03/2024: 1,000,000 individual enrollments; 100 enrollment groups with X.509 and
 * 100 with symmetric keys, "a hard limit"). Enrollments the config file declares count toward them.
 */
export interface EnrollmentQuotas {
  individualEnrollments: number;
  /** Per attestation type (x509, symmetricKey). */
  enrollmentGroups: number;
}
export const DEFAULT_ENROLLMENT_QUOTAS: EnrollmentQuotas = { individualEnrollments: 1_000_000, enrollmentGroups: 100 };

export interface EnrollmentServiceOptions {
  store: EnrollmentStore;
  registrations: RegistrationAdminStore;
  /** Host names of the linked IoT hubs (`iotHubs` must name some of them). */
  linkedHubs: readonly string[];
  /**
   * The instance's CA certificates (PEM) by lower-cased name: what `caReferences` of X.509
   * enrollments name. DPS uploads them through its management plane; the emulator takes them from
   * the config file.
   */
  caCertificates?: ReadonlyMap<string, string>;
  /** Default `DEFAULT_ENROLLMENT_QUOTAS` (the emulator's `limits.maxIndividualEnrollments`, `limits.maxEnrollmentGroups`). */
  quotas?: EnrollmentQuotas;
  now?: () => Date;
}

const fail = (errorCode: number, message: string): { ok: false; errorCode: number; message: string } => ({
  ok: false,
  errorCode,
  message,
});

const notFound = (kind: EnrollmentKind, id: string) =>
  kind === 'group'
    ? fail(DpsErrorCode.EnrollmentGroupNotFound, `Enrollment group "${clip(id)}" was not found.`)
    : fail(DpsErrorCode.EnrollmentNotFound, `Individual enrollment "${clip(id)}" was not found.`);

/**
 * The DPS service API's logic over the store: enrollments created, read, replaced (etags,
 * `If-Match`), queried page by page and deleted; registration records read and deleted. Every
 * write goes to the store at once, and `enrollments()` rebuilds the registration core's view when
 * the store changed, so the next device request sees the change.
 */
export class EnrollmentService {
  readonly #options: EnrollmentServiceOptions;
  readonly #now: () => Date;
  #cache: { version: string; set: EnrollmentSet } | undefined;

  constructor(options: EnrollmentServiceOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
  }

  /** The enrollments as the registration core sees them, current with the store. */
  enrollments(): EnrollmentSet {
    const { store } = this.#options;
    const version = store.enrollmentsVersion();
    if (this.#cache?.version === version) return this.#cache.set;
    const usable: EmulatedEnrollment[] = [];
    const others: UnverifiableEnrollment[] = [];
    for (const kind of ['group', 'individual'] as const) {
      for (const stored of store.listEnrollments(kind).items) {
        const enrollment = toEmulated(stored, this.#options.caCertificates);
        if ('record' in enrollment) usable.push(enrollment);
        else others.push(enrollment);
      }
    }
    const set = enrollmentSet(usable, others);
    this.#cache = { version, set };
    return set;
  }

  /** `PUT /enrollmentGroups/{id}` and `PUT /enrollments/{id}`: create or replace, honouring `If-Match`. */
  put(kind: EnrollmentKind, id: string, body: unknown, ifMatch?: string): Outcome<Record<string, unknown>> {
    return this.#options.store.transaction(() => {
      const result = this.#write(kind, id, body, ifMatch);
      return result.ok ? { ok: true, value: serviceView(result.value.record, { secrets: true }) } : result;
    });
  }

  get(kind: EnrollmentKind, id: string): Outcome<Record<string, unknown>> {
    const stored = this.#options.store.getEnrollment(kind, id);
    if (!stored) return notFound(kind, id);
    const state = kind === 'individual' ? this.#options.registrations.get(id) : undefined;
    return {
      ok: true,
      value: serviceView(stored.record, {
        secrets: false,
        ...(state ? { registrationState: registrationStateView(state.result) } : {}),
      }),
    };
  }

  /** `POST …/{id}/attestationmechanism`: the attestation with its keys. */
  attestationMechanism(kind: EnrollmentKind, id: string): Outcome<Record<string, unknown>> {
    const stored = this.#options.store.getEnrollment(kind, id);
    if (!stored) return notFound(kind, id);
    return { ok: true, value: attestationView(stored.record.attestation, true) };
  }

  delete(kind: EnrollmentKind, id: string, ifMatch?: string): Outcome<null> {
    const { store } = this.#options;
    return store.transaction(() => {
      const stored = store.getEnrollment(kind, id);
      if (!stored) return notFound(kind, id);
      if (!etagMatches(ifMatch, stored.record.etag))
        return fail(DpsErrorCode.PreconditionFailed, DpsErrorMessage.preconditionFailed);
      store.deleteEnrollment(kind, id);
      return { ok: true, value: null };
    });
  }

  query(
    kind: EnrollmentKind,
    queryBody: unknown,
    pageSize: string | undefined,
    continuation: string | undefined,
  ): Outcome<QueryPage> {
    const page = parsePaging(queryBody, pageSize, continuation);
    if (!page.ok) return page;
    const { items, next } = this.#options.store.listEnrollments(kind, {
      ...(page.value.after !== undefined ? { after: page.value.after } : {}),
      limit: page.value.limit,
    });
    return {
      ok: true,
      value: boundedPage(
        items,
        next,
        page.value.limit,
        (s) => serviceView(s.record, { secrets: false }),
        (s) => s.id.toLowerCase(),
      ),
    };
  }

  /** `POST /enrollments`: up to 10 individual enrollments; per-item results, not atomic (as DPS). */
  bulk(body: unknown): Outcome<BulkResult> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return fail(
        DpsErrorCode.ArgumentInvalid,
        'The request body must be a BulkEnrollmentOperation {mode, enrollments}.',
      );
    }
    const { mode, enrollments } = body as { mode?: unknown; enrollments?: unknown };
    const modes = ['create', 'update', 'updateifmatchetag', 'delete'];
    if (typeof mode !== 'string' || !modes.includes(mode.toLowerCase())) {
      return fail(
        DpsErrorCode.ArgumentInvalid,
        `Invalid mode ${clip(JSON.stringify(mode) ?? String(mode))}: use create, update, updateIfMatchETag or delete.`,
      );
    }
    if (!Array.isArray(enrollments) || enrollments.length === 0) {
      return fail(
        DpsErrorCode.ArgumentInvalid,
        'Invalid enrollments: give a non-empty array of individual enrollments.',
      );
    }
    if (enrollments.length > MAX_BULK_ENROLLMENTS) {
      return fail(
        DpsErrorCode.ArgumentInvalid,
        `Invalid enrollments: a bulk operation takes at most ${MAX_BULK_ENROLLMENTS} enrollments, not ${enrollments.length}.`,
      );
    }
    const errors: BulkResult['errors'] = [];
    const { store } = this.#options;
    for (const item of enrollments as unknown[]) {
      const given = (item as { registrationId?: unknown } | null)?.registrationId ?? '';
      // Reported as sent (JSON for what is no string), but never taken as an id: String() made an
      // object "[object Object]" and a number an id a delete would act on.
      const registrationId = typeof given === 'string' ? given : (JSON.stringify(given) ?? String(given));
      const etag = (item as { etag?: unknown } | null)?.etag;
      const outcome = store.transaction((): Outcome<unknown> => {
        if (typeof given !== 'string') {
          const what = Array.isArray(given)
            ? 'an array'
            : typeof given === 'object'
              ? 'an object'
              : `a ${typeof given}`;
          return fail(DpsErrorCode.ArgumentInvalid, `Invalid registrationId: give a string, not ${what}.`);
        }
        if (!registrationId) return fail(DpsErrorCode.ArgumentInvalid, 'registrationId is required.');
        switch (mode.toLowerCase()) {
          case 'create':
            if (store.getEnrollment('individual', registrationId)) {
              return fail(
                DpsErrorCode.EnrollmentConflict,
                `Individual enrollment "${clip(registrationId)}" already exists.`,
              );
            }
            return this.#write('individual', registrationId, item);
          case 'update':
            return this.#write('individual', registrationId, item);
          case 'updateifmatchetag':
            return this.#write('individual', registrationId, item, typeof etag === 'string' ? etag : undefined, true);
          default:
            return this.delete('individual', registrationId, typeof etag === 'string' ? etag : undefined);
        }
      });
      if (!outcome.ok) {
        errors.push({
          registrationId: clip(registrationId),
          errorCode: outcome.errorCode,
          errorStatus: outcome.message,
        });
      }
    }
    return { ok: true, value: { isSuccessful: errors.length === 0, errors } };
  }

  registration(registrationId: string): Outcome<Record<string, unknown>> {
    const record = this.#options.registrations.get(registrationId);
    if (!record) return registrationNotFound(registrationId);
    return { ok: true, value: registrationStateView(record.result) };
  }

  /** Deleting a registration record makes the device's next registration an initial assignment. */
  deleteRegistration(registrationId: string, ifMatch?: string): Outcome<null> {
    const { registrations } = this.#options;
    const record = registrations.get(registrationId);
    if (!record) return registrationNotFound(registrationId);
    if (!etagMatches(ifMatch, record.result.etag))
      return fail(DpsErrorCode.PreconditionFailed, DpsErrorMessage.preconditionFailed);
    registrations.delete(registrationId);
    return { ok: true, value: null };
  }

  /** `POST /registrations/{groupId}/query`: the registration records of one enrollment group. */
  queryRegistrations(
    groupId: string,
    queryBody: unknown,
    pageSize: string | undefined,
    continuation: string | undefined,
  ): Outcome<QueryPage> {
    const page = parsePaging(queryBody, pageSize, continuation, true);
    if (!page.ok) return page;
    const { items, next }: Page<RegistrationRecord> = this.#options.registrations.listByGroup(groupId, {
      ...(page.value.after !== undefined ? { after: page.value.after } : {}),
      limit: page.value.limit,
    });
    return {
      ok: true,
      value: boundedPage(
        items,
        next,
        page.value.limit,
        (r) => registrationStateView(r.result),
        (r) => r.registrationId.toLowerCase(),
      ),
    };
  }

  #write(
    kind: EnrollmentKind,
    id: string,
    body: unknown,
    ifMatch?: string,
    requireEtag = false,
  ): Outcome<StoredEnrollment> {
    const { store } = this.#options;
    const existing = store.getEnrollment(kind, id);
    if (requireEtag && ifMatch === undefined && existing) {
      return fail(DpsErrorCode.PreconditionFailed, DpsErrorMessage.preconditionFailed);
    }
    if (ifMatch !== undefined && (!existing || !etagMatches(ifMatch, existing.record.etag))) {
      return fail(DpsErrorCode.PreconditionFailed, DpsErrorMessage.preconditionFailed);
    }
    const validation = validateEnrollment(kind, id, body, this.#options.linkedHubs, existing?.record);
    if (!validation.ok) return fail(DpsErrorCode.ArgumentInvalid, validation.message);
    const draft = validation.draft;
    const unknownCa = unknownCaReference(draft, this.#options.caCertificates);
    if (unknownCa) return fail(DpsErrorCode.ArgumentInvalid, unknownCa);
    const conflict = this.#certificateConflict(kind, id, draft.attestation);
    if (conflict) return fail(DpsErrorCode.CertificateConflict, conflict);
    const overQuota = this.#quotaExceeded(kind, draft.attestation.type, existing?.record.attestation.type);
    if (overQuota) return fail(DpsErrorCode.EnrollmentQuotaExceeded, overQuota);
    if (draft.attestation.type === 'symmetricKey') {
      // Keys left out keep the enrollment's current keys (a GET answer sent back carries none), or are generated.
      const current =
        existing?.record.attestation.type === 'symmetricKey' ? existing.record.attestation.symmetricKey : undefined;
      const given = draft.attestation.symmetricKey ?? {};
      draft.attestation = {
        type: 'symmetricKey',
        symmetricKey: {
          primaryKey: given.primaryKey ?? current?.primaryKey ?? generateSymmetricKey(),
          secondaryKey: given.secondaryKey ?? current?.secondaryKey ?? generateSymmetricKey(),
        },
      };
    }
    const date = this.#now();
    const now = formatDpsTimestamp(date);
    const record = buildRecord(kind, draft, {
      etag: createCosmosEtag(date),
      createdDateTimeUtc: existing?.record.createdDateTimeUtc ?? now,
      lastUpdatedDateTimeUtc: now,
    });
    const stored: StoredEnrollment = {
      kind,
      // The id keeps the spelling it was created with; the body may differ in case only.
      id: existing?.id ?? (record as unknown as Record<string, string>)[idFieldOf(kind)] ?? id,
      record,
      ...(existing?.seedHash !== undefined ? { seedHash: existing.seedHash } : {}),
    };
    store.putEnrollment(stored);
    return { ok: true, value: stored };
  }

  /**
   * Why writing this enrollment would pass the instance's quota, or undefined: creating one (or
   * turning a group into another attestation type) when its kind, for groups its attestation type,
   * is at its quota. Replacing one in place never is.
   */
  #quotaExceeded(kind: EnrollmentKind, type: string, existingType: string | undefined): string | undefined {
    const quotas = this.#options.quotas ?? DEFAULT_ENROLLMENT_QUOTAS;
    const { store } = this.#options;
    if (kind === 'individual') {
      if (existingType !== undefined) return undefined;
      const quota = quotas.individualEnrollments;
      if (store.countEnrollments('individual', { atMost: quota }) < quota) return undefined;
      return `The provisioning service has ${quota} individual enrollments, its quota (limits.maxIndividualEnrollments, CLI --max-individual-enrollments; DPS allows 1,000,000): delete one first.`;
    }
    if (existingType === type) return undefined;
    const quota = quotas.enrollmentGroups;
    if (store.countEnrollments('group', { attestationType: type, atMost: quota }) < quota) return undefined;
    return `The provisioning service has ${quota} enrollment groups with ${type} attestation, its quota (limits.maxEnrollmentGroups, CLI --max-enrollment-groups, per attestation type; DPS allows 100): delete one first.`;
  }

  /** Another enrollment of this kind that already uses one of the draft's certificates, as a sentence. */
  #certificateConflict(kind: EnrollmentKind, id: string, attestation: StoredEnrollment['record']['attestation']) {
    const { caCertificates } = this.#options;
    const uses = certificateUses(kind, id, attestation, caCertificates);
    if (uses.length === 0) return undefined;
    const others = this.#options.store
      .listEnrollments(kind)
      .items.flatMap((stored) => certificateUses(kind, stored.id, stored.record.attestation, caCertificates));
    const conflict = findCertificateConflict(uses, others);
    return conflict ? describeCertificateConflict(conflict) : undefined;
  }
}

/** A CA reference must name one of the instance's certificates. */
export function unknownCaReference(
  record: { attestation: { x509?: { caReferences?: { primary?: string | null; secondary?: string | null } | null } } },
  caCertificates: ReadonlyMap<string, string> = new Map(),
): string | undefined {
  const references = record.attestation.x509?.caReferences;
  for (const slot of ['primary', 'secondary'] as const) {
    const name = references?.[slot];
    if (name && !caCertificates.has(name.toLowerCase())) {
      const known = [...caCertificates.keys()];
      return `Invalid attestation.x509.caReferences.${slot}: "${name}" is not a certificate of this provisioning service (${known.length ? `known: ${known.join(', ')}` : 'none configured'}; the emulator takes them from the config file's certificates).`;
    }
  }
  return undefined;
}

function registrationNotFound(registrationId: string) {
  return fail(DpsErrorCode.DeviceRegistrationNotFound, `Registration record "${clip(registrationId)}" was not found.`);
}

/** `If-Match` absent or `*` matches; otherwise the etags must be equal (quotes and a weak `W/` prefix ignored). */
export function etagMatches(ifMatch: string | undefined, etag: string | undefined): boolean {
  if (ifMatch === undefined || ifMatch.trim() === '*') return true;
  const bare = (value: string) =>
    value
      .trim()
      .replace(/^W\//, '')
      .replace(/^"(.*)"$/, '$1');
  return etag !== undefined && bare(ifMatch) === bare(etag);
}

function parsePaging(
  queryBody: unknown,
  pageSize: string | undefined,
  continuation: string | undefined,
  bodyOptional = false,
): Outcome<{ limit: number; after?: string }> {
  const query = (queryBody as { query?: unknown } | null | undefined)?.query;
  if (!(bodyOptional && (queryBody === undefined || queryBody === null)) && typeof query !== 'string') {
    return fail(DpsErrorCode.ArgumentInvalid, 'The request body must be a QuerySpecification {"query": "*"}.');
  }
  const unsupported = typeof query === 'string' ? unsupportedQueryPart(query) : undefined;
  if (typeof query === 'string' && unsupported !== undefined) {
    return fail(
      DpsErrorCode.ArgumentInvalid,
      `The query "${clip(query)}" is not supported: ${unsupported}. DPS queries take only "*", "SELECT *" or "SELECT * FROM <collection>" (no WHERE, projection, TOP or ORDER BY).`,
    );
  }
  let limit = DEFAULT_PAGE_SIZE;
  // -1 is Cosmos DB's "the service chooses" (the store behind DPS, whose paging headers these are):
  // the default. Otherwise a whole number from 1 to 2^31-1, cut to MAX_PAGE_SIZE; 0, other
  // negatives, fractions, words and numbers past a 32-bit int are refused (what DPS answers to them
  // is not documented; its SDKs send the header only for a page size they were given, never 0).
  if (pageSize !== undefined && pageSize !== '' && pageSize.trim() !== '-1') {
    const digits = pageSize.trim();
    if (!/^\d+$/.test(digits) || Number(digits) < 1 || Number(digits) > MAX_PAGE_SIZE_HEADER) {
      return fail(
        DpsErrorCode.ArgumentInvalid,
        `Invalid x-ms-max-item-count "${clip(pageSize)}": give a whole number from 1 to ${MAX_PAGE_SIZE_HEADER} (pages hold at most ${MAX_PAGE_SIZE}), or -1 for the default (${DEFAULT_PAGE_SIZE}).`,
      );
    }
    limit = Math.min(Number(digits), MAX_PAGE_SIZE);
  }
  if (continuation === undefined || continuation === '') return { ok: true, value: { limit } };
  const after = decodeContinuation(continuation);
  if (after === undefined)
    return fail(DpsErrorCode.ArgumentInvalid, `Invalid x-ms-continuation "${clip(continuation)}".`);
  return { ok: true, value: { limit, after } };
}

/**
 * What a query has beyond what DPS runs, as a phrase naming it, or undefined. DPS documents that
 * its queries support only `SELECT *` (no WHERE; azure-docs dps-faq); the SDKs and their samples
 * send `*` (Node, Python), `SELECT * FROM enrollments` / `enrollmentGroups` (C#; one sample names
 * `enrollments` for a group query, so the collection is not checked) and `select * from enrollments`
 * (Java's builder). Anything else was silently run as `*`.
 */
export function unsupportedQueryPart(query: string): string | undefined {
  const select = /^\s*select\b\s*/i.exec(query);
  let rest = select ? query.slice(select[0].length) : query.trimStart();
  if (!rest.startsWith('*')) {
    if (!select) return rest === '' ? 'it is empty' : `it does not start with "*" or "SELECT *"`;
    const projection = /^\S+/.exec(rest)?.[0];
    return projection === undefined ? 'SELECT names nothing' : `the projection "${clip(projection)}" (only * is)`;
  }
  rest = rest.slice(1).trimStart();
  if (select) {
    const from = /^from\s+[A-Za-z_][A-Za-z0-9_]*\s*/i.exec(rest);
    if (from) rest = rest.slice(from[0].length);
  }
  if (rest === '') return undefined;
  const where = /^where\b/i.test(rest) ? 'the WHERE clause' : 'the part';
  return `${where} "${clip(rest.trimEnd())}"`;
}

/**
 * The items of a store page as answered, cut where their JSON would pass `MAX_PAGE_BYTES` (never
 * before the first); a cut page continues after its last item (`key`: the store's order key).
 */
function boundedPage<T>(
  items: readonly T[],
  next: string | undefined,
  pageSize: number,
  view: (item: T) => Record<string, unknown>,
  key: (item: T) => string,
): QueryPage {
  const views: Record<string, unknown>[] = [];
  let bytes = 2; // []
  for (const item of items) {
    const shown = view(item);
    const size = Buffer.byteLength(JSON.stringify(shown)) + 1; // and its comma
    const last = items[views.length - 1];
    if (last !== undefined && bytes + size > MAX_PAGE_BYTES) return pageResult(views, pageSize, key(last));
    views.push(shown);
    bytes += size;
  }
  return pageResult(views, pageSize, next);
}

function pageResult(items: Record<string, unknown>[], pageSize: number, next: string | undefined): QueryPage {
  return next === undefined ? { items, pageSize } : { items, pageSize, continuationToken: encodeContinuation(next) };
}

const CONTINUATION_PREFIX = 'dpskit1:';

function encodeContinuation(after: string): string {
  return Buffer.from(`${CONTINUATION_PREFIX}${after}`, 'utf8').toString('base64url');
}

function decodeContinuation(token: string): string | undefined {
  const text = Buffer.from(token, 'base64url').toString('utf8');
  return text.startsWith(CONTINUATION_PREFIX) ? text.slice(CONTINUATION_PREFIX.length) : undefined;
}
