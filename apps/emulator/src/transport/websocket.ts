import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { DpsErrorCode } from '@dpskit/contracts';
import type { Logger } from '@dpskit/node-kit';
import { WebSocket, WebSocketServer } from 'ws';
import { clip, clipUrl } from '../core/client-text.js';
import { errorResponse } from '../core/device-api.js';
import { type LimitedKind, limitWarnings } from '../core/limited-warnings.js';
import { destroyAfterGrace, REFUSED_PEER_GRACE_MS } from './connection-limits.js';
import { rawHttpResponse } from './https-client-errors.js';
import { decideUpgrade, WEBSOCKET_SUBPROTOCOLS, type WebSocketProtocol } from './websocket-upgrade.js';

declare module 'ws' {
  namespace WebSocket {
    // ws reads it since 8.19 (this package asks for ^8.23.1); @types/ws 8.18.2, the newest, lacks it.
    interface ServerOptions {
      /** How long after `close()` the closing handshake may take before the socket is destroyed (default 30000). */
      closeTimeout?: number;
    }
  }
}

/**
 * Takes an HTTP upgrade off the HTTPS listener. Returns false when the request is not its own (another
 * handler, or the listener's refusal, answers it); once it returns true it owns the socket.
 */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;

/** Serves one protocol's WebSocket connections (the device is on `ws`; `peer` names it in logs). */
export type WebSocketConnectionHandler = (ws: WebSocket, req: IncomingMessage, peer: string) => void;

/**
 * Frames a WebSocket message may come in (a first frame and its continuations). `ws` keeps each
 * fragment as a slice of the chunk it was read in until the message is complete, so maxPayload
 * bounds the payload but not what it holds: a client sending one-byte fragments, each read with up
 * to 60 pings (`ws` answers them; more pending closes the connection), made one connection hold
 * 100 MB of arrayBuffers at ws's own default of 16,384 fragments, for 16 KB of payload (scratch
 * client, load 7). At 64 a connection holds at most maxPayload and 64 such chunks (under 1 MB). The
 * SDKs send each MQTT packet and AMQP frame in a message of one frame; a message in more frames is
 * closed with 1008 (Policy Violation, ws's code for it).
 */
export const MAX_WEBSOCKET_MESSAGE_FRAMES = 64;

/** `ws` errors for a limit the client's message went past (their warnings name the limits). */
const CLIENT_LIMIT_ERRORS = new Set(['WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', 'WS_ERR_TOO_MANY_BUFFERED_PARTS']);

/**
 * Whether a `ws` error is the client's doing: every error of ws's receiver (the frames the client
 * sent: a reserved opcode, an unmasked frame, a close code RFC 6455 does not allow, text that is not
 * UTF-8, a limit) has a `WS_ERR_` code; the socket's own (a reset) have none. The client's are
 * logged at warn, as a broken frame is on the TLS listeners (`mqtt.packet`, `amqp.protocol`).
 */
function isClientError(code: string | undefined): boolean {
  return code?.startsWith('WS_ERR_') ?? false;
}

/**
 * The close a text message gets: 1003 _Unsupported Data_ (RFC 6455 7.4.1: "a type of data it cannot
 * accept"). MQTT 3.1.1 [MQTT-6.0.0-1]: "MQTT Control Packets MUST be sent in WebSocket binary data
 * frames. If any other type of data frame is received the recipient MUST close the Network
 * Connection"; the AMQP WebSocket binding likewise carries AMQP's bytes in binary messages.
 */
export const TEXT_MESSAGE_CLOSE = { code: 1003, reason: 'binary messages only' } as const;

/**
 * A server WebSocket that hands on binary messages only. `ws` passes a text message on as its bytes
 * (once it has checked they are UTF-8), so the MQTT and AMQP handlers read a CONNECT or an AMQP
 * header sent as text as if it were binary. The first text message closes the WebSocket with
 * TEXT_MESSAGE_CLOSE and emits 'text-message' (to log it); neither it nor any message after it
 * reaches a 'message' listener. The messages before it were handed on as they came, so their
 * answers go out before the close, as for ws's own protocol errors.
 */
class BinaryOnlyWebSocket extends WebSocket {
  #refused = false;

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'message') {
      if (this.#refused) return false;
      if (args[1] === false) {
        this.#refused = true;
        super.emit('text-message');
        this.close(TEXT_MESSAGE_CLOSE.code, TEXT_MESSAGE_CLOSE.reason);
        return false;
      }
    }
    return super.emit(event, ...args);
  }
}

export interface WebSocketEndpointOptions {
  log: Logger;
  /** Largest WebSocket message read; a larger one closes the connection with 1009 (Message Too Big). */
  maxMessageBytes: number;
  /**
   * limits.idleTimeoutMs: a WebSocket connection silent both ways this long is closed, as any
   * device connection is (the listener's handler, boundConnections, closes it and logs why).
   */
  idleTimeoutMs: number;
  protocols: Partial<Record<WebSocketProtocol, WebSocketConnectionHandler>>;
  /** The clock the endpoint's warning limit (WEBSOCKET_LIMITED_WARNINGS) is measured on (default: the wall clock). */
  now?: () => Date;
}

/**
 * The endpoint's warnings, each a refused upgrade or a WebSocket closed for what the client sent,
 * once per connection and before any credential (the protocol inside authenticates later): logged
 * at most once in full a second per kind, the rest counted (limitWarnings) and flushed at close.
 */
