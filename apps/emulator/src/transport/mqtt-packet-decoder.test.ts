import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { decodeWholePackets, firstPacketLength } from './mqtt-packet-decoder.js';

const connect = mqttPacket.generate({
  cmd: 'connect',
  protocolId: 'MQTT',
  protocolVersion: 4,
  clean: true,
  clientId: 'dev-1',
  keepalive: 0,
  username: 'scope/registrations/dev-1/api-version=2019-03-31',
  password: Buffer.from('SharedAccessSignature sr=x&sig=y&se=1'),
});
const subscribe = mqttPacket.generate({
  cmd: 'subscribe',
  messageId: 1,
  subscriptions: [{ topic: '$dps/registrations/res/#', qos: 1 }],
});
const publish = (size: number) =>
  mqttPacket.generate({
    cmd: 'publish',
    topic: '$dps/registrations/PUT/iotdps-register/?$rid=1',
    payload: Buffer.alloc(size, 0x61),
    qos: 1,
    messageId: 2,
    retain: false,
    dup: false,
  });

/** What a fresh parser makes of `bytes`. */
function freshly(bytes: Buffer) {
  const packets: mqttPacket.Packet[] = [];
  let error: Error | undefined;
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on('packet', (packet: mqttPacket.Packet) => packets.push(packet));
  parser.on('error', (err: Error) => {
    error ??= err;
  });
  parser.parse(bytes);
  return { packets, error };
}

function shared(bytes: Buffer) {
  const packets: mqttPacket.Packet[] = [];
  const error = decodeWholePackets(bytes, { onPacket: (packet) => packets.push(packet) });
  return { packets, error };
}

describe('decodeWholePackets', () => {
  it('decodes whole packets in order as a fresh parser does, call after call', () => {
    const bytes = Buffer.concat([connect, subscribe, publish(200)]);
    expect(shared(bytes)).toEqual(freshly(bytes));
    // The CONNECT above became the shared parser's settings; the next call starts fresh again.
    expect(shared(subscribe)).toEqual(freshly(subscribe));
    expect(shared(publish(20_000))).toEqual(freshly(publish(20_000)));
  });

  it('returns the error after the packets before it, and decodes the next call afresh', () => {
    const bad = Buffer.concat([subscribe, Buffer.from([0x62, 0x02, 0x00, 0x01])]); // PUBREL with flags 2 is fine …
    expect(shared(bad)).toEqual(freshly(bad));
    const invalid = Buffer.concat([subscribe, Buffer.from([0x60, 0x02, 0x00, 0x01])]); // … flags 0 are not
    const result = shared(invalid);
    expect(result.packets).toHaveLength(1);
    expect(result.error?.message).toBe(freshly(invalid).error?.message);
    expect(shared(subscribe)).toEqual(freshly(subscribe));
  });

  it('decodes with a parser of its own when called from a packet handler', () => {
    const outer: string[] = [];
    const inner: string[] = [];
    decodeWholePackets(Buffer.concat([subscribe, subscribe]), {
      onPacket: (packet) => {
        outer.push(packet.cmd);
        decodeWholePackets(connect, { onPacket: (nested) => inner.push(nested.cmd) });
      },
    });
    expect(outer).toEqual(['subscribe', 'subscribe']);
    expect(inner).toEqual(['connect', 'connect']);
  });

  it('starts afresh after a handler threw', () => {
    expect(() =>
      decodeWholePackets(Buffer.concat([subscribe, subscribe]), {
        onPacket: () => {
          throw new Error('handler failed');
        },
      }),
    ).toThrow('handler failed');
    expect(shared(subscribe)).toEqual(freshly(subscribe));
  });
});

