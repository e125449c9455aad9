import type mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { type ConnectReturnCode, DeviceSession } from './mqtt-device-session.js';

const CONNECT: mqttPacket.IConnectPacket = {
  cmd: 'connect',
  protocolId: 'MQTT',
  protocolVersion: 4,
  clean: true,
  keepalive: 60,
  clientId: 'dev-1',
  username: '0ne00000A0A/registrations/dev-1/api-version=2019-03-31',
  password: Buffer.from('token'),
};

function session(returnCode: ConnectReturnCode = 0) {
  const sent: mqttPacket.Packet[] = [];
  const closed: (string | undefined)[] = [];
  const connects: mqttPacket.IConnectPacket[] = [];
  const requests: { topic: string; payload: string }[] = [];
  const s = new DeviceSession({
    send: (packet) => sent.push(packet),
    close: (reason) => closed.push(reason),
    connected: (connect) => {
      connects.push(connect);
      return returnCode;
    },
    request: (topic, payload) => requests.push({ topic, payload: payload.toString('utf8') }),
  });
  return { s, sent, closed, connects, requests };
}

const publish = (topic: string, qos: 0 | 1 | 2, messageId = 7): mqttPacket.IPublishPacket => ({
  cmd: 'publish',
  topic,
  payload: Buffer.from('{}'),
  qos,
  messageId,
  retain: true,
  dup: false,
});

