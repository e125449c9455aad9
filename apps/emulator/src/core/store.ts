import type {
  DevicePayload,
  DeviceRegistrationResult,
  InitialTwin,
  RegistrationOperationStatus,
  X509RuntimeContext,
} from '@dpskit/contracts';
import type { HubAssignment } from '../hub/core/assignment.js';
import { applyAssignment, type HubStore } from '../hub/core/store.js';
import type { DeviceTransport } from './events.js';
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

/**
 * One register request's operation. Saved when it is created, with what its allocation needs
 * (enrollment, payload), so that a restarted emulator can run an unfinished one again; saved with
 * its final answer in the same transaction as the registration record, so that a poll after a
 * crash finds either the running operation or its outcome, never nothing.
 */
export interface OperationRecord {
  operationId: string;
  /** As the device presented it. */
  registrationId: string;
  enrollment: EnrollmentRef;
  transport: DeviceTransport;
  payload?: DevicePayload;
  /** X.509 devices: the certificate details the webhook gets, kept so that a resumed allocation sends them too. */
  x509?: X509RuntimeContext;
  /** Certificate issuance: the device's certificate signing request (base64 DER PKCS#10), signed on assignment. */
  csr?: string;
  createdAtMs: number;
  /** The answer to every poll once the allocation finished. */
  response?: RegistrationOperationStatus;
  /**
   * `response` as the store keeps it, when it keeps it as JSON text (SQLite): byte for byte
   * `JSON.stringify(response)`, so that a poll's answer is written as it is, not serialized again.
   */
  responseJson?: string;
  finishedAtMs?: number;
}

/** The port the registration service persists through (SQLite in the emulator, a Map in unit tests). */
export interface RegistrationStore {
  get(registrationId: string): RegistrationRecord | undefined;
  put(record: RegistrationRecord): void;
  list(): RegistrationRecord[];
  /** Saves a new, unfinished operation. */
  createOperation(operation: OperationRecord): void;
  /**
   * `createOperation`, committed together with other writes (SQLite: those of the same event-loop
   * turn): resolves once it is saved, and nothing may name the operation to its device before. A
   * `finishOperationSoon` of the operation before then is saved in the same write (the row is
   * written once, finished). Used instead of `createOperation` when present and no other process
   * shares the store.
   */
  createOperationSoon?(operation: OperationRecord): Promise<void>;
  getOperation(operationId: string): OperationRecord | undefined;
  /**
   * Saves `record` (when given), the operation's final answer and, after an assignment, the
   * device's identity and twin in its hub (`applyAssignment`) atomically.
   */
  finishOperation(
    operationId: string,
    response: RegistrationOperationStatus,
    finishedAtMs: number,
    record?: RegistrationRecord,
    hub?: HubAssignment,
  ): void;
  /**
   * `finishOperation`, where the store commits it together with other writes (SQLite: those of the
   * same event-loop turn): resolves once it is saved. Used instead of `finishOperation` when present.
   */
  finishOperationSoon?(
    operationId: string,
    response: RegistrationOperationStatus,
    finishedAtMs: number,
    record?: RegistrationRecord,
    hub?: HubAssignment,
  ): Promise<void>;
  /** Operations without a final answer, oldest first (after a crash: the ones to run again). */
  unfinishedOperations(): OperationRecord[];
  /**
   * The first created of a registration id's (any case) operations without a final answer, from
   * any process on the store: the one whose allocation runs next.
   */
  firstUnfinishedOperation(registrationId: string): { operationId: string; createdAtMs: number } | undefined;
  /** Forgets operations finished before `finishedBeforeMs`; returns how many. */
  pruneOperations(finishedBeforeMs: number): number;
}

export class MemoryRegistrationStore implements RegistrationStore {
  readonly #records = new Map<string, RegistrationRecord>();

  /** The hubs' devices, written on assignment when given. */
  constructor(readonly hub?: HubStore) {}

  get(registrationId: string): RegistrationRecord | undefined {
    return this.#records.get(registrationId.toLowerCase());
  }

  put(record: RegistrationRecord): void {
    this.#records.set(record.registrationId.toLowerCase(), structuredClone(record));
  }

  list(): RegistrationRecord[] {
    return [...this.#records.values()];
  }

  readonly #operations = new Map<string, OperationRecord>();

  createOperation(operation: OperationRecord): void {
    this.#operations.set(operation.operationId, structuredClone(operation));
  }

  getOperation(operationId: string): OperationRecord | undefined {
    const operation = this.#operations.get(operationId);
    return operation ? structuredClone(operation) : undefined;
  }

  finishOperation(
    operationId: string,
    response: RegistrationOperationStatus,
    finishedAtMs: number,
    record?: RegistrationRecord,
    hub?: HubAssignment,
  ): void {
    const operation = this.#operations.get(operationId);
    if (!operation) throw new Error(`operation ${operationId} does not exist`);
    // Clone first: a value that cannot be stored fails before anything changes, as in SQLite.
    const saved = record ? structuredClone(record) : undefined;
    operation.response = structuredClone(response);
    operation.finishedAtMs = finishedAtMs;
    if (saved) this.#records.set(saved.registrationId.toLowerCase(), saved);
    if (hub && this.hub) applyAssignment(this.hub, hub, new Date(finishedAtMs));
  }

  unfinishedOperations(): OperationRecord[] {
    return [...this.#operations.values()]
      .filter((operation) => !operation.response)
      .sort((a, b) => a.createdAtMs - b.createdAtMs)
      .map((operation) => structuredClone(operation));
  }

  firstUnfinishedOperation(registrationId: string): { operationId: string; createdAtMs: number } | undefined {
    const key = registrationId.toLowerCase();
    // A Map iterates in insertion order: the order the operations were created.
    for (const operation of this.#operations.values()) {
      if (!operation.response && operation.registrationId.toLowerCase() === key) {
        return { operationId: operation.operationId, createdAtMs: operation.createdAtMs };
      }
    }
    return undefined;
  }

  pruneOperations(finishedBeforeMs: number): number {
    let pruned = 0;
    for (const [id, operation] of this.#operations) {
      if (operation.finishedAtMs !== undefined && operation.finishedAtMs < finishedBeforeMs) {
        this.#operations.delete(id);
        pruned += 1;
      }
    }
    return pruned;
  }
}
