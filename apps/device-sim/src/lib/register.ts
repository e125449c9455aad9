import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import type { DeviceRegistrationResult } from '@dpskit/contracts';
import { deriveDeviceKey } from '@dpskit/contracts/keys';
import { InvalidOptionError } from './errors.js';
import type { HubConnectOptions, HubSession } from './hub.js';
import {
  checkCaPem,
  checkIdScope,
  checkKey,
  checkMilliseconds,
  checkRegistrationId,
  checkTransport,
  checkWholeNumber,
  MAX_RETRIES,
} from './inputs.js';
import { isPlainObject } from './payload.js';
import type { ErrorFacts } from './sdk/errors.js';
import { ProvisioningDeviceClient, SymmetricKeySecurityClient, X509Security } from './sdk/modules.js';
import { CANCELLED_ERROR_NAME } from './stats.js';
import { checkStayOptions } from './stay-options.js';
import { type Endpoint, parseProvisioningHost } from './transport/endpoint.js';
import { RegistrationObserver } from './transport/observer.js';
import type { DeviceTransport } from './transport/types.js';
import { DEFAULT_PROVISIONING_HOST, type RegistrationOutcome, type StatusUpdate, type TransportName } from './types.js';

export interface RegisterOptions {
  /** DPS device endpoint; `host:port` allowed. Default `global.azure-devices-provisioning.net`. */
  provisioningHost?: string;
  idScope: string;
  registrationId: string;
  /** The device's own symmetric key (individual enrollment, or already derived). */
  deviceKey?: string;
  /** The enrollment group key: the device key is derived from it (HMAC-SHA256 of the registration id). */
  groupKey?: string;
  /**
   * X.509 attestation instead of a key (`azure-iot-security-x509`): `cert` is the device certificate
   * followed by the intermediates it presents (PEM), `key` its private key (PEM). DPS takes the
   * registration id from the certificate's subject CN.
   */
  certificate?: { cert: string; key: string };
  /** Default `mqtt`. */
  transport?: TransportName;
  /** Custom payload sent with the register request; DPS hands it to the allocation webhook. */
  payload?: Record<string, unknown>;
  /** PEM CA certificate(s) to trust instead of Node's bundled roots (e.g. the local emulator's CA). */
  ca?: string;
  /** Poll interval when the service sends no `retry-after` (SDK default 2000 ms). */
  pollingIntervalMs?: number;
  /** Give up when there is no final answer after this long (ms). Default: no limit (the SDK polls forever). */
  timeoutMs?: number;
  onStatus?: (s: StatusUpdate) => void;
  /** Aborting cancels the registration: the outcome is `error` with `errorName` `AbortError`. */
  signal?: AbortSignal;
  /** How long to wait for the SDK to let go after a cancel or timeout before resolving anyway. Default 2000 ms. */
  cancelGraceMs?: number;
  /**
   * Registrations started again after a transient failure: no answer from the service (connection
   * refused or dropped, the SDK's 30 s request timeout) or a 429/5xx answer. Default 0: the SDK's
   * outcome as it is. Each retry is a new register request, after an exponential back-off with
   * jitter (see `retryBackoffMs`), as a real device should retry; within `timeoutMs` overall.
   */
  retries?: number;
  /** The first back-off before a retry (ms; default 1000); it doubles for each further retry, up to 30 s. */
  retryBackoffMs?: number;
  /**
   * Once assigned, connect to the assigned hub with `azure-iot-device` (MQTT): read the twin,
   * report properties, send `telemetryCount` messages (`outcome.hubSession`). `ca` and `signal` are
   * this call's.
   */
  connect?: Pick<HubConnectOptions, 'gatewayHost' | 'transport' | 'reported' | 'telemetryCount' | 'timeoutMs' | 'stay'>;
  /**
   * Called with the outcome once the device is assigned, before it connects to its hub (`connect`):
   * with `connect.stay` the outcome resolves only when the device leaves its hub.
   */
  onAssigned?: (outcome: RegistrationOutcome) => void;
  /**
   * A TLS context to share between many devices instead of one built per connection (see
   * `createSharedTlsContext`; `runFleet` makes one per fleet). It must trust what `ca` trusts. Used
   * over MQTT and HTTPS with a key; ignored for an X.509 device (its context holds its certificate)
   * and over AMQP and WebSockets, whose SDK bases take no context.
   */
  tlsContext?: SecureContext;
}

type SecurityClient = Parameters<(typeof ProvisioningDeviceClient)['create']>[3];

