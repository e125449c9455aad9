/** Which WebSocket upgrades the HTTPS listener takes, and the answer to the others (pure; no sockets). */

/** The path every SDK's WebSocket transport connects to, for MQTT and AMQP alike. */
export const IOTHUB_WEBSOCKET_PATH = '/$iothub/websocket';

/**
 * Where @azure/event-hubs (@azure/core-amqp `webSocketEndpointPath`) connects AMQP over WebSockets:
 * the hubs' Event Hubs-compatible endpoint, AMQP only.
 */
export const SERVICEBUS_WEBSOCKET_PATH = '/$servicebus/websocket';

/** The subprotocols the SDKs ask for: `mqtt` (MQTT 3.1.1) and `AMQPWSB10` (AMQP 1.0). */
export const WEBSOCKET_SUBPROTOCOLS = { mqtt: 'mqtt', amqp: 'AMQPWSB10' } as const;
export type WebSocketProtocol = keyof typeof WEBSOCKET_SUBPROTOCOLS;

export type UpgradeDecision =
  /** `offered` is the client's own spelling, which the handshake must echo. */
  | { kind: 'accept'; protocol: WebSocketProtocol; offered: string }
  | { kind: 'refuse'; status: 400; message: string }
  /** Not a WebSocket upgrade to this path: another handler (or the listener's refusal) answers. */
  | { kind: 'not-mine' };

/**
 * Decides an upgrade from its path, `Upgrade` header and `Sec-WebSocket-Protocol` header. Subprotocol
 * names are matched case-insensitively (the C SDK's MQTT-over-WebSockets says `MQTT`); the handshake
 * echoes the client's spelling, as RFC 6455 requires one of the offered values.
 */
export function decideUpgrade(
  rawUrl: string,
  upgradeHeader: string | undefined,
  protocolHeader: string | undefined,
  served: readonly WebSocketProtocol[],
): UpgradeDecision {
  const path = rawUrl.split('?')[0] ?? '';
  if (path !== IOTHUB_WEBSOCKET_PATH && path !== SERVICEBUS_WEBSOCKET_PATH) return { kind: 'not-mine' };
  const servedHere = path === SERVICEBUS_WEBSOCKET_PATH ? served.filter((p) => p === 'amqp') : served;
  if (servedHere.length === 0) return { kind: 'not-mine' };
  const wanted = servedHere.map((p) => WEBSOCKET_SUBPROTOCOLS[p]).join(' or ');
  if ((upgradeHeader ?? '').toLowerCase() !== 'websocket') {
    return {
      kind: 'refuse',
      status: 400,
      message: `${path} serves WebSocket upgrades only (Upgrade: websocket), not "${upgradeHeader ?? ''}".`,
    };
  }
  const offered = (protocolHeader ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  for (const candidate of offered) {
    const protocol = servedHere.find((p) => WEBSOCKET_SUBPROTOCOLS[p].toLowerCase() === candidate.toLowerCase());
    if (protocol) return { kind: 'accept', protocol, offered: candidate };
  }
  return {
    kind: 'refuse',
    status: 400,
    message:
      offered.length === 0
        ? `A WebSocket upgrade to ${path} needs the subprotocol ${wanted} (Sec-WebSocket-Protocol); none was offered.`
        : `The WebSocket subprotocol ${offered.map((p) => `"${p}"`).join(', ')} is not served at ${path}; use ${wanted}.`,
  };
}
