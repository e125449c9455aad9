import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import {
  DEFAULT_MAX_JSON_DEPTH,
  type DeviceRegistrationResult,
  type EnrollmentGroup,
  type IndividualEnrollment,
} from '@dpskit/contracts';
import {
  createLogger,
  jsonLineSink,
  type Logger,
  type LogLevel,
  type LogRecord,
  type LogSink,
  levelEnabled,
} from '@dpskit/node-kit';
import { WebhookClient } from './allocation/webhook.js';
import { tutorialConfig } from './config/defaults.js';
import { loadConfigFile, parseConfig } from './config/load.js';
import { caCertificatesOf, type ResolvedConfig, resolveConfig } from './config/resolve.js';
import type { EmulatorConfigInput } from './config/schema.js';
import { type SeedReport, seedEnrollments } from './config/seed.js';
import { DPS_WEBHOOK_RETRY, type WebhookRetryPolicy } from './core/allocation/custom.js';
import { attemptFromEvent, attemptHistoryProblem, DEFAULT_ATTEMPT_HISTORY } from './core/attempts.js';
import { loadIssuingCa } from './core/certificate-issuance.js';
import { clip } from './core/client-text.js';
import { assertRetryAfterSeconds, DeviceApi, type PollReport } from './core/device-api.js';
import { DEFAULT_ENROLLMENT_QUOTAS, EnrollmentService } from './core/enrollments/service.js';
import type { RegistrationEvent } from './core/events.js';
import { type LimitedKind, type LimitedWarnings, limitWarnings } from './core/limited-warnings.js';
import type { LinkedHub, ServiceModel } from './core/model.js';
import { RegistrationService } from './core/registrations.js';
import {
  DEFAULT_SERVICE_POLICIES,
  OWNER_POLICY_NAME,
  type SharedAccessPolicy,
  serviceConnectionString,
} from './core/service-auth.js';
import { createHubAmqp } from './hub/amqp.js';
import { createDeviceAmqpEndpoint } from './hub/amqp-device.js';
import { c2dServiceEndpoint } from './hub/amqp-service.js';
import { disconnectLeftovers } from './hub/core/connection-leftovers.js';
import { eventHubName } from './hub/core/eventhub.js';
import { EventHubService, eventHubReaderPolicy } from './hub/core/eventhub-service.js';
import {
  DEFAULT_HUB_POLICIES,
  HUB_OWNER_POLICY_NAME,
  type HubEvent,
  type HubPolicy,
  HubService,
} from './hub/core/hub-service.js';
import type { HubDevice } from './hub/core/identity.js';
import type { HubModule } from './hub/core/modules.js';
import type { TelemetryRecord } from './hub/core/store.js';
import { eventHubEndpoint } from './hub/eventhub.js';
import { type HubMqtt, startHubMqtt } from './hub/mqtt.js';
import { followHubPushes, type HubPushFollower } from './hub/push-follower.js';
import { claimStateDir, type StateClaim, waitMsProblem } from './state-claim.js';
import { SqliteStore } from './store/sqlite.js';
import { ensureCertificates, type TlsMaterial } from './tls/certificates.js';
import { type RunningAmqpTransport, startAmqpTransport } from './transport/amqp.js';
import {
  type ConnectionLimits,
  checkConnectionLimits,
  DEFAULT_CONNECTION_LIMITS,
} from './transport/connection-limits.js';
import { startHttpsTransport } from './transport/https.js';
import {
  MAX_MQTT_PACKET_BYTES,
  type RunningMqttTransport,
  type RunningTransport,
  startMqttTransport,
} from './transport/mqtt.js';
import { carriedOverTls, peerCertificateChain } from './transport/peer-certificates.js';
import { createWebSocketEndpoint, type WebSocketEndpoint } from './transport/websocket.js';
import { webSocketByteStream } from './transport/websocket-stream.js';
import { IOTHUB_WEBSOCKET_PATH } from './transport/websocket-upgrade.js';
import { type RunningWebView, startWebView } from './web/server.js';

/** The web view's port unless configured (when taken, a free port is used and the banner says which). */
export const DEFAULT_WEB_VIEW_PORT = 8090;

