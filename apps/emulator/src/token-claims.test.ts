// A SAS token's three claims — `sr` (what it reaches, a prefix by segment), `se` (when it ends),
// `skn` (whose key, with which rights) — checked on every entry of the emulator, one table: each
// row opens one path with one token and says what the path answered (an SDK's error code where an
// official client can express the token, else the raw protocol's answer). One emulator for the file.
import { createHmac } from 'node:crypto';
import { EventHubConsumerClient } from '@azure/event-hubs';
import {
  createDeviceSasToken,
  createRegistrationSasToken,
  createSasToken,
  generateSymmetricKey,
} from '@dpskit/contracts';
import type { LogRecord } from '@dpskit/node-kit';
import deviceSdk from 'azure-iot-device';
import deviceAmqp from 'azure-iot-device-amqp';
import deviceHttp from 'azure-iot-device-http';
import deviceMqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import mqttPacket from 'mqtt-packet';
import type { Connection, EventContext } from 'rhea';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_HUB_POLICIES, type HubPolicy } from './hub/core/hub-service.js';
import {
  createDeviceClient,
  type DeviceTransportArgument,
  eventHubConsumerOptions,
  withEmulator,
} from './sdk/index.js';
import { groupDeviceKey, HUB_A, HUB_B, ID_SCOPE } from './testing/fixtures.js';
import { createDeviceKey, hubAgent, Message, registryClient } from './testing/hub-sdk.js';
import { DISCONNECT, DPS_SUBSCRIBE, hubConnackFor, rawMqttConnection } from './testing/mqtt-bytes.js';
import { connectRheaDevice, openRheaConnection, rheaConnect } from './testing/raw-amqp.js';
import { rawRequest, serviceToken } from './testing/raw-https.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from './testing/test-bed.js';

/** The hub's policies as a new IoT hub has them (azure-docs iot-hub-dev-guide-sas), each its own key. */
const POLICIES: HubPolicy[] = [
  ...DEFAULT_HUB_POLICIES,
  { keyName: 'service', primaryKey: generateSymmetricKey(32), rights: ['ServiceConnect'] },
  { keyName: 'device', primaryKey: generateSymmetricKey(32), rights: ['DeviceConnect'] },
  { keyName: 'registryRead', primaryKey: generateSymmetricKey(32), rights: ['RegistryRead'] },
];
const policy = (name: string) => POLICIES.find((p) => p.keyName === name) as HubPolicy;

let bed: TestBedWithWebhook;
const logs: LogRecord[] = [];
/** The hub device of the device rows (and `claims-dx`, whose id has its id as a prefix), with its key. */
const DEVICE = 'claims-d';
let deviceKey = '';

beforeAll(async () => {
  bed = await startTestBedWithWebhook({ hubPolicies: POLICIES, log: (record) => logs.push(record) });
  const registry = registryClient(bed.emulator, HUB_A);
  deviceKey = await createDeviceKey(registry, DEVICE);
  await createDeviceKey(registry, `${DEVICE}x`);
});
afterAll(async () => {
  await bed?.close();
});

const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;
const anHourAgo = () => Math.floor(Date.now() / 1000) - 3600;

/** A policy's token: `sr` the resource given, signed with the policy's key unless `key` is given. */
function policyToken(options: { policy: string; resource: string; expiresAt?: number; key?: string }): string {
  return createSasToken({
    resource: options.resource,
    key: options.key ?? policy(options.policy).primaryKey,
    keyName: options.policy,
    expiresAt: options.expiresAt ?? inAnHour(),
    encodeResource: true,
  });
}

/**
 * SASL PLAIN with `username` and `token`, then one link: a sender on `address` (`attached` once the
 * hub grants it credit) or a receiver (`receive`: its error, as the messages/events redirect's).
 * Resolves with what happened: `sasl <code>` (the SASL outcome), `attached`, or the link's error condition.
 */
function saslPlain(username: string, token: string, link: { send: string } | { receive: string }): Promise<string> {
  return new Promise((resolve) => {
    const connection = rheaConnect(bed.emulator.endpoints.amqp?.port ?? 0, bed.emulator.caCertPem, {
      hostname: HUB_A,
      username,
      password: token,
    });
    const done = (outcome: string) => {
      resolve(outcome);
      connection.close();
    };
    connection.on('connection_error', (context: EventContext) => {
      const error = (context.error ?? context.connection.error) as
        | { description?: string; condition?: string }
        | undefined;
      const sasl = /^Failed to authenticate: (\d)$/.exec(error?.description ?? '');
      done(sasl ? `sasl ${sasl[1]}` : String(error?.condition));
    });
    connection.on('disconnected', () => done('disconnected'));
    connection.on('connection_open', () => {
      if ('send' in link) {
        const sender = connection.open_sender({ target: { address: link.send } });
        sender.once('sendable', () => done('attached'));
        sender.once('sender_error', () => done(String((sender.error as { condition?: string })?.condition)));
      } else {
        const receiver = connection.open_receiver({ source: { address: link.receive } });
        receiver.once('receiver_error', () => done(String((receiver.error as { condition?: string })?.condition)));
      }
    });
  });
}

