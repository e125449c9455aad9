import { describe, expect, it } from 'vitest';
import { foreignProtocol } from './mqtt-first-bytes.js';

describe('foreignProtocol', () => {
  it('takes an MQTT CONNECT as MQTT', () => {
    expect(foreignProtocol(Buffer.from([0x10, 0x1a, 0x00, 0x04, ...Buffer.from('MQTT')]))).toBeUndefined();
  });

  it('names HTTP and AMQP, and shows other first bytes', () => {
    expect(foreignProtocol(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toEqual({
      protocol: 'http',
      firstBytes: 'GET / HTTP/1.1\\x0d\\x0a',
    });
    expect(foreignProtocol(Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0]))).toEqual({
      protocol: 'amqp',
      firstBytes: 'AMQP\\x03\\x01\\x00\\x00',
    });
    expect(foreignProtocol(Buffer.from([0x30, 0x00]))).toMatchObject({ protocol: 'unknown', firstBytes: '0\\x00' });
  });
});
