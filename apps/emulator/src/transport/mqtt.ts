import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { DpsErrorCode } from '@dpskit/contracts';
import { type Logger, listen } from '@dpskit/node-kit';
import { Aedes, type Client } from 'aedes';
import type { AttestationResult } from '../core/attestation.js';
import { clip } from '../core/client-text.js';
import { type DeviceApi, type DeviceApiResponse, errorResponse } from '../core/device-api.js';
import type { DeviceTransport } from '../core/events.js';
import { boundConnections, type ConnectionLimits, DEFAULT_CONNECTION_LIMITS } from './connection-limits.js';
import { rawHttpResponse } from './https-client-errors.js';
import { peekMqttConnect } from './mqtt-connect-peek.js';
import { foreignProtocol } from './mqtt-first-bytes.js';
import { MqttPacketSizeGuard } from './mqtt-packet-guard.js';
import {
  asciiJson,
  isDeviceRequestTopic,
  parseMqttUsername,
  parseRequestTopic,
  RESPONSE_FILTER,
  responseTopic,
} from './mqtt-topics.js';
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
   * WebSocket's stream (`ws`'s createWebSocketStream). Same broker, topics and authentication.
   */
  acceptStream(stream: Duplex, peer: string): void;
}

/**
 * DPS's device API over MQTT 3.1.1 on TLS, on an embedded aedes broker; MQTT over WebSockets hands
 * its streams to the same broker (`acceptStream`). Every device is
 * answered on its own connection (`client.publish`), never through the broker: all devices
 * subscribe to the same response filter, so a broker publish would reach all of them.
 *
 * Authentication failures are answered the way the real service appears to do it: the CONNECT
 * is accepted and the first request gets a 401 with a DPS error body, which the Node SDK turns
 * into an UnauthorizedError (a refused CONNACK would surface as a plain connection error).
 */
