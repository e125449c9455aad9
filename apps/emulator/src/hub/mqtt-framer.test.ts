import { describe, expect, it } from 'vitest';
import { packetOfSize } from '../testing/mqtt-bytes.js';
import { MqttPacketFramer } from './mqtt-framer.js';

const packet = (type: number, size: number): Buffer => packetOfSize(type, size, type);

describe('MqttPacketFramer', () => {
  const packets = [packet(0x10, 40), packet(0x32, 1000), packet(0xc0, 0), packet(0x30, 200)];
  const stream = Buffer.concat(packets);

  it('cuts whole packets, however the bytes are split', () => {
    expect(new MqttPacketFramer(1000).push(stream)).toEqual({ kind: 'packets', packets });

    const bytewise = new MqttPacketFramer(1000);
    const cut: Buffer[] = [];
    for (const byte of stream) {
      const framed = bytewise.push(Buffer.of(byte));
      expect(framed.kind).toBe('packets');
      cut.push(...framed.packets);
    }
    expect(cut).toEqual(packets);
    expect(bytewise.heldBytes).toBe(0);

    // A large packet over many reads is held in pieces, then given whole.
    const pieces = new MqttPacketFramer(1000);
    expect(pieces.push(stream.subarray(0, 100))).toEqual({ kind: 'packets', packets: packets.slice(0, 1) });
    expect(pieces.push(stream.subarray(100, 500))).toEqual({ kind: 'packets', packets: [] });
    expect(pieces.heldBytes).toBe(458);
    expect(pieces.push(stream.subarray(500))).toEqual({ kind: 'packets', packets: packets.slice(1) });
  });

  it('refuses a packet announcing more than the bound as soon as its header comes, after the packets before it', () => {
    const framer = new MqttPacketFramer(1000);
    const big = packet(0x32, 20_000);
    expect(framer.push(Buffer.concat([packets[0] as Buffer, big.subarray(0, 2)]))).toEqual({
      kind: 'packets',
      packets: [packets[0]],
    });
    expect(framer.push(big.subarray(2, 10))).toEqual({ kind: 'refused', packets: [], size: 20_000 });
    // Nothing after it is read.
    expect(framer.push(packets[2] as Buffer)).toEqual({ kind: 'packets', packets: [] });
  });

  it('refuses a remaining length longer than four bytes (malformed)', () => {
    const framer = new MqttPacketFramer(1000);
    expect(
      framer.push(Buffer.concat([packets[2] as Buffer, Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])])),
    ).toEqual({ kind: 'refused', packets: [packets[2]], size: undefined });
  });
});
