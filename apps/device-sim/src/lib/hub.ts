// After provisioning: the device connects to its assigned IoT hub with the official device SDK
// (`azure-iot-device` over MQTT, AMQP or HTTPS: hub-transport.ts), reads its twin, reports a
// property and sends telemetry.
import type { EventEmitter } from 'node:events';
import deviceModule from 'azure-iot-device';
import { InvalidOptionError } from './errors.js';
import { type RetryPolicy, watchFirstConnection } from './hub-first-connection.js';
import {
  type HubTransportName,
  type HubTransportSetup,
  hubTransportHasTwin,
  hubTransportSetup,
  type SdkTransportClass,
} from './hub-transport.js';
import { disableMqttNumberCache } from './sdk/mqtt-packet.js';
import { ANY_METHOD, checkStayOptions, type MethodAnswer } from './stay-options.js';

export type { HubTransportName } from './hub-transport.js';
export { ANY_METHOD, type MethodAnswer } from './stay-options.js';

const { Client, Message, X509AuthenticationProvider } = deviceModule;
// The hub's MQTT transport writes through mqtt.js too (see sdk/mqtt-packet.ts).
disableMqttNumberCache(['azure-iot-device-mqtt', 'azure-iot-mqtt-base']);

export interface HubConnectOptions {
  /** The `assignedHub` DPS gave the device. */
  hub: string;
  deviceId: string;
  /** The key the device provisioned with (the hub identity has the same). */
  deviceKey?: string;
  /**
   * Or the certificate (PEM, may carry its chain) and private key it provisioned with: DPS made its
   * hub identity `selfSigned` by that certificate's thumbprint, and the hub checks it in the TLS handshake.
   */
  certificate?: { cert: string; key: string };
  /**
   * Where the hub's MQTT endpoint is reached (`host[:port]`), when not at the hub's own name on
   * 8883: the local emulator (`localhost:8883`) or a gateway. Passed as the connection string's
   * `GatewayHostName`: the SDK connects there while its username and token name the hub.
   */
  gatewayHost?: string;
  /**
   * The transport to the hub (default `mqtt`). Over `http` (IoT Hub's HTTPS device API) there is no
   * twin, no desired-property push and no direct method: the twin is neither read nor reported, and
   * a staying device only receives cloud-to-device messages (by polling) and sends telemetry.
   */
  transport?: HubTransportName;
  /** PEM CA certificate(s) to trust (the local emulator's CA). */
  ca?: string;
  /** Reported properties to send; default `{ deviceSim: { connectedAtUtc } }`. */
  reported?: Record<string, unknown>;
  /** Telemetry messages to send after reporting (default 0). */
  telemetryCount?: number;
  /** Give up after this long (ms); default 60000. With `stay`: on the steps up to listening. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Stay connected after the steps above, as a device in the field does, until `signal` aborts
   * (required): answer direct methods, take desired property changes, receive cloud-to-device
   * messages, send telemetry every `telemetryIntervalMs`. See `StayOptions`.
   */
  stay?: StayOptions;
}

export interface StayOptions {
  /**
   * Answers by method name; `'*'` (ANY_METHOD) answers every other one. Default for a method not
   * named: status 200 with `{ methodName, payload }` (the request echoed). `'no-answer'` sends
   * nothing: the caller gets IoT Hub's 504101 after its `responseTimeoutInSeconds`.
   */
  methods?: Readonly<Record<string, MethodAnswer>>;
  /**
   * Acknowledge each desired property change as IoT Plug and Play's writable-property convention
   * does: report `{ <name>: { value, ac: 200, av: <desired $version>, ad: 'completed' } }` for each
   * top-level property of the patch. Default false: the reported properties are left alone.
   */
  acknowledgeDesired?: boolean;
  /** Send a telemetry message this long after the previous one was sent (ms); default none. */
  telemetryIntervalMs?: number;
  /** Each event while staying (and `connected` once listening), as it happens. */
  onEvent?: (event: HubEvent) => void;
}

