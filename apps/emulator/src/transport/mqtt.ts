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
import { type LimitedKind, limitWarnings } from '../core/limited-warnings.js';
import {
  boundConnections,
  type ConnectionLimits,
  DEFAULT_CONNECTION_LIMITS,
  destroyAfterGrace,
} from './connection-limits.js';
import { rawHttpResponse } from './https-client-errors.js';
import { type FirstPacket, readFirstMqttPacket } from './mqtt-connect-peek.js';
import {
  CONNECTION_ACCEPTED,
  type ConnectReturnCode,
  DeviceSession,
  type DeviceSessionHooks,
  NOT_AUTHORIZED,
  SERVER_UNAVAILABLE,
} from './mqtt-device-session.js';
import { encodeServerPacket } from './mqtt-encode.js';
import { foreignProtocol } from './mqtt-first-bytes.js';
import { decodeFirstPacket, decodeWholePackets, type PacketSink } from './mqtt-packet-decoder.js';
import { MqttPacketSizeGuard } from './mqtt-packet-guard.js';
import {
  asciiJson,
  asciiJsonText,
  type DeviceRequestTopic,
  MAX_REQUEST_ID_LENGTH,
  type MqttUsername,
  parseMqttUsername,
  parseRequestTopic,
  responseTopic,
} from './mqtt-topics.js';
import { CLIENT_CERTIFICATE_TLS_OPTIONS, peerCertificateChain, tlsCarrier } from './peer-certificates.js';
import { logTlsClientError } from './tls-client-errors.js';
import { closeWebSocketWith, MQTT_WEBSOCKET_CLOSE, type MqttWebSocketClose } from './websocket-stream.js';

/**
 * Largest MQTT packet read (topic + payload): well above DPS's 96 KB message limit, so that a
 * request somewhat over it still gets its 400001 answer; a larger packet closes the connection
 * as soon as its header announces the size, since it cannot be answered without being read.
 */
export const MAX_MQTT_PACKET_BYTES = 256 * 1024;

/**
 * The longest keepalive an IoT hub session is held to: "IoT Hub's keep-alive ping interval is 1.5
 * times the client keep-alive value. However, IoT Hub limits the maximum server-side timeout to
 * 29.45 minutes (1767 seconds)" (azure-docs iot-mqtt-connect-to-iot-hub). A longer keepalive is
 * taken as this one, so a silent session is closed after 1.5 × 1178 s = 1767 s.
 */
export const MAX_HUB_KEEPALIVE_SECONDS = 1178;

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
  /** The clock the listener's warning limit (MQTT_LIMITED_WARNINGS) is measured on (default: the wall clock). */
  now?: () => Date;
}

/**
 * The listener's warnings (TLS and MQTT over WebSockets alike) a client can cause without a valid
 * credential, once per connection (not MQTT, not TLS, a packet over the bound) or once per packet
 * (a request that cannot be answered: a CONNECT with a wrong key is accepted and its requests read,
 * see startMqttTransport): logged at most once in full a second per kind, the rest counted
 * (limitWarnings) and flushed at close.
 */
export const MQTT_LIMITED_WARNINGS: Readonly<Record<string, LimitedKind>> = {
  'mqtt.protocol': { summary: 'client(s) on the MQTT port not speaking MQTT or TLS', countBy: ['protocol', 'code'] },
  'mqtt.packet': {
    summary: `connection(s) closed for a packet over ${MAX_MQTT_PACKET_BYTES} bytes`,
    countBy: 'reason',
  },
  'mqtt.request': { summary: 'request(s) that cannot be answered (no $rid, or one too long)', countBy: 'reason' },
};

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
 * into an UnauthorizedError (a refused CONNACK would surface as a plain connection error). A
 * CONNECT without a username, which names no registration at all, gets CONNACK 5.
 */
