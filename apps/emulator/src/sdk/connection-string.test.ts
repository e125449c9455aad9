import { describe, expect, it } from 'vitest';
import { parseConnectionString, requireField, withGatewayHostName } from './connection-string.js';

const KEY = 'q83+/ab==';

describe('device connection strings', () => {
  it('splits each part at its first "=" only (base64 keys end in "=")', () => {
    expect([...parseConnectionString(`HostName=h.azure-devices.net;DeviceId=d;SharedAccessKey=${KEY}`)]).toEqual([
      ['HostName', 'h.azure-devices.net'],
      ['DeviceId', 'd'],
      ['SharedAccessKey', KEY],
    ]);
  });

  it('sets GatewayHostName, replacing one it had, keeping the rest as given', () => {
    expect(withGatewayHostName(`HostName=h;DeviceId=d;SharedAccessKey=${KEY}`, 'localhost:8883')).toBe(
      `HostName=h;DeviceId=d;SharedAccessKey=${KEY};GatewayHostName=localhost:8883`,
    );
    expect(withGatewayHostName(`HostName=h;GatewayHostName=edge;DeviceId=d;`, 'localhost:1')).toBe(
      'HostName=h;GatewayHostName=localhost:1;DeviceId=d',
    );
  });

  it('refuses a part that is not name=value, and a missing field, without repeating the string (a key)', () => {
    expect(() => parseConnectionString(`HostName=h;${KEY.replace(/=/g, '')}`)).toThrow(
      '@dpskit/emulator/sdk: the connection string has a part that is not name=value',
    );
    expect(() => requireField(parseConnectionString(`HostName=h;SharedAccessKey=${KEY}`), 'DeviceId')).toThrow(
      '@dpskit/emulator/sdk: the connection string has no DeviceId',
    );
  });
});
