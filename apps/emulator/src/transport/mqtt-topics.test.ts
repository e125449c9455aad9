import { describe, expect, it } from 'vitest';
import {
  asciiJson,
  firstParameter,
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
    });
    expect(parseMqttUsername('no-slashes')).toBeUndefined();
    expect(parseMqttUsername(undefined)).toBeUndefined();
  });

  it('reads a parameter as URLSearchParams does, first of its name, decoded', () => {
    // Every query of up to 4 pieces among names, separators, escapes (valid, broken, of `-`, of `&`
    // and `=`), `+` and a leading `?`.
    const pieces = [
      'api-version',
      '=',
      '&',
      '?',
      'x',
      '2019',
      '%2D',
      '%2',
      '%',
      '+',
      'api%2Dversion',
      '%26',
      '%3D',
      'é',
    ];
    let queries = [''];
    const all: string[] = [''];
    for (let length = 1; length <= 4; length++) {
      queries = queries.flatMap((q) => pieces.map((p) => q + p));
      for (const query of queries) all.push(query);
    }
    const differing = all.filter(
      (query) => firstParameter(query, 'api-version') !== (new URLSearchParams(query).get('api-version') ?? undefined),
    );
    expect(differing).toEqual([]);
    expect(all.length).toBeGreaterThan(40_000);
    expect(all.filter((query) => firstParameter(query, 'api-version') !== undefined).length).toBeGreaterThan(1_000);
    expect(firstParameter('ClientVersion=a%2Fb&api-version=2019-03-31', 'api-version')).toBe('2019-03-31');
    expect(firstParameter('?api-version=1', 'api-version')).toBe('1');
    expect(firstParameter('x=1&?api-version=1', 'api-version')).toBeUndefined();
    expect(firstParameter('api%2Dversion=a+b%21', 'api-version')).toBe('a b!');
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