describe('decodeWholePackets on the packets of a registration, its CONNECT too (decoded without the parser)', () => {
  const packets: Buffer[] = [
    subscribe,
    mqttPacket.generate({
      cmd: 'subscribe',
      messageId: 65535,
      subscriptions: [
        { topic: '$dps/registrations/res/#', qos: 0 },
        { topic: 'a/€/+', qos: 2 },
        { topic: '', qos: 1 },
      ],
    }),
    publish(0),
    publish(1),
    publish(100),
    publish(125),
    publish(16_000),
    publish(16_400),
    mqttPacket.generate({ cmd: 'publish', topic: 't/é', payload: 'x', qos: 0, retain: true, dup: true }),
    mqttPacket.generate({ cmd: 'publish', topic: '', payload: '', qos: 1, messageId: 258, retain: false, dup: true }),
    mqttPacket.generate({ cmd: 'publish', topic: 'q2', payload: 'x', qos: 2, messageId: 3, retain: false, dup: false }),
    mqttPacket.generate({ cmd: 'puback', messageId: 1 }),
    mqttPacket.generate({ cmd: 'puback', messageId: 65535 }),
    mqttPacket.generate({ cmd: 'pingreq' }),
    mqttPacket.generate({ cmd: 'disconnect' }),
    mqttPacket.generate({ cmd: 'unsubscribe', messageId: 4, unsubscriptions: ['a'] }),
    mqttPacket.generate({ cmd: 'pubrel', messageId: 5 }),
    connect,
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQIsdp',
      protocolVersion: 3,
      clean: false,
      clientId: 'dé€',
      keepalive: 65535,
      username: 'u',
    }),
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: '',
      keepalive: 0,
    }),
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: 'x'.repeat(300),
      keepalive: 180,
      username: 'y'.repeat(10_000),
      password: Buffer.alloc(0),
    }),
    // Password without username (MQTT 3.1.1 forbids it; the parser reads it all the same).
    Buffer.from([
      0x10, 0x10, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x40, 0x00, 0x00, 0x00, 0x01, 0x61, 0x00, 0x01, 0x70,
    ]),
  ];
  // CONNECTs that the parser reads in its own way or refuses.
  const header = (flags: number, version = 4) => [0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, version, flags, 0x00, 0x3c];
  const connectOf = (body: number[], first = 0x10) => Buffer.from([first, body.length, ...body]);
  const oddConnects: Buffer[] = [
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: 'w',
      keepalive: 0,
      will: { topic: 'a', payload: Buffer.from('b'), qos: 1, retain: true },
    }),
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clean: true,
      clientId: 'v5',
      keepalive: 0,
    }),
    connectOf([...header(0x02, 0x84), 0x00, 0x01, 0x61]), // bridge mode
    connectOf([...header(0x02, 6), 0x00, 0x01, 0x61]), // protocol level 6
    connectOf([0x00, 0x04, 0x4d, 0x51, 0x54, 0x58, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00]), // protocol name MQTX
    connectOf([...header(0x03), 0x00, 0x01, 0x61]), // reserved flag
    connectOf([...header(0x12), 0x00, 0x01, 0x61]), // will QoS without a will
    connectOf([...header(0x22), 0x00, 0x01, 0x61]), // will retain without a will
    connectOf([...header(0x02), 0x00, 0x01, 0x61, 0x00]), // a byte after the client id
    connectOf([...header(0x02), 0x00, 0x05, 0x61]), // client id beyond the packet
    connectOf([...header(0x82), 0x00, 0x01, 0x61, 0x00]), // username without its whole length
    connectOf([...header(0xc2), 0x00, 0x01, 0x61, 0x00, 0x01, 0x75, 0x00, 0x09, 0x70]), // password beyond the packet
    connectOf([...header(0x02), 0x00, 0x02, 0xff, 0xfe]), // client id not UTF-8
    connectOf([...header(0x02), 0x00, 0x01, 0x61], 0x11), // flags in the fixed header
    connectOf([0x00, 0x04, 0x4d, 0x51]), // name without the rest
  ];
  // What the parser refuses or reads in its own way: flags, QoS 3, fields beyond the packet,
  // non-minimal lengths, extra bytes, invalid UTF-8 in a topic.
  const odd: Buffer[] = [
    Buffer.from([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]), // PUBLISH QoS 3
    Buffer.from([0x30, 0x01, 0x00]), // PUBLISH without a whole topic length
    Buffer.from([0x30, 0x02, 0x00, 0x05]), // topic beyond the packet
    Buffer.from([0x32, 0x03, 0x00, 0x01, 0x61, 0x40, 0x02, 0x00, 0x07]), // message id beyond the packet
    Buffer.from([0x30, 0x04, 0x00, 0x02, 0xff, 0xfe]), // topic not UTF-8
    Buffer.from([0x30, 0x80, 0x00]), // non-minimal remaining length
    Buffer.from([0x41, 0x02, 0x00, 0x01]), // PUBACK with flags
    Buffer.from([0x40, 0x03, 0x00, 0x01, 0x00]), // PUBACK with an extra byte
    Buffer.from([0x40, 0x00, 0xc0, 0x00]), // PUBACK without a message id
    Buffer.from([0xe0, 0x01, 0x00]), // DISCONNECT with a byte
    Buffer.from([0xe2, 0x00]), // DISCONNECT with flags
    Buffer.from([0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x01]), // SUBSCRIBE without flags 2
    Buffer.from([0x82, 0x02, 0x00, 0x01]), // SUBSCRIBE without a subscription
    Buffer.from([0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x03]), // SUBSCRIBE QoS 3
    Buffer.from([0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x05]), // SUBSCRIBE with option bits
    Buffer.from([0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 0x61]), // SUBSCRIBE without options
    Buffer.from([0x82, 0x06, 0x00, 0x01, 0x00, 0x03, 0x61, 0x01]), // SUBSCRIBE topic beyond the packet
  ];

  it('takes the CONNECTs of the SDKs itself (plain objects, not packets of the parser)', () => {
    for (const packet of packets.slice(-5)) {
      const decoded = shared(packet).packets[0];
      expect(decoded?.cmd).toBe('connect');
      expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    }
    expect(Object.getPrototypeOf(shared(oddConnects[0] as Buffer).packets[0])).not.toBe(Object.prototype);
  });

  it('decodes each as a fresh parser does, alone and in sequences', () => {
    for (const packet of [...packets, ...odd, ...oddConnects]) expect(shared(packet)).toEqual(freshly(packet));
    // Pairs of the small ones (deep comparisons of large payloads are slow).
    const small = packets.filter((packet) => packet.length < 200);
    for (const a of small) {
      for (const b of [...small, ...odd, ...oddConnects]) {
        const bytes = Buffer.concat([a, b, a]);
        expect(shared(bytes)).toEqual(freshly(bytes));
      }
    }
    const all = Buffer.concat([connect, ...packets]);
    expect(shared(all)).toEqual(freshly(all));
  });
});

describe('firstPacketLength', () => {
  it('reads the fixed header of the first packet, for one- to three-byte lengths', () => {
    expect(firstPacketLength(Buffer.concat([connect, subscribe]))).toBe(connect.length);
    expect(firstPacketLength(Buffer.from([0xc0, 0x00]))).toBe(2);
    expect(firstPacketLength(publish(200))).toBe(publish(200).length);
    expect(firstPacketLength(publish(20_000))).toBe(publish(20_000).length);
  });
});
