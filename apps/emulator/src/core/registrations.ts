import { randomUUID, X509Certificate } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import {
  type AllocationPolicy,
  createRegistrationEtag,
  DEFAULT_REPROVISION_POLICY,
  type DevicePayload,
  type DeviceRegistrationResult,
  DpsErrorCode,
  DpsErrorMessage,
  formatDpsTimestamp,
  type InitialTwin,
  maskWebhookUrl,
  type RegistrationOperationStatus,
  type X509RuntimeContext,
} from '@dpskit/contracts';
import type { Pkcs10CertificateRequest } from '@peculiar/x509';
import type { HubAssignment } from '../hub/core/assignment.js';
import { candidateHubs } from './allocation/candidates.js';
import {
  buildAllocationRequest,
  runCustomAllocation,
  type WebhookCallOutcome,
  type WebhookExchange,
  type WebhookReport,
  type WebhookRetryPolicy,
} from './allocation/custom.js';
import type { AllocationDecision } from './allocation/decision.js';
import { pickGeoLatency } from './allocation/geo-latency.js';
import { pickHashed } from './allocation/hashed.js';
import { pickStatic } from './allocation/static.js';
import { type AttestationInput, type AttestationResult, attest } from './attestation.js';
import { checkCsr, type IssuingCa, issueCertificate } from './certificate-issuance.js';
import { unauthorizedErrorCode } from './device-api.js';
import { initialTwinProblem } from './enrollments/validate.js';
import type { DeviceTransport, RegistrationEvent, RegistrationOutcome } from './events.js';
import { groupDeviceKey } from './group-keys.js';
import { createOperationId } from './identifiers.js';
import {
  allocationPolicyOf,
  type EmulatedEnrollment,
  type EnrollmentRef,
  enrollmentRef,
  type ServiceModel,
} from './model.js';
import { type CurrentAssignment, initialTwinApplies, stayOnCurrentHub, substatusAfter } from './reprovision.js';
import type { OperationRecord, RegistrationRecord, RegistrationStore } from './store.js';

export type WebhookCaller = (
  url: string,
  body: string,
  signal: AbortSignal,
) => Promise<WebhookCallOutcome & { latencyMs: number }>;

export interface RegistrationServiceOptions {
  model: ServiceModel;
  store: RegistrationStore;
  callWebhook: WebhookCaller;
  webhookRetry: WebhookRetryPolicy;
  onRegistration?: (event: RegistrationEvent) => void;
  /** Unexpected internal errors (the registration still ends, as `failed`). */
  onError?: (error: unknown, context: { registrationId: string; operationId: string }) => void;
  now?: () => Date;
  /** How long finished operations stay pollable (default one hour). They are kept in the store. */
  operationRetentionMs?: number;
  /**
   * How often a held poll looks in the store for an allocation running in another process on the
   * same store (default 20 ms; see `settled`).
   */
  storePollMs?: number;
  /**
   * Other processes serve the same store (`dps-emulator start --workers`): before its allocation
   * runs, an operation waits, looking in the store every `storePollMs`, for the registration id's
   * operations created before it in any process, as this process's own wait for each other.
   */
  sharedStore?: boolean;
  /** Signs the certificates devices request with `csr` (certificate issuance); without it, `csr` is refused. */
  issuingCa?: IssuingCa;
}

/** What a poll finds. */
export type OperationView =
  | { state: 'assigning'; body: RegistrationOperationStatus }
  | { state: 'done'; body: RegistrationOperationStatus; json?: string }
  | { state: 'not-found' };

export type AttestedDevice = Extract<AttestationResult, { ok: true }>;

/**
 * The registration state machine: a register request creates an operation that is `assigning`
 * until allocation finishes, then `assigned`, `failed` or `disabled` with the full registration
 * state. Allocations of one registration id run one after another so that a re-registration
 * always sees the record of the one before; different devices run concurrently.
 */
export class RegistrationService {
  readonly #options: RegistrationServiceOptions;
  readonly #now: () => Date;
  /**
   * The allocations running in this process, by operation id: `done` settles when they end (never
   * rejects); `registrationKey`, the lower-cased registration id the operation belongs to.
   */
  readonly #running = new Map<string, { done: Promise<void>; registrationKey: string }>();
  readonly #chains = new Map<string, Promise<void>>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  #lastPrune = 0;

