// The SDKs' private fields the helper reaches (internals.ts), checked against the SDK versions
// installed: an SDK update that renames or drops one fails here, and the helper itself throws
// naming the field instead of leaving the client pointed at Azure.
import provisioningService from 'azure-iot-provisioning-service';
import iothub from 'azure-iothub';
import { describe, expect, it } from 'vitest';
import { type EmulatorTarget, withEmulator } from './index.js';
import { restApiClientOf, serviceAmqpBaseOf } from './internals.js';

const HUB_CS =
  'HostName=internals-hub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=a2V5a2V5a2V5a2V5a2V5a2V5';
const DPS_CS =
  'HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=a2V5a2V5a2V5a2V5a2V5a2V5';
/** A target on ports nothing listens on: nothing here connects. */
const TARGET: EmulatorTarget = {
  mqtt: { port: 1, provisioningHost: 'localhost:1' },
  https: { host: '127.0.0.1', port: 1, provisioningHost: 'localhost' },
  amqp: { port: 1, provisioningHost: 'localhost:1' },
  ca: 'not read',
};

const clients = {
  ProvisioningServiceClient: () => provisioningService.ProvisioningServiceClient.fromConnectionString(DPS_CS),
  Registry: () => iothub.Registry.fromConnectionString(HUB_CS),
  Client: () => iothub.Client.fromConnectionString(HUB_CS),
  'Client over AmqpWs': () => iothub.Client.fromConnectionString(HUB_CS, iothub.AmqpWs),
};

describe('the private fields read from the SDKs, in the SDK versions installed', () => {
  it.each(Object.entries(clients))('%s has _restApiClient.setOptions', (name, make) => {
    expect(() => restApiClientOf(make(), name, 'installed')).not.toThrow();
  });

  it.each([['Client'], ['Client over AmqpWs']] as const)('%s has _transport._amqp.connect', (name) => {
    expect(() => serviceAmqpBaseOf(clients[name]())).not.toThrow();
  });

  it("withEmulator sets the REST client's agent: the SDK's HTTP layer holds it (common-http http.js _options)", () => {
    const registry = withEmulator(clients.Registry(), TARGET);
    const http = (registry as unknown as { _restApiClient: { _http: { _options: { http: { agent: unknown } } } } })
      ._restApiClient._http;
    expect(http._options.http.agent?.constructor.name).toBe('EmulatorAgent');
  });
});

describe('an SDK without those fields is refused loudly, never left pointed at Azure', () => {
  it.each(Object.entries(clients))('%s without _restApiClient', (_name, make) => {
    const client = make();
    delete (client as unknown as { _restApiClient?: unknown })._restApiClient;
    expect(() => withEmulator(client, TARGET)).toThrow(/has no _restApiClient\.setOptions \(read from azure-iot/);
  });

  it('Client without _transport._amqp', () => {
    const client = clients.Client();
    delete (client as unknown as { _transport: { _amqp?: unknown } })._transport._amqp;
    expect(() => withEmulator(client, TARGET)).toThrow(
      'this azure-iothub Client has no _transport._amqp.connect (read from azure-iothub 1.16.6)',
    );
  });
});