interface Prepared {
  endpoint: Endpoint;
  idScope: string;
  registrationId: string;
  credential: { deviceKey: string } | { certificate: { cert: string; key: string } };
  transport: TransportName;
}

function prepare(options: RegisterOptions): Prepared {
  const hostText = options.provisioningHost ?? DEFAULT_PROVISIONING_HOST;
  const endpoint = parseProvisioningHost(hostText, 'provisioningHost');
  if (!endpoint.ok) throw new InvalidOptionError('provisioningHost', endpoint.message);
  const idScope = checkIdScope({ field: 'idScope', value: options.idScope ?? '' });
  const registrationId = checkRegistrationId({ field: 'registrationId', value: options.registrationId ?? '' });
  const transport = checkTransport({ field: 'transport', value: options.transport ?? 'mqtt' });
  const given = [options.deviceKey, options.groupKey, options.certificate].filter((c) => c !== undefined).length;
  if (given !== 1) {
    throw new InvalidOptionError(
      'deviceKey',
      "give exactly one of deviceKey (the device's key), groupKey (the enrollment group key) or certificate (X.509)",
    );
  }
  const credential: Prepared['credential'] = options.certificate
    ? { certificate: checkCertificate(options.certificate) }
    : {
        deviceKey:
          options.deviceKey !== undefined
            ? checkKey({ field: 'deviceKey', value: options.deviceKey })
            : deriveDeviceKey(checkKey({ field: 'groupKey', value: options.groupKey as string }), registrationId),
      };
  if (options.payload !== undefined && !isPlainObject(options.payload)) {
    throw new InvalidOptionError('payload', 'payload must be a plain object (it is sent as a JSON object)');
  }
  if (options.ca !== undefined) checkCaPem({ field: 'ca', value: options.ca });
  if (options.connect?.stay) {
    checkStayOptions(options.connect.stay);
    if (!options.signal) {
      throw new InvalidOptionError('signal', 'connect.stay: a device that stays on its hub needs a signal to end it');
    }
  }
  if (options.retries !== undefined) checkWholeNumber({ field: 'retries', value: options.retries }, 0, MAX_RETRIES);
  for (const field of ['pollingIntervalMs', 'timeoutMs', 'cancelGraceMs', 'retryBackoffMs'] as const) {
    const value = options[field];
    if (value !== undefined) checkMilliseconds({ field, value });
  }
  return { endpoint: endpoint.value, idScope, registrationId, credential, transport };
}

