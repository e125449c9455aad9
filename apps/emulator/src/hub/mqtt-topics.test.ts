import { describe, expect, it } from 'vitest';
import {
  hubOfUsername,
  isDeviceSubscription,
  parseDevicePublish,
  parseHubUsername,
  twinResponseTopic,
} from './mqtt-topics.js';

describe('IoT Hub MQTT topics', () => {
  it('reads the usernames the SDKs send and tells them from DPS usernames', () => {
    expect(parseHubUsername('hub-a.azure-devices.net/dev-1/?api-version=2021-04-12&DeviceClientType=x')).toEqual({
      hub: 'hub-a.azure-devices.net',
      deviceId: 'dev-1',
    });
    expect(parseHubUsername('hub-a.azure-devices.net/dev-1/api-version=2018-06-30')).toEqual({
      hub: 'hub-a.azure-devices.net',
      deviceId: 'dev-1',
    });
    expect(parseHubUsername('hub.net/dev/mod/?api-version=1')).toEqual({
      hub: 'hub.net',
      deviceId: 'dev',
      moduleId: 'mod',
    });
    expect(hubOfUsername('0ne00000A0A/registrations/dev-1/api-version=2019-03-31&ClientVersion=x')).toBeUndefined();
    expect(hubOfUsername(undefined)).toBeUndefined();
    expect(hubOfUsername('hub.net/dev-1')).toBeUndefined();
  });

  it('classifies what a device publishes', () => {
    expect(parseDevicePublish('devices/d1/messages/events/%24.ct=application%2Fjson&a=1%2B2', 'd1')).toEqual({
      kind: 'telemetry',
      properties: { '$.ct': 'application/json', a: '1+2' },
    });
    expect(parseDevicePublish('$iothub/twin/GET/?$rid=7', 'd1')).toEqual({ kind: 'twin-get', rid: '7' });
    expect(parseDevicePublish('$iothub/twin/PATCH/properties/reported/?$rid=8', 'd1')).toEqual({
      kind: 'twin-reported',
      rid: '8',
    });
    expect(parseDevicePublish('$iothub/methods/res/200/?$rid=9', 'd1')).toEqual({
      kind: 'method-response',
      rid: '9',
      status: '200',
    });
    expect(parseDevicePublish('devices/d2/messages/events/', 'd1').kind).toBe('invalid');
    expect(parseDevicePublish('$iothub/twin/PATCH/properties/desired/?$version=3', 'd1').kind).toBe('invalid');
    expect(parseDevicePublish('$iothub/twin/GET/', 'd1').kind).toBe('invalid');
  });

  it('allows a device its own subscriptions only', () => {
    expect(isDeviceSubscription('devices/d1/messages/devicebound/#', 'd1')).toBe(true);
    expect(isDeviceSubscription('devices/d2/messages/devicebound/#', 'd1')).toBe(false);
    expect(isDeviceSubscription('$iothub/twin/res/#', 'd1')).toBe(true);
    expect(isDeviceSubscription('#', 'd1')).toBe(false);
    expect(twinResponseTopic(204, 'r 1', 5)).toBe('$iothub/twin/res/204/?$rid=r%201&$version=5');
  });
});
