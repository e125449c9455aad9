import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { DpsErrorCode } from '@dpskit/contracts';
import { type Logger, listen } from '@dpskit/node-kit';
import mqttPacket from 'mqtt-packet';
import type { AttestationResult } from '../core/attestation.js';
import { clip } from '../core/client-text.js';
import { type DeviceApi, type DeviceApiResponse, errorResponse } from '../core/device-api.js';
import type { DeviceTransport } from '../core/events.js';
import { boundConnections, type ConnectionLimits, DEFAULT_CONNECTION_LIMITS } from './connection-limits.js';
import { rawHttpResponse } from './https-client-errors.js';
import { peekMqttConnect } from './mqtt-connect-peek.js';
import { DeviceSession } from './mqtt-device-session.js';
import { foreignProtocol } from './mqtt-first-bytes.js';
import { MqttPacketSizeGuard } from './mqtt-packet-guard.js';
import { asciiJson, parseMqttUsername, parseRequestTopic, responseTopic } from './mqtt-topics.js';
import { CLIENT_CERTIFICATE_TLS_OPTIONS, peerCertificateChain } from './peer-certificates.js';

/**
 * Largest MQTT packet read (topic + payload): well above DPS's 96 KB message limit, so that a
 * request somewhat over it still gets its 400001 answer; a larger packet closes the connection
 * as soon as its header announces the size, since it cannot be answered without being read.
 */
export const MAX_MQTT_PACKET_BYTES = 256 * 1024;

export interface MqttTransportOptions {
  api: DeviceApi;
  tls: { cert: string; key: string };
  host: string;
  port: number;
  log: Logger;
  limits?: ConnectionLimits;
  /**
   * Another MQTT service on the same listener (the emulated IoT hubs): given a connection's CONNECT
   * username, returns its handler, or undefined when the connection is DPS's.
   */
  route?: (username: string | undefined) => ((stream: Duplex) => void) | undefined;
}

export interface RunningTransport {
  host: string;
  port: number;
  close(): Promise<void>;
}

export interface RunningMqttTransport extends RunningTransport {
  /**
   * Serves one more MQTT connection on another stream: MQTT over WebSockets hands over the
   * WebSocket's stream (`ws`'s createWebSocketStream). Same session handling, topics and authentication.
   */
  acceptStream(stream: Duplex, peer: string): void;
}

/**
 * DPS's device API over MQTT 3.1.1 on TLS; MQTT over WebSockets hands its streams to the same
 * handler (`acceptStream`). The API is request/response on each device's own connection, so there
 * is no broker: each connection is an MQTT session (mqtt-device-session.ts) over mqtt-packet's
 * parser and encoder, and every answer is written to the connection that asked. A broker's
 * routing, retained messages, subscription trie and persistence served no purpose here and cost a
 * sixth of the CPU of a registration and a third of the memory of an idle device (bench:server).
 *
 * Authentication failures are answered the way the real service appears to do it: the CONNECT
 * is accepted and the first request gets a 401 with a DPS error body, which the Node SDK turns
 * into an UnauthorizedError (a refused CONNACK would surface as a plain connection error).
 */
