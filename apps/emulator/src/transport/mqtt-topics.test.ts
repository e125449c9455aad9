import { describe, expect, it } from 'vitest';
import {
  asciiJson,
  isDeviceRequestTopic,
  parseMqttUsername,
  parseRequestTopic,
  parseRequestTopicGeneral,
  responseTopic,
} from './mqtt-topics.js';

describe('DPS MQTT topics', () => {
  it('parses register and poll topics as the Node SDK sends them', () => {
    expect(
      parseRequestTopic('$dps/registrations/PUT/iotdps-register/?$rid=63344b2d-58f2-4a47-a5d8-5992753ba0ba'),
    ).toEqual({
      kind: 'register',
      rid: '63344b2d-58f2-4a47-a5d8-5992753ba0ba',
    });
    expect(
      parseRequestTopic(
        '$dps/registrations/GET/iotdps-get-operationstatus/?$rid=1&operationId=4.00e6a6f75bd24c85.3227c61b-0000-4000-8000-000000000000',
      ),
    ).toEqual({
      kind: 'operation-status',
      rid: '1',
      operationId: '4.00e6a6f75bd24c85.3227c61b-0000-4000-8000-000000000000',
    });
    expect(parseRequestTopic('$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2')).toEqual({
      kind: 'operation-status',
      rid: '2',
      operationId: null,
    });
    expect(parseRequestTopic('$dps/registrations/DELETE/x/?$rid=3')).toEqual({ kind: 'unknown', rid: '3' });
    expect(parseRequestTopic('$dps/registrations/PUT/iotdps-register/')).toEqual({ kind: 'no-rid' });
  });

  it('lets devices publish on request topics only, never on the response topics', () => {
    expect(isDeviceRequestTopic('$dps/registrations/PUT/iotdps-register/?$rid=1')).toBe(true);
    expect(isDeviceRequestTopic('$dps/registrations/POST/unknown/?$rid=1')).toBe(true);
    expect(isDeviceRequestTopic('$dps/registrations/res/200/?$rid=1')).toBe(false);
    expect(isDeviceRequestTopic('devices/x/messages/events/')).toBe(false);
  });

  it('builds response topics with a lowercase retry-after', () => {
    expect(responseTopic(202, 'r-1', 3)).toBe('$dps/registrations/res/202/?$rid=r-1&retry-after=3');
    expect(responseTopic(200, 'r 2')).toBe('$dps/registrations/res/200/?$rid=r%202');
  });

  it('parses the username, with the SDK capital ClientVersion', () => {
    expect(
      parseMqttUsername(
        '0ne00000A0A/registrations/contoso-toaster-007/api-version=2019-03-31&ClientVersion=azure-iot-provisioning-device%2F1.9.1',
      ),
    ).toEqual({
      idScope: '0ne00000A0A',
      registrationId: 'contoso-toaster-007',
      apiVersion: '2019-03-31',
      clientVersion: 'azure-iot-provisioning-device/1.9.1',
    });
    expect(parseMqttUsername('no-slashes')).toBeUndefined();
    expect(parseMqttUsername(undefined)).toBeUndefined();
  });

  it('escapes non-ASCII so that an ASCII-decoding client reads the same JSON', () => {
    const text = asciiJson({ name: 'fünf €' });
    expect(text).toBe('{"name":"f\\u00fcnf \\u20ac"}');
    expect(JSON.parse(Buffer.from(text, 'ascii').toString('ascii'))).toEqual({ name: 'fünf €' });
  });
});

describe('parseRequestTopic read by position', () => {
  it('gives what the general parse gives, for the SDK shapes and their near misses', () => {
    const register = '$dps/registrations/PUT/iotdps-register/';
    const status = '$dps/registrations/GET/iotdps-get-operationstatus/';
    const values = [
      '1',
      '63344b2d-58f2-4a47-a5d8-5992753ba0ba',
      'a+b',
      'a%20b',
      'a%zz',
      'a=b',
      'a?b',
      '',
      'x&y',
      '\u00fc',
    ];
    const topics: string[] = [];
    for (const rid of values) {
      topics.push(`${register}?$rid=${rid}`, `${register}?$rid=${rid}&x=1`, `${status}?$rid=${rid}`);
      for (const op of values) {
        topics.push(`${status}?$rid=${rid}&operationId=${op}`, `${status}?operationId=${op}&$rid=${rid}`);
        topics.push(
          `${status}?$rid=${rid}&operationId=${op}&operationId=last`,
          `${register}?$rid=${rid}&operationId=${op}`,
        );
      }
    }
    topics.push(
      `${register}?$rid`,
      `${status}?$rid=1&operationId`,
      `${status}?$rid=1&&operationId=2`,
      `${status}x?$rid=1`,
    );
    for (const topic of topics) expect(parseRequestTopic(topic), topic).toEqual(parseRequestTopicGeneral(topic));
    expect(parseRequestTopic(`${status}?$rid=7&operationId=5.0a1b.1c2d`)).toEqual({
      kind: 'operation-status',
      rid: '7',
      operationId: '5.0a1b.1c2d',
    });
  });
});