export async function startMqttTransport(options: MqttTransportOptions): Promise<RunningMqttTransport> {
  const { api } = options;
  const warnings = limitWarnings(options.log, MQTT_LIMITED_WARNINGS, { now: options.now });
  const { log } = warnings;
  // One connection per client id, as MQTT requires [MQTT-3.1.4-2]: a new CONNECT with an id in use
  // closes the older connection (a device reconnecting before its old connection timed out).
  const byClientId = new Map<string, Duplex>();
  // Streams handed over by the WebSocket endpoint (the TLS sockets are in `sockets` below).
  const handedOver = new Set<Duplex>();

  const attestConnect = (
    connect: mqttPacket.IConnectPacket,
    parsed: MqttUsername | undefined,
    stream: Duplex,
  ): AttestationResult => {
    const { clientId, username, password } = connect;
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
      // X.509 devices send an empty password (or none) and their certificate in the handshake.
      const token = password?.length ? password.toString('utf8') : undefined;
      attestation = api.service.attest({
        requestedIdScope: parsed.idScope,
        registrationId: parsed.registrationId,
        token,
        // Read only when there is no token: attestation uses the chain only then, and reading it
        // builds objects for every certificate the client sent.
        clientCertificates: token === undefined ? peerCertificateChain(stream) : [],
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

  const context: DpsConnectionContext = { api, log, byClientId, attestConnect };
  /**
   * Serves DPS's device API on one connection (TLS socket or WebSocket stream), from its first
   * packet when that was read already (the CONNECT, decoded, and the bytes after it). `routing`:
   * the connection may be a hub's (`options.route`), told by the CONNECT its first read brings.
   */
  const serveDps = (
    stream: Duplex,
    peer: Peer,
    transport: DeviceTransport,
    first?: Extract<FirstPacket, { kind: 'connect' }>,
    routing = false,
  ) => {
    const connection = new DpsConnection(context, stream, peer, transport);
    (stream as Duplex & { [CONNECTION]?: DpsConnection })[CONNECTION] = connection;
    if (first) connection.start(first.connect, first.bytes.subarray(first.length));
    if (routing) {
      connection.routing = true;
      stream.on('end', onEndBeforeRouted);
    }
    stream.on('data', onDpsData);
    stream.on('error', onDpsError);
    // 'close' comes once; on() spares the wrapper once() builds per connection.
    stream.on('close', onDpsClose);
  };
  function onDpsData(this: Duplex & { [CONNECTION]?: DpsConnection }, chunk: Buffer) {
    const connection = this[CONNECTION];
    if (!connection) return;
    if (connection.first) {
      connection.first = false;
      if (connection.routing) {
        this.off('end', onEndBeforeRouted);
        routeFirstRead(this, connection, chunk);
        return;
      }
      if (refuseForeign(this, connection, chunk)) return;
    }
    connection.data(chunk);
  }
  /** A routed connection that ends before its first read: closed, as it was by readFirstMqttPacket. */
  function onEndBeforeRouted(this: Duplex) {
    this.destroy();
  }
  function onDpsError(this: Duplex & { [CONNECTION]?: DpsConnection }, err: Error) {
    // Before a routed connection's first read it is no one's yet: closed without a line, as it
    // was by readFirstMqttPacket.
    const connection = this[CONNECTION];
    if (connection?.routing && connection.first) return;
    log.debug('mqtt.connection', `${connection?.who() ?? '?'}: ${err.message}`);
  }
  function onDpsClose(this: Duplex & { [CONNECTION]?: DpsConnection }) {
    this[CONNECTION]?.ended();
    handedOver.delete(this);
  }

  /** A client speaking another protocol: logged, told why when it speaks HTTP, and closed. */
  const refuseForeign = (stream: Duplex, connection: DpsConnection, chunk: Buffer): boolean => {
    const foreign = foreignProtocol(chunk);
    if (!foreign) return false;
    log.warn(
      'mqtt.protocol',
      `${connection.peer()}: ${foreign.protocol === 'unknown' ? `sent "${foreign.firstBytes}", not an MQTT CONNECT` : `spoke ${foreign.protocol.toUpperCase()} on the MQTT port`}; this port serves the DPS device API over MQTT 3.1.1; connection closed`,
      { ...foreign },
    );
    const webSocket = !(stream instanceof tls.TLSSocket);
    if (webSocket) {
      // Inside a WebSocket: an orderly close saying why, 1002 (the protocol it carries was broken),
      // rather than a dropped connection (1006); what the peer sends after is read and dropped
      // (DpsConnection.data), and a peer that never answers the close frame is disconnected
      // REFUSED_PEER_GRACE_MS after it (the WebSocket server's closeTimeout, websocket.ts).
      connection.session.ended();
      closeWebSocketWith(stream, MQTT_WEBSOCKET_CLOSE.protocolError);
    }
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
    } else if (webSocket) {
      stream.end();
    } else {
      stream.destroy();
    }
    return true;
  };

  const limits = options.limits ?? DEFAULT_CONNECTION_LIMITS;
  // Over TLS and over WebSockets alike: the CONNECT's username says whether the connection is DPS's
  // or one of the emulated hubs' (see mqtt-connect-peek.ts). The DPS connection is set up at once and
  // its first read, which almost always starts with the whole CONNECT, decides (routeFirstRead).
  const accept = (stream: Duplex, peer: Peer, transport: DeviceTransport) => {
    serveDps(stream, peer, transport, undefined, options.route !== undefined);
  };

  /**
   * A routed connection's first read: a whole CONNECT at its start (within the packet bound) goes to
   * the service its username names, with every byte read; anything else (a CONNECT in pieces, not a
   * CONNECT, not MQTT, too large) is read again from the start by `readFirstMqttPacket`, as it would
   * be without this shortcut, which spares every connection that reader's listeners and closures.
   */
  const routeFirstRead = (stream: Duplex, connection: DpsConnection, chunk: Buffer) => {
    const whole = decodeFirstPacket(chunk, MAX_MQTT_PACKET_BYTES);
    if (whole?.packet.cmd === 'connect') {
      const handler = (options.route as NonNullable<MqttTransportOptions['route']>)(whole.packet.username);
      if (!handler) {
        connection.start(whole.packet, chunk.subarray(whole.length));
        return;
      }
      leaveDps(stream);
      handOver(stream, whole.packet.keepalive ?? 0, chunk, handler);
      return;
    }
    leaveDps(stream);
    stream.pause();
    stream.unshift(chunk);
    readFirstMqttPacket(stream, MAX_MQTT_PACKET_BYTES, (first) => routeFirstPacket(stream, connection, first));
    stream.resume();
  };

  /** Takes a stream from the DPS connection it was given before its first packet was known. */
  const leaveDps = (stream: Duplex) => {
    stream.off('data', onDpsData);
    stream.off('error', onDpsError);
    stream.off('close', onDpsClose);
    delete (stream as Duplex & { [CONNECTION]?: DpsConnection })[CONNECTION];
  };

  /** Where a routed connection goes once its first packet was read whole (readFirstMqttPacket). */
  const routeFirstPacket = (stream: Duplex, connection: DpsConnection, first: FirstPacket) => {
    if (first.kind === 'closed') {
      stream.destroy();
      return;
    }
    const handler = first.kind === 'connect' ? options.route?.(first.connect.username) : undefined;
    if (!handler) {
      if (first.kind === 'connect') {
        // The stream flows on: the session's 'data' listener takes the next chunks.
        serveDps(stream, connection.peerGiven, connection.transport, first);
      } else {
        // Not MQTT, or too large: the DPS session reads it all again and says why it closes.
        stream.pause();
        stream.unshift(first.bytes);
        serveDps(stream, connection.peerGiven, connection.transport);
        stream.resume();
      }
      return;
    }
    handOver(stream, first.kind === 'connect' ? (first.connect.keepalive ?? 0) : 0, first.bytes, handler);
  };

  /** Hands a connection to a hub's handler with every byte read from it (`bytes`), which it reads again. */
  const handOver = (stream: Duplex, keepaliveSeconds: number, bytes: Buffer, handler: (stream: Duplex) => void) => {
    if (keepaliveSeconds > 0) {
      // A hub session idles between messages (the device SDKs ping every 180 s): bounded by its
      // keepalive (aedes closes it after 1.5 × keepalive without a packet, 1767 s at most), not by
      // the idle timeout meant for DPS's short request/response sessions. Over WebSockets, on the
      // TLS connection the WebSocket runs on.
      const keepalive = Math.min(keepaliveSeconds, MAX_HUB_KEEPALIVE_SECONDS);
      tlsCarrier(stream)?.setTimeout(Math.max(limits.idleTimeoutMs, keepalive * 1500 + 5_000));
    }
    // The hub's handler reads the stream from its start: paused, with every byte back.
    stream.pause();
    stream.unshift(bytes);
    // The hub reads the stream itself, packet sizes bounded (hub/paced-stream.ts): the packets
    // read before an oversized one are answered before the connection closes.
    handler(stream);
  };

  const server = tls.createServer(
    {
      cert: options.tls.cert,
      key: options.tls.key,
      handshakeTimeout: limits.handshakeTimeoutMs,
      ...CLIENT_CERTIFICATE_TLS_OPTIONS,
    },
    // The peer's address is read only when a log line names it.
    (socket) => accept(socket, undefined, 'mqtt'),
  );
  const { sockets } = boundConnections(server, limits, log, 'MQTT');
  server.on('connection', (socket: Socket) => {
    // Answers are small packets written right after a request; Nagle's algorithm would hold each
    // one back until the device's delayed ACK (about 40 ms per exchange).
    socket.setNoDelay(true);
  });
  server.on('tlsClientError', logTlsClientError(log, { kind: 'mqtt', port: 'MQTT', scheme: 'mqtts' }));

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
      warnings.flush();
    },
  };
}

