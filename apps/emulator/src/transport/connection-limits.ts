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

/**
 * How long a peer answered and closed for something it did wrong (a refused request or upgrade, a
 * protocol violation) has to close its side before its connection is destroyed. The answer is
 * ended, not destroyed with the connection, so that it reaches the peer; a peer that neither reads
 * nor closes (or goes on writing, which keeps the idle timeout from firing) must not keep the
 * socket. One bound for every listener: MQTT, HTTPS, WebSockets and AMQP.
 */
export const REFUSED_PEER_GRACE_MS = 5_000;

/**
 * Destroys `connection` REFUSED_PEER_GRACE_MS from now, unless it is cleared first; the timer does
 * not keep the process alive.
 */
export function destroyAfterGrace(connection: { destroy(): unknown }): NodeJS.Timeout {
  return setTimeout(destroyConnection, REFUSED_PEER_GRACE_MS, connection).unref();
}

function destroyConnection(connection: { destroy(): unknown }): void {
  connection.destroy();
}

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
 * Applies the connection cap, the handshake deadline and the idle timeout to a TLS listener: one
 * mechanism for MQTT, HTTPS and AMQP. Returns the open sockets (to destroy on close). The
 * listener must be created with `handshakeTimeout: limits.handshakeTimeoutMs`. `reclaim`, when
 * given, is asked for a connection to close when the listener is full (HTTPS: the kept-alive
 * connection idle longest): the new connection takes its place instead of being refused.
 *
 * Per connection this adds no closure, timer or address string of its own (it runs for every
 * device registration; bench:server): the handshake deadline is Node's `handshakeTimeout` on the
 * TLS socket, which also runs for a connection that never sends a byte, and the idle timeout one
 * shared listener.
 */
export function boundConnections(
  server: Server,
  limits: ConnectionLimits,
  log: Logger,
  label: string,
  reclaim?: () => Socket | undefined,
): { sockets: Set<Socket> } {
  const sockets = new Set<Socket>();
  const event = label.toLowerCase();
  let lastWarning = 0;
  let refusedSinceWarning = 0;
  function forget(this: Socket) {
    sockets.delete(this);
  }
  function idle(this: Socket) {
    // The socket's current timeout: limits.idleTimeoutMs, or (HTTPS, between kept-alive requests)
    // the keep-alive timeout Node set in its place.
    const ms = this.timeout ?? limits.idleTimeoutMs;
    log.debug(
      `${event}.idle`,
      `${label}: connection idle for ${ms} ms (${ms === limits.idleTimeoutMs ? 'limits.idleTimeoutMs' : 'the keep-alive timeout between requests'}); closed`,
    );
    this.destroy();
  }
  server.on('connection', (socket: Socket) => {
    const reclaimed = sockets.size >= limits.maxConnections ? reclaim?.() : undefined;
    if (reclaimed) {
      // Its slot goes to the new connection at once (the set forgets it when it has closed).
      log.debug(
        `${event}.limit`,
        `${label}: ${sockets.size} connections open, the limit (limits.maxConnections); closed the one idle longest for a new one`,
      );
      reclaimed.destroy();
    } else if (sockets.size >= limits.maxConnections) {
      refusedSinceWarning += 1;
      const now = Date.now();
      // At most one line a second, however hard the flood.
      if (now - lastWarning >= 1_000) {
        log.warn(
          `${event}.limit`,
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
    // 'close' comes once; on() spares the wrapper once() builds per connection.
    socket.on('close', forget);
  });
  // Node reports a handshake that did not finish within `handshakeTimeout` (TCP before TLS
  // included) here, but leaves the connection open when the listener has a `tlsClientError`
  // listener: a client error before the handshake ends the connection, whatever it was.
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') {
      log.debug(
        `${event}.handshake`,
        `${label}: no TLS handshake within ${limits.handshakeTimeoutMs} ms (limits.handshakeTimeoutMs); closed`,
      );
    }
    socket.destroy();
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.setTimeout(limits.idleTimeoutMs, idle);
  });
  return { sockets };
}