/** `saslPlain` as `{user}@sas.root.{hub name}`: a C2D sender, or a receiver on the hub's messages/events (its redirect). */
function saslRoot(options: { user: string; token: string; link: 'c2d' | 'events' }): Promise<string> {
  return saslPlain(
    `${options.user}@sas.root.${HUB_A.split('.')[0]}`,
    options.token,
    options.link === 'c2d'
      ? { send: '/messages/devicebound' }
      : { receive: `amqps://${HUB_A}/messages/events/$management` },
  );
}

/** `saslPlain` as `{deviceId}@sas.{hub name}` (a device-scoped token's username), the device's telemetry link. */
function saslDevice(deviceId: string, token: string): Promise<string> {
  return saslPlain(`${deviceId}@sas.${HUB_A.split('.')[0]}`, token, { send: `/devices/${deviceId}/messages/events` });
}

/** A token signed with the device's own key (no `skn`): `sr` its resource unless given. */
function deviceToken(options: { resource?: string; expiresAt?: number } = {}): string {
  if (!options.resource && !options.expiresAt)
    return createDeviceSasToken({ hubHostName: HUB_A, deviceId: DEVICE, key: deviceKey });
  return createSasToken({
    resource: options.resource ?? `${HUB_A}/devices/${DEVICE}`,
    key: deviceKey,
    expiresAt: options.expiresAt ?? inAnHour(),
    encodeResource: true,
  });
}

/** The device's MQTT CONNECT with `token` as password: `CONNACK <return code>`. */
async function mqttConnect(token: string): Promise<string> {
  const code = await hubConnackFor(bed.emulator, { hub: HUB_A, deviceId: DEVICE, token });
  return code === undefined ? 'no CONNACK' : `CONNACK ${code}`;
}

/** An HTTPS request to the hub (`Host` names it) with `token`: `HTTP <status>`. */
async function https(method: string, path: string, token: string, body = ''): Promise<string> {
  const response = await rawRequest(bed.emulator, {
    method,
    path: `/${path}?api-version=2021-04-12`,
    headers: { Host: HUB_A, Authorization: token },
    body,
  });
  return `HTTP ${response.status}`;
}

/** A CBS put-token for `audience` on `connection`: the answer's application properties. */
async function cbsPut(connection: Connection, audience: string, token: string): Promise<Record<string, unknown>> {
  const replies = connection.open_receiver({ source: { address: '$cbs' } });
  const requests = connection.open_sender({ target: { address: '$cbs' } });
  await new Promise((resolve) => requests.once('sendable', resolve));
  const answer = new Promise<Record<string, unknown>>((resolve) =>
    replies.once('message', (context: EventContext) =>
      resolve((context.message?.application_properties ?? {}) as Record<string, unknown>),
    ),
  );
  requests.send({
    message_id: 'put-1',
    reply_to: 'cbs',
    application_properties: { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: audience },
    body: token,
  });
  return answer;
}

/** A CBS put-token for `audience` on a new hub AMQP connection (no SASL): `put-token <status-code>`. */
async function putToken(audience: string, token: string): Promise<string> {
  const connection = await openRheaConnection(bed.emulator.endpoints.amqp?.port ?? 0, bed.emulator.caCertPem);
  try {
    return `put-token ${(await cbsPut(connection, audience, token))['status-code']}`;
  } finally {
    connection.close();
  }
}

/** The official device SDK over HTTPS with `token` (its connection string's SharedAccessSignature): sends one message. */
async function sdkDeviceSend(token: string, transport: DeviceTransportArgument = deviceHttp.Http): Promise<string> {
  const client = await createDeviceClient(
    deviceSdk.Client,
    `HostName=${HUB_A};DeviceId=${DEVICE};SharedAccessSignature=${token}`,
    transport,
    bed.emulator,
  );
  try {
    await client.sendEvent(new Message('claims'));
    return 'sent';
  } catch (err) {
    return (err as Error).name;
  } finally {
    await client.close();
  }
}

/** The official Registry from a shared access signature (`sr={hub}`): reads the device's twin. */
async function sdkGetTwin(token: string): Promise<string> {
  const registry = withEmulator(iothub.Registry.fromSharedAccessSignature(token), bed.emulator, {
    agent: hubAgent(bed.emulator),
  });
  return registry.getTwin(DEVICE).then(
    () => 'twin read',
    (err: Error) => err.name,
  );
}

/**
 * An Event Hubs token as @azure/core-amqp signs one: the policy key's **text** as the HMAC key (IoT
 * Hub's own tokens use its base64-decoded bytes), `sr` the audience URL-encoded.
 */
