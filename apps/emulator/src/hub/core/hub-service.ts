import { generateSymmetricKey, parseSasToken, SasTokenError, verifySasToken } from '@dpskit/contracts';
import { clip } from '../../core/client-text.js';
import {
  authorizeServiceRequest,
  resourceCovers,
  type ServiceAuthFailure,
  type SharedAccessPolicy,
} from '../../core/service-auth.js';
import {
  type C2dChange,
  type C2dOutcome,
  type C2dSettlement,
  enqueue,
  feedbackOf,
  type OutgoingC2d,
  purge,
  type QueuedC2d,
  type QueuedC2dFeedback,
  receive,
  releaseConnection,
  settle,
} from './c2d.js';
import {
  DirectMethods,
  type MethodCallReport,
  MethodError,
  type MethodResult,
  parseMethodInvocation,
} from './direct-methods.js';
import { partitionOf } from './eventhub.js';
import { type DeviceIdentity, deviceEtag, type HubDevice, isValidDeviceId, newGenerationId } from './identity.js';
import {
  type HubModule,
  identityKey,
  isModule,
  isValidModuleId,
  MAX_MODULES_PER_DEVICE,
  type ModuleIdentity,
  moduleKey,
  moduleTwinView,
  moduleView,
  readManagedBy,
  splitIdentityKey,
  whoOf,
} from './modules.js';
import type { HubPush, HubPushOutbox } from './pushes.js';
import { QueryError } from './query.js';
import { queryText, runTwinQuery, type TwinQueryPage } from './query-run.js';
import { type BulkRegistryResult, parseBulkDevices } from './registry-bulk.js';
import type { HubStore, TelemetryRecord } from './store.js';
import {
  applyReportedPatch,
  applyServicePatch,
  applyServiceReplacement,
  deviceTwinDocument,
  etagMatches,
  initialTwinState,
  type JsonObject,
  parseServiceTwinPatch,
  parseServiceTwinReplacement,
  TwinError,
  type TwinState,
  twinEtag,
} from './twin.js';
import { deviceView, twinView } from './views.js';
import {
  type CertificateAuthFailure,
  checkThumbprintCertificate,
  isThumbprint,
  normalizeThumbprint,
} from './x509-authentication.js';

/** The permissions of an IoT Hub shared access policy (azure-docs iot-hub-dev-guide-sas). */
export const HUB_RIGHTS = ['RegistryRead', 'RegistryWrite', 'ServiceConnect', 'DeviceConnect'] as const;
export type HubRight = (typeof HUB_RIGHTS)[number];
export type HubPolicy = SharedAccessPolicy<HubRight>;

/** The most devices `GET /devices` answers (IoT Hub's cap on `top`). */
export const MAX_LISTED_DEVICES = 1000;

/** The policy every IoT hub is created with, holding every right. */
export const HUB_OWNER_POLICY_NAME = 'iothubowner';

/**
 * The emulated hubs' well-known development key for `iothubowner`, public on purpose like the DPS
 * service key (`WELL_KNOWN_SERVICE_KEY`): it protects nothing.
 */
export const WELL_KNOWN_HUB_KEY = 'o09XICNmaRP+FS95c35/zhTsvc4AwBnx3+AHkjreljc=';

export const DEFAULT_HUB_POLICIES: readonly HubPolicy[] = [
  { keyName: HUB_OWNER_POLICY_NAME, primaryKey: WELL_KNOWN_HUB_KEY, rights: HUB_RIGHTS },
];

/** How a device reached the hub (`amqp`: AMQP over TLS or over WebSockets). */
export type HubTransport = 'mqtt' | 'https' | 'amqp';

/** What the hubs report (the emulator logs them and emits them as `hub` events; never keys). */
export type HubEvent =
  | { kind: 'connected' | 'disconnected'; hub: string; deviceId: string; moduleId?: string; transport: HubTransport }
  | {
      kind: 'connect-refused';
      hub: string;
      deviceId: string;
      moduleId?: string;
      transport: HubTransport;
      reason: string;
    }
  | {
      kind: 'reported';
      hub: string;
      deviceId: string;
      moduleId?: string;
      reportedVersion: number;
      patch: JsonObject;
    }
  | {
      kind: 'twin-updated';
      hub: string;
      deviceId: string;
      /** A module twin's (`moduleId` absent: the device twin). */
      moduleId?: string;
      version: number;
      tags?: JsonObject;
      desired?: JsonObject;
    }
  | {
      kind: 'telemetry';
      hub: string;
      deviceId: string;
      /** Sent by a module of the device (`ModuleClient`). */
      moduleId?: string;
      transport: HubTransport;
      bytes: number;
      body: string;
      properties: Record<string, string>;
    }
  | { kind: 'device-created' | 'device-updated' | 'device-deleted'; hub: string; deviceId: string }
  | { kind: 'module-created' | 'module-updated' | 'module-deleted'; hub: string; deviceId: string; moduleId: string }
  /** A direct method call ended (never its payloads): the device's status, or the HTTP status the service got. */
  | ({ kind: 'method'; moduleId?: string } & MethodCallReport)
  /**
   * A cloud-to-device message changed state (never its body or properties): enqueued, delivered
   * (locked for the device), completed, rejected, abandoned, its lock lapsed or released, expired,
   * dead-lettered, purged. `transport` is the device's, where one took part.
   */
  | {
      kind: 'c2d';
      hub: string;
      deviceId: string;
      outcome: C2dOutcome;
      /** The service's message id, clipped; absent when it set none. */
      messageId?: string;
      /** The message's place in its device's queue. */
      sequenceNumber: number;
      bytes: number;
      deliveryCount: number;
      transport?: HubTransport;
    };

/** An answer the registry API gives as an error: IoT Hub's status and `ErrorCode`. */
export class HubError extends Error {
  override readonly name = 'HubError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type DeviceAuthFailure =
  | 'unknown-hub'
  | 'invalid-device-id'
  | 'device-not-found'
  | 'invalid-module-id'
  | 'module-not-found'
  | 'device-disabled'
  | 'missing-token'
  | 'certificate-authority-not-emulated'
  /** A module's token where its device's is expected (`ModuleClient` over HTTPS: see isModuleToken). */
  | 'module-token'
  | CertificateAuthFailure
  | Exclude<SasTokenError['reason'], 'key-name-mismatch'>
  /** A policy token (`skn`) naming no policy of the hub, or one without DeviceConnect. */
  | 'unknown-policy'
  | 'missing-right';

export type DeviceAuthResult =
  | {
      ok: true;
      hub: string;
      deviceId: string;
      moduleId?: string;
      /**
       * The verified SAS token's `se` (seconds) when a token authenticated the device (its own key or
       * a policy's on its behalf); none when its certificate did. The transports time the
       * connection's end by it without parsing the token again.
       */
      tokenExpiresAt?: number;
    }
  | { ok: false; reason: DeviceAuthFailure; detail: string };

/** A device-to-cloud message as a transport hands it to the hub. */
export interface ReceivedTelemetry {
  body: Buffer;
  properties: Record<string, string>;
  transport: HubTransport;
}

export interface HubServiceOptions {
  store: HubStore;
  /** The hub host names served (the DPS instance's linked hubs). */
  hubs: readonly string[];
  policies?: readonly HubPolicy[];
  now?: () => Date;
  onEvent?: (event: HubEvent) => void;
  /**
   * Other processes serve the same store (`dps-emulator start --workers`): the pushes a registry
   * call causes are also written here, in its transaction, for the process holding the device.
   */
  outbox?: HubPushOutbox;
  /**
   * Runs a store write with the other writes of this event-loop turn, in one transaction (one
   * commit: most of what a telemetry message costs), resolving once it is committed
   * (`SqliteStore.writeSoon`). Without it, `receiveTelemetrySoon` writes at once.
   */
  writeSoon?: (write: () => void) => Promise<void>;
  /** Called when the first direct method call is held in this process and when the last ends. */
  onMethodsInFlight?: (any: boolean) => void;
}

/**
 * The emulated IoT hubs' core: device authentication, twins, the registry's device and twin
 * operations and telemetry, over the `HubStore` (every read and write goes to the store, so
 * another process on the same store sees the same hub). Transports are thin adapters over it.
 */
export class HubService {
  readonly #store: HubStore;
  readonly #hubs: ReadonlyMap<string, string>;
  readonly #now: () => Date;
  readonly #listeners = new Set<(event: HubEvent) => void>();
  readonly #pushListeners = new Set<(push: HubPush) => void>();
  readonly #feedbackListeners = new Set<(hub: string) => void>();
  readonly #outbox: HubPushOutbox | undefined;
  readonly #writeSoon: ((write: () => void) => Promise<void>) | undefined;
  readonly policies: readonly HubPolicy[];
  /** The direct method calls in flight in this process (the hub MQTT transport attaches the devices). */
  readonly methods: DirectMethods;

