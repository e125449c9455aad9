import type { TLSSocket } from 'node:tls';
import type { LogRecord } from '@dpskit/node-kit';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import type { Emulator } from '../emulator.js';
import { groupDeviceKey } from '../testing/fixtures.js';
import { logClock } from '../testing/log-clock.js';
import {
  connectAndSubscribe,
  DISCONNECT,
  dpsConnect,
  MALFORMED,
  PINGREQ,
  PUBLISH_OUTSIDE,
} from '../testing/mqtt-bytes.js';
import { closeOf, openMqttWebSocket, openWebSocket, silentPeerEnding } from '../testing/raw-websocket.js';
import { register } from '../testing/sdk.js';
import { startTestBedWithWebhook } from '../testing/test-bed.js';
import { MAX_MQTT_PACKET_BYTES } from './mqtt.js';
import { MAX_WEBSOCKET_MESSAGE_FRAMES, TEXT_MESSAGE_CLOSE } from './websocket.js';

// What the SDKs never send over WebSockets, with a raw `ws` client; after each, an SDK device still
// registers over MQTT over WebSockets.

let emulator: Emulator;
let close: (() => Promise<void>) | undefined;
const logs: LogRecord[] = [];

// Each test in a second of its own on the log's clock: the first warning of each kind it causes is
// logged in full (the listeners' warnings are limited to one line in full a second per kind).
const clock = logClock();
beforeEach(() => clock.nextSecond());

beforeAll(async () => {
  ({ emulator, close } = await startTestBedWithWebhook({ log: (record) => logs.push(record), logClock: clock.now }));
});

afterAll(() => close?.());

const stillServes = async (id: string) =>
  expect(await register(emulator, id, groupDeviceKey('hashed', id), { transport: 'mqtt-ws' })).toMatchObject({
    status: 'assigned',
  });

/** A client's WebSocket frame (masked, as RFC 6455 requires of a client), FIN set. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ (mask[i % 4] as number)));
  const length =
    payload.length < 126
      ? Buffer.from([0x80 | payload.length])
      : Buffer.from([0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([Buffer.from([0x80 | opcode]), length, mask, masked]);
}

/** `bytes` as one WebSocket message in `frames` frames (a first frame and continuations; empty ones once the bytes run out). */
function sendInFrames(ws: WebSocket, bytes: Buffer, frames: number): void {
  const size = Math.ceil(bytes.length / frames);
  for (let i = 0; i < frames; i++) {
    ws.send(bytes.subarray(i * size, (i + 1) * size), { binary: true, fin: i === frames - 1 });
  }
}