export interface EmulatorOptions {
  /** The config, same shape as the config file; defaults applied. Without it and `configFile`: the tutorial setup. */
  config?: EmulatorConfigInput;
  /** A JSON or YAML config file (alternative to `config`). */
  configFile?: string;
  /** Registration records, generated keys and TLS files (default `./.dpskit/emulator`). */
  stateDir?: string;
  /** Bind address of both servers (default `127.0.0.1`: reachable as `localhost`, covered by the certificate). */
  host?: string;
  /** Extra names (DNS or IP) for the server certificate besides localhost, 127.0.0.1 and ::1. */
  tlsNames?: string[];
  /** MQTT over TLS (default 8883; 0 picks a free port). */
  mqttPort?: number;
  /** HTTPS (default 443, the only port the Node HTTP transport uses unaided; 0 picks a free port; null or false disables it). */
  httpsPort?: number | null | false;
  /**
   * AMQP 1.0 over TLS (default 5671, as DPS; 0 picks a free port; null or false disables it, and
   * with it AMQP over WebSockets).
   */
  amqpPort?: number | null | false;
  /**
   * The `retry-after` sent with every `assigning` answer: whole seconds from 0 to 300 (default 3,
   * as DPS). Fractions are refused: the Python and C SDKs cannot parse them. For fast tests use 0:
   * the SDKs poll at once and each poll is answered as soon as the allocation is done.
   */
  retryAfterSeconds?: number;
  webhook?: {
    /** Whole-call deadline (default 30000 ms; DPS does not document one). */
    timeoutMs?: number;
    /** Retries of answers ≥ 429 (default DPS's: 10 retries, 1 s initial interval, 9 s increment). */
    retry?: { count?: number; initialIntervalMs?: number; incrementMs?: number };
  };
  /**
   * Bounds on device connections and what they send (defaults: `DEFAULT_CONNECTION_LIMITS`, JSON
   * nested at most 64 deep). See https://github.com/dpskit/dpskit/blob/main/apps/emulator/docs/limits.md.
   */
  limits?: Partial<ConnectionLimits> & {
    maxJsonDepth?: number;
    /** Individual enrollments the service API creates at most (default DPS's quota, 1,000,000). */
    maxIndividualEnrollments?: number;
    /** Enrollment groups per attestation type the service API creates at most (default DPS's quota, 100). */
    maxEnrollmentGroups?: number;
  };
  /** Structured log sink (default: JSON lines on stdout). */
  log?: LogSink;
  /** Lowest level passed to `log` (default `info`). */
  logLevel?: LogLevel;
  /**
   * The clock the log's limit on warnings any client can cause is measured on (at most one line in
   * full a second per kind and listener, the rest counted: see
   * https://github.com/dpskit/dpskit/blob/main/apps/emulator/docs/events-and-logs.md). Default: the
   * wall clock. A test passes one it moves, to see each warning in full or a flood counted, without
   * waiting on real seconds.
   */
  logClock?: () => Date;
  /**
   * The service API's shared access policies; overrides the config's `sharedAccessPolicies`.
   * Default: `provisioningserviceowner` with the well-known development key (`WELL_KNOWN_SERVICE_KEY`).
   */
  sharedAccessPolicies?: SharedAccessPolicy[];
  /**
   * The read-only web view (enrollments, live registrations with their webhook exchanges, fleet
   * charts): plain HTTP on a port of its own, on 127.0.0.1 unless `host` says otherwise. Default
   * port `DEFAULT_WEB_VIEW_PORT` (a free one when that is taken; an explicit port must be free;
   * 0 picks one). `false` turns it off.
   */
  webView?: { port?: number; host?: string } | false;
  /**
   * Registration attempts kept in the store for the web view (default the config's
   * `attemptHistory`, else 10,000; the oldest go first; 0 keeps none; at most 1,000,000).
   */
  attemptHistory?: number;
  /**
   * The emulated IoT hubs' shared access policies (every hub has the same). Default:
   * `iothubowner` with the well-known development key (`WELL_KNOWN_HUB_KEY`).
   */
  hubPolicies?: HubPolicy[];
  /**
   * Certificate issuance (DPS's `csr` → `issuedCertificateChain`, api-version 2025-07-01-preview
   * and later): the CA that signs the devices' requests. `cert`: PEM, the CA certificate first,
   * optionally followed by its issuers up to the root (they end every issued chain); `key`: its
   * private key, PEM; `days`: validity of issued certificates (default 30). Without it, a register
   * body with `csr` is refused with 400001.
   */
  issuingCa?: { cert: string; key: string; days?: number };
  /**
   * Run again, on start, the allocations a previous run left unfinished (default true). A second
   * process serving the same state folder alongside a running one (`dps-emulator start --workers`)
   * passes false: the operations it would find are the running one's, not left over.
   */
  resumeUnfinished?: boolean;
  /**
   * Other processes serve the same state folder at the same time (`dps-emulator start --workers`
   * passes true; default false): what one process does for a device held by another goes through
   * the store. The hubs' pushes (a desired-property update, the close of a deleted, disabled or
   * moved device's connection, or of a device's older connection when it connected again) are written there by the process serving the registry call and delivered by the
   * process holding the device's connection, which looks every 20 ms. Register requests of one
   * registration id run one after another across the processes, as within one (each waits for the
   * earlier ones in the store, looking every 20 ms). Only the first process to claim the folder
   * clears what a previous run left of its connections (devices shown Connected, cloud-to-device
   * locks): one that joins a running one finds them live.
   */
  sharedStore?: boolean;
  /**
   * How long `start()` waits for another emulator holding the state folder to stop before it
   * refuses with `StateDirInUseError` (default 5000 ms: a Ctrl-C and a start right after it just
   * work). A test that expects the refusal passes a short wait rather than sit out the default.
   */
  stateClaimWaitMs?: number;
  /**
   * How long a store write waits for another connection's write lock (another `--workers` process,
   * a tool holding the state file) before it fails with "database is locked" (default 5000 ms). A
   * test of that failure passes a short wait rather than sit out the default.
   */
  storeBusyTimeoutMs?: number;
}

export interface EmulatorEndpoint {
  host: string;
  port: number;
  /**
   * What to pass to `ProvisioningDeviceClient.create`: `localhost:PORT` for MQTT. For HTTPS the host
   * name alone, because the Node HTTP transport cannot take a port (give it an agent whose
   * `defaultPort` is `port`, see the README).
   */
  provisioningHost: string;
}

export interface WebSocketEndpointInfo extends EmulatorEndpoint {
  /** `wss://{host}:{port}/$iothub/websocket`, where the SDKs' WebSocket transports connect. */
  url: string;
  /** The subprotocols served there: `mqtt` (MQTT over WebSockets), `AMQPWSB10` (AMQP over WebSockets). */
  subprotocols: readonly string[];
}

/** A cloud-to-device message as `Emulator.sendCloudToDevice` takes it (the fields of azure-iot-common's Message). */
export interface CloudToDeviceMessage {
  /** UTF-8 text, or bytes. */
  body: string | Uint8Array;
  messageId?: string;
  correlationId?: string;
  userId?: string;
  contentType?: string;
  contentEncoding?: string;
  /** When the message expires (default: in an hour; at most 48 hours ahead). */
  expiryTimeUtc?: Date | string;
  /** The feedback asked for (carried to the device as `iothub-ack`; feedback itself is not emulated). */
  ack?: 'none' | 'positive' | 'negative' | 'full';
  /** Application properties (IoT Hub's characters only: ASCII letters, digits and !#$%&'*+-.^_`|~). */
  properties?: Record<string, string>;
}

/** A queued message's place in its device's queue and its expiry. */
export interface CloudToDeviceQueued {
  sequenceNumber: number;
  expiryTimeUtc: string;
}

/** A message in a device's cloud-to-device queue. */
export interface CloudToDeviceQueueEntry {
  sequenceNumber: number;
  messageId?: string;
  /** Invisible: delivered and locked, not yet completed, rejected or abandoned. */
  state: 'Enqueued' | 'Invisible';
  deliveryCount: number;
  enqueuedTimeUtc: string;
  expiryTimeUtc: string;
  bytes: number;
}

export interface GeneratedKeysInfo {
  kind: 'group' | 'individual';
  id: string;
  keys: ('primaryKey' | 'secondaryKey')[];
}