  constructor(options: RegistrationServiceOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
    // Every running webhook call and retry wait listens on this one signal.
    setMaxListeners(0, this.#abort.signal);
  }

  /** Whether register requests may carry `csr` (an issuing CA is configured). */
  get issuesCertificates(): boolean {
    return this.#options.issuingCa !== undefined;
  }

  get model(): ServiceModel {
    return this.#options.model;
  }

  attest(input: Omit<AttestationInput, 'idScope' | 'now'>): AttestationResult {
    // Property by property, not `{ ...input, idScope, now }`: optimized code gives every object
    // that starts with a spread and then gets more properties a map of its own (V8 11, Node 20),
    // and each of them then misses every property cache it reaches (see #record below).
    const full: AttestationInput = {
      idScope: this.model.idScope,
      requestedIdScope: input.requestedIdScope,
      registrationId: input.registrationId,
      token: input.token,
      now: this.#now(),
    };
    if (input.clientCertificates) full.clientCertificates = input.clientCertificates;
    return attest(full, this.model.enrollments);
  }

  /** Reports a register request refused by attestation (the transport answers 401). */
  reportUnauthorized(failure: Extract<AttestationResult, { ok: false }>, transport: DeviceTransport): void {
    this.#emit({
      registrationId: failure.registrationId,
      transport,
      outcome: {
        status: 'unauthorized',
        errorCode: unauthorizedErrorCode(transport),
        errorMessage: `${failure.reason}: ${failure.detail}`,
      },
      durationMs: 0,
      timestampUtc: this.#now().toISOString(),
    });
  }

  /** Starts a registration and returns the `assigning` answer to send with `retry-after`. */
  register(
    device: AttestedDevice,
    payload: DevicePayload | undefined,
    transport: DeviceTransport,
    csr?: string,
  ): RegistrationOperationStatus {
    const operation = this.#newOperation(device, payload, transport, csr);
    // Saved before the device hears of it: after a crash, a poll finds it and a restart finishes it.
    this.#options.store.createOperation(operation);
    this.#schedule(operation, device);
    return { operationId: operation.operationId, status: 'assigning' };
  }

  /**
   * `register`, with the operation saved among the store's other writes of this event-loop turn
   * (`createOperationSoon`) when the store can: the answer comes once it is committed (still
   * before the device hears of the operation), and an allocation that ends in the same turn
   * (every policy but custom) is saved in the same write, the row written once. The allocation
   * starts at once, as with `register`. With other processes on the store (`sharedStore`) the
   * operation is saved at once: their allocations of the same registration id wait for it in the
   * store (`firstUnfinishedOperation`) from the moment it exists.
   */
  registerSoon(
    device: AttestedDevice,
    payload: DevicePayload | undefined,
    transport: DeviceTransport,
    csr?: string,
  ): RegistrationOperationStatus | Promise<RegistrationOperationStatus> {
    const { store } = this.#options;
    if (!store.createOperationSoon || this.#options.sharedStore) return this.register(device, payload, transport, csr);
    const operation = this.#newOperation(device, payload, transport, csr);
    const saved = store.createOperationSoon(operation);
    // Nothing outside the emulator hears of an operation before it is saved: a custom allocation
    // calls its webhook once the operation is committed (its end comes in a later turn anyway).
    const custom = allocationPolicyOf(device.enrollment, this.model) === 'custom';
    this.#schedule(operation, device, custom ? saved : undefined);
    const answer: RegistrationOperationStatus = { operationId: operation.operationId, status: 'assigning' };
    return saved.then(() => answer);
  }

  #newOperation(
    device: AttestedDevice,
    payload: DevicePayload | undefined,
    transport: DeviceTransport,
    csr: string | undefined,
  ): OperationRecord {
    this.#prune();
    const operation: OperationRecord = {
      operationId: createOperationId(),
      registrationId: device.registrationId,
      enrollment: enrollmentRef(device.enrollment),
      transport,
      createdAtMs: this.#now().getTime(),
    };
    if (payload !== undefined) operation.payload = payload;
    if (device.x509) operation.x509 = device.x509;
    if (csr !== undefined) operation.csr = csr;
    return operation;
  }

  /**
   * Runs again the allocations a previous process left unfinished (it stopped or crashed): their
   * devices are still polling. Call once, before serving. Returns how many were resumed.
   */
  resumeUnfinished(): number {
    const unfinished = this.#options.store.unfinishedOperations();
    for (const operation of unfinished) {
      const enrollment = this.#findEnrollment(operation.enrollment);
      if (enrollment) {
        this.#schedule(operation, {
          ok: true,
          registrationId: operation.registrationId,
          enrollment,
          keyUsed: 'primary',
          ...(operation.x509 ? { x509: operation.x509 } : {}),
        });
        continue;
      }
      const what = operation.enrollment.kind === 'group' ? 'enrollment group' : 'individual enrollment';
      const now = this.#now();
      this.#options.store.finishOperation(
        operation.operationId,
        {
          operationId: operation.operationId,
          status: 'failed',
          registrationState: {
            registrationId: operation.registrationId,
            status: 'failed',
            errorCode: DpsErrorCode.NotFound,
            errorMessage: `The ${what} "${operation.enrollment.id}" no longer exists.`,
            lastUpdatedDateTimeUtc: formatDpsTimestamp(now),
          },
        },
        now.getTime(),
      );
    }
    return unfinished.length;
  }

  /**
   * Allocations of one registration id run one after another, in the order they were created:
   * in this process by a chain per id, and with `sharedStore` also after those of other processes.
   */
  #schedule(operation: OperationRecord, device: AttestedDevice, saved?: Promise<void>): void {
    const registrationKey = device.registrationId.toLowerCase();
    const previous = this.#chains.get(registrationKey) ?? Promise.resolve();
    // Without other processes, no step between: the allocation starts as soon as the previous one
    // ended (and, when given, `saved` resolved: an operation the store did not save is not allocated).
    const run = this.#options.sharedStore
      ? previous.then(() => this.#turnInStore(operation)).then(() => this.#allocate(operation, device))
      : saved
        ? previous
            .then(() => saved)
            .then(
              () => this.#allocate(operation, device),
              () => undefined,
            )
        : previous.then(() => this.#allocate(operation, device));
    const tracked = run.finally(() => {
      this.#inFlight.delete(tracked);
      if (this.#chains.get(registrationKey) === tracked) this.#chains.delete(registrationKey);
    });
    const done = tracked.then(
      () => undefined,
      () => undefined,
    );
    this.#running.set(operation.operationId, { done, registrationKey });
    void done.then(() => this.#running.delete(operation.operationId));
    this.#inFlight.add(tracked);
    this.#chains.set(registrationKey, tracked);
  }

  /**
   * Resolves once `operation` is its registration id's first unfinished operation in the store:
   * the earlier ones, created by another process on the store (this process's own ran before it,
   * in its chain), have finished. An earlier operation unfinished for `ABANDONED_AFTER_MS` (its
   * process was killed; a restart resumes it) is waited for no longer, and a store that cannot be
   * read ends the wait: the allocation then runs as it would without other processes.
   */
  async #turnInStore(operation: OperationRecord): Promise<void> {
    const every = this.#options.storePollMs ?? 20;
    for (;;) {
      let first: { operationId: string; createdAtMs: number } | undefined;
      try {
        first = this.#options.store.firstUnfinishedOperation(operation.registrationId);
      } catch (error) {
        this.#options.onError?.(error, {
          registrationId: operation.registrationId,
          operationId: operation.operationId,
        });
        return;
      }
      if (!first || first.operationId === operation.operationId || this.#abort.signal.aborted) return;
      if (this.#now().getTime() - first.createdAtMs >= ABANDONED_AFTER_MS) return;
      await abortableSleep(every, this.#abort.signal);
    }
  }

  #findEnrollment(ref: EnrollmentRef): EmulatedEnrollment | undefined {
    const { enrollments } = this.model;
    if (ref.kind === 'individual') return enrollments.individuals.get(ref.id.toLowerCase());
    return enrollments.groups.find((group) => group.id.toLowerCase() === ref.id.toLowerCase());
  }

  /**
   * Whether the operation's allocation is running in this process for this registration id: the
   * operation is then `assigning` (its end is committed before it stops running), so a poll to
   * hold needs no read of it before the hold. (Issue #13: that read was one SQLite point read for
   * nearly every registration of a custom enrollment with retry-after 0.) An operation running in
   * another process on the same store (`--workers`) is not known here: its poll reads the store.
   */
  allocating(registrationId: string, operationId: string): boolean {
    return this.#running.get(operationId)?.registrationKey === registrationId.toLowerCase();
  }

  /** A poll, answered from the store: only the registration that created an operation can see it. */
  operation(registrationId: string, operationId: string): OperationView {
    const operation = this.#options.store.getOperation(operationId);
    if (!operation || operation.registrationId.toLowerCase() !== registrationId.toLowerCase()) {
      return { state: 'not-found' };
    }
    if (!operation.response) {
      // As the real service answers a poll (azure-sdk-for-c az_iot_provisioning_client.c, "Stage 2").
      return {
        state: 'assigning',
        body: {
          operationId,
          status: 'assigning',
          registrationState: { registrationId: operation.registrationId, status: 'assigning' },
        },
      };
    }
    // The store's text when it has it: the answer is written as stored (OperationRecord.responseJson).
    return operation.responseJson === undefined
      ? { state: 'done', body: operation.response }
      : { state: 'done', body: operation.response, json: operation.responseJson };
  }

  /**
   * Resolves when the operation's allocation has ended, or after `timeoutMs`, whichever is first.
   * An allocation running in another process on the same store (`dps-emulator start --workers`:
   * a poll can reach another worker than the register request did) is watched in the store.
   */
  async settled(operationId: string, timeoutMs: number): Promise<void> {
    const done = this.#running.get(operationId)?.done ?? this.#finishedInStore(operationId, timeoutMs);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    try {
      await Promise.race([done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves once the store has the operation's answer (or it is gone), looking every `storePollMs`, for at most `forMs`. */
  async #finishedInStore(operationId: string, forMs: number): Promise<void> {
    const every = this.#options.storePollMs ?? 20;
    // The monotonic clock: a wall clock set back (NTP, a VM resumed) would keep this loop reading
    // the store for as long as the jump, after the request that waited has been answered.
    const until = performance.now() + forMs;
    for (;;) {
      const operation = this.#options.store.getOperation(operationId);
      if (!operation || operation.response || performance.now() >= until || this.#abort.signal.aborted) return;
      await abortableSleep(every, this.#abort.signal);
    }
  }

  /** The registration record DPS reports for a device (`POST /{idScope}/registrations/{id}`). */
  lookup(registrationId: string): DeviceRegistrationResult | undefined {
    return this.#options.store.get(registrationId)?.result;
  }

  /** Resolves when no allocation is running. */
  async whenIdle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** Cuts webhook calls and retry waits short, then waits for running allocations to end. */
  async close(): Promise<void> {
    this.#abort.abort();
    await this.whenIdle();
  }

  async #allocate(operation: OperationRecord, device: AttestedDevice): Promise<void> {
    const { payload, transport } = operation;
    const started = this.#now();
    const createdAt = new Date(operation.createdAtMs);
    const { enrollment, registrationId } = device;
    const policy = allocationPolicyOf(enrollment, this.model);
    let webhook: WebhookReport | undefined;
    let webhookExchange: WebhookExchange | undefined;
    let record: RegistrationRecord;
    let initialTwin: InitialTwin | undefined;
    let hubAssignment: HubAssignment | undefined;
    let issuedCertificateChain: string[] | undefined;
    try {
      const previous = this.#options.store.get(registrationId);
      const current = previous?.assignment;
      // The result objects below are literals with their properties named (not `{ ...base, … }`):
      // see attest() on spreads and object shapes.
      const createdDateTimeUtc = previous?.result.createdDateTimeUtc ?? formatDpsTimestamp(createdAt);
      // A certificate request whose signature fails is refused before any webhook call.
      const csr = operation.csr !== undefined ? await checkCsr(operation.csr, registrationId) : undefined;
      if (enrollment.record.provisioningStatus === 'disabled') {
        record = this.#record(device, previous, { registrationId, createdDateTimeUtc, status: 'disabled' });
      } else if (csr && !csr.ok) {
        record = this.#record(device, previous, {
          registrationId,
          createdDateTimeUtc,
          status: 'failed',
          errorCode: DpsErrorCode.InvalidRequestBody,
          errorMessage: `${csr.problem}.`,
        });
      } else {
        const allocated = await this.#decide(enrollment, registrationId, payload, current, policy, device.x509);
        webhook = allocated.webhook;
        webhookExchange = allocated.exchange;
        const decision = allocated.decision;
        if (decision.kind === 'failed') {
          record = this.#record(device, previous, {
            registrationId,
            createdDateTimeUtc,
            status: 'failed',
            errorCode: decision.errorCode,
            errorMessage: decision.errorMessage,
          });
        } else {
          const reprovision = enrollment.record.reprovisionPolicy ?? DEFAULT_REPROVISION_POLICY;
          const deviceId = deviceIdOf(enrollment, registrationId);
          const substatus = substatusAfter(current, reprovision, decision.hub);
          const result: DeviceRegistrationResult = {
            registrationId,
            createdDateTimeUtc,
            assignedHub: decision.hub,
            deviceId,
            status: 'assigned',
            substatus,
          };
          const resetTwin = initialTwinApplies(current, reprovision);
          if (resetTwin) {
            // A null or absent twin from the webhook falls back to the enrollment's, as DPS documents.
            const twin = decision.initialTwin ?? enrollment.record.initialTwin ?? undefined;
            if (twin) initialTwin = twin;
          }
          record = this.#record(device, previous, result, decision.payload ?? undefined);
          record.assignment = { hub: decision.hub, deviceId, substatus };
          if (initialTwin) record.initialTwin = initialTwin;
          else delete record.initialTwin;
          if (csr?.ok) issuedCertificateChain = await this.#issue(csr.request, registrationId);
          const credentials = issuedCertificateChain
            ? issuedCredentials(issuedCertificateChain)
            : deviceCredentials(device, registrationId);
          const hubTwin = decision.initialTwin ?? enrollment.record.initialTwin ?? undefined;
          hubAssignment = {
            registrationId,
            hub: decision.hub,
            deviceId,
            ...credentials,
            resetTwin,
            ...(current ? { previous: { hub: current.hub, deviceId: current.deviceId } } : {}),
            // Also when DPS writes no twin: a device with nothing to migrate (deleted from its hub
            // meanwhile) is created again from it (hub/core/assignment.ts).
            ...(hubTwin ? { initialTwin: hubTwin } : {}),
          };
        }
      }
      const saving = this.#finish(operation, record, true, hubAssignment, issuedCertificateChain);
      if (saving) await saving;
    } catch (error) {
      this.#options.onError?.(error, { registrationId, operationId: operation.operationId });
      record = this.#record(device, undefined, {
        registrationId,
        createdDateTimeUtc: formatDpsTimestamp(createdAt),
        status: 'failed',
        errorCode: DpsErrorCode.InternalServerError,
        errorMessage: `Internal error: ${error instanceof Error ? error.message : String(error)}`,
      });
      try {
        const saving = this.#finish(operation, record, false);
        if (saving) await saving;
      } catch (storeError) {
        // The store refuses even the failure: the device keeps polling `assigning` until a restart
        // runs the operation again.
        this.#options.onError?.(storeError, { registrationId, operationId: operation.operationId });
      }
    }

    const result = record.result;
    const outcome: RegistrationOutcome = { status: result.status as RegistrationOutcome['status'] };
    if (result.assignedHub) outcome.assignedHub = result.assignedHub;
    if (result.deviceId) outcome.deviceId = result.deviceId;
    if (result.substatus) outcome.substatus = result.substatus;
    if (result.errorCode !== undefined) outcome.errorCode = result.errorCode;
    if (result.errorMessage !== undefined) outcome.errorMessage = result.errorMessage;
    if (initialTwin) outcome.initialTwin = initialTwin;
    if (result.payload) outcome.payload = result.payload;
    const event: RegistrationEvent = {
      registrationId,
      operationId: operation.operationId,
      transport,
      enrollment: enrollmentRef(enrollment),
      policy,
      outcome,
      durationMs: this.#now().getTime() - Math.min(started.getTime(), operation.createdAtMs),
      timestampUtc: this.#now().toISOString(),
    };
    if (webhook) event.webhook = webhook;
    if (webhookExchange) event.webhookExchange = webhookExchange;
    if (payload !== undefined) event.devicePayload = payload;
    event.registrationState = result;
    this.#emit(event);
  }

  async #decide(
    enrollment: EmulatedEnrollment,
    registrationId: string,
    payload: DevicePayload | undefined,
    current: CurrentAssignment | undefined,
    policy: AllocationPolicy,
    x509: X509RuntimeContext | undefined,
  ): Promise<{ decision: AllocationDecision; webhook?: WebhookReport; exchange?: WebhookExchange }> {
    const reprovision = enrollment.record.reprovisionPolicy ?? DEFAULT_REPROVISION_POLICY;
    const stay = stayOnCurrentHub(current, reprovision);
    const candidates = candidateHubs(enrollment.record, this.model.linkedHubs);
    const noHub = (reason: string): { decision: AllocationDecision } => ({
      decision: {
        kind: 'failed',
        errorCode: DpsErrorCode.AllocationNoIotHub,
        errorMessage: DpsErrorMessage.allocationNoIotHub(reason),
      },
    });

    if (policy === 'custom') {
      const definition = enrollment.record.customAllocationDefinition;
      if (!definition)
        return noHub(`enrollment "${enrollment.id}" uses custom allocation without a customAllocationDefinition`);
      const linkedHubs = stay && current ? [current.hub] : candidates.map((hub) => hub.hostName);
      const request = buildAllocationRequest({ enrollment, registrationId, payload, current, linkedHubs, x509 });
      const signal = this.#abort.signal;
      return runCustomAllocation(definition.webhookUrl, request, maskWebhookUrl(definition.webhookUrl), {
        call: (url, body) => this.#options.callWebhook(url, body, signal),
        sleep: (ms) => abortableSleep(ms, signal),
        retry: this.#options.webhookRetry,
        twinProblem: initialTwinProblem,
      });
    }
    if (stay && current) return { decision: { kind: 'assigned', hub: current.hub } };
    if (policy === 'static') {
      const picked = pickStatic(enrollment.record);
      return 'hub' in picked ? { decision: { kind: 'assigned', hub: picked.hub } } : noHub(picked.problem);
    }
    const hub =
      policy === 'geoLatency' ? pickGeoLatency(registrationId, candidates) : pickHashed(registrationId, candidates);
    return hub
      ? { decision: { kind: 'assigned', hub } }
      : noHub('no linked IoT hub takes part in allocation for this enrollment');
  }

  /**
   * Saves the operation's final answer, with the record when `saveRecord` and the device identity
   * in its hub after an assignment, in one transaction: a device told `assigned` finds its identity.
   * Returns a promise when the store commits it later (`finishOperationSoon`, with the other
   * writes of the turn): the allocation ends, and its poll is answered, once it is saved.
   */
  #finish(
    operation: OperationRecord,
    record: RegistrationRecord,
    saveRecord: boolean,
    hub?: HubAssignment,
    issuedCertificateChain?: string[],
  ): Promise<void> | undefined {
    const response: RegistrationOperationStatus = {
      operationId: operation.operationId,
      status: record.result.status,
      // The issued chain is in the register operation's answers only, never in the registration
      // record a status lookup returns (REST spec, DeviceRegistrationResult.issuedCertificateChain).
      registrationState: issuedCertificateChain ? { ...record.result, issuedCertificateChain } : record.result,
    };
    const finishedAt = this.#now().getTime();
    const { store } = this.#options;
    if (store.finishOperationSoon) {
      return saveRecord
        ? store.finishOperationSoon(operation.operationId, response, finishedAt, record, hub)
        : store.finishOperationSoon(operation.operationId, response, finishedAt);
    }
    if (saveRecord) store.finishOperation(operation.operationId, response, finishedAt, record, hub);
    else store.finishOperation(operation.operationId, response, finishedAt);
    return undefined;
  }

  /** Signs the device's certificate request (checked when the register request came in). */
  async #issue(request: Pkcs10CertificateRequest, registrationId: string): Promise<string[]> {
    const ca = this.#options.issuingCa;
    // Only after a restart without the issuing CA (the request was accepted with one): an internal error.
    if (!ca) throw new Error('a registration requested a certificate (csr), but no issuing CA is configured');
    return issueCertificate(ca, request, registrationId, this.#now());
  }

  #record(
    device: AttestedDevice,
    previous: RegistrationRecord | undefined,
    fields: DeviceRegistrationResult,
    payload?: DevicePayload,
  ): RegistrationRecord {
    const written = this.#now();
    const now = formatDpsTimestamp(written);
    // Field order follows the real service's bodies: the attestation block first
    // (`{"x509":{"enrollmentGroupId":…},"registrationId":…}` in the u-blox capture). Assigned one
    // by one onto an empty literal rather than built of conditional spreads (`{ ...(a ? {…} : {}),
    // b, … }`): optimized code gives every object that starts with a spread a map of its own, and
    // each such result then missed the property caches of every function that read it (the store's
    // put, #finish, the event); this way results share a handful of maps.
    const result = {} as DeviceRegistrationResult;
    if (fields.status === 'assigned' && device.enrollment.kind === 'group') {
      if (device.enrollment.x509) result.x509 = { enrollmentGroupId: device.enrollment.id };
      else result.symmetricKey = { enrollmentGroupId: device.enrollment.id };
    }
    result.registrationId = fields.registrationId;
    result.createdDateTimeUtc = fields.createdDateTimeUtc;
    if (fields.assignedHub) result.assignedHub = fields.assignedHub;
    if (fields.deviceId) result.deviceId = fields.deviceId;
    result.status = fields.status;
    if (fields.substatus) result.substatus = fields.substatus;
    if (fields.errorCode !== undefined) result.errorCode = fields.errorCode;
    if (fields.errorMessage !== undefined) result.errorMessage = fields.errorMessage;
    result.lastUpdatedDateTimeUtc = now;
    // The etag's 8 random hex digits from randomUUID's pooled bytes: its default, randomBytes(4),
    // is a system call per registration.
    result.etag = createRegistrationEtag(written, { seed: randomUUID().slice(0, 8) });
    if (payload) result.payload = payload;
    const record: RegistrationRecord = {
      registrationId: device.registrationId,
      enrollment: enrollmentRef(device.enrollment),
      result,
    };
    if (previous?.assignment) record.assignment = previous.assignment;
    if (previous?.initialTwin) record.initialTwin = previous.initialTwin;
    return record;
  }

  #emit(event: RegistrationEvent): void {
    try {
      this.#options.onRegistration?.(event);
    } catch (error) {
      this.#options.onError?.(error, { registrationId: event.registrationId, operationId: event.operationId ?? '' });
    }
  }

  #prune(): void {
    const now = this.#now().getTime();
    if (now - this.#lastPrune < 60_000) return;
    this.#lastPrune = now;
    this.#options.store.pruneOperations(now - (this.#options.operationRetentionMs ?? 3_600_000));
  }
}