function eventHubToken(options: { policy: string; audience: string; expiresAt?: number; key?: string }): string {
  const sr = encodeURIComponent(options.audience);
  const se = options.expiresAt ?? inAnHour();
  const key = options.key ?? policy(options.policy).primaryKey;
  const sig = createHmac('sha256', Buffer.from(key, 'utf8')).update(`${sr}\n${se}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=${options.policy}`;
}

/** The built-in endpoint of HUB_A as the emulator's connection string gives it: `sb://{host}/` and the entity. */
function eventHubEndpoint(): { namespace: string; entity: string } {
  const connectionString = bed.emulator.eventHubConnectionString(HUB_A);
  const namespace = /Endpoint=sb:\/\/([^/;]+)/.exec(connectionString)?.[1] ?? '';
  const entity = /EntityPath=([^;]+)/.exec(connectionString)?.[1] ?? '';
  return { namespace, entity };
}

const partitionPath = (n: number) => `${eventHubEndpoint().entity}/ConsumerGroups/$Default/Partitions/${n}`;
const partitionAudience = (n: number) => `sb://${eventHubEndpoint().namespace}/${partitionPath(n)}`;

/**
 * An Event Hubs client's exchange, raw (SASL ANONYMOUS, as @azure/core-amqp connects): a put-token
 * for `audience`, then (`read`) a receiver on partition `read`. Resolves with the put-token's
 * `put-token <status>: <description>` when it is refused or nothing is read, else the receiver's
 * error condition (once the hub detaches it).
 */
async function eventHubExchange(audience: string, token: string, read?: number): Promise<string> {
  const connection = await openRheaConnection(bed.emulator.endpoints.amqp?.port ?? 0, bed.emulator.caCertPem, {
    username: 'iothubowner',
  });
  try {
    const put = await cbsPut(connection, audience, token);
    const status = `put-token ${put['status-code']}: ${put['status-description']}`;
    if (read === undefined || put['status-code'] !== 200) return status;
    const receiver = connection.open_receiver({ source: { address: partitionPath(read) }, credit_window: 0 });
    return await new Promise<string>((resolve) =>
      receiver.once('receiver_error', () => resolve(String((receiver.error as { condition?: string })?.condition))),
    );
  } finally {
    connection.close();
  }
}

/** The official EventHubConsumerClient with a shared access signature (a SASCredential, as @azure/core-auth's AzureSASCredential is): reads the partition ids. */
async function sdkPartitionIds(token: string): Promise<string> {
  const { namespace, entity } = eventHubEndpoint();
  const client = new EventHubConsumerClient(
    '$Default',
    namespace,
    entity,
    { signature: token },
    {
      ...eventHubConsumerOptions(bed.emulator),
      retryOptions: { maxRetries: 0 },
    },
  );
  try {
    return `partitions ${(await client.getPartitionIds()).join(',')}`;
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).name;
  } finally {
    await client.close();
  }
}

/** A DPS registration id of the fixtures' `hashed` group, and a token for it (`sr={idScope}/registrations/{id}`). */
const REGISTRATION = 'claims-dps-1';
function registrationToken(options: { resource?: string; expiresAt?: number; keyName?: string } = {}): string {
  const key = groupDeviceKey('hashed', REGISTRATION);
  if (!options.resource && !options.expiresAt && !options.keyName)
    return createRegistrationSasToken({ idScope: ID_SCOPE, registrationId: REGISTRATION, key });
  return createSasToken({
    resource: options.resource ?? `${ID_SCOPE}/registrations/${REGISTRATION}`,
    key,
    keyName: options.keyName ?? 'registration',
    expiresAt: options.expiresAt ?? inAnHour(),
    encodeResource: true,
  });
}

/**
 * DPS over MQTT: the registration's CONNECT with `token`, SUBSCRIBE and `iotdps-register`: the status
 * of the answer's topic (`res <status>`; DPS accepts the CONNECT and refuses the first request 401).
 */
async function dpsMqttRegister(token: string): Promise<string> {
  const connection = rawMqttConnection(bed.emulator);
  await connection.write(
    Buffer.concat([
      mqttPacket.generate({
        cmd: 'connect',
        clientId: REGISTRATION,
        username: `${ID_SCOPE}/registrations/${REGISTRATION}/api-version=2019-03-31&ClientVersion=raw`,
        password: Buffer.from(token),
        protocolVersion: 4,
        clean: true,
        keepalive: 0,
      }),
      DPS_SUBSCRIBE,
      mqttPacket.generate({
        cmd: 'publish',
        topic: '$dps/registrations/PUT/iotdps-register/?$rid=1',
        payload: Buffer.from(JSON.stringify({ registrationId: REGISTRATION })),
        qos: 0,
        retain: false,
        dup: false,
      }),
    ]),
  );
  await connection.packets(3);
  const answer = connection.received.find((packet) => packet.cmd === 'publish');
  await connection.write(DISCONNECT);
  await connection.closed;
  const status = answer?.cmd === 'publish' ? /^\$dps\/registrations\/res\/(\d+)\//.exec(answer.topic)?.[1] : undefined;
  return status ? `res ${status}` : 'no answer';
}

