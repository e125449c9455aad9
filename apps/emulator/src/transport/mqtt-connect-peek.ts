import type { Duplex } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import { MqttPacketSizeGuard } from './mqtt-packet-guard.js';

export type PeekResult =
  /** The first packet was a CONNECT: its username (IoT Hub and DPS are told apart by it). */
  | { kind: 'connect'; username: string | undefined; keepaliveSeconds: number }
  /** Not a CONNECT, not MQTT, or larger than the bound: let the default broker answer it. */
  | { kind: 'other' }
  /** The connection ended or failed before a whole packet came. */
  | { kind: 'closed' };

/**
 * Reads a connection's first MQTT packet without consuming it: the bytes read are put back
 * (`unshift`) before this resolves, so the broker chosen next reads the stream from its start.
 * IoT Hub and DPS share port 8883 and are told apart by the CONNECT's username
 * (`{hub}/{deviceId}/?api-version=…` vs `{idScope}/registrations/{id}/api-version=…`); each gets
 * its own broker because MQTT client ids (device id, registration id) are only unique per service.
 * At most `maxBytes` are read; the connection's own idle timeout bounds the wait.
 */
export function peekMqttConnect(stream: Duplex, maxBytes: number): Promise<PeekResult> {
  return new Promise((resolve) => {
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    // A first packet announcing more than the bound is not waited for: the default broker's own
    // guard closes the connection as soon as it reads the same header.
    const guard = new MqttPacketSizeGuard(maxBytes);
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: PeekResult) => {
      if (done) return;
      done = true;
      stream.off('readable', onReadable);
      stream.off('end', onClosed);
      stream.off('close', onClosed);
      stream.off('error', onClosed);
      if (result.kind !== 'closed' && chunks.length > 0) stream.unshift(Buffer.concat(chunks));
      resolve(result);
    };
    parser.on('packet', (packet) => {
      finish(
        packet.cmd === 'connect'
          ? {
              kind: 'connect',
              username: (packet as mqttPacket.IConnectPacket).username,
              keepaliveSeconds: (packet as mqttPacket.IConnectPacket).keepalive ?? 0,
            }
          : { kind: 'other' },
      );
    });
    parser.on('error', () => finish({ kind: 'other' }));
    function onReadable() {
      let chunk: Buffer | null = stream.read() as Buffer | null;
      while (!done && chunk !== null) {
        chunks.push(chunk);
        size += chunk.length;
        if (guard.push(chunk) !== undefined) {
          finish({ kind: 'other' });
          break;
        }
        parser.parse(chunk);
        if (!done && size > maxBytes) finish({ kind: 'other' });
        if (!done) chunk = stream.read() as Buffer | null;
      }
    }
    function onClosed() {
      finish({ kind: 'closed' });
    }
    stream.on('readable', onReadable);
    stream.once('end', onClosed);
    stream.once('close', onClosed);
    stream.once('error', onClosed);
  });
}
