// Test helpers that drive the official, unmodified Azure IoT device SDK packages against the
// emulator. The only things injected are what the SDK's own API offers: a transport base that
// trusts the emulator's CA (and, for HTTP, knows its port), through @dpskit/emulator/sdk's
// provisioningTransport except for MQTT (below).
import { fixedPortAgent } from '@dpskit/node-kit';
import amqpBase from 'azure-iot-amqp-base';
import mqttBase from 'azure-iot-mqtt-base';
import provisioningDevice from 'azure-iot-provisioning-device';
import amqpTransport from 'azure-iot-provisioning-device-amqp';
import httpTransport from 'azure-iot-provisioning-device-http';
import mqttTransport from 'azure-iot-provisioning-device-mqtt';
import symmetricKey from 'azure-iot-security-symmetric-key';
import x509Security from 'azure-iot-security-x509';
import type { Emulator } from '../emulator.js';
import { type ProvisioningTransportClass, provisioningTransport } from '../sdk/index.js';

/** What the SDK helpers need of an emulator: an in-process one, or one in another process (cli-process.ts). */
export type EmulatorView = Pick<Emulator, 'idScope' | 'endpoints' | 'caCertPem'>;

const { ProvisioningDeviceClient } = provisioningDevice;
const { Mqtt, MqttWs } = mqttTransport;
const { Amqp, AmqpWs } = amqpTransport;
const { Amqp: AmqpBase } = amqpBase;
const { Http } = httpTransport;
const { MqttBase } = mqttBase;
const { SymmetricKeySecurityClient } = symmetricKey;
const { X509Security } = x509Security;

export type SdkTransport = 'mqtt' | 'mqtt-ws' | 'amqp' | 'amqp-ws' | 'https';

type AmqpConnectConfig = Parameters<InstanceType<typeof AmqpBase>['connect']>[0];

/**
 * The AMQP transports' base, trusting the emulator's CA: for symmetric keys the transport passes no
 * TLS options of its own (only the WebSocket agent), so the base adds `ca` to what it connects with.
 * The transport takes a base in its constructor, as the MQTT and HTTP transports do.
 */
export class TrustingAmqpBase extends AmqpBase {
  readonly #ca: string;

  constructor(ca: string) {
    super(true);
    this.#ca = ca;
  }

