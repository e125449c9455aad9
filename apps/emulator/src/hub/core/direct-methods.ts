import { decodeJson } from '@dpskit/contracts';
import { clip } from '../../core/client-text.js';

/**
 * IoT Hub's direct methods (azure-docs iot-hub-devguide-direct-methods): a service calls
 * `POST /twins/{id}/methods` with `{methodName, payload, responseTimeoutInSeconds,
 * connectTimeoutInSeconds}`; the hub publishes `$iothub/methods/POST/{methodName}/?$rid={rid}` to the
 * device, which answers on `$iothub/methods/res/{status}/?$rid={rid}`; the service gets
 * `{status, payload}`. Pure of transports: the device side is `MethodDevices` (the hub MQTT
 * transport), the service side a promise.
 */

/** "The minimum and maximum values for responseTimeoutInSeconds are 5 and 300 seconds" (default 30). */
export const MIN_RESPONSE_TIMEOUT_SECONDS = 5;
export const MAX_RESPONSE_TIMEOUT_SECONDS = 300;
export const DEFAULT_RESPONSE_TIMEOUT_SECONDS = 30;
/** "The maximum value for connectTimeoutInSeconds is 300 seconds" (default 0: the device must be online). */
export const MAX_CONNECT_TIMEOUT_SECONDS = 300;
/** "The payload for method requests and responses is a JSON document up to 128 KB." */
export const MAX_METHOD_PAYLOAD_BYTES = 128 * 1024;
/**
 * Calls in flight (waiting for the device to connect or to answer) per device and in all. IoT Hub
 * has a per-device limit (403800 DeviceMaximumInflightMethodExceeded) whose value is not
 * documented; these are the emulator's, so that a caller cannot hold unbounded timers and payloads.
 */
export const MAX_PENDING_METHODS_PER_DEVICE = 50;
export const MAX_PENDING_METHODS = 1000;
/**
 * The longest method name taken (IoT Hub documents none; the name travels in an MQTT topic, where the
 * emulator bounds a `$rid` at the same length).
 */
export const MAX_METHOD_NAME_LENGTH = 1024;

/** A method call as the service asked for it, checked. */
export interface MethodInvocation {
  methodName: string;
  /** The payload as JSON text (`null` when none was given), as the device gets it. */
  payloadJson: string;
  responseTimeoutInSeconds: number;
  connectTimeoutInSeconds: number;
}

/**
 * A method call's failure as IoT Hub answers it: HTTP status, numeric `errorCode` (the REST API's
 * "common error codes"), its name (the `iothub-errorcode` header) and message; `info` as IoT Hub
 * adds it to its timeouts (`{"timeout":"00:00:30"}`).
 */
export class MethodError extends Error {
  override readonly name = 'MethodError';
  constructor(
    readonly status: number,
    readonly errorCode: number,
    readonly code: string,
    message: string,
    readonly info?: Record<string, string>,
  ) {
    super(message);
  }
}

function argumentInvalid(message: string): MethodError {
  return new MethodError(400, 400004, 'ArgumentInvalid', message);
}

/**
 * Reads a method invocation's body (text) as IoT Hub does: `methodName` required; the timeouts
 * integers within IoT Hub's bounds, defaulting to 30 and 0 (`responseTimeoutInSeconds must be
 * within [5; 300].`, IoT Hub's wording as reported in azure-iot-sdk-csharp#724; the connect
 * timeout's message is worded the same way, IoT Hub's is not reported); the payload any JSON up to
 * 128 KB (IoT Hub's answer to a larger one is not documented: 400004 here).
 */