  constructor(options: HubServiceOptions) {
    this.#store = options.store;
    this.#hubs = new Map(options.hubs.map((hub) => [hub.toLowerCase(), hub]));
    this.#now = options.now ?? (() => new Date());
    this.policies = options.policies ?? DEFAULT_HUB_POLICIES;
    this.#outbox = options.outbox;
    this.#writeSoon = options.writeSoon;
    if (options.onEvent) this.#listeners.add(options.onEvent);
    this.methods = new DirectMethods({
      now: () => this.#now().getTime(),
      onReport: (report) => this.#reportMethod(report),
      ...(options.onMethodsInFlight ? { onHolding: options.onMethodsInFlight } : {}),
    });
  }

  /** The hub's configured host name, if `name` (any case, port ignored) is one of the hubs. */
  hubNamed(name: string | undefined): string | undefined {
    if (!name) return undefined;
    return this.#hubs.get(name.replace(/:\d+$/, '').toLowerCase());
  }

  get hubs(): string[] {
    return [...this.#hubs.values()];
  }

  /** Listens to every hub event (transports use it to push desired properties). */
  subscribe(listener: (event: HubEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Listens to the pushes this process owes its own device connections, after the change that
   * caused each is committed (the hub MQTT transport delivers them; other processes' come from the
   * store, see `HubPushOutbox`).
   */
  subscribePushes(listener: (push: HubPush) => void): () => void {
    this.#pushListeners.add(listener);
    return () => this.#pushListeners.delete(listener);
  }

  /**
   * Hands the local listeners a push that a change made outside this service owes (a DPS
   * assignment that moved a device away from its hub, written by the registration store), once
   * that change is committed.
   */
  announcePush(push: HubPush): void {
    for (const listener of this.#pushListeners) {
      try {
        listener(push);
      } catch {
        // A listener's failure is its own; the hub goes on.
      }
    }
  }

  /**
   * Authenticates a device connection by its identity's authentication type, as IoT Hub does:
   * `sas`, its SAS token (a device-scoped key: `sr={hub}/devices/{id}`, signed with the identity's
   * primary or secondary key, not expired); `selfSigned`, the client certificate of the TLS
   * handshake (`clientCertificates`, DER, the device's own first) by thumbprint. Details are for
   * the log.
   */
  authenticateDevice(input: {
    hub: string;
    deviceId: string;
    /** A module of the device (`ModuleClient`): its own credentials, SAS `sr={hub}/devices/{id}/modules/{moduleId}`. */
    moduleId?: string;
    token: string | undefined;
    clientCertificates?: readonly Uint8Array[];
  }): DeviceAuthResult {
    const fail = (reason: DeviceAuthFailure, detail: string): DeviceAuthResult => ({ ok: false, reason, detail });
    const hub = this.hubNamed(input.hub);
    if (!hub) return fail('unknown-hub', `"${input.hub.slice(0, 256)}" is not one of the emulated hubs`);
    if (!isValidDeviceId(input.deviceId))
      return fail('invalid-device-id', 'the device id is not a valid IoT Hub device id');
    const device = this.#store.getDevice(hub, input.deviceId);
    if (!device) return fail('device-not-found', `no device "${input.deviceId}" in ${hub}`);
    if (device.identity.status !== 'enabled') return fail('device-disabled', `device "${input.deviceId}" is disabled`);
    // A module authenticates with its own credentials; its device must exist and be enabled (the
    // emulator's choice for a disabled device's modules: IoT Hub documents no module status).
    let identity: DeviceIdentity = device.identity;
    let resource = `${hub}/devices/${input.deviceId}`;
    const { moduleId } = input;
    if (moduleId !== undefined) {
      if (!isValidModuleId(moduleId))
        return fail('invalid-module-id', 'the module id is not a valid IoT Hub module id');
      const module = this.#store.getModule(hub, device.identity.deviceId, moduleId);
      if (!module) return fail('module-not-found', `no module "${moduleId}" on device "${input.deviceId}" in ${hub}`);
      identity = module.identity;
      resource = `${resource}/modules/${moduleId}`;
    }
    const authenticated: Extract<DeviceAuthResult, { ok: true }> = {
      ok: true,
      hub,
      deviceId: device.identity.deviceId,
      ...(moduleId !== undefined ? { moduleId } : {}),
    };
    const type = identity.authenticationType ?? 'sas';
    if (type === 'selfSigned') {
      const checked = checkThumbprintCertificate(identity, input.clientCertificates ?? [], this.#now());
      return checked.ok ? authenticated : fail(checked.reason, checked.detail);
    }
    const keys = [identity.primaryKey, identity.secondaryKey].filter((k): k is string => Boolean(k));
    if (type === 'certificateAuthority' || keys.length === 0) {
      return fail(
        'certificate-authority-not-emulated',
        `device "${input.deviceId}" authenticates by X.509 CA (certificateAuthority), which the emulated hubs do not check (they hold no CA certificates); re-provision it through DPS to get a selfSigned identity`,
      );
    }
    // As DPS's attestation and the registry name a request without credentials (missing-token).
    if (!input.token) return fail('missing-token', 'no SAS token was presented (MQTT password, HTTPS Authorization)');
    // A token naming a policy (`skn`): a token service's or a protocol gateway's on the device's behalf.
    if (namesKey(input.token)) {
      const checked = this.#authorizeOnBehalf(input.token, resource);
      return checked.ok
        ? { ...authenticated, tokenExpiresAt: checked.expiresAt }
        : fail(checked.reason, checked.detail);
    }
    let tokenExpiresAt: number;
    try {
      ({ expiresAt: tokenExpiresAt } = verifySasToken(input.token, {
        keys,
        expectedResource: resource,
        now: this.#now(),
      }));
    } catch (err) {
      if (err instanceof SasTokenError) {
        if (err.reason === 'resource-mismatch' && moduleId === undefined && isModuleToken(input.token, resource))
          return fail(
            'module-token',
            `the token is a module's (sr names a module of device "${input.deviceId}"), not the device's: IoT Hub refuses a module on its device's routes, as ModuleClient over HTTPS sends (401 IotHubUnauthorizedAccess); modules connect over MQTT or AMQP`,
          );
        return fail(err.reason === 'key-name-mismatch' ? 'malformed' : err.reason, err.message);
      }
      throw err;
    }
    return { ...authenticated, tokenExpiresAt };
  }

  /**
   * A device's (or module's) connection with a policy token: "When you create a token from a shared
   * access policy, set the skn field to the name of the policy. This policy must grant the
   * DeviceConnect permission" (azure-docs iot-hub-dev-guide-sas, "Use a shared access policy to
   * access on behalf of a device"); its `sr` a prefix by segment of the device's resource
   * (`{hub}/devices/{id}`; "a protocol gateway could use the same token for all devices simply
   * setting the resource URI to myhub.azure-devices.net/devices").
   */
  #authorizeOnBehalf(
    token: string,
    resource: string,
  ): { ok: true; expiresAt: number } | { ok: false; reason: DeviceAuthFailure; detail: string } {
    const result = authorizeServiceRequest<HubRight>({
      authorization: token,
      hosts: [resource],
      resourceMatches: (sr) => resourceCovers(sr, resource),
      policies: this.policies,
      required: 'DeviceConnect',
      now: this.#now(),
    });
    if (result.ok) return { ok: true, expiresAt: result.expiresAt };
    // The detail names the policy the token names (its skn), never the token.
    return {
      ok: false,
      reason: result.reason === 'missing-token' ? 'malformed' : result.reason,
      detail: result.detail,
    };
  }

  /**
   * Checks a service request's `SharedAccessSignature sr=…&…&skn={policy}` for `right`: the policy's
   * key, expiry, and `sr` a prefix by segment of `{hub}/{path}` (IoT Hub's rule, `resourceCovers`: a
   * registryRead token for `{hub}/devices` reads the devices; one for `{hub}` reaches everything).
   * `path`: what is asked, without a leading slash (`devices/d1`, `messages/devicebound`); empty: the hub.
   */
  authorizeRegistry(
    hub: string,
    authorization: string | undefined,
    right: HubRight | readonly HubRight[],
    path = '',
  ):
    | { ok: true; policy: string; resource: string; expiresAt: number }
    | { ok: false; reason: ServiceAuthFailure; detail: string } {
    const target = path ? `${hub}/${path}` : hub;
    const result = authorizeServiceRequest<HubRight>({
      authorization,
      hosts: [target],
      resourceMatches: (resource) => resourceCovers(resource, target),
      policies: this.policies,
      required: right,
      now: this.#now(),
    });
    return result.ok
      ? { ok: true, policy: result.policy.keyName, resource: result.resource, expiresAt: result.expiresAt }
      : result;
  }

  /**
   * `authorizeRegistry` for a token whose `sr` is the hub or any path under it (SASL PLAIN
   * `{policy}@sas.root.{hub}`, whose token may be for `{hub}/messages/events`, as the Event Hubs
   * samples sign it): what the token reaches is its `resource`, which each endpoint checks
   * (`resourceCovers`) before it serves a link.
   */
  authorizeUnderHub(
    hub: string,
    authorization: string | undefined,
    right: HubRight,
  ):
    | { ok: true; policy: string; resource: string; expiresAt: number }
    | { ok: false; reason: ServiceAuthFailure; detail: string } {
    const result = authorizeServiceRequest<HubRight>({
      authorization,
      hosts: [hub],
      resourceMatches: (resource) => resourceCovers(hub, resource),
      policies: this.policies,
      required: right,
      now: this.#now(),
    });
    return result.ok
      ? { ok: true, policy: result.policy.keyName, resource: result.resource, expiresAt: result.expiresAt }
      : result;
  }

  /** The twin document the device gets for `$iothub/twin/GET`. */
  deviceTwin(hub: string, deviceId: string): ReturnType<typeof deviceTwinDocument> {
    return deviceTwinDocument(this.#requireEndpoint(hub, deviceId).twin);
  }

  /**
   * A reported-properties patch from the device (or module: `deviceId` is then its `moduleKey`, as
   * for every operation a transport calls for a connection); returns the new reported `$version`.
   */
  reportProperties(hub: string, deviceId: string, patch: unknown): number {
    const now = this.#now();
    const device = this.#store.transaction(() => {
      const current = this.#requireEndpoint(hub, deviceId);
      const updated: HubDevice = {
        ...current,
        twin: applyReportedPatch(current.twin, patch, now),
        lastActivityUtc: now.toISOString(),
      };
      this.#putEndpoint(updated);
      return updated;
    });
    this.#emit({
      kind: 'reported',
      hub: device.identity.hub,
      ...whoOf(device),
      reportedVersion: device.twin.reportedVersion,
      patch: patch as JsonObject,
    });
    return device.twin.reportedVersion;
  }

