// createDeviceClient over Http: azure-iot-device-http applies the agent within `setOptions` and
// never calls back for it, so the helper does not await the SDK's promise; what the transport
// throws (or calls back with) during that call is the helper's error, not an unhandled rejection
// in the user's process. Nothing is dialed: the target needs no running emulator.
import deviceSdk from 'azure-iot-device';
import deviceHttp from 'azure-iot-device-http';
import { describe, expect, it } from 'vitest';
import { createDeviceClient } from './device.js';

const { Client } = deviceSdk;
const target = { https: { port: 8443, provisioningHost: 'localhost' }, ca: '' };
const connectionString = 'HostName=hub.azure-devices.net;DeviceId=d1;SharedAccessKey=a2V5';

/** azure-iot-device-http's Http as a class to extend (its typings declare a namespace holding it). */
type SetOptions = (options: Record<string, unknown>, done?: (err?: Error) => void) => void;
const Http = deviceHttp.Http as unknown as new (...args: unknown[]) => { setOptions: SetOptions };

describe('createDeviceClient over Http', () => {
  it("fails with the transport's error when it throws setting the options", async () => {
    class RefusingHttp extends Http {
      override setOptions: SetOptions = () => {
        throw new Error('options refused: http.agent');
      };
    }
    await expect(createDeviceClient(Client, connectionString, RefusingHttp, target)).rejects.toThrow(
      'options refused: http.agent',
    );
  });

  it('fails with the error the transport calls back with during the call', async () => {
    class FailingHttp extends Http {
      override setOptions: SetOptions = (_options, done) => done?.(new Error('options failed: http.agent'));
    }
    await expect(createDeviceClient(Client, connectionString, FailingHttp, target)).rejects.toThrow(
      'options failed: http.agent',
    );
  });

  it("resolves with the SDK's own Http, which never calls back for these options", async () => {
    const device = await createDeviceClient(Client, connectionString, deviceHttp.Http, target);
    expect(device).toBeInstanceOf(Client);
  });
});
