import { describe, expect, it } from 'vitest';
import { disconnectLeftovers } from './connection-leftovers.js';
import { HubService } from './hub-service.js';
import { MemoryHubStore } from './store.js';

const HUB = 'hub-a.azure-devices.net';
const OTHER = 'hub-b.azure-devices.net';
const then = new Date('2026-12-05T10:00:00.000Z');
const restart = new Date('2026-12-05T12:00:00.000Z');

describe('disconnectLeftovers', () => {
  it('marks Disconnected every device and module a previous run left Connected, a batch at a time, and no other', () => {
    const store = new MemoryHubStore();
    const hub = new HubService({ store, hubs: [HUB, OTHER], now: () => then });
    // More devices than one batch (500) reads, on two hubs; every third connected; modules too.
    const connected: string[] = [];
    for (let n = 0; n < 1001; n++) {
      const id = `d${String(n).padStart(4, '0')}`;
      const hubName = n % 2 === 0 ? HUB : OTHER;
      hub.putDevice(hubName, id, { deviceId: id }, undefined);
      if (n % 3 === 0) {
        hub.setConnected(hubName, id, true, 'mqtt', `connection-${id}`);
        connected.push(`${hubName}/${id}`);
      }
    }
    hub.putModule(HUB, 'd0000', 'sensor', { moduleId: 'sensor', deviceId: 'd0000' }, undefined);
    hub.putModule(HUB, 'd0002', 'idle', { moduleId: 'idle', deviceId: 'd0002' }, undefined);
    hub.setConnected(HUB, 'd0000/sensor', true, 'amqp', 'connection-sensor');

    expect(disconnectLeftovers(store, [HUB, OTHER], restart)).toBe(connected.length + 1);

    for (const hubName of [HUB, OTHER])
      for (const device of store.listDevices(hubName)) {
        expect(device.connectionState).toBe('Disconnected');
        // The connection's name goes with it: a close the killed run never wrote cannot match it.
        expect(device).not.toHaveProperty('connection');
        const wasConnected = connected.includes(`${hubName}/${device.identity.deviceId}`);
        expect(device.connectionStateUpdatedUtc === restart.toISOString()).toBe(wasConnected);
      }
    const [sensor, idle] = [store.getModule(HUB, 'd0000', 'sensor'), store.getModule(HUB, 'd0002', 'idle')];
    expect(sensor).toMatchObject({ connectionState: 'Disconnected', connectionStateUpdatedUtc: restart.toISOString() });
    expect(sensor).not.toHaveProperty('connection');
    expect(idle?.connectionStateUpdatedUtc).not.toBe(restart.toISOString());
    // Nothing left to do the second time.
    expect(disconnectLeftovers(store, [HUB, OTHER], restart)).toBe(0);
  });
});