  getTwin(hub: string, deviceId: string): Record<string, unknown> {
    const device = this.#require(hub, deviceId);
    return twinView(device, this.#c2dCount(device));
  }

  /**
   * IoT Hub's `cloudToDeviceMessageCount`: the device's queued messages (Enqueued or delivered and
   * not yet settled), those past their expiry left out. Read only: a registry read changes no queue.
   */
  #c2dCount(device: HubDevice): number {
    const nowMs = this.#now().getTime();
    return this.#store
      .c2dMessages(device.identity.hub, device.identity.deviceId)
      .filter((message) => message.expiryMs > nowMs).length;
  }

  /**
   * `PATCH /twins/{id}`: tags and desired properties, `If-Match` checked against the twin's etag; with
   * `moduleId`, the module's twin (`PATCH /twins/{id}/modules/{mid}`, `Registry.updateModuleTwin`).
   */
  updateTwin(
    hub: string,
    deviceId: string,
    body: unknown,
    ifMatch: string | undefined,
    moduleId?: string,
  ): Record<string, unknown> {
    const patch = parseServiceTwinPatch(body);
    const now = this.#now();
    return this.#writeTwin(hub, this.#twinKey(hub, deviceId, moduleId), ifMatch, patch.tags, (twin) =>
      applyServicePatch(twin, patch, now),
    );
  }