/** DPS over HTTPS: the registration's `register` with `token`: `HTTP <status>`. */
async function dpsRegister(token: string): Promise<string> {
  const response = await rawRequest(bed.emulator, {
    method: 'PUT',
    path: `/${ID_SCOPE}/registrations/${REGISTRATION}/register?api-version=2021-06-01`,
    headers: { Authorization: token },
    body: JSON.stringify({ registrationId: REGISTRATION }),
  });
  return `HTTP ${response.status}`;
}

/** DPS over AMQP: SASL PLAIN with the registration's username and `token`: the condition the connection is closed with. */
async function dpsAmqpRefusal(token: string): Promise<string> {
  const device = await connectRheaDevice(bed.emulator, REGISTRATION, groupDeviceKey('hashed', REGISTRATION), {
    password: token,
  });
  return String((await device.closed)?.condition);
}

/** The DPS service API: GET an enrollment group with `token`: `HTTP <status>`. */
async function dpsService(token: string): Promise<string> {
  const response = await rawRequest(bed.emulator, {
    method: 'GET',
    path: '/enrollmentGroups/hashed-group?api-version=2021-10-01',
    headers: { Authorization: token },
  });
  return `HTTP ${response.status}`;
}

/**
 * The device's MQTT CONNECT with a token that expires in `seconds`: `CONNACK <code>, closed` once the
 * hub closes the connection (at the token's se, as IoT Hub severs it; nothing timed here).
 */
async function mqttUntilClosed(seconds: number): Promise<string> {
  const token = deviceToken({ expiresAt: Math.floor(Date.now() / 1000) + seconds });
  const connection = rawMqttConnection(bed.emulator);
  await connection.write(
    mqttPacket.generate({
      cmd: 'connect',
      clientId: DEVICE,
      username: `${HUB_A}/${DEVICE}/?api-version=2021-04-12`,
      password: Buffer.from(token),
      protocolVersion: 4,
      clean: true,
      keepalive: 0,
    }),
  );
  await connection.packets(1);
  await connection.closed;
  const [connack] = connection.received;
  return connack?.cmd === 'connack' ? `CONNACK ${connack.returnCode}, closed` : 'no CONNACK';
}

/**
 * SASL PLAIN `iothubowner@sas.root.{hub}` with a token that expires in `seconds`, and a C2D link:
 * `attached, then <condition>` once the hub closes the connection at the token's se.
 */
function saslRootUntilClosed(seconds: number): Promise<string> {
  const token = policyToken({
    policy: 'iothubowner',
    resource: HUB_A,
    expiresAt: Math.floor(Date.now() / 1000) + seconds,
  });
  return new Promise((resolve) => {
    let attached = false;
    const connection = rheaConnect(bed.emulator.endpoints.amqp?.port ?? 0, bed.emulator.caCertPem, {
      hostname: HUB_A,
      username: `iothubowner@sas.root.${HUB_A.split('.')[0]}`,
      password: token,
    });
    const done = (context: EventContext) => {
      const error = (context.error ?? context.connection.error) as { condition?: string } | undefined;
      resolve(`${attached ? 'attached' : 'not attached'}, then ${String(error?.condition)}`);
    };
    connection.once('connection_close', done);
    connection.once('disconnected', done);
    connection.on('connection_open', () => {
      const sender = connection.open_sender({ target: { address: '/messages/devicebound' } });
      sender.once('sendable', () => {
        attached = true;
      });
    });
  });
}

/** A service put-token (`sr={hub}`) that expires in `seconds` on a hub AMQP connection: `put-token <status>, then <condition>` once the hub closes it. */
async function servicePutUntilClosed(seconds: number): Promise<string> {
  const token = policyToken({ policy: 'service', resource: HUB_A, expiresAt: Math.floor(Date.now() / 1000) + seconds });
  const connection = await openRheaConnection(bed.emulator.endpoints.amqp?.port ?? 0, bed.emulator.caCertPem);
  const closed = new Promise<string>((resolve) => {
    const done = (context: EventContext) =>
      resolve(String(((context.error ?? context.connection.error) as { condition?: string } | undefined)?.condition));
    connection.once('connection_close', done);
    connection.once('disconnected', done);
  });
  const put = await cbsPut(connection, HUB_A, token);
  return `put-token ${put['status-code']}, then ${await closed}`;
}

interface Row {
  path: string;
  token: string;
  run(): Promise<string>;
  expected: string;
}