describe('DeviceSession (MQTT 3.1.1 for the DPS device API, without sockets)', () => {
  it('accepts a CONNECT with CONNACK 0 and hands over its identity and keepalive', () => {
    const { s, sent, connects } = session();
    s.packet(CONNECT);
    expect(connects).toEqual([CONNECT]);
    expect(sent).toEqual([{ cmd: 'connack', returnCode: 0, sessionPresent: false }]);
    expect(s.clientId).toBe('dev-1');
    expect(s.keepaliveSeconds).toBe(60);
  });

  it('closes a connection whose first packet is not a CONNECT, and one that sends a second', () => {
    const first = session();
    first.s.packet({ cmd: 'pingreq' });
    expect(first.sent).toEqual([]);
    expect(first.closed).toEqual(['sent PINGREQ before CONNECT']);

    const second = session();
    second.s.packet(CONNECT);
    second.s.packet(CONNECT);
    expect(second.closed).toEqual(['sent a second CONNECT']);
    expect(second.s.closed).toBe(true);
  });

  it('answers protocol levels other than 3 and 4 with CONNACK 1 and closes', () => {
    const { s, sent, closed, connects } = session();
    s.packet({ ...CONNECT, protocolVersion: 5 });
    expect(sent).toEqual([{ cmd: 'connack', returnCode: 1, sessionPresent: false }]);
    expect(closed[0]).toMatch(/protocol level 5/);
    expect(connects).toEqual([]);
  });

  it('answers CONNACK 3 and ends the connection when the server cannot serve the CONNECT', () => {
    const { s, sent, closed, connects } = session(3);
    s.packet(CONNECT);
    expect(connects).toEqual([CONNECT]);
    expect(sent).toEqual([{ cmd: 'connack', returnCode: 3, sessionPresent: false }]);
    // Closed with no reason of the session's: the transport logged why.
    expect(closed).toEqual([undefined]);
    expect(s.closed).toBe(true);
    s.packet(publish('$dps/registrations/PUT/iotdps-register/?$rid=1', 1));
    expect(sent).toHaveLength(1);
  });

  it('answers CONNACK 5 and ends the connection when the transport refuses the CONNECT as not authorized', () => {
    const { s, sent, closed } = session(5);
    s.packet(CONNECT);
    expect(sent).toEqual([{ cmd: 'connack', returnCode: 5, sessionPresent: false }]);
    expect(closed).toEqual([undefined]);
    expect(s.closed).toBe(true);
  });

  it('grants the response filter at QoS 1 at most and refuses every other filter', () => {
    const { s, sent } = session();
    s.packet(CONNECT);
    s.packet({
      cmd: 'subscribe',
      messageId: 3,
      subscriptions: [
        { topic: '$dps/registrations/res/#', qos: 2 },
        { topic: '$dps/#', qos: 1 },
        { topic: '$dps/registrations/res/#', qos: 0 },
      ],
    });
    expect(sent.at(-1)).toEqual({ cmd: 'suback', messageId: 3, granted: [1, 0x80, 0] });
    s.packet({ cmd: 'unsubscribe', messageId: 4, unsubscriptions: ['$dps/registrations/res/#'] });
    expect(sent.at(-1)).toMatchObject({ cmd: 'unsuback', messageId: 4 });
  });

  it('acknowledges requests by their QoS before handing them over', () => {
    const { s, sent, requests } = session();
    s.packet(CONNECT);
    s.packet(publish('$dps/registrations/PUT/iotdps-register/?$rid=1', 1, 11));
    expect(sent.at(-1)).toEqual({ cmd: 'puback', messageId: 11 });
    s.packet(publish('$dps/registrations/PUT/iotdps-register/?$rid=2', 2, 12));
    expect(sent.at(-1)).toEqual({ cmd: 'pubrec', messageId: 12 });
    s.packet({ cmd: 'pubrel', messageId: 12 });
    expect(sent.at(-1)).toEqual({ cmd: 'pubcomp', messageId: 12 });
    const before = sent.length;
    s.packet(publish('$dps/registrations/PUT/iotdps-register/?$rid=3', 0));
    expect(sent.length).toBe(before);
    expect(requests.map((r) => r.topic)).toEqual([
      '$dps/registrations/PUT/iotdps-register/?$rid=1',
      '$dps/registrations/PUT/iotdps-register/?$rid=2',
      '$dps/registrations/PUT/iotdps-register/?$rid=3',
    ]);
  });

  it('closes a device that publishes outside the request topics or on the response topics, unacknowledged', () => {
    for (const topic of ['devices/dev-1/messages/events/', '$dps/registrations/res/200/?$rid=forged']) {
      const { s, sent, closed, requests } = session();
      s.packet(CONNECT);
      s.packet(publish(topic, 1));
      expect(sent).toHaveLength(1);
      expect(requests).toEqual([]);
      expect(closed[0]).toMatch(/not a DPS device request topic/);
    }
  });

  it('answers at QoS 1 with packet ids that wrap after 65535, and drops answers once ended', () => {
    const { s, sent } = session();
    s.packet(CONNECT);
    for (let i = 0; i < 65536; i++) s.reply('$dps/registrations/res/202/?$rid=1', Buffer.from('{}'));
    const ids = sent.filter((p) => p.cmd === 'publish').map((p) => p.messageId);
    expect(ids.slice(0, 2)).toEqual([1, 2]);
    expect(ids.slice(-2)).toEqual([65535, 1]);
    expect(sent.at(-1)).toMatchObject({ qos: 1, retain: false, dup: false });
    s.ended();
    const count = sent.length;
    s.reply('$dps/registrations/res/200/?$rid=2', Buffer.from('{}'));
    expect(sent.length).toBe(count);
  });

  it('answers at the QoS the response topics were last granted: QoS 0 to a QoS 0 subscription', () => {
    const { s, sent } = session();
    s.packet(CONNECT);
    const subscribe = (messageId: number, qos: 0 | 1 | 2) =>
      s.packet({ cmd: 'subscribe', messageId, subscriptions: [{ topic: '$dps/registrations/res/#', qos }] });
    subscribe(1, 0);
    s.reply('$dps/registrations/res/202/?$rid=1', Buffer.from('{}'));
    expect(sent.at(-1)).toEqual({
      cmd: 'publish',
      topic: '$dps/registrations/res/202/?$rid=1',
      payload: Buffer.from('{}'),
      qos: 0,
      retain: false,
      dup: false,
    });
    subscribe(2, 2);
    s.reply('$dps/registrations/res/200/?$rid=2', Buffer.from('{}'));
    expect(sent.at(-1)).toMatchObject({ qos: 1, messageId: 1 });
  });

  it('answers PINGREQ, ends gracefully on DISCONNECT and ignores what follows', () => {
    const { s, sent, closed, requests } = session();
    s.packet(CONNECT);
    s.packet({ cmd: 'pingreq' });
    expect(sent.at(-1)).toEqual({ cmd: 'pingresp' });
    s.packet({ cmd: 'disconnect' });
    expect(closed).toEqual([undefined]);
    s.packet(publish('$dps/registrations/PUT/iotdps-register/?$rid=9', 1));
    expect(requests).toEqual([]);
  });

  it('closes a client sending what only a server sends', () => {
    const { s, closed } = session();
    s.packet(CONNECT);
    s.packet({ cmd: 'suback', messageId: 1, granted: [0] });
    expect(closed[0]).toMatch(/SUBACK, which a client does not send/);
  });
});
