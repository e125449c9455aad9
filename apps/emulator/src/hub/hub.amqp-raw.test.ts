// The hubs' AMQP endpoint against a raw rhea client (no SASL, as azure-iot-amqp-base): CBS
// put-token answers and refusals, links refused without authorization or for addresses nobody
// serves, the per-connection link bound; the listener keeps serving the official SDK afterwards,
// and no token reaches a log line.
import { createHmac, X509Certificate } from 'node:crypto';
import { createDeviceSasToken, createSasToken } from '@dpskit/contracts';
import type { LogRecord } from '@dpskit/node-kit';
import rhea, { type Connection, type EventContext } from 'rhea';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDeviceCertificate } from '../testing/certificates.js';
import { HUB_A } from '../testing/fixtures.js';
import { createDeviceKey, deviceClient, Message, registryClient, serviceClient } from '../testing/hub-sdk.js';
import { openRheaConnection } from '../testing/raw-amqp.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';
import { MAX_HUB_LINKS_PER_CONNECTION } from '../transport/amqp.js';
import { MAX_C2D_IN_FLIGHT_PER_CONNECTION } from './amqp-device-c2d-share.js';
import { eventHubName, partitionOf } from './core/eventhub.js';
import { HUB_OWNER_POLICY_NAME, WELL_KNOWN_HUB_KEY } from './core/hub-service.js';
import { MODULE_C2D_REFUSAL } from './core/modules.js';
import { EVENTS_IN_FLIGHT_PER_CONNECTION, RUNTIME_METRIC_CAPABILITY, SELECTOR_FILTER } from './eventhub.js';

let bed: TestBedWithWebhook;
const logs: LogRecord[] = [];

beforeAll(async () => {
  bed = await startTestBedWithWebhook({ log: (record) => logs.push(record) });
});
afterAll(async () => {
  await bed?.close();
});

/** A raw AMQP connection without SASL (a hub client's), open. */
function rawHubConnection(): Promise<Connection> {
  const port = bed.emulator.endpoints.amqp?.port;
  if (port === undefined) throw new Error('the emulator runs without AMQP');
  return openRheaConnection(port, bed.emulator.caCertPem);
}

/** A raw AMQP connection with SASL ANONYMOUS (a key name, no password: as @azure/core-amqp connects), open. */
function anonymousConnection(): Promise<Connection> {
  const port = bed.emulator.endpoints.amqp?.port;
  if (port === undefined) throw new Error('the emulator runs without AMQP');
  return openRheaConnection(port, bed.emulator.caCertPem, { username: 'iothubowner' });
}

/** Sends put-token requests on `$cbs` and resolves with each answer's status and description. */
async function cbs(connection: Connection) {
  const replies = connection.open_receiver({ source: { address: '$cbs' } });
  const requests = connection.open_sender({ target: { address: '$cbs' } });
  await new Promise((resolve) => requests.once('sendable', resolve));
  const answers = new Map<string, (answer: { status: unknown; description: unknown }) => void>();
  replies.on('message', (context: EventContext) => {
    const properties = context.message?.application_properties as Record<string, unknown>;
    answers.get(String(context.message?.correlation_id))?.({
      status: properties['status-code'],
      description: properties['status-description'],
    });
  });
  let n = 0;
  return (properties: Record<string, unknown>, token: string) =>
    new Promise<{ status: unknown; description: unknown }>((resolve) => {
      const id = `put-${++n}`;
      answers.set(id, resolve);
      requests.send({ message_id: id, reply_to: 'cbs', application_properties: properties, body: token });
    });
}

/** Puts an Event Hubs token for `entity` on `connection`'s `$cbs` (as @azure/core-amqp does) and expects 200. */
async function putEventHubToken(connection: Connection, entity: string): Promise<void> {
  // @azure/core-amqp signs with the key's text.
  const audience = `sb://localhost/${entity}`;
  const expiry = Math.ceil(Date.now() / 1000) + 3600;
  const sr = encodeURIComponent(audience);
  const sig = createHmac('sha256', Buffer.from(WELL_KNOWN_HUB_KEY, 'utf8')).update(`${sr}\n${expiry}`).digest('base64');
  const token = `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${expiry}&skn=${HUB_OWNER_POLICY_NAME}`;
  const put = await cbs(connection);
  expect(await put({ operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: audience }, token)).toEqual(
    { status: 200, description: 'OK' },
  );
}

/** An AMQP error's condition (rhea types a peer's error as Error | AmqpError). */
function conditionOf(error: unknown): unknown {
  return (error as { condition?: unknown } | undefined)?.condition;
}

function linkError(link: rhea.Sender | rhea.Receiver): Promise<{ condition?: string; description?: string }> {
  return new Promise((resolve) => {
    const closed = (context: EventContext) => resolve((context.sender ?? context.receiver)?.error as never);
    link.once('sender_close', closed);
    link.once('receiver_close', closed);
  });
}