export interface Emulator {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly idScope: string;
  /**
   * Where each transport listens. `webSockets` is on the HTTPS listener; its `provisioningHost` is the
   * host name alone, since the SDKs' WebSocket transports always add port 443 (see the README).
   */
  readonly endpoints: {
    mqtt: EmulatorEndpoint;
    https?: EmulatorEndpoint;
    /** AMQP 1.0 over TLS: `provisioningHost` is `localhost:PORT` (the Node AMQP transport takes a port). */
    amqp?: EmulatorEndpoint;
    webSockets?: WebSocketEndpointInfo;
  };
  readonly stateDir: string;
  readonly caCertPath: string;
  readonly caCertPem: string;
  /** The enrollments served, as the service stores them (keys included). */
  readonly enrollments: { groups: EnrollmentGroup[]; individuals: IndividualEnrollment[] };
  /** The IoT hubs linked to the emulated DPS instance. */
  readonly linkedHubs: readonly LinkedHub[];
  /** Enrollments whose keys the emulator generated (the config gave none). */
  readonly generatedKeys: readonly GeneratedKeysInfo[];
  /** What happened to the TLS files on this start. */
  readonly tls: { action: TlsMaterial['action']; reason?: string };
  /**
   * The service API's connection string for `ProvisioningServiceClient.fromConnectionString`
   * (`provisioningserviceowner`, or the first policy configured). The Node service SDK always
   * connects to port 443: on another port give it an agent (see the README). Undefined without HTTPS.
   */
  readonly serviceConnectionString: string | undefined;
  /** The shared access policies the service API accepts. */
  readonly sharedAccessPolicies: readonly SharedAccessPolicy[];
  /** What seeding the config's enrollments did on this start (see `config/seed.ts`). */
  readonly seeded: readonly SeedReport[];
  /**
   * The registry connection string of an emulated hub (`iothubowner`; default the first linked hub)
   * for `azure-iothub`'s `Registry.fromConnectionString`. The hub's host name does not resolve:
   * clients reach the emulator's HTTPS port through an agent (see the README).
   */
  hubConnectionString(hostName?: string): string;
  /**
   * The Event Hubs-compatible connection string of an emulated hub's built-in endpoint (default the
   * first linked hub), as the portal's "Built-in endpoints" gives it, for @azure/event-hubs'
   * `EventHubConsumerClient`: `Endpoint=sb://localhost:{amqp port}/;SharedAccessKeyName=iothubowner;
   * SharedAccessKey=…;EntityPath={hub name}` (TLS, the emulator's CA: see docs/hubs.md). With your
   * own `hubPolicies`: the first with ServiceConnect (the endpoint takes no other); throws if none has it.
   */
  eventHubConnectionString(hostName?: string): string;
  /** The device identities (with twins) of one emulated hub, or of all. */
  hubDevices(hostName?: string): HubDevice[];
  /** A device's module identities (with their twins) in module id order, in one emulated hub or in each. */
  hubModules(deviceId: string, hostName?: string): HubModule[];
  /** Device-to-cloud messages a hub received (the newest 1000 per hub and each device's newest 10), oldest first. */
  telemetry(hostName?: string, deviceId?: string): TelemetryRecord[];
  /**
   * Queues a cloud-to-device message for a device of a hub (default the first linked hub), as
   * `azure-iothub`'s `Client.send` does: the device gets it over MQTT or HTTPS. Throws as IoT Hub
   * refuses: the device not in the registry (404 DeviceNotFound), its queue full (50, 403004),
   * over 64 KB (413001), property names or values outside IoT Hub's characters (400004).
   */
  sendCloudToDevice(deviceId: string, message: CloudToDeviceMessage, hostName?: string): CloudToDeviceQueued;
  /** A device's cloud-to-device queue (oldest first, never the bodies): what is Enqueued or Invisible. */
  cloudToDeviceQueue(deviceId: string, hostName?: string): CloudToDeviceQueueEntry[];
  /** `registration`: each register request's outcome. `hub`: device connections, twin changes, telemetry and registry changes of the emulated hubs. */
  on(event: 'registration', listener: (event: RegistrationEvent) => void): this;
  on(event: 'hub', listener: (event: HubEvent) => void): this;
  off(event: 'registration', listener: (event: RegistrationEvent) => void): this;
  off(event: 'hub', listener: (event: HubEvent) => void): this;
  once(event: 'registration', listener: (event: RegistrationEvent) => void): this;
  once(event: 'hub', listener: (event: HubEvent) => void): this;
  /** The registration records in the store. */
  registrations(): DeviceRegistrationResult[];
  /** The web view's address (`http://127.0.0.1:8090/`), undefined when it is off. */
  readonly webViewUrl: string | undefined;
}

interface Running {
  /** This emulator's hold on its state folder (see state-claim.ts). */
  claim: StateClaim;
  resolved: ResolvedConfig;
  /** Writes the attempts not yet in the store's log (they are written once per event-loop turn). */
  flushAttempts(): void;
  enrollments: EnrollmentService;
  policies: readonly SharedAccessPolicy[];
  seeded: SeedReport[];
  store: SqliteStore;
  tls: TlsMaterial;
  service: RegistrationService;
  webhook: WebhookClient;
  hub: HubService;
  hubMqtt: HubMqtt;
  /** With `sharedStore`: follows the other processes' hub pushes. */
  hubPushes?: HubPushFollower;
  mqtt: RunningMqttTransport;
  https?: RunningTransport;
  amqp?: RunningAmqpTransport;
  webView?: RunningWebView;
  webSockets?: WebSocketEndpoint;
}

/** The emulator-wide limited warnings (#refusals): what anyone can cause without a credential. */
export const REFUSAL_LIMITED_WARNINGS: Readonly<Record<string, LimitedKind>> = {
  registration: { summary: 'registration(s) refused as unauthorized', countBy: 'transport' },
  'hub.connect-refused': { summary: 'device request(s) or connection(s) refused by a hub', countBy: 'reason' },
};

export function createEmulator(options: EmulatorOptions = {}): Emulator {
  return new EmulatorInstance(options);
}