  /**
   * Which twin a registry call names: the device's, or its module's (404 DeviceNotFound first). A
   * device id from a path with a `/` in it (`/twins/{deviceId}%2F{moduleId}`) names no device: the
   * store reads it as a module's connection name (moduleKey), so it is refused here.
   */
  #twinKey(hub: string, deviceId: string, moduleId: string | undefined): string {
    if (moduleId === undefined) {
      if (splitIdentityKey(deviceId).moduleId !== undefined) this.#require(hub, deviceId);
      return deviceId;
    }
    this.#require(hub, deviceId);
    return moduleKey(deviceId, moduleId);
  }

  /**
   * `PUT /twins/{id}` (replace): the body's tags and desired properties become the twin's, `If-Match`
   * checked against the twin's etag; the device is pushed the change (see applyServiceReplacement).
   * With `moduleId`, the module's twin (`PUT /twins/{id}/modules/{mid}`).
   */
  replaceTwin(
    hub: string,
    deviceId: string,
    body: unknown,
    ifMatch: string | undefined,
    moduleId?: string,
  ): Record<string, unknown> {
    const replacement = parseServiceTwinReplacement(body);
    const now = this.#now();
    return this.#writeTwin(hub, this.#twinKey(hub, deviceId, moduleId), ifMatch, replacement.tags, (twin) =>
      applyServiceReplacement(twin, replacement, now),
    );
  }

  /**
   * A service write of a twin (patch or replace): `If-Match` checked, `apply` written, the desired
   * push it owes the device sent (here and, with other processes on the store, through the outbox),
   * reported as `twin-updated` with the `tags` written.
   */
  #writeTwin(
    hub: string,
    key: string,
    ifMatch: string | undefined,
    tags: JsonObject | undefined,
    apply: (twin: TwinState) => { state: TwinState; desiredPush?: JsonObject },
  ): Record<string, unknown> {
    const { device, desiredPush } = this.#store.transaction(() => {
      const current = this.#requireEndpoint(hub, key);
      if (!etagMatches(ifMatch, twinEtag(current.twin))) {
        throw new HubError(412, 'PreconditionFailed', `Precondition failed: the twin's etag is not ${ifMatch}`);
      }
      const applied = apply(current.twin);
      const updated: HubDevice = { ...current, twin: applied.state };
      this.#putEndpoint(updated);
      if (applied.desiredPush) {
        this.#outbox?.add({
          kind: 'desired',
          hub: updated.identity.hub,
          deviceId: identityKey(updated),
          desired: applied.desiredPush,
        });
      }
      return { device: updated, desiredPush: applied.desiredPush };
    });
    if (desiredPush) {
      this.announcePush({
        kind: 'desired',
        hub: device.identity.hub,
        deviceId: identityKey(device),
        desired: desiredPush,
      });
    }
    this.#emit({
      kind: 'twin-updated',
      hub: device.identity.hub,
      ...whoOf(device),
      version: device.twin.version,
      ...(tags ? { tags } : {}),
      ...(desiredPush ? { desired: desiredPush } : {}),
    });
    return isModule(device) ? moduleTwinView(device) : twinView(device, this.#c2dCount(device));
  }

  getDevice(hub: string, deviceId: string): Record<string, unknown> {
    const device = this.#require(hub, deviceId);
    return deviceView(device, this.#c2dCount(device));
  }

  /**
   * `GET /devices?top=n` (`Registry.list`): the hub's first `top` devices in device id order, at most
   * `MAX_LISTED_DEVICES`. IoT Hub's REST reference (Devices - Get Devices): "Any value outside the
   * range of 1-1000 is considered to be 1000"; a `top` that is no whole number is refused.
   */
  listDevices(hub: string, top: string | null): Record<string, unknown>[] {
    let limit = MAX_LISTED_DEVICES;
    if (top !== null && top.trim() !== '') {
      if (!/^[+-]?\d+$/.test(top.trim()))
        throw new HubError(
          400,
          'ArgumentInvalid',
          `top must be a whole number (1 to ${MAX_LISTED_DEVICES}), not "${clip(top)}".`,
        );
      const asked = Number(top.trim());
      if (asked >= 1 && asked <= MAX_LISTED_DEVICES) limit = asked;
    }
    return this.#store
      .devicesAfter(this.hubNamed(hub) ?? hub, undefined, limit)
      .map((device) => deviceView(device, this.#c2dCount(device)));
  }

  /**
   * `POST /devices/query` (`Registry.createQuery`): one page of the query's answer over the hub's
   * twins, read from the store (any process on it answers alike). A query beyond the subset served,
   * or a bad page size or continuation, is IoT Hub's 400 `ArgumentInvalid` naming the cause.
   */
  queryTwins(
    hub: string,
    body: unknown,
    pageSize: string | undefined,
    continuation: string | undefined,
  ): TwinQueryPage {
    const name = this.hubNamed(hub) ?? hub;
    try {
      return runTwinQuery((after, limit) => this.#store.devicesAfter(name, after, limit), queryText(body), {
        ...(pageSize !== undefined ? { pageSize } : {}),
        ...(continuation !== undefined ? { continuation } : {}),
        c2dCount: (device) => this.#c2dCount(device),
        readModules: (after, limit) => this.#store.modulesAfter(name, after, limit),
      });
    } catch (err) {
      if (err instanceof QueryError) throw new HubError(400, 'ArgumentInvalid', err.message);
      throw err;
    }
  }

  /** `GET /statistics/devices` (`Registry.getRegistryStatistics`): IoT Hub's `RegistryStatistics`. */
  registryStatistics(hub: string): {
    totalDeviceCount: number;
    enabledDeviceCount: number;
    disabledDeviceCount: number;
  } {
    const { total, enabled } = this.#store.deviceStatistics(this.hubNamed(hub) ?? hub);
    return { totalDeviceCount: total, enabledDeviceCount: enabled, disabledDeviceCount: total - enabled };
  }

  /**
   * `POST /devices` (`Registry.addDevices`, `updateDevices`, `removeDevices`): up to 100 devices,
   * each created, updated or deleted on its own as `PUT`/`DELETE /devices/{id}` would (the same
   * checks, events and pushes), as IoT Hub's bulk registry operation is not atomic. A device's
   * failure is an entry of `errors` (its error code and message), the others are applied: 200 with
   * `isSuccessful: false`. What makes the whole body unreadable is refused (400, 413 past 100).
   */
  bulkDevices(hub: string, body: unknown): BulkRegistryResult {
    const entries = parseBulkDevices(body);
    const errors: BulkRegistryResult['errors'] = [];
    for (const { deviceId, importMode, etag, device } of entries) {
      try {
        const needEtag = (): string => {
          if (etag === undefined) throw new HubError(400, 'ArgumentInvalid', `${importMode} needs the device's eTag.`);
          return etag;
        };
        switch (importMode) {
          case 'create':
            this.putDevice(hub, deviceId, device, undefined);
            break;
          case 'createOrUpdate':
            this.putDevice(hub, deviceId, device, this.#store.getDevice(hub, deviceId) ? '*' : undefined);
            break;
          case 'update':
            this.putDevice(hub, deviceId, device, '*');
            break;
          case 'updateIfMatchETag':
            this.putDevice(hub, deviceId, device, needEtag());
            break;
          case 'delete':
            this.deleteDevice(hub, deviceId, '*');
            break;
          case 'deleteIfMatchETag':
            this.deleteDevice(hub, deviceId, needEtag());
            break;
        }
      } catch (err) {
        if (!(err instanceof HubError)) throw err;
        errors.push({ deviceId: deviceId.slice(0, 128), errorCode: err.code, errorStatus: err.message });
      }
    }
    return { isSuccessful: errors.length === 0, errors, warnings: [] };
  }

  /** `DELETE /devices/{id}` (`If-Match: *` or the device etag). */
  deleteDevice(hub: string, deviceId: string, ifMatch: string | undefined): void {
    const keys = this.#store.transaction(() => {
      const current = this.#require(hub, deviceId);
      if (!etagMatches(ifMatch, deviceView(current).etag as string)) {
        throw new HubError(412, 'PreconditionFailed', `Precondition failed: the device's etag is not ${ifMatch}`);
      }
      // The device's modules go with it (store.deleteDevice), and so do their connections.
      const keys = [deviceId, ...this.#store.modulesOf(hub, deviceId).map(identityKey)];
      this.#store.deleteDevice(hub, deviceId);
      for (const key of keys) this.#outbox?.add({ kind: 'deleted', hub, deviceId: key });
      return keys;
    });
    // IoT Hub drops the connection of a device deleted from its registry.
    for (const key of keys) this.announcePush({ kind: 'deleted', hub, deviceId: key });
    this.#emit({ kind: 'device-deleted', hub, deviceId });
  }

  /**
   * `PUT /devices/{id}`: creates a device (no `If-Match`; keys generated when not given) or updates
   * its status and credentials (`If-Match`): symmetric keys (`sas`) or X.509 thumbprints
   * (`selfSigned`, as `azure-iothub` sends a device with `x509Thumbprint`). `certificateAuthority`
   * is not emulated (the hubs hold no CA certificates).
   */
  putDevice(hub: string, deviceId: string, body: unknown, ifMatch: string | undefined): Record<string, unknown> {
    if (!isValidDeviceId(deviceId))
      throw new HubError(400, 'ArgumentInvalid', `Invalid device id: ${deviceId.slice(0, 128)}`);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new HubError(400, 'ArgumentInvalid', 'The device must be a JSON object.');
    }
    const fields = body as IdentityBody & { status?: unknown; statusReason?: unknown };
    if (fields.deviceId !== undefined && fields.deviceId !== deviceId) {
      throw new HubError(400, 'ArgumentInvalid', 'The deviceId in the body differs from the one in the path.');
    }
    if (fields.status !== undefined && fields.status !== 'enabled' && fields.status !== 'disabled') {
      throw new HubError(400, 'ArgumentInvalid', 'status must be "enabled" or "disabled".');
    }
    const readCredentials = parseAuthentication(fields.authentication);
    const now = this.#now().toISOString();
    let created = false;
    let disabled = false;
    let closed: string[] = [];
    const device = this.#store.transaction(() => {
      const current = this.#store.getDevice(hub, deviceId);
      if (current && ifMatch === undefined)
        throw new HubError(409, 'DeviceAlreadyExists', `A device with ID '${deviceId}' is already registered.`);
      if (current && !etagMatches(ifMatch, deviceView(current).etag as string)) {
        throw new HubError(412, 'PreconditionFailed', `Precondition failed: the device's etag is not ${ifMatch}`);
      }
      // With If-Match the PUT is an update (`Registry.update` sends `*`): of an existing device only.
      if (!current && ifMatch !== undefined) throw new HubError(404, 'DeviceNotFound', `Device ${deviceId} not found.`);
      const status = (fields.status as 'enabled' | 'disabled' | undefined) ?? current?.identity.status ?? 'enabled';
      const credentials = readCredentials(current?.identity);
      const next: HubDevice = current
        ? {
            ...current,
            identity: {
              ...withoutCredentials(current.identity),
              ...credentials,
              status,
              etagVersion: current.identity.etagVersion + 1,
              ...(status !== current.identity.status ? { statusUpdatedUtc: now } : {}),
            },
          }
        : {
            identity: {
              hub: this.hubNamed(hub) ?? hub,
              deviceId,
              ...credentials,
              status,
              generationId: newGenerationId(),
              etagVersion: 0,
              createdUtc: now,
              statusUpdatedUtc: now,
            },
            twin: initialTwinState(undefined, this.#now()),
            connectionState: 'Disconnected',
          };
      if (typeof fields.statusReason === 'string') next.identity.statusReason = fields.statusReason.slice(0, 128);
      created = !current;
      this.#store.putDevice(next);
      // A device disabled while connected loses its connection, as in IoT Hub (its SDKs report
      // "device disabled"; the .NET SDK's ConnectionStatusChangeReason.Device_Disabled: "the
      // device has been deleted or marked as disabled"); reconnecting is refused (device-disabled).
      disabled = current?.identity.status === 'enabled' && status === 'disabled';
      // Its modules' connections end too (a disabled device's modules are refused, see authenticateDevice).
      if (disabled) {
        closed = [deviceId, ...this.#store.modulesOf(next.identity.hub, deviceId).map(identityKey)];
        for (const key of closed) this.#outbox?.add({ kind: 'disabled', hub: next.identity.hub, deviceId: key });
      }
      return next;
    });
    for (const key of closed) this.announcePush({ kind: 'disabled', hub: device.identity.hub, deviceId: key });
    this.#emit({ kind: created ? 'device-created' : 'device-updated', hub, deviceId: device.identity.deviceId });
    return deviceView(device, this.#c2dCount(device));
  }

  /**
   * `PUT /devices/{id}/modules/{mid}` (`Registry.addModule`, `updateModule`): creates a module of a
   * device of the registry (no `If-Match`; keys generated when not given) or replaces its credentials
   * and `managedBy` (`If-Match`: `*` or its etag; its connection stays, as a device's does). Refusals:
   * 400 a bad module id or body, 404 DeviceNotFound (no device) or ModuleNotFound (an update of no
   * module), 409 ModuleAlreadyExistsOnDevice, 412 PreconditionFailed, 413 TooManyModulesOnDevice
   * (past MAX_MODULES_PER_DEVICE).
   */
  putModule(
    hub: string,
    deviceId: string,
    moduleId: string,
    body: unknown,
    ifMatch: string | undefined,
  ): Record<string, unknown> {
    if (!isValidModuleId(moduleId)) throw new HubError(400, 'ArgumentInvalid', `Invalid module id: ${clip(moduleId)}`);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new HubError(400, 'ArgumentInvalid', 'The module must be a JSON object.');
    }
    const fields = body as IdentityBody & { moduleId?: unknown; managedBy?: unknown };
    if (fields.deviceId !== undefined && fields.deviceId !== deviceId) {
      throw new HubError(400, 'ArgumentInvalid', 'The deviceId in the body differs from the one in the path.');
    }
    if (fields.moduleId !== undefined && fields.moduleId !== moduleId) {
      throw new HubError(400, 'ArgumentInvalid', 'The moduleId in the body differs from the one in the path.');
    }
    let managedBy: string | undefined;
    try {
      managedBy = readManagedBy(fields.managedBy);
    } catch (err) {
      throw new HubError(400, 'ArgumentInvalid', (err as Error).message);
    }
    const readCredentials = parseAuthentication(fields.authentication);
    const now = this.#now().toISOString();
    const { module, created } = this.#store.transaction(() => {
      const device = this.#require(hub, deviceId);
      const hubName = device.identity.hub;
      const current = this.#store.getModule(hubName, deviceId, moduleId);
      if (current && ifMatch === undefined)
        throw new HubError(
          409,
          'ModuleAlreadyExistsOnDevice',
          `A module with ID '${moduleId}' already exists on device '${deviceId}'.`,
        );
      if (current && !etagMatches(ifMatch, deviceEtag(current.identity)))
        throw new HubError(412, 'PreconditionFailed', `Precondition failed: the module's etag is not ${ifMatch}`);
      // With If-Match the PUT is an update (`Registry.updateModule`): of an existing module only.
      if (!current && ifMatch !== undefined) this.#requireModule(hubName, deviceId, moduleId);
      if (!current && this.#store.modulesOf(hubName, deviceId).length >= MAX_MODULES_PER_DEVICE)
        throw new HubError(
          413,
          'TooManyModulesOnDevice',
          `Device '${deviceId}' has ${MAX_MODULES_PER_DEVICE} modules, IoT Hub's most per device.`,
        );
      const identity: ModuleIdentity = current
        ? {
            ...withoutCredentials(current.identity),
            ...readCredentials(current.identity),
            etagVersion: current.identity.etagVersion + 1,
          }
        : {
            hub: hubName,
            deviceId,
            moduleId,
            ...readCredentials(),
            status: 'enabled',
            generationId: newGenerationId(),
            etagVersion: 0,
            createdUtc: now,
            statusUpdatedUtc: now,
          };
      if (managedBy === undefined) delete identity.managedBy;
      else identity.managedBy = managedBy;
      const next: HubModule = current
        ? { ...current, identity }
        : { identity, twin: initialTwinState(undefined, this.#now()), connectionState: 'Disconnected' };
      this.#store.putModule(next);
      return { module: next, created: !current };
    });
    this.#emit({ kind: created ? 'module-created' : 'module-updated', hub: module.identity.hub, deviceId, moduleId });
    return moduleView(module);
  }

  /** `GET /devices/{id}/modules/{mid}` (`Registry.getModule`): 404 DeviceNotFound or ModuleNotFound. */
  getModule(hub: string, deviceId: string, moduleId: string): Record<string, unknown> {
    const device = this.#require(hub, deviceId);
    return moduleView(this.#requireModule(device.identity.hub, deviceId, moduleId));
  }

  /** `GET /devices/{id}/modules` (`Registry.getModulesOnDevice`): the device's modules in module id order. */
  listModules(hub: string, deviceId: string): Record<string, unknown>[] {
    const device = this.#require(hub, deviceId);
    return this.#store.modulesOf(device.identity.hub, deviceId).map((module) => moduleView(module));
  }

  /** `DELETE /devices/{id}/modules/{mid}` (`Registry.removeModule`; `If-Match: *` or the module's etag): its connection ends. */
  deleteModule(hub: string, deviceId: string, moduleId: string, ifMatch: string | undefined): void {
    const hubName = this.#store.transaction(() => {
      const device = this.#require(hub, deviceId);
      const current = this.#requireModule(device.identity.hub, deviceId, moduleId);
      if (!etagMatches(ifMatch, deviceEtag(current.identity)))
        throw new HubError(412, 'PreconditionFailed', `Precondition failed: the module's etag is not ${ifMatch}`);
      this.#store.deleteModule(device.identity.hub, deviceId, moduleId);
      this.#outbox?.add({ kind: 'deleted', hub: device.identity.hub, deviceId: moduleKey(deviceId, moduleId) });
      return device.identity.hub;
    });
    this.announcePush({ kind: 'deleted', hub: hubName, deviceId: moduleKey(deviceId, moduleId) });
    this.#emit({ kind: 'module-deleted', hub: hubName, deviceId, moduleId });
  }

  /** `GET /twins/{id}/modules/{mid}` (`Registry.getModuleTwin`). */
  getModuleTwin(hub: string, deviceId: string, moduleId: string): Record<string, unknown> {
    const device = this.#require(hub, deviceId);
    return moduleTwinView(this.#requireModule(device.identity.hub, deviceId, moduleId));
  }

  /** A device-to-cloud message: saved (bounded per hub) and reported. */
  receiveTelemetry(hub: string, deviceId: string, message: ReceivedTelemetry): void {
    const now = this.#now().toISOString();
    this.#store.transaction(() => this.#saveTelemetry(hub, deviceId, message, now));
    this.#emitTelemetry(hub, deviceId, message);
  }

  /**
   * `receiveTelemetry` with the store's other writes of this event-loop turn (`writeSoon`): one
   * commit for the messages of every connection that sent one in the turn. Resolves once the
   * message is saved (then it is reported); rejects as `receiveTelemetry` throws, nothing saved.
   */
  receiveTelemetrySoon(hub: string, deviceId: string, message: ReceivedTelemetry): Promise<void> {
    const writeSoon = this.#writeSoon;
    if (!writeSoon) {
      try {
        this.receiveTelemetry(hub, deviceId, message);
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const now = this.#now().toISOString();
    // The write may run twice (writeSoon: a batch rolled back for another write's throw runs again):
    // it only writes to the store.
    return writeSoon(() => this.#saveTelemetry(hub, deviceId, message, now)).then(() =>
      this.#emitTelemetry(hub, deviceId, message),
    );
  }

  /** The message and the device's last activity, in the caller's transaction. */
  #saveTelemetry(hub: string, deviceId: string, message: ReceivedTelemetry, now: string): void {
    const current = this.#requireEndpoint(hub, deviceId);
    this.#putEndpoint({ ...current, lastActivityUtc: now });
    this.#store.addTelemetry(
      {
        hub: current.identity.hub,
        ...whoOf(current),
        ...message,
        receivedUtc: now,
      },
      // The message is also the built-in endpoint's event (hub/core/eventhub.ts); a module's goes to
      // its device's partition.
      {
        partition: partitionOf(current.identity.deviceId),
        enqueuedMs: Date.parse(now),
        authenticationType: current.identity.authenticationType ?? 'sas',
        generationId: current.identity.generationId,
      },
    );
  }

  #emitTelemetry(hub: string, deviceId: string, message: ReceivedTelemetry): void {
    this.#emit({
      kind: 'telemetry',
      hub,
      ...splitIdentityKey(deviceId),
      transport: message.transport,
      bytes: message.body.length,
      body: message.body.toString('utf8').slice(0, 256),
      properties: message.properties,
    });
  }

  /**
   * Records a device connection opening or closing (its registry `connectionState`). `connection`
   * names the connection: IoT Hub keeps one per device, and a device that connected again (here or
   * on another process) is `Connected` whatever its older connection's close records after it.
   * Opening returns the `seq` of the `connected` push written for the other processes (with a
   * shared store), which the transport keeps to tell an older connection from a newer one; this
   * process's transports get the push at once, naming `connection` (the one that stays: IoT Hub's
   * one connection per device, across MQTT and AMQP).
   */
  setConnected(
    hub: string,
    deviceId: string,
    connected: boolean,
    transport: HubTransport,
    connection?: string,
  ): number | undefined {
    const now = this.#now().toISOString();
    const opened = this.#store.transaction(() => {
      const current = this.#findEndpoint(hub, deviceId);
      if (!current) return undefined; // deleted meanwhile
      if (
        !connected &&
        connection !== undefined &&
        current.connection !== undefined &&
        current.connection !== connection
      )
        return undefined; // a newer connection of the device is the one the registry shows
      const { connection: _previous, ...rest } = current;
      this.#putEndpoint({
        ...rest,
        connectionState: connected ? 'Connected' : 'Disconnected',
        connectionStateUpdatedUtc: now,
        ...(connected ? { lastActivityUtc: now } : {}),
        ...(connected && connection !== undefined ? { connection } : {}),
      });
      if (!connected) return undefined;
      // A module's connection goes by its moduleKey, as its transports name it.
      const { hub: hubName } = current.identity;
      const id = identityKey(current);
      return { hub: hubName, deviceId: id, seq: this.#outbox?.add({ kind: 'connected', hub: hubName, deviceId: id }) };
    });
    this.#emit({ kind: connected ? 'connected' : 'disconnected', hub, ...splitIdentityKey(deviceId), transport });
    // The device's other connections here are older: their transports close them.
    if (opened && connection !== undefined)
      this.announcePush({ kind: 'connected', hub: opened.hub, deviceId: opened.deviceId, connection });
    return opened?.seq;
  }

  /**
   * `POST /twins/{id}/methods`: invokes a direct method on a device of the registry (its body as
   * text); resolves with the device's `{status, payload}`, rejects with the `MethodError` IoT Hub
   * answers (404001 no such device, 404103 not online, 504101 no answer in time, …). `signal`: aborted
   * when the caller has gone; the call is let go (see DirectMethods.invoke).
   */
  invokeMethod(hub: string, deviceId: string, body: string, signal?: AbortSignal): Promise<MethodResult> {
    return this.#invokeMethod(hub, deviceId, undefined, body, signal);
  }

  /**
   * `POST /twins/{id}/modules/{mid}/methods` (`Client.invokeDeviceMethod(deviceId, moduleId, …)`): as
   * `invokeMethod`, on the module's connection; 404010 ModuleNotFound for a module not on the device.
   */
  invokeModuleMethod(
    hub: string,
    deviceId: string,
    moduleId: string,
    body: string,
    signal?: AbortSignal,
  ): Promise<MethodResult> {
    return this.#invokeMethod(hub, deviceId, moduleId, body, signal);
  }

  #invokeMethod(
    hub: string,
    deviceId: string,
    moduleId: string | undefined,
    body: string,
    signal: AbortSignal | undefined,
  ): Promise<MethodResult> {
    try {
      const invocation = parseMethodInvocation(body);
      const refuse = (error: MethodError): MethodError => {
        this.#reportMethod({
          hub,
          deviceId: moduleId === undefined ? deviceId : moduleKey(deviceId, moduleId),
          methodName: invocation.methodName,
          outcome: 'refused',
          status: 404,
          durationMs: 0,
        });
        return error;
      };
      const device = this.#store.getDevice(hub, deviceId);
      if (!device)
        throw refuse(
          new MethodError(404, 404001, 'DeviceNotFound', `Device ${clip(deviceId)} not registered in ${hub}.`),
        );
      const target = moduleId === undefined ? device : this.#store.getModule(device.identity.hub, deviceId, moduleId);
      if (!target)
        throw refuse(
          new MethodError(
            404,
            404010,
            'ModuleNotFound',
            `Module ${clip(moduleId ?? '')} not registered on device ${clip(deviceId)} in ${hub}.`,
          ),
        );
      const hubName = target.identity.hub;
      // A module's calls go to its connection, named by its moduleKey as the transports name it.
      const key = identityKey(target);
      // With other processes on the store (--workers), a device not connected here may be connected
      // to one of them: the registry says so (read again once the call is held, see invoke).
      return this.methods.invoke(
        hubName,
        key,
        invocation,
        () => this.#findEndpoint(hubName, key)?.connectionState === 'Connected',
        signal,
      );
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** A method call's end as a hub event: its name clipped as every client text in an event is, never its payloads. */
  #reportMethod(report: MethodCallReport): void {
    this.#emit({
      kind: 'method',
      ...report,
      ...splitIdentityKey(report.deviceId),
      methodName: clip(report.methodName),
    });
  }

  /**
   * A cloud-to-device message for a device of the registry (`azure-iothub` `Client.send`): queued
   * in the store and owed to the device's connection (a `c2d` push, for whichever process holds
   * it). Throws HubError 404 DeviceNotFound, or C2dError (queue full 403004, too large 413001, bad
   * properties 400004); nothing is queued then.
   */
  sendCloudToDevice(hub: string, deviceId: string, message: OutgoingC2d): QueuedC2d {
    const nowMs = this.#now().getTime();
    const { queued, changes } = this.#store.transaction(() => {
      const device = this.#require(hub, deviceId);
      const { hub: hubName, deviceId: id } = device.identity;
      const { message: queued, changes } = enqueue(this.#store, hubName, id, message, nowMs);
      this.#outbox?.add({ kind: 'c2d', hub: hubName, deviceId: id });
      this.#queueFeedback(changes, nowMs);
      return { queued, changes };
    });
    this.#reportC2d(changes);
    this.announcePush({ kind: 'c2d', hub: queued.hub, deviceId: queued.deviceId });
    return queued;
  }

  /**
   * The device's oldest Enqueued cloud-to-device message, locked for it: to `connection` (an MQTT
   * connection or AMQP link, until it closes or the device settles it) or for a minute (HTTPS). Undefined when none is Enqueued.
   */
  receiveCloudToDevice(
    hub: string,
    deviceId: string,
    transport: HubTransport,
    connection?: string,
  ): QueuedC2d | undefined {
    const nowMs = this.#now().getTime();
    const { message, changes } = this.#store.transaction(() => {
      const received = receive(this.#store, hub, deviceId, connection === undefined ? {} : { connection }, nowMs);
      this.#queueFeedback(received.changes, nowMs);
      return received;
    });
    this.#reportC2d(changes, transport);
    return message;
  }

  /** Completes, rejects or abandons the message locked under `lockToken`; C2dError 412002 when none is. */
  settleCloudToDevice(
    hub: string,
    deviceId: string,
    lockToken: string,
    action: C2dSettlement,
    transport: HubTransport,
  ): void {
    const nowMs = this.#now().getTime();
    // A refusal (412002) rolls back what time did to the queue before it (sweep): the next call does it again.
    const changes = this.#store.transaction(() => {
      const settled = settle(this.#store, hub, deviceId, lockToken, action, nowMs);
      // An abandoned message is Enqueued again: owed to the device's connection, wherever it is.
      if (settled.changes.at(-1)?.outcome === 'abandoned') this.#outbox?.add({ kind: 'c2d', hub, deviceId });
      this.#queueFeedback(settled.changes, nowMs);
      return settled.changes;
    });
    this.#reportC2d(changes, transport);
    if (action === 'abandon' && changes.at(-1)?.outcome === 'abandoned')
      this.announcePush({ kind: 'c2d', hub, deviceId });
  }

  /**
   * Puts back the messages locked to an MQTT connection or AMQP link that closed (IoT Hub
   * redelivers an unacknowledged message when the device connects again); with no connection,
   * those of every connection (at start: none survives the process that held it).
   */
  releaseCloudToDevice(connection?: string): void {
    const changes = this.#store.transaction(() => {
      const released = releaseConnection(this.#store, connection);
      const devices = new Map(released.map(({ message }) => [`${message.hub}\n${message.deviceId}`, message]));
      for (const message of devices.values())
        this.#outbox?.add({ kind: 'c2d', hub: message.hub, deviceId: message.deviceId });
      return released;
    });
    this.#reportC2d(changes, 'mqtt');
    const devices = new Map(changes.map(({ message }) => [`${message.hub}\n${message.deviceId}`, message]));
    for (const message of devices.values())
      this.announcePush({ kind: 'c2d', hub: message.hub, deviceId: message.deviceId });
  }

  /** Deletes every cloud-to-device message queued for a device of the registry; returns how many. */
  purgeCloudToDevice(hub: string, deviceId: string): number {
    const changes = this.#store.transaction(() => {
      const device = this.#require(hub, deviceId);
      const purged = purge(this.#store, device.identity.hub, device.identity.deviceId);
      this.#queueFeedback(purged, this.#now().getTime());
      return purged;
    });
    this.#reportC2d(changes);
    return changes.length;
  }

  /**
   * The feedback the changes owe (their messages' `ack`), into their hub's feedback queue, in the
   * caller's transaction; the feedback listeners hear of it once the transaction has committed.
   */
  #queueFeedback(changes: readonly C2dChange[], nowMs: number): void {
    const generations = new Map<string, string>();
    for (const change of changes) {
      const { hub, deviceId } = change.message;
      let generation = generations.get(deviceId);
      if (generation === undefined) {
        generation = this.#store.getDevice(hub, deviceId)?.identity.generationId ?? '';
        generations.set(deviceId, generation);
      }
      const record = feedbackOf(change, generation, nowMs);
      if (!record) continue;
      this.#store.addC2dFeedback(hub, record);
      const hubName = hub;
      queueMicrotask(() => {
        for (const listener of this.#feedbackListeners) listener(hubName);
      });
    }
  }

  /** Calls `listener` with a hub's name when feedback was added to its queue (in this process). */
  onFeedback(listener: (hub: string) => void): () => void {
    this.#feedbackListeners.add(listener);
    return () => this.#feedbackListeners.delete(listener);
  }

  /** Locks to `holder` (a service link) and returns the hub's oldest waiting feedback records, at most `limit`. */
  takeFeedback(hub: string, holder: string, limit: number): QueuedC2dFeedback[] {
    return this.#store.takeC2dFeedback(hub, holder, limit);
  }

  /** Completes (the service accepted them) or releases records taken. */
  settleFeedback(seqs: readonly number[], complete: boolean): void {
    this.#store.settleC2dFeedback(seqs, complete);
  }

  /** Releases every record a service link took (it closed). */
  releaseFeedback(holder: string): void {
    this.#store.releaseC2dFeedback(holder);
  }

  /** The device's cloud-to-device queue as the store holds it, oldest first. */
  cloudToDeviceQueue(hub: string, deviceId: string): QueuedC2d[] {
    return this.#store.c2dMessages(this.hubNamed(hub) ?? hub, deviceId);
  }

  #reportC2d(changes: readonly C2dChange[], transport?: HubTransport): void {
    for (const { outcome, message } of changes) {
      const viaDevice =
        outcome === 'delivered' || outcome === 'completed' || outcome === 'rejected' || outcome === 'abandoned';
      this.#emit({
        kind: 'c2d',
        hub: message.hub,
        deviceId: message.deviceId,
        outcome,
        ...(message.messageId !== undefined ? { messageId: clip(message.messageId) } : {}),
        sequenceNumber: message.seq,
        bytes: message.body.length,
        deliveryCount: message.deliveryCount,
        ...(viaDevice && transport !== undefined ? { transport } : {}),
      });
    }
  }

  /** Reports a refused device connection (never the token). */
  reportRefused(hub: string, deviceId: string, transport: HubTransport, reason: string): void {
    this.#emit({ kind: 'connect-refused', hub, ...splitIdentityKey(deviceId), transport, reason });
  }

  /** Telemetry the hub kept, oldest first. */
  telemetry(hub: string, deviceId?: string): TelemetryRecord[] {
    return this.#store.telemetry(this.hubNamed(hub) ?? hub, deviceId);
  }

  /** The devices of one hub, or of all. */
  devices(hub?: string): HubDevice[] {
    return this.#store.listDevices(hub);
  }

  /** A device's modules, in module id order. */
  modules(hub: string, deviceId: string): HubModule[] {
    return this.#store.modulesOf(this.hubNamed(hub) ?? hub, deviceId);
  }

  /** A device, or the module a `moduleKey` names (a transport's name for a connection). */
  #findEndpoint(hub: string, key: string): HubDevice | undefined {
    const { deviceId, moduleId } = splitIdentityKey(key);
    return moduleId === undefined
      ? this.#store.getDevice(hub, deviceId)
      : this.#store.getModule(hub, deviceId, moduleId);
  }

  /** `#findEndpoint`, or HubError 404 (DeviceNotFound, or ModuleNotFound for a module's name). */
  #requireEndpoint(hub: string, key: string): HubDevice {
    const { deviceId, moduleId } = splitIdentityKey(key);
    return moduleId === undefined ? this.#require(hub, deviceId) : this.#requireModule(hub, deviceId, moduleId);
  }

  #putEndpoint(record: HubDevice): void {
    if (isModule(record)) this.#store.putModule(record);
    else this.#store.putDevice(record);
  }

  /** IoT Hub's 404 ModuleNotFound (404010) for a module not on the device (or a device not in the hub). */
  #requireModule(hub: string, deviceId: string, moduleId: string): HubModule {
    const module = this.#store.getModule(hub, deviceId, moduleId);
    if (!module)
      throw new HubError(
        404,
        'ModuleNotFound',
        `Module ${clip(moduleId)} not found on device ${clip(deviceId)} in ${hub}.`,
      );
    return module;
  }

  #require(hub: string, deviceId: string): HubDevice {
    const device = this.#store.getDevice(hub, deviceId);
    if (!device) throw new HubError(404, 'DeviceNotFound', `Device ${deviceId.slice(0, 128)} not found in ${hub}.`);
    return device;
  }

  #emit(event: HubEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A listener's failure is its own; the hub goes on.
      }
    }
  }
}