const rows: Row[] = [
  // SASL PLAIN {policy}@sas.root.{hub}: checked in SASL (IoT Hub's outcome for a refused one is
  // `sys`, 2); what the connection may reach is its token's sr, by segment.
  ...(
    [
      ['iothubowner', { resource: HUB_A }, 'c2d', 'attached'],
      ['iothubowner', { resource: `${HUB_A}/messages` }, 'c2d', 'attached'],
      ['iothubowner', { resource: `${HUB_A}/messages/events` }, 'events', 'amqp:link:redirect'],
      ['iothubowner', { resource: `${HUB_A}/messages/events` }, 'c2d', 'amqp:unauthorized-access'],
      ['iothubowner', { resource: `${HUB_A}/messages/eventsx` }, 'events', 'amqp:unauthorized-access'],
      ['service', { resource: HUB_A }, 'c2d', 'attached'],
      ['iothubowner', { resource: HUB_A, expiresAt: anHourAgo() }, 'c2d', 'sasl 2'],
      ['iothubowner', { resource: HUB_A, key: generateSymmetricKey(32) }, 'c2d', 'sasl 2'],
      ['iothubowner', { resource: HUB_B }, 'c2d', 'sasl 2'],
      ['iothubowner', { resource: `${HUB_A}x` }, 'c2d', 'sasl 2'],
      ['registryRead', { resource: HUB_A }, 'c2d', 'sasl 2'],
      ['device', { resource: HUB_A }, 'c2d', 'sasl 2'],
    ] as const
  ).map(([user, claims, link, expected]): Row => {
    const token = policyToken({ policy: user, ...claims });
    const { resource, expiresAt, key } = claims as { resource: string; expiresAt?: number; key?: string };
    const sr = resource.replace(HUB_A, '{hub}').replace(HUB_B, '{other hub}');
    const what = `${user} sr=${sr}${expiresAt ? ' expired' : ''}${key ? ' other key' : ''}`;
    return { path: `SASL PLAIN sas.root, ${link}`, token: what, run: () => saslRoot({ user, token, link }), expected };
  }),
  {
    path: 'SASL PLAIN sas.root, c2d',
    token: 'user "service", token of iothubowner',
    run: () =>
      saslRoot({ user: 'service', token: policyToken({ policy: 'iothubowner', resource: HUB_A }), link: 'c2d' }),
    expected: 'sasl 2',
  },
];

