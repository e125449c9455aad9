import { describe, expect, it } from 'vitest';
import { comparable, loadCapture } from './normalize.js';

// The golden comparison must be able to fail: the emulator's answers before issue 16 differ.
describe('golden normalization', () => {
  it('tells the old emulator answer from the real one', () => {
    const capture = loadCapture('assigned-group');
    const before = {
      operationId: '4.0123456789abcdef.2d0fcd43-1bd5-4fb9-a8a4-54cbb4a1d0e3',
      status: 'assigned',
      registrationState: {
        registrationId: 'dev',
        createdDateTimeUtc: '2026-01-01T00:00:00.3290000Z',
        assignedHub: 'hub-a.azure-devices.net',
        deviceId: 'dev',
        status: 'assigned',
        substatus: 'initialAssignment',
        lastUpdatedDateTimeUtc: '2026-01-01T00:00:00.3290000Z',
        etag: Buffer.from('"2d0fcd43-1bd5-4fb9-a8a4-54cbb4a1d0e3"').toString('base64'),
        symmetricKey: { enrollmentGroupId: 'g' },
      },
    };
    const { real, emulator } = comparable(capture, before);
    expect(emulator).not.toBe(real);
    expect(emulator).toContain('<not a DPS record timestamp: 2026-01-01T00:00:00.3290000Z>');
    expect(emulator).toContain('<not a DPS etag:');

    const { symmetricKey, ...rest } = before.registrationState;
    const fixed = {
      ...before,
      registrationState: {
        symmetricKey,
        ...rest,
        createdDateTimeUtc: '2026-01-01T00:00:00.329Z',
        lastUpdatedDateTimeUtc: '2026-01-01T00:00:00Z',
        etag: Buffer.from('"0badf00d-0000-0100-0000-695588000000"').toString('base64'),
      },
    };
    const again = comparable(capture, fixed);
    expect(again.emulator).toBe(again.real);
  });

  it('compares error timestamps by their 7-digit form and keeps codes and messages', () => {
    const capture = loadCapture('unauthorized-mqtt');
    const body = (code: number, time: string) => ({
      errorCode: code,
      trackingId: '7b5b2b3a-6a57-4c54-9f54-7a1c0a2f7e11',
      message: 'Unauthorized',
      timestampUtc: time,
    });
    const same = comparable(capture, body(401000, '2026-01-01T00:00:00.1230000Z'));
    expect(same.emulator).toBe(same.real);
    expect(comparable(capture, body(401002, '2026-01-01T00:00:00.1230000Z')).emulator).toContain('401002');
    expect(comparable(capture, body(401000, '2026-01-01T00:00:00.123Z')).emulator).toContain(
      '<not a DPS error timestamp',
    );
  });
});
