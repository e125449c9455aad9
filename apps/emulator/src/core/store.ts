import type { DeviceRegistrationResult, InitialTwin } from '@dpskit/contracts';
import type { EnrollmentRef } from './model.js';
import type { CurrentAssignment } from './reprovision.js';

/** One device's registration record, as the emulated service keeps it. */
export interface RegistrationRecord {
  /** As the device last presented it; lookups are case-insensitive. */
  registrationId: string;
  enrollment: EnrollmentRef;
  /** What DPS reports for the registration (device API, status lookup). */
  result: DeviceRegistrationResult;
  /** The last successful assignment; kept when a later registration fails or is disabled. */
  assignment?: CurrentAssignment;
  /** The twin DPS would have written at the last (re)assignment: the webhook's or the enrollment's. */
  initialTwin?: InitialTwin;
}

/** The port the registration service persists through (SQLite in the emulator, a Map in unit tests). */
export interface RegistrationStore {
  get(registrationId: string): RegistrationRecord | undefined;
  put(record: RegistrationRecord): void;
  list(): RegistrationRecord[];
}

export class MemoryRegistrationStore implements RegistrationStore {
  readonly #records = new Map<string, RegistrationRecord>();

  get(registrationId: string): RegistrationRecord | undefined {
    return this.#records.get(registrationId.toLowerCase());
  }

  put(record: RegistrationRecord): void {
    this.#records.set(record.registrationId.toLowerCase(), structuredClone(record));
  }

  list(): RegistrationRecord[] {
    return [...this.#records.values()];
  }
}