  override connect(config: AmqpConnectConfig, done: Parameters<InstanceType<typeof AmqpBase>['connect']>[1]): void {
    super.connect({ ...config, sslOptions: { ...config.sslOptions, ca: this.#ca } as typeof config.sslOptions }, done);
  }
}

/** A security client that presents a token crafted by the test (expired, for another id, …). */
export function fixedTokenSecurityClient(registrationId: string, token: string) {
  return {
    getRegistrationId: (callback: (err: Error | null, id?: string) => void) => callback(null, registrationId),
    createSharedAccessSignature: (
      _idScope: string,
      callback: (err: Error | null, sas?: { toString(): string }) => void,
    ) => callback(null, { toString: () => token }),
  };
}

export interface RegisterOptions {
  transport?: SdkTransport;
  /** The device's custom payload (`setProvisioningPayload`). */
  payload?: Record<string, unknown>;
  /** Overrides the symmetric-key security client. */
  securityClient?: ReturnType<typeof fixedTokenSecurityClient>;
  pollingIntervalMs?: number;
}

/** The SDK's transport, pointed at the emulator and trusting its CA. */
export function sdkTransport(emulator: EmulatorView, transport: SdkTransport, pollingIntervalMs = 50) {
  if (transport === 'mqtt' || transport === 'mqtt-ws') {
    const base = new MqttBase();
    const webSockets = emulator.endpoints.webSockets;
    if (transport === 'mqtt-ws' && !webSockets) throw new Error('the emulator runs without HTTPS (no WebSockets)');
    base.setOptions({
      ca: emulator.caCertPem,
      // MqttWs always connects to port 443: its WebSocket agent is the one way to another port.
      ...(transport === 'mqtt-ws' && webSockets
        ? { mqtt: { webSocketAgent: fixedPortAgent(webSockets.port, { ca: emulator.caCertPem }) } }
        : {}),
    });
    const mqtt = transport === 'mqtt' ? new Mqtt(base) : new MqttWs(base);
    // As device-sim does (its transport/mqtt.ts says why): the SDK's handler of connection errors
    // calls its state machine's disconnect without a callback, which throws "callback is not a
    // function" out of mqtt.js when the connection drops while the transport is disconnected.
    base.removeAllListeners('error');
    base.on('error', (err: Error) =>
      (mqtt as unknown as { _fsm: { handle(event: string, err: Error, done: () => void): void } })._fsm.handle(
        'disconnect',
        err,
        () => {},
      ),
    );
    mqtt.on('error', () => {});
    mqtt.setTransportOptions({ pollingInterval: pollingIntervalMs });
    const provisioningHost =
      transport === 'mqtt' ? emulator.endpoints.mqtt.provisioningHost : (webSockets?.provisioningHost ?? '');
    return { provisioningHost, transport: mqtt };
  }
  // AMQP and HTTPS as users do it (@dpskit/emulator/sdk); MQTT above keeps its base for the
  // error handler the tests need.
  const Transport = transport === 'amqp' ? Amqp : transport === 'amqp-ws' ? AmqpWs : Http;
  const pointed = provisioningTransport(
    Transport as ProvisioningTransportClass<InstanceType<typeof Transport>>,
    emulator,
  );
  pointed.transport.setTransportOptions({ pollingInterval: pollingIntervalMs });
  return pointed;
}

export type SdkRegistrationState = Record<string, unknown> & { registrationId: string; status: string };

/** Registers one device with the SDK and resolves with its `registrationState` (or rejects with the SDK's error). */
export function register(
  emulator: EmulatorView,
  registrationId: string,
  deviceKey: string,
  options: RegisterOptions = {},
) {
  const { provisioningHost, transport } = sdkTransport(
    emulator,
    options.transport ?? 'mqtt',
    options.pollingIntervalMs,
  );
  // The SDK packages pin different azure-iot-common versions, so their types disagree; at runtime
  // the client only duck-types the security client.
  type Security = Parameters<typeof ProvisioningDeviceClient.create>[3];
  const security = (options.securityClient ??
    new SymmetricKeySecurityClient(registrationId, deviceKey)) as unknown as Security;
  const client = ProvisioningDeviceClient.create(provisioningHost, emulator.idScope, transport, security);
  if (options.payload) client.setProvisioningPayload(options.payload);
  return client.register() as unknown as Promise<SdkRegistrationState>;
}

/**
 * Registers one X.509 device with the SDK (`azure-iot-security-x509`): `cert` is its certificate
 * followed by the intermediates it presents (PEM), `key` its private key.
 */
export function registerWithCertificate(
  emulator: Emulator,
  registrationId: string,
  credentials: { cert: string; key: string },
  options: Omit<RegisterOptions, 'securityClient'> = {},
) {
  const { provisioningHost, transport } = sdkTransport(
    emulator,
    options.transport ?? 'mqtt',
    options.pollingIntervalMs,
  );
  type Security = Parameters<typeof ProvisioningDeviceClient.create>[3];
  const security = new X509Security(registrationId, credentials) as unknown as Security;
  const client = ProvisioningDeviceClient.create(provisioningHost, emulator.idScope, transport, security);
  if (options.payload) client.setProvisioningPayload(options.payload);
  return client.register() as unknown as Promise<SdkRegistrationState>;
}

/** Awaits a rejection and returns the error (fails if the promise resolves). */
export async function rejectionOf(
  promise: Promise<unknown>,
): Promise<Error & { result?: unknown; responseBody?: string }> {
  try {
    const value = await promise;
    throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (err) {
    return err as Error & { result?: unknown; responseBody?: string };
  }
}