export async function startMqttTransport(options: MqttTransportOptions): Promise<RunningMqttTransport> {
  const { api, log } = options;
  const sessions = new WeakMap<Client, AttestationResult>();
  // The connections that came over WebSockets, so that events and error codes name the right wire.
  const viaWebSocket = new WeakSet<object>();
  const transportOf = (client: Client): DeviceTransport => (viaWebSocket.has(client.conn) ? 'mqtt-ws' : 'mqtt');

  const broker = await Aedes.createBroker({
    authenticate(client, username, password, done) {
      const parsed = parseMqttUsername(username);
      let attestation: AttestationResult;
      if (!parsed) {
        attestation = {
          ok: false,
          registrationId: client.id,
          reason: 'malformed',
          detail: `MQTT username "${clip(username ?? '')}" is not {idScope}/registrations/{registrationId}/api-version=…`,
        };
      } else if (parsed.registrationId !== client.id) {
        attestation = {
          ok: false,
          registrationId: parsed.registrationId,
          reason: 'invalid-registration-id',
          detail: `MQTT client id "${clip(client.id)}" differs from the registration id "${clip(parsed.registrationId)}" in the username`,
        };
      } else {
        attestation = api.service.attest({
          requestedIdScope: parsed.idScope,
          registrationId: parsed.registrationId,
          // X.509 devices send an empty password (or none) and their certificate in the handshake.
          token: password?.length ? password.toString('utf8') : undefined,
          clientCertificates: peerCertificateChain(client.conn),
        });
      }
      sessions.set(client, attestation);
      if (!attestation.ok) {
        log.debug('mqtt.auth', `${clip(attestation.registrationId)}: ${attestation.reason} (${attestation.detail})`, {
          registrationId: clip(attestation.registrationId),
          reason: attestation.reason,
        });
      }
      done(null, true);
    },
    authorizeSubscribe(_client, subscription, done) {
      // DPS serves one filter; refusing others (SUBACK 0x80) also keeps devices from snooping.
      done(null, subscription.topic === RESPONSE_FILTER ? subscription : null);
    },
    authorizePublish(client, packet, done) {
      if (!client) return done(null);
      if (!isDeviceRequestTopic(packet.topic)) {
        return done(new Error(`topic ${packet.topic} is not a DPS device request topic`));
      }
      // Requests are answered once and never forwarded; a retained copy would only sit in the
      // broker's memory (one per distinct $rid), so the flag is dropped.
      packet.retain = false;
      done(null);
    },
  });

  const reply = (client: Client, rid: string, response: DeviceApiResponse) => {
    if (client.closed) return; // the device left while a poll was held
    client.publish(
      {
        cmd: 'publish',
        topic: responseTopic(response.status, rid, response.retryAfterSeconds),
        payload: Buffer.from(asciiJson(response.body), 'ascii'),
        qos: 1,
        retain: false,
        dup: false,
      },
      (err) => {
        if (err) log.debug('mqtt.response', `${clip(client.id)}: response not delivered (${err.message})`);
      },
    );
  };

  broker.on('publish', (packet, client) => {
    if (!client) return; // the broker's own $SYS heartbeats
    const attestation = sessions.get(client);
    if (!attestation) return;
    const topic = parseRequestTopic(packet.topic);
    if (topic.kind === 'no-rid') {
      log.warn(
        'mqtt.request',
        `${clip(client.id)}: request on ${clip(packet.topic)} has no $rid; it cannot be answered`,
      );
      return;
    }
    const answer = (): DeviceApiResponse | Promise<DeviceApiResponse> => {
      if (topic.kind === 'register') {
        return api.register(
          attestation,
          typeof packet.payload === 'string' ? Buffer.from(packet.payload, 'utf8') : packet.payload,
          transportOf(client),
        );
      }
      if (topic.kind === 'operation-status') {
        return topic.operationId
          ? api.operationStatus(attestation, topic.operationId, transportOf(client))
          : errorResponse(DpsErrorCode.InvalidRequestBody, 'The operationId topic parameter is required.');
      }
      return errorResponse(
        DpsErrorCode.NotFound,
        `The DPS device API has no operation at ${clip(packet.topic.split('?')[0] ?? '')}.`,
      );
    };
    Promise.resolve()
      .then(answer)
      .catch((err: Error) => {
        log.error('mqtt.request', `${clip(client.id)}: ${err.message}`, { stack: err.stack });
        return errorResponse(DpsErrorCode.InternalServerError, 'Internal server error.');
      })
      .then((response) => reply(client, topic.rid, response));
  });

  broker.on('clientError', (client, err) => log.debug('mqtt.client', `${clip(client.id)}: ${err.message}`));
  broker.on('connectionError', (client, err) =>
    log.debug('mqtt.connection', `${clip(client?.id ?? '?')}: ${err.message}`),
  );

  const limits = options.limits ?? DEFAULT_CONNECTION_LIMITS;
  // Over TLS and over WebSockets alike: the CONNECT's username says whether the connection is DPS's
  // or one of the emulated hubs' (see mqtt-connect-peek.ts).
  const accept = (stream: Duplex, peer: string) => {
    const route = options.route;
    if (!route) {
      serve(stream, peer, broker.handle.bind(broker));
      return;
    }
    peekMqttConnect(stream, MAX_MQTT_PACKET_BYTES).then((peeked) => {
      if (peeked.kind === 'closed') {
        stream.destroy();
        return;
      }
      const handler = peeked.kind === 'connect' ? route(peeked.username) : undefined;
      if (handler && peeked.kind === 'connect' && peeked.keepaliveSeconds > 0 && stream instanceof tls.TLSSocket) {
        // A hub session idles between messages (the device SDKs ping every 180 s): bounded by its
        // keepalive (aedes closes it after 1.5 × keepalive without a packet), not by the idle
        // timeout meant for DPS's short request/response sessions.
        stream.setTimeout(Math.max(limits.idleTimeoutMs, peeked.keepaliveSeconds * 1500 + 5_000));
      }
      serve(stream, peer, handler ?? broker.handle.bind(broker));
    });
  };

  const serve = (stream: Duplex, peer: string, handle: (stream: Duplex) => void) => {
    handle(stream);
    // aedes reads with 'readable' + read(), so this listener sees each chunk as the parser gets it
    // (before aedes parses it) and does not switch the stream to flowing mode.
    const guard = new MqttPacketSizeGuard(MAX_MQTT_PACKET_BYTES);
    let first = true;
    stream.on('data', (chunk: Buffer) => {
      if (first) {
        first = false;
        const foreign = foreignProtocol(chunk);
        if (foreign) {
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
          return;
        }
      }
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
    (socket) => accept(socket, `${socket.remoteAddress}:${socket.remotePort}`),
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
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw err;
  }

  return {
    host: options.host,
    port,
    acceptStream(stream, peer) {
      viaWebSocket.add(stream);
      accept(stream, peer);
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}