/** 'drain' listener of a connection whose reading stopped for its unwritten answers (DpsConnection.data). */
function resumeReading(this: Duplex): void {
  this.resume();
}

/** The stream's DPS connection: one listener function per event for all connections, not closures per connection. */
const CONNECTION = Symbol('dps-mqtt-connection');

interface DpsConnectionContext {
  api: DeviceApi;
  log: Logger;
  byClientId: Map<string, Duplex>;
  attestConnect(
    connect: mqttPacket.IConnectPacket,
    parsed: MqttUsername | undefined,
    stream: Duplex,
  ): AttestationResult;
}

/**
 * One device's connection: bytes in (size guard, MQTT parser), packets to its session, requests to
 * the device API, answers out. Kept small because a fleet holds thousands of them: methods on the
 * prototype instead of closures, and the MQTT parser (with its buffer list stream) only while a
 * packet is partly read, which an idle device never has.
 */
/** A connection's peer as given (WebSockets), or undefined for a TLS socket's own address, read when needed. */
type Peer = string | undefined;

function peerText(stream: Duplex, peer: Peer): string {
  if (peer !== undefined) return peer;
  const socket = stream as Partial<Socket>;
  return `${socket.remoteAddress}:${socket.remotePort}`;
}

class DpsConnection implements DeviceSessionHooks, PacketSink {
  readonly session: DeviceSession;
  readonly #guard = new MqttPacketSizeGuard(MAX_MQTT_PACKET_BYTES);
  #parser: ReturnType<typeof mqttPacket.parser> | undefined;
  #attestation: AttestationResult | undefined;
  /** The api-version the CONNECT username named (it gates `csr`). */
  #apiVersion: string | undefined;
  #keepalive: NodeJS.Timeout | undefined;
  /**
   * Set once the connection was ended for a violation, or written to after its session ended:
   * destroys it if the peer has not closed.
   */
  #grace: NodeJS.Timeout | undefined;
  first = true;
  /**
   * Over TLS, the packets sent while the connection is held (`#hold`: a read being served, a
   * register waiting for its commit) are kept here and written as one buffer when the last hold is
   * released: one write, which TLS sends as one record, as the stream's cork did with the same
   * bytes, without the Writable's per-write bookkeeping and writev. Over WebSockets the stream's
   * cork is used as before (its frames are written one per packet).
   */
  #pending: Buffer | Buffer[] | undefined;
  #pendingBytes = 0;
  #holds = 0;
  /** The connection may be a hub's: its first read is routed (see `routeFirstRead`) before it is served. */
  routing = false;

