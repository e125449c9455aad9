import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * How long an idle kept-alive HTTPS connection is kept: Azure's front ends close a connection idle
 * for 4 minutes ("Azure Load Balancer ... The default setting is 4 minutes", azure-docs
 * load-balancer-tcp-idle-timeout; the IoT Hub C SDK's AMQP sample sizes its pings for the service's
 * "4 minutes remote idle"). Node's default, 5 s, closed a kept-alive SDK client's connection during
 * pauses the real services keep it through.
 */
export const AZURE_IDLE_TIMEOUT_MS = 240_000;

/**
 * Follows an HTTP(S) server's kept-alive connections while they wait between requests, the one idle
 * longest first, for `oldestIdle` to hand to the connection cap (`boundConnections`' `reclaim`): a
 * listener full of idle connections, which may now be kept 4 minutes, closes one for a new client
 * instead of refusing it (its client opens a new connection for its next request, as after any
 * idle close). Per connection one shared listener; per request one shared listener and a map entry.
 */
export function trackIdleConnections(server: Server): { oldestIdle(): Socket | undefined } {
  /** Idle sockets, in the order they became idle, with the bytes they had read then. */
  const idle = new Map<Socket, number>();
  function forget(this: Socket) {
    idle.delete(this);
  }
  function responded(this: ServerResponse) {
    const socket = (this.req as IncomingMessage).socket;
    if (!socket.destroyed && this.shouldKeepAlive) idle.set(socket, socket.bytesRead);
  }
  server.on('secureConnection', (socket: Socket) => {
    socket.on('close', forget);
  });
  // Ahead of the request handler: a request in progress is not idle.
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    idle.delete(req.socket);
    res.on('finish', responded);
  });
  server.prependListener('upgrade', (req: IncomingMessage) => {
    idle.delete(req.socket);
  });
  return {
    oldestIdle() {
      for (const [socket, bytesRead] of idle) {
        idle.delete(socket);
        // Bytes read since it went idle: a next request is arriving (its 'request' is yet to come).
        // A response still under way (pipelined requests) is not idle either. Not seen: the start of
        // a next request read together with the previous one, before its response finished (only
        // a client pipelining part of a request; the SDKs send one request at a time).
        const busy = (socket as Socket & { _httpMessage?: unknown })._httpMessage;
        if (!socket.destroyed && socket.bytesRead === bytesRead && !busy) return socket;
      }
      return undefined;
    },
  };
}
