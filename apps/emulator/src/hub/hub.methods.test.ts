// Direct methods with the official packages only: azure-iothub's Client.invokeDeviceMethod (HTTPS,
// POST /twins/{id}/methods) reaching an azure-iot-device MQTT client's onDeviceMethod, and IoT Hub's
// errors. Timeouts are the methods' own (responseTimeoutInSeconds, connectTimeoutInSeconds): the
// tests wait for them, never assert how long anything took.
import https from 'node:https';
import type { LogRecord } from '@dpskit/node-kit';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_A } from '../testing/fixtures.js';
import {
  createDeviceKey,
  type DeviceClient,
  deviceClient,
  type HubServiceClient,
  hubAgent,
  nextHubEvent,
  registryClient,
  serviceClient,
} from '../testing/hub-sdk.js';
import { hubConnect, PINGREQ, rawMqttConnection } from '../testing/mqtt-bytes.js';
import { registryToken } from '../testing/raw-https.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';
import type { HubEvent } from './core/hub-service.js';

/** Connections idle this long are closed: shorter than a method's wait in one test below. */
const IDLE_TIMEOUT_MS = 1_500;

let bed: TestBedWithWebhook;
let service: HubServiceClient;
const logs: LogRecord[] = [];

beforeAll(async () => {
  bed = await startTestBedWithWebhook({
    log: (record) => logs.push(record),
    limits: { idleTimeoutMs: IDLE_TIMEOUT_MS },
  });
  service = serviceClient(bed.emulator, HUB_A);
});
afterAll(async () => {
  await bed?.close();
});

type MethodHandler = Parameters<DeviceClient['onDeviceMethod']>[1];

/** A device of HUB_A created through the registry, its MQTT client opened (not yet listening to methods). */
async function connectedDevice(id: string): Promise<DeviceClient> {
  const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
  const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key });
  await client.open();
  return client;
}

/** Registers `handler` for `name` and resolves once the hub has granted the methods subscription. */
async function listen(client: DeviceClient, name: string, handler: MethodHandler): Promise<void> {
  client.onDeviceMethod(name, handler);
  // onDeviceMethod subscribes in the background; the SDK's enableMethods says when it is done.
  await new Promise<void>((resolve, reject) =>
    (client as unknown as { _enableMethods(cb: (err?: Error) => void): void })._enableMethods((err) =>
      err ? reject(err) : resolve(),
    ),
  );
}

/** What azure-iothub's invokeDeviceMethod raised, with the IoT Hub error it read. */
interface InvokeFailure {
  name: string;
  status: number | undefined;
  errorCodeHeader: unknown;
  /** The error inside the body's `Message` (IoT Hub serializes it there as JSON). */
  error: { errorCode: number; message: string; info?: Record<string, string> };
}

/** azure-iothub's DeviceMethodParams. */
interface MethodParams {
  methodName: string;
  payload?: unknown;
  responseTimeoutInSeconds?: number;
  connectTimeoutInSeconds?: number;
}

async function invokeFailure(deviceId: string, params: MethodParams): Promise<InvokeFailure> {
  const err = await service.invokeDeviceMethod(deviceId, params).then(
    () => {
      throw new Error('the method call succeeded');
    },
    (e: Error & { response?: { statusCode?: number; headers?: Record<string, unknown> }; responseBody?: string }) => e,
  );
  if (err.responseBody === undefined) throw err;
  return {
    name: err.name,
    status: err.response?.statusCode,
    errorCodeHeader: err.response?.headers?.['iothub-errorcode'],
    error: JSON.parse(JSON.parse(err.responseBody).Message),
  };
}

/** Resolves once `done()` holds, checking every 20 ms (no deadline: the test's own timeout bounds it). */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 20));
}

function methodEvent(deviceId: string): Promise<HubEvent> {
  return nextHubEvent(bed.emulator, (e) => e.kind === 'method' && e.deviceId === deviceId);
}

