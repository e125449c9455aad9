// A raw WebSocket client (the `ws` package) for what the SDKs never send: wrong subprotocols,
// oversized messages.
import type { Duplex } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import { vi } from 'vitest';
import { WebSocket } from 'ws';
import type { Emulator } from '../emulator.js';
import { REFUSED_PEER_GRACE_MS } from '../transport/connection-limits.js';

export type WebSocketAttempt =
  | { kind: 'open'; ws: WebSocket; protocol: string }
  | { kind: 'refused'; status: number; body: string; headers: Record<string, unknown> };

/** Opens `wss://localhost:{https port}{path}` offering `protocols`; resolves with the socket or the HTTP refusal. */
export function openWebSocket(
  emulator: Emulator,
  protocols: string[],
  path = '/$iothub/websocket',
): Promise<WebSocketAttempt> {
  const endpoint = emulator.endpoints.webSockets;
  if (!endpoint) throw new Error('the emulator serves no WebSockets');
  const ws = new WebSocket(`wss://localhost:${endpoint.port}${path}`, protocols, { ca: emulator.caCertPem });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ kind: 'open', ws, protocol: ws.protocol }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ kind: 'refused', status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    ws.once('error', reject);
  });
}

/**
 * Writes `next()`'s batches, one binary message each, to a client WebSocket the caller has paused,
 * until the server closes it or `limitBytes` are written; then terminates it and resolves with the
 * bytes written once it is closed. For the servers' back-pressure tests: a client that never reads.
 */
export async function writeUntilClosed(ws: WebSocket, next: () => Buffer, limitBytes: number): Promise<number> {
  let closed = false;
  const close = new Promise<void>((resolve) =>
    ws.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  let written = 0;
  while (!closed && written < limitBytes) {
    const batch = next();
    written += batch.length;
    // The send callback runs once the message is written to the socket (TCP holds it while the
    // server does not read), or with an error once the server is gone: the paused client does not
    // see the close itself.
    const error = await new Promise<Error | undefined>((resolve) => ws.send(batch, { binary: true }, resolve));
    if (error) closed = true;
  }
  ws.terminate();
  await close;
  return written;
}

/** Resolves with the close code and reason the server sent. */
export function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => {
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') }));
  });
}

/**
 * An MQTT-over-WebSocket connection (subprotocol `mqtt`): every message the server sends is parsed
 * as MQTT 3.1.1 into `received`; `closed` resolves with the close code and reason it sent.
 */
export async function openMqttWebSocket(emulator: Emulator): Promise<{
  ws: WebSocket;
  received: mqttPacket.Packet[];
  closed: Promise<{ code: number; reason: string }>;
}> {
  const attempt = await openWebSocket(emulator, ['mqtt']);
  if (attempt.kind !== 'open') throw new Error(`not upgraded: ${attempt.status}`);
  const received: mqttPacket.Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on('packet', (packet) => received.push(packet));
  attempt.ws.on('message', (data: Buffer) => parser.parse(data));
  return { ws: attempt.ws, received, closed: closeOf(attempt.ws) };
}

/** A WebSocket frame as a server sends it (unmasked). */
export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

/**
 * A WebSocket (subprotocol `mqtt`) whose client never answers the server's close frame, nor anything
 * else: once it is open, ws's receiver (which answers a close frame with its own) is taken off the
 * socket and the server's frames are read raw into `frames`. `closeFrame` resolves with the first
 * close frame's code and reason; `gone` when the server has closed the TCP connection (`isGone()`
 * says whether it has). `send` writes one binary message (masked, through ws's sender).
 */