describe('the hubs over AMQP, raw', () => {
  it('takes a SASL ANONYMOUS connection as a hub client (CBS put-token, then links)', async () => {
    const id = 'amqp-anonymous-device';
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const connection = await anonymousConnection();
    try {
      const put = await cbs(connection);
      const name = `${HUB_A}/devices/${id}`;
      const token = createDeviceSasToken({ hubHostName: HUB_A, deviceId: id, key });
      expect(await put({ operation: 'put-token', type: 'servicebus.windows.net:sastoken', name }, token)).toEqual({
        status: 200,
        description: 'OK',
      });
    } finally {
      connection.close();
    }
  });

  it('answers put-tokens and refuses what it does not serve, then serves the SDK', async () => {
    const id = 'amqp-raw-device';
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const token = createDeviceSasToken({ hubHostName: HUB_A, deviceId: id, key });
    const forged = createDeviceSasToken({
      hubHostName: HUB_A,
      deviceId: id,
      key: Buffer.alloc(32, 7).toString('base64'),
    });
    const connection = await rawHubConnection();
    try {
      // A link before any put-token: the device is not authorized on this connection.
      const early = connection.open_sender({ target: { address: `/devices/${id}/messages/events` } });
      expect(await linkError(early)).toMatchObject({ condition: 'amqp:unauthorized-access' });
      // An address no hub endpoint serves.
      const nowhere = connection.open_sender({ target: { address: '/nowhere' } });
      expect(await linkError(nowhere)).toMatchObject({ condition: 'amqp:not-found' });

      const put = await cbs(connection);
      const sas = { operation: 'put-token', type: 'servicebus.windows.net:sastoken' };
      expect(await put({ ...sas, operation: 'delete-token', name: `${HUB_A}/devices/${id}` }, token)).toMatchObject({
        status: 400,
      });
      expect(await put({ ...sas, name: `elsewhere.azure-devices.net/devices/${id}` }, token)).toMatchObject({
        status: 404,
      });
      expect(await put({ ...sas, name: `${HUB_A}/devices/${id}` }, forged)).toEqual({
        status: 401,
        description:
          'The specified SAS token has an invalid signature. It does not match either the primary or secondary key.',
      });
      expect(await put({ ...sas, name: `${HUB_A}/devices/${id}` }, token)).toEqual({ status: 200, description: 'OK' });
      // Authorized now: the telemetry link attaches and its messages are accepted.
      const events = connection.open_sender({ target: { address: `/devices/${id}/messages/events` } });
      await new Promise((resolve) => events.once('sendable', resolve));
      const outcome = await new Promise<string>((resolve) => {
        events.once('accepted', () => resolve('accepted'));
        events.once('rejected', () => resolve('rejected'));
        events.send({ body: rhea.message.data_section(Buffer.from('raw hello')) });
      });
      expect(outcome).toBe('accepted');
      expect(bed.emulator.telemetry(HUB_A, id).map((record) => record.body.toString())).toEqual(['raw hello']);

      // Past MAX_HUB_LINKS_PER_CONNECTION links over the connection's life, it is closed
      // (amqp:resource-limit-exceeded, said in the listener's limited amqp.link warning).
      const gone = new Promise((resolve) => connection.once('disconnected', resolve));
      for (let i = 0; i < MAX_HUB_LINKS_PER_CONNECTION; i++)
        connection.open_receiver({ source: { address: '/nowhere' } });
      await gone;
      expect(logs.findLast((line) => line.event === 'amqp.link')).toMatchObject({
        level: 'warn',
        condition: 'amqp:resource-limit-exceeded',
      });
    } finally {
      connection.close();
    }

    // The listener serves on.
    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport: 'amqp' });
    await client.open();
    await client.close();
    const text = JSON.stringify(logs);
    for (const secret of [key, token, forged, /sig=/]) expect(text).not.toMatch(secret);
  });

  it('closes a connection whose device token expires unrenewed; a renewed one serves on', async () => {
    // Two devices: a second connection of one device would close the first (one connection per device).
    const id = 'amqp-raw-expiry';
    const other = 'amqp-raw-renewed';
    const registry = registryClient(bed.emulator, HUB_A);
    const key = await createDeviceKey(registry, id);
    const otherKey = await createDeviceKey(registry, other);
    const sasOf = (deviceId: string) => ({
      operation: 'put-token',
      type: 'servicebus.windows.net:sastoken',
      name: `${HUB_A}/devices/${deviceId}`,
    });
    const short = (deviceId: string, deviceKey: string) =>
      createDeviceSasToken({ hubHostName: HUB_A, deviceId, key: deviceKey, ttlSeconds: 2 });
    const unrenewed = await rawHubConnection();
    const renewed = await rawHubConnection();
    try {
      // rhea reports a CLOSE from the server as connection_close (disconnected: a socket that just ended).
      const gone = new Promise<{ condition?: string } | undefined>((resolve) => {
        unrenewed.once('connection_close', (context: EventContext) => resolve(context.connection.error as never));
        unrenewed.once('disconnected', () => resolve(undefined));
      });
      expect(await (await cbs(unrenewed))(sasOf(id), short(id, key))).toMatchObject({ status: 200 });
      const put = await cbs(renewed);
      expect(await put(sasOf(other), short(other, otherKey))).toMatchObject({ status: 200 });
      // The renewal azure-iot-amqp-base makes before a token runs out: a new put-token on the same connection.
      expect(
        await put(sasOf(other), createDeviceSasToken({ hubHostName: HUB_A, deviceId: other, key: otherKey })),
      ).toMatchObject({ status: 200 });
      expect(await gone).toMatchObject({ condition: 'amqp:unauthorized-access' });
      expect(logs.findLast((line) => line.event === 'hub.auth' && line.deviceId === id)).toMatchObject({
        reason: 'expired',
      });
      expect(renewed.is_open()).toBe(true);
      const events = renewed.open_sender({ target: { address: `/devices/${other}/messages/events` } });
      await new Promise((resolve) => events.once('sendable', resolve));
      const outcome = await new Promise<string>((resolve) => {
        events.once('accepted', () => resolve('accepted'));
        events.once('rejected', () => resolve('rejected'));
        events.send({ body: rhea.message.data_section(Buffer.from('still here')) });
      });
      expect(outcome).toBe('accepted');
    } finally {
      unrenewed.close();
      renewed.close();
    }
  });

  it("bounds the links open at once, not the ATTACHes over a connection's life", async () => {
    const id = 'amqp-raw-reattach';
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const token = createDeviceSasToken({ hubHostName: HUB_A, deviceId: id, key });
    const connection = await rawHubConnection();
    const address = `/devices/${id}/messages/events`;
    const attached = (sender: rhea.Sender) => new Promise((resolve) => sender.once('sendable', resolve));
    try {
      const put = await cbs(connection);
      const sas = { operation: 'put-token', type: 'servicebus.windows.net:sastoken' };
      expect(await put({ ...sas, name: `${HUB_A}/devices/${id}` }, token)).toEqual({ status: 200, description: 'OK' });
      // A device that re-attaches its link (as the SDK does after a link error) twice the bound's
      // times over one connection: each detached link leaves the count, so it is served throughout.
      for (let i = 0; i < 2 * MAX_HUB_LINKS_PER_CONNECTION; i++) {
        const events = connection.open_sender({ target: { address } });
        await attached(events);
        const detached = new Promise((resolve) => events.once('sender_close', resolve));
        events.close();
        await detached;
      }
      const events = connection.open_sender({ target: { address } });
      await attached(events);
      const outcome = await new Promise<string>((resolve) => {
        events.once('accepted', () => resolve('accepted'));
        events.once('rejected', () => resolve('rejected'));
        events.send({ body: rhea.message.data_section(Buffer.from('after re-attaching')) });
      });
      expect(outcome).toBe('accepted');
      expect(connection.is_open()).toBe(true);

      // Links open at once: up to the bound (CBS's two and the telemetry link count) all attach;
      // the next one closes the connection.
      const more = [];
      for (let i = 3; i < MAX_HUB_LINKS_PER_CONNECTION; i++) more.push(connection.open_sender({ target: { address } }));
      await Promise.all(more.map(attached));
      expect(connection.is_open()).toBe(true);
      // The server's CLOSE (the ATTACH came alone, so the exchange completes: not 'disconnected').
      const gone = new Promise((resolve) => {
        connection.once('connection_close', () => resolve(connection.error));
        connection.once('disconnected', () => resolve(connection.error));
      });
      connection.open_sender({ target: { address } });
      expect(await gone).toMatchObject({ condition: 'amqp:resource-limit-exceeded' });
      expect(logs.findLast((line) => line.event === 'amqp.link')).toMatchObject({
        level: 'warn',
        condition: 'amqp:resource-limit-exceeded',
      });
    } finally {
      connection.close();
    }
  });

  it('ends the sessions of a connection it closes (a newer connection of the device) before the CLOSE', async () => {
    const id = 'amqp-raw-newer';
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const token = createDeviceSasToken({ hubHostName: HUB_A, deviceId: id, key });
    const sas = { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: `${HUB_A}/devices/${id}` };
    const older = await rawHubConnection();
    const newer = await rawHubConnection();
    try {
      // What rhea reports, in order: the END's error (so azure-iot-amqp-base drops its links at once
      // instead of detaching each and waiting for answers a closed connection never gives), then the CLOSE.
      const seen: string[] = [];
      const gone = new Promise<void>((resolve) => {
        older.on('session_error', (context: EventContext) => seen.push(`end ${conditionOf(context.session?.error)}`));
        older.once('connection_close', () => {
          seen.push(`close ${conditionOf(older.error)}`);
          resolve();
        });
        older.once('disconnected', () => resolve());
      });
      expect(await (await cbs(older))(sas, token)).toMatchObject({ status: 200 });
      expect(await (await cbs(newer))(sas, token)).toMatchObject({ status: 200 });
      await gone;
      expect(seen).toEqual(['end amqp:unauthorized-access', 'close amqp:unauthorized-access']);
      expect(newer.is_open()).toBe(true);
    } finally {
      older.close();
      newer.close();
    }
  });

  it('ends the sessions of an X.509 device connection too, whose first link made it a hub connection (after its BEGIN)', async () => {
    const id = 'amqp-raw-x509-disabled';
    const certificate = await createTestDeviceCertificate(id);
    const registry = registryClient(bed.emulator, HUB_A);
    await registry.create({
      deviceId: id,
      status: 'enabled',
      authentication: { x509Thumbprint: { primaryThumbprint: new X509Certificate(certificate.cert).fingerprint } },
    });
    // As azure-iot-device-amqp with a certificate: no SASL, an OPEN naming the gateway (not a hub),
    // so the listener decides at the first link, once the session is open.
    const port = bed.emulator.endpoints.amqp?.port ?? 0;
    const connection = await openRheaConnection(port, bed.emulator.caCertPem, {
      cert: certificate.cert,
      key: certificate.key,
    });
    try {
      const seen: string[] = [];
      const gone = new Promise<void>((resolve) => {
        connection.on('session_error', (context: EventContext) =>
          seen.push(`end ${conditionOf(context.session?.error)}`),
        );
        connection.once('connection_close', () => {
          seen.push(`close ${conditionOf(connection.error)}`);
          resolve();
        });
        connection.once('disconnected', () => resolve());
      });
      const events = connection.open_sender({ target: { address: `/devices/${id}/messages/events` } });
      await new Promise((resolve) => events.once('sendable', resolve));
      await registry.update({ deviceId: id, status: 'disabled' });
      await gone;
      expect(seen).toEqual(['end amqp:unauthorized-access', 'close amqp:unauthorized-access']);
    } finally {
      connection.close();
    }
  });
});