describe('direct methods with the official SDKs', () => {
  it('invokes a method on a connected device and gives the service its status and payload', async () => {
    const id = 'methods-toaster-1';
    const device = await connectedDevice(id);
    try {
      await listen(device, 'reboot', (request, response) => {
        void response.send(200, { echo: request.payload, method: request.methodName });
      });
      await listen(device, 'quiet', (_request, response) => {
        void response.send(404);
      });
      const event = methodEvent(id);
      const { result, message } = await service.invokeDeviceMethod(id, {
        methodName: 'reboot',
        payload: { delay: 3, secret: 'not-in-events' },
        responseTimeoutInSeconds: 60,
      });
      expect(message.statusCode).toBe(200);
      expect(result).toEqual({
        status: 200,
        payload: { echo: { delay: 3, secret: 'not-in-events' }, method: 'reboot' },
      });
      const seen = await event;
      expect(seen).toMatchObject({
        kind: 'method',
        hub: HUB_A,
        methodName: 'reboot',
        outcome: 'answered',
        status: 200,
      });
      expect(JSON.stringify(seen)).not.toContain('not-in-events');
      expect(logs.some((r) => r.event === 'hub.method' && JSON.stringify(r).includes('reboot'))).toBe(true);
      expect(JSON.stringify(logs)).not.toContain('not-in-events');
      // The device's own status passes through, and no payload is payload null.
      const quiet = await service.invokeDeviceMethod(id, { methodName: 'quiet', responseTimeoutInSeconds: 60 });
      expect(quiet.result).toEqual({ status: 404, payload: null });
    } finally {
      await device.close();
    }
  });

  it('answers 404103 DeviceNotOnline for a device not connected, or connected without listening to methods', async () => {
    const id = 'methods-toaster-2';
    await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const offline = await invokeFailure(id, { methodName: 'reboot', responseTimeoutInSeconds: 60 });
    // azure-iothub cannot parse IoT Hub's JSON-in-Message body: a 404 is a plain Error('Not found').
    expect(offline).toMatchObject({
      name: 'Error',
      status: 404,
      errorCodeHeader: 'DeviceNotOnline',
      error: { errorCode: 404103, message: 'Timed out waiting for device to connect.', info: { timeout: '00:00:00' } },
    });
    const device = await connectedDevice('methods-toaster-3');
    try {
      const silent = await invokeFailure('methods-toaster-3', { methodName: 'reboot', responseTimeoutInSeconds: 60 });
      expect(silent.error.errorCode).toBe(404103);
      // IoT Hub's usual cause of a 404103 for a device online, said in the debug line.
      expect(logs.some((r) => r.event === 'hub.method' && r.msg.includes('connected here but not subscribed'))).toBe(
        true,
      );
    } finally {
      await device.close();
    }
    const unknown = await invokeFailure('no-such-device', { methodName: 'reboot' });
    expect(unknown).toMatchObject({ status: 404, errorCodeHeader: 'DeviceNotFound', error: { errorCode: 404001 } });
  });

  it('waits connectTimeoutInSeconds for the device to connect and listen', async () => {
    const id = 'methods-toaster-4';
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const notSent = logs.length;
    const call = service.invokeDeviceMethod(id, {
      methodName: 'wake',
      connectTimeoutInSeconds: 120,
      responseTimeoutInSeconds: 60,
    });
    // The call is in flight, waiting for the device (the hub says so at debug), before it connects.
    await until(() => logs.slice(notSent).some((r) => r.event === 'hub.method' && r.msg.includes('wake not sent')));
    const device = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key });
    await device.open();
    try {
      await listen(device, 'wake', (_request, response) => {
        void response.send(202, 'awake');
      });
      expect((await call).result).toEqual({ status: 202, payload: 'awake' });
    } finally {
      await device.close();
    }
  });

  it('answers 504101 GatewayTimeout when the device does not answer within responseTimeoutInSeconds', async () => {
    const id = 'methods-toaster-5';
    const device = await connectedDevice(id);
    try {
      await listen(device, 'hang', () => {});
      const failure = await invokeFailure(id, { methodName: 'hang', responseTimeoutInSeconds: 5 });
      expect(failure).toMatchObject({
        name: 'GatewayTimeoutError',
        status: 504,
        errorCodeHeader: 'GatewayTimeout',
        error: {
          errorCode: 504101,
          message: 'Timed out waiting for the response from device.',
          info: { timeout: '00:00:05' },
        },
      });
    } finally {
      await device.close();
    }
  });

  it('fails the call at once (504101) when the device disconnects before answering', async () => {
    const id = 'methods-toaster-6';
    const device = await connectedDevice(id);
    await listen(device, 'leave', () => {
      void device.close();
    });
    const failure = await invokeFailure(id, { methodName: 'leave', responseTimeoutInSeconds: 300 });
    expect(failure).toMatchObject({
      status: 504,
      error: { errorCode: 504101, message: 'The device disconnected before it answered the method.' },
    });
  });

  it("lets a call go when its caller's connection closes before the answer: the device's 50 places are freed", async () => {
    const id = 'methods-toaster-abandoned';
    const device = await connectedDevice(id);
    try {
      let received = 0;
      await listen(device, 'hang', (request, response) => {
        received += 1;
        if (request.payload === 'answer') void response.send(200, { ok: true });
      });
      const abandoned: HubEvent[] = [];
      const onEvent = (event: HubEvent) => {
        if (event.kind === 'method' && event.deviceId === id && event.outcome === 'abandoned') abandoned.push(event);
      };
      bed.emulator.on('hub', onEvent);
      // 50 callers (the device's bound) with long timeouts that go away before the device answers.
      const body = JSON.stringify({ methodName: 'hang', responseTimeoutInSeconds: 300, payload: null });
      const requests = Array.from({ length: 50 }, () => {
        const request = https.request({
          host: HUB_A,
          path: `/twins/${id}/methods?api-version=2021-04-12`,
          method: 'POST',
          agent: hubAgent(bed.emulator),
          headers: {
            authorization: registryToken(HUB_A),
            'content-type': 'application/json; charset=utf-8',
            'content-length': Buffer.byteLength(body),
          },
        });
        request.on('error', () => {}); // destroyed below
        request.end(body);
        return request;
      });
      await until(() => received === 50);
      for (const request of requests) request.destroy();
      // The old code kept each call until its 300 s were up: no event, and the next call 403800.
      await until(() => abandoned.length === 50);
      bed.emulator.off('hub', onEvent);
      expect(abandoned[0]).toMatchObject({ methodName: 'hang', outcome: 'abandoned', status: 499 });
      const { result } = await service.invokeDeviceMethod(id, {
        methodName: 'hang',
        payload: 'answer',
        responseTimeoutInSeconds: 60,
      });
      expect(result).toEqual({ status: 200, payload: { ok: true } });
    } finally {
      await device.close();
    }
  });

  it('keeps the service connection open past the idle timeout while the device works', async () => {
    const id = 'methods-toaster-7';
    const device = await connectedDevice(id);
    try {
      // The answer comes after the connection's idle timeout, which would have cut the request.
      await listen(device, 'slow', (_request, response) => {
        setTimeout(() => void response.send(200, { slow: true }), IDLE_TIMEOUT_MS * 2);
      });
      const { result } = await service.invokeDeviceMethod(id, { methodName: 'slow', responseTimeoutInSeconds: 120 });
      expect(result).toEqual({ status: 200, payload: { slow: true } });
    } finally {
      await device.close();
    }
  });

  it('refuses out-of-range timeouts and unsendable names (400004), module methods (404010), a bad key (401)', async () => {
    const id = 'methods-toaster-8';
    await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const tooLong = await invokeFailure(id, { methodName: 'reboot', responseTimeoutInSeconds: 301 });
    expect(tooLong).toMatchObject({
      name: 'ArgumentError',
      status: 400,
      error: { errorCode: 400004, message: 'responseTimeoutInSeconds must be within [5; 300].' },
    });
    expect((await invokeFailure(id, { methodName: 'reboot', connectTimeoutInSeconds: 301 })).error.message).toBe(
      'connectTimeoutInSeconds must be within [0; 300].',
    );
    expect((await invokeFailure(id, { methodName: 'a/b' })).status).toBe(400);
    const module = await service.invokeDeviceMethod(id, 'some-module', { methodName: 'reboot' }).then(
      () => undefined,
      (err: Error & { response?: { statusCode?: number; headers?: Record<string, unknown> } }) => err,
    );
    expect(module?.response?.statusCode).toBe(404);
    expect(module?.response?.headers?.['iothub-errorcode']).toBe('ModuleNotFound');
    const wrongKey = serviceClient(bed.emulator, HUB_A, {
      connectionString: `HostName=${HUB_A};SharedAccessKeyName=iothubowner;SharedAccessKey=${Buffer.alloc(32, 7).toString('base64')}`,
    });
    await expect(wrongKey.invokeDeviceMethod(id, { methodName: 'reboot' })).rejects.toMatchObject({
      name: 'UnauthorizedError',
    });
  });
});

