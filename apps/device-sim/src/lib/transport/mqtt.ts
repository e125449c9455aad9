import type { SecureContext } from 'node:tls';
import { InvalidServiceResponseError } from '../sdk/invalid-response.js';
import { Mqtt, MqttBase, MqttWs } from '../sdk/mqtt.js';
import { connectedDeviceTransport, webSocketPortAgent } from './connected-transport.js';
import type { Endpoint } from './endpoint.js';
import type { RegistrationObserver } from './observer.js';
import type { DeviceTransport } from './types.js';

type MqttBaseInstance = InstanceType<typeof MqttBase>;
type ConnectConfig = Parameters<MqttBaseInstance['connect']>[0];
type Done = (err?: Error, result?: unknown) => void;

/** MqttBase's MQTT client factory (mqtt.js), public at runtime but absent from its typings. */
interface MqttProvider {
  connect(uri: string, options: Record<string, unknown>): unknown;
}

/** MqttBase's queue of PUBLISHes awaiting their PUBACK (private in its typings). */
interface OnTheWireMessages {
  _onTheWire: Map<unknown, unknown>;
  _timeoutTimer?: NodeJS.Timeout;
  purge(err?: Error): void;
}

/**
 * mqtt.js as MqttBase loads it: its constructor does `require('mqtt')` when given no provider, a
 * module-cache lookup per device; the first base's module is handed to every later one.
 */
let defaultMqttProvider: MqttProvider | undefined;
/** One factory per shared TLS context (see `sharedContextProvider`), not one closure per device. */
const sharedContextProviders = new WeakMap<SecureContext, MqttProvider>();

class ObservedMqttBase extends MqttBase {
  constructor(
    private readonly observer: RegistrationObserver,
    tlsContext: SecureContext | undefined,
  ) {
    super(mqttProviderFor(tlsContext) as ConstructorParameters<typeof MqttBase>[0]);
    const internals = this as unknown as { mqttProvider: MqttProvider; _onTheWirePublishes: OnTheWireMessages };
    defaultMqttProvider ??= internals.mqttProvider;
    internals.mqttProvider = tlsContext ? sharedContextProvider(defaultMqttProvider, tlsContext) : noDelayProvider();
    purgeOnlyWhatIsOnTheWire(internals._onTheWirePublishes);
  }

  override connect(config: ConnectConfig, done: Done): void {
    super.connect(config, (err?: Error, result?: unknown) => {
      if (!err) this.observer.connected();
      done(err, result);
    });
  }

  // The transport's response handler JSON.parses every payload unguarded; a non-JSON payload
  // would throw inside the event and kill the process. Report it as this device's failure instead.
  override on(event: string | symbol, listener: (...args: unknown[]) => void): this {
    if (event !== 'message') return super.on(event, listener);
    return super.on(event, (...args: unknown[]) => {
      try {
        listener(...args);
      } catch (err) {
        const [topic, payload] = args;
        const text = Buffer.isBuffer(payload) ? payload.toString('utf8').slice(0, 200) : String(payload);
        const reason = err instanceof Error ? err.message : String(err);
        this.observer.fatal(
          new InvalidServiceResponseError(
            `the service sent a response the SDK cannot handle on ${String(topic)} (${reason}): ${JSON.stringify(text)}`,
          ),
        );
      }
    });
  }
}

/**
 * The SDK's MQTT transport (`Mqtt`, or `MqttWs` with `webSocket`) with an injected `MqttBase`:
 * `setOptions({ ca })` is the only way to trust a CA without NODE_EXTRA_CA_CERTS (the transport has
 * no CA option). Over TLS `host:port` works as is: the transport connects to
 * `mqtts://<provisioningHost>`. Over WebSockets the transport dials `wss://<host>:443/$iothub/websocket`
 * whatever it is given, so it gets the host name alone and, for another port, a WebSocket agent that
 * connects there (`mqtt.webSocketAgent`, the one connection setting the SDK lets a caller choose).
 */
export function createMqttTransport(
  observer: RegistrationObserver,
  endpoint: Endpoint,
  ca: string | undefined,
  webSocket = false,
  tlsContext?: SecureContext,
): DeviceTransport {
  const base = withoutStackTraces(() => new ObservedMqttBase(observer, webSocket ? undefined : tlsContext));
  const agent = webSocketPortAgent(endpoint, ca, webSocket);
  base.setOptions({ ...(ca !== undefined ? { ca } : {}), ...(agent ? { mqtt: { webSocketAgent: agent } } : {}) });
  const transport = webSocket ? new MqttWs(base) : new Mqtt(base);
  passDisconnectCallback(base, transport);
  endDeadConnections(base);
  return connectedDeviceTransport(transport, observer, endpoint, webSocket, agent);
}

/**
 * MqttBase's constructor enters its `disconnected` state, whose purge (see `purgeOnlyWhatIsOnTheWire`)
 * builds a `NotConnectedError` for an empty queue, which nobody receives: two stack traces taken
 * through machina's deep construction stack (`super(message)`, then `Error.captureStackTrace`).
 * Nothing else in the constructor makes an error; the limit is back before anything else runs.
 */
function withoutStackTraces<T>(make: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * The factory a new base starts with: with a shared TLS context, that context's (once one base has
 * loaded mqtt.js); else mqtt.js itself once known; undefined (MqttBase requires mqtt.js) the first time.
 */