export function parseMethodInvocation(text: string): MethodInvocation {
  const decoded = decodeJson(text, { maxDepth: 32 });
  if (!decoded.ok) throw argumentInvalid(`The body is not valid JSON: ${decoded.reason}`);
  const body = decoded.value;
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw argumentInvalid('The body must be a JSON object {methodName, payload, responseTimeoutInSeconds, …}.');
  const fields = body as Record<string, unknown>;
  const methodName = fields.methodName;
  if (typeof methodName !== 'string' || methodName === '') throw argumentInvalid('methodName is required.');
  const reason = methodNameProblem(methodName);
  if (reason) throw argumentInvalid(`methodName ${reason}.`);
  const responseTimeoutInSeconds = seconds(
    fields.responseTimeoutInSeconds,
    'responseTimeoutInSeconds',
    DEFAULT_RESPONSE_TIMEOUT_SECONDS,
    MIN_RESPONSE_TIMEOUT_SECONDS,
    MAX_RESPONSE_TIMEOUT_SECONDS,
  );
  const connectTimeoutInSeconds = seconds(
    fields.connectTimeoutInSeconds,
    'connectTimeoutInSeconds',
    0,
    0,
    MAX_CONNECT_TIMEOUT_SECONDS,
  );
  const payloadJson = JSON.stringify(fields.payload ?? null);
  const bytes = Buffer.byteLength(payloadJson);
  if (bytes > MAX_METHOD_PAYLOAD_BYTES)
    throw argumentInvalid(`'payload' size should be less than ${MAX_METHOD_PAYLOAD_BYTES} bytes (it is ${bytes}).`);
  return { methodName, payloadJson, responseTimeoutInSeconds, connectTimeoutInSeconds };
}

/**
 * Why a method name cannot be sent (undefined: it can): it goes into the request's MQTT topic
 * `$iothub/methods/POST/{methodName}/`, unencoded as IoT Hub sends it (the SDKs read it as the
 * topic's fourth segment), so it may not hold `/`, MQTT's wildcards or `?`, nor control characters.
 */
