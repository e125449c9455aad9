import { describe, expect, it } from 'vitest';
import { parseProvisioningHost } from './endpoint.js';

describe('parseProvisioningHost', () => {
  it('accepts the global endpoint without a port', () => {
    expect(parseProvisioningHost('global.azure-devices-provisioning.net')).toEqual({
      ok: true,
      value: {
        hostname: 'global.azure-devices-provisioning.net',
        hostWithPort: 'global.azure-devices-provisioning.net',
      },
    });
  });

  it('splits host:port', () => {
    expect(parseProvisioningHost('localhost:8883')).toEqual({
      ok: true,
      value: { hostname: 'localhost', port: 8883, hostWithPort: 'localhost:8883' },
    });
    expect(parseProvisioningHost('127.0.0.1:8443')).toEqual({
      ok: true,
      value: { hostname: '127.0.0.1', port: 8443, hostWithPort: '127.0.0.1:8443' },
    });
  });

  it('accepts bracketed IPv6', () => {
    expect(parseProvisioningHost('[::1]:8883')).toEqual({
      ok: true,
      value: { hostname: '::1', port: 8883, hostWithPort: '[::1]:8883' },
    });
  });

  it.each([
    ['', 'is empty'],
    ['mqtts://localhost:8883', 'scheme'],
    ['https://global.azure-devices-provisioning.net', 'scheme'],
    ['localhost:8883/path', 'path'],
    ['localhost:0', 'invalid port'],
    ['localhost:70000', 'invalid port'],
    ['localhost:abc', 'invalid port'],
    ['::1', 'more than one ":"'],
    ['under_score.example', 'not a valid host name'],
  ])('rejects %j (%s)', (input, why) => {
    const r = parseProvisioningHost(input);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.message).toContain(why);
      expect(r.message).toContain('--provisioning-host');
    }
  });
});
