import { afterAll, beforeAll, expect, it } from 'vitest';
import { groupDeviceKey, HUB_A } from '../testing/fixtures.js';
import { deviceClient } from '../testing/hub-sdk.js';
import { register } from '../testing/sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

// A device on its hub idles between messages; the SDKs ping every 180 s. The listener's idle
// timeout (meant for DPS's request/response sessions) must not drop it.
let bed: TestBedWithWebhook;
beforeAll(async () => {
  bed = await startTestBedWithWebhook({ limits: { idleTimeoutMs: 500 } });
});
afterAll(async () => {
  await bed?.close();
});

it('keeps an idle hub session open past the idle timeout (its keepalive bounds it)', async () => {
  const id = 'hub-idle-1';
  const key = groupDeviceKey('custom', id);
  await register(bed.emulator, id, key);
  const disconnects: string[] = [];
  bed.emulator.on('hub', (e) => {
    if (e.kind === 'disconnected') disconnects.push(e.deviceId);
  });
  const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: id, key });
  await client.open();
  try {
    // Four idle timeouts of silence.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(disconnects).toEqual([]);
    expect((await client.getTwin()).properties.desired).toBeDefined();
    expect(disconnects).toEqual([]);
  } finally {
    await client.close();
  }
});