describe('cloud-to-device messages and modules', () => {
  it("refuses one addressed to a module (as the C# service SDK's SendAsync(deviceId, moduleId) sends it) and a module's C2D link", async () => {
    const registry = registryClient(bed.emulator, HUB_A);
    const id = 'amqp-raw-module-c2d';
    await createDeviceKey(registry, id);
    const added = (await registry.addModule({ deviceId: id, moduleId: 'sensor' })).responseBody;
    const moduleKey = added.authentication?.symmetricKey?.primaryKey ?? '';
    const connection = await rawHubConnection();
    try {
      const put = await cbs(connection);
      const sas = { operation: 'put-token', type: 'servicebus.windows.net:sastoken' };
      const expiresAt = Math.ceil(Date.now() / 1000) + 3600;
      // The service: a policy token (sr={hub}), then a message whose `to` names the module.
      const service = createSasToken({
        resource: HUB_A,
        key: WELL_KNOWN_HUB_KEY,
        keyName: HUB_OWNER_POLICY_NAME,
        expiresAt,
      });
      expect(await put({ ...sas, name: HUB_A }, service)).toEqual({ status: 200, description: 'OK' });
      const sender = connection.open_sender({ target: { address: '/messages/devicebound' } });
      await new Promise((resolve) => sender.once('sendable', resolve));
      const rejected = new Promise<unknown>((resolve) => {
        sender.once('rejected', (context: EventContext) => resolve(context.delivery?.remote_state?.error));
        sender.once('accepted', () => resolve('accepted'));
      });
      sender.send({ to: `/devices/${id}/modules/sensor/messages/deviceBound`, body: 'to a module' });
      expect(await rejected).toMatchObject({
        condition: 'com.microsoft:argument-error',
        description: MODULE_C2D_REFUSAL,
      });
      expect(bed.emulator.cloudToDeviceQueue(id, HUB_A)).toEqual([]);
      // The module: its own put-token, then a receiver on its cloud-to-device address.
      const module = createSasToken({ resource: `${HUB_A}/devices/${id}/modules/sensor`, key: moduleKey, expiresAt });
      expect(await put({ ...sas, name: `${HUB_A}/devices/${id}/modules/sensor` }, module)).toEqual({
        status: 200,
        description: 'OK',
      });
      const c2d = connection.open_receiver({
        source: { address: `/devices/${id}/modules/sensor/messages/devicebound` },
      });
      expect(await linkError(c2d)).toMatchObject({ condition: 'amqp:not-found', description: MODULE_C2D_REFUSAL });
      // The connection serves on: the module's telemetry link attaches.
      const events = connection.open_sender({ target: { address: `/devices/${id}/modules/sensor/messages/events` } });
      await new Promise((resolve) => events.once('sendable', resolve));
    } finally {
      connection.close();
    }
  });
});

