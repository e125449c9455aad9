// DPS over MQTT when the store cannot be read: the CONNECT's attestation reads the enrollments in
// the socket's 'data' handler, where a thrown error would end the process. The fault is real: the
// state file is truncated under the running emulator (what a disk fault, or a copy or sync tool
// writing over it, leaves behind), so that SQLite reads zeros where a table was and reports the
// database malformed.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LogRecord } from '@dpskit/node-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupDeviceKey, HUB_A } from '../testing/fixtures.js';
import { createDeviceKey, registryClient } from '../testing/hub-sdk.js';
import { connectAndSubscribe, hubConnect } from '../testing/mqtt-bytes.js';
import { openMqttWebSocket } from '../testing/raw-websocket.js';
import { register, rejectionOf } from '../testing/sdk.js';
import { checkpointThenChangeEnrollments, truncateToFirstPage } from '../testing/state-file-fault.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

const logged: LogRecord[] = [];
let bed: TestBedWithWebhook;
beforeAll(async () => {
  bed = await startTestBedWithWebhook({ log: (record) => logged.push(record) });
});
afterAll(async () => {
  await bed?.close();
});

describe('DPS over MQTT when the store cannot be read', () => {
  it('refuses the CONNECT as server unavailable, logs why, and goes on serving', async () => {
    const file = join(bed.emulator.stateDir, 'emulator.db');
    // Warm: the enrollments are read and kept until the store changes.
    const before = await register(bed.emulator, 'fault-dev-1', groupDeviceKey('hashed', 'fault-dev-1'));
    expect(before.status).toBe('assigned');

    const intact = checkpointThenChangeEnrollments(file);
    truncateToFirstPage(file, intact);
    const refused = await rejectionOf(register(bed.emulator, 'fault-dev-2', groupDeviceKey('hashed', 'fault-dev-2')));
    expect(refused.message).toMatch(/unavailable/i);
    const error = logged.find((r) => r.level === 'error' && r.event === 'mqtt.auth');
    expect(error?.msg).toContain('fault-dev-2');
    expect(error?.msg).toContain('malformed');

    // The file restored (and changed again, so that the emulator reads it anew): served as before.
    writeFileSync(file, intact);
    checkpointThenChangeEnrollments(file);
    const after = await register(bed.emulator, 'fault-dev-2', groupDeviceKey('hashed', 'fault-dev-2'));
    expect(after.status).toBe('assigned');
  }, 60_000);

  it('over WebSockets, closes after the CONNACK 3 with 1011 (server error), for DPS and for the hub', async () => {
    const file = join(bed.emulator.stateDir, 'emulator.db');
    const hubKey = await createDeviceKey(registryClient(bed.emulator, HUB_A), 'fault-ws-hub');
    const connects = {
      dps: connectAndSubscribe('fault-ws-dps'),
      hub: hubConnect({ hub: HUB_A, deviceId: 'fault-ws-hub', key: hubKey }),
    };
    const intact = checkpointThenChangeEnrollments(file);
    truncateToFirstPage(file, intact);
    const closes: Record<string, { code: number; reason: string; received: string[] }> = {};
    try {
      for (const [name, connect] of Object.entries(connects)) {
        const { ws, received, closed } = await openMqttWebSocket(bed.emulator);
        ws.send(connect);
        closes[name] = {
          ...(await closed),
          received: received.map((p) => (p.cmd === 'connack' ? `connack ${p.returnCode}` : p.cmd)),
        };
      }
    } finally {
      writeFileSync(file, intact);
      checkpointThenChangeEnrollments(file);
    }
    const refused = { code: 1011, reason: 'server unavailable', received: ['connack 3'] };
    expect(closes).toEqual({ dps: refused, hub: refused });
    // Served as before once the file is back.
    expect((await register(bed.emulator, 'fault-ws-dps', groupDeviceKey('hashed', 'fault-ws-dps'))).status).toBe(
      'assigned',
    );
  }, 60_000);
});
