import { describe, expect, it } from 'vitest';
import { HubError } from './hub-service.js';
import { MAX_BULK_DEVICES, parseBulkDevices } from './registry-bulk.js';

const refusal = (body: unknown) => {
  try {
    parseBulkDevices(body);
  } catch (err) {
    if (err instanceof HubError) return { status: err.status, code: err.code, message: err.message };
    throw err;
  }
  throw new Error('read');
};

describe('a bulk registry call body', () => {
  it('reads the import modes in any case, the eTag by any case of its name, and the device fields', () => {
    expect(
      parseBulkDevices([
        { id: 'a', importMode: 'create', status: 'disabled', authentication: { type: 'sas' }, deviceId: 'ignored' },
        { id: 'b', importMode: 'UpdateIfMatchETag', etag: '"MA=="' },
        { id: 'c', importMode: 'DELETE', eTag: null },
        { id: 'd', ImportMode: 'createOrUpdate', statusReason: 'why' },
      ]),
    ).toEqual([
      { deviceId: 'a', importMode: 'create', device: { status: 'disabled', authentication: { type: 'sas' } } },
      { deviceId: 'b', importMode: 'updateIfMatchETag', etag: '"MA=="', device: {} },
      { deviceId: 'c', importMode: 'delete', device: {} },
      { deviceId: 'd', importMode: 'createOrUpdate', device: { statusReason: 'why' } },
    ]);
  });

  it('refuses what makes the whole call unreadable, naming the field', () => {
    expect(refusal({ id: 'a' })).toEqual({
      status: 400,
      code: 'ArgumentInvalid',
      message: 'The body must be a JSON array of devices.',
    });
    expect(refusal([])).toMatchObject({ status: 400, message: 'The body names no device.' });
    const many = Array.from({ length: MAX_BULK_DEVICES + 1 }, (_, i) => ({ id: `d${i}`, importMode: 'create' }));
    expect(refusal(many)).toEqual({
      status: 413,
      code: 'TooManyDevices',
      message: 'A bulk registry call takes at most 100 devices, not 101.',
    });
    expect(parseBulkDevices(many.slice(1))).toHaveLength(MAX_BULK_DEVICES);
    expect(refusal([{ id: 'a', importMode: 'create' }, 'b'])).toMatchObject({
      message: '[1] must be a device (a JSON object).',
    });
    expect(refusal([{ deviceId: 'a', importMode: 'create' }])).toMatchObject({
      message: '[0].id must be the device id (a non-empty string).',
    });
    expect(refusal([{ id: 'a', importMode: 'updateTwin' }])).toMatchObject({
      message:
        '[0].importMode "updateTwin" is not served: create, createOrUpdate, update, updateIfMatchETag, delete, deleteIfMatchETag.',
    });
    expect(refusal([{ id: 'a' }])).toMatchObject({ message: expect.stringMatching(/^\[0\]\.importMode "undefined"/) });
    expect(refusal([{ id: 'a', importMode: 'delete', eTag: 5 }])).toMatchObject({
      message: '[0].eTag must be a string.',
    });
  });
});