describe('several devices on one connection (as the C SDK multiplexes them)', () => {
  it("share the connection's cloud-to-device places: held unsettled they wait, the connection stays open", async () => {
    const registry = registryClient(bed.emulator, HUB_A);
    const ids = ['amqp-raw-mux-1', 'amqp-raw-mux-2', 'amqp-raw-mux-3'];
    const connection = await rawHubConnection();
    const closed = new Promise<unknown>((resolve) => {
      connection.once('connection_close', () => resolve(connection.error));
      connection.once('disconnected', () => resolve(connection.error ?? 'disconnected'));
    });
    try {
      const put = await cbs(connection);
      const sas = { operation: 'put-token', type: 'servicebus.windows.net:sastoken' };
      const held: rhea.Delivery[] = [];
      const received = new Map(ids.map((id) => [id, 0]));
      let settleAll = false;
      let onReceived = () => {};
      for (const id of ids) {
        const key = await createDeviceKey(registry, id);
        const token = createDeviceSasToken({ hubHostName: HUB_A, deviceId: id, key });
        expect(await put({ ...sas, name: `${HUB_A}/devices/${id}` }, token)).toEqual({
          status: 200,
          description: 'OK',
        });
        // A full queue each (50), more than the connection's unsettled bound (128) together.
        for (let n = 0; n < 50; n++) bed.emulator.sendCloudToDevice(id, { body: `${id} #${n}` }, HUB_A);
        const c2d = connection.open_receiver({
          source: { address: `/devices/${id}/messages/devicebound` },
          autoaccept: false,
          credit_window: 60,
        });
        c2d.on('message', (context: EventContext) => {
          received.set(id, (received.get(id) ?? 0) + 1);
          if (settleAll) context.delivery?.accept();
          else if (context.delivery) held.push(context.delivery);
          onReceived();
        });
      }
      const total = () => [...received.values()].reduce((a, b) => a + b, 0);
      // Each wait ends early, failing, if the hub closes the connection meanwhile.
      const open = <T>(waiting: Promise<T>) =>
        Promise.race([
          waiting,
          closed.then((error) => {
            throw new Error(`connection closed after ${total()}: ${JSON.stringify(error)}`);
          }),
        ]);
      const reached = (count: number) =>
        new Promise<void>((resolve) => {
          onReceived = () => total() >= count && resolve();
          onReceived();
        });
      await open(reached(MAX_C2D_IN_FLIGHT_PER_CONNECTION));
      // A twin round trip on the same connection: had the hub sent more, they would have come before its answer.
      const replies = connection.open_receiver({ source: { address: `/devices/${ids[0]}/twin` } });
      const requests = connection.open_sender({ target: { address: `/devices/${ids[0]}/twin` } });
      await new Promise((resolve) => requests.once('sendable', resolve));
      const answered = new Promise((resolve) => replies.once('message', resolve));
      requests.send({ correlation_id: 'get-1', message_annotations: { operation: 'GET' }, body: undefined });
      await open(answered);
      expect(total()).toBe(MAX_C2D_IN_FLIGHT_PER_CONNECTION);
      expect(connection.is_open()).toBe(true);
      // Settled, the rest comes: every device gets its 50, the connection never closed.
      settleAll = true;
      const all = reached(150);
      for (const delivery of held.splice(0)) delivery.accept();
      await open(all);
      expect(Object.fromEntries(received)).toEqual(Object.fromEntries(ids.map((id) => [id, 50])));
      expect(await Promise.race([closed, Promise.resolve('open')])).toBe('open');
    } finally {
      connection.close();
    }
  });
});

