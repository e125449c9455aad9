// The emulator's log under a flood of hub requests without valid credentials (anyone can send
// them): the registry's refused tokens (`hub.auth`) and the devices' refused requests
// (`hub.connect-refused`) were one warning line each.

import { createSasToken } from '@dpskit/contracts';
import type { LogRecord } from '@dpskit/node-kit';
import { describe, expect, it } from 'vitest';
import { groupDeviceKey, HUB_A } from './testing/fixtures.js';
import { rawRequest } from './testing/raw-https.js';
import { register } from './testing/sdk.js';
import { startTestBedWithWebhook } from './testing/test-bed.js';

const hourFromNow = () => Math.floor(Date.now() / 1000) + 3600;
const signatures: string[] = [];
/** A token for `resource` signed with a key nobody holds; its signature is kept, to look for in the log. */
const wrongToken = (resource: string, keyName?: string) => {
  const key = Buffer.alloc(32, signatures.length).toString('base64');
  const token = createSasToken({ resource, key, expiresAt: hourFromNow(), ...(keyName ? { keyName } : {}) });
  signatures.push(decodeURIComponent(/sig=([^&]+)/.exec(token)?.[1] ?? ''));
  return token;
};

/** The lines of `event`: those in full, and the count lines with their total. */
function linesOf(logged: readonly LogRecord[], event: string) {
  const lines = logged.filter((l) => l.event === event && l.level === 'warn');
  const full = lines.filter((l) => l.suppressed === undefined);
  const counted = lines.filter((l) => l.suppressed !== undefined);
  const seconds = (Date.parse(full.at(-1)?.time ?? '') - Date.parse(full[0]?.time ?? '')) / 1000;
  return {
    full,
    counted,
    total: full.length + counted.reduce((sum, l) => sum + (l.suppressed as number), 0),
    /** At most one in full per second of the wall clock the flood took (the emulator's clock). */
    maxFull: Math.floor(seconds) + 1,
  };
}

describe('refused hub requests in the log', () => {
  it('logs refused registry tokens and refused devices at most once in full a second, the rest counted; never a sig', async () => {
    const logged: LogRecord[] = [];
    const bed = await startTestBedWithWebhook({ log: (record) => logged.push(record) });
    const id = 'hub-flood-device';
    const refused: string[] = [];
    const listener = (event: { kind: string; deviceId?: string }) => {
      if (event.kind === 'connect-refused' && event.deviceId === id) refused.push(event.kind);
    };
    try {
      await register(bed.emulator, id, groupDeviceKey('custom', id), { transport: 'https' });
      bed.emulator.on('hub', listener);
      for (let i = 0; i < 30; i++) {
        const registry = await rawRequest(bed.emulator, {
          method: 'GET',
          path: `/twins/${id}?api-version=2021-04-12`,
          headers: { Host: HUB_A, Authorization: wrongToken(HUB_A, 'iothubowner') },
        });
        expect(registry.status, registry.text).toBe(401);
        const telemetry = await rawRequest(bed.emulator, {
          method: 'POST',
          path: `/devices/${id}/messages/events?api-version=2021-04-12`,
          headers: { Host: HUB_A, Authorization: wrongToken(`${HUB_A}/devices/${id}`) },
          body: '{}',
        });
        expect(telemetry.status, telemetry.text).toBe(401);
      }
      // Each refused device request is still a `hub` event.
      expect(refused).toHaveLength(30);
    } finally {
      bed.emulator.off('hub', listener);
      await bed.close(); // logs what is still counted
    }

    const registry = linesOf(logged, 'hub.auth');
    expect(registry.total).toBe(30);
    expect(registry.full.length).toBeLessThanOrEqual(registry.maxFull);
    expect(registry.full[0]).toMatchObject({
      level: 'warn',
      hub: HUB_A,
      method: 'GET',
      path: `/twins/${id}`,
      status: 401,
      reason: 'signature-mismatch',
    });
    for (const line of registry.counted) {
      expect(line).toMatchObject({
        level: 'warn',
        status: 401,
        msg: expect.stringMatching(
          /^\d+ more hub registry request\(s\) refused with 401 since .*Z, not logged one by one \(signature-mismatch \d+\)$/,
        ),
        reasons: { 'signature-mismatch': line.suppressed },
      });
    }

    const devices = linesOf(logged, 'hub.connect-refused');
    expect(devices.total).toBe(30);
    expect(devices.full.length).toBeLessThanOrEqual(devices.maxFull);
    expect(devices.full[0]).toMatchObject({ level: 'warn', deviceId: id, transport: 'https' });
    for (const line of devices.counted) {
      expect(line).toMatchObject({
        level: 'warn',
        msg: expect.stringMatching(
          /^\d+ more device request\(s\) or connection\(s\) refused by a hub since .*Z, not logged one by one \(signature-mismatch \d+\)$/,
        ),
        reasons: { 'signature-mismatch': line.suppressed },
      });
    }
    const text = JSON.stringify(logged);
    expect(signatures).toHaveLength(60);
    for (const signature of signatures) {
      expect(text).not.toContain(signature);
      expect(text).not.toContain(encodeURIComponent(signature));
    }
  });
});