// A hub device: its own key's token must be for its resource (`{hub}/devices/{id}`); a policy's
// (`skn`, a token service's or gateway's) needs DeviceConnect and an sr above the device by segment.
const deviceTokens: [string, () => string, { mqtt: string; https: string; amqp: string }][] = [
  ['own key', () => deviceToken(), { mqtt: 'CONNACK 0', https: 'HTTP 204', amqp: 'put-token 200' }],
  [
    'own key expired',
    () => deviceToken({ expiresAt: anHourAgo() }),
    { mqtt: 'CONNACK 5', https: 'HTTP 401', amqp: 'put-token 401' },
  ],
  [
    'own key sr={hub}',
    () => deviceToken({ resource: HUB_A }),
    { mqtt: 'CONNACK 5', https: 'HTTP 401', amqp: 'put-token 401' },
  ],
  [
    'device sr=/devices/{id}',
    () => policyToken({ policy: 'device', resource: `${HUB_A}/devices/${DEVICE}` }),
    { mqtt: 'CONNACK 0', https: 'HTTP 204', amqp: 'put-token 200' },
  ],
  [
    'device sr=/devices',
    () => policyToken({ policy: 'device', resource: `${HUB_A}/devices` }),
    { mqtt: 'CONNACK 0', https: 'HTTP 204', amqp: 'put-token 200' },
  ],
  [
    'device sr={hub}',
    () => policyToken({ policy: 'device', resource: HUB_A }),
    { mqtt: 'CONNACK 0', https: 'HTTP 204', amqp: 'put-token 200' },
  ],
  [
    'iothubowner sr=/devices/{id}',
    () => policyToken({ policy: 'iothubowner', resource: `${HUB_A}/devices/${DEVICE}` }),
    { mqtt: 'CONNACK 0', https: 'HTTP 204', amqp: 'put-token 200' },
  ],
  [
    'device sr=/devices/{id}x',
    () => policyToken({ policy: 'device', resource: `${HUB_A}/devices/${DEVICE}x` }),
    { mqtt: 'CONNACK 5', https: 'HTTP 401', amqp: 'put-token 401' },
  ],
  [
    'device sr=/devices/{id} expired',
    () => policyToken({ policy: 'device', resource: `${HUB_A}/devices/${DEVICE}`, expiresAt: anHourAgo() }),
    { mqtt: 'CONNACK 5', https: 'HTTP 401', amqp: 'put-token 401' },
  ],
  [
    'device sr=/devices/{id} other key',
    () => policyToken({ policy: 'device', resource: `${HUB_A}/devices/${DEVICE}`, key: generateSymmetricKey(32) }),
    { mqtt: 'CONNACK 5', https: 'HTTP 401', amqp: 'put-token 401' },
  ],
  [
    'service sr=/devices/{id}',
    () => policyToken({ policy: 'service', resource: `${HUB_A}/devices/${DEVICE}` }),
    { mqtt: 'CONNACK 5', https: 'HTTP 401', amqp: 'put-token 401' },
  ],
  [
    'registration (no policy) sr=/devices/{id}',
    () =>
      createSasToken({
        resource: `${HUB_A}/devices/${DEVICE}`,
        key: deviceKey,
        keyName: 'registration',
        expiresAt: inAnHour(),
      }),
    { mqtt: 'CONNACK 5', https: 'HTTP 401', amqp: 'put-token 401' },
  ],
];
for (const [what, token, expected] of deviceTokens) {
  rows.push(
    { path: 'hub device MQTT', token: what, run: () => mqttConnect(token()), expected: expected.mqtt },
    {
      path: 'hub device HTTPS',
      token: what,
      run: () => https('POST', `devices/${DEVICE}/messages/events`, token(), '{}'),
      expected: expected.https,
    },
    {
      path: 'hub device AMQP CBS',
      token: what,
      run: () => putToken(`${HUB_A}/devices/${DEVICE}`, token()),
      expected: expected.amqp,
    },
  );
}
rows.push(
  // The official device SDK with a token (its connection string's SharedAccessSignature).
  {
    path: 'hub device SDK Http',
    token: 'device sr=/devices/{id}',
    run: () => sdkDeviceSend(policyToken({ policy: 'device', resource: `${HUB_A}/devices/${DEVICE}` })),
    expected: 'sent',
  },
  {
    path: 'hub device SDK Http',
    token: 'own key expired',
    run: () => sdkDeviceSend(deviceToken({ expiresAt: anHourAgo() })),
    expected: 'UnauthorizedError',
  },
  // The registry: sr a prefix by segment of the request's path; twins take RegistryRead or ServiceConnect.
  {
    path: 'hub registry HTTPS GET devices/{id}',
    token: 'registryRead sr={hub}',
    run: () => https('GET', `devices/${DEVICE}`, policyToken({ policy: 'registryRead', resource: HUB_A })),
    expected: 'HTTP 200',
  },
  {
    path: 'hub registry HTTPS GET devices/{id}',
    token: 'registryRead sr=/devices',
    run: () => https('GET', `devices/${DEVICE}`, policyToken({ policy: 'registryRead', resource: `${HUB_A}/devices` })),
    expected: 'HTTP 200',
  },
  {
    path: 'hub registry HTTPS GET devices/{id}',
    token: 'registryRead sr=/devices/{id}x',
    run: () =>
      https(
        'GET',
        `devices/${DEVICE}`,
        policyToken({ policy: 'registryRead', resource: `${HUB_A}/devices/${DEVICE}x` }),
      ),
    expected: 'HTTP 401',
  },
  {
    path: 'hub registry HTTPS GET twins/{id}',
    token: 'registryRead sr=/devices',
    run: () => https('GET', `twins/${DEVICE}`, policyToken({ policy: 'registryRead', resource: `${HUB_A}/devices` })),
    expected: 'HTTP 401',
  },
  {
    path: 'hub registry HTTPS GET devices/{id}',
    token: 'registryRead expired',
    run: () =>
      https(
        'GET',
        `devices/${DEVICE}`,
        policyToken({ policy: 'registryRead', resource: HUB_A, expiresAt: anHourAgo() }),
      ),
    expected: 'HTTP 401',
  },
  {
    path: 'hub registry HTTPS GET devices/{id}',
    token: 'service sr={hub}',
    run: () => https('GET', `devices/${DEVICE}`, policyToken({ policy: 'service', resource: HUB_A })),
    expected: 'HTTP 401',
  },
  {
    path: 'hub registry HTTPS GET twins/{id}',
    token: 'service sr={hub}',
    run: () => https('GET', `twins/${DEVICE}`, policyToken({ policy: 'service', resource: HUB_A })),
    expected: 'HTTP 200',
  },
  {
    path: 'hub registry HTTPS query',
    token: 'service sr={hub}',
    run: () =>
      https(
        'POST',
        'devices/query',
        policyToken({ policy: 'service', resource: HUB_A }),
        '{"query":"SELECT * FROM devices"}',
      ),
    expected: 'HTTP 401',
  },
  {
    path: 'hub registry HTTPS GET twins/{id}',
    token: 'device sr={hub}',
    run: () => https('GET', `twins/${DEVICE}`, policyToken({ policy: 'device', resource: HUB_A })),
    expected: 'HTTP 401',
  },
  {
    path: 'hub registry SDK getTwin',
    token: 'service sr={hub}',
    run: () => sdkGetTwin(policyToken({ policy: 'service', resource: HUB_A })),
    expected: 'twin read',
  },
  {
    path: 'hub registry SDK getTwin',
    token: 'registryRead expired',
    run: () => sdkGetTwin(policyToken({ policy: 'registryRead', resource: HUB_A, expiresAt: anHourAgo() })),
    expected: 'UnauthorizedError',
  },
  // The service's CBS put-token (azure-iothub's Client): audience and sr the hub, ServiceConnect.
  {
    path: 'hub service AMQP CBS',
    token: 'service sr={hub}',
    run: () => putToken(HUB_A, policyToken({ policy: 'service', resource: HUB_A })),
    expected: 'put-token 200',
  },
  {
    path: 'hub service AMQP CBS',
    token: 'service expired',
    run: () => putToken(HUB_A, policyToken({ policy: 'service', resource: HUB_A, expiresAt: anHourAgo() })),
    expected: 'put-token 401',
  },
  {
    path: 'hub service AMQP CBS',
    token: 'registryRead sr={hub}',
    run: () => putToken(HUB_A, policyToken({ policy: 'registryRead', resource: HUB_A })),
    expected: 'put-token 401',
  },
);