class EmulatorInstance extends EventEmitter implements Emulator {
  readonly #options: EmulatorOptions;
  readonly #log: Logger;
  /**
   * The `registration` lines of refused (unauthorized) registrations and the hubs' `connect-refused`
   * lines (a refused HTTPS request or MQTT connection, the hubs' transports): anyone can send them without valid
   * credentials, so they are logged at most once in full a second per kind, the rest counted
   * (registrations by transport, hub refusals by reason; limitWarnings). The `registration` and
   * `hub` events and the attempt history still see each one.
   */
  readonly #refusals: LimitedWarnings;
  #running: Running | undefined;
  #starting = false;

  constructor(options: EmulatorOptions) {
    super();
    if (options.config && options.configFile) throw new TypeError('Pass either config or configFile, not both.');
    checkPort('mqttPort', options.mqttPort);
    if (options.httpsPort !== null && options.httpsPort !== false) checkPort('httpsPort', options.httpsPort);
    if (options.amqpPort !== null && options.amqpPort !== false) checkPort('amqpPort', options.amqpPort);
    if (options.retryAfterSeconds !== undefined) assertRetryAfterSeconds(options.retryAfterSeconds);
    if (options.webView) checkPort('webView.port', options.webView.port);
    if (options.attemptHistory !== undefined) {
      const problem = attemptHistoryProblem('attemptHistory', options.attemptHistory);
      if (problem) throw new RangeError(problem);
    }
    for (const name of ['stateClaimWaitMs', 'storeBusyTimeoutMs'] as const) {
      const problem = options[name] === undefined ? undefined : waitMsProblem(name, options[name]);
      if (problem) throw new RangeError(problem);
    }
    const { maxJsonDepth, ...connectionLimits } = options.limits ?? {};
    checkConnectionLimits({ ...connectionLimits, ...(maxJsonDepth !== undefined ? { maxJsonDepth } : {}) });
    this.#options = options;
    this.#log = createLogger(options.log ?? jsonLineSink(), options.logLevel ?? 'info');
    this.#refusals = limitWarnings(this.#log, REFUSAL_LIMITED_WARNINGS, { now: options.logClock });
  }