/** What a device or module PUT body carries of its identity (`azure-iothub` `Device`, `Module`). */
interface IdentityBody {
  deviceId?: unknown;
  authentication?: {
    type?: unknown;
    symmetricKey?: { primaryKey?: unknown; secondaryKey?: unknown };
    x509Thumbprint?: { primaryThumbprint?: unknown; secondaryThumbprint?: unknown };
  };
}

type Credentials = Pick<
  DeviceIdentity,
  'authenticationType' | 'primaryKey' | 'secondaryKey' | 'primaryThumbprint' | 'secondaryThumbprint'
>;

/**
 * A device's or module's `authentication`, checked (HubError 400 naming the field): symmetric keys
 * (`sas`) or X.509 thumbprints (`selfSigned`); `certificateAuthority` is not emulated. Returns how
 * to make the identity's credentials from its current ones: keys not given are kept, or generated.
 */
function parseAuthentication(authentication: IdentityBody['authentication']): (current?: Credentials) => Credentials {
  const type = authentication?.type ?? 'sas';
  if (type !== 'sas' && type !== 'selfSigned') {
    throw new HubError(
      400,
      'ArgumentInvalid',
      `authentication type "${clip(String(type))}" is not emulated (only "sas" and "selfSigned").`,
    );
  }
  const thumbprints = type === 'selfSigned' ? readThumbprints(authentication?.x509Thumbprint) : undefined;
  const keys = authentication?.symmetricKey;
  for (const name of ['primaryKey', 'secondaryKey'] as const) {
    const key = keys?.[name];
    // `azure-iothub` sends empty keys for "generate them", as IoT Hub does.
    if (key !== undefined && key !== null && key !== '' && (typeof key !== 'string' || !isBase64Key(key))) {
      throw new HubError(
        400,
        'ArgumentInvalid',
        `authentication.symmetricKey.${name} must be a base64 key of 16 to 64 bytes.`,
      );
    }
  }
  const given = (key: unknown) => (typeof key === 'string' && key !== '' ? key : undefined);
  return (current) =>
    thumbprints
      ? { authenticationType: 'selfSigned', ...thumbprints }
      : {
          authenticationType: 'sas',
          primaryKey: given(keys?.primaryKey) ?? current?.primaryKey ?? generateSymmetricKey(32),
          secondaryKey: given(keys?.secondaryKey) ?? current?.secondaryKey ?? generateSymmetricKey(32),
        };
}