/** A PEM certificate (chain) and a PEM private key that belongs to its first certificate. */
function checkCertificate(certificate: { cert: string; key: string }): { cert: string; key: string } {
  let first: X509Certificate;
  try {
    first = new X509Certificate(certificate.cert);
  } catch (err) {
    throw new InvalidOptionError('certificate', `cert is not a PEM certificate (${(err as Error).message})`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(certificate.key);
  } catch (err) {
    throw new InvalidOptionError('certificate', `key is not a PEM private key (${(err as Error).message})`);
  }
  if (!first.checkPrivateKey(key)) {
    throw new InvalidOptionError(
      'certificate',
      `key is not the private key of the certificate ${first.subject.replaceAll('\n', ', ')}`,
    );
  }
  return certificate;
}

type Settled =
  | { kind: 'result'; value: unknown }
  | { kind: 'error'; error: unknown }
  | { kind: 'cancelled' }
  | { kind: 'timeout' };

/**
 * Provisions one device through the official SDK (`ProvisioningDeviceClient` with the MQTT or HTTP
 * transport and a `SymmetricKeySecurityClient`, or `X509Security` with a certificate) and reports the outcome. Never rejects for a
 * service or network failure: those are outcomes. Rejects with `InvalidOptionError` for bad options.
 */
export async function registerDevice(options: RegisterOptions): Promise<RegistrationOutcome> {
  const startedAt = performance.now();
  const prepared = prepare(options);
  const base: Pick<RegistrationOutcome, 'registrationId' | 'transport'> = {
    registrationId: prepared.registrationId,
    transport: prepared.transport,
  };
  const elapsed = () => Math.round(performance.now() - startedAt);
  const retries = options.retries ?? 0;
  const deadline = options.timeoutMs ? startedAt + options.timeoutMs : undefined;
  for (let attempt = 1; ; attempt += 1) {
    if (options.signal?.aborted) return withAttempts({ ...base, ...cancelledFacts(), durationMs: elapsed() }, attempt);
    const remainingMs = deadline === undefined ? undefined : Math.max(1, deadline - performance.now());
    const settled = await attemptRegistration(prepared, options, remainingMs, startedAt);
    const durationMs = elapsed();
    if (settled.kind === 'timeout') {
      return withAttempts(
        {
          ...base,
          status: 'error',
          errorName: 'TimeoutError',
          errorMessage: `no final answer from the service within ${formatSeconds(options.timeoutMs ?? 0)}`,
          durationMs,
        },
        attempt,
      );
    }
    if (settled.kind === 'cancelled') return withAttempts({ ...base, ...cancelledFacts(), durationMs }, attempt);
    if (settled.kind === 'result') {
      const outcome = withAttempts(assignedOutcome(base, settled.value, durationMs), attempt);
      options.onAssigned?.({ ...outcome });
      if (options.connect && outcome.assignedHub && outcome.deviceId) {
        outcome.hubSession = await hubSession(options, prepared, outcome.assignedHub, outcome.deviceId);
      }
      return outcome;
    }
    // Loaded on a device's first failure: the contract's schemas (zod, about 60-80 ms of CPU) that
    // read the service's error body are not needed by a fleet whose devices are assigned.
    const { describeRegistrationError, isTransientFailure } = await import('./sdk/errors.js');
    const facts = describeRegistrationError(settled.error);
    if (attempt <= retries && isTransientFailure(facts)) {
      const waitMs = retryBackoff(attempt, options.retryBackoffMs ?? DEFAULT_RETRY_BACKOFF_MS);
      // A retry that could not start before the deadline would only turn this failure into a timeout.
      if (deadline === undefined || performance.now() + waitMs < deadline) {
        if (await sleepUnlessAborted(waitMs, options.signal)) continue;
        return withAttempts({ ...base, ...cancelledFacts(), durationMs: elapsed() }, attempt);
      }
    }
    return withAttempts(errorOutcome(base, facts, durationMs), attempt);
  }
}

/** One register request and its polls through a fresh SDK client and transport. */
async function attemptRegistration(
  prepared: Prepared,
  options: RegisterOptions,
  timeoutMs: number | undefined,
  startedAt: number,
): Promise<Settled> {
  const { registrationId, transport: transportName } = prepared;

  const observer = new RegistrationObserver(registrationId, startedAt, options.onStatus);
  const tlsContext = 'deviceKey' in prepared.credential ? options.tlsContext : undefined;
  const deviceTransport = await createTransport(transportName, observer, prepared.endpoint, options.ca, tlsContext);
  // A device's first use of a transport loads its module, reading files: a cancel may have come.
  if (options.signal?.aborted) {
    deviceTransport.dispose();
    return { kind: 'cancelled' };
  }
  const { sdkHost } = deviceTransport;
  if (options.pollingIntervalMs !== undefined) {
    deviceTransport.sdkTransport.setTransportOptions({ pollingInterval: options.pollingIntervalMs });
  }
  // The security package is typed against azure-iot-common 1.13.2 and the client against 1.13.1: the
  // same runtime shape, but TypeScript sees two SharedAccessSignature classes.
  const security = ('certificate' in prepared.credential
    ? new X509Security(registrationId, prepared.credential.certificate)
    : new SymmetricKeySecurityClient(registrationId, prepared.credential.deviceKey)) as unknown as SecurityClient;
  const client = ProvisioningDeviceClient.create(sdkHost, prepared.idScope, deviceTransport.sdkTransport, security);
  if (options.payload !== undefined) client.setProvisioningPayload(options.payload);

  let sdkReturned = false;
  let sdkDone!: () => void;
  const sdkFinished = new Promise<void>((resolve) => {
    sdkDone = resolve;
  });
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const graceMs = options.cancelGraceMs ?? 2000;

  const settled = await new Promise<Settled>((resolve) => {
    client.register((err, result) => {
      sdkReturned = true;
      sdkDone();
      resolve(err ? { kind: 'error', error: err } : { kind: 'result', value: result });
    });
    observer.onFatal((error) => resolve({ kind: 'error', error }));
    if (timeoutMs !== undefined) timer = setTimeout(() => resolve({ kind: 'timeout' }), timeoutMs);
    if (options.signal) {
      onAbort = () => resolve({ kind: 'cancelled' });
      options.signal.addEventListener('abort', onAbort, { once: true });
    }
  });
  clearTimeout(timer);
  if (onAbort) options.signal?.removeEventListener('abort', onAbort);

  if (!sdkReturned) {
    // The SDK is still working (cancel, timeout, or a response it could not parse): stop it, and
    // give it a moment to close its connection so that nothing keeps running behind the outcome.
    // Its transport's disconnect can hang too (see transport/mqtt.ts): bounded alike.
    await Promise.race([deviceTransport.abort(), delay(graceMs)]);
    await Promise.race([sdkFinished, delay(graceMs)]);
  }
  deviceTransport.dispose();
  return settled;
}

function errorOutcome(
  base: Pick<RegistrationOutcome, 'registrationId' | 'transport'>,
  facts: ErrorFacts,
  durationMs: number,
): RegistrationOutcome {
  const outcome: RegistrationOutcome = {
    ...base,
    status: facts.status,
    errorName: facts.errorName,
    errorMessage: facts.errorMessage,
    durationMs,
  };
  if (facts.errorCode !== undefined) outcome.errorCode = facts.errorCode;
  if (facts.operationId !== undefined) outcome.operationId = facts.operationId;
  if (facts.registrationState !== undefined) outcome.registrationState = facts.registrationState;
  return outcome;
}

/** Registrations that needed retries say how many register requests they took. */
function withAttempts(outcome: RegistrationOutcome, attempts: number): RegistrationOutcome {
  if (attempts > 1) outcome.attempts = attempts;
  return outcome;
}

export const DEFAULT_RETRY_BACKOFF_MS = 1000;
const MAX_RETRY_BACKOFF_MS = 30_000;

/**
 * Exponential back-off with "equal jitter": before retry n, between half and all of
 * `first * 2^(n-1)`, capped at 30 s. The jitter spreads a fleet that failed together (its service
 * restarted) instead of sending it back in one wave; the floor keeps the back-off growing.
 */
export function retryBackoff(retry: number, firstMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_RETRY_BACKOFF_MS, firstMs * 2 ** (retry - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Resolves true after `ms`, or false at once when `signal` aborts. */
function sleepUnlessAborted(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** After assignment (`connect`): the device on its hub, with the key or certificate it provisioned with. */
async function hubSession(
  options: RegisterOptions,
  prepared: Prepared,
  hub: string,
  deviceId: string,
): Promise<HubSession> {
  // The hub's device SDK (azure-iot-device and its MQTT transport) is loaded only when a device
  // connects: importing it cost every fleet thread about 90 ms of CPU at start, --connect or not.
  const { connectToHub } = await import('./hub.js');
  return connectToHub({
    ...options.connect,
    hub,
    deviceId,
    ...('deviceKey' in prepared.credential
      ? { deviceKey: prepared.credential.deviceKey }
      : { certificate: prepared.credential.certificate }),
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/** The device's transport; its module (and the SDK packages under it) is loaded on first use. */
async function createTransport(
  name: TransportName,
  observer: RegistrationObserver,
  endpoint: Endpoint,
  ca: string | undefined,
  tlsContext: SecureContext | undefined,
): Promise<DeviceTransport> {
  switch (name) {
    case 'http':
      return (await import('./transport/http.js')).createHttpTransport(observer, endpoint, ca, tlsContext);
    case 'mqtt':
    case 'mqtt-ws':
      return (await import('./transport/mqtt.js')).createMqttTransport(
        observer,
        endpoint,
        ca,
        name === 'mqtt-ws',
        tlsContext,
      );
    case 'amqp':
    case 'amqp-ws':
      return (await import('./transport/amqp.js')).createAmqpTransport(observer, endpoint, ca, name === 'amqp-ws');
  }
}

function assignedOutcome(
  base: Pick<RegistrationOutcome, 'registrationId' | 'transport'>,
  value: unknown,
  durationMs: number,
): RegistrationOutcome {
  const state = value as DeviceRegistrationResult | undefined;
  const outcome: RegistrationOutcome = { ...base, status: 'assigned', durationMs };
  if (state && typeof state === 'object') {
    outcome.registrationState = state;
    if (typeof state.assignedHub === 'string') outcome.assignedHub = state.assignedHub;
    if (typeof state.deviceId === 'string') outcome.deviceId = state.deviceId;
    if (isPlainObject(state.payload)) outcome.payload = state.payload;
  }
  return outcome;
}

function cancelledFacts(): Pick<RegistrationOutcome, 'status' | 'errorName' | 'errorMessage'> {
  return {
    status: 'error',
    errorName: CANCELLED_ERROR_NAME,
    errorMessage: 'cancelled before the service gave a final answer',
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