describe('one device of several on a connection leaves it', () => {
  it('disabled, deleted, connected elsewhere or its token expired: its links are detached, the others serve on', async () => {
    const registry = registryClient(bed.emulator, HUB_A);
    const [disabled, deleted, moved, expiring, staying] = ['disabled', 'deleted', 'moved', 'expiring', 'staying'].map(
      (name) => `amqp-raw-leave-${name}`,
    );
    const ids = [disabled, deleted, moved, expiring, staying] as string[];
    const keys = new Map<string, string>();
    for (const id of ids) keys.set(id, await createDeviceKey(registry, id));
    const sas = { operation: 'put-token', type: 'servicebus.windows.net:sastoken' };
    const connection = await rawHubConnection();
    const elsewhere = await rawHubConnection();
    const closed = new Promise<unknown>((resolve) => {
      connection.once('connection_close', () => resolve(connection.error));
      connection.once('disconnected', () => resolve(connection.error ?? 'disconnected'));
    });
    try {
      const put = await cbs(connection);
      const links = new Map<string, rhea.Sender>();
      for (const id of ids) {
        const token = createDeviceSasToken({
          hubHostName: HUB_A,
          deviceId: id,
          key: keys.get(id) ?? '',
          // Not renewed: it runs out while the connection serves the others.
          ...(id === expiring ? { ttlSeconds: 2 } : {}),
        });
        expect(await put({ ...sas, name: `${HUB_A}/devices/${id}` }, token)).toMatchObject({ status: 200 });
        const events = connection.open_sender({ target: { address: `/devices/${id}/messages/events` } });
        await new Promise((resolve) => events.once('sendable', resolve));
        links.set(id, events);
      }
      // A direct method call to the staying device, in flight (its request held unanswered) while the others leave.
      const requests = connection.open_receiver({ source: { address: `/devices/${staying}/methods/devicebound` } });
      const answers = connection.open_sender({ target: { address: `/devices/${staying}/methods/devicebound` } });
      await new Promise((resolve) => answers.once('sendable', resolve));
      const request = new Promise<rhea.Message['correlation_id']>((resolve) =>
        requests.once('message', (context: EventContext) => resolve(context.message?.correlation_id)),
      );
      const call = serviceClient(bed.emulator, HUB_A)
        .invokeDeviceMethod(staying as string, {
          methodName: 'hold',
          responseTimeoutInSeconds: 300,
          connectTimeoutInSeconds: 30,
        })
        .then(
          (answer) => answer.result,
          (error: Error) => error.name,
        );
      const rid = await request;
      const detached = (id: string) => linkError(links.get(id) as rhea.Sender);
      const ends = ids.filter((id) => id !== staying).map(detached);
      await registry.update({ deviceId: disabled as string, status: 'disabled' });
      await registry.delete(deleted as string);
      expect(
        await (await cbs(elsewhere))(
          { ...sas, name: `${HUB_A}/devices/${moved}` },
          createDeviceSasToken({ hubHostName: HUB_A, deviceId: moved as string, key: keys.get(moved as string) ?? '' }),
        ),
      ).toMatchObject({ status: 200 });
      // On a connection the hub closed instead, no link of it would report its end: fail at once.
      const gone = closed.then((error) => {
        throw new Error(`the connection was closed: ${JSON.stringify(error)}`);
      });
      expect(await Promise.race([Promise.all(ends), gone])).toMatchObject([
        { condition: 'amqp:unauthorized-access', description: 'The device was disabled.' },
        { condition: 'amqp:unauthorized-access', description: 'The device was deleted.' },
        { condition: 'amqp:unauthorized-access', description: 'The device connected again on another connection.' },
        {
          condition: 'amqp:unauthorized-access',
          description: `The SAS token of device ${expiring} expired: put a new one on $cbs before it does.`,
        },
      ]);
      // The connection serves on: the staying device's message is stored, a twin GET answered.
      const outcome = await new Promise<string>((resolve) => {
        const events = links.get(staying as string) as rhea.Sender;
        events.once('accepted', () => resolve('accepted'));
        events.once('rejected', () => resolve('rejected'));
        events.send({ body: rhea.message.data_section(Buffer.from('still here')) });
      });
      expect(outcome).toBe('accepted');
      // Its method call went on (the others' leaving ended none of its calls): answered now.
      answers.send({
        correlation_id: rid,
        application_properties: { 'IoThub-status': 200 },
        body: rhea.message.data_section(Buffer.from('{"held":true}')),
      });
      expect(await call).toEqual({ status: 200, payload: { held: true } });
      expect(await Promise.race([closed, Promise.resolve('open')])).toBe('open');
      // The one that left is no longer authorized here: a new link of it is refused.
      const again = connection.open_sender({ target: { address: `/devices/${disabled}/messages/events` } });
      expect(await linkError(again)).toMatchObject({ condition: 'amqp:unauthorized-access' });
      const states = async (id: string) => (await registry.get(id)).responseBody.connectionState;
      expect(await states(disabled as string)).toBe('Disconnected');
      expect(await states(expiring as string)).toBe('Disconnected');
      expect(await states(moved as string)).toBe('Connected');
      expect(await states(staying as string)).toBe('Connected');
    } finally {
      connection.close();
      elsewhere.close();
    }
  });
});

