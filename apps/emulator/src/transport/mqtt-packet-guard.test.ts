import { describe, expect, it } from 'vitest';
import { packetOfSize } from '../testing/mqtt-bytes.js';
import { MqttPacketSizeGuard } from './mqtt-packet-guard.js';

const packet = (type: number, size: number): Buffer => packetOfSize(type, size, 0x61);

describe('MqttPacketSizeGuard', () => {
  it('lets packets up to the limit through, however the bytes are split', () => {
    const stream = Buffer.concat([packet(0x10, 40), packet(0x32, 1000), packet(0xc0, 0), packet(0x30, 1000)]);
    const whole = new MqttPacketSizeGuard(1000);
    expect(whole.push(stream)).toBeUndefined();
    const bytewise = new MqttPacketSizeGuard(1000);
    for (const byte of stream) expect(bytewise.push(Uint8Array.of(byte))).toBeUndefined();
  });

  it('reports the announced size of the first packet over the limit as soon as its header arrives', () => {
    const guard = new MqttPacketSizeGuard(1000);
    expect(guard.push(packet(0x30, 500))).toBeUndefined();
    const big = packet(0x32, 20_000_000);
    expect(guard.push(big.subarray(0, 3))).toBeUndefined();
    expect(guard.push(big.subarray(3, 5))).toBe(20_000_000);
  });

  it('stops watching at a malformed length (aedes reports it)', () => {
    const guard = new MqttPacketSizeGuard(10);
    expect(guard.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0xff]))).toBeUndefined();
    expect(guard.push(packet(0x30, 1000))).toBeUndefined();
  });

  it('tells when the bytes fed end between packets', () => {
    const guard = new MqttPacketSizeGuard(1000);
    expect(guard.atPacketBoundary).toBe(true);
    const two = Buffer.concat([packet(0x10, 40), packet(0xc0, 0)]);
    guard.push(two.subarray(0, 1));
    expect(guard.atPacketBoundary).toBe(false);
    guard.push(two.subarray(1, 20));
    expect(guard.atPacketBoundary).toBe(false);
    guard.push(two.subarray(20, 42));
    expect(guard.atPacketBoundary).toBe(true);
    guard.push(two.subarray(42, 43));
    expect(guard.atPacketBoundary).toBe(false);
    guard.push(two.subarray(43));
    expect(guard.atPacketBoundary).toBe(true);
    guard.push(packet(0x30, 300).subarray(0, 2));
    expect(guard.atPacketBoundary).toBe(false);
  });

  it('tells where in the bytes fed the packet over the limit starts', () => {
    const before = Buffer.concat([packet(0x10, 40), packet(0xc0, 0)]);
    const big = packet(0x32, 20_000);
    const guard = new MqttPacketSizeGuard(1000);
    expect(guard.push(Buffer.concat([before, big.subarray(0, 10)]))).toBe(20_000);
    expect(guard.oversizedAt).toBe(before.length);
    // Its header began in bytes fed before: nothing of the last bytes comes before it.
    const split = new MqttPacketSizeGuard(1000);
    expect(split.push(Buffer.concat([before, big.subarray(0, 2)]))).toBeUndefined();
    expect(split.push(big.subarray(2, 10))).toBe(20_000);
    expect(split.oversizedAt).toBe(0);
  });
});
