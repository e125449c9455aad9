import { Duplex } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { REFUSED_PEER_GRACE_MS } from '../transport/connection-limits.js';
import { PacedMqttStream } from './paced-stream.js';

// The stream between a device's connection and aedes, read the way aedes reads it (read() after
// 'readable'); the integration with aedes is in hub.mqtt-raw.test.ts.

const CONNECT = Buffer.from([0x10, 0x02, 0x00, 0x00]);
const PINGREQ = Buffer.from([0xc0, 0x00]);
const PUBACK = Buffer.from([0x40, 0x02, 0x00, 0x01]);

/** A device connection: bytes pushed are what the device sent; what is written is kept. */
function connection() {
  const written: Buffer[] = [];
  const state = { ended: false };
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      written.push(chunk);
      callback();
    },
    final(callback) {
      state.ended = true;
      callback();
    },
  });
  return { stream, written, state };
}

/** What the reader gets on its next read, waiting for 'readable' if nothing is there yet. */
function nextRead(paced: PacedMqttStream): Promise<Buffer | null> {
  const now = paced.read() as Buffer | null;
  if (now !== null) return Promise.resolve(now);
  return new Promise((resolve) => paced.once('readable', () => resolve(paced.read() as Buffer | null)));
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

afterEach(() => {
  vi.useRealTimers();
});

describe('PacedMqttStream', () => {
  it('gives one whole packet per read, and the packets after a CONNECT once it is handled', async () => {
    const device = connection();
    const paced = new PacedMqttStream(device.stream, 1000, () => {});
    device.stream.push(Buffer.concat([CONNECT, PINGREQ, PUBACK.subarray(0, 1)]));
    expect(await nextRead(paced)).toEqual(CONNECT);
    // The CONNECT is being handled: nothing more yet, however often the reader asks.
    await turn();
    expect(paced.read()).toBeNull();
    await turn();
    expect(paced.read()).toBeNull();
    paced.connectHandled();
    expect(await nextRead(paced)).toEqual(PINGREQ);
    // The rest of a packet split over reads.
    device.stream.push(PUBACK.subarray(1));
    expect(await nextRead(paced)).toEqual(PUBACK);
  });

  it('writes through to the connection; closing ends it and destroys it if the peer has not closed within the grace', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const device = connection();
    const paced = new PacedMqttStream(device.stream, 1000, () => {});
    paced.write(PINGREQ);
    paced.destroy();
    await turn();
    expect(device.written).toEqual([PINGREQ]);
    expect(device.state.ended).toBe(true);
    expect(device.stream.destroyed).toBe(false);
    // The peer keeps its side open and goes on sending: read and dropped.
    device.stream.push(PINGREQ);
    vi.advanceTimersByTime(REFUSED_PEER_GRACE_MS);
    expect(device.stream.destroyed).toBe(true);
  });

  it('serves the packets before an oversized one, then closes', async () => {
    const device = connection();
    const refused: (number | undefined)[] = [];
    const paced = new PacedMqttStream(device.stream, 1000, (size) => refused.push(size));
    device.stream.push(Buffer.concat([CONNECT, PINGREQ, Buffer.from([0x30, 0x80, 0x80, 0x80, 0x02]), PINGREQ]));
    expect(await nextRead(paced)).toEqual(CONNECT);
    expect(refused).toEqual([4 * 1024 * 1024]);
    paced.connectHandled();
    expect(await nextRead(paced)).toEqual(PINGREQ);
    expect(paced.destroyed).toBe(false);
    // The reader asks for the next: there is none, and the connection is ended.
    expect(paced.read()).toBeNull();
    await turn();
    expect(paced.destroyed).toBe(true);
    expect(device.state.ended).toBe(true);
  });

  it('ends after the last packet when the peer ends its side', async () => {
    const device = connection();
    const paced = new PacedMqttStream(device.stream, 1000, () => {});
    const ended = new Promise((resolve) => paced.once('end', resolve));
    device.stream.push(PINGREQ);
    device.stream.push(null);
    expect(await nextRead(paced)).toEqual(PINGREQ);
    // Read on as aedes does (its 'readable' listener): the end comes after the last packet.
    paced.on('readable', () => paced.read());
    paced.read();
    await ended;
  });
});