export async function startMqttTransport(options: MqttTransportOptions): Promise<RunningMqttTransport> {
  const { api, log } = options;
  // One connection per client id, as MQTT requires [MQTT-3.1.4-2]: a new CONNECT with an id in use
  // closes the older connection (a device reconnecting before its old connection timed out).
  const byClientId = new Map<string, Duplex>();
  // Streams handed over by the WebSocket endpoint (the TLS sockets are in `sockets` below).
  const handedOver = new Set<Duplex>();

  const attestConnect = (connect: mqttPacket.IConnectPacket, stream: Duplex): AttestationResult => {
    const { clientId, username, password } = connect;
    const parsed = parseMqttUsername(username);
    let attestation: AttestationResult;
    if (!parsed) {
      attestation = {
        ok: false,
        registrationId: clientId,
        reason: 'malformed',
        detail: `MQTT username "${clip(username ?? '')}" is not {idScope}/registrations/{registrationId}/api-version=…`,
      };
    } else if (parsed.registrationId !== clientId) {
      attestation = {
        ok: false,
        registrationId: parsed.registrationId,
        reason: 'invalid-registration-id',
        detail: `MQTT client id "${clip(clientId)}" differs from the registration id "${clip(parsed.registrationId)}" in the username`,
      };
    } else {
      attestation = api.service.attest({
        requestedIdScope: parsed.idScope,
        registrationId: parsed.registrationId,
        // X.509 devices send an empty password (or none) and their certificate in the handshake.
        token: password?.length ? password.toString('utf8') : undefined,
        clientCertificates: peerCertificateChain(stream),
      });
    }
    if (!attestation.ok) {
      log.debug('mqtt.auth', `${clip(attestation.registrationId)}: ${attestation.reason} (${attestation.detail})`, {
        registrationId: clip(attestation.registrationId),
        reason: attestation.reason,
      });
    }
    return attestation;
  };

  const answer = (
    attestation: AttestationResult,
    topic: string,
    payload: Buffer,
    transport: DeviceTransport,
    apiVersion: string | undefined,
  ): DeviceApiResponse | Promise<DeviceApiResponse> | undefined => {
    const request = parseRequestTopic(topic);
    if (request.kind === 'no-rid') return undefined;
    if (request.kind === 'register') return api.register(attestation, payload, transport, apiVersion);
    if (request.kind === 'operation-status') {
      return request.operationId
        ? api.operationStatus(attestation, request.operationId, transport)
        : errorResponse(DpsErrorCode.InvalidRequestBody, 'The operationId topic parameter is required.');
    }
    return errorResponse(
      DpsErrorCode.NotFound,
      `The DPS device API has no operation at ${clip(topic.split('?')[0] ?? '')}.`,
    );
  };

  /** Serves DPS's device API on one connection (TLS socket or WebSocket stream). */
  const serveDps = (stream: Duplex, peer: string, transport: DeviceTransport) => {
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    let attestation: AttestationResult | undefined;
    /** The api-version the CONNECT username named (it gates `csr`). */
    let apiVersion: string | undefined;
    let keepalive: NodeJS.Timeout | undefined;
    const who = () => clip(session.clientId || peer);
    const session: DeviceSession = new DeviceSession({
      send(packet) {
        if (!stream.destroyed) stream.write(mqttPacket.generate(packet));
      },
      close(reason) {
        if (reason) log.debug('mqtt.client', `${who()}: ${reason}; connection closed`);
        if (reason) stream.destroy();
        else stream.end();
      },
      connected(connect) {
        attestation = attestConnect(connect, stream);
        apiVersion = parseMqttUsername(connect.username)?.apiVersion;
        const previous = byClientId.get(connect.clientId);
        if (previous && previous !== stream) {
          log.debug('mqtt.client', `${clip(connect.clientId)}: connected again; the older connection is closed`);
          previous.destroy();
        }
        byClientId.set(connect.clientId, stream);
        if (session.keepaliveSeconds > 0) {
          keepalive = setTimeout(() => {
            log.debug(
              'mqtt.client',
              `${who()}: no packet for 1.5 × its keepalive of ${session.keepaliveSeconds} s; closed`,
            );
            stream.destroy();
          }, session.keepaliveSeconds * 1500);
        }
      },
      request(topic, payload) {
        const granted = attestation as AttestationResult;
        let response: DeviceApiResponse | Promise<DeviceApiResponse> | undefined;
        try {
          response = answer(granted, topic, payload, transport, apiVersion);
        } catch (err) {
          response = failed(err as Error);
        }
        if (response === undefined) {
          log.warn('mqtt.request', `${who()}: request on ${clip(topic)} has no $rid; it cannot be answered`);
          return;
        }
        const rid = (parseRequestTopic(topic) as { rid: string }).rid;
        if (response instanceof Promise) {
          response.catch(failed).then((settled) => reply(rid, settled));
        } else {
          reply(rid, response);
        }
      },
    });
    const failed = (err: Error) => {
      log.error('mqtt.request', `${who()}: ${err.message}`, { stack: err.stack });
      return errorResponse(DpsErrorCode.InternalServerError, 'Internal server error.');
    };
    const reply = (rid: string, response: DeviceApiResponse) =>
      session.reply(
        responseTopic(response.status, rid, response.retryAfterSeconds),
        Buffer.from(asciiJson(response.body), 'ascii'),
      );

    parser.on('packet', (packet) => {
      keepalive?.refresh();
      session.packet(packet);
    });
    parser.on('error', (err) => {
      log.debug('mqtt.connection', `${who()}: ${err.message}`);
      session.ended();
      stream.destroy();
    });
    const guard = new MqttPacketSizeGuard(MAX_MQTT_PACKET_BYTES);
    let first = true;
    stream.on('data', (chunk: Buffer) => {
      if (first) {
        first = false;
        if (refuseForeign(stream, peer, chunk)) return;
      }
      // The guard reads only fixed headers, so a packet larger than the bound is refused as soon as
      // its header announces it, never buffered whole (MQTT allows 256 MB).
      const size = guard.push(chunk);
      if (size !== undefined) {
        log.warn(
          'mqtt.packet',
          `${peer}: a ${size}-byte packet exceeds ${MAX_MQTT_PACKET_BYTES} bytes; connection closed`,
          {
            size,
          },
        );
        session.ended();
        stream.destroy();
        return;
      }
      if (!session.closed) parser.parse(chunk);
    });
    stream.on('error', (err) => log.debug('mqtt.connection', `${who()}: ${err.message}`));
    stream.once('close', () => {
      session.ended();
      if (keepalive) clearTimeout(keepalive);
      if (byClientId.get(session.clientId) === stream) byClientId.delete(session.clientId);
      handedOver.delete(stream);
    });
  };

  /** A client speaking another protocol: logged, told why when it speaks HTTP, and closed. */
  const refuseForeign = (stream: Duplex, peer: string, chunk: Buffer): boolean => {
    const foreign = foreignProtocol(chunk);
    if (!foreign) return false;
    log.warn(
      'mqtt.protocol',
      `${peer}: ${foreign.protocol === 'unknown' ? `sent "${foreign.firstBytes}", not an MQTT CONNECT` : `spoke ${foreign.protocol.toUpperCase()} on the MQTT port`}; this port serves the DPS device API over MQTT 3.1.1; connection closed`,
      { ...foreign },
    );
    // An HTTP client can read why; other protocols get the close (what MQTT prescribes).
    if (foreign.protocol === 'http') {
      stream.end(
        rawHttpResponse(
          errorResponse(
            DpsErrorCode.InvalidRequestBody,
            'This port serves the DPS device API over MQTT 3.1.1, not HTTP; the REST APIs are on the HTTPS port.',
          ),
        ),
      );
    } else {
      stream.destroy();
    }
    return true;
  };

  const limits = options.limits ?? DEFAULT_CONNECTION_LIMITS;
  // Over TLS and over WebSockets alike: the CONNECT's username says whether the connection is DPS's
  // or one of the emulated hubs' (see mqtt-connect-peek.ts).
  const accept = (stream: Duplex, peer: string, transport: DeviceTransport) => {
    const route = options.route;
    if (!route) {
      serveDps(stream, peer, transport);
      return;
    }
    peekMqttConnect(stream, MAX_MQTT_PACKET_BYTES).then((peeked) => {
      if (peeked.kind === 'closed') {
        stream.destroy();
        return;
      }
      const handler = peeked.kind === 'connect' ? route(peeked.username) : undefined;
      if (!handler) {
        serveDps(stream, peer, transport);
        return;
      }
      if (peeked.kind === 'connect' && peeked.keepaliveSeconds > 0 && stream instanceof tls.TLSSocket) {
        // A hub session idles between messages (the device SDKs ping every 180 s): bounded by its
        // keepalive (aedes closes it after 1.5 × keepalive without a packet), not by the idle
        // timeout meant for DPS's short request/response sessions.
        stream.setTimeout(Math.max(limits.idleTimeoutMs, peeked.keepaliveSeconds * 1500 + 5_000));
      }
      serveHub(stream, peer, handler);
    });
  };

  const serveHub = (stream: Duplex, peer: string, handle: (stream: Duplex) => void) => {
    handle(stream);
    // aedes reads with 'readable' + read(), so this listener sees each chunk as the parser gets it
    // (before aedes parses it) and does not switch the stream to flowing mode.
    const guard = new MqttPacketSizeGuard(MAX_MQTT_PACKET_BYTES);
    stream.on('data', (chunk: Buffer) => {
      const size = guard.push(chunk);
      if (size === undefined) return;
      log.warn(
        'mqtt.packet',
        `${peer}: a ${size}-byte packet exceeds ${MAX_MQTT_PACKET_BYTES} bytes; connection closed`,
        {
          size,
        },
      );
      stream.destroy();
    });
  };

  const server = tls.createServer(
    {
      cert: options.tls.cert,
      key: options.tls.key,
      handshakeTimeout: limits.handshakeTimeoutMs,
      ...CLIENT_CERTIFICATE_TLS_OPTIONS,
    },
    (socket) => accept(socket, `${socket.remoteAddress}:${socket.remotePort}`, 'mqtt'),
  );
  const { sockets } = boundConnections(server, limits, log, 'MQTT');
  server.on('connection', (socket: Socket) => {
    // Answers are small packets written right after a request; Nagle's algorithm would hold each
    // one back until the device's delayed ACK (about 40 ms per exchange).
    socket.setNoDelay(true);
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    // A client that is not speaking TLS at all (plain MQTT on 1883's habits, plain HTTP) is worth a line in the log.
    if (/wrong version number|http request|unknown protocol|packet length too long/i.test(err.message)) {
      log.warn(
        'mqtt.protocol',
        `a client on the MQTT port did not speak TLS (${err.message}): use mqtts:// with the emulator's CA`,
        {
          code: err.code,
        },
      );
    } else {
      log.debug('mqtt.tls', `TLS handshake failed: ${err.message}`);
    }
  });

  let port: number;
  try {
    port = await listen(server, {
      label: 'MQTT',
      host: options.host,
      port: options.port,
      portSetting: '--mqtt-port (mqttPort)',
    });
  } catch (err) {
    byClientId.clear();
    throw err;
  }

  return {
    host: options.host,
    port,
    acceptStream(stream, peer) {
      handedOver.add(stream);
      stream.once('close', () => handedOver.delete(stream));
      accept(stream, peer, 'mqtt-ws');
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      for (const stream of handedOver) stream.destroy();
      await closed;
    },
  };
}
