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

describe('firstPacketLength', () => {
  it('reads the fixed header of the first packet, for one- to three-byte lengths', () => {
    expect(firstPacketLength(Buffer.concat([connect, subscribe]))).toBe(connect.length);
    expect(firstPacketLength(Buffer.from([0xc0, 0x00]))).toBe(2);
    expect(firstPacketLength(publish(200))).toBe(publish(200).length);
    expect(firstPacketLength(publish(20_000))).toBe(publish(20_000).length);
  });
});