describe('WebSockets at /$iothub/websocket', () => {
  it('reports where it listens', () => {
    const endpoint = emulator.endpoints.webSockets;
    expect(endpoint?.port).toBe(emulator.endpoints.https?.port);
    expect(endpoint?.provisioningHost).toBe('localhost');
    expect(endpoint?.url).toBe(`wss://localhost:${endpoint?.port}/$iothub/websocket`);
  });

  it('refuses an unknown subprotocol with a 400 that names the served ones, and logs it', async () => {
    const attempt = await openWebSocket(emulator, ['stomp']);
    expect(attempt).toMatchObject({ kind: 'refused', status: 400 });
    if (attempt.kind !== 'refused') return;
    expect(attempt.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(attempt.body)).toMatchObject({
      errorCode: 400001,
      message: expect.stringMatching(
        /^The WebSocket subprotocol "stomp" is not served at \/\$iothub\/websocket; use mqtt/,
      ),
    });
    expect(logs.findLast((l) => l.event === 'websocket.upgrade')).toMatchObject({
      level: 'warn',
      subprotocol: 'stomp',
      status: 400,
    });
    await stillServes('ws-after-stomp');
  });

  it("logs a refused upgrade's URL with its query masked: a SAS token's sig= never reaches the log", async () => {
    const from = logs.length;
    const attempt = await openWebSocket(
      emulator,
      ['stomp'],
      '/$iothub/websocket?sig=secret-signature&code=secret-code',
    );
    expect(attempt).toMatchObject({ kind: 'refused', status: 400 });
    const records = logs.slice(from);
    expect(records.find((l) => l.event === 'websocket.upgrade')).toMatchObject({
      level: 'warn',
      path: '/$iothub/websocket?****',
    });
    expect(records.filter((l) => JSON.stringify(l).includes('secret-'))).toEqual([]);
  });

  it('refuses an upgrade offering no subprotocol', async () => {
    const attempt = await openWebSocket(emulator, []);
    expect(attempt).toMatchObject({ kind: 'refused', status: 400 });
    if (attempt.kind === 'refused') expect(attempt.body).toContain('none was offered');
  });

  it('refuses an upgrade to another path, saying where the WebSocket transports are', async () => {
    const attempt = await openWebSocket(emulator, ['mqtt'], '/mqtt');
    expect(attempt).toMatchObject({ kind: 'refused', status: 400 });
    if (attempt.kind === 'refused') expect(attempt.body).toContain('served at /$iothub/websocket');
  });

  it('closes a connection whose message is larger than the limit with 1009, logs it, and keeps serving', async () => {
    const attempt = await openWebSocket(emulator, ['mqtt']);
    expect(attempt).toMatchObject({ kind: 'open', protocol: 'mqtt' });
    if (attempt.kind !== 'open') return;
    const closed = closeOf(attempt.ws);
    attempt.ws.send(Buffer.alloc(MAX_MQTT_PACKET_BYTES + 1024, 0x30));
    expect((await closed).code).toBe(1009);
    await expect
      .poll(() => logs.find((l) => l.event === 'websocket.connection' && l.level === 'warn'))
      .toMatchObject({
        code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH',
        protocol: 'mqtt',
      });
    await stillServes('ws-after-oversized');
  });

  it(`closes a connection whose message comes in more than ${MAX_WEBSOCKET_MESSAGE_FRAMES} frames with 1008, logs it, and keeps serving`, async () => {
    // Within the limit: an MQTT CONNECT and an AMQP protocol header, each in exactly that many frames, are answered.
    const mqtt = await openMqttWebSocket(emulator);
    sendInFrames(mqtt.ws, dpsConnect('ws-fragments'), MAX_WEBSOCKET_MESSAGE_FRAMES);
    await expect.poll(() => mqtt.received.map((packet) => packet.cmd)).toEqual(['connack']);
    mqtt.ws.terminate();
    const amqp = await openWebSocket(emulator, ['AMQPWSB10']);
    if (amqp.kind !== 'open') throw new Error('not upgraded');
    const answered: Buffer[] = [];
    amqp.ws.on('message', (data: Buffer) => answered.push(data));
    sendInFrames(amqp.ws, Buffer.from('AMQP\x03\x01\x00\x00', 'latin1'), MAX_WEBSOCKET_MESSAGE_FRAMES);
    await expect.poll(() => Buffer.concat(answered).subarray(0, 8).toString('latin1')).toBe('AMQP\x03\x01\x00\x00');
    amqp.ws.terminate();

    // One frame more: ws held every fragment, each a slice of the chunk it was read in, up to 16,384 of them.
    for (const [protocol, bytes] of [
      ['mqtt', dpsConnect('ws-fragments-over')],
      ['AMQPWSB10', Buffer.from('AMQP\x03\x01\x00\x00', 'latin1')],
    ] as const) {
      // Each connection's warning logged in full: one in full a second of the log's clock.
      clock.nextSecond();
      const attempt = await openWebSocket(emulator, [protocol]);
      if (attempt.kind !== 'open') throw new Error('not upgraded');
      const closed = closeOf(attempt.ws);
      const from = logs.length;
      sendInFrames(attempt.ws, bytes, MAX_WEBSOCKET_MESSAGE_FRAMES + 1);
      expect((await closed).code, protocol).toBe(1008);
      await expect
        .poll(() => logs.slice(from).filter((l) => l.event === 'websocket.connection' && l.level === 'warn'))
        .toEqual([
          expect.objectContaining({
            code: 'WS_ERR_TOO_MANY_BUFFERED_PARTS',
            protocol: protocol === 'mqtt' ? 'mqtt' : 'amqp',
            maxMessageFrames: MAX_WEBSOCKET_MESSAGE_FRAMES,
          }),
        ]);
    }
    await stillServes('ws-after-fragments');
    expect(
      await register(emulator, 'ws-after-fragments-amqp', groupDeviceKey('hashed', 'ws-after-fragments-amqp'), {
        transport: 'amqp-ws',
      }),
    ).toMatchObject({ status: 'assigned' });
  });

  it('closes a connection that sends a text message with 1003, the answers to the binary messages before it delivered', async () => {
    // An MQTT CONNECT whose bytes are all ASCII (no username: flags 0x02), so that it is valid UTF-8
    // text; the old code answered it with a CONNACK and read on.
    const body = Buffer.concat([Buffer.from('\x00\x04MQTT\x04\x02\x00\x3c\x00\x03', 'latin1'), Buffer.from('abc')]);
    const asciiConnect = Buffer.concat([Buffer.from([0x10, body.length]), body]);
    const from = logs.length;
    const mqtt = await openMqttWebSocket(emulator);
    // In one write: CONNECT and SUBSCRIBE in a binary message, then the text message.
    (mqtt.ws as unknown as { _socket: TLSSocket })._socket.write(
      Buffer.concat([clientFrame(0x2, connectAndSubscribe('ws-text')), clientFrame(0x1, asciiConnect)]),
    );
    expect({ ...(await mqtt.closed), received: mqtt.received.map((packet) => packet.cmd) }).toEqual({
      ...TEXT_MESSAGE_CLOSE,
      received: ['connack', 'suback'],
    });

    // The second connection's warning logged in full too, in the next second of the log's clock.
    clock.nextSecond();
    const amqp = await openWebSocket(emulator, ['AMQPWSB10']);
    if (amqp.kind !== 'open') throw new Error('not upgraded');
    const answered: Buffer[] = [];
    amqp.ws.on('message', (data: Buffer) => answered.push(data));
    const closed = closeOf(amqp.ws);
    amqp.ws.send('AMQP\x03\x01\x00\x00'); // the SASL protocol header, as text
    expect({ ...(await closed), answered: answered.length }).toEqual({ ...TEXT_MESSAGE_CLOSE, answered: 0 });

    expect(
      logs
        .slice(from)
        .filter((l) => l.event === 'websocket.connection' && l.level === 'warn')
        .map((l) => [l.code, l.protocol]),
    ).toEqual([
      ['TEXT_MESSAGE', 'mqtt'],
      ['TEXT_MESSAGE', 'amqp'],
    ]);
    await stillServes('ws-after-text');
    expect(
      await register(emulator, 'ws-after-text-amqp', groupDeviceKey('hashed', 'ws-after-text-amqp'), {
        transport: 'amqp-ws',
      }),
    ).toMatchObject({ status: 'assigned' });
  });

  it("logs a client's broken WebSocket frames at warn, each closed with ws's code", async () => {
    const closeWith = (code: number) => Buffer.from([code >> 8, code & 0xff]);
    const broken = {
      // A reserved opcode, a frame without the mask RFC 6455 requires of a client, a close code no
      // endpoint may send, a text message that is not UTF-8.
      WS_ERR_INVALID_OPCODE: { bytes: clientFrame(0x3, Buffer.alloc(0)), code: 1002 },
      WS_ERR_EXPECTED_MASK: { bytes: Buffer.from([0x82, 0x02, 0xc0, 0x00]), code: 1002 },
      WS_ERR_INVALID_CLOSE_CODE: { bytes: clientFrame(0x8, closeWith(1005)), code: 1002 },
      WS_ERR_INVALID_UTF8: { bytes: clientFrame(0x1, Buffer.from([0xc0, 0x00])), code: 1007 },
    };
    for (const [name, { bytes, code }] of Object.entries(broken)) {
      for (const protocol of ['mqtt', 'AMQPWSB10']) {
        // Each connection's warning logged in full: one in full a second of the log's clock.
        clock.nextSecond();
        const attempt = await openWebSocket(emulator, [protocol]);
        if (attempt.kind !== 'open') throw new Error('not upgraded');
        const closed = closeOf(attempt.ws);
        const from = logs.length;
        (attempt.ws as unknown as { _socket: TLSSocket })._socket.write(bytes);
        expect((await closed).code, `${name} ${protocol}`).toBe(code);
        await expect
          .poll(() =>
            logs
              .slice(from)
              .filter((l) => l.event === 'websocket.connection')
              .map((l) => [l.level, l.code]),
          )
          .toEqual([['warn', name]]);
      }
    }
    await stillServes('ws-after-broken-frames');
  });

  it('closes an MQTT connection whose packet announces more than the MQTT limit', async () => {
    const attempt = await openWebSocket(emulator, ['mqtt']);
    if (attempt.kind !== 'open') throw new Error('not upgraded');
    const closed = closeOf(attempt.ws);
    // A CONNECT header announcing 268 MB (the largest MQTT remaining length).
    attempt.ws.send(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]));
    // Message Too Big, as for a WebSocket message over the limit (websocket-stream.ts says why).
    expect(await closed).toEqual({ code: 1009, reason: 'MQTT packet too large' });
    await expect.poll(() => logs.find((l) => l.event === 'mqtt.packet')).toMatchObject({ size: expect.any(Number) });
    await stillServes('ws-after-huge-packet');
  });

  it('writes the answers to the MQTT packets before a WebSocket protocol error read with them, then closes', async () => {
    const id = 'ws-hashed-answers';
    const mqttBytes = Buffer.concat([connectAndSubscribe(id), PINGREQ]);
    // After a binary message with the packets, in the same write: a frame with a reserved opcode
    // (1002, protocol error) or one announcing a message over the limit (1009).
    const violations = {
      1002: clientFrame(0x3, Buffer.alloc(0)),
      1009: Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0x7f, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]),
    };
    for (const [code, violation] of Object.entries(violations)) {
      const { ws, received, closed } = await openMqttWebSocket(emulator);
      // The TLS socket under the client's WebSocket: the bytes go as they are, in one write.
      (ws as unknown as { _socket: TLSSocket })._socket.write(Buffer.concat([clientFrame(0x2, mqttBytes), violation]));
      expect((await closed).code, code).toBe(Number(code));
      expect(
        received.map((packet) => packet.cmd),
        code,
      ).toEqual(['connack', 'suback', 'pingresp']);
    }
    await stillServes('ws-after-answers');
  });

  it('closes with 1002 after an MQTT protocol violation and 1000 after a DISCONNECT, the answers before either delivered', async () => {
    // One WebSocket message each: CONNECT and SUBSCRIBE, then what ends the session.
    const endings = { outside: PUBLISH_OUTSIDE, malformed: MALFORMED, disconnect: DISCONNECT };
    const closes: Record<string, { code: number; reason: string; received: string[] }> = {};
    for (const [name, ending] of Object.entries(endings)) {
      const { ws, received, closed } = await openMqttWebSocket(emulator);
      ws.send(Buffer.concat([connectAndSubscribe(`ws-close-${name}`), ending]));
      closes[name] = { ...(await closed), received: received.map((packet) => packet.cmd) };
    }
    expect(closes).toEqual({
      outside: { code: 1002, reason: 'MQTT protocol violation', received: ['connack', 'suback'] },
      malformed: { code: 1002, reason: 'MQTT protocol violation', received: ['connack', 'suback'] },
      disconnect: { code: 1000, reason: '', received: ['connack', 'suback'] },
    });
    await stillServes('ws-after-closes');
  });

  it('answers a CONNECT without a username CONNACK 5 and closes with 1000', async () => {
    const { ws, received, closed } = await openMqttWebSocket(emulator);
    ws.send(
      mqttPacket.generate({ cmd: 'connect', clientId: 'ws-nameless', protocolVersion: 4, clean: true, keepalive: 0 }),
    );
    expect({ ...(await closed), received }).toEqual({
      code: 1000,
      reason: '',
      received: [expect.objectContaining({ cmd: 'connack', returnCode: 5 })],
    });
    await stillServes('ws-after-nameless');
  });

  it('closes with 1001 when the device sends nothing for 1.5 × its keepalive', async () => {
    // Keepalive 1 s: closed once 1.5 s pass without a packet, however long the test waits.
    const id = 'ws-keepalive';
    const { ws, received, closed } = await openMqttWebSocket(emulator);
    ws.send(dpsConnect(id, 1));
    expect({ ...(await closed), received: received.map((packet) => packet.cmd) }).toEqual({
      code: 1001,
      reason: 'MQTT keepalive timeout',
      received: ['connack'],
    });
  });

  it('closes a WebSocket carrying bytes that are not MQTT with 1002, an HTTP request answered first', async () => {
    const closes: Record<string, { code: number; reason: string; received: string }> = {};
    for (const [name, bytes] of Object.entries({
      unknown: Buffer.from('hello, this is not MQTT'),
      http: Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'),
    })) {
      const attempt = await openWebSocket(emulator, ['mqtt']);
      if (attempt.kind !== 'open') throw new Error(`not upgraded: ${attempt.status}`);
      const received: Buffer[] = [];
      attempt.ws.on('message', (data: Buffer) => received.push(data));
      const closed = closeOf(attempt.ws);
      attempt.ws.send(bytes);
      closes[name] = { ...(await closed), received: Buffer.concat(received).toString('latin1').split('\r\n')[0] ?? '' };
    }
    expect(closes).toEqual({
      unknown: { code: 1002, reason: 'MQTT protocol violation', received: '' },
      http: { code: 1002, reason: 'MQTT protocol violation', received: 'HTTP/1.1 400 Bad Request' },
    });
    await stillServes('ws-after-foreign');
  });

  it('destroys the connection of a peer that never answers the close frame REFUSED_PEER_GRACE_MS after the close, not before', async () => {
    // The client's receiver is off: it never answers the close frame (nor writes again, which is
    // what started the grace before). Timers are faked from before the close, so "after the grace"
    // is the grace to the millisecond whatever the load; I/O is real. ws's own close timeout was 30 s.
    const endings = {
      unknown: Buffer.from('hello, this is not MQTT'),
      http: Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'),
      disconnect: Buffer.concat([connectAndSubscribe('ws-silent-disconnect'), DISCONNECT]),
    };
    const seen: Record<string, unknown> = {};
    for (const [name, bytes] of Object.entries(endings)) {
      seen[name] = await silentPeerEnding(emulator, bytes);
    }
    const gone = { goneAtClose: false, goneAtGraceLess1ms: false, goneAtGrace: true };
    expect(seen).toEqual({
      unknown: { code: 1002, reason: 'MQTT protocol violation', ...gone },
      http: { code: 1002, reason: 'MQTT protocol violation', ...gone },
      disconnect: { code: 1000, reason: '', ...gone },
    });
    await stillServes('ws-after-silent');
  });
});