function mqttProviderFor(tlsContext: SecureContext | undefined): MqttProvider | undefined {
  if (defaultMqttProvider === undefined) return undefined;
  return tlsContext ? sharedContextProvider(defaultMqttProvider, tlsContext) : noDelayProvider();
}

/** mqtt.js's factory with Nagle's algorithm off on its socket (see `connectWithoutDelay`). */
let noDelayMqttProvider: MqttProvider | undefined;
function noDelayProvider(): MqttProvider {
  const mqtt = defaultMqttProvider as MqttProvider;
  noDelayMqttProvider ??= { connect: (uri, options) => connectWithoutDelay(mqtt, uri, options) };
  return noDelayMqttProvider;
}

/**
 * mqtt.js's client with Nagle's algorithm off on its TLS socket (tls.connect takes no `noDelay`).
 * The SDK acknowledges an answer (PUBACK) and then, once its polling timer fires, sends its poll:
 * with `retry-after: 0` two small writes a moment apart. With Nagle on, the poll waits in the kernel
 * until the PUBACK is acknowledged, and the service's side delays that acknowledgement (Linux's
 * delayed ACK, 40 ms): every registration against the local emulator with `--retry-after 0` took
 * ~40 ms longer than its exchange (a single device 50 ms against 8 ms, traced at the server; the
 * bench's fleets held their devices idle that long). Same bytes, same packets; only when they leave.
 * A WebSocket stream (MqttWs) has no setNoDelay: `ws` turns Nagle off itself.
 */
function connectWithoutDelay(mqtt: MqttProvider, uri: string, options: Record<string, unknown>): unknown {
  const client = mqtt.connect(uri, options) as { stream?: { setNoDelay?: (noDelay: boolean) => unknown } };
  client.stream?.setNoDelay?.(true);
  return client;
}

/**
 * MqttBase hands mqtt.js only `ca` (and the device's cert and key), from which Node's tls.connect
 * builds a new SecureContext for every connection: parsing the CA PEM and loading it into an
 * OpenSSL store was 11% of a fleet's CPU profile. A `secureContext` given to tls.connect is used as
 * it is, so the fleet's one context (same CA, no client certificate) goes in at the factory.
 */
function sharedContextProvider(mqtt: MqttProvider, secureContext: SecureContext): MqttProvider {
  let provider = sharedContextProviders.get(secureContext);
  if (provider === undefined) {
    provider = { connect: (uri, options) => connectWithoutDelay(mqtt, uri, { ...options, secureContext }) };
    sharedContextProviders.set(secureContext, provider);
  }
  return provider;
}

/**
 * MqttBase purges its PUBLISHes awaiting a PUBACK each time it enters `disconnected` (the SDK's
 * register ends there), and builds a `NotConnectedError` for them first, whether or not there is
 * one: a stack trace and a prototype change (setPrototypeOf) per device for an error nobody gets.
 * With nothing on the wire the purge has nothing to fail; it only stops the timeout timer, as before.
 */
function purgeOnlyWhatIsOnTheWire(messages: OnTheWireMessages): void {
  const purge = messages.purge;
  messages.purge = function (this: OnTheWireMessages, err?: Error): void {
    if (this._onTheWire.size === 0) {
      clearTimeout(this._timeoutTimer);
      return;
    }
    purge.call(this, err);
  };
}

/** The SDK transport's state machine (machina), which the SDK keeps private. */
interface TransportFsm {
  handle(event: 'disconnect', err: Error | undefined, callback: (err?: Error) => void): void;
}

/**
 * The SDK subscribes `err => fsm.handle('disconnect', err)` to the base's 'error' event: no
 * callback. In the `disconnected` state (directly, or replayed after `disconnecting`) the state
 * machine calls that missing callback and throws `TypeError: callback is not a function` inside
 * mqtt.js's event, which ends the whole process (a fleet then loses every device in flight).
 * Replace the handler with the same call plus a callback. The fault itself stays the SDK's to
 * handle: a request in flight fails (the device's outcome), a device waiting to poll reconnects on
 * its next poll, as the SDK intends.
 */
function passDisconnectCallback(base: InstanceType<typeof MqttBase>, transport: InstanceType<typeof Mqtt>): void {
  base.removeAllListeners('error');
  base.on('error', (...args: unknown[]) => {
    const err = args[0] instanceof Error ? args[0] : new Error(String(args[0]));
    (transport as unknown as { _fsm: TransportFsm })._fsm.handle('disconnect', err, () => {});
  });
}

/** The parts of MqttBase (private in its typings) that `endDeadConnections` reaches. */
interface MqttBaseInternals {
  _disconnectClient(force: boolean, callback: () => void): void;
  _mqttClient?: { stream?: { destroyed?: boolean } };
}

/**
 * When the connection is reset while the device waits to poll (a service that crashed, a network
 * that dropped it), MqttBase disconnects through mqtt.js's `end()`, whose callback waits for a
 * 'close' of the socket that already came: MqttBase stays `disconnecting` for good, deferring every
 * later request, and the SDK's register never calls back (not even its own 30 s timeout gets
 * through). A socket already destroyed has nothing left to end: the callback comes at once.
 */
function endDeadConnections(base: InstanceType<typeof MqttBase>): void {
  const internals = base as unknown as MqttBaseInternals;
  const disconnectClient = internals._disconnectClient.bind(base);
  internals._disconnectClient = (force, callback) => {
    let called = false;
    const once = () => {
      if (called) return;
      called = true;
      callback();
    };
    disconnectClient(force, once);
    if (internals._mqttClient?.stream?.destroyed) setImmediate(once);
  };
}