describe('a device link with little credit', () => {
  it("takes no more of the connection's cloud-to-device places than its credit: the other devices get theirs", async () => {
    const registry = registryClient(bed.emulator, HUB_A);
    // Two full queues (50 each: more than the connection's 96 places together), then one message.
    const queued = { 'amqp-raw-credit-c2d-1': 50, 'amqp-raw-credit-c2d-2': 50, 'amqp-raw-credit-c2d-3': 1 };
    const connection = await rawHubConnection();
    try {
      const put = await cbs(connection);
      const arrived: Promise<string>[] = [];
      for (const [id, count] of Object.entries(queued)) {
        const key = await createDeviceKey(registry, id);
        const token = createDeviceSasToken({ hubHostName: HUB_A, deviceId: id, key });
        expect(
          await put(
            { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: `${HUB_A}/devices/${id}` },
            token,
          ),
        ).toEqual({ status: 200, description: 'OK' });
        for (let n = 0; n < count; n++) bed.emulator.sendCloudToDevice(id, { body: `${id} #${n}` }, HUB_A);
        // Credit for one message, held unsettled: the device takes one of the connection's places.
        const c2d = connection.open_receiver({
          source: { address: `/devices/${id}/messages/devicebound` },
          autoaccept: false,
          credit_window: 0,
        });
        await new Promise((resolve) => c2d.once('receiver_open', resolve));
        arrived.push(new Promise((resolve) => c2d.once('message', () => resolve(id))));
        c2d.add_credit(1);
      }
      // rhea counts a send against the credit only as it writes it: read before that, the credit
      // let the first two links each take places up to their 50 (1 sent, the rest queued in rhea
      // behind credit the device never gave), and the third device's message never came.
      expect(await Promise.all(arrived)).toEqual(Object.keys(queued));
      expect(connection.is_open()).toBe(true);
    } finally {
      connection.close();
    }
  });
});