  get stateDir(): string {
    return resolve(this.#options.stateDir ?? join('.dpskit', 'emulator'));
  }

  async start(): Promise<void> {
    if (this.#running || this.#starting) throw new Error('The emulator is already started.');
    this.#starting = true;
    const cleanup: (() => Promise<void> | void)[] = [];
    try {
      const config = this.#options.configFile
        ? loadConfigFile(this.#options.configFile)
        : parseConfig(
            this.#options.config ?? tutorialConfig(),
            this.#options.config ? 'config option' : 'built-in tutorial config',
          );
      const stateDir = this.stateDir;
      // Before the store is touched: a second emulator on this folder would seed over the first's.
      const claim = claimStateDir(stateDir, this.#options.sharedStore === true, this.#options.stateClaimWaitMs);
      cleanup.push(() => claim.release());
      const store = SqliteStore.open(join(stateDir, 'emulator.db'), {
        ...(this.#options.storeBusyTimeoutMs !== undefined ? { busyTimeoutMs: this.#options.storeBusyTimeoutMs } : {}),
      });
      cleanup.push(() => store.close());
      const resolved = resolveConfig(config, store);
      const seeded = seedEnrollments(resolved.model.enrollments, store, store, new Date(), caCertificatesOf(config));
      for (const entry of seeded) {
        if (entry.action === 'kept') continue;
        // A first seeding is routine; a file that replaced or removed what the store had is news.
        this.#log[entry.action === 'created' ? 'debug' : 'info'](
          'seed',
          `config ${entry.kind === 'group' ? 'enrollment group' : 'individual enrollment'} "${entry.id}" ${entry.action}`,
          { ...entry },
        );
      }
      const enrollments = new EnrollmentService({
        store,
        registrations: store,
        linkedHubs: resolved.model.linkedHubs.map((hub) => hub.hostName),
        caCertificates: caCertificatesOf(config),
        quotas: {
          individualEnrollments:
            this.#options.limits?.maxIndividualEnrollments ?? DEFAULT_ENROLLMENT_QUOTAS.individualEnrollments,
          enrollmentGroups: this.#options.limits?.maxEnrollmentGroups ?? DEFAULT_ENROLLMENT_QUOTAS.enrollmentGroups,
        },
      });
      // The registration core reads the enrollments through this view: a change through the
      // service API (or another process on the same store) applies to the next device request.
      const staticModel = resolved.model;
      const model: ServiceModel = {
        idScope: staticModel.idScope,
        linkedHubs: staticModel.linkedHubs,
        defaultAllocationPolicy: staticModel.defaultAllocationPolicy,
        get enrollments() {
          return enrollments.enrollments();
        },
      };
      const policies: readonly SharedAccessPolicy[] =
        this.#options.sharedAccessPolicies ?? config.sharedAccessPolicies ?? DEFAULT_SERVICE_POLICIES;

      const host = this.#options.host ?? '127.0.0.1';
      // The hubs' names too: a client that reaches a hub by its name (hosts file, agent lookup) checks it.
      const names = [...(this.#options.tlsNames ?? []), ...resolved.model.linkedHubs.map((hub) => hub.hostName)];
      if (!isWildcard(host)) names.push(host);
      const tls = await ensureCertificates({ dir: join(stateDir, 'tls'), names });
      if (tls.action !== 'reused') {
        this.#log.info('tls', `TLS certificates ${tls.action}${tls.reason ? `: ${tls.reason}` : ''}`, {
          caCertPath: tls.caCertPath,
        });
      }

      const webhook = new WebhookClient({ timeoutMs: this.#options.webhook?.timeoutMs ?? 30_000 });
      cleanup.push(() => webhook.close());
      const retry: WebhookRetryPolicy = { ...DPS_WEBHOOK_RETRY, ...definedOnly(this.#options.webhook?.retry ?? {}) };
      const history = this.#options.attemptHistory ?? config.attemptHistory ?? DEFAULT_ATTEMPT_HISTORY;
      store.pruneAttempts(history);
      // Pruned every 1/64th of the history (at most every 256 attempts): the log holds at most
      // 1.6% more than `history` between prunes, and exactly `history` when it is under 64.
      const pruneEvery = Math.max(1, Math.min(256, Math.floor(history / 64)));
      let appended = 0;
      // Every attempt into the store's bounded log, which the web view reads (from any process),
      // with the other writes of its event-loop turn in one transaction (store.writeSoon: a commit
      // per attempt was a tenth of the store's time per registration, bench:server).
      const recordAttempt = (event: RegistrationEvent) => {
        if (history === 0) return;
        const attempt = attemptFromEvent(event);
        store
          .writeSoon(() => {
            store.appendAttempt(attempt);
            if (++appended % pruneEvery === 0) store.pruneAttempts(history);
          })
          .catch((error: unknown) => {
            this.#log.error('internal', `registration attempt not logged: ${(error as Error).message}`);
          });
      };
      const flushAttempts = () => store.flushWrites();
      cleanup.push(flushAttempts);
      // The option (or the CLI's files) first, else the config file's.
      const issuing =
        this.#options.issuingCa ??
        (config.issuingCa
          ? {
              cert: config.issuingCa.certificate,
              key: config.issuingCa.key,
              ...(config.issuingCa.days !== undefined ? { days: config.issuingCa.days } : {}),
            }
          : undefined);
      const issuingCa = issuing
        ? await loadIssuingCa(issuing.cert, issuing.key, {
            ...(issuing.days !== undefined ? { days: issuing.days } : {}),
          })
        : undefined;
      const service = new RegistrationService({
        model,
        store,
        ...(this.#options.sharedStore ? { sharedStore: true } : {}),
        ...(issuingCa ? { issuingCa } : {}),
        callWebhook: (url, body, signal) => webhook.call(url, body, signal),
        webhookRetry: retry,
        onRegistration: (event) => {
          recordAttempt(event);
          this.#onRegistration(event);
        },
        onError: (error, context) =>
          this.#log.error('internal', `${context.registrationId}: ${(error as Error).message}`, {
            ...context,
            stack: (error as Error).stack,
          }),
      });
      cleanup.push(() => service.close());
      // Operations a previous run left unfinished (it was stopped or killed): their devices poll on.
      const resumed = this.#options.resumeUnfinished === false ? 0 : service.resumeUnfinished();
      if (resumed > 0) {
        this.#log.info('resume', `resuming ${resumed} unfinished registration operation(s) from ${stateDir}`, {
          operations: resumed,
        });
      }
      const {
        maxJsonDepth,
        maxIndividualEnrollments: _individual,
        maxEnrollmentGroups: _groups,
        ...connectionLimits
      } = this.#options.limits ?? {};
      const limits: ConnectionLimits = { ...DEFAULT_CONNECTION_LIMITS, ...definedOnly(connectionLimits) };
      const api = new DeviceApi(service, {
        retryAfterSeconds: this.#options.retryAfterSeconds ?? 3,
        maxJsonDepth: maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH,
        // Only when the debug line is written: its message and fields were built (and dropped by
        // the logger) for every poll at the default level.
        ...(levelEnabled('debug', this.#options.logLevel ?? 'info')
          ? {
              onPoll: (poll: PollReport) =>
                this.#log.debug(
                  'operation.poll',
                  `${clip(poll.registrationId)} polled ${poll.operationId}: ${poll.state}`,
                  { ...poll, registrationId: clip(poll.registrationId) },
                ),
            }
          : {}),
      });
      const serverTls = { cert: tls.serverCertPem, key: tls.serverKeyPem };

      // A name of this process among the others on the store: its own pushes are not delivered twice.
      const pushOutbox = this.#options.sharedStore ? store.hubPushes(`${process.pid}:${randomUUID()}`) : undefined;
      // Other workers' pushes are read while a device is connected to this worker, or a direct
      // method call is in flight here (its device may be on another worker: its end comes back
      // through the store).
      let hubPushes: HubPushFollower | undefined;
      const following = { devices: false, amqpDevices: false, methods: false };
      const follow = (why: keyof typeof following, any: boolean) => {
        following[why] = any;
        if (following.devices || following.amqpDevices || following.methods) hubPushes?.start();
        else hubPushes?.stop();
      };
      const hub = new HubService({
        store: store.hub,
        hubs: staticModel.linkedHubs.map((linked) => linked.hostName),
        policies: this.#options.hubPolicies ?? DEFAULT_HUB_POLICIES,
        onEvent: (event) => this.#onHubEvent(event),
        ...(pushOutbox ? { outbox: pushOutbox } : {}),
        // Hub telemetry over MQTT commits with the turn's other writes (DPS registrations' too).
        writeSoon: (write) => store.writeSoon(write),
        onMethodsInFlight: (any) => follow('methods', any),
      });
      // What a previous run left of its connections (none outlives its process; a killed one never
      // wrote their end) is cleared by a process that has the store to itself, before any
      // connection: devices and modules it left Connected are Disconnected, cloud-to-device
      // messages locked to its connections Enqueued again. With --workers, by the first worker
      // only (the others start while it serves); the C2D locks as it resumes the registrations.
      if (claim.alone) {
        const leftovers = disconnectLeftovers(store.hub, hub.hubs, new Date());
        if (leftovers > 0)
          this.#log.info(
            'hub.connections',
            `${leftovers} device/module connection(s) a previous run left Connected marked Disconnected`,
            { count: leftovers },
          );
      }
      if (claim.alone && this.#options.resumeUnfinished !== false) hub.releaseCloudToDevice();
      if (pushOutbox) {
        // A method call for a device connected to another worker goes there through the store, and
        // its end comes back the same way (hub/core/direct-methods.ts).
        hub.methods.relayThrough({
          forward: (request) => pushOutbox.add({ kind: 'method', ...request }),
          reply: (end) => pushOutbox.add({ kind: 'method-end', hub: end.hub, deviceId: end.deviceId, end }),
        });
      }
      // A DPS re-provisioning that moves a device away from a hub (or device id) deletes it there:
      // its connection there is closed, here once the assignment is committed (never if it rolls
      // back; out of the store's write, at the end of the turn: the close writes to the store too)
      // and on the other processes through the store.
      store.assignmentPushes = {
        ...(pushOutbox ? { outbox: pushOutbox } : {}),
        announce: (push) => setImmediate(() => hub.announcePush(push)),
      };
      cleanup.push(() => {
        store.assignmentPushes = undefined;
      });
      // The clock of the listeners' limits on the warnings any client can cause (core/limited-warnings.ts).
      const logClock = { now: this.#options.logClock };
      const hubMqtt = await startHubMqtt(hub, this.#log, {
        onDevicesConnected: (any) => follow('devices', any),
        ...logClock,
      });
      cleanup.push(() => hubMqtt.close());
      // The hubs' AMQP endpoint shares DPS's AMQP listener (and the WebSocket path): the device API
      // is its first endpoint.
      const amqpEnabled = this.#options.amqpPort !== null && this.#options.amqpPort !== false;
      // The hubs' Event Hubs-compatible built-in endpoints (@azure/event-hubs), on the same listener.
      const eventHubs = new EventHubService({
        store: store.hub,
        hubs: hub.hubs,
        consumerGroups: Object.fromEntries(
          staticModel.linkedHubs.map((linked) => [linked.hostName, linked.consumerGroups ?? []]),
        ),
        policies: hub.policies,
      });
      const hubAmqp = amqpEnabled
        ? createHubAmqp(hub, { eventHubs, onDevicesConnected: (any) => follow('amqpDevices', any) })
        : undefined;
      const deviceAmqp = hubAmqp ? createDeviceAmqpEndpoint(hub) : undefined;
      if (hubAmqp && deviceAmqp) {
        cleanup.push(() => hubAmqp.close());
        hubAmqp.addEndpoint(deviceAmqp);
        cleanup.push(() => deviceAmqp.close());
        // azure-iothub's Client.send: cloud-to-device messages on /messages/devicebound.
        hubAmqp.addEndpoint(c2dServiceEndpoint(hub));
        hubAmqp.addEndpoint(
          eventHubEndpoint(hub, eventHubs, {
            endpointHost: () => this.#running?.amqp && this.endpoints.amqp?.provisioningHost,
            log: this.#log,
          }),
        );
      }
      if (pushOutbox) {
        const follower = followHubPushes({
          feed: pushOutbox,
          deliver: (push, seq) => {
            if (push.kind === 'method') hub.methods.deliverRelayed(push);
            else if (push.kind === 'method-end') hub.methods.relayEnded(push.end);
            else {
              // The calls waiting here for a device that just connected to another worker go there.
              if (push.kind === 'connected') hub.methods.deviceConnectedElsewhere(push.hub, push.deviceId);
              hubMqtt.deliver(push, seq);
              hubAmqp?.deliver(push, seq);
              deviceAmqp?.deliver(push);
            }
          },
          log: this.#log,
        });
        hubPushes = follower;
        cleanup.push(() => follower.close());
      }

      const mqtt = await startMqttTransport({
        api,
        tls: serverTls,
        host,
        port: this.#options.mqttPort ?? 8883,
        log: this.#log,
        limits,
        route: (username) => hubMqtt.route(username),
        ...logClock,
      });
      cleanup.push(() => mqtt.close());
      let amqp: RunningAmqpTransport | undefined;
      const amqpPort = this.#options.amqpPort;
      if (amqpPort !== null && amqpPort !== false) {
        amqp = await startAmqpTransport({
          api,
          tls: serverTls,
          host,
          port: amqpPort ?? 5671,
          log: this.#log,
          limits,
          ...(hubAmqp ? { hubs: hubAmqp } : {}),
          ...logClock,
        });
        const started = amqp;
        cleanup.push(() => started.close());
      }
      let https: RunningTransport | undefined;
      let webSockets: WebSocketEndpoint | undefined;
      const httpsPort = this.#options.httpsPort;
      if (httpsPort !== null && httpsPort !== false) {
        webSockets = createWebSocketEndpoint({
          log: this.#log,
          // One MQTT packet per WebSocket message, as large as the MQTT listener reads.
          maxMessageBytes: MAX_MQTT_PACKET_BYTES + 16,
          idleTimeoutMs: limits.idleTimeoutMs,
          ...logClock,
          protocols: {
            mqtt: (ws, req, peer) => {
              const stream = webSocketByteStream(ws);
              // X.509 devices: their certificate is the TLS connection's the WebSocket runs over.
              carriedOverTls(stream, req.socket);
              mqtt.acceptStream(stream, peer);
            },
            ...(amqp
              ? { amqp: (ws, req, peer) => amqp?.acceptWebSocket(ws, peer, peerCertificateChain(req.socket)) }
              : {}),
          },
        });
        const endpoint = webSockets;
        cleanup.push(() => endpoint.close());
        https = await startHttpsTransport({
          api,
          service: { enrollments, policies: () => policies, maxJsonDepth: maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH },
          hub,
          tls: serverTls,
          host,
          port: httpsPort ?? 443,
          log: this.#log,
          limits,
          upgradeHandlers: [webSockets.upgrade],
          ...logClock,
        });
      }

      let webView: RunningWebView | undefined;
      const webOptions = this.#options.webView;
      if (webOptions !== false) {
        webView = await startWebView({
          host: webOptions?.host ?? '127.0.0.1',
          port: webOptions?.port ?? DEFAULT_WEB_VIEW_PORT,
          fallbackToFreePort: webOptions?.port === undefined,
          log: this.#log,
          source: {
            overview: () => ({
              idScope: staticModel.idScope,
              linkedHubs: staticModel.linkedHubs.map((hub) => ({
                hostName: hub.hostName,
                allocationWeight: hub.allocationWeight,
                applyAllocationPolicy: hub.applyAllocationPolicy,
              })),
              endpoints: { mqtt: `${host}:${mqtt.port}`, https: https ? `${host}:${https.port}` : null },
              attemptHistory: history,
            }),
            enrollments: () => ({
              groups: store.listEnrollments('group').items.map((g) => g.record as EnrollmentGroup),
              individuals: store.listEnrollments('individual').items.map((i) => i.record as IndividualEnrollment),
            }),
            registrationCounts: () => store.registrationCounts(),
            attempts: store,
            policyKeys: () =>
              [...policies, ...hub.policies].flatMap((p) =>
                p.secondaryKey ? [p.primaryKey, p.secondaryKey] : [p.primaryKey],
              ),
            hubs: { names: () => hub.hubs, store: store.hub },
          },
        });
        const running = webView;
        cleanup.push(() => running.close());
      }

      this.#running = {
        claim,
        resolved: { ...resolved, model },
        flushAttempts,
        enrollments,
        policies,
        seeded,
        store,
        tls,
        service,
        webhook,
        hub,
        hubMqtt,
        ...(hubPushes ? { hubPushes } : {}),
        mqtt,
        ...(https ? { https } : {}),
        ...(amqp ? { amqp } : {}),
        ...(webView ? { webView } : {}),
        ...(webSockets ? { webSockets } : {}),
      };
      this.#log.info('started', `DPS emulator for ID scope ${resolved.model.idScope} listening`, {
        idScope: resolved.model.idScope,
        mqtt: `${host}:${mqtt.port}`,
        https: https ? `${host}:${https.port}` : null,
        amqp: amqp ? `${host}:${amqp.port}` : null,
        webView: webView?.url ?? null,
        webSockets: https ? `wss://${host}:${https.port}${IOTHUB_WEBSOCKET_PATH}` : null,
        stateDir,
        caCertPath: tls.caCertPath,
      });
    } catch (err) {
      for (const step of cleanup.reverse()) await step();
      throw err;
    } finally {
      this.#starting = false;
    }
  }

  async stop(): Promise<void> {
    const running = this.#running;
    if (!running) return;
    this.#running = undefined;
    await running.webView?.close();
    await running.mqtt.close();
    await running.amqp?.close();
    running.webSockets?.close();
    running.hubPushes?.close();
    await running.hubMqtt.close();
    await running.https?.close();
    await running.service.close();
    running.webhook.close();
    running.flushAttempts();
    running.store.close();
    running.claim.release();
    this.#refusals.flush();
    this.#log.info('stopped', 'DPS emulator stopped');
  }

  get idScope(): string {
    return this.#require().resolved.model.idScope;
  }

  get endpoints(): Emulator['endpoints'] {
    const running = this.#require();
    const endpoint = (transport: RunningTransport, withPort: boolean): EmulatorEndpoint => {
      const name = provisioningHostName(transport.host);
      return {
        host: transport.host,
        port: transport.port,
        provisioningHost: withPort ? `${name}:${transport.port}` : name,
      };
    };
    const webSockets = running.https && running.webSockets ? endpoint(running.https, false) : undefined;
    return {
      mqtt: endpoint(running.mqtt, true),
      ...(running.https ? { https: endpoint(running.https, false) } : {}),
      ...(running.amqp ? { amqp: endpoint(running.amqp, true) } : {}),
      ...(webSockets
        ? {
            webSockets: {
              ...webSockets,
              url: `wss://${webSockets.provisioningHost}:${webSockets.port}${IOTHUB_WEBSOCKET_PATH}`,
              subprotocols: running.webSockets?.subprotocols ?? [],
            },
          }
        : {}),
    };
  }

  get caCertPath(): string {
    return this.#require().tls.caCertPath;
  }

  get caCertPem(): string {
    return this.#require().tls.caCertPem;
  }

  get tls(): Emulator['tls'] {
    const { action, reason } = this.#require().tls;
    return reason ? { action, reason } : { action };
  }

  get enrollments(): Emulator['enrollments'] {
    const { store } = this.#require();
    return {
      groups: store.listEnrollments('group').items.map((g) => g.record as EnrollmentGroup),
      individuals: store.listEnrollments('individual').items.map((i) => i.record as IndividualEnrollment),
    };
  }

  get serviceConnectionString(): string | undefined {
    const running = this.#require();
    if (!running.https) return undefined;
    const policy = running.policies.find((p) => p.keyName === OWNER_POLICY_NAME) ?? running.policies[0];
    return policy ? serviceConnectionString(provisioningHostName(running.https.host), policy) : undefined;
  }

  get sharedAccessPolicies(): readonly SharedAccessPolicy[] {
    return this.#require().policies;
  }

  get seeded(): readonly SeedReport[] {
    return this.#require().seeded;
  }

  get linkedHubs(): readonly LinkedHub[] {
    return this.#require().resolved.model.linkedHubs;
  }

  get generatedKeys(): readonly GeneratedKeysInfo[] {
    return this.#require().resolved.generated;
  }

  hubConnectionString(hostName?: string): string {
    const running = this.#require();
    const hub = hostName === undefined ? running.hub.hubs[0] : running.hub.hubNamed(hostName);
    if (!hub)
      throw new Error(`${hostName ?? 'the emulator'} is not one of the linked hubs (${running.hub.hubs.join(', ')})`);
    const policy = running.hub.policies.find((p) => p.keyName === HUB_OWNER_POLICY_NAME) ?? running.hub.policies[0];
    if (!policy) throw new Error('the hubs have no shared access policy');
    return serviceConnectionString(hub, policy);
  }

  eventHubConnectionString(hostName?: string): string {
    const running = this.#require();
    const amqp = this.endpoints.amqp;
    if (!amqp)
      throw new Error('the emulator runs without AMQP (amqpPort: false): the Event Hubs-compatible endpoint is on it');
    const hub = hostName === undefined ? running.hub.hubs[0] : running.hub.hubNamed(hostName);
    if (!hub)
      throw new Error(`${hostName ?? 'the emulator'} is not one of the linked hubs (${running.hub.hubs.join(', ')})`);
    const policy = eventHubReaderPolicy(running.hub.policies);
    if (!policy)
      throw new Error(
        `no hub policy has ServiceConnect (hubPolicies: ${running.hub.policies.map((p) => p.keyName).join(', ')}): the built-in endpoint takes only a policy with it`,
      );
    return `Endpoint=sb://${amqp.provisioningHost}/;SharedAccessKeyName=${policy.keyName};SharedAccessKey=${policy.primaryKey};EntityPath=${eventHubName(hub)}`;
  }

  hubDevices(hostName?: string): HubDevice[] {
    return this.#require().hub.devices(hostName);
  }

  hubModules(deviceId: string, hostName?: string): HubModule[] {
    const { hub } = this.#require();
    return (hostName === undefined ? hub.hubs : [hostName]).flatMap((name) => hub.modules(name, deviceId));
  }

  telemetry(hostName?: string, deviceId?: string): TelemetryRecord[] {
    const { hub } = this.#require();
    const hubs = hostName === undefined ? hub.hubs : [hostName];
    return hubs.flatMap((name) => hub.telemetry(name, deviceId));
  }

  sendCloudToDevice(deviceId: string, message: CloudToDeviceMessage, hostName?: string): CloudToDeviceQueued {
    const { hub } = this.#require();
    const hubName = hostName === undefined ? hub.hubs[0] : hub.hubNamed(hostName);
    if (!hubName)
      throw new Error(`${hostName ?? 'the emulator'} is not one of the linked hubs (${hub.hubs.join(', ')})`);
    const { body, expiryTimeUtc, ...rest } = message;
    const queued = hub.sendCloudToDevice(hubName, deviceId, {
      ...rest,
      body: typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body),
      ...(expiryTimeUtc !== undefined ? { expiryTimeUtc: new Date(expiryTimeUtc) } : {}),
    });
    return { sequenceNumber: queued.seq, expiryTimeUtc: new Date(queued.expiryMs).toISOString() };
  }

  cloudToDeviceQueue(deviceId: string, hostName?: string): CloudToDeviceQueueEntry[] {
    const { hub } = this.#require();
    return hub.cloudToDeviceQueue(hostName ?? hub.hubs[0] ?? '', deviceId).map((m) => ({
      sequenceNumber: m.seq,
      ...(m.messageId !== undefined ? { messageId: m.messageId } : {}),
      state: m.lock ? 'Invisible' : 'Enqueued',
      deliveryCount: m.deliveryCount,
      enqueuedTimeUtc: new Date(m.enqueuedMs).toISOString(),
      expiryTimeUtc: new Date(m.expiryMs).toISOString(),
      bytes: m.body.length,
    }));
  }

  registrations(): DeviceRegistrationResult[] {
    return this.#require()
      .store.list()
      .map((record) => record.result);
  }

  get webViewUrl(): string | undefined {
    return this.#require().webView?.url;
  }

  #require(): Running {
    if (!this.#running) throw new Error('The emulator is not running: call and await start() first.');
    return this.#running;
  }

  #onHubEvent(event: HubEvent): void {
    const level = event.kind === 'connect-refused' ? 'warn' : event.kind === 'telemetry' ? 'debug' : 'info';
    // A refused HTTPS request or MQTT connection costs its sender one request or connection and no
    // credential: limited on every transport, or anyone could write a line per connection. The `hub`
    // event still names each device turned away (and the hub's `hub.auth` debug line each refused credential).
    const log = event.kind === 'connect-refused' ? this.#refusals.log : this.#log;
    log[level](`hub.${event.kind}`, describeHubEvent(event), {
      ...event,
      deviceId: clip(event.deviceId),
      ...('moduleId' in event && event.moduleId !== undefined ? { moduleId: clip(event.moduleId) } : {}),
    });
    this.emit('hub', event);
  }

