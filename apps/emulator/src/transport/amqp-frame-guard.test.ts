import { describe, expect, it } from 'vitest';
import { AmqpFrameGuard } from './amqp-frame-guard.js';

const SASL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0]);
const AMQP_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0]);
const frame = (size: number, doff = 2, type = 0) => {
  const f = Buffer.alloc(Math.max(size, 8));
  f.writeUInt32BE(size, 0);
  f[4] = doff;
  f[5] = type;
  return f;
};

describe('AmqpFrameGuard', () => {
  it('says where in the chunk the problem starts, so that the framing before it can be passed on', () => {
    const bad = frame(8);
    bad.writeUInt32BE(2, 0);
    expect(new AmqpFrameGuard(1024).push(Buffer.concat([SASL_HEADER, frame(16, 2, 1), bad]))).toMatchObject({
      kind: 'malformed-frame',
      at: 24,
    });
  });

  it('passes a SASL exchange, the second header and AMQP frames, in any chunking', () => {
    const stream = Buffer.concat([SASL_HEADER, frame(40, 2, 1), frame(21, 2, 1), AMQP_HEADER, frame(8), frame(300)]);
    for (const size of [1, 3, 7, 64, stream.length]) {
      const guard = new AmqpFrameGuard(1024);
      for (let i = 0; i < stream.length; i += size) {
        expect(guard.push(stream.subarray(i, i + size))).toBeUndefined();
      }
    }
  });

  it('names HTTP and MQTT spoken on the AMQP port', () => {
    expect(new AmqpFrameGuard(1024).push(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))).toMatchObject({
      kind: 'not-amqp',
      protocol: 'http',
      firstBytes: 'GET / HTTP/1.1\\x0d\\x0a',
    });
    const connect = Buffer.from([0x10, 0x1a, 0x00, 0x04, ...Buffer.from('MQTT'), 0x04, 0x02, 0x00, 0x3c]);
    expect(new AmqpFrameGuard(1024).push(connect)).toMatchObject({ kind: 'not-amqp', protocol: 'mqtt' });
    expect(new AmqpFrameGuard(1024).push(Buffer.from([0x00, 0x01]))).toMatchObject({
      kind: 'not-amqp',
      protocol: 'unknown',
      firstBytes: '\\x00\\x01',
    });
  });

  it('requires SASL first, then AMQP, and no third header', () => {
    expect(new AmqpFrameGuard(1024).push(AMQP_HEADER)).toMatchObject({
      kind: 'unsupported-header',
      header: 'AMQP\\x00\\x01\\x00\\x00',
    });
    const guard = new AmqpFrameGuard(1024);
    expect(guard.push(Buffer.concat([SASL_HEADER, frame(8, 2, 1), SASL_HEADER]))).toMatchObject({
      kind: 'unsupported-header',
    });
    const third = new AmqpFrameGuard(1024);
    expect(third.push(Buffer.concat([SASL_HEADER, AMQP_HEADER, frame(8), AMQP_HEADER]))).toMatchObject({
      kind: 'unsupported-header',
    });
  });

  it('with saslOptional, also takes the AMQP header first (X.509 devices), then AMQP frames only', () => {
    const stream = Buffer.concat([AMQP_HEADER, frame(8), frame(300)]);
    for (const size of [1, 5, stream.length]) {
      const guard = new AmqpFrameGuard(1024, { saslOptional: true });
      for (let i = 0; i < stream.length; i += size) {
        expect(guard.push(stream.subarray(i, i + size))).toBeUndefined();
      }
      expect(guard.withoutSasl).toBe(true);
    }
    const sasl = new AmqpFrameGuard(1024, { saslOptional: true });
    expect(sasl.push(Buffer.concat([SASL_HEADER, frame(40, 2, 1), AMQP_HEADER, frame(8)]))).toBeUndefined();
    expect(sasl.withoutSasl).toBe(false);
    expect(
      new AmqpFrameGuard(1024, { saslOptional: true }).push(Buffer.concat([AMQP_HEADER, frame(8), AMQP_HEADER])),
    ).toMatchObject({ kind: 'unsupported-header' });
    expect(
      new AmqpFrameGuard(1024, { saslOptional: true }).push(Buffer.concat([AMQP_HEADER, frame(16, 2, 1)])),
    ).toMatchObject({ kind: 'malformed-frame', reason: 'a SASL frame on a connection that opened without SASL' });
  });

  it('refuses a header of another protocol id or version', () => {
    expect(new AmqpFrameGuard(1024).push(Buffer.from([0x41, 0x4d, 0x51, 0x50, 2, 1, 0, 0]))).toMatchObject({
      kind: 'unsupported-header',
      header: 'AMQP\\x02\\x01\\x00\\x00',
    });
    // AMQP 0-9-1's header
    expect(new AmqpFrameGuard(1024).push(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]))).toMatchObject({
      kind: 'unsupported-header',
    });
  });

  it('stops at a frame larger than the limit, announced in its first bytes', () => {
    const guard = new AmqpFrameGuard(1024);
    expect(guard.push(SASL_HEADER)).toBeUndefined();
    const header = frame(8);
    header.writeUInt32BE(0xfffffff0, 0);
    expect(guard.push(header)).toEqual({ kind: 'frame-too-large', size: 0xfffffff0, at: 0 });
    // and then stays quiet
    expect(guard.push(frame(2000))).toBeUndefined();
  });

  it('refuses frames that cannot be frames', () => {
    const after = (f: Buffer) => {
      const guard = new AmqpFrameGuard(1024);
      guard.push(Buffer.concat([SASL_HEADER, AMQP_HEADER]));
      return guard.push(f);
    };
    const tiny = frame(8);
    tiny.writeUInt32BE(3, 0);
    expect(after(tiny)).toEqual({ kind: 'malformed-frame', reason: 'frame size 3 is below the minimum of 8', at: 0 });
    expect(after(frame(16, 1))).toMatchObject({
      kind: 'malformed-frame',
      reason: expect.stringContaining('data offset 1'),
    });
    expect(after(frame(16, 5))).toMatchObject({
      kind: 'malformed-frame',
      reason: expect.stringContaining('data offset 5'),
    });
    expect(after(frame(16, 2, 7))).toMatchObject({
      kind: 'malformed-frame',
      reason: expect.stringContaining('frame type 7'),
    });
  });
});
