import { PassThrough } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { type FirstPacket, peekMqttConnect, readFirstMqttPacket } from './mqtt-connect-peek.js';

const connect = mqttPacket.generate({
  cmd: 'connect',
  protocolId: 'MQTT',
  protocolVersion: 4,
  clean: false,
  clientId: 'dev-1',
  keepalive: 180,
  username: 'hub-a.azure-devices.net/dev-1/?api-version=2021-04-12',
  password: Buffer.from('SharedAccessSignature sr=x&sig=y&se=1'),
});

function readAll(stream: PassThrough): Buffer {
  const chunks: Buffer[] = [];
  for (let chunk = stream.read(); chunk !== null; chunk = stream.read()) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('peekMqttConnect', () => {
  it('reads the CONNECT (split over chunks) and puts every byte back', async () => {
    const stream = new PassThrough();
    const subscribe = mqttPacket.generate({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [{ topic: 'a/#', qos: 0 }],
    });
    const peeked = peekMqttConnect(stream, 1024);
    stream.write(connect.subarray(0, 10));
    stream.write(Buffer.concat([connect.subarray(10), subscribe]));
    expect(await peeked).toEqual({
      kind: 'connect',
      username: 'hub-a.azure-devices.net/dev-1/?api-version=2021-04-12',
      keepaliveSeconds: 180,
    });
    expect(readAll(stream)).toEqual(Buffer.concat([connect, subscribe]));
  });

  it('gives up at once on a first packet announcing more than the bound, and on non-MQTT bytes', async () => {
    const huge = new PassThrough();
    const peeked = peekMqttConnect(huge, 1024);
    huge.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]));
    expect(await peeked).toEqual({ kind: 'other' });
    expect(readAll(huge)).toEqual(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]));

    const http = new PassThrough();
    const other = peekMqttConnect(http, 1024);
    http.write('GET / HTTP/1.1\r\n\r\n');
    expect(await other).toEqual({ kind: 'other' });
  });

  it('reads the CONNECT when a packet over the bound follows it in the same read', async () => {
    const oversized = Buffer.from([0x32, 0x80, 0x80, 0x80, 0x02, 0x61]);
    for (const split of [0, 10]) {
      const stream = new PassThrough();
      const peeked = peekMqttConnect(stream, 1024);
      // Whole in one read, and its end read with the oversized packet's header.
      if (split > 0) stream.write(connect.subarray(0, split));
      stream.write(Buffer.concat([connect.subarray(split), oversized]));
      expect(await peeked).toMatchObject({
        kind: 'connect',
        username: 'hub-a.azure-devices.net/dev-1/?api-version=2021-04-12',
      });
      expect(readAll(stream)).toEqual(Buffer.concat([connect, oversized]));
    }
  });

  it('reports a connection that ends before a whole packet', async () => {
    const stream = new PassThrough();
    const peeked = peekMqttConnect(stream, 1024);
    stream.end(connect.subarray(0, 5));
    expect(await peeked).toEqual({ kind: 'closed' });
  });
});

describe('readFirstMqttPacket', () => {
  it('gives the decoded CONNECT with every byte read and leaves the stream without them', async () => {
    const stream = new PassThrough();
    const subscribe = mqttPacket.generate({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [{ topic: 'a/#', qos: 0 }],
    });
    for (const chunks of [
      [Buffer.concat([connect, subscribe])],
      [connect.subarray(0, 7), Buffer.concat([connect.subarray(7), subscribe])],
    ]) {
      const first = new Promise<FirstPacket>((resolve) => readFirstMqttPacket(stream, 1024, resolve));
      for (const chunk of chunks) stream.write(chunk);
      const read = await first;
      expect(read).toMatchObject({
        kind: 'connect',
        length: connect.length,
        connect: { cmd: 'connect', clientId: 'dev-1' },
      });
      expect(read.kind === 'connect' && read.bytes).toEqual(Buffer.concat([connect, subscribe]));
      expect(stream.read()).toBeNull();
    }
  });
});
