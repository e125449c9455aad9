import net from 'node:net';
import tls from 'node:tls';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../emulator.js';
import { closedPortUrl } from '../testing/fixtures.js';
import { DISCONNECT, DPS_SUBSCRIBE, dpsConnect } from '../testing/mqtt-bytes.js';
import { startTestBed } from '../testing/test-bed.js';

// How a DPS registration's answers go out on the wire, seen as TLS records between the device and
// the emulator (a TCP relay in between reads the record headers): the packets answered to one read
// (SUBACK, the register's PUBACK and its 202, which waits for the commit; a poll's PUBACK and its
// 200) leave in ONE record, as the lean client writes its requests. A record each would be more
// writes and more TLS work per registration, and more packets for the device to read.

let emulator: Emulator;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  const unused = await closedPortUrl();
  ({ emulator, close } = await startTestBed(unused, unused, { httpsPort: null }));
});
afterAll(() => close?.());

interface TlsRecord {
  from: 'client' | 'server';
  type: number;
  /** The record's length field: TLS 1.3 application data is the plaintext + 1 (its type) + 16 (the AEAD tag). */
  length: number;
}

/** Put in the record list by the test just before the device writes: what the server sent next follows it. */
interface Mark {
  mark: string;
}

/** Splits one direction's bytes into TLS records (headers read, bodies skipped), as they arrive. */
function recordReader(from: TlsRecord['from'], records: Array<TlsRecord | Mark>): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 5) {
      const length = pending.readUInt16BE(3);
      if (pending.length < 5 + length) break;
      records.push({ from, type: pending[0] as number, length });
      pending = pending.subarray(5 + length);
    }
  };
}

/** A TCP relay to the emulator's MQTT port that records the TLS records each way, in order. */
async function recordingRelay(records: Array<TlsRecord | Mark>): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((device) => {
    const upstream = net.connect(emulator.endpoints.mqtt.port, '127.0.0.1');
    for (const socket of [device, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    }
    const fromDevice = recordReader('client', records);
    const fromServer = recordReader('server', records);
    device.on('data', (chunk: Buffer) => {
      fromDevice(chunk);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      fromServer(chunk);
      device.write(chunk);
    });
    device.on('end', () => upstream.end());
    upstream.on('end', () => device.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The server's records after the mark, up to the next mark. */
function serverRecordsAfter(records: Array<TlsRecord | Mark>, mark: string): TlsRecord[] {
  const start = records.findIndex((record) => 'mark' in record && record.mark === mark);
  const out: TlsRecord[] = [];
  for (const record of records.slice(start + 1)) {
    if ('mark' in record) break;
    if (record.from === 'server') out.push(record);
  }
  return out;
}

/** A TLS 1.3 application-data record's length for these packets sent together. */
const recordLength = (packets: mqttPacket.Packet[]) =>
  packets.reduce((sum, packet) => sum + mqttPacket.generate(packet).length, 0) + 1 + 16;

describe('DPS MQTT answers on the wire', () => {
  it('sends the answers to one read in one TLS record: SUBACK, PUBACK and 202; PUBACK and 200', async () => {
    const records: Array<TlsRecord | Mark> = [];
    // The relay reads what the device writes after the mark; the device waits for the answers
    // (which the relay has read before passing them on) before its next mark.
    const write = (mark: string, bytes: Buffer, end = false) => {
      records.push({ mark });
      if (end) socket.end(bytes);
      else socket.write(bytes);
    };
    const relay = await recordingRelay(records);
    const id = 'hashed-records';
    const received: mqttPacket.Packet[] = [];
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (packet) => received.push(packet));
    let waiting: { count: number; resolve: () => void } | undefined;
    const packets = (count: number) =>
      new Promise<void>((resolve) => {
        waiting = { count, resolve };
        if (received.length >= count) resolve();
      });
    const socket = tls.connect({
      host: '127.0.0.1',
      port: relay.port,
      ca: emulator.caCertPem,
      servername: 'localhost',
    });
    socket.on('data', (chunk: Buffer) => {
      parser.parse(chunk);
      if (waiting && received.length >= waiting.count) waiting.resolve();
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      });
      write('connect', dpsConnect(id));
      await packets(1);
      write(
        'register',
        Buffer.concat([
          DPS_SUBSCRIBE,
          mqttPacket.generate({
            cmd: 'publish',
            topic: '$dps/registrations/PUT/iotdps-register/?$rid=1',
            payload: JSON.stringify({ registrationId: id }),
            qos: 1,
            messageId: 2,
            retain: false,
            dup: false,
          }),
        ]),
      );
      await packets(4);
      const accepted = received[3] as mqttPacket.IPublishPacket;
      expect(accepted.topic).toMatch(/^\$dps\/registrations\/res\/202\//);
      const { operationId } = JSON.parse(accepted.payload.toString()) as { operationId: string };
      write(
        'poll',
        Buffer.concat([
          mqttPacket.generate({ cmd: 'puback', messageId: accepted.messageId ?? 0 }),
          mqttPacket.generate({
            cmd: 'publish',
            topic: `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=${operationId}`,
            payload: '',
            qos: 1,
            messageId: 3,
            retain: false,
            dup: false,
          }),
        ]),
      );
      await packets(6);
      const assigned = received[5] as mqttPacket.IPublishPacket;
      expect(assigned.topic).toMatch(/^\$dps\/registrations\/res\/200\//);
      write(
        'disconnect',
        Buffer.concat([mqttPacket.generate({ cmd: 'puback', messageId: assigned.messageId ?? 0 }), DISCONNECT]),
        true,
      );
      await closed;

      expect(received.map((packet) => packet.cmd)).toEqual([
        'connack',
        'suback',
        'puback',
        'publish',
        'puback',
        'publish',
      ]);
      // After the CONNECT: the CONNACK (a record of its own), after the session tickets if they were late.
      expect(serverRecordsAfter(records, 'connect').at(-1)).toEqual({
        from: 'server',
        type: 0x17,
        length: recordLength(received.slice(0, 1)),
      });
      // After SUBSCRIBE + register: one record holding SUBACK, PUBACK and the 202.
      expect(serverRecordsAfter(records, 'register')).toEqual([
        { from: 'server', type: 0x17, length: recordLength(received.slice(1, 4)) },
      ]);
      // After PUBACK + poll: one record holding the PUBACK and the 200.
      expect(serverRecordsAfter(records, 'poll')).toEqual([
        { from: 'server', type: 0x17, length: recordLength(received.slice(4, 6)) },
      ]);
      // After PUBACK + DISCONNECT: the server's close_notify (an alert: 2 bytes + 1 + 16).
      expect(serverRecordsAfter(records, 'disconnect')).toEqual([{ from: 'server', type: 0x17, length: 19 }]);
    } finally {
      socket.destroy();
      await relay.close();
    }
  });
});
