import type { EnrollmentGroup, IndividualEnrollment } from '@dpskit/contracts';
import type { RegistrationRecord } from '../store.js';

export type EnrollmentKind = 'group' | 'individual';
export type EnrollmentRecord = EnrollmentGroup | IndividualEnrollment;

/** An enrollment as the service stores it: the full record (keys, certificates, etag, timestamps). */
export interface StoredEnrollment {
  kind: EnrollmentKind;
  /** The id as it was created (lookups are case-insensitive). */
  id: string;
  record: EnrollmentRecord;
  /**
   * Set when the config file seeded this enrollment: the hash of the file's entry at that time.
   * Absent for enrollments created through the service API. See `config/seed.ts`.
   */
  seedHash?: string;
}

export interface Page<T> {
  items: T[];
  /** The key to continue after, when more items follow. */
  next?: string;
}

/** The port the enrollment service persists through (SQLite in the emulator, memory in unit tests). */
export interface EnrollmentStore {
  getEnrollment(kind: EnrollmentKind, id: string): StoredEnrollment | undefined;
  putEnrollment(enrollment: StoredEnrollment): void;
  deleteEnrollment(kind: EnrollmentKind, id: string): boolean;
  /** Enrollments ordered by lower-cased id, starting after `after` (a lower-cased id). */
  listEnrollments(kind: EnrollmentKind, options?: { after?: string; limit?: number }): Page<StoredEnrollment>;
  /**
   * How many enrollments of this kind there are (of this attestation type, when given), counted up
   * to `atMost`: the quota check needs no more.
   */
  countEnrollments(kind: EnrollmentKind, options: { attestationType?: string; atMost: number }): number;
  /** Changes whenever any enrollment changes, in this process or another one using the same store. */
  enrollmentsVersion(): string;
  /** Runs `fn` atomically. */
  transaction<T>(fn: () => T): T;
}

/** What the service API reads and deletes of the registration records the device API writes. */
export interface RegistrationAdminStore {
  get(registrationId: string): RegistrationRecord | undefined;
  delete(registrationId: string): boolean;
  /** Records of one enrollment group, ordered by lower-cased registration id, after `after`. */
  listByGroup(groupId: string, options?: { after?: string; limit?: number }): Page<RegistrationRecord>;
}

/** The same in memory (unit tests; nothing survives). */
export class MemoryEnrollmentStore implements EnrollmentStore {
  readonly #entries = new Map<string, StoredEnrollment>();
  #version = 0;

  getEnrollment(kind: EnrollmentKind, id: string): StoredEnrollment | undefined {
    const entry = this.#entries.get(`${kind}:${id.toLowerCase()}`);
    return entry ? structuredClone(entry) : undefined;
  }

  putEnrollment(enrollment: StoredEnrollment): void {
    this.#entries.set(`${enrollment.kind}:${enrollment.id.toLowerCase()}`, structuredClone(enrollment));
    this.#version++;
  }

  deleteEnrollment(kind: EnrollmentKind, id: string): boolean {
    const deleted = this.#entries.delete(`${kind}:${id.toLowerCase()}`);
    if (deleted) this.#version++;
    return deleted;
  }

  listEnrollments(kind: EnrollmentKind, options: { after?: string; limit?: number } = {}): Page<StoredEnrollment> {
    const all = [...this.#entries.values()]
      .filter((e) => e.kind === kind && (options.after === undefined || e.id.toLowerCase() > options.after))
      .sort((a, b) => (a.id.toLowerCase() < b.id.toLowerCase() ? -1 : 1));
    return pageOf(
      all.map((e) => structuredClone(e)),
      options.limit,
      (e) => e.id.toLowerCase(),
    );
  }

  countEnrollments(kind: EnrollmentKind, options: { attestationType?: string; atMost: number }): number {
    let count = 0;
    for (const entry of this.#entries.values()) {
      if (entry.kind !== kind) continue;
      if (options.attestationType !== undefined && entry.record.attestation.type !== options.attestationType) continue;
      if (++count >= options.atMost) break;
    }
    return count;
  }

  enrollmentsVersion(): string {
    return String(this.#version);
  }

  transaction<T>(fn: () => T): T {
    return fn();
  }
}

/** Cuts `limit` items off an ordered list and says where the next page starts. */
export function pageOf<T>(items: T[], limit: number | undefined, keyOf: (item: T) => string): Page<T> {
  if (limit === undefined || items.length <= limit) return { items };
  const page = items.slice(0, limit);
  return { items: page, next: keyOf(page[page.length - 1] as T) };
}
