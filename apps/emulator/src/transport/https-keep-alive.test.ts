// The HTTPS listener keeps an idle kept-alive connection as long as Azure's front ends do (4 minutes,
// the Azure Load Balancer's default idle timeout), not Node's 5 s: an SDK client pausing between
// calls keeps its connection (with `--workers`, its worker). And idle connections stay bounded: a
// listener full of them (limits.maxConnections) closes the one idle longest for a new client.
// Seen through the official SDKs: azure-iothub's Registry on a kept-alive agent,
// azure-iot-provisioning-device over HTTPS.
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupDeviceKey, HUB_A } from '../testing/fixtures.js';
import { createDeviceKey, hubAgent, keptAliveRegistry } from '../testing/hub-sdk.js';
import { register } from '../testing/sdk.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

const MAX_CONNECTIONS = 3;

let bed: TestBedWithWebhook;
beforeAll(async () => {
  bed = await startTestBedWithWebhook({ limits: { maxConnections: MAX_CONNECTIONS } });
});
afterAll(async () => {
  await bed?.close();
});

/** The agent's connections waiting for a request, oldest first. */
const freeSockets = (agent: { freeSockets: NodeJS.ReadOnlyDict<Socket[]> }) =>
  Object.values(agent.freeSockets).flatMap((sockets) => sockets ?? []);

describe('kept-alive HTTPS connections', () => {
  it('stay open while idle longer than Node’s default 5 s: the next call reuses the connection', async () => {
    const agent = hubAgent(bed.emulator, { keepAlive: true });
    const registry = keptAliveRegistry(bed.emulator, HUB_A, agent);
    try {
      await createDeviceKey(registry, 'kept-alive');
      const [connection] = freeSockets(agent);
      expect(connection).toBeDefined();
      // A pause, not a measurement: longer than Node's default keepAliveTimeout.
      await new Promise((resolve) => setTimeout(resolve, 6_500));
      expect(connection?.destroyed).toBe(false);
      expect((await registry.get('kept-alive')).responseBody.deviceId).toBe('kept-alive');
      expect(freeSockets(agent)).toEqual([connection]);
    } finally {
      agent.destroy();
    }
  });

  it('a listener full of idle connections closes the one idle longest for a new client', async () => {
    const agent = hubAgent(bed.emulator, { keepAlive: true });
    const registry = keptAliveRegistry(bed.emulator, HUB_A, agent);
    try {
      // Concurrent calls: one connection each, all idle afterwards, the listener full.
      await Promise.all(
        Array.from({ length: MAX_CONNECTIONS }, (_, i) => createDeviceKey(registry, `idle-holder-${i}`)),
      );
      const idle = freeSockets(agent);
      expect(idle).toHaveLength(MAX_CONNECTIONS);

      // A new client is served on a connection of its own...
      const id = 'after-idle-flood';
      expect(await register(bed.emulator, id, groupDeviceKey('hashed', id), { transport: 'https' })).toMatchObject({
        status: 'assigned',
      });
      // ...for which the oldest idle ones were closed (not the listener's bound raised).
      await new Promise<void>((resolve) => {
        const check = () => (idle.some((socket) => socket.destroyed) ? resolve() : setTimeout(check, 10));
        check();
      });
      // And the client whose connection was closed opens a new one for its next call.
      expect((await registry.get('idle-holder-0')).responseBody.deviceId).toBe('idle-holder-0');
    } finally {
      agent.destroy();
    }
  });
});
