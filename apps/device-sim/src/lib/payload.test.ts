import { describe, expect, it } from 'vitest';
import { isPlainObject, parsePayload } from './payload.js';

describe('parsePayload', () => {
  it('accepts the tutorial payload', () => {
    const r = parsePayload('{"MyDeviceFirmwareVersion":"12.0.2.5","MyDeviceProvisioningVersion":"1.0.0.0"}');
    expect(r).toEqual({
      ok: true,
      value: { MyDeviceFirmwareVersion: '12.0.2.5', MyDeviceProvisioningVersion: '1.0.0.0' },
    });
  });

  it('accepts nested objects and an empty object', () => {
    expect(parsePayload('{"a":{"b":[1,2]}}')).toEqual({ ok: true, value: { a: { b: [1, 2] } } });
    expect(parsePayload('{}')).toEqual({ ok: true, value: {} });
  });

  it.each([
    ['[1,2]', 'not an array'],
    ['"text"', 'not a string'],
    ['42', 'not a number'],
    ['null', 'not null'],
    ['true', 'not a boolean'],
  ])('rejects %s as %s', (text, expected) => {
    const r = parsePayload(text);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.message).toContain('--payload must be a JSON object');
      expect(r.message).toContain(expected);
    }
  });

  it('rejects text that is not JSON and names the source', () => {
    const r = parsePayload("{MyDeviceFirmwareVersion:'12'}", 'DPS_PAYLOAD');
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.message).toMatch(/^DPS_PAYLOAD is not valid JSON \(/);
      expect(r.message).toContain('MyDeviceFirmwareVersion');
    }
  });

  it('rejects an empty string', () => {
    expect(parsePayload('').ok).toBe(false);
  });
});

describe('isPlainObject', () => {
  it('is true only for objects', () => {
    expect(isPlainObject({})).toBe(true);
    expect(isPlainObject([])).toBe(false);
    expect(isPlainObject(null)).toBe(false);
    expect(isPlainObject('x')).toBe(false);
  });
});