  #onRegistration(event: RegistrationEvent): void {
    const { outcome, webhook } = event;
    const via = [
      event.policy,
      webhook
        ? `webhook ${webhook.status ?? webhook.failure}${webhook.failureReason ? ` (${webhook.failureReason})` : ''} in ${webhook.latencyMs} ms, ${webhook.attempts} call${webhook.attempts === 1 ? '' : 's'}`
        : undefined,
    ]
      .filter(Boolean)
      .join('; ');
    const what =
      outcome.status === 'assigned'
        ? `assigned to ${outcome.assignedHub} (${outcome.substatus})`
        : outcome.status === 'unauthorized'
          ? `unauthorized (${outcome.errorMessage})`
          : outcome.status === 'failed'
            ? `failed ${outcome.errorCode}: ${outcome.errorMessage}`
            : outcome.status;
    // A refused device's registration id is whatever it sent: bounded like every logged client value.
    // The full webhook exchange, payload and state are for the web view; the log keeps to the summary.
    const { webhookExchange: _exchange, devicePayload: _payload, registrationState: _state, ...summary } = event;
    const record: Record<string, unknown> = { ...summary, registrationId: clip(event.registrationId) };
    const level = outcome.status === 'assigned' ? 'info' : 'warn';
    const log = outcome.status === 'unauthorized' ? this.#refusals.log : this.#log;
    log[level](
      'registration',
      `${clip(event.registrationId)} ${what}${via ? ` [${via}]` : ''} via ${event.transport}`,
      record,
    );
    this.emit('registration', event);
  }
}