// The hubs' Event Hubs-compatible endpoint: a put-token per audience, the token's sr covering it
// (Event Hubs signs with the key's text), ServiceConnect; a reader needs a token for its address and
// is force-detached when it expires unrenewed.
const expiredAt = anHourAgo();
const expiredTime = new Date(expiredAt * 1000)
  .toISOString()
  .replace('T', ' ')
  .replace(/\.\d{3}Z$/, 'Z');
rows.push(
  {
    path: 'Event Hubs CBS',
    token: 'service sr={partition}',
    run: () =>
      eventHubExchange(partitionAudience(0), eventHubToken({ policy: 'service', audience: partitionAudience(0) })),
    expected: 'put-token 200: OK',
  },
  {
    path: 'Event Hubs CBS',
    token: 'service sr={namespace}',
    run: () =>
      eventHubExchange(
        partitionAudience(0),
        eventHubToken({ policy: 'service', audience: `sb://${eventHubEndpoint().namespace}` }),
      ),
    expected: 'put-token 200: OK',
  },
  {
    path: 'Event Hubs CBS',
    token: 'service sr={partition 1}',
    run: () =>
      eventHubExchange(partitionAudience(0), eventHubToken({ policy: 'service', audience: partitionAudience(1) })),
    expected: 'put-token 401: Unauthorized',
  },
  {
    path: 'Event Hubs CBS',
    token: 'service expired',
    run: () =>
      eventHubExchange(
        partitionAudience(0),
        eventHubToken({ policy: 'service', audience: partitionAudience(0), expiresAt: expiredAt }),
      ),
    expected: `put-token 401: ExpiredToken: The token is expired. Expiration time: '${expiredTime}'`,
  },
  {
    path: 'Event Hubs CBS',
    token: 'service other key',
    run: () =>
      eventHubExchange(
        partitionAudience(0),
        eventHubToken({ policy: 'service', audience: partitionAudience(0), key: generateSymmetricKey(32) }),
      ),
    expected: 'put-token 401: Unauthorized',
  },
  {
    path: 'Event Hubs CBS',
    token: 'registryRead',
    run: () =>
      eventHubExchange(partitionAudience(0), eventHubToken({ policy: 'registryRead', audience: partitionAudience(0) })),
    expected: 'put-token 401: Unauthorized',
  },
  {
    path: 'Event Hubs reader',
    token: 'service sr={partition 0}, reads 1',
    run: () =>
      eventHubExchange(partitionAudience(0), eventHubToken({ policy: 'service', audience: partitionAudience(0) }), 1),
    expected: 'amqp:unauthorized-access',
  },
  {
    path: 'Event Hubs reader',
    token: 'service, expires in 3 s',
    // Detached once its token's se passes (however late the link attaches): no timing asserted.
    run: () =>
      eventHubExchange(
        partitionAudience(2),
        eventHubToken({
          policy: 'service',
          audience: partitionAudience(2),
          expiresAt: Math.floor(Date.now() / 1000) + 3,
        }),
        2,
      ),
    expected: 'amqp:link:detach-forced',
  },
  {
    path: 'Event Hubs SDK getPartitionIds',
    token: 'service sr={namespace}',
    run: () => sdkPartitionIds(eventHubToken({ policy: 'service', audience: `sb://${eventHubEndpoint().namespace}/` })),
    expected: 'partitions 0,1,2,3',
  },
  {
    path: 'Event Hubs SDK getPartitionIds',
    token: 'service expired',
    run: () =>
      sdkPartitionIds(
        eventHubToken({ policy: 'service', audience: `sb://${eventHubEndpoint().namespace}/`, expiresAt: expiredAt }),
      ),
    expected: 'UnauthorizedError',
  },
);

