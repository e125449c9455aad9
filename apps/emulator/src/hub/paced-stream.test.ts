import { Duplex } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { REFUSED_PEER_GRACE_MS } from '../transport/connection-limits.js';
import { PacedMqttStream } from './paced-stream.js';

// The stream between a device's connection and aedes, read the way aedes reads it (read() after
// 'readable'); the integration with aedes is in hub.mqtt-raw.test.ts.

const CONNECT = Buffer.from([0x10, 0x02, 0x00, 0x00]);
const PINGREQ = Buffer.from([0xc0, 0x00]);
const PUBACK = Buffer.from([0x40, 0x02, 0x00, 0x01]);
const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);
const PINGRESP = Buffer.from([0xd0, 0x00]);

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

  it("writes the answers to one read's packets to the connection together, once the last is served", async () => {
    // A connection that keeps each of its writes (a batch: what it was given while corked).
    const batches: Buffer[][] = [];
    const carrier = new Duplex({
      read() {},
      writev(chunks, callback) {
        batches.push(chunks.map(({ chunk }) => chunk as Buffer));
        callback();
      },
    });
    const paced = new PacedMqttStream(carrier, 1000, () => {});
    carrier.push(Buffer.concat([CONNECT, PINGREQ, PINGREQ]));
    expect(await nextRead(paced)).toEqual(CONNECT);
    paced.write(CONNACK);
    paced.connectHandled();
    expect(await nextRead(paced)).toEqual(PINGREQ);
    paced.write(PINGRESP);
    expect(await nextRead(paced)).toEqual(PINGREQ);
    paced.write(PINGRESP);
    await turn();
    expect(batches).toEqual([]);
    // The reader asks for the next packet: the read's are all served, their answers go out.
    expect(paced.read()).toBeNull();
    await turn();
    expect(batches).toEqual([[CONNACK, PINGRESP, PINGRESP]]);
    // The next read's answer is written the same way.
    carrier.push(PINGREQ);
    expect(await nextRead(paced)).toEqual(PINGREQ);
    paced.write(PINGRESP);
    expect(paced.read()).toBeNull();
    await turn();
    expect(batches).toEqual([[CONNACK, PINGRESP, PINGRESP], [PINGRESP]]);
  });

  it("writes on when the answers to one read fill the connection's buffer", async () => {
    const written: Buffer[] = [];
    const carrier = new Duplex({
      read() {},
      writableHighWaterMark: 4,
      write(chunk: Buffer, _encoding, callback) {
        written.push(chunk);
        setImmediate(callback);
      },
    });
    const paced = new PacedMqttStream(carrier, 1000, () => {});
    carrier.push(Buffer.concat([PINGREQ, PINGREQ]));
    expect(await nextRead(paced)).toEqual(PINGREQ);
    // Over the connection's high-water mark: written (not held until the read is served) and
    // acknowledged once drained, as the reader waits for that before it reads on (aedes does).
    const big = Buffer.alloc(8, 1);
    await new Promise<void>((resolve) => paced.write(big, () => resolve()));
    expect(written).toEqual([big]);
    expect(await nextRead(paced)).toEqual(PINGREQ);
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