function describeHubEvent(event: HubEvent): string {
  // A module's events name it as its MQTT client id does: {deviceId}/{moduleId}.
  const moduleId = 'moduleId' in event && event.moduleId !== undefined ? `/${clip(event.moduleId)}` : '';
  const who = `${clip(event.deviceId)}${moduleId} on ${event.hub}`;
  switch (event.kind) {
    case 'connected':
      return `${who} connected over ${event.transport.toUpperCase()}`;
    case 'disconnected':
      return `${who} disconnected`;
    case 'connect-refused':
      return `${who} refused over ${event.transport.toUpperCase()}: ${event.reason}`;
    case 'reported':
      return `${who} reported properties (reported $version ${event.reportedVersion})`;
    case 'twin-updated':
      return `${who} twin updated through the registry (version ${event.version}${event.desired ? `, desired $version ${event.desired.$version}` : ''})`;
    case 'telemetry':
      return `${who} sent a ${event.bytes}-byte message over ${event.transport.toUpperCase()}`;
    case 'method':
      return `${who}: direct method ${event.methodName} ${event.outcome} (status ${event.status}) in ${event.durationMs} ms`;
    case 'c2d':
      return `${who}: cloud-to-device message #${event.sequenceNumber}${event.messageId !== undefined ? ` (${event.messageId})` : ''} ${event.outcome}${event.transport ? ` over ${event.transport.toUpperCase()}` : ''} (${event.bytes} bytes, delivery count ${event.deliveryCount})`;
    default:
      return `${who}: ${event.kind.replace('-', ' ')}`;
  }
}

function checkPort(name: string, port: number | undefined): void {
  if (port === undefined) return;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new RangeError(`${name} must be an integer from 0 to 65535, not ${port}`);
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

function provisioningHostName(host: string): string {
  if (isWildcard(host) || host === '127.0.0.1' || host === '::1' || host === 'localhost') return 'localhost';
  return isIP(host) === 6 ? `[${host}]` : host;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export type { LogRecord, RegistrationEvent };