describe('deliveries of a link the client detached unsettled', () => {
  it('do not hold up the rest of the session (rhea frees its delivery buffer oldest first)', async () => {
    const id = 'amqp-raw-stuck-delivery';
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const token = createDeviceSasToken({ hubHostName: HUB_A, deviceId: id, key });
    const connection = await rawHubConnection();
    try {
      const put = await cbs(connection);
      const sas = { operation: 'put-token', type: 'servicebus.windows.net:sastoken' };
      expect(await put({ ...sas, name: `${HUB_A}/devices/${id}` }, token)).toEqual({ status: 200, description: 'OK' });
      // A C2D message received and never settled, its link detached, the delivery forgotten by the
      // client (as the .NET SDK's AMQP stack forgets a closed link's; rhea's own would keep it).
      bed.emulator.sendCloudToDevice(id, { body: 'left unsettled' });
      const c2d = connection.open_receiver({
        source: { address: `/devices/${id}/messages/devicebound` },
        autoaccept: false,
        credit_window: 1,
      });
      const held = await new Promise<rhea.Delivery | undefined>((resolve) =>
        c2d.once('message', (context: EventContext) => resolve(context.delivery)),
      );
      const detached = new Promise((resolve) => c2d.once('receiver_close', resolve));
      c2d.close();
      await detached;
      if (held) {
        (held as { remote_settled: boolean }).remote_settled = true;
        held.update(true);
      }
      // More answers on the same session than rhea's delivery buffer holds (2048): twin GETs.
      const total = 2100;
      const replies = connection.open_receiver({ source: { address: `/devices/${id}/twin` }, credit_window: 20 });
      const requests = connection.open_sender({ target: { address: `/devices/${id}/twin` } });
      let answered = 0;
      const outcome = new Promise<string>((resolve) => {
        replies.on('message', () => {
          if (++answered === total) resolve('all answered');
        });
        connection.once('connection_close', () => resolve(`closed after ${answered}`));
        connection.once('disconnected', () => resolve(`disconnected after ${answered}`));
      });
      let sent = 0;
      const send = () => {
        while (requests.sendable() && sent < total)
          requests.send({
            correlation_id: `get-${sent++}`,
            message_annotations: { operation: 'GET' },
            body: undefined,
          });
      };
      requests.on('sendable', send);
      expect(await outcome).toBe('all answered');
    } finally {
      connection.close();
    }
  });
});

describe("a client that leaves one of the built-in endpoint's events unsettled", () => {
  it('has its connection closed when the session can hold no more, and the emulator goes on', async () => {
    const id = 'amqp-raw-unsettled-event';
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const device = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport: 'mqtt' });
    await device.open();
    const entity = eventHubName(HUB_A);
    const connection = await rawHubConnection();
    const closed = new Promise((resolve) => {
      connection.once('connection_close', () => resolve(connection.error));
      connection.once('disconnected', () => resolve(connection.error));
    });
    try {
      await putEventHubToken(connection, entity);
      // A reader of the device's partition (from latest) that settles nothing by itself.
      const reader = connection.open_receiver({
        source: { address: `${entity}/ConsumerGroups/$Default/Partitions/${partitionOf(id)}` },
        autoaccept: false,
        credit_window: 10,
      });
      await new Promise((resolve) => reader.once('receiver_open', resolve));
      const first = new Promise<void>((resolve) => {
        // The first event is held unsettled; any later one would be accepted.
        reader.once('message', () => {
          reader.on('message', (context: EventContext) => context.delivery?.accept());
          resolve();
        });
      });
      await device.sendEvent(new Message('held'));
      await first;
      // rhea keeps every delivery of the session behind the unsettled one (2048 at most): the
      // management node's answers, settled at once, fill the rest.
      const replies = connection.open_receiver({ source: { address: '$management' }, target: { address: 'replies' } });
      const requests = connection.open_sender({ target: { address: '$management' } });
      const fill = 2047;
      let sent = 0;
      const answered = new Promise<void>((resolve) => {
        let n = 0;
        replies.on('message', () => {
          if (++n === fill) resolve();
        });
      });
      const send = () => {
        while (requests.sendable() && sent < fill)
          requests.send({
            message_id: `read-${sent++}`,
            reply_to: 'replies',
            application_properties: { operation: 'READ', name: entity, type: 'com.microsoft:eventhub' },
            body: undefined,
          });
      };
      requests.on('sendable', send);
      send();
      await answered;
      // The next event has no room: the connection is closed, not the process.
      await device.sendEvent(new Message('no room'));
      expect(await closed).toMatchObject({ condition: 'amqp:resource-limit-exceeded' });
      expect(logs.findLast((line) => line.event === 'amqp.unsettled')).toMatchObject({
        level: 'warn',
        condition: 'amqp:resource-limit-exceeded',
      });
      expect(await registryClient(bed.emulator, HUB_A).get(id)).toMatchObject({
        responseBody: { deviceId: id },
      });
    } finally {
      connection.close();
      await device.close();
    }
  });
});

/** A hub AMQP connection with an Event Hubs token put, and a promise of its end (with the server's error, if any). */
async function eventHubConnection(entity: string) {
  const connection = await rawHubConnection();
  const closed = new Promise<{ closed: unknown }>((resolve) => {
    connection.once('connection_close', () => resolve({ closed: connection.error }));
    connection.once('disconnected', () => resolve({ closed: connection.error }));
  });
  await putEventHubToken(connection, entity);
  return { connection, closed };
}

/**
 * A reader of `address` from its earliest event on a new session of `connection`, settling none:
 * its session and 'all received' once `count` events came, or the connection's end. Its credit
 * goes once the server's ATTACH is in, as @azure/event-hubs gives it, or with its own ATTACH
 * (`creditWithAttach`: AMQP lets a receiver grant credit at once).
 */
