import type { Server, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '@dpskit/node-kit';

/** What bounds every device connection, on both listeners. All configurable (`EmulatorOptions.limits`). */
export interface ConnectionLimits {
  /** The TLS handshake must finish this soon after the TCP connection opens (TCP before TLS). */
  handshakeTimeoutMs: number;
  /**
   * A connection with no traffic either way for this long is closed: after the handshake before a
   * CONNECT or request, and an MQTT session with keepalive 0. Devices polling with `retry-after`
   * send well within it.
   */
  idleTimeoutMs: number;
  /** Open connections per listener; more are closed as they arrive, with a warning in the log. */
  maxConnections: number;
  /** Largest HTTP request line plus headers (Node's default, 16 KiB); larger gets 431. */
  maxHeaderBytes: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  maxConnections: 10_000,
  maxHeaderBytes: 16 * 1024,
};

/** Checks limits given by a user; the message names the setting. */
export function checkConnectionLimits(limits: Partial<ConnectionLimits>): void {
  for (const [name, value] of Object.entries(limits)) {
    if (value === undefined) continue;
    if (!(Number.isInteger(value) && value >= 1)) {
      throw new RangeError(`limits.${name} must be a whole number >= 1, not ${value}`);
    }
  }
}

/**
 * Applies the connection cap and the idle timeout to a TLS listener: one mechanism for MQTT and
 * HTTPS. Returns the open sockets (to destroy on close).
 */
export function boundConnections(
  server: Server,
  limits: ConnectionLimits,
  log: Logger,
  label: string,
): { sockets: Set<Socket> } {
  const sockets = new Set<Socket>();
  // The TCP socket under each TLS handshake in progress, by peer address (the TLS socket has the same).
  const handshaking = new Map<string, Socket>();
  let lastWarning = 0;
  let refusedSinceWarning = 0;
  server.on('connection', (socket: Socket) => {
    if (sockets.size >= limits.maxConnections) {
      refusedSinceWarning += 1;
      const now = Date.now();
      // At most one line a second, however hard the flood.
      if (now - lastWarning >= 1_000) {
        log.warn(
          `${label.toLowerCase()}.limit`,
          `${label}: ${sockets.size} connections open, the limit (limits.maxConnections); refused ${refusedSinceWarning} new connection(s)`,
          { open: sockets.size, refused: refusedSinceWarning, maxConnections: limits.maxConnections },
        );
        lastWarning = now;
        refusedSinceWarning = 0;
      }
      socket.destroy();
      return;
    }
    sockets.add(socket);
    // TCP before TLS: the handshake must finish in time (Node's own `handshakeTimeout` did not
    // close a connection that never sent a byte).
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    handshaking.set(key, socket);
    socket.setTimeout(limits.handshakeTimeoutMs, () => {
      log.debug(
        `${label.toLowerCase()}.handshake`,
        `${label}: no TLS handshake within ${limits.handshakeTimeoutMs} ms (limits.handshakeTimeoutMs); closed`,
      );
      socket.destroy();
    });
    socket.once('close', () => {
      sockets.delete(socket);
      if (handshaking.get(key) === socket) handshaking.delete(key);
    });
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    handshaking.get(key)?.setTimeout(0);
    handshaking.delete(key);
    socket.setTimeout(limits.idleTimeoutMs, () => {
      log.debug(
        `${label.toLowerCase()}.idle`,
        `${label}: connection idle for ${limits.idleTimeoutMs} ms (limits.idleTimeoutMs); closed`,
      );
      socket.destroy();
    });
  });
  return { sockets };
}