/** What a staying device saw or did; `atUtc` is when. Never holds a key or token. */
export type HubEvent = { atUtc: string; deviceId: string } & (
  | {
      event: 'connected';
      hub: string;
      /** The transport to the hub (over `http`: cloud-to-device messages and telemetry only). */
      transport: HubTransportName;
      desired?: Record<string, unknown>;
      reportedFound?: Record<string, unknown>;
      reported?: Record<string, unknown>;
      telemetrySent: number;
    }
  | {
      event: 'method';
      methodName: string;
      requestId: string;
      /** The request's payload (JSON), `null` for none. */
      payload: unknown;
      /** Absent for `'no-answer'`. */
      status?: number;
      response?: unknown;
      errorMessage?: string;
    }
  | { event: 'desired'; version?: number; patch: Record<string, unknown> }
  | { event: 'reported'; reported: Record<string, unknown>; errorMessage?: string }
  | {
      event: 'message';
      messageId?: string;
      correlationId?: string;
      contentType?: string;
      contentEncoding?: string;
      /** Application properties. */
      properties: Record<string, string>;
      /** The body as UTF-8 text, or base64 when it is not valid UTF-8 (`bodyEncoding`). */
      body: string;
      bodyEncoding: 'utf-8' | 'base64';
      bodyBytes: number;
      /** The SDK completed it (over MQTT: the PUBACK). */
      completed: boolean;
      errorMessage?: string;
    }
  | { event: 'telemetry'; seq: number; errorMessage?: string }
  /** The connection dropped; the SDK reconnects by its retry policy (about 4 minutes at most). */
  | { event: 'reconnecting'; errorName?: string; errorMessage?: string }
  /** Connected again after `reconnecting` (the SDK subscribes again itself). */
  | { event: 'reconnected' }
  | { event: 'disconnected'; errorName?: string; errorMessage?: string }
);

/** What a staying device did, counted (`HubSession.stay`). */
export interface StayCounts {
  methods: number;
  desiredChanges: number;
  messages: number;
  /** How long it stayed, from listening to the stop (ms). */
  stayedMs: number;
}

export interface HubSession {
  /** `connected`: it connected, got its twin, reported and sent every message. */
  status: 'connected' | 'error';
  hub: string;
  deviceId: string;
  /** The twin's desired properties as the device found them (with `$version`). Devices do not see tags. */
  desired?: Record<string, unknown>;
  /** The reported properties as found before reporting (with `$version`). */
  reportedFound?: Record<string, unknown>;
  /** What it reported. */
  reported?: Record<string, unknown>;
  telemetrySent: number;
  /** With `stay`: what it answered and received while it stayed. */
  stay?: StayCounts;
  errorName?: string;
  errorMessage?: string;
  durationMs: number;
}

/** `HostName={hub};DeviceId={id};SharedAccessKey={key}[;GatewayHostName={gateway}]`. */
export function deviceConnectionString(
  options: Pick<HubConnectOptions, 'hub' | 'deviceId' | 'gatewayHost'> & { deviceKey: string },
): string {
  const gateway = options.gatewayHost ? `;GatewayHostName=${options.gatewayHost}` : '';
  return `HostName=${options.hub};DeviceId=${options.deviceId};SharedAccessKey=${options.deviceKey}${gateway}`;
}

/**
 * The SDK client for a key (a connection string) or a certificate. `x509=true` connection strings
 * lose `GatewayHostName` (the SDK builds their authentication provider from `HostName` and
 * `DeviceId` only), so a certificate goes to the SDK's own `X509AuthenticationProvider`, which
 * takes the gateway.
 */
function hubClient(
  options: HubConnectOptions,
  setup: HubTransportSetup,
  transportClass: SdkTransportClass,
): InstanceType<typeof Client> {
  const { gatewayHost } = setup;
  if (options.certificate) {
    return Client.fromAuthenticationProvider(
      new X509AuthenticationProvider({
        host: options.hub,
        deviceId: options.deviceId,
        ...(gatewayHost ? { gatewayHostName: gatewayHost } : {}),
        x509: options.certificate,
      }),
      transportClass as never,
    );
  }
  if (options.deviceKey === undefined) throw new TypeError('a hub session needs deviceKey or certificate');
  const { gatewayHost: _given, ...rest } = options;
  return Client.fromConnectionString(
    deviceConnectionString({ ...rest, ...(gatewayHost ? { gatewayHost } : {}), deviceKey: options.deviceKey }),
    transportClass as never,
  );
}