/** `x509Thumbprint` of a `selfSigned` device: the primary is required, the secondary defaults to it. */
function readThumbprints(given: unknown): { primaryThumbprint: string; secondaryThumbprint: string } {
  const fields = (typeof given === 'object' && given !== null ? given : {}) as Record<string, unknown>;
  const read = (name: 'primaryThumbprint' | 'secondaryThumbprint'): string | undefined => {
    const value = fields[name];
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string' || !isThumbprint(value)) {
      throw new HubError(
        400,
        'ArgumentInvalid',
        `authentication.x509Thumbprint.${name} must be a SHA-1 or SHA-256 thumbprint (40 or 64 hex digits).`,
      );
    }
    return normalizeThumbprint(value);
  };
  const primaryThumbprint = read('primaryThumbprint');
  if (!primaryThumbprint) {
    throw new HubError(
      400,
      'ArgumentInvalid',
      'authentication.x509Thumbprint.primaryThumbprint is required for a selfSigned device.',
    );
  }
  return { primaryThumbprint, secondaryThumbprint: read('secondaryThumbprint') ?? primaryThumbprint };
}

function withoutCredentials<T extends DeviceIdentity>(
  identity: T,
): Omit<T, 'primaryKey' | 'secondaryKey' | 'primaryThumbprint' | 'secondaryThumbprint'> {
  const { primaryKey: _pk, secondaryKey: _sk, primaryThumbprint: _pt, secondaryThumbprint: _st, ...rest } = identity;
  return rest;
}

