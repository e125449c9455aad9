// The emulated hubs over AMQP with the official packages only: azure-iot-device's Client over
// azure-iot-device-amqp's Amqp (TLS, GatewayHostName=localhost:<amqp port>) and AmqpWs
// (wss://{hub}:443/$iothub/websocket through emulatorAgent), on the listener DPS's AMQP device API
// shares. No timing is asserted.
import type { LogRecord } from '@dpskit/node-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupDeviceKey, HUB_A } from '../testing/fixtures.js';
import {
  createDeviceKey,
  deviceClient,
  expectRefused,
  type HubDeviceTransport,
  nextHubEvent,
  registryClient,
} from '../testing/hub-sdk.js';
import { register } from '../testing/sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

let bed: TestBedWithWebhook;
const logs: LogRecord[] = [];

beforeAll(async () => {
  bed = await startTestBedWithWebhook({ log: (record) => logs.push(record) });
});
afterAll(async () => {
  await bed?.close();
});

const transports: HubDeviceTransport[] = ['amqp', 'amqp-ws'];

describe.each(transports)('a hub device over %s (azure-iot-device-amqp)', (transport) => {
  it('connects with its SAS token (CBS put-token) and the registry shows it connected', async () => {
    const id = `amqp-open-${transport}`;
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const connected = nextHubEvent(bed.emulator, (e) => e.kind === 'connected' && e.deviceId === id);
    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport });
    await client.open();
    try {
      expect(await connected).toMatchObject({ hub: HUB_A, transport: 'amqp' });
      const device = (await registryClient(bed.emulator, HUB_A).get(id)).responseBody;
      expect(device.connectionState).toBe('Connected');
    } finally {
      const disconnected = nextHubEvent(bed.emulator, (e) => e.kind === 'disconnected' && e.deviceId === id);
      // The SDK closes properly (AMQP CLOSE): rhea says so with connection_close, not disconnected.
      await client.close();
      expect(await disconnected).toMatchObject({ hub: HUB_A, transport: 'amqp' });
      expect((await registryClient(bed.emulator, HUB_A).get(id)).responseBody.connectionState).toBe('Disconnected');
    }
  });

  it('is refused with another key, on a hub it is not in, and on a hub that is not linked', async () => {
    const id = `amqp-refused-${transport}`;
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const other = await createDeviceKey(registryClient(bed.emulator, HUB_A), `${id}-other`);
    await expectRefused(bed.emulator, { hub: HUB_A, deviceId: id, key: other, transport }, 'signature-mismatch');
    await expectRefused(bed.emulator, { hub: HUB_A, deviceId: `${id}-missing`, key, transport }, 'device-not-found');
    // Over WebSockets the SDK dials the hub's own name, which the server certificate does not cover
    // for a hub that is not linked: TLS refuses it before AMQP (and the SDK retries for ever).
    if (transport === 'amqp')
      await expectRefused(
        bed.emulator,
        { hub: 'unlinked.azure-devices.net', deviceId: id, key, transport },
        'unknown-hub',
      );
    // No key or signature reaches a log line.
    const text = JSON.stringify(logs);
    expect(text).not.toContain(key);
    expect(text).not.toContain(other);
    expect(text).not.toMatch(/sig=/);
  });
});

describe('the AMQP listener tells DPS from the hubs', () => {
  it('a DPS AMQP registration and a hub AMQP device share the port', async () => {
    const id = 'amqp-shared-port';
    const key = groupDeviceKey('custom', id);
    const state = await register(bed.emulator, id, key, { transport: 'amqp' });
    expect(state).toMatchObject({ status: 'assigned', assignedHub: HUB_A, deviceId: id });
    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key, transport: 'amqp' });
    await client.open();
    await client.close();
  });
});
