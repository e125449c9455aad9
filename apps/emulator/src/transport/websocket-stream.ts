import type { Duplex } from 'node:stream';
import { createWebSocketStream, type WebSocket } from 'ws';

type WritevChunk = { chunk: Buffer };

/**
 * The RFC 6455 (7.4.1) status codes an MQTT session ends its WebSocket with, in the close frame it
 * sends once its last answers are written (`closeWebSocketWith`, then `end()`).
 *
 * Why these: with no code given, `ws` sends a close frame without one, which the peer reports as
 * 1005 (_No Status Rcvd_), and a destroyed stream drops the TCP connection, 1006 (_Abnormal
 * Closure_); neither tells a client (or whoever debugs one) why.
 * - 1000 _Normal Closure_ after a DISCONNECT, or a CONNECT refused for its credentials (the CONNACK
 *   says why): the session ended as the protocol has it end.
 * - 1001 _Going Away_ when the client sent nothing for 1.5 × its keepalive [MQTT-3.1.2-24]: the
 *   server leaves a connection whose peer it takes for gone. Not 1002: the client broke nothing it
 *   sent, and MQTT has the server close "as if the network had failed" (its Will is published as
 *   for a lost connection), not as for a violation; not 1000: the session's purpose was cut short.
 *   A client that is still there reconnects, as after any lost connection.
 * - 1002 _Protocol Error_ after an MQTT protocol violation (a malformed packet, a PUBLISH outside
 *   the topics the client may use, a second CONNECT, an MQTT 5 CONNECT) or bytes that are not MQTT
 *   at all: the protocol the WebSocket carries was broken. 1008 _Policy Violation_ is meant for a
 *   rule of the endpoint's own, where no other code fits.
 * - 1009 _Message Too Big_ for an MQTT packet over the limit, as a WebSocket message over the
 *   limit already is.
 * - 1011 _Internal Error_ after a CONNACK 3 (server unavailable: the store could not be read): the
 *   server met a condition that kept it from serving the request, nothing the client did.
 * What Azure sends here is not known (no capture in the notes; the SDKs do not read the code).
 */
export const MQTT_WEBSOCKET_CLOSE = {
  normal: { code: 1000, reason: '' },
  keepaliveTimeout: { code: 1001, reason: 'MQTT keepalive timeout' },
  protocolError: { code: 1002, reason: 'MQTT protocol violation' },
  tooBig: { code: 1009, reason: 'MQTT packet too large' },
  serverUnavailable: { code: 1011, reason: 'server unavailable' },
} as const;

export type MqttWebSocketClose = (typeof MQTT_WEBSOCKET_CLOSE)[keyof typeof MQTT_WEBSOCKET_CLOSE];

const CLOSE_WITH = Symbol('websocket-close-with');

/**
 * The code (and reason) the close frame of a `webSocketByteStream` says, sent when the stream is
 * ended; call it before `end()`. The first code given stays: it names what ended the session
 * (a CONNACK 3, a keepalive timeout), and the code the session's close then gives (1000 for
 * the refused CONNECT, 1002 for the error the timeout is reported as) names only how it closed.
 * No-op on any other stream.
 */
export function closeWebSocketWith(stream: Duplex, close: MqttWebSocketClose): void {
  (stream as Duplex & { [CLOSE_WITH]?: (close: MqttWebSocketClose) => void })[CLOSE_WITH]?.(close);
}

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
    _final(callback: (err?: Error | null) => void): void;
    [CLOSE_WITH]?: (close: MqttWebSocketClose) => void;
  };
  let closeWith: MqttWebSocketClose | undefined;
  stream[CLOSE_WITH] = (close) => {
    closeWith ??= close;
  };
  // ws's own _final (called once every write is done) closes without a code: the close frame
  // with the code given goes first, and its close() then finds the WebSocket closing already.
  const final = stream._final;
  stream._final = (callback) => {
    if (closeWith && ws.readyState === ws.OPEN) ws.close(closeWith.code, closeWith.reason);
    final.call(stream, callback);
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
