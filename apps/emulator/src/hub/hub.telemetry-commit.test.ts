// Hub telemetry over MQTT is committed with the other writes of its event-loop turn (the other
// connections' messages): one commit for many. What a device is told must not change: a PUBACK
// means the message is in the state file (another process reads it), a message that could not be
// saved gets no PUBACK and its connection is closed, and the hub goes on serving. Raw MQTT over TLS
// (every device writes its messages at once, so that the turns hold several), devices created
// through azure-iothub's Registry, the state file read through a connection of its own.
import { join } from 'node:path';
import tls from 'node:tls';
import type { LogRecord } from '@dpskit/node-kit';
import Database from 'better-sqlite3';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../store/sqlite.js';
import { HUB_A } from '../testing/fixtures.js';
import { createDeviceKey, registryClient } from '../testing/hub-sdk.js';
import { hubConnect, PINGREQ } from '../testing/mqtt-bytes.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

const logged: LogRecord[] = [];
let bed: TestBedWithWebhook;
beforeAll(async () => {
  // The locked-out test below holds the write lock from another connection until the emulator
  // gives up: a short store wait ends the same way as the default 5 s. Nothing else here contends for
  // the lock: the emulator writes through its one connection, and the reader below only reads (it
  // opens a file already at the current schema, and WAL readers never block the writer).
  bed = await startTestBedWithWebhook({ log: (record) => logged.push(record), storeBusyTimeoutMs: 200 });
});
afterAll(async () => {
  await bed?.close();
});

const publish = (deviceId: string, n: number) =>
  mqttPacket.generate({
    cmd: 'publish',
    topic: `devices/${deviceId}/messages/events/%24.mid=${deviceId}-${n}`,
    payload: Buffer.from(`{"n":${n}}`),
    qos: 1,
    messageId: n,
    retain: false,
    dup: false,
  });

interface Device {
  deviceId: string;
  socket: tls.TLSSocket;
  received: mqttPacket.Packet[];
  /** Resolves with the first packet that `match` accepts (and those before it are in `received`). */
  next(match: (packet: mqttPacket.Packet) => boolean): Promise<mqttPacket.Packet>;
  /** Called for every packet as it arrives, before anything else runs. */
  onPacket?: (packet: mqttPacket.Packet) => void;
  closed: Promise<void>;
}

/** A device of HUB_A (created through the registry) connected over raw TLS, after its CONNACK 0. */
async function connected(deviceId: string): Promise<Device> {
  const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), deviceId);
  const socket = tls.connect({ host: 'localhost', port: bed.emulator.endpoints.mqtt.port, ca: bed.emulator.caCertPem });
  socket.on('error', () => {});
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const waiting: { match: (packet: mqttPacket.Packet) => boolean; resolve: (packet: mqttPacket.Packet) => void }[] = [];
  const device: Device = {
    deviceId,
    socket,
    received: [],
    next(match) {
      const seen = device.received.find(match);
      return seen ? Promise.resolve(seen) : new Promise((resolve) => waiting.push({ match, resolve }));
    },
    closed: new Promise((resolve) => socket.once('close', () => resolve())),
  };
  parser.on('packet', (packet) => {
    device.received.push(packet);
    device.onPacket?.(packet);
    for (const w of waiting.splice(0)) {
      if (w.match(packet)) w.resolve(packet);
      else waiting.push(w);
    }
  });
  socket.on('data', (chunk: Buffer) => parser.parse(chunk));
  socket.write(hubConnect({ hub: HUB_A, deviceId, key }));
  const connack = await device.next((p) => p.cmd === 'connack');
  expect(connack).toMatchObject({ returnCode: 0 });
  // The CONNECT is handled (the connection stored) once a later packet is answered.
  socket.write(PINGREQ);
  await device.next((p) => p.cmd === 'pingresp');
  return device;
}

describe('hub telemetry committed with its turn', () => {
  it('acknowledges each QoS 1 message only once another connection to the state file reads it', async () => {
    const reader = SqliteStore.open(join(bed.emulator.stateDir, 'emulator.db'));
    const count = 40;
    const devices = await Promise.all(['commit-1', 'commit-2', 'commit-3', 'commit-4'].map(connected));
    try {
      const unread: string[] = [];
      const done = devices.map((device) => {
        device.onPacket = (packet) => {
          if (packet.cmd !== 'puback') return;
          const mid = `${device.deviceId}-${packet.messageId}`;
          const kept = reader.hub.telemetry(HUB_A, device.deviceId).some((m) => m.properties['$.mid'] === mid);
          if (!kept) unread.push(mid);
        };
        return device.next((p) => p.cmd === 'puback' && p.messageId === count);
      });
      for (const device of devices) {
        device.socket.write(Buffer.concat(Array.from({ length: count }, (_, i) => publish(device.deviceId, i + 1))));
      }
      await Promise.all(done);
      expect(unread).toEqual([]);
      for (const device of devices) {
        // Every message acknowledged once, in the order sent, and kept in that order.
        const acks = device.received.flatMap((p) => (p.cmd === 'puback' ? [p.messageId] : []));
        expect(acks).toEqual(Array.from({ length: count }, (_, i) => i + 1));
        expect(reader.hub.telemetry(HUB_A, device.deviceId).map((m) => m.properties['$.mid'])).toEqual(
          Array.from({ length: count }, (_, i) => `${device.deviceId}-${i + 1}`),
        );
      }
    } finally {
      reader.close();
      for (const device of devices) device.socket.destroy();
    }
  });

  // The fault is real: another connection to the state file holds its write lock for longer than
  // the emulator's busy timeout (storeBusyTimeoutMs), as a stuck process would.
  it('gives a message that could not be saved no PUBACK, closes its connection, and goes on serving', async () => {
    const device = await connected('commit-locked-out');
    const stuck = new Database(join(bed.emulator.stateDir, 'emulator.db'));
    try {
      stuck.exec('BEGIN IMMEDIATE');
      try {
        device.socket.write(publish(device.deviceId, 1));
        await device.closed;
      } finally {
        stuck.exec('COMMIT');
      }
    } finally {
      stuck.close();
    }
    expect(device.received.filter((p) => p.cmd === 'puback')).toEqual([]);
    const error = logged.find((r) => r.level === 'error' && r.msg.includes('telemetry not stored'));
    expect(error).toMatchObject({ event: 'hub.mqtt' });
    expect(error?.msg).toContain('database is locked');
    expect(bed.emulator.telemetry(HUB_A, device.deviceId)).toEqual([]);

    const fine = await connected('commit-fine-again');
    try {
      fine.socket.write(publish(fine.deviceId, 1));
      await fine.next((p) => p.cmd === 'puback');
      expect(bed.emulator.telemetry(HUB_A, fine.deviceId).map((m) => m.properties['$.mid'])).toEqual([
        'commit-fine-again-1',
      ]);
    } finally {
      fine.socket.destroy();
    }
  });
});