export const WEBSOCKET_LIMITED_WARNINGS: Readonly<Record<string, LimitedKind>> = {
  'websocket.upgrade': { summary: 'WebSocket upgrade(s) refused', countBy: 'status' },
  'websocket.connection': { summary: 'WebSocket connection(s) closed for what the client sent', countBy: 'code' },
};

export interface WebSocketEndpoint {
  upgrade: UpgradeHandler;
  /** The subprotocols it serves, as the SDKs spell them. */
  readonly subprotocols: readonly string[];
  /** Closes every WebSocket connection it accepted. */
  close(): void;
}

/**
 * `wss://host/$iothub/websocket` on the HTTPS listener, as the SDKs' WebSocket transports connect to
 * it: the subprotocol picks the protocol (`mqtt`, `AMQPWSB10`), which runs over the WebSocket as over
 * TLS. An upgrade asking for another subprotocol, or none, is refused with a 400 and a DPS error body
 * naming the ones served, and logged; it never reaches a protocol handler.
 */
export function createWebSocketEndpoint(options: WebSocketEndpointOptions): WebSocketEndpoint {
  const warnings = limitWarnings(options.log, WEBSOCKET_LIMITED_WARNINGS, { now: options.now });
  const { log } = warnings;
  const served = Object.keys(options.protocols) as WebSocketProtocol[];
  const chosen = new WeakMap<IncomingMessage, string>();
  const server = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxMessageBytes,
    maxFragments: MAX_WEBSOCKET_MESSAGE_FRAMES,
    // Compression is off (ws's server default, kept explicit): an inflated message could exceed maxPayload's intent.
    perMessageDeflate: false,
    // How long a peer has to answer the close frame the server sends (any close: a DISCONNECT, a
    // violation, bytes that are not MQTT) before its socket is destroyed: the grace every refused
    // peer gets (connection-limits.ts), counted from the close, as ws counts it. ws's default, 30 s,
    // kept a silent peer's socket that long after a close; the session's own grace timer starts
    // only when the peer writes again (a close with no timer of its own costs none per connection).
    closeTimeout: REFUSED_PEER_GRACE_MS,
    clientTracking: true,
    handleProtocols: (_offered, req) => chosen.get(req) ?? false,
    WebSocket: BinaryOnlyWebSocket,
  });

  const upgrade: UpgradeHandler = (req, socket, head) => {
    const decision = decideUpgrade(req.url ?? '', req.headers.upgrade, req.headers['sec-websocket-protocol'], served);
    if (decision.kind === 'not-mine') return false;
    const peer = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    socket.on('error', (err) => log.debug('websocket.socket', `${peer}: ${err.message}`));
    if (decision.kind === 'refuse') {
      // The query masked: a client's can carry a SAS token's sig= (secrets never reach a log line).
      log.warn(
        'websocket.upgrade',
        `${peer}: upgrade to ${clipUrl(req.url ?? '')} refused: ${clip(decision.message)}`,
        {
          path: clipUrl(req.url ?? ''),
          subprotocol: clip(String(req.headers['sec-websocket-protocol'] ?? '')),
          status: decision.status,
        },
      );
      socket.end(rawHttpResponse(errorResponse(DpsErrorCode.InvalidRequestBody, decision.message)));
      destroyAfterGrace(socket);
      return true;
    }
    const handler = options.protocols[decision.protocol];
    if (!handler) return false; // decideUpgrade only accepts served protocols
    chosen.set(req, decision.offered);
    server.handleUpgrade(req, socket, head, (ws) => {
      // ws turns the socket's timeout off when it takes it (setTimeout(0)), which left a WebSocket
      // that sends nothing (before its CONNECT, an MQTT session with keepalive 0, an AMQP
      // connection) open for good, holding a slot of the HTTPS listener's limits.maxConnections.
      // Armed again; the listener's 'timeout' handler set at the handshake is still there.
      if (socket instanceof Socket) socket.setTimeout(options.idleTimeoutMs);
      ws.on('error', (err: Error & { code?: string }) => {
        const level = isClientError(err.code) ? 'warn' : 'debug';
        log[level]('websocket.connection', `${decision.protocol} over WebSocket from ${peer}: ${err.message}; closed`, {
          code: err.code,
          protocol: decision.protocol,
          ...(CLIENT_LIMIT_ERRORS.has(err.code ?? '')
            ? { maxMessageBytes: options.maxMessageBytes, maxMessageFrames: MAX_WEBSOCKET_MESSAGE_FRAMES }
            : {}),
        });
      });
      ws.once('text-message', () => {
        log.warn(
          'websocket.connection',
          `${decision.protocol} over WebSocket from ${peer}: a text message (${decision.protocol === 'mqtt' ? 'MQTT packets' : 'AMQP frames'} go in binary messages); closed with ${TEXT_MESSAGE_CLOSE.code}`,
          { code: 'TEXT_MESSAGE', protocol: decision.protocol },
        );
      });
      log.debug(
        'websocket.upgrade',
        `${peer}: ${decision.protocol} over WebSocket at ${clip((req.url ?? '').split('?')[0] ?? '')}`,
      );
      handler(ws, req, peer);
    });
    return true;
  };

  return {
    upgrade,
    subprotocols: served.map((p) => WEBSOCKET_SUBPROTOCOLS[p]),
    close() {
      for (const ws of server.clients) ws.terminate();
      server.close();
      warnings.flush();
    },
  };
}