/**
 * Connects the device to its hub and runs the after-provisioning steps. Never rejects for a
 * service or network failure: the session's `status` and `errorName` say what went wrong.
 */
export async function connectToHub(options: HubConnectOptions): Promise<HubSession> {
  const startedAt = performance.now();
  const session: HubSession = {
    status: 'error',
    hub: options.hub,
    deviceId: options.deviceId,
    telemetrySent: 0,
    durationMs: 0,
  };
  if (options.stay) {
    checkStayOptions(options.stay);
    if (!options.signal)
      throw new InvalidOptionError('signal', 'a device that stays on its hub needs a signal to end it');
  }
  const transport = options.transport ?? 'mqtt';
  const setup = await hubTransportSetup(transport, options.gatewayHost, options.ca);
  const watch = watchFirstConnection(setup.transportClass);
  const listening = options.stay ? listeningTransport(watch.transportClass) : undefined;
  const client = hubClient(options, setup, listening?.transportClass ?? watch.transportClass);
  // The client's own policy (private in the typings: ExponentialBackOffWithJitter), wrapped.
  const policy = (client as unknown as { _retryPolicy?: RetryPolicy })._retryPolicy;
  if (policy) client.setRetryPolicy(watch.retryPolicy(policy));
  // Without a listener a connection lost while idle would throw out of the EventEmitter.
  client.on('error', () => {});
  let timer: NodeJS.Timeout | undefined;
  const stopped = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          Object.assign(new Error(`no answer from the hub within ${(options.timeoutMs ?? 60_000) / 1000} s`), {
            name: 'TimeoutError',
          }),
        ),
      options.timeoutMs ?? 60_000,
    );
    options.signal?.addEventListener('abort', () =>
      reject(Object.assign(new Error('cancelled'), { name: 'AbortError' })),
    );
  });
  stopped.catch(() => {});
  const step = <T>(promise: Promise<T>): Promise<T> => Promise.race([promise, stopped]);
  try {
    if (setup.options !== undefined) {
      if (setup.awaitOptions) await step(client.setOptions(setup.options as never));
      else void client.setOptions(setup.options as never).catch(() => {});
    }
    await step(client.open());
    // Over HTTP there is no twin (IoT Hub's HTTPS device API has none).
    const twin = hubTransportHasTwin(transport) ? await step(client.getTwin()) : undefined;
    if (twin) {
      const properties = twin.properties as unknown as {
        desired: Record<string, unknown>;
        reported: Record<string, unknown> & { update: unknown };
      };
      session.desired = plain(properties.desired);
      session.reportedFound = plain(properties.reported);
      const reported = options.reported ?? { deviceSim: { connectedAtUtc: new Date().toISOString() } };
      await step(
        new Promise<void>((resolve, reject) =>
          twin.properties.reported.update(reported, (err?: Error) => (err ? reject(err) : resolve())),
        ),
      );
      session.reported = reported;
    }
    for (let i = 1; i <= (options.telemetryCount ?? 0); i++) {
      await step(client.sendEvent(telemetryMessage(options.deviceId, i)));
      session.telemetrySent = i;
    }
    if (options.stay && listening) {
      const stay = startListening(client, twin, listening, options, options.stay, session);
      await step(stay.ready);
      clearTimeout(timer);
      session.status = 'connected';
      const ended = await stay.untilStopped(options.signal as AbortSignal);
      if (ended) {
        session.status = 'error';
        session.errorName = ended.errorName;
        session.errorMessage = ended.errorMessage;
      }
    } else {
      session.status = 'connected';
    }
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    // At a wrong --hub-host: the socket's error (ECONNREFUSED, …), not what the SDK made of it.
    const socket = watch.failure();
    session.errorName = socket?.errorName ?? (error.name === 'Error' ? error.constructor.name : error.name);
    session.errorMessage = socket?.errorMessage ?? error.message;
  } finally {
    clearTimeout(timer);
    await Promise.race([client.close().catch(() => {}), delay(2000)]);
    setup.agent?.destroy();
  }
  session.durationMs = Math.round(performance.now() - startedAt);
  return session;
}

