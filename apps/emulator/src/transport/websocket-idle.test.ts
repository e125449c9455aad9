import type { LogRecord } from '@dpskit/node-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_A } from '../testing/fixtures.js';
import { createDeviceKey, registryClient } from '../testing/hub-sdk.js';
import { dpsConnect, hubConnect, SUBSCRIBE_TWIN, TWIN_GET } from '../testing/mqtt-bytes.js';
import { closeOf, openMqttWebSocket, openWebSocket } from '../testing/raw-websocket.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

// limits.idleTimeoutMs over WebSockets: `ws` turns the TLS socket's timeout off when it takes the
// connection, so a WebSocket that sent nothing was never closed (a slot of the HTTPS listener's
// limits.maxConnections held for good). A short idle timeout here; the waits are for events.
const IDLE_MS = 500;
let bed: TestBedWithWebhook;
const logs: LogRecord[] = [];
beforeAll(async () => {
  bed = await startTestBedWithWebhook({
    limits: { idleTimeoutMs: IDLE_MS },
    logLevel: 'debug',
    log: (record) => logs.push(record),
  });
});
afterAll(async () => {
  await bed?.close();
});

async function hubDevice(id: string, keepalive: number): Promise<Buffer> {
  const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
  return hubConnect({ hub: HUB_A, deviceId: id, key, keepalive });
}

describe('WebSockets silent both ways', () => {
  it('are closed after limits.idleTimeoutMs, as over TLS: before a CONNECT, DPS and hub sessions with keepalive 0, AMQP', async () => {
    const cases: Record<string, () => Promise<{ closed: Promise<{ code: number }>; received: () => string[] }>> = {
      nothingSent: async () => {
        const { closed, received } = await openMqttWebSocket(bed.emulator);
        return { closed, received: () => received.map((p) => p.cmd) };
      },
      dpsKeepalive0: async () => {
        const { ws, closed, received } = await openMqttWebSocket(bed.emulator);
        ws.send(dpsConnect('ws-idle-dps', 0));
        return { closed, received: () => received.map((p) => p.cmd) };
      },
      hubKeepalive0: async () => {
        const connect = await hubDevice('ws-idle-hub-0', 0);
        const { ws, closed, received } = await openMqttWebSocket(bed.emulator);
        ws.send(connect);
        return { closed, received: () => received.map((p) => p.cmd) };
      },
      amqp: async () => {
        const attempt = await openWebSocket(bed.emulator, ['AMQPWSB10']);
        if (attempt.kind !== 'open') throw new Error(`not upgraded: ${attempt.status}`);
        return { closed: closeOf(attempt.ws), received: () => [] };
      },
    };
    const seen: Record<string, unknown> = {};
    for (const [name, open] of Object.entries(cases)) {
      const idleBefore = logs.filter((l) => l.event === 'https.idle').length;
      const { closed, received } = await open();
      // 1006: the connection dropped without a close frame, as a TLS connection is dropped.
      seen[name] = { code: (await closed).code, received: received() };
      await expect
        .poll(() => logs.filter((l) => l.event === 'https.idle').length, { timeout: 60_000 })
        .toBe(idleBefore + 1);
    }
    expect(seen).toEqual({
      nothingSent: { code: 1006, received: [] },
      dpsKeepalive0: { code: 1006, received: ['connack'] },
      hubKeepalive0: { code: 1006, received: ['connack'] },
      amqp: { code: 1006, received: [] },
    });
  });

  it('keeps a hub session with a keepalive open past the idle timeout, as over TLS (its keepalive bounds it)', async () => {
    const { ws, closed, received } = await openMqttWebSocket(bed.emulator);
    let closedWith: { code: number } | undefined;
    void closed.then((close) => {
      closedWith = close;
    });
    ws.send(Buffer.concat([await hubDevice('ws-idle-hub-60', 60), SUBSCRIBE_TWIN]));
    await expect.poll(() => received.length, { timeout: 60_000 }).toBe(2);
    // Four idle timeouts of silence, then a request: answered on the same connection.
    await new Promise((resolve) => setTimeout(resolve, 4 * IDLE_MS));
    ws.send(TWIN_GET);
    await expect.poll(() => received.length === 3 || closedWith !== undefined, { timeout: 60_000 }).toBe(true);
    expect({ closedWith, received: received.map((p) => p.cmd) }).toEqual({
      closedWith: undefined,
      received: ['connack', 'suback', 'publish'],
    });
    ws.close();
  });
});
