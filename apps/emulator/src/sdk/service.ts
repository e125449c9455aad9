// The service side: azure-iot-provisioning-service's ProvisioningServiceClient and azure-iothub's
// Registry and Client, built by the user as against Azure (`fromConnectionString`), then pointed at
// the emulator. Their REST calls always go to `https://{HostName}:443` and take an agent; the
// hub Client's AMQP connection (`send`, `getFeedbackReceiver`) always goes to `amqps://{HostName}:5671`
// (or `wss://{HostName}:443` with AmqpWs) and takes nothing: internals.ts has the two ways in.
import type { ClientRequestArgs } from 'node:http';
import { type Agent, Agent as HttpsAgent } from 'node:https';
import type { Duplex } from 'node:stream';
import { emulatorAgent } from '../sdk-agent.js';
import { type AmqpConnectConfig, restApiClientOf, serviceAmqpBaseOf } from './internals.js';
import {
  type EmulatorTarget,
  missingEndpointError,
  type ResolvedTarget,
  requireEndpoint,
  resolveTarget,
} from './target.js';

type Method = (...args: never[]) => unknown;

/**
 * The clients `withEmulator` takes, told apart by their public methods: azure-iot-provisioning-service's
 * `ProvisioningServiceClient`, azure-iothub's `Registry` and its service `Client`.
 */
export type EmulatorServiceClient =
  | { createOrUpdateIndividualEnrollment: Method; getEnrollmentGroup: Method }
  | { getTwin: Method; create: Method; list: Method }
  | { invokeDeviceMethod: Method; send: Method; getFeedbackReceiver: Method };

export interface WithEmulatorOptions {
  /**
   * The agent for the client's HTTPS requests. Default: `emulatorAgent(target)`, kept alive for
   * `Registry` and `Client` as the SDK's own agent is.
   */
  agent?: Agent;
}

type ServiceKind = 'ProvisioningServiceClient' | 'Registry' | 'Client';

function serviceKind(client: object): ServiceKind | undefined {
  const has = (name: string) => typeof (client as Record<string, unknown>)[name] === 'function';
  if (has('invokeDeviceMethod') && has('send')) return 'Client';
  if (has('createOrUpdateIndividualEnrollment')) return 'ProvisioningServiceClient';
  if (has('getTwin') && has('create') && has('list')) return 'Registry';
  return undefined;
}

const READ_FROM: Record<ServiceKind, string> = {
  ProvisioningServiceClient: 'azure-iot-provisioning-service 1.11.2',
  Registry: 'azure-iothub 1.16.6',
  Client: 'azure-iothub 1.16.6',
};

/** Where each hub Client's AMQP connections go now (a second `withEmulator` re-points it). */
const amqpTargets = new WeakMap<object, ResolvedTarget>();

/**
 * Points an official service client at the emulator `target` and returns it; with no target
 * (`undefined`: against Azure) returns it untouched. Takes azure-iot-provisioning-service's
 * `ProvisioningServiceClient` and azure-iothub's `Registry` and `Client` (REST: direct methods,
 * purge; AMQP: `send`, `getFeedbackReceiver`), built from the emulator's connection strings:
 *
 * ```ts
 * const registry = withEmulator(Registry.fromConnectionString(hubConnectionString), target);
 * ```
 *
 * Every HTTPS request goes to the emulator's HTTPS listener, trusting its CA (the URL, `Host` and
 * token still name the hub or DPS); the hub Client's AMQP connection goes to its AMQP listener
 * (AmqpWs: its HTTPS listener), trusting the CA.
 */
export function withEmulator<C extends EmulatorServiceClient>(
  client: C,
  target: EmulatorTarget | undefined,
  options: WithEmulatorOptions = {},
): C {
  if (target === undefined) return client;
  const kind = serviceKind(client);
  if (!kind) {
    throw new TypeError(
      '@dpskit/emulator/sdk: withEmulator takes a ProvisioningServiceClient (azure-iot-provisioning-service) or a Registry or Client (azure-iothub); ' +
        'for a device client use createDeviceClient, for a provisioning transport provisioningTransport',
    );
  }
  const resolved = resolveTarget(target);
  const rest = restApiClientOf(client, kind, READ_FROM[kind]);
  rest.setOptions({ http: { agent: options.agent ?? restAgent(kind, resolved) } });
  if (kind === 'Client') redirectServiceAmqp(client, resolved);
  return client;
}

/**
 * The agent for the client's REST calls: `emulatorAgent` to the HTTPS listener. Without one, the
 * hub Client (whose `send` and `getFeedbackReceiver` are AMQP) gets an agent that fails each REST
 * call (`invokeDeviceMethod`) with the error naming the missing listener, and no other client is
 * taken: the REST client must never be left dialing `{hub}:443`, Azure's address.
 */
function restAgent(kind: ServiceKind, target: ResolvedTarget): Agent {
  if (kind === 'Client' && !target.https) {
    return new RefusingAgent(() =>
      missingEndpointError('https', 'azure-iothub Client REST calls (invokeDeviceMethod)'),
    );
  }
  const https = requireEndpoint(target, 'https', kind);
  return emulatorAgent({ https, ca: target.ca }, kind === 'ProvisioningServiceClient' ? {} : { keepAlive: true });
}

/** An agent whose every connection fails with `error()` (the request emits it, nothing is dialed). */
class RefusingAgent extends HttpsAgent {
  readonly #error: () => Error;

  constructor(error: () => Error) {
    super();
    this.#error = error;
  }

  override createConnection(
    _options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const error = this.#error();
    process.nextTick(() => callback?.(error, undefined as unknown as Duplex));
    return undefined;
  }
}

/** The hub Client's AMQP connect, sent to the emulator's AMQP (or, for AmqpWs, HTTPS) listener with its CA. */
function redirectServiceAmqp(client: object, target: ResolvedTarget): void {
  const wrapped = amqpTargets.has(client);
  amqpTargets.set(client, target);
  if (wrapped) return;
  const base = serviceAmqpBaseOf(client);
  const connect = base.connect.bind(base);
  base.connect = (config, done) => {
    let redirected: AmqpConnectConfig;
    try {
      redirected = redirectAmqpConfig(config, amqpTargets.get(client) as ResolvedTarget);
    } catch (err) {
      done(err);
      return;
    }
    connect(redirected, done);
  };
}

/**
 * `amqps://{hub}` becomes the emulator's AMQP listener; `wss://{hub}:443/…` keeps its URL and gets
 * an agent that takes it to the HTTPS listener. Both trust the CA. The SAS token, made from the
 * connection string, still names the hub.
 */
export function redirectAmqpConfig(config: AmqpConnectConfig, target: ResolvedTarget): AmqpConnectConfig {
  const sslOptions = { ...config.sslOptions, ca: target.ca };
  if (config.uri.startsWith('wss:')) {
    const https = requireEndpoint(target, 'https', 'azure-iothub Client over AmqpWs');
    return { ...config, sslOptions: { ...sslOptions, agent: emulatorAgent({ https, ca: target.ca }) } };
  }
  const amqp = requireEndpoint(target, 'amqp', 'azure-iothub Client (send, getFeedbackReceiver over AMQP)');
  return { ...config, uri: `amqps://${amqp.provisioningHost}`, sslOptions };
}