  constructor(
    private readonly context: DpsConnectionContext,
    private readonly stream: Duplex,
    readonly peerGiven: Peer,
    readonly transport: DeviceTransport,
  ) {
    this.session = new DeviceSession(this);
  }

  peer(): string {
    return peerText(this.stream, this.peerGiven);
  }

  who(): string {
    return clip(this.session.clientId || this.peer());
  }

  /** Starts the session with its CONNECT, decoded already, and the bytes that came after it. */
  start(connect: mqttPacket.IConnectPacket, rest: Buffer): void {
    this.first = false;
    this.#hold();
    try {
      this.session.packet(connect);
      if (rest.length > 0) this.data(rest);
    } finally {
      this.#release();
    }
  }

  data(chunk: Buffer): void {
    // Bytes after the session closed are read (a close with unread bytes would reset the
    // connection and could take the last answers with it) and dropped, not parsed. A peer that
    // goes on writing after a DISCONNECT or a CONNACK 3 (ended, not destroyed: see close()) keeps
    // the idle timeout from firing, so its first write after the end starts the grace a violating
    // peer gets. Armed here rather than at the end: the SDKs send DISCONNECT after every
    // registration and then close, so a normal connection never comes here and costs no timer.
    if (this.session.closed) {
      if (!this.#grace && !this.stream.destroyed) this.#grace = destroyAfterGrace(this.stream);
      return;
    }
    // The guard reads only fixed headers, so a packet larger than the bound is refused as soon as
    // its header announces it, never buffered whole (MQTT allows 256 MB). The packets read before
    // it are served first, as they would be had they come in a read of their own.
    const size = this.#guard.push(chunk);
    const bytes = size === undefined ? chunk : chunk.subarray(0, this.#guard.oversizedAt);
    // Answers given at once (PUBACK and the answer to a request) leave in one TLS record.
    this.#hold();
    try {
      if (bytes.length === 0) {
        // Only (the start of) the oversized packet.
      } else if (!this.#parser && (size !== undefined || this.#guard.atPacketBoundary)) {
        // Whole packets (the usual read): the shared parser, nothing kept.
        const error = decodeWholePackets(bytes, this);
        if (error) this.#onParseError(error);
      } else {
        (this.#parser ?? this.#newParser()).parse(bytes);
      }
      if (size !== undefined && !this.session.closed) {
        this.context.log.warn(
          'mqtt.packet',
          `${this.peer()}: a ${size}-byte packet exceeds ${MAX_MQTT_PACKET_BYTES} bytes; connection closed`,
          { size, reason: 'too-large' },
        );
        this.session.ended();
        this.#endForViolation(MQTT_WEBSOCKET_CLOSE.tooBig);
      }
    } finally {
      this.#release();
    }
    // Between packets the parser holds nothing: an idle device keeps no parser.
    if (this.#guard.atPacketBoundary) this.#parser = undefined;
    // A peer that sends requests and does not read the answers: nothing more is read until they
    // are written (TCP then holds the peer back), rather than every answer kept in memory (32.7 MB
    // of status requests on one connection held 195 MB of answers). A silent stalled connection
    // is then closed by the idle timeout. Answers held for a register's commit count as written
    // (as the cork counted them): once written, they are more than the stream buffers before asking
    // for a drain, so 'drain' comes after them.
    if (this.stream.writableNeedDrain || this.#pendingBytes >= this.stream.writableHighWaterMark) {
      this.stream.pause();
      this.stream.once('drain', resumeReading);
    }
  }

  onPacket(packet: mqttPacket.Packet): void {
    this.#keepalive?.refresh();
    this.session.packet(packet);
  }

  #onParseError(err: Error): void {
    this.context.log.debug('mqtt.connection', `${this.who()}: ${err.message}`);
    // MQTT 3.1.1 [MQTT-4.8.0-1]: a protocol violation closes the connection; nothing after it is answered.
    this.session.ended();
    this.#endForViolation();
  }

  /**
   * Ends the stream after what the session sent (its packets are corked: destroy() would drop the
   * answers to the packets read before the violation) and destroys it if the peer has not closed
   * its side within REFUSED_PEER_GRACE_MS (connection-limits.ts). Over WebSockets, the close frame
   * says why (websocket-stream.ts).
   */
  #endForViolation(close: MqttWebSocketClose = MQTT_WEBSOCKET_CLOSE.protocolError): void {
    if (this.transport === 'mqtt-ws') closeWebSocketWith(this.stream, close);
    this.#flush();
    this.stream.end();
    if (this.#grace || this.stream.destroyed) return;
    this.#grace = destroyAfterGrace(this.stream);
  }

  #newParser() {
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (packet: mqttPacket.Packet) => this.onPacket(packet));
    parser.on('error', (err: Error) => this.#onParseError(err));
    this.#parser = parser;
    return parser;
  }

  send(packet: mqttPacket.Packet): void {
    if (this.stream.destroyed) return;
    const bytes = encodeServerPacket(packet);
    if (this.#holds === 0 || this.transport !== 'mqtt') {
      this.stream.write(bytes);
      return;
    }
    const pending = this.#pending;
    if (pending === undefined) this.#pending = bytes;
    else if (Array.isArray(pending)) pending.push(bytes);
    else this.#pending = [pending, bytes];
    this.#pendingBytes += bytes.length;
  }

  /** Holds what is sent until the matching `#release` (the stream's cork over WebSockets). */
  #hold(): void {
    if (this.transport === 'mqtt') this.#holds += 1;
    else this.stream.cork();
  }

  #release(): void {
    if (this.transport !== 'mqtt') {
      this.stream.uncork();
      return;
    }
    this.#holds -= 1;
    if (this.#holds === 0) this.#flush();
  }

  /** Writes what was held, in one buffer. */
  #flush(): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    this.#pending = undefined;
    this.#pendingBytes = 0;
    if (this.stream.destroyed) return;
    this.stream.write(Array.isArray(pending) ? Buffer.concat(pending) : pending);
  }

