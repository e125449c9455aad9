import type { Duplex } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import { decodeWholePackets, firstPacketLength } from './mqtt-packet-decoder.js';
import { MqttPacketSizeGuard } from './mqtt-packet-guard.js';

export type PeekResult =
  /** The first packet was a CONNECT: its username (IoT Hub and DPS are told apart by it). */
  | { kind: 'connect'; username: string | undefined; keepaliveSeconds: number }
  /** Not a CONNECT, not MQTT, or larger than the bound: let the default broker answer it. */
  | { kind: 'other' }
  /** The connection ended or failed before a whole packet came. */
  | { kind: 'closed' };

export type FirstPacket =
  /** `bytes` are every byte read, the CONNECT's `length` bytes first. */
  | { kind: 'connect'; connect: mqttPacket.IConnectPacket; bytes: Buffer; length: number }
  /** Not a CONNECT, not MQTT, or larger than the bound; `bytes` are every byte read. */
  | { kind: 'other'; bytes: Buffer }
  /** The connection ended or failed before a whole packet came. */
  | { kind: 'closed' };

/**
 * Reads a connection's first MQTT packet and hands it to `done` with every byte read, which the
 * stream no longer has: the caller serves the CONNECT it was given and the bytes after it, or
 * puts them all back (`unshift`) for a broker that reads the stream from its start. IoT Hub and
 * DPS share port 8883 and are told apart by the CONNECT's username
 * (`{hub}/{deviceId}/?api-version=…` vs `{idScope}/registrations/{id}/api-version=…`); each gets
 * its own broker because MQTT client ids (device id, registration id) are only unique per service.
 * The CONNECT is decoded once, here (the DPS session takes it as decoded). At most `maxBytes` are
 * read; the connection's own idle timeout bounds the wait.
 *
 * The stream is read in flowing mode ('data' events) and left flowing: a caller that goes on with
 * its own 'data' listener (the DPS session) gets the next chunks as they come, with no switch
 * between reading modes, which costs a few process.nextTick round trips and listener changes per
 * connection (bench:server); a caller that puts the bytes back pauses the stream first.
 */
export function readFirstMqttPacket(stream: Duplex, maxBytes: number, done: (first: FirstPacket) => void): void {
  // A first packet announcing more than the bound is not waited for: the default broker's own
  // guard closes the connection as soon as it reads the same header.
  const guard = new MqttPacketSizeGuard(maxBytes);
  // Only while the first packet is partly read (its bytes came in pieces): it reports non-MQTT
  // bytes as soon as they come instead of waiting for a length they announce by accident.
  let parser: ReturnType<typeof mqttPacket.parser> | undefined;
  let first: mqttPacket.Packet | undefined;
  let failed = false;
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const finish = (result: FirstPacket) => {
    if (finished) return;
    finished = true;
    stream.off('data', onData);
    stream.off('end', onClosed);
    stream.off('close', onClosed);
    stream.off('error', onClosed);
    done(result);
  };
  const read = () => (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
  const sink = {
    onPacket(packet: mqttPacket.Packet) {
      first ??= packet;
    },
  };
  // An error after the first packet (in bytes that followed it) is for whoever reads on.
  const onError = () => {
    if (!first) failed = true;
  };
  function onData(chunk: Buffer) {
    if (finished) return;
    chunks.push(chunk);
    size += chunk.length;
    // A packet over the bound ends what is read here. When it is the first packet it is not waited
    // for; when whole packets came before it in the same read (a CONNECT, then more), the first is
    // read from them as usual, so that the connection goes to the service it names, which answers
    // the packets before the oversized one and then closes.
    const oversized = guard.push(chunk) !== undefined;
    if (oversized && guard.oversizedAt === 0) {
      finish({ kind: 'other', bytes: read() });
      return;
    }
    if (!parser && (oversized || guard.atPacketBoundary)) {
      // Whole packets only (the usual case): the first one decoded by the shared parser.
      const bytes = read();
      if (decodeWholePackets(bytes.subarray(0, firstPacketLength(bytes)), sink)) onError();
    } else {
      if (!parser) {
        parser = mqttPacket.parser({ protocolVersion: 4 });
        parser.on('packet', (packet: mqttPacket.Packet) => sink.onPacket(packet));
        parser.on('error', onError);
      }
      parser.parse(oversized ? chunk.subarray(0, guard.oversizedAt) : chunk);
    }
    if (first || failed) {
      const bytes = read();
      finish(
        first?.cmd === 'connect' && !failed
          ? { kind: 'connect', connect: first, bytes, length: firstPacketLength(bytes) }
          : { kind: 'other', bytes },
      );
      return;
    }
    if (oversized || size > maxBytes) finish({ kind: 'other', bytes: read() });
  }
  function onClosed() {
    finish({ kind: 'closed' });
  }
  // Plain listeners, removed by `finish` (once() would wrap each in a closure of its own).
  stream.on('data', onData);
  stream.on('end', onClosed);
  stream.on('close', onClosed);
  stream.on('error', onClosed);
}

/**
 * `readFirstMqttPacket` for a caller that only needs to know whose the connection is: every byte
 * read is put back (`unshift`) before this resolves, so the broker chosen next reads the stream
 * from its start.
 */
export function peekMqttConnect(stream: Duplex, maxBytes: number): Promise<PeekResult> {
  return new Promise((resolve) => {
    readFirstMqttPacket(stream, maxBytes, (first) => {
      if (first.kind === 'closed') return resolve(first);
      // Paused, so that the bytes put back wait for whoever reads next.
      stream.pause();
      if (first.bytes.length > 0) stream.unshift(first.bytes);
      resolve(
        first.kind === 'connect'
          ? { kind: 'connect', username: first.connect.username, keepaliveSeconds: first.connect.keepalive ?? 0 }
          : { kind: 'other' },
      );
    });
  });
}