function methodNameProblem(name: string): string | undefined {
  if (name.length > MAX_METHOD_NAME_LENGTH) return `is ${name.length} characters, over ${MAX_METHOD_NAME_LENGTH}`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  const bad = /[/#+?\u0000-\u001f\u007f]/.exec(name);
  return bad ? `"${clip(name)}" holds ${JSON.stringify(bad[0])}, which an MQTT topic segment cannot carry` : undefined;
}

function seconds(value: unknown, field: string, fallback: number, min: number, max: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw argumentInvalid(`${field} must be within [${min}; ${max}].`);
  return value;
}

/** A duration as IoT Hub writes it in an error's `info` (a .NET TimeSpan: `00:00:30`). */
export function timeSpan(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(Math.floor(s / 3600))}:${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
}

/** A method request as the device gets it. */
export interface MethodRequest {
  /** The request id (`$rid`) the device answers with. */
  rid: string;
  hub: string;
  deviceId: string;
  methodName: string;
  payloadJson: string;
}

/** Where method requests go: the device connections of this process (the hub MQTT transport). */
export interface MethodDevices {
  /**
   * Sends `request` on the device's connection if it is connected here and subscribed to
   * `$iothub/methods/POST/#`: returns the connection's name, else undefined (nothing sent).
   */
  send(request: MethodRequest): string | undefined;
  /** Whether the device is connected to this process (subscribed to methods or not). */
  holds(hub: string, deviceId: string): boolean;
}

/** The service's answer: the device's status and payload. */
export interface MethodResult {
  status: number;
  payload: unknown;
}

/** How a call ended, for the hub's events (never the payloads). */
export type MethodOutcome =
  | 'answered'
  | 'not-online'
  | 'timeout'
  | 'disconnected'
  | 'bad-response'
  | 'refused'
  | 'abandoned';

export interface MethodCallReport {
  hub: string;
  deviceId: string;
  methodName: string;
  outcome: MethodOutcome;
  /** The device's status when it answered, else the HTTP status the service got. */
  status: number;
  durationMs: number;
}

/** A request handed to the other processes on the store, for the one holding the device. */
export interface RelayedMethodRequest extends MethodRequest {
  /** Until when (epoch ms) the device may still connect and subscribe (connectTimeoutInSeconds). */
  connectDeadlineMs: number;
  connectTimeoutInSeconds: number;
  responseTimeoutInSeconds: number;
}

/** How a relayed call ended, as the process holding the device tells the one that forwarded it. */
export type RelayedMethodEnd = { rid: string; hub: string; deviceId: string } & (
  | { kind: 'answered'; status: number; payloadJson: string }
  | {
      kind: 'failed';
      outcome: Exclude<MethodOutcome, 'answered'>;
      status: number;
      errorCode: number;
      code: string;
      message: string;
      info?: Record<string, string>;
    }
);

/**
 * The channel between the processes of `dps-emulator start --workers` (the store's push table):
 * a call taken by one process for a device connected to another is forwarded; the process holding
 * the device sends it and replies with its end.
 */
export interface MethodRelay {
  forward(request: RelayedMethodRequest): void;
  reply(end: RelayedMethodEnd): void;
}

type End =
  | { kind: 'answered'; status: number; payload: unknown; payloadJson: string }
  | { kind: 'failed'; outcome: Exclude<MethodOutcome, 'answered'>; error: MethodError };

interface Call {
  request: MethodRequest;
  key: string;
  /** `local`: taken here (the service waits on this process); `relayed`: forwarded by another process. */
  origin: 'local' | 'relayed';
  connectDeadlineMs: number;
  connectTimeoutInSeconds: number;
  responseTimeoutInSeconds: number;
  startedMs: number;
  /**
   * `waiting`: for the device to connect and subscribe; `sent`: for its answer; `forwarded`: to the
   * process holding the device, for its reply.
   */
  state: 'waiting' | 'sent' | 'forwarded';
  connection?: string;
  timer?: NodeJS.Timeout;
  /** A local call's promise. */
  settle?: (end: End) => void;
}

export interface DirectMethodsOptions {
  now?: () => number;
  onReport?: (report: MethodCallReport) => void;
  /** Called when the first call is held and when the last ends (the store's pushes are followed meanwhile). */
  onHolding?: (any: boolean) => void;
  /** The bounds (defaults: MAX_PENDING_METHODS_PER_DEVICE, MAX_PENDING_METHODS). */
  maxPendingPerDevice?: number;
  maxPending?: number;
}

/** How long a forwarded call waits for its reply beyond its own timeouts (the relay's delay). */
export const RELAY_GRACE_MS = 5_000;

/**
 * The method calls of this process: each waits (bounded by its own timeouts) for its device to
 * connect and subscribe, then for its answer; every call ends exactly once, its timer cleared.
 * With a relay (other processes on the store), a call for a device connected elsewhere is
 * forwarded, and the calls other processes forward are sent to the devices connected here.
 */
export class DirectMethods {
  readonly #calls = new Map<string, Call>();
  readonly #byDevice = new Map<string, Set<Call>>();
  readonly #now: () => number;
  readonly #onReport: ((report: MethodCallReport) => void) | undefined;
  readonly #onHolding: ((any: boolean) => void) | undefined;
  readonly #maxPerDevice: number;
  readonly #max: number;
  /** The transports that reach the devices (hub MQTT, hub AMQP): one core, thin adapters. */
  readonly #adapters = new Set<MethodDevices>();
  /** The adapters as one: a device held by any; a request sent by the first that holds it subscribed. */
  readonly #devices: MethodDevices = {
    holds: (hub, deviceId) => [...this.#adapters].some((adapter) => adapter.holds(hub, deviceId)),
    send: (request) => {
      for (const adapter of this.#adapters) {
        const connection = adapter.send(request);
        if (connection !== undefined) return connection;
      }
      return undefined;
    },
  };
  #relay: MethodRelay | undefined;
  /** Closed (the emulator is stopping): no call is held any more, each answered at once 503. */
  #closed = false;
  /** Request ids: unique within the process and, with the random start, across processes. */
  #nextRid = Math.floor(Math.random() * 0x1000000) * 0x1000000;

  constructor(options: DirectMethodsOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#onReport = options.onReport;
    this.#onHolding = options.onHolding;
    this.#maxPerDevice = options.maxPendingPerDevice ?? MAX_PENDING_METHODS_PER_DEVICE;
    this.#max = options.maxPending ?? MAX_PENDING_METHODS;
  }

  /**
   * Adds a transport that reaches the devices (once it is started); returns its detach. Undefined
   * detaches them all (the emulator stopping).
   */
  attach(devices: MethodDevices | undefined): () => void {
    if (!devices) {
      this.#adapters.clear();
      return () => {};
    }
    this.#adapters.add(devices);
    return () => this.#adapters.delete(devices);
  }

  /** The other processes on the store (`--workers`), if any. */
  relayThrough(relay: MethodRelay | undefined): void {
    this.#relay = relay;
  }

  /** Calls in flight (taken here or relayed here). */
  get pending(): number {
    return this.#calls.size;
  }

  /**
   * Invokes a method on a device of the registry (the caller checked it exists): resolves with the
   * device's answer, rejects with the `MethodError` IoT Hub answers with. `connectedElsewhere` says
   * whether the registry shows the device connected (to another process, when it is not here).
   * `signal`: aborted when the service's caller has gone (its connection closed before the answer):
   * the call ends at once (`abandoned`), its slot and timer released; a device answer for it that
   * comes later is an unknown `$rid`, as a late one is. A call forwarded to another process is let
   * go here only: that process still sends it and writes its end, which finds no call here.
   */
  invoke(
    hub: string,
    deviceId: string,
    invocation: MethodInvocation,
    connectedElsewhere: () => boolean = () => false,
    signal?: AbortSignal,
  ): Promise<MethodResult> {
    const key = deviceKey(hub, deviceId);
    const startedMs = this.#now();
    const named = { hub, deviceId, methodName: invocation.methodName };
    const refused = this.#refusal(key);
    if (refused) {
      this.#report(named, 'refused', refused.status, startedMs);
      return Promise.reject(refused);
    }
    if (signal?.aborted) {
      this.#report(named, 'abandoned', ABANDONED_STATUS, startedMs);
      return Promise.reject(abandoned());
    }
    return new Promise<MethodResult>((resolve, reject) => {
      const onAbort = () => this.#finish(call, { kind: 'failed', outcome: 'abandoned', error: abandoned() });
      const call: Call = {
        request: { rid: this.#rid(), ...named, payloadJson: invocation.payloadJson },
        key,
        origin: 'local',
        connectDeadlineMs: startedMs + invocation.connectTimeoutInSeconds * 1000,
        connectTimeoutInSeconds: invocation.connectTimeoutInSeconds,
        responseTimeoutInSeconds: invocation.responseTimeoutInSeconds,
        startedMs,
        state: 'waiting',
        settle: (end) => {
          signal?.removeEventListener('abort', onAbort);
          this.#report(
            named,
            end.kind === 'answered' ? 'answered' : end.outcome,
            end.kind === 'answered' ? end.status : end.error.status,
            startedMs,
          );
          if (end.kind === 'answered') resolve({ status: end.status, payload: end.payload });
          else reject(end.error);
        },
      };
      // Held first: with a relay, the store's pushes are followed from here on (onHolding), so that
      // a reply or a connection elsewhere written after this point is seen.
      this.#hold(call);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (this.#trySend(call)) return;
      // Connected here without listening to methods: not another process's to send (the
      // registry's Connected is this connection).
      let elsewhere: boolean;
      try {
        elsewhere = this.#relay !== undefined && !this.#devices.holds(hub, deviceId) && connectedElsewhere();
      } catch (err) {
        // The registry could not be read (a busy or failing store): the call is let go and the
        // service gets the error (IoT Hub's 500), rather than the call staying held, with no timer,
        // for the rest of the run.
        this.#release(call);
        signal?.removeEventListener('abort', onAbort);
        if (this.#calls.size === 0) this.#holding(false);
        this.#report(named, 'refused', 500, startedMs);
        reject(err);
        return;
      }
      if (elsewhere) {
        this.#forward(call);
        return;
      }
      if (invocation.connectTimeoutInSeconds === 0) {
        // "The default value is 0, meaning that devices must already be online upon invocation".
        this.#finish(call, { kind: 'failed', outcome: 'not-online', error: notOnline(0) });
        return;
      }
      this.#waitForDevice(call);
    });
  }

  /** The device subscribed to methods on a connection here: the calls waiting for it are sent. */
  deviceReady(hub: string, deviceId: string): void {
    for (const call of this.#ofDevice(hub, deviceId)) {
      if (call.state !== 'waiting') continue;
      clearTimeout(call.timer);
      if (!this.#trySend(call)) this.#waitForDevice(call);
    }
  }

  /**
   * The device connected to another process (its `connected` push): the calls taken here that
   * wait for it are forwarded there.
   */
  deviceConnectedElsewhere(hub: string, deviceId: string): void {
    if (!this.#relay) return;
    for (const call of this.#ofDevice(hub, deviceId)) {
      if (call.state !== 'waiting' || call.origin !== 'local') continue;
      clearTimeout(call.timer);
      this.#forward(call);
    }
  }

  /**
   * A call another process forwarded: sent to the device if it is connected here (held until it
   * subscribes, within its connect deadline); ignored if it is not (another process holds it).
   */
  deliverRelayed(request: RelayedMethodRequest): void {
    if (this.#calls.has(request.rid) || !this.#devices.holds(request.hub, request.deviceId)) return;
    const key = deviceKey(request.hub, request.deviceId);
    const base = { rid: request.rid, hub: request.hub, deviceId: request.deviceId };
    const refused = this.#refusal(key);
    if (refused) {
      try {
        this.#relay?.reply({ ...base, kind: 'failed', outcome: 'refused', ...errorFields(refused) });
      } catch {
        // Not written: the forwarding process times the call out.
      }
      return;
    }
    const call: Call = {
      request: {
        rid: request.rid,
        hub: request.hub,
        deviceId: request.deviceId,
        methodName: request.methodName,
        payloadJson: request.payloadJson,
      },
      key,
      origin: 'relayed',
      connectDeadlineMs: request.connectDeadlineMs,
      connectTimeoutInSeconds: request.connectTimeoutInSeconds,
      responseTimeoutInSeconds: request.responseTimeoutInSeconds,
      startedMs: this.#now(),
      state: 'waiting',
    };
    this.#hold(call);
    if (!this.#trySend(call)) this.#waitForDevice(call);
  }

  /** The end of a call this process forwarded, from the process that held the device. */
  relayEnded(end: RelayedMethodEnd): void {
    const call = this.#calls.get(end.rid);
    if (call?.origin !== 'local' || call.state !== 'forwarded' || call.key !== deviceKey(end.hub, end.deviceId)) return;
    if (end.kind === 'answered') {
      this.#finish(call, this.#answered(end.status, Buffer.from(end.payloadJson)));
      return;
    }
    this.#finish(call, {
      kind: 'failed',
      outcome: end.outcome,
      error: new MethodError(end.status, end.errorCode, end.code, end.message, end.info),
    });
  }

  /**
   * A device's answer (`$iothub/methods/res/{status}/?$rid=…`): ends its call. `unknown` when no call
   * of this device waits for that `$rid` (answered already, timed out, or never asked).
   */
  answer(hub: string, deviceId: string, rid: string, status: number, body: Buffer): 'answered' | 'unknown' {
    const call = this.#calls.get(rid);
    if (!call || call.key !== deviceKey(hub, deviceId) || call.state !== 'sent') return 'unknown';
    this.#finish(call, this.#answered(status, body));
    return 'answered';
  }

  /**
   * A device connection closed: the calls sent on it end at once with 504101 (IoT Hub's "couldn't
   * confirm if the direct method completed": the device may have run it). Calls still waiting for
   * the device to connect go on waiting. `device`: only that device's calls (one device of an AMQP
   * connection that carries several left it; the others' calls on it go on).
   */
  connectionClosed(connection: string, device?: { hub: string; deviceId: string }): void {
    const key = device === undefined ? undefined : deviceKey(device.hub, device.deviceId);
    for (const call of [...this.#calls.values()]) {
      if (call.state === 'sent' && call.connection === connection && (key === undefined || call.key === key))
        this.#finish(call, {
          kind: 'failed',
          outcome: 'disconnected',
          error: new MethodError(
            504,
            504101,
            'GatewayTimeout',
            'The device disconnected before it answered the method.',
          ),
        });
    }
  }

  /**
   * Ends every call (the emulator is closing): 503, as a hub going away; and every call after it,
   * at once (one taken in the moment between this and the HTTPS listener's close would otherwise
   * wait its timeouts out, and have the store followed, after the emulator stopped).
   */
  close(): void {
    this.#closed = true;
    for (const call of [...this.#calls.values()])
      this.#finish(call, { kind: 'failed', outcome: 'refused', error: closing() });
  }

  #rid(): string {
    return (this.#nextRid++).toString(16);
  }

  #refusal(key: string): MethodError | undefined {
    if (this.#closed) return closing();
    if ((this.#byDevice.get(key)?.size ?? 0) >= this.#maxPerDevice)
      return new MethodError(
        403,
        403800,
        'DeviceMaximumInflightMethodExceeded',
        `The device has ${this.#maxPerDevice} direct method calls in flight, the most the emulated hub holds per device.`,
      );
    if (this.#calls.size >= this.#max)
      return new MethodError(
        503,
        503005,
        'ServerBusy',
        `The emulated hubs hold ${this.#max} direct method calls in flight, their most; try again later.`,
      );
    return undefined;
  }

  #ofDevice(hub: string, deviceId: string): Call[] {
    return [...(this.#byDevice.get(deviceKey(hub, deviceId)) ?? [])];
  }

  /** A device's answer, checked: IoT Hub passes on a JSON payload up to 128 KB. */
  #answered(status: number, body: Buffer): End {
    if (body.length > MAX_METHOD_PAYLOAD_BYTES)
      return {
        kind: 'failed',
        outcome: 'bad-response',
        error: badResponse(
          `The device's answer is ${body.length} bytes, over the ${MAX_METHOD_PAYLOAD_BYTES}-byte limit of a method payload.`,
        ),
      };
    if (body.length === 0) return { kind: 'answered', status, payload: null, payloadJson: 'null' };
    const text = body.toString('utf8');
    const decoded = decodeJson(text, { maxDepth: 32 });
    if (!decoded.ok)
      return {
        kind: 'failed',
        outcome: 'bad-response',
        error: badResponse(`The device's answer is not JSON: ${decoded.reason}`),
      };
    return { kind: 'answered', status, payload: decoded.value, payloadJson: text };
  }

  #trySend(call: Call): boolean {
    let connection: string | undefined;
    try {
      connection = this.#devices.send(call.request);
    } catch {
      connection = undefined;
    }
    if (connection === undefined) return false;
    call.state = 'sent';
    call.connection = connection;
    const seconds = call.responseTimeoutInSeconds;
    call.timer = this.#after(seconds * 1000, () =>
      this.#finish(call, {
        kind: 'failed',
        outcome: 'timeout',
        error: new MethodError(504, 504101, 'GatewayTimeout', 'Timed out waiting for the response from device.', {
          timeout: timeSpan(seconds),
        }),
      }),
    );
    return true;
  }

  /** Waits what is left of the call's connect timeout for its device; then 404103. */
  #waitForDevice(call: Call): void {
    call.state = 'waiting';
    const notHere = () =>
      this.#finish(call, { kind: 'failed', outcome: 'not-online', error: notOnline(call.connectTimeoutInSeconds) });
    const leftMs = call.connectDeadlineMs - this.#now();
    if (leftMs <= 0) notHere();
    else call.timer = this.#after(leftMs, notHere);
  }

  /** Hands a local call to the process holding its device, and waits for its reply (or times out). */
  #forward(call: Call): void {
    call.state = 'forwarded';
    // Timed first: the reply may come at once (a relay that delivers in the same turn).
    const waitMs =
      Math.max(0, call.connectDeadlineMs - this.#now()) + call.responseTimeoutInSeconds * 1000 + RELAY_GRACE_MS;
    call.timer = this.#after(waitMs, () =>
      this.#finish(call, {
        kind: 'failed',
        outcome: 'timeout',
        error: new MethodError(504, 504101, 'GatewayTimeout', 'Timed out waiting for the response from device.', {
          timeout: timeSpan(call.responseTimeoutInSeconds),
        }),
      }),
    );
    const { request } = call;
    try {
      this.#relay?.forward({
        ...request,
        connectDeadlineMs: call.connectDeadlineMs,
        connectTimeoutInSeconds: call.connectTimeoutInSeconds,
        responseTimeoutInSeconds: call.responseTimeoutInSeconds,
      });
    } catch {
      // Not written (the store failed): the call times out, as one no process answers.
    }
  }

  #after(ms: number, run: () => void): NodeJS.Timeout {
    const timer = setTimeout(run, Math.max(0, ms));
    timer.unref();
    return timer;
  }

  #hold(call: Call): void {
    this.#calls.set(call.request.rid, call);
    let ofDevice = this.#byDevice.get(call.key);
    if (!ofDevice) {
      ofDevice = new Set();
      this.#byDevice.set(call.key, ofDevice);
    }
    ofDevice.add(call);
    if (this.#calls.size === 1) this.#holding(true);
  }

  /** Ends a call once: its timer cleared, the service answered (local) or the forwarding process told (relayed). */
  #finish(call: Call, end: End): void {
    if (!this.#release(call)) return; // ended already
    if (call.origin === 'local') call.settle?.(end);
    else {
      const base = { rid: call.request.rid, hub: call.request.hub, deviceId: call.request.deviceId };
      try {
        this.#relay?.reply(
          end.kind === 'answered'
            ? { ...base, kind: 'answered', status: end.status, payloadJson: end.payloadJson }
            : {
                ...base,
                kind: 'failed',
                outcome: end.outcome,
                ...errorFields(end.error),
              },
        );
      } catch {
        // Not written: the forwarding process times the call out.
      }
    }
    if (this.#calls.size === 0) this.#holding(false);
  }

  /**
   * Lets a held call go: its timer cleared, out of the maps; false if it was not held (ended
   * already). The caller says `#holding(false)` once none is left.
   */
  #release(call: Call): boolean {
    if (this.#calls.get(call.request.rid) !== call) return false;
    clearTimeout(call.timer);
    this.#calls.delete(call.request.rid);
    const ofDevice = this.#byDevice.get(call.key);
    ofDevice?.delete(call);
    if (ofDevice?.size === 0) this.#byDevice.delete(call.key);
    return true;
  }

  #holding(any: boolean): void {
    try {
      this.#onHolding?.(any);
    } catch {
      // The listener's failure is its own.
    }
  }

  #report(
    request: Pick<MethodRequest, 'hub' | 'deviceId' | 'methodName'>,
    outcome: MethodOutcome,
    status: number,
    startedMs: number,
  ): void {
    try {
      this.#onReport?.({
        hub: request.hub,
        deviceId: request.deviceId,
        methodName: request.methodName,
        outcome,
        status,
        durationMs: Math.max(0, this.#now() - startedMs),
      });
    } catch {
      // A listener's failure is its own.
    }
  }
}