export async function openSilentWebSocket(emulator: Emulator): Promise<{
  send(bytes: Buffer): void;
  frames: ServerFrame[];
  closeFrame: Promise<{ code: number; reason: string }>;
  gone: Promise<void>;
  isGone(): boolean;
  destroy(): void;
}> {
  const attempt = await openWebSocket(emulator, ['mqtt']);
  if (attempt.kind !== 'open') throw new Error(`not upgraded: ${attempt.status}`);
  const { ws } = attempt;
  const socket = (ws as unknown as { _socket: Duplex })._socket;
  socket.removeAllListeners('data');
  socket.removeAllListeners('end');
  socket.on('end', () => {}); // the server's FIN: the socket closes (allowHalfOpen is off)
  const frames: ServerFrame[] = [];
  let pending = Buffer.alloc(0);
  let gone = false;
  let onCloseFrame: (close: { code: number; reason: string }) => void = () => {};
  const closeFrame = new Promise<{ code: number; reason: string }>((resolve) => {
    onCloseFrame = resolve;
  });
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      const frame = nextServerFrame(pending);
      if (!frame) return;
      pending = pending.subarray(frame.length);
      frames.push(frame.frame);
      if (frame.frame.opcode === 0x8) {
        const { payload } = frame.frame;
        onCloseFrame({ code: payload.readUInt16BE(0), reason: payload.subarray(2).toString('utf8') });
      }
    }
  });
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      gone = true;
      resolve();
    }),
  );
  return {
    send: (bytes) => ws.send(bytes),
    frames,
    closeFrame,
    gone: closed,
    isGone: () => gone,
    destroy: () => socket.destroy(),
  };
}

/** The first whole frame in `bytes` and how many bytes it takes, or undefined if it is not all there. */
function nextServerFrame(bytes: Buffer): { frame: ServerFrame; length: number } | undefined {
  if (bytes.length < 2) return undefined;
  const opcode = (bytes[0] as number) & 0x0f;
  let size = (bytes[1] as number) & 0x7f;
  let offset = 2;
  if (size === 126) {
    if (bytes.length < 4) return undefined;
    size = bytes.readUInt16BE(2);
    offset = 4;
  } else if (size === 127) {
    if (bytes.length < 10) return undefined;
    size = Number(bytes.readBigUInt64BE(2));
    offset = 10;
  }
  if (bytes.length < offset + size) return undefined;
  return { frame: { opcode, payload: bytes.subarray(offset, offset + size) }, length: offset + size };
}

/**
 * Opens a WebSocket to the emulator and closes it: a TLS handshake and an upgrade, so several turns
 * of the event loop's I/O, by which a connection the server closed before it started has seen its
 * close. Needs no timer (for tests that fake them).
 */
export async function webSocketRoundTrip(emulator: Emulator): Promise<void> {
  const attempt = await openWebSocket(emulator, ['mqtt']);
  if (attempt.kind !== 'open') throw new Error(`not upgraded: ${attempt.status}`);
  const closed = new Promise<void>((resolve) => attempt.ws.once('close', () => resolve()));
  attempt.ws.terminate();
  await closed;
}

/** What a silent peer saw: the close frame, and whether its connection was gone at each moment. */
export interface SilentPeerEnding {
  code: number;
  reason: string;
  goneAtClose: boolean;
  goneAtGraceLess1ms: boolean;
  goneAtGrace: boolean;
}

/**
 * Sends `bytes` on a silent WebSocket (openSilentWebSocket) that then never answers the server's
 * close frame nor writes again, and says whether the server had cut it at the close, 1 ms before
 * REFUSED_PEER_GRACE_MS after it and at it. Timers are faked from before the close, so "after the
 * grace" is the grace to the millisecond whatever the load; I/O is real (round trips let the
 * server's close run).
 */
export async function silentPeerEnding(emulator: Emulator, bytes: Buffer): Promise<SilentPeerEnding> {
  const peer = await openSilentWebSocket(emulator);
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  try {
    peer.send(bytes);
    const close = await peer.closeFrame;
    const goneAtClose = peer.isGone();
    vi.advanceTimersByTime(REFUSED_PEER_GRACE_MS - 1);
    await webSocketRoundTrip(emulator);
    const goneAtGraceLess1ms = peer.isGone();
    vi.advanceTimersByTime(1);
    await Promise.race([peer.gone, webSocketRoundTrip(emulator).then(() => webSocketRoundTrip(emulator))]);
    return { ...close, goneAtClose, goneAtGraceLess1ms, goneAtGrace: peer.isGone() };
  } finally {
    vi.useRealTimers();
    peer.destroy();
  }
}