  close(reason: string | undefined): void {
    // Ended, not destroyed, whatever the reason: the session's packets are corked and what it sent
    // before closing (a CONNACK 1 refusing the protocol level, the answers earlier in the same read)
    // would be dropped with the stream. After a DISCONNECT or a CONNACK 3 (no reason: nothing the
    // client did wrong) a silent peer that does not close its side is closed by the idle timeout,
    // one that goes on writing REFUSED_PEER_GRACE_MS after its first write (see data()).
    if (reason === undefined) {
      if (this.transport === 'mqtt-ws') closeWebSocketWith(this.stream, MQTT_WEBSOCKET_CLOSE.normal);
      this.#flush();
      this.stream.end();
      return;
    }
    this.context.log.debug('mqtt.client', `${this.who()}: ${reason}; connection closed`);
    this.#endForViolation();
  }

  connected(connect: mqttPacket.IConnectPacket): ConnectReturnCode {
    const { byClientId, log } = this.context;
    if (!connect.username) {
      // A CONNECT that names no registration (no username, or an empty one) can be no device's:
      // refused at once, CONNACK 5, before it takes over a connection of the same client id. What
      // real DPS answers is not known; a username that names one, wrongly, is answered 401 on the
      // first request as the one real capture shows (docs/device-api.md, "Choices where DPS is unknown").
      log.debug('mqtt.auth', `${clip(connect.clientId)}: a CONNECT without a username; CONNACK 5 (not authorized)`, {
        registrationId: clip(connect.clientId),
        reason: 'missing-username',
      });
      return NOT_AUTHORIZED;
    }
    const parsed = parseMqttUsername(connect.username);
    try {
      this.#attestation = this.context.attestConnect(connect, parsed, this.stream);
    } catch (err) {
      // The enrollments could not be read (the store failed): CONNACK 3, server unavailable, and
      // the server goes on; thrown from the socket's 'data' handler, it would end the process.
      log.error('mqtt.auth', `${clip(connect.clientId)}: enrollments not read: ${(err as Error).message}`);
      // Over WebSockets the close says so too: 1011, which close(undefined)'s 1000 does not replace.
      if (this.transport === 'mqtt-ws') closeWebSocketWith(this.stream, MQTT_WEBSOCKET_CLOSE.serverUnavailable);
      return SERVER_UNAVAILABLE;
    }
    this.#apiVersion = parsed?.apiVersion;
    const previous = byClientId.get(connect.clientId);
    if (previous && previous !== this.stream) {
      log.debug('mqtt.client', `${clip(connect.clientId)}: connected again; the older connection is closed`);
      previous.destroy();
    }
    byClientId.set(connect.clientId, this.stream);
    const keepalive = this.session.keepaliveSeconds;
    if (keepalive > 0) {
      this.#keepalive = setTimeout(() => {
        log.debug('mqtt.client', `${this.who()}: no packet for 1.5 × its keepalive of ${keepalive} s; closed`);
        if (this.transport === 'mqtt-ws') {
          // Over WebSockets a close frame saying why, 1001 as the hub's (websocket-stream.ts: why);
          // what the peer sends after is read and dropped. Over TLS dropped, as MQTT has it.
          this.session.ended();
          this.#endForViolation(MQTT_WEBSOCKET_CLOSE.keepaliveTimeout);
        } else {
          this.stream.destroy();
        }
      }, keepalive * 1500);
    }
    return CONNECTION_ACCEPTED;
  }

  request(topic: string, payload: Buffer): void {
    const request = parseRequestTopic(topic);
    if (request.kind === 'no-rid') {
      this.context.log.warn(
        'mqtt.request',
        `${this.who()}: request on ${clip(topic)} has no $rid; it cannot be answered`,
        { reason: 'no-rid' },
      );
      return;
    }
    if (request.rid.length > MAX_REQUEST_ID_LENGTH) {
      // Its answer's topic would not fit an MQTT topic (MAX_REQUEST_ID_LENGTH says why).
      this.context.log.warn(
        'mqtt.request',
        `${this.who()}: a request's $rid of ${request.rid.length} characters is over ${MAX_REQUEST_ID_LENGTH}; it cannot be answered`,
        { reason: 'rid-too-long' },
      );
      return;
    }
    let response: DeviceApiResponse | Promise<DeviceApiResponse>;
    try {
      response = this.#answer(request, topic, payload);
    } catch (err) {
      response = this.#failed(err as Error);
    }
    if (response instanceof Promise) {
      // The PUBACK written already waits for the answer (the register's 202 comes once its
      // operation is committed, at the end of this turn): both leave in one TLS record. A held
      // poll (retry-after 0) waits for an allocation and is not held back.
      const hold = request.kind === 'register';
      if (hold) this.#hold();
      response
        .catch((err: Error) => this.#failed(err))
        .then((settled) => {
          this.#reply(request.rid, settled);
          if (hold) this.#release();
        });
    } else {
      this.#reply(request.rid, response);
    }
  }

  ended(): void {
    this.session.ended();
    if (this.#keepalive) clearTimeout(this.#keepalive);
    if (this.#grace) clearTimeout(this.#grace);
    this.#parser = undefined;
    this.#pending = undefined;
    this.#pendingBytes = 0;
    const { byClientId } = this.context;
    if (byClientId.get(this.session.clientId) === this.stream) byClientId.delete(this.session.clientId);
  }

  #answer(
    request: Exclude<DeviceRequestTopic, { kind: 'no-rid' }>,
    topic: string,
    payload: Buffer,
  ): DeviceApiResponse | Promise<DeviceApiResponse> {
    const { api } = this.context;
    const attestation = this.#attestation as AttestationResult;
    if (request.kind === 'register') return api.registerSoon(attestation, payload, this.transport, this.#apiVersion);
    if (request.kind === 'operation-status') {
      if (!request.operationId)
        return errorResponse(DpsErrorCode.InvalidRequestBody, 'The operationId topic parameter is required.');
      // Answered in the same turn when it can be (no poll to hold), so that it leaves with the PUBACK.
      return api.poll(attestation, request.operationId, this.transport);
    }
    return errorResponse(
      DpsErrorCode.NotFound,
      `The DPS device API has no operation at ${clip(topic.split('?')[0] ?? '')}.`,
    );
  }

  #failed(err: Error): DeviceApiResponse {
    this.context.log.error('mqtt.request', `${this.who()}: ${err.message}`, { stack: err.stack });
    return errorResponse(DpsErrorCode.InternalServerError, 'Internal server error.');
  }

  #reply(rid: string, response: DeviceApiResponse): void {
    // ASCII only (asciiJson): written into the packet as it is encoded, no buffer of its own.
    this.session.reply(
      responseTopic(response.status, rid, response.retryAfterSeconds),
      response.bodyJson === undefined ? asciiJson(response.body) : asciiJsonText(response.bodyJson),
    );
  }
}