function errorFields(error: MethodError) {
  return {
    status: error.status,
    errorCode: error.errorCode,
    code: error.code,
    message: error.message,
    ...(error.info ? { info: error.info } : {}),
  };
}

/**
 * The status reported (event, log line) for a call whose caller went away before its answer: no
 * answer is written, nobody is left to read one; 499 is the usual "client closed request".
 */
export const ABANDONED_STATUS = 499;

function abandoned(): MethodError {
  return new MethodError(
    ABANDONED_STATUS,
    499000,
    'ClientClosedRequest',
    'The caller closed its connection before the answer.',
  );
}

function closing(): MethodError {
  return new MethodError(503, 503001, 'ServiceUnavailable', 'The emulated hub is closing.');
}

/** IoT Hub's 404103, its message and `info` as the service answers them (azure-iot-cli-extension#54). */
function notOnline(connectTimeoutInSeconds: number): MethodError {
  return new MethodError(404, 404103, 'DeviceNotOnline', 'Timed out waiting for device to connect.', {
    timeout: timeSpan(connectTimeoutInSeconds),
  });
}

/**
 * An answer the hub cannot pass on (not JSON, over 128 KB). IoT Hub's answer is not documented
 * (a 2016 report names `InvalidResponseWhileProxying`); the emulator's: 502, which azure-iothub
 * raises as `BadDeviceResponseError`, with the generic 502000.
 */
function badResponse(message: string): MethodError {
  return new MethodError(502, 502000, 'InvalidResponseWhileProxying', message);
}

function deviceKey(hub: string, deviceId: string): string {
  return `${hub.toLowerCase()}\n${deviceId}`;
}
