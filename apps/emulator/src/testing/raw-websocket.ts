// A raw WebSocket client (the `ws` package) for what the SDKs never send: wrong subprotocols,
// oversized messages.
import mqttPacket from 'mqtt-packet';
import { WebSocket } from 'ws';
import type { Emulator } from '../emulator.js';

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
