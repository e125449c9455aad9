import type { Duplex } from 'node:stream';
import { createWebSocketStream, type WebSocket } from 'ws';

type WritevChunk = { chunk: Buffer };

/**
 * A WebSocket as a byte stream for MQTT over WebSockets: `ws`'s createWebSocketStream, except that
 * what was written while the stream was corked leaves as one WebSocket message. Its stream has no
 * `_writev`, so a corked stream's writes went one at a time, each after the previous one's callback
 * (a later event-loop turn): the DPS MQTT session corks its answers to a read (CONNACK, SUBACK,
 * PINGRESP; a PUBACK with the request's answer), and when a WebSocket protocol error came in the
 * same read (a frame with a reserved opcode, a message over the size limit), `ws` destroyed the
 * stream with all but the first answer still in it. A message may carry several MQTT packets
 * (MQTT 3.1.1 [MQTT-6.0.0-2]: the receiver must not assume packets aligned on frame boundaries).
 */
export function webSocketByteStream(ws: WebSocket): Duplex {
  const stream = createWebSocketStream(ws) as Duplex & {
    _writev(chunks: WritevChunk[], callback: (err?: Error | null) => void): void;
  };
  // The server's WebSocket is open already (createWebSocketStream's _write waits only for a client's).
  stream._writev = (chunks, callback) => {
    ws.send(
      chunks.length === 1 ? (chunks[0] as WritevChunk).chunk : Buffer.concat(chunks.map((c) => c.chunk)),
      callback,
    );
  };
  return stream;
}