describe('direct methods on the wire (raw MQTT, as IoT Hub documents them)', () => {
  it('publishes $iothub/methods/POST/{name}/?$rid= at QoS 0 with the payload as JSON, and reads the answer', async () => {
    const id = 'methods-raw-1';
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const raw = rawMqttConnection(bed.emulator);
    await raw.write(
      Buffer.concat([
        hubConnect({ hub: HUB_A, deviceId: id, key }),
        mqttPacket.generate({
          cmd: 'subscribe',
          messageId: 1,
          subscriptions: [{ topic: '$iothub/methods/POST/#', qos: 1 }],
        }),
      ]),
    );
    await raw.packets(2);
    expect(raw.received.map((p) => p.cmd)).toEqual(['connack', 'suback']);

    const first = service.invokeDeviceMethod(id, { methodName: 'reboot', payload: { at: 'now' } });
    await raw.packets(3);
    const request = raw.received[2] as mqttPacket.IPublishPacket;
    const match = /^\$iothub\/methods\/POST\/reboot\/\?\$rid=([0-9a-f]+)$/.exec(request.topic);
    expect(match).not.toBeNull();
    expect(request.qos).toBe(0);
    expect(JSON.parse(request.payload.toString())).toEqual({ at: 'now' });
    const rid = match?.[1] as string;
    const answer = (status: number, payload: string, answerRid = rid) =>
      mqttPacket.generate({
        cmd: 'publish',
        topic: `$iothub/methods/res/${status}/?$rid=${answerRid}`,
        payload: Buffer.from(payload),
        qos: 0,
        retain: false,
        dup: false,
      });
    await raw.write(answer(418, '"teapot"'));
    expect((await first).result).toEqual({ status: 418, payload: 'teapot' });

    // An answer for a $rid no call waits for (answered already): dropped with a warning, the
    // connection kept.
    await raw.write(Buffer.concat([answer(200, '{}'), PINGREQ]));
    await raw.packets(4);
    expect(raw.received[3]?.cmd).toBe('pingresp');
    expect(logs.some((r) => r.event === 'hub.method-answer' && r.level === 'warn' && r.msg.includes(rid))).toBe(true);

    // An answer that is no JSON: the service gets 502 (azure-iothub's BadDeviceResponseError).
    const second = invokeFailure(id, { methodName: 'reboot' });
    await raw.packets(5);
    const secondRid = /\$rid=([0-9a-f]+)$/.exec((raw.received[4] as mqttPacket.IPublishPacket).topic)?.[1] as string;
    await raw.write(answer(200, 'not json', secondRid));
    expect(await second).toMatchObject({ name: 'BadDeviceResponseError', status: 502 });
    await raw.write(Buffer.from([0xe0, 0x00]));
    await raw.closed;
  });
});
