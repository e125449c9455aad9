import { describe, expect, it } from 'vitest';
import {
  hubOfUsername,
  isDeviceSubscription,
  MAX_REQUEST_ID_LENGTH,
  methodRequestTopic,
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
    // Without an api-version (IoT Hub connects such a device; its twin operations fail): marked.
    for (const username of ['hub.net/dev-1', 'hub.net/dev-1/', 'hub.net/dev-1/?DeviceClientType=x']) {
      expect(parseHubUsername(username)).toEqual({ hub: 'hub.net', deviceId: 'dev-1', unversioned: true });
    }
    expect(parseHubUsername('hub.net/dev-1/?x-api-version=1')).toMatchObject({ unversioned: true });
  });

  it('answers every username as the parse before its no-`.` shortcut did', () => {
    // Every string of up to 5 pieces from the characters and parts the grammar turns on: the
    // shortcut (no `.` before the first `/`) may only ever answer what the full parse answers.
    const pieces = ['.', '/', '?', 'h.n', 'd', 'api-version=1', '&', ''];
    let usernames = [''];
    const all: string[] = [];
    for (let length = 1; length <= 5; length++) {
      usernames = usernames.flatMap((u) => pieces.map((p) => u + p));
      for (const username of usernames) all.push(username);
    }
    // And the SDKs' usernames with each character dropped, and each of `.`, `/`, `?` put in every place.
    for (const real of [
      'hub-a.azure-devices.net/dev-1/?api-version=2021-04-12&DeviceClientType=x',
      'hub-a.azure-devices.net/dev.1/mod/api-version=2018-06-30',
      '0ne00000A0A/registrations/dev-1/api-version=2019-03-31&ClientVersion=x%2F1.9',
    ]) {
      for (let i = 0; i <= real.length; i++) {
        all.push(real.slice(0, i) + real.slice(i + 1));
        for (const c of ['.', '/', '?']) all.push(real.slice(0, i) + c + real.slice(i));
      }
    }
    expect(all.length).toBeGreaterThan(35_000);
    const differing = all.filter(
      (username) => JSON.stringify(parseHubUsername(username)) !== JSON.stringify(parseHubUsernameBefore(username)),
    );
    expect(differing).toEqual([]);
    // Both answers occur: the generated names exercise the parse, not only the shortcut.
    expect(all.filter((username) => parseHubUsername(username)).length).toBeGreaterThan(100);
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
      status: 200,
    });
    // Any 32-bit status the device chooses (the SDKs send any number), no more.
    expect(parseDevicePublish('$iothub/methods/res/-1/?$rid=9', 'd1')).toMatchObject({ status: -1 });
    expect(parseDevicePublish('$iothub/methods/res/2147483647/?$rid=9', 'd1')).toMatchObject({ status: 2147483647 });
    expect(parseDevicePublish('$iothub/methods/res/2147483648/?$rid=9', 'd1').kind).toBe('invalid');
    expect(parseDevicePublish('$iothub/methods/res/2x/?$rid=9', 'd1').kind).toBe('invalid');
    expect(methodRequestTopic('reboot', 'a b')).toBe('$iothub/methods/POST/reboot/?$rid=a%20b');
    expect(parseDevicePublish('devices/d2/messages/events/', 'd1').kind).toBe('invalid');
    expect(parseDevicePublish('$iothub/twin/PATCH/properties/desired/?$version=3', 'd1').kind).toBe('invalid');
    expect(parseDevicePublish('$iothub/twin/GET/', 'd1').kind).toBe('invalid');
  });

  it('takes a $rid of up to MAX_REQUEST_ID_LENGTH characters, decoded, whose answer topic fits an MQTT topic', () => {
    const longest = '€'.repeat(MAX_REQUEST_ID_LENGTH);
    const encoded = encodeURIComponent(longest);
    expect(parseDevicePublish(`$iothub/twin/GET/?$rid=${encoded}`, 'd1')).toEqual({ kind: 'twin-get', rid: longest });
    expect(Buffer.byteLength(twinResponseTopic(400, longest, 2 ** 31))).toBeLessThan(65_536);
    for (const topic of [
      '$iothub/twin/GET/?$rid=',
      '$iothub/twin/PATCH/properties/reported/?$rid=',
      '$iothub/methods/res/200/?$rid=',
    ]) {
      expect(parseDevicePublish(`${topic}${'7'.repeat(MAX_REQUEST_ID_LENGTH + 1)}`, 'd1')).toEqual({
        kind: 'invalid',
        reason: `a $rid of ${MAX_REQUEST_ID_LENGTH + 1} characters, over ${MAX_REQUEST_ID_LENGTH}`,
      });
    }
  });

  it('allows a device its own subscriptions only', () => {
    expect(isDeviceSubscription('devices/d1/messages/devicebound/#', 'd1')).toBe(true);
    expect(isDeviceSubscription('devices/d2/messages/devicebound/#', 'd1')).toBe(false);
    expect(isDeviceSubscription('$iothub/twin/res/#', 'd1')).toBe(true);
    expect(isDeviceSubscription('#', 'd1')).toBe(false);
    expect(twinResponseTopic(204, 'r 1', 5)).toBe('$iothub/twin/res/204/?$rid=r%201&$version=5');
  });

  it('gives a module (named d1/m1, its client id) its own telemetry topic and no cloud-to-device queue', () => {
    expect(parseDevicePublish('devices/d1/modules/m1/messages/events/a=1', 'd1/m1')).toEqual({
      kind: 'telemetry',
      properties: { a: '1' },
    });
    expect(parseDevicePublish('devices/d1/modules/m1/messages/events', 'd1/m1')).toEqual({
      kind: 'telemetry',
      properties: {},
    });
    // Not its device's topic, nor another module's.
    for (const topic of ['devices/d1/messages/events/', 'devices/d1/modules/m2/messages/events/'])
      expect(parseDevicePublish(topic, 'd1/m1')).toEqual({
        kind: 'invalid',
        reason: 'a module may only publish on devices/d1/modules/m1/messages/events/',
      });
    expect(parseDevicePublish('devices/d1/modules/m1/messages/events/', 'd1')).toMatchObject({ kind: 'invalid' });
    expect(parseDevicePublish('$iothub/twin/GET/?$rid=1', 'd1/m1')).toEqual({ kind: 'twin-get', rid: '1' });
    expect(isDeviceSubscription('$iothub/methods/POST/#', 'd1/m1')).toBe(true);
    expect(isDeviceSubscription('devices/d1/m1/messages/devicebound/#', 'd1/m1')).toBe(false);
    expect(isDeviceSubscription('devices/d1/modules/m1/inputs/#', 'd1/m1')).toBe(false);
    expect(parseHubUsername('hub-a.azure-devices.net/d1/m1/?api-version=2021-04-12')).toMatchObject({
      deviceId: 'd1',
      moduleId: 'm1',
    });
  });
});

/** parseHubUsername without the shortcut for usernames without a `.` in their first part. */
function parseHubUsernameBefore(
  username: string | undefined,
): { hub: string; deviceId: string; moduleId?: string; unversioned?: true } | undefined {
  if (!username) return undefined;
  const q = username.indexOf('?');
  const path = q === -1 ? username : username.slice(0, q);
  const query = q === -1 ? '' : username.slice(q + 1);
  const parts = path.split('/');
  let versioned = /(^|&)api-version=/.test(query);
  if (q === -1 && parts.length >= 3 && parts[parts.length - 1]?.startsWith('api-version=')) {
    parts.pop();
    versioned = true;
  }
  if (parts[parts.length - 1] === '') parts.pop();
  const [hub, deviceId, moduleId, ...rest] = parts;
  if (!hub || !deviceId || rest.length > 0 || !hub.includes('.')) return undefined;
  return { hub, deviceId, ...(moduleId ? { moduleId } : {}), ...(versioned ? {} : { unversioned: true as const }) };
}