/** One telemetry message: `{"deviceId","seq","sentAtUtc"}`, JSON, with the property `seq`. */
function telemetryMessage(deviceId: string, seq: number): InstanceType<typeof Message> {
  const message = new Message(JSON.stringify({ deviceId, seq, sentAtUtc: new Date().toISOString() }));
  message.contentType = 'application/json';
  message.contentEncoding = 'utf-8';
  message.properties.add('seq', String(seq));
  return message;
}

type MethodHandler = Parameters<InstanceType<typeof Client>['onDeviceMethod']>[1];
type DeviceTwin = Awaited<ReturnType<InstanceType<typeof Client>['getTwin']>>;

/**
 * The SDK transport, which the client builds itself (`new transportClass(provider)`), made to hand
 * a direct method no handler is registered for to the handler registered under '#' (a name no
 * method can have: MQTT topic names carry no wildcards, and no IoT Hub method name is '#'). The SDK
 * answers only methods registered by name (`onDeviceMethod`); any other call is dropped and the
 * caller waits for its timeout. The SDK emits each call as a `method_{name}` event: on the MQTT
 * transport itself, on the AMQP transport's methods client (`_deviceMethodClient`, the one place
 * the AMQP transport gives: read in azure-iot-device-amqp 1.14). The client's own wrapping
 * (DeviceMethodRequest/Response) still does the rest. Also keeps the transport, whose public
 * enable* calls say when the hub granted each feature.
 */
function listeningTransport(base: SdkTransportClass): {
  transportClass: SdkTransportClass;
  transport: () => ListeningSdkTransport;
} {
  let created: ListeningSdkTransport | undefined;
  class Listening extends base {
    // biome-ignore lint/suspicious/noExplicitAny: the SDK's transport constructors differ per package
    constructor(...args: any[]) {
      super(...args);
      created = this as unknown as ListeningSdkTransport;
      const methods = (this as { _deviceMethodClient?: EventEmitter })._deviceMethodClient ?? created;
      fallBackToAnyMethod(methods);
    }
  }
  return {
    transportClass: Listening,
    transport: () => {
      if (!created) throw new Error('the SDK client built no transport');
      return created;
    },
  };
}

/** The SDK transport calls a staying device makes itself (each answers once the hub granted it). */
type ListeningSdkTransport = EventEmitter &
  Record<
    'enableMethods' | 'enableTwinDesiredPropertiesUpdates' | 'enableC2D',
    (done: (err?: Error | null) => void) => void
  >;

/** Makes `emitter` hand a `method_{name}` event no listener takes to the FALLBACK_METHOD listener. */
function fallBackToAnyMethod(emitter: EventEmitter): void {
  const emit = emitter.emit.bind(emitter);
  emitter.emit = (event: string | symbol, ...args: unknown[]): boolean =>
    typeof event === 'string' &&
    event.startsWith('method_') &&
    event !== FALLBACK_METHOD_EVENT &&
    emitter.listenerCount(event) === 0
      ? emit(FALLBACK_METHOD_EVENT, ...args)
      : emit(event, ...args);
}

const FALLBACK_METHOD = '#';
const FALLBACK_METHOD_EVENT = `method_${FALLBACK_METHOD}`;

interface Listening {
  /** Resolves once the hub granted the subscriptions (methods, desired properties, C2D). */
  ready: Promise<void>;
  /**
   * After `ready`: reports `connected`, sends telemetry on its interval, and resolves when `signal`
   * aborts (undefined) or the SDK gave the connection up (why). Not called when `ready` failed or
   * lost its race with the session's timeout: nothing is started then.
   */
  untilStopped(signal: AbortSignal): Promise<{ errorName: string; errorMessage: string } | undefined>;
}

/**
 * Registers the staying device's handlers and asks for its subscriptions (methods, desired
 * properties, cloud-to-device messages: each enable* call answers on the SUBACK; `ready`).
 */
