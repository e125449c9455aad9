// The emulator's log under a flood of registrations without valid credentials (anyone can send
// them, on every transport): a `registration` warning each filled the log.

import { createSasToken } from '@dpskit/contracts';
import type { LogRecord } from '@dpskit/node-kit';
import { describe, expect, it } from 'vitest';
import { ID_SCOPE } from './testing/fixtures.js';
import { rawRequest } from './testing/raw-https.js';
import { startTestBedWithWebhook } from './testing/test-bed.js';

describe('refused registrations in the log', () => {
  it('logs them at most once in full a second, the rest counted by transport, none lost; every event still emitted; never a sig', async () => {
    const logged: LogRecord[] = [];
    const bed = await startTestBedWithWebhook({ log: (record) => logged.push(record) });
    const secret = 'bm90LWEtcmVhbC1zaWduYXR1cmUtYnV0LXNlY3JldA';
    const ids = Array.from({ length: 30 }, (_, i) => `flood-${i}`);
    try {
      for (const id of ids) {
        const token = createSasToken({
          resource: `${ID_SCOPE}/registrations/${id}`,
          key: Buffer.alloc(32, 9).toString('base64'),
          keyName: 'registration',
          expiresAt: Math.floor(Date.now() / 1000) + 3600,
        }).replace(/sig=[^&]+/, `sig=${secret}`);
        const answer = await rawRequest(bed.emulator, {
          method: 'PUT',
          path: `/${ID_SCOPE}/registrations/${id}/register?api-version=2021-06-01`,
          headers: { Authorization: token },
          body: JSON.stringify({ registrationId: id }),
        });
        expect(answer.status, answer.text).toBe(401);
      }
      // Each one is still an event (the API's, the web view's history).
      expect(
        bed.events.filter((e) => ids.includes(e.registrationId) && e.outcome.status === 'unauthorized'),
      ).toHaveLength(30);
    } finally {
      await bed.close(); // logs what is still counted
    }
    const lines = logged.filter((l) => l.event === 'registration');
    const full = lines.filter((l) => l.suppressed === undefined);
    const counted = lines.filter((l) => l.suppressed !== undefined);
    for (const line of counted) {
      expect(line).toMatchObject({
        level: 'warn',
        msg: expect.stringMatching(
          /^\d+ more registration\(s\) refused as unauthorized since .*Z, not logged one by one \(https \d+\)$/,
        ),
        reasons: { https: line.suppressed },
      });
    }
    expect(full.length + counted.reduce((sum, l) => sum + (l.suppressed as number), 0)).toBe(30);
    expect(full[0]).toMatchObject({ level: 'warn', registrationId: 'flood-0', transport: 'https' });
    // At most one in full per second of the wall clock the flood took (the emulator's clock).
    const seconds = (Date.parse(full.at(-1)?.time ?? '') - Date.parse(full[0]?.time ?? '')) / 1000;
    expect(full.length).toBeLessThanOrEqual(Math.floor(seconds) + 1);
    expect(JSON.stringify(logged)).not.toContain(secret);
  });
});