/**
 * How long an unfinished operation holds back the later ones of its registration id in other
 * processes (`sharedStore`): longer than any allocation runs with DPS's webhook retry schedule
 * (415 s of waits plus 11 calls of at most 30 s), short enough that a killed process's operation
 * does not block its device for good.
 */
export const ABANDONED_AFTER_MS = 15 * 60_000;

/** Groups: the registration id. Individual enrollments: their `deviceId` when set. */
export function deviceIdOf(enrollment: EmulatedEnrollment, registrationId: string): string {
  return enrollment.kind === 'individual' && enrollment.record.deviceId ? enrollment.record.deviceId : registrationId;
}

/**
 * A device that was issued a certificate is registered in its hub by that certificate's thumbprint
 * (`selfSigned`), whatever it attested with: the Azure IoT C# SDK's issuance sample says DPS
 * "will register the device and operational client certificate thumbprint in IoT hub".
 */
function issuedCredentials(chain: readonly string[]): Pick<HubAssignment, 'x509Thumbprint'> {
  const thumbprint = new X509Certificate(Buffer.from(chain[0] ?? '', 'base64')).fingerprint256.replaceAll(':', '');
  return { x509Thumbprint: { primaryThumbprint: thumbprint, secondaryThumbprint: thumbprint } };
}

/**
 * The credentials a device's hub identity gets: what it attested with. Keys: the individual
 * enrollment's, or derived from the group's. A certificate: its SHA-256 thumbprint in both slots
 * (`selfSigned`), as DPS registers X.509 devices for individual enrollments and groups alike.
 */
function deviceCredentials(
  device: AttestedDevice,
  registrationId: string,
): Pick<HubAssignment, 'keys' | 'x509Thumbprint'> {
  const { enrollment } = device;
  if (enrollment.keys) {
    if (enrollment.kind === 'individual') return { keys: { ...enrollment.keys } };
    return {
      keys: {
        primaryKey: groupDeviceKey(enrollment.keys, 'primary', registrationId),
        secondaryKey: groupDeviceKey(enrollment.keys, 'secondary', registrationId),
      },
    };
  }
  const thumbprint = device.x509?.certificateInfo?.sha256Thumbprint;
  return thumbprint ? { x509Thumbprint: { primaryThumbprint: thumbprint, secondaryThumbprint: thumbprint } } : {};
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