function startListening(
  client: InstanceType<typeof Client>,
  /** Undefined over HTTP: no twin, no desired properties, no methods (C2D by polling only). */
  twin: DeviceTwin | undefined,
  listening: ReturnType<typeof listeningTransport>,
  options: HubConnectOptions,
  stay: StayOptions,
  session: HubSession,
): Listening {
  const emit = (event: HubEvent): void => stay.onEvent?.(event);
  // Every event names its device: a fleet's devices share one onEvent.
  const stamp = () => ({ atUtc: new Date().toISOString(), deviceId: options.deviceId });
  const counts: StayCounts = { methods: 0, desiredChanges: 0, messages: 0, stayedMs: 0 };
  session.stay = counts;
  const answers = stay.methods ?? {};

  const answerMethod: MethodHandler = (request, response) => {
    counts.methods += 1;
    // Own names only: a method named toString or __proto__ is no answer of Object.prototype's.
    const own = (name: string) => (Object.hasOwn(answers, name) ? answers[name] : undefined);
    const answer: MethodAnswer = own(request.methodName) ??
      own(ANY_METHOD) ?? {
        status: 200,
        payload: { methodName: request.methodName, payload: request.payload ?? null },
      };
    const base = {
      ...stamp(),
      event: 'method' as const,
      methodName: request.methodName,
      requestId: request.requestId,
      payload: request.payload ?? null,
    };
    if (answer === 'no-answer') {
      emit(base);
      return;
    }
    response.send(answer.status, (answer.payload ?? null) as object).then(
      () => emit({ ...base, status: answer.status, response: answer.payload ?? null }),
      (err: unknown) =>
        emit({ ...base, status: answer.status, response: answer.payload ?? null, errorMessage: messageOf(err) }),
    );
  };
  const listenForMethods = () => {
    for (const name of Object.keys(answers)) {
      if (name !== ANY_METHOD) client.onDeviceMethod(name, answerMethod);
    }
    client.onDeviceMethod(FALLBACK_METHOD, answerMethod);
  };

  // The twin fires the desired properties it holds once when a listener is added (that object
  // itself), then each patch the hub pushes, and the whole set again after a reconnect.
  let first = true;
  const listenForDesired = (twin: DeviceTwin) =>
    twin.on('properties.desired', (delta: Record<string, unknown>) => {
      if (first && delta === (twin.properties.desired as unknown)) {
        first = false;
        return;
      }
      first = false;
      counts.desiredChanges += 1;
      const patch = plain(delta);
      const version = typeof patch.$version === 'number' ? patch.$version : undefined;
      emit({ ...stamp(), event: 'desired', ...(version !== undefined ? { version } : {}), patch });
      if (!stay.acknowledgeDesired) return;
      const reported: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(patch)) {
        if (name === '$version') continue;
        reported[name] = { value, ac: 200, ...(version !== undefined ? { av: version } : {}), ad: 'completed' };
      }
      if (Object.keys(reported).length === 0) return;
      twin.properties.reported.update(reported, (err?: Error) =>
        emit({ ...stamp(), event: 'reported', reported, ...(err ? { errorMessage: err.message } : {}) }),
      );
    });

  const listenForMessages = () =>
    client.on('message', (message: InstanceType<typeof Message>) => {
      counts.messages += 1;
      const data = Buffer.isBuffer(message.data) ? message.data : Buffer.from(String(message.data ?? ''));
      const text = utf8(data);
      const event = {
        ...stamp(),
        event: 'message' as const,
        ...(message.messageId ? { messageId: String(message.messageId) } : {}),
        ...(message.correlationId ? { correlationId: String(message.correlationId) } : {}),
        ...(message.contentType ? { contentType: String(message.contentType) } : {}),
        ...(message.contentEncoding ? { contentEncoding: String(message.contentEncoding) } : {}),
        properties: Object.fromEntries(
          (message.properties?.propertyList ?? []).map((p: { key: string; value: string }) => [p.key, p.value]),
        ),
        body: text ?? data.toString('base64'),
        bodyEncoding: text === undefined ? ('base64' as const) : ('utf-8' as const),
        bodyBytes: data.length,
      };
      client.complete(message).then(
        () => emit({ ...event, completed: true }),
        (err: unknown) => emit({ ...event, completed: false, errorMessage: messageOf(err) }),
      );
    });

  let gaveUp: ((why: { errorName: string; errorMessage: string }) => void) | undefined;
  const givenUp = new Promise<{ errorName: string; errorMessage: string }>((resolve) => {
    gaveUp = resolve;
  });
  // The SDK emits 'disconnect' only once its retry policy gave the connection up.
  client.on('disconnect', (reason?: { transportError?: Error }) => {
    const err = reason?.transportError;
    const why = {
      errorName: err?.name ?? 'DisconnectedError',
      errorMessage: err?.message ?? 'the hub connection was lost and not regained',
    };
    emit({ ...stamp(), event: 'disconnected', ...why });
    gaveUp?.(why);
  });

  const transport = listening.transport();
  // Between a drop and the SDK's reconnection (or its giving up: 'disconnected') a staying device
  // would otherwise print nothing for up to its retry policy's 4 minutes.
  let lost = false;
  transport.on('disconnect', (err?: Error) => {
    if (!err || lost) return;
    lost = true;
    emit({ ...stamp(), event: 'reconnecting', errorName: err.name, errorMessage: err.message });
  });
  client.on('connect', () => {
    if (!lost) return;
    lost = false;
    emit({ ...stamp(), event: 'reconnected' });
  });
  const enable = (name: 'enableMethods' | 'enableTwinDesiredPropertiesUpdates' | 'enableC2D') =>
    new Promise<void>((resolve, reject) => transport[name].call(transport, (err) => (err ? reject(err) : resolve())));
  const ready = (async () => {
    if (twin) {
      // The transport's own call first, then the handlers (the client's enable then finds the
      // links attached): azure-iot-device-amqp's methods client never calls back an attach asked
      // while it is attaching.
      await enable('enableMethods');
      listenForMethods();
      listenForDesired(twin);
      await enable('enableTwinDesiredPropertiesUpdates');
    }
    listenForMessages();
    await enable('enableC2D');
  })();
  ready.catch(() => {});

  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const interval = stay.telemetryIntervalMs;
  const sendNext = () => {
    const seq = session.telemetrySent + 1;
    client
      .sendEvent(telemetryMessage(options.deviceId, seq))
      .then(
        () => {
          session.telemetrySent = seq;
          emit({ ...stamp(), event: 'telemetry', seq });
        },
        (err: unknown) => emit({ ...stamp(), event: 'telemetry', seq, errorMessage: messageOf(err) }),
      )
      .finally(() => {
        // One message in flight at most: the next is timed from this one's end.
        if (!stopped && interval !== undefined) timer = setTimeout(sendNext, interval);
      });
  };

  return {
    ready,
    untilStopped: async (signal) => {
      const listeningAt = performance.now();
      emit({
        ...stamp(),
        event: 'connected',
        hub: session.hub,
        transport: options.transport ?? 'mqtt',
        ...(session.desired ? { desired: session.desired } : {}),
        ...(session.reportedFound ? { reportedFound: session.reportedFound } : {}),
        ...(session.reported ? { reported: session.reported } : {}),
        telemetrySent: session.telemetrySent,
      });
      if (interval !== undefined) timer = setTimeout(sendNext, interval);
      const aborted = new Promise<undefined>((resolve) => {
        if (signal.aborted) resolve(undefined);
        else signal.addEventListener('abort', () => resolve(undefined), { once: true });
      });
      const ended = await Promise.race([aborted, givenUp]);
      stopped = true;
      clearTimeout(timer);
      counts.stayedMs = Math.round(performance.now() - listeningAt);
      return ended;
    },
  };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function utf8(data: Buffer): string | undefined {
  try {
    return UTF8.decode(data);
  } catch {
    return undefined;
  }
}

/** The twin collection's own properties (the SDK's objects carry methods). */
function plain(value: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(value, (key, v) => (typeof v === 'function' || key === '_events' ? undefined : v)));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