function isBase64Key(key: string): boolean {
  const bytes = Buffer.from(key, 'base64');
  return bytes.toString('base64') === key && bytes.length >= 16 && bytes.length <= 64;
}

export { TwinError };

/**
 * Whether a SAS token that is not for `deviceResource` (`{hub}/devices/{id}`) is one of that device's
 * modules' (`sr={hub}/devices/{id}/modules/{moduleId}`): what azure-iot-device's ModuleClient over
 * HTTPS presents, as azure-iot-device-http sends a module's telemetry to its device's route
 * (`POST /devices/{id}/messages/events`) with the module's token. IoT Hub answers it 401
 * `IotHubUnauthorizedAccess` (azure-iot-sdk-csharp#573, a ModuleClient over HTTP); so does the
 * emulator, its log saying why. Only on that refusal's path: the token is parsed again there.
 */
/**
 * Whether a token names a key (`skn`): a policy's. A look at the text, not a parse: the device's own
 * token (no skn) is parsed once, by verifySasToken, on every CONNECT (issue #13's hot path); a
 * value cannot hold `&` or a space (sr's device ids allow neither, the others are URL-encoded).
 */
function namesKey(token: string): boolean {
  return /(?:^|[\s&])skn=/.test(token);
}

function isModuleToken(token: string, deviceResource: string): boolean {
  try {
    const { resource } = parseSasToken(token);
    const prefix = `${deviceResource}/modules/`.toLowerCase();
    return resource.toLowerCase().startsWith(prefix) && !resource.slice(prefix.length).includes('/');
  } catch {
    return false;
  }
}