async function readEarliest(
  { connection, closed }: { connection: Connection; closed: Promise<{ closed: unknown }> },
  address: string,
  count: number,
  { creditWithAttach = false, desiredCapability }: { creditWithAttach?: boolean; desiredCapability?: string } = {},
) {
  const session = (connection as Connection & { create_session(): rhea.Session }).create_session();
  session.begin();
  const reader = session.open_receiver({
    source: {
      address,
      filter: { [SELECTOR_FILTER]: rhea.types.wrap_described("amqp.annotation.x-opt-offset > '-1'", 0x468c00000004) },
    },
    autoaccept: false,
    credit_window: 0,
    ...(desiredCapability ? { desired_capabilities: desiredCapability } : {}),
  } as never);
  if (!creditWithAttach) await new Promise((resolve) => reader.once('receiver_open', resolve));
  reader.add_credit(count);
  let received = 0;
  const all = new Promise<string>((resolve) =>
    reader.on('message', () => {
      if (++received === count) resolve('all received');
    }),
  );
  const outcome = await Promise.race([all, closed]);
  // The capabilities the server's ATTACH offered (rhea reads them from it).
  const offered = [(reader as unknown as { offered_capabilities?: unknown }).offered_capabilities].flat();
  return { session, outcome, offered: offered.filter((c) => c !== undefined).map(String) };
}

/** A device of HUB_A over MQTT that has sent `count` events (all on its partition), and that partition's address. */
async function deviceWithEvents(id: string, count: number) {
  const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
  const device = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport: 'mqtt' });
  await device.open();
  await Promise.all(Array.from({ length: count }, (_, i) => device.sendEvent(new Message(`e${i}`))));
  return { device, address: `${eventHubName(HUB_A)}/ConsumerGroups/$Default/Partitions/${partitionOf(id)}` };
}

describe('partition readers on raw sessions', () => {
  it('of a session the client ends go with it: a reader on a new session of the connection is sent events', async () => {
    // As many events as a connection may have in flight.
    const { device, address } = await deviceWithEvents('amqp-raw-ended-reader', EVENTS_IN_FLIGHT_PER_CONNECTION);
    const client = await eventHubConnection(eventHubName(HUB_A));
    try {
      const first = await readEarliest(client, address, EVENTS_IN_FLIGHT_PER_CONNECTION);
      expect(first.outcome).toBe('all received');
      // The client ends that session without detaching its reader (AMQP: the END detaches it).
      const ended = new Promise((resolve) => first.session.once('session_close', resolve));
      first.session.close();
      await ended;
      // A reader on a new session is sent events: the ended one's are no longer in flight (they
      // counted, unsettled, against the connection's 100 and its 128 unsettled, for its whole life).
      const second = await readEarliest(client, address, 50);
      expect(second.outcome).toBe('all received');
      expect(client.connection.is_open()).toBe(true);
    } finally {
      client.connection.close();
      await device.close();
    }
  });

  it("take no more of the connection's events in flight than their credit: a reader of another partition is sent its own", async () => {
    // More events on one partition than a connection may have in flight, one on another partition.
    const busy = await deviceWithEvents('amqp-raw-credit-busy', EVENTS_IN_FLIGHT_PER_CONNECTION + 10);
    const quietId = ['amqp-raw-credit-quiet', 'amqp-raw-credit-quiet-2', 'amqp-raw-credit-quiet-3'].find(
      (id) => partitionOf(id) !== partitionOf('amqp-raw-credit-busy'),
    );
    const quiet = await deviceWithEvents(quietId ?? '', 1);
    const client = await eventHubConnection(eventHubName(HUB_A));
    try {
      // A reader with credit for 10 that settles none: 10 events of the connection's 100 in flight.
      expect((await readEarliest(client, busy.address, 10)).outcome).toBe('all received');
      // rhea counts a send against the link's credit only as it writes it: read before that, the
      // credit let the first reader's pump go on until it held all 100 places (10 sent, 90 queued
      // in rhea behind its credit), and this reader never got an event.
      expect((await readEarliest(client, quiet.address, 1)).outcome).toBe('all received');
      expect(client.connection.is_open()).toBe(true);
    } finally {
      client.connection.close();
      await busy.device.close();
      await quiet.device.close();
    }
  });

  it('that grant credit with their ATTACH get the ATTACH answered before their first event', async () => {
    const { device, address } = await deviceWithEvents('amqp-raw-credit-with-attach', 3);
    const client = await eventHubConnection(eventHubName(HUB_A));
    try {
      // rhea writes a session's transfers before its links' ATTACHes: the events came first and
      // the client, knowing no link on their handle, dropped the connection ("Invalid handle 0").
      // The ATTACH is the endpoint's own: a capability the reader asked for is offered back.
      expect(
        await readEarliest(client, address, 3, {
          creditWithAttach: true,
          desiredCapability: RUNTIME_METRIC_CAPABILITY,
        }),
      ).toMatchObject({ outcome: 'all received', offered: [RUNTIME_METRIC_CAPABILITY] });
      expect(client.connection.is_open()).toBe(true);
    } finally {
      client.connection.close();
      await device.close();
    }
  });
});
