// After provisioning: the device connects to its assigned IoT hub with the official device SDK
// (`azure-iot-device` over MQTT), reads its twin, reports a property and sends telemetry.
import deviceModule from 'azure-iot-device';
import deviceMqttModule from 'azure-iot-device-mqtt';
import { disableMqttNumberCache } from './sdk/mqtt-packet.js';

const { Client, Message, X509AuthenticationProvider } = deviceModule;
const { Mqtt } = deviceMqttModule;
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
  /** PEM CA certificate(s) to trust (the local emulator's CA). */
  ca?: string;
  /** Reported properties to send; default `{ deviceSim: { connectedAtUtc } }`. */
  reported?: Record<string, unknown>;
  /** Telemetry messages to send after reporting (default 0). */
  telemetryCount?: number;
  /** Give up after this long (ms); default 60000. */
  timeoutMs?: number;
  signal?: AbortSignal;
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
function hubClient(options: HubConnectOptions): InstanceType<typeof Client> {
  if (options.certificate) {
    return Client.fromAuthenticationProvider(
      new X509AuthenticationProvider({
        host: options.hub,
        deviceId: options.deviceId,
        ...(options.gatewayHost ? { gatewayHostName: options.gatewayHost } : {}),
        x509: options.certificate,
      }),
      Mqtt,
    );
  }
  if (options.deviceKey === undefined) throw new TypeError('a hub session needs deviceKey or certificate');
  return Client.fromConnectionString(deviceConnectionString({ ...options, deviceKey: options.deviceKey }), Mqtt);
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
  const client = hubClient(options);
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
    if (options.ca !== undefined) await step(client.setOptions({ ca: options.ca }));
    await step(client.open());
    const twin = await step(client.getTwin());
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
    for (let i = 1; i <= (options.telemetryCount ?? 0); i++) {
      const message = new Message(
        JSON.stringify({ deviceId: options.deviceId, seq: i, sentAtUtc: new Date().toISOString() }),
      );
      message.contentType = 'application/json';
      message.contentEncoding = 'utf-8';
      message.properties.add('seq', String(i));
      await step(client.sendEvent(message));
      session.telemetrySent = i;
    }
    session.status = 'connected';
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    session.errorName = error.name === 'Error' ? error.constructor.name : error.name;
    session.errorMessage = error.message;
  } finally {
    clearTimeout(timer);
    await Promise.race([client.close().catch(() => {}), delay(2000)]);
  }
  session.durationMs = Math.round(performance.now() - startedAt);
  return session;
}

/** The twin collection's own properties (the SDK's objects carry methods). */
function plain(value: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(value, (key, v) => (typeof v === 'function' || key === '_events' ? undefined : v)));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