// DPS, the device API: a registration's token is for `{idScope}/registrations/{id}` exactly (skn
// `registration` or none), unexpired; the service API's for the service's host, a policy with the right.
rows.push(
  { path: 'DPS device MQTT', token: 'own', run: () => dpsMqttRegister(registrationToken()), expected: 'res 202' },
  {
    path: 'DPS device MQTT',
    token: 'expired',
    run: () => dpsMqttRegister(registrationToken({ expiresAt: anHourAgo() })),
    expected: 'res 401',
  },
  {
    path: 'DPS device MQTT',
    token: 'sr={idScope}/registrations',
    run: () => dpsMqttRegister(registrationToken({ resource: `${ID_SCOPE}/registrations` })),
    expected: 'res 401',
  },
  {
    path: 'DPS device MQTT',
    token: 'skn=iothubowner',
    run: () => dpsMqttRegister(registrationToken({ keyName: 'iothubowner' })),
    expected: 'res 401',
  },
  { path: 'DPS device HTTPS', token: 'own', run: () => dpsRegister(registrationToken()), expected: 'HTTP 202' },
  {
    path: 'DPS device HTTPS',
    token: 'expired',
    run: () => dpsRegister(registrationToken({ expiresAt: anHourAgo() })),
    expected: 'HTTP 401',
  },
  {
    path: 'DPS device HTTPS',
    token: 'sr=another registration',
    run: () => dpsRegister(registrationToken({ resource: `${ID_SCOPE}/registrations/${REGISTRATION}x` })),
    expected: 'HTTP 401',
  },
  {
    path: 'DPS device AMQP',
    token: 'expired',
    run: () => dpsAmqpRefusal(registrationToken({ expiresAt: anHourAgo() })),
    expected: 'amqp:unauthorized-access',
  },
  {
    path: 'DPS device AMQP',
    token: 'sr={idScope}/registrations',
    run: () => dpsAmqpRefusal(registrationToken({ resource: `${ID_SCOPE}/registrations` })),
    expected: 'amqp:unauthorized-access',
  },
  {
    path: 'DPS service HTTPS',
    token: 'owner sr={host}',
    run: () => dpsService(serviceToken(bed.emulator)),
    expected: 'HTTP 200',
  },
  {
    path: 'DPS service HTTPS',
    token: 'owner expired',
    run: () =>
      dpsService(
        createSasToken({
          resource: 'localhost',
          key: bed.emulator.sharedAccessPolicies[0]?.primaryKey ?? '',
          keyName: 'provisioningserviceowner',
          expiresAt: anHourAgo(),
        }),
      ),
    expected: 'HTTP 401',
  },
  {
    path: 'DPS service HTTPS',
    token: 'owner sr={host}/enrollmentGroups',
    run: () =>
      dpsService(
        createSasToken({
          resource: 'localhost/enrollmentGroups',
          key: bed.emulator.sharedAccessPolicies[0]?.primaryKey ?? '',
          keyName: 'provisioningserviceowner',
          expiresAt: inAnHour(),
        }),
      ),
    expected: 'HTTP 401',
  },
  // WebSockets: the official device SDK over MqttWs and AmqpWs with a policy token on the device's behalf.
  {
    path: 'hub device SDK MqttWs',
    token: 'device sr=/devices/{id}',
    run: () =>
      sdkDeviceSend(policyToken({ policy: 'device', resource: `${HUB_A}/devices/${DEVICE}` }), deviceMqtt.MqttWs),
    expected: 'sent',
  },
  {
    path: 'hub device SDK AmqpWs',
    token: 'device sr=/devices/{id}',
    run: () =>
      sdkDeviceSend(policyToken({ policy: 'device', resource: `${HUB_A}/devices/${DEVICE}` }), deviceAmqp.AmqpWs),
    expected: 'sent',
  },
  {
    path: 'hub device SDK AmqpWs',
    token: 'own key expired',
    run: () => sdkDeviceSend(deviceToken({ expiresAt: anHourAgo() }), deviceAmqp.AmqpWs),
    expected: 'UnauthorizedError',
  },
);

// A connection ends when its token does: MQTT (a device's), SASL PLAIN (the connection's one token).
rows.push(
  {
    path: 'hub device MQTT',
    token: 'own key, expires in 4 s',
    run: () => mqttUntilClosed(4),
    expected: 'CONNACK 0, closed',
  },
  {
    path: 'SASL PLAIN sas.root, c2d',
    token: 'iothubowner, expires in 4 s',
    run: () => saslRootUntilClosed(4),
    expected: 'attached, then amqp:unauthorized-access',
  },
  {
    path: 'hub service AMQP CBS',
    token: 'service, expires in 4 s',
    run: () => servicePutUntilClosed(4),
    expected: 'put-token 200, then amqp:unauthorized-access',
  },
);

// SASL PLAIN `{deviceId}@sas.{hub name}`: the device's token checked in SASL as its put-token is.
rows.push(
  {
    path: 'SASL PLAIN {id}@sas, telemetry',
    token: 'own key',
    run: () => saslDevice(DEVICE, deviceToken()),
    expected: 'attached',
  },
  {
    path: 'SASL PLAIN {id}@sas, telemetry',
    token: 'device sr=/devices',
    run: () => saslDevice(DEVICE, policyToken({ policy: 'device', resource: `${HUB_A}/devices` })),
    expected: 'attached',
  },
  {
    path: 'SASL PLAIN {id}@sas, telemetry',
    token: 'own key expired',
    run: () => saslDevice(DEVICE, deviceToken({ expiresAt: anHourAgo() })),
    expected: 'sasl 2',
  },
  {
    path: 'SASL PLAIN {id}@sas, telemetry',
    token: "{id}x's username",
    run: () => saslDevice(`${DEVICE}x`, deviceToken()),
    expected: 'sasl 2',
  },
);

describe('a SAS token is checked for its sr, se and skn on every path', () => {
  it.each(rows)('$path with $token: $expected', async (row) => {
    expect(await row.run()).toBe(row.expected);
  });

  it('keeps every token out of the log', () => {
    const text = JSON.stringify(logs);
    expect(text).not.toMatch(/sig=|SharedAccessSignature /);
    for (const p of POLICIES) expect(text).not.toContain(p.primaryKey);
  });
});
