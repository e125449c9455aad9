import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { createErrorBody, DpsErrorCode } from '@dpskit/contracts';
import { type Logger, listen } from '@dpskit/node-kit';
import rhea, {
  type Connection,
  type Delivery,
  type EventContext,
  type Receiver,
  type Sender,
  type Session,
} from 'rhea';
import type { WebSocket } from 'ws';
import type { AttestationResult } from '../core/attestation.js';
import { clip } from '../core/client-text.js';
import { type DeviceApi, type DeviceApiResponse, errorResponse } from '../core/device-api.js';
import type { DeviceTransport } from '../core/events.js';
import { type LimitedKind, limitWarnings } from '../core/limited-warnings.js';
import { EndedChannels, LATE_SESSION_FRAMES } from './amqp-ended-channels.js';
import { AmqpFrameGuard, type AmqpStreamProblem } from './amqp-frame-guard.js';
import {
  type AmqpAddress,
  amqpErrorOf,
  OPERATION_TYPE,
  OPERATION_TYPES,
  parseAmqpAddress,
  parseAmqpRequest,
  RETRY_AFTER,
  requestBodyBytes,
  sameRegistration,
} from './amqp-messages.js';
import { OpenEndpoints } from './amqp-open-endpoints.js';
import { isKnownDeliveryState, isKnownTerminus, printable, unknownMessageSection } from './amqp-peer-checks.js';
import {
  boundConnections,
  type ConnectionLimits,
  DEFAULT_CONNECTION_LIMITS,
  destroyAfterGrace,
} from './connection-limits.js';
import { rawHttpResponse } from './https-client-errors.js';
import type { RunningTransport } from './mqtt.js';
import { CLIENT_CERTIFICATE_TLS_OPTIONS, peerCertificateChain } from './peer-certificates.js';
import { logTlsClientError } from './tls-client-errors.js';

/** The largest frame either side sends: real DPS's `max-frame-size` (azure-iot-sdk-c#815); rhea splits larger messages. */
export const AMQP_MAX_FRAME_BYTES = 65_536;
/**
 * Largest request message read (all its transfer frames): well above DPS's 96 KB message limit, so
 * that a request somewhat over it still gets its 400001 answer; a larger one closes its link with
 * `amqp:link:message-size-exceeded` once that much has arrived.
 */
export const MAX_AMQP_MESSAGE_BYTES = 256 * 1024;
/**
 * Transfer frames a request message may come in (a 256 KiB message in frames of 256 bytes; the SDKs
 * send one frame). Counting bytes alone let a client send continuation frames of a byte each for as
 * long as it liked: rhea keeps each frame's payload, a slice that holds the whole chunk it came in,
 * until the message is complete (20,000 such frames, each in its own 16 KB of padding, held 320 MB
 * and cost 30 s of CPU re-adding the frames' sizes). A message in more frames closes its link as
 * one over MAX_AMQP_MESSAGE_BYTES does.
 */
export const MAX_AMQP_MESSAGE_FRAMES = 1024;
/**
 * A device needs two links (a sender and a receiver); a few more are allowed over a connection's
 * life, then the next ATTACH closes the connection (`amqp:resource-limit-exceeded`). rhea keeps
 * every link until the peer detaches it too, so refusing links one by one let a client that never
 * detached make the server keep them all: 20,000 ATTACHes in one write cost 5.2 s of CPU (the event
 * loop stalled 0.8 s) and 117 MB.
 */
export const MAX_LINKS_PER_CONNECTION = 8;
/**
 * Sessions a connection may have at once (a device needs one). rhea creates a session for every
 * BEGIN and looks for a free local channel from 0 each time, without a bound: 20,000 BEGINs in one
 * write cost 4.3 s of CPU (the event loop stalled 0.9 s) and 106 MB. A BEGIN beyond this closes
 * the connection (`amqp:resource-limit-exceeded`).
 */
export const MAX_SESSIONS_PER_CONNECTION = 8;
/**
 * Deliveries one DISPOSITION may name (`first` to `last`): rhea's session keeps at most 2048 in each
 * direction, so no more can be unsettled. rhea walks the whole range, one lookup per id: a single
 * DISPOSITION naming 0 to 2^32 − 1 kept the emulator's event loop busy, still so after 20 s (18 s
 * of CPU by then). A wider range closes the connection (`amqp:invalid-field`).
 */
export const MAX_DISPOSITION_RANGE = 2048;
/**
 * The shortest idle-time-out a client may ask for in its OPEN. rhea sends an empty frame every half
 * of it, however short: 20 raw connections asking for 2 ms (and sending nothing more) got ~2,300
 * frames a second written to them. AMQP lets a peer refuse an idle timeout it cannot support by
 * closing the connection (AMQP 1.0 §2.4.5); the SDKs ask for none.
 */
export const MIN_PEER_IDLE_TIMEOUT_MS = 1000;
/**
 * Requests a device may have in flight on its sender link: the link credit the server grants, one
 * more as each request is answered (not as it arrives), so unanswered requests never exceed it. The
 * SDKs send one request at a time and wait for credit (azure-iot-amqp-base sends only while rhea's
 * `sendable()`). Granting on arrival, as rhea's own credit window does, let a client have 2048
 * unanswered requests per session (held polls), after which rhea's incoming buffer threw and the
 * connection closed as `amqp:decode-error`. A request beyond the credit closes the connection with
 * `amqp:link:transfer-limit-exceeded` (see `transferBeyondCredit`).
 */
export const CREDIT_WINDOW = 10;
/**
 * Answers the client has not settled (acknowledged) that a connection may have. rhea keeps every
 * delivery it sent until the peer settles it, 2048 per session, and throws when one more is sent:
 * a client that granted credit and never settled what it received made the answer after the
 * 2048th throw from a promise nobody handled (the process's unhandled rejection). The SDKs
 * settle each answer as it arrives; a connection past this is closed with
 * `amqp:resource-limit-exceeded`.
 */
export const MAX_UNSETTLED_ANSWERS = 128;
/** AMQP 1.0's SASL protocol header: the answer, per the spec's version negotiation, to a header we do not take. */
const SASL_PROTOCOL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0]);
/** MQTT CONNACK "unacceptable protocol version": a clear refusal an MQTT client on this port understands. */
const MQTT_CONNACK_REFUSED = Buffer.from([0x20, 0x02, 0x00, 0x01]);

export interface AmqpTransportOptions {
  api: DeviceApi;
  tls: { cert: string; key: string };
  host: string;
  port: number;
  log: Logger;
  limits?: ConnectionLimits;
  /** The clock the listener's warning limit (AMQP_LIMITED_WARNINGS) is measured on (default: the wall clock). */
  now?: () => Date;
  /**
   * The emulated hubs' AMQP endpoint (hub/amqp.ts): the connections that are IoT Hub's, not DPS's,
   * are handed to it (see `AmqpHubSeam`). Without it every connection is DPS's.
   */
  hubs?: AmqpHubSeam;
}

/**
 * Links a hub connection may have at once (a device needs eight: CBS's two, telemetry, the twin's
 * two, the methods' two, C2D; a service connection four): more than DPS's MAX_LINKS_PER_CONNECTION,
 * bounded for the same reason. Links the peer detached no longer count, so a device that
 * re-attaches over a long life is served (see `linksHeld`).
 */
export const MAX_HUB_LINKS_PER_CONNECTION = 24;

/**
 * A connection the listener hands to the hubs' AMQP endpoint: rhea's connection, every frame of
 * which has passed the listener's guards (frame size, sessions, links, credit, message size and
 * frames, dispositions, idle timeout) as a DPS connection's do. The endpoint registers its own
 * listeners on `connection` (the listener's DPS listeners leave a hub connection alone) and is
 * called before the connection's first link is attached.
 */
export interface AmqpHubConnection {
  connection: Connection;
  /** `address:port` of the client, for log lines. */
  peer: string;
  transport: Extract<DeviceTransport, 'amqp' | 'amqp-ws'>;
  /** The OPEN's `hostname` (the host the SDK dialled: the hub, or the GatewayHostName). */
  hostname: string | undefined;
  /** The chain the client presented in the TLS handshake (DER, its own first): X.509 devices. */
  clientCertificates: readonly Uint8Array[];
  /** What the SASL PLAIN token of a connection `AmqpHubSeam.takesSaslPlain` took grants (checked in its SASL). */
  saslPlain?: SaslPlainGrant;
  /** The listener's warnings limiter's logger (warnings any client can cause go through it). */
  log: Logger;
  /**
   * Lets the client send `count` more messages on `receiver` (a link where it sends). A link
   * without credit granted here that the client sends on closes the connection (the listener's
   * credit guard), as does a message over MAX_AMQP_MESSAGE_BYTES the link.
   */
  grantCredit(receiver: Receiver, count: number): void;
  /**
   * Sends `message` on `sender` (a link where the server sends), counted until the client settles
   * it: past MAX_UNSETTLED_ANSWERS unsettled the connection is closed instead (undefined). `tag`:
   * the delivery tag, where the client reads one (a cloud-to-device message's lock token); else rhea's.
   */
  send(sender: Sender, message: Record<string, unknown>, tag?: Buffer): Delivery | undefined;
  /** Closes the connection with `error` (and the socket after a grace). */
  close(error: { condition: string; description: string }): void;
}

/**
 * What a hub's SASL PLAIN token grants until `expiresAt` (s): `{policy}@sas.root.{hub}`, the hub's
 * `policy` for `resource` (its `sr`); `{deviceId}@sas.{hub}`, the device.
 */
export type SaslPlainGrant =
  | {
      kind: 'service';
      hub: string;
      policy: string;
      /** The token's `sr`, decoded, without scheme, lower case: what its links may reach (a prefix by segment). */
      resource: string;
      expiresAt: number;
    }
  | { kind: 'device'; hub: string; deviceId: string; expiresAt: number };

export interface SaslPlainRefusal {
  ok: false;
  /** The hub the username names, if any (for the log line). */
  hub?: string;
  reason: string;
  detail: string;
}

/**
 * Where the listener hands IoT Hub's connections. Told apart as the services do, by what the
 * client sends: a DPS client authenticates with SASL PLAIN (`{idScope}/registrations/{id}` and a
 * SAS token) or, X.509, attaches `{idScope}/registrations/{id}` links; azure-iot-device-amqp speaks
 * AMQP without SASL (azure-iot-amqp-base sets no mechanism) and authenticates with a CBS
 * `put-token` (SAS) or its TLS client certificate (X.509), its OPEN's hostname naming the hub (or
 * its GatewayHostName). So: SASL PLAIN is DPS's; no SASL and no client certificate, or an OPEN
 * naming a hub, is a hub's; no SASL with a certificate is decided by the first link's address.
 * SASL ANONYMOUS is a hub's too: @azure/event-hubs (rhea under @azure/core-amqp, given a key name
 * and no password) reads the hubs' Event Hubs-compatible endpoint that way and authenticates by
 * CBS put-token; DPS clients never send it.
 */
export interface AmqpHubSeam {
  /** Whether an OPEN's `hostname` names one of the hubs (any case, port ignored). */
  isHubHost(hostname: string | undefined): boolean;
  /**
   * Whether a SASL PLAIN username is a hub's, not DPS's: IoT Hub's `{policy}@sas.root.{hub name}`,
   * with which the Event Hubs samples ask a hub where its built-in endpoint is (a link redirect), or
   * `{deviceId}@sas.{hub name}`, a device's (azure-docs iot-hub-dev-guide-sas, Protocol specifics).
   */
  takesSaslPlain(username: string): boolean;
  /**
   * Checks such a username's token (the SASL PLAIN password) during SASL: refused, the SASL outcome
   * is `sys` (2), as IoT Hub answers a SASL PLAIN it does not take (azure-uamqp-c#113 and #244,
   * amqpnetlite#195: "SASL handshake failed with code 02"), and the socket ends; taken, the
   * connection's `saslPlain` is what it grants. The reason is for the log, never the token.
   */
  authorizeSaslPlain(username: string, password: string): { ok: true; grant: SaslPlainGrant } | SaslPlainRefusal;
  /** Takes a hub connection (see AmqpHubConnection). */
  accept(hubConnection: AmqpHubConnection): void;
}

/** A refusal that closes the connection (or a link of it), counted by its AMQP error condition. */
const byCondition = (summary: string): LimitedKind => ({ summary, countBy: 'condition' });

/**
 * The listener's warnings (TLS and AMQP over WebSockets alike): each is a connection (or one of its
 * at most MAX_LINKS_PER_CONNECTION links) closed for what the client sent, and all but
 * `amqp.unsettled` can be caused before or without a valid credential (SASL comes after the
 * protocol header, a refused device's OPEN and links are still read, and an X.509 client needs
 * only a certificate of its own making to skip SASL). Logged at most once in full a second per
 * kind, the rest counted (limitWarnings) and flushed at close: one line per connection let anyone
 * who can open connections fill the log.
 */
export const AMQP_LIMITED_WARNINGS: Readonly<Record<string, LimitedKind>> = {
  'amqp.protocol': {
    summary: 'connection(s) on the AMQP port closed for bytes that are not AMQP 1.0 (or not TLS)',
    countBy: ['kind', 'code'],
  },
  'amqp.open': byCondition('connection(s) closed for their OPEN'),
  'amqp.session': byCondition('connection(s) closed for a BEGIN'),
  'amqp.link': byCondition('link(s) refused or connection(s) closed for an ATTACH'),
  'amqp.flow': byCondition('connection(s) closed for a FLOW'),
  'amqp.credit': byCondition('connection(s) closed for a transfer without credit'),
  'amqp.message': byCondition('link(s) or connection(s) closed for a request message'),
  'amqp.disposition': byCondition('connection(s) closed for a DISPOSITION'),
  'amqp.unsettled': byCondition('connection(s) closed for answers left unsettled'),
  // The hubs' AMQP device API (hub/amqp-device.ts): an authenticated device can send any number.
  'hub.method-answer': {
    summary: 'direct method answer(s) for no call in flight dropped',
    countBy: 'reason',
  },
};

export interface RunningAmqpTransport extends RunningTransport {
  /**
   * Serves AMQP over a WebSocket the HTTPS listener accepted (subprotocol `AMQPWSB10`);
   * `clientCertificates`: the chain the client presented on that TLS connection (X.509 devices).
   */
  acceptWebSocket(ws: WebSocket, peer: string, clientCertificates?: readonly Uint8Array[]): void;
  /** How many AMQP connections (TLS and WebSocket) the listener holds now (read-only, for tests). */
  openConnections(): number;
}

/** What rhea reads from and writes to: a TLS socket or a WebSocket, behind the frame guard. */
interface ByteChannel {
  onData(listener: (chunk: Buffer) => void): void;
  onEnd(listener: () => void): void;
  onError(listener: (err: Error) => void): void;
  write(bytes: Buffer): void;
  /** Reads no more from the peer (until destroyed): what it sends would only be dropped. */
  stopReading(): void;
  end(): void;
  destroy(): void;
}

/** The parts of rhea's server-side connection its typings leave out. */
interface ServerConnection extends Connection {
  accept(socket: object): void;
  local: { open: { properties?: Record<string, unknown> } };
  _process(): void;
  /** Where rhea hands each TRANSFER frame to its session (see `transferBeyondCredit`). */
  on_transfer(frame: TransferFrame): void;
  /** Where rhea hands each FLOW frame to its session (see `drainWithCredit`). */
  on_flow(frame: FlowFrame): void;
  /** Where rhea hands each DISPOSITION frame to its session. */
  on_disposition(frame: DispositionFrame): void;
  /** Where rhea hands each ATTACH frame to its session. */
  on_attach(frame: AttachFrame): void;
  /** Where rhea creates a session for each BEGIN. */
  on_begin(frame: BeginFrame): void;
  /** Where rhea hands each END and DETACH frame to its session (see `lateSessionFrames`). */
  on_end(frame: { channel: number }): void;
  on_detach(frame: { channel: number }): void;
  /** rhea's sessions by their local channel. */
  local_channel_map: Record<number, unknown>;
  /** rhea's sessions by the peer's channel, each with its links by the peer's handle. */
  remote_channel_map: Record<number, RheaSession | undefined>;
  /** What rhea reads the bytes with: its SASL layer, then `amqp_transport` (see `withoutSasl`). */
  transport: unknown;
  amqp_transport: unknown;
  sasl_transport: unknown;
}

/**
 * Calls `refused` with the mechanism of a SASL init other than PLAIN (ANONYMOUS when no hub is
 * linked: a client without credentials; with hubs, ANONYMOUS is theirs), which rhea answers with the SASL outcome `auth` and nothing else: no event of
 * rhea's tells it, so without this such a refusal had no line at all (every other refused
 * credential has its `amqp.auth` debug line). rhea hands each SASL frame to its SASL layer's
 * `on_<frame>` method, looked up at each frame: this wraps the layer's own.
 */
function logRefusedSaslMechanism(connection: ServerConnection, refused: (mechanism: string) => void): void {
  const sasl = connection.sasl_transport as
    | { on_sasl_init?: (frame: { performative?: { mechanism?: unknown } }) => void }
    | undefined;
  const init = sasl?.on_sasl_init;
  if (!sasl || typeof init !== 'function') return;
  sasl.on_sasl_init = (frame) => {
    const mechanism = frame.performative?.mechanism;
    if (mechanism !== 'PLAIN') refused(String(mechanism ?? ''));
    init.call(sasl, frame);
  };
}

/**
 * The links a connection's rhea sessions hold now: those the peer attached and rhea has not yet
 * removed (it removes a link once both ends detached). A peer's ATTACH reusing a handle or a name
 * replaces one map's entry but grows the other, so the larger of the two counts.
 */
function linksHeld(connection: ServerConnection): number {
  let byHandle = 0;
  let byName = 0;
  for (const session of Object.values(connection.local_channel_map) as RheaSession[]) {
    byHandle += Object.keys(session.remote.handles).length;
    byName += Object.keys(session.links).length;
  }
  return Math.max(byHandle, byName);
}

/** The parts of a rhea session read here. */
interface RheaSession {
  /** Its links by the peer's handle. */
  remote: { handles: Record<number, unknown> };
  /** Its links by name. */
  links: Record<string, unknown>;
  /** What the server sends: deliveries from `next_pending_delivery` on have not been sent yet. */
  outgoing: {
    next_pending_delivery: number;
    deliveries: { by_id(id: number): { next_to_send?: number; remote_settled?: boolean } | undefined };
  };
}

/** A TRANSFER frame's fields read here (the payload: this frame's part of the message). */
interface TransferFrame {
  channel: number;
  performative: { handle: number; more?: boolean; message_format?: number };
  payload?: Buffer;
}

/** A DISPOSITION frame as rhea decodes it (`state`: a described value, unwrapped by rhea later). */
interface DispositionFrame {
  channel: number;
  performative: { role?: boolean; first: number; last?: number; settled?: boolean; state?: unknown };
}

/** An ATTACH frame as rhea decodes it (`source`, `target`: described values, unwrapped by rhea later). */
interface AttachFrame {
  channel: number;
  performative: { source?: unknown; target?: unknown };
}

/** An OPEN frame as rhea decodes it (`idle_time_out` in milliseconds). */
interface OpenFrame {
  performative: { idle_time_out?: number };
}

/** A BEGIN frame as rhea decodes it (`remote_channel` only when it answers a BEGIN of the server's). */
interface BeginFrame {
  channel: number;
  performative: { remote_channel?: number | null };
}

/** A FLOW frame as rhea decodes it (a link's fields only when it names one). */
interface FlowFrame {
  channel: number;
  performative: { handle?: number; drain?: boolean; link_credit?: number };
}

/**
 * DPS's device API over AMQP 1.0, on rhea as a server: on its own TLS listener (5671 by default)
 * and over WebSockets (`acceptWebSocket`). Symmetric-key devices authenticate with SASL PLAIN as the
 * SDKs do it; a device whose token does not verify gets its AMQP open answered with
 * `com.microsoft:open-error` and the connection closed with `amqp:unauthorized-access`, the DPS
 * error body (401002) as description, as the real service does (azure-iot-sdk-c#815).
 *
 * X.509 devices present their certificate in the TLS handshake (the listener asks every client for
 * one and requires none) and speak AMQP without any SASL layer: azure-iot-amqp-base sets no SASL
 * mechanism when it has no username, and the C# SDK's X.509 strategy has no SASL provider. Their
 * registration id is known only from the first link they attach (`{idScope}/registrations/{id}`):
 * that is where the chain is attested, through the same core as every other transport; a refused
 * device's requests are rejected with `amqp:unauthorized-access` and the 401002 body (see
 * `attestCertificate` for why not its links). Requests are answered on the device's receiver
 * link with the request's `correlation_id` and the status body as a data section; refused requests
 * get their delivery rejected with the DPS error body, which the SDK raises (see `amqp-messages.ts`).
 */
export async function startAmqpTransport(options: AmqpTransportOptions): Promise<RunningAmqpTransport> {
  const { api } = options;
  const warnings = limitWarnings(options.log, AMQP_LIMITED_WARNINGS, { now: options.now });
  const { log } = warnings;
  const limits = options.limits ?? DEFAULT_CONNECTION_LIMITS;
  const open = new Set<ServerConnection>();
  // One container id for this emulator's AMQP side, in the form real DPS gives (IoTDPSGW_<hex>).
  const containerId = `IoTDPSGW_${randomBytes(16).toString('hex')}`;

  const serve = (
    channel: ByteChannel,
    peer: string,
    transport: Extract<DeviceTransport, 'amqp' | 'amqp-ws'>,
    clientCertificates: readonly Uint8Array[],
  ) => {
    let attestation: AttestationResult | undefined;
    let authenticated: AmqpAddress | undefined;
    let responder: Sender | undefined;
    // The credit each request link has left, counted here as each request's first frame arrives:
    // rhea's own count (`Receiver.credit`) drops only once a message is complete, and a peer's FLOW
    // with drain set overwrites it.
    const credit = new Map<Receiver, number>();
    // The message each request link is gathering (frames with `more` set so far): see `oversized`.
    const gathering = new Map<Receiver, { bytes: number; frames: number }>();
    // ATTACHes over the connection's life (see MAX_LINKS_PER_CONNECTION; a hub connection's: linksHeld).
    let links = 0;
    // Set once the server closes the connection (or refuses its bytes): later frames are not for rhea.
    let refused = false;
    let unsettledAnswers = 0;
    // The unsettled deliveries of each sender link, until the client settles them or the link closes
    // (see the connection's `sender_close` below).
    const unsettledBy = new Map<Sender, Set<Delivery>>();
    const countUnsettled = (sender: Sender, sent: Delivery) => {
      if (sent.settled) return;
      unsettledAnswers += 1;
      const held = unsettledBy.get(sender) ?? new Set<Delivery>();
      unsettledBy.set(sender, held.add(sent));
    };
    // Whose connection this is (see AmqpHubSeam): undecided until its SASL, OPEN or first link says.
    let role: 'undecided' | 'dps' | 'hub' = 'undecided';
    // Its sessions, for the hubs' close (ended first, see takeAsHub): followed from the start, as a
    // connection decided at its first link (X.509, no SASL) has begun its session before then.
    const sessions = new OpenEndpoints<Session>();
    // SASL PLAIN with a hub's username (see AmqpHubSeam.takesSaslPlain): a hub connection.
    let hubPlain: SaslPlainGrant | undefined;

    // A container per connection: rhea hands the SASL callback only the username and password, so
    // the connection they belong to is this closure's.
    const container = rhea.create_container({ id: containerId });
    // SASL ANONYMOUS: a client that authenticates by CBS put-token, never DPS's (see AmqpHubSeam).
    if (options.hubs) container.sasl_server_mechanisms.enable_anonymous();
    container.sasl_server_mechanisms.enable_plain((username: string, password: string) => {
      if (options.hubs?.takesSaslPlain(username)) {
        const checked = options.hubs.authorizeSaslPlain(username, password);
        if (checked.ok) {
          hubPlain = checked.grant;
          return true;
        }
        log.debug(
          'hub.auth',
          `${peer} (${transport}): SASL PLAIN for ${checked.hub ?? 'no hub'}: ${checked.reason} (${checked.detail}); SASL outcome sys`,
          { ...(checked.hub ? { hub: checked.hub } : {}), reason: checked.reason, transport },
        );
        // A rejected promise is rhea's way to the outcome `sys` (its do_fail), then the socket's end.
        return Promise.reject(new Error(`SASL PLAIN refused: ${checked.reason}`));
      }
      const address = parseAmqpAddress(username);
      authenticated = address;
      attestation = address
        ? api.service.attest({
            requestedIdScope: address.idScope,
            registrationId: address.registrationId,
            token: password,
          })
        : {
            ok: false,
            registrationId: clip(username),
            reason: 'malformed',
            detail: `SASL PLAIN username "${clip(username)}" is not {idScope}/registrations/{registrationId}`,
          };
      // SASL itself succeeds: DPS refuses in its AMQP open, which carries the DPS error body.
      return true;
    });
    const connection = container.create_connection({
      max_frame_size: AMQP_MAX_FRAME_BYTES,
      channel_max: 8191,
      idle_time_out: limits.idleTimeoutMs,
      autoaccept: false,
      // No credit window of rhea's (it grants more as each message arrives): credit is granted here,
      // CREDIT_WINDOW on attach and one per answer.
      credit_window: 0,
      // With ANONYMOUS among its mechanisms rhea would also take a client that skips SASL itself
      // (its Selective layer); that case is decided here (see `withoutSasl`).
      require_sasl: true,
    } as never) as ServerConnection;

    /**
     * A frame that breaks one of the rules below: the first closes the connection with `error` and
     * one warning (`event`); it and every later frame of the kinds checked here are dropped before
     * rhea sees them, and the connection is read no further (TCP holds a client that goes on
     * writing back) until the grace ends. rhea would print to stderr for each such frame.
     */
    const violation = (event: string, what: string, error: { condition: string; description: string }) => {
      if (refused) return;
      log.warn(event, `${peer} (${transport}): ${what}; connection closed`, { transport, condition: error.condition });
      closeConnection(error);
      channel.stopReading();
    };

    /**
     * A request the client sent without credit: rhea processes it anyway, printing "Received transfer
     * when credit was 0" to stderr for each (a client ignoring credit could fill the emulator's
     * stderr). Links the server refused at attach or closed (a message over the limit) never have
     * credit. Closes the connection with `amqp:link:transfer-limit-exceeded`.
     */
    const transferBeyondCredit = (frame: TransferFrame, link: unknown): boolean => {
      const left = credit.get(link as Receiver);
      // A frame that continues a message takes no credit.
      if ((link as { _incomplete?: unknown } | undefined)?._incomplete) return false;
      // Not a link of ours at all, or a link of the server's that sends: rhea throws (amqp:decode-error).
      if (!isReceiver(link)) return false;
      if (left === undefined) {
        violation('amqp.credit', 'a transfer on a link the server refused or closed (it has no credit)', {
          condition: 'amqp:link:transfer-limit-exceeded',
          description: `A transfer on the link with handle ${frame.performative.handle}, which the server refused or closed: it has no link credit.`,
        });
        return true;
      }
      if (left > 0) {
        credit.set(link as Receiver, left - 1);
        return false;
      }
      violation('amqp.credit', `a request sent without link credit (${CREDIT_WINDOW} may await answers)`, {
        condition: 'amqp:link:transfer-limit-exceeded',
        description: `A request was sent without link credit: at most ${CREDIT_WINDOW} requests may await their answers; send the next when the server grants credit.`,
      });
      return true;
    };

    /**
     * The last frame of a request whose message has a section rhea does not know: rhea's decode
     * prints a warning to stderr for each such section, once per request, for as long as the client
     * sends them (credit comes back with each answer). Closes the connection with `amqp:decode-error`.
     */
    const unknownSection = (frame: TransferFrame, link: unknown): boolean => {
      if (frame.performative.more) return false;
      const incomplete = (link as { _incomplete?: { format?: number; frames: Buffer[] } })._incomplete;
      // rhea decodes only message format 0 (the format is the delivery's first frame's).
      if ((incomplete ? incomplete.format : frame.performative.message_format) !== 0) return false;
      const payload = frame.payload ?? Buffer.alloc(0);
      const unknown = unknownMessageSection(incomplete ? Buffer.concat([...incomplete.frames, payload]) : payload);
      if (!unknown) return false;
      violation('amqp.message', `a request with ${unknown}`, {
        condition: 'amqp:decode-error',
        description: `A request message has ${unknown}: AMQP 1.0 message sections are header, annotations, properties, application-properties, data, amqp-sequence, amqp-value and footer.`,
      });
      return true;
    };

    /**
     * rhea gathers a message's transfer frames without a bound: a frame that takes the message being
     * gathered on a request link over MAX_AMQP_MESSAGE_BYTES or MAX_AMQP_MESSAGE_FRAMES closes that
     * link (`amqp:link:message-size-exceeded`) and is dropped, with what rhea gathered. A frame rhea
     * keeps for later gets a payload of its own instead of a slice holding the chunk it came in.
     */
    const oversized = (frame: TransferFrame, link: Receiver): boolean => {
      if (!frame.performative.more) {
        // The message's last frame: rhea joins and decodes it now.
        gathering.delete(link);
        return false;
      }
      const sofar = gathering.get(link) ?? { bytes: 0, frames: 0 };
      const message = { bytes: sofar.bytes + (frame.payload?.length ?? 0), frames: sofar.frames + 1 };
      if (message.bytes <= MAX_AMQP_MESSAGE_BYTES && message.frames <= MAX_AMQP_MESSAGE_FRAMES) {
        gathering.set(link, message);
        if (frame.payload) frame.payload = Buffer.from(frame.payload);
        return false;
      }
      log.warn(
        'amqp.message',
        `${peer} (${transport}): a message over ${MAX_AMQP_MESSAGE_BYTES} bytes or ${MAX_AMQP_MESSAGE_FRAMES} frames; link closed`,
        { size: message.bytes, frames: message.frames, transport, condition: 'amqp:link:message-size-exceeded' },
      );
      (link as Receiver & { _incomplete?: unknown })._incomplete = undefined;
      gathering.delete(link);
      credit.delete(link);
      link.close({
        condition: 'amqp:link:message-size-exceeded',
        description: `A request message may be at most ${MAX_AMQP_MESSAGE_BYTES} bytes, in at most ${MAX_AMQP_MESSAGE_FRAMES} transfer frames.`,
      });
      return true;
    };

    const onTransfer = connection.on_transfer;
    connection.on_transfer = (frame: TransferFrame) => {
      if (refused) return;
      const link = connection.remote_channel_map[frame.channel]?.remote.handles[frame.performative.handle];
      if (transferBeyondCredit(frame, link)) return;
      if (credit.has(link as Receiver) && (oversized(frame, link as Receiver) || unknownSection(frame, link))) return;
      onTransfer.call(connection, frame);
    };

    /**
     * A FLOW from the client on a link where it sends (a request link, or one the server refused)
     * with drain set and credit left: drain is the receiver's (the server's) to ask for, and the
     * sender's answer to it has no credit left. rhea takes its credit as the link's and prints
     * "received flow with drain set, but non zero credit" to stderr for each such frame. Closes the
     * connection with `amqp:invalid-field`.
     */
    const drainWithCredit = (frame: FlowFrame): boolean => {
      const { handle, drain, link_credit: linkCredit } = frame.performative;
      if (handle === undefined || !drain || !linkCredit) return false;
      const link = connection.remote_channel_map[frame.channel]?.remote.handles[handle];
      if (!isReceiver(link)) return false;
      violation('amqp.flow', 'a FLOW with drain set and credit on a link where the client sends', {
        condition: 'amqp:invalid-field',
        description:
          "A sender sets drain on its FLOW only with no link credit left (drain is the receiver's to ask for).",
      });
      return true;
    };
    const onFlow = connection.on_flow;
    connection.on_flow = (frame: FlowFrame) => {
      if (refused) return;
      if (!drainWithCredit(frame)) onFlow.call(connection, frame);
    };

    /**
     * The first answer a client's DISPOSITION (role receiver, settled) names that the server has not
     * begun to send (its receiver link had no credit for it). rhea settles it and drops it from the
     * session before it is sent, and from then on prints "Next pending delivery not found" to stderr
     * each time it writes, and sends no later answer.
     */
    const unsentAnswer = (frame: DispositionFrame): number | undefined => {
      const outgoing = connection.remote_channel_map[frame.channel]?.outgoing;
      if (!outgoing) return undefined;
      const { first, last = first } = frame.performative;
      for (let id = Math.max(first, outgoing.next_pending_delivery); id <= last; id++) {
        const delivery = outgoing.deliveries.by_id(id);
        if (delivery && !delivery.remote_settled && !delivery.next_to_send) return id;
      }
      return undefined;
    };
    const onDisposition = connection.on_disposition;
    connection.on_disposition = (frame: DispositionFrame) => {
      if (refused) return;
      const { state, first, last = first } = frame.performative;
      if (last - first >= MAX_DISPOSITION_RANGE) {
        return violation('amqp.disposition', `a DISPOSITION naming deliveries ${first} to ${last}`, {
          condition: 'amqp:invalid-field',
          description: `A DISPOSITION may name at most ${MAX_DISPOSITION_RANGE} deliveries (first to last): no more can be unsettled in a session.`,
        });
      }
      const unsent = frame.performative.settled && frame.performative.role ? unsentAnswer(frame) : undefined;
      if (unsent !== undefined) {
        return violation('amqp.disposition', `a DISPOSITION settling delivery ${unsent}, not sent yet`, {
          condition: 'amqp:invalid-field',
          description: `A DISPOSITION settles delivery ${unsent}, which the server has not sent yet.`,
        });
      }
      // A state that is none of AMQP's delivery states (received, accepted, rejected, released,
      // modified; a transactional state among them, as DPS has no transactions): rhea prints
      // "unrecognised outcome" to stderr for each delivery it names. The SDKs accept each answer.
      if (state && !isKnownDeliveryState(state)) {
        const descriptor = printable((state as { descriptor?: { value?: unknown } }).descriptor?.value);
        return violation('amqp.disposition', `a DISPOSITION with the state ${descriptor}`, {
          condition: 'amqp:invalid-field',
          description: `A DISPOSITION's state ${descriptor} is not one of received, accepted, rejected, released, modified.`,
        });
      }
      onDisposition.call(connection, frame);
    };

    /**
     * An ATTACH whose source or target is neither (a coordinator, for transactions, or anything
     * else): rhea prints "Unknown terminus" to stderr for each and attaches the link without it.
     * Closes the connection with `amqp:not-implemented`.
     */
    const onAttach = connection.on_attach;
    connection.on_attach = (frame: AttachFrame) => {
      if (refused) return;
      // An X.509 client (no SASL, a certificate, an OPEN naming no hub): its first link's address says whose.
      if (role === 'undecided' && withoutSasl && options.hubs) {
        const { source, target } = frame.performative;
        const dps = [source, target].some((field) => parseAmqpAddress(terminusAddress(field)) !== undefined);
        if (dps) role = 'dps';
        else takeAsHub();
      }
      links += 1;
      // DPS: ATTACHes over the connection's life (a registration is short-lived). A hub connection
      // lives long and re-attaches (the SDK after a link error, twin/methods enabled again): its
      // bound is on the links rhea holds at once.
      const maxLinks = role === 'hub' ? MAX_HUB_LINKS_PER_CONNECTION : MAX_LINKS_PER_CONNECTION;
      if ((role === 'hub' ? linksHeld(connection) + 1 : links) > maxLinks) {
        return violation('amqp.link', `more than ${maxLinks} links`, {
          condition: 'amqp:resource-limit-exceeded',
          description: `At most ${maxLinks} links per connection.`,
        });
      }
      const { source, target } = frame.performative;
      const odd = [source, target].find((field) => !isKnownTerminus(field));
      if (odd) {
        const descriptor = printable((odd as { descriptor?: { value?: unknown } }).descriptor?.value);
        return violation('amqp.link', `an ATTACH with the terminus ${descriptor}`, {
          condition: 'amqp:not-implemented',
          description: `An ATTACH's source and target must be an AMQP source and target (the terminus ${descriptor} is not served).`,
        });
      }
      onAttach.call(connection, frame);
    };

    /**
     * An OPEN asking for heartbeats faster than MIN_PEER_IDLE_TIMEOUT_MS allows (see there): rhea
     * takes it without the idle-time-out (so that it never sends at that pace), answers it with the
     * server's OPEN and the connection is closed (`amqp:invalid-field`).
     */
    // rhea's typings declare on_open with a frame type of their own, without its fields.
    const openTaker = connection as unknown as { on_open(frame: OpenFrame): void };
    const onOpen = openTaker.on_open;
    openTaker.on_open = (frame: OpenFrame) => {
      if (refused) return;
      const idle = frame.performative.idle_time_out;
      const tooShort = typeof idle === 'number' && idle > 0 && idle < MIN_PEER_IDLE_TIMEOUT_MS;
      if (tooShort) frame.performative.idle_time_out = undefined;
      onOpen.call(connection, frame);
      if (tooShort) {
        violation('amqp.open', `an OPEN with an idle-time-out of ${idle} ms`, {
          condition: 'amqp:invalid-field',
          description: `An idle-time-out of ${idle} ms is below the ${MIN_PEER_IDLE_TIMEOUT_MS} ms the server supports (it sends an empty frame every half of it).`,
        });
      }
    };

    // Frames the client sends on a session it has ended (see EndedChannels: rhea settles a message
    // that crossed its END) are dropped, not taken as a protocol error that closes the connection.
    // Set after the guards above (it sees each frame first); a BEGIN there starts afresh (on_begin).
    const endedChannels = new EndedChannels();
    const onEnd = connection.on_end;
    connection.on_end = (frame) => {
      onEnd.call(connection, frame);
      endedChannels.ended(frame.channel);
    };
    const handlers = connection as unknown as Record<string, (frame: { channel: number }) => void>;
    for (const name of LATE_SESSION_FRAMES) {
      const take = handlers[`on_${name}`];
      if (!take) continue;
      handlers[`on_${name}`] = (frame) => {
        if (connection.remote_channel_map[frame.channel] === undefined) {
          const late = endedChannels.drop(frame.channel);
          if (late.dropped) {
            if (late.count === 1)
              log.debug(
                'amqp.session',
                `${peer} (${transport}): a ${name.toUpperCase()} on channel ${frame.channel}, whose session the client ended; dropped`,
                { transport, channel: frame.channel },
              );
            return;
          }
        }
        take.call(connection, frame);
      };
    }

    /** A BEGIN beyond MAX_SESSIONS_PER_CONNECTION sessions at once (see there). */
    const onBegin = connection.on_begin;
    connection.on_begin = (frame: BeginFrame) => {
      if (refused) return;
      const fromPeer = frame.performative.remote_channel === null || frame.performative.remote_channel === undefined;
      if (fromPeer && Object.keys(connection.local_channel_map).length >= MAX_SESSIONS_PER_CONNECTION) {
        return violation('amqp.session', `more than ${MAX_SESSIONS_PER_CONNECTION} sessions at once`, {
          condition: 'amqp:resource-limit-exceeded',
          description: `At most ${MAX_SESSIONS_PER_CONNECTION} sessions per connection.`,
        });
      }
      if (fromPeer) endedChannels.begun(frame.channel);
      onBegin.call(connection, frame);
    };

    /** One more request may be sent on `receiver`: its previous one was answered. */
    const renewCredit = (receiver: Receiver) => {
      const left = credit.get(receiver);
      if (left === undefined || !connection.is_open() || !receiver.is_open()) return;
      credit.set(receiver, left + 1);
      receiver.add_credit(1);
    };

    // Only a client that presented a certificate may skip SASL for DPS (without one it could not
    // authenticate); a hub client skips it either way (it authenticates by CBS put-token).
    const guard = new AmqpFrameGuard(AMQP_MAX_FRAME_BYTES, {
      saslOptional: clientCertificates.length > 0 || options.hubs !== undefined,
    });
    let withoutSasl = false;
    // SASL ANONYMOUS (offered only with hubs): an Event Hubs client (@azure/core-amqp sends its key
    // name as the ANONYMOUS response) or another CBS client; a hub connection (see AmqpHubSeam).
    let saslAnonymous = false;
    const refuse = (problem: AmqpStreamProblem) => {
      refused = true;
      const what = describeProblem(problem);
      log.warn('amqp.protocol', `${peer} (${transport}): ${what}; connection closed`, { ...problem, transport });
      if (problem.kind === 'not-amqp' && problem.protocol === 'http' && transport === 'amqp') {
        channel.write(
          Buffer.from(
            rawHttpResponse(
              errorResponse(
                DpsErrorCode.InvalidRequestBody,
                'This port serves the DPS device API over AMQP 1.0 (SASL PLAIN), not HTTP; the REST APIs are on the HTTPS port.',
              ),
            ),
          ),
        );
      } else if (problem.kind === 'not-amqp' && problem.protocol === 'mqtt') {
        channel.write(MQTT_CONNACK_REFUSED);
      } else if (problem.kind === 'not-amqp' || problem.kind === 'unsupported-header') {
        channel.write(SASL_PROTOCOL_HEADER);
      } else if (connection.is_open()) {
        // A frame rhea has not seen: its state is intact, so it can still say why in a CLOSE.
        connection.close({ condition: 'amqp:connection:framing-error', description: what });
        destroyAfterGrace(channel);
        return;
      }
      channel.end();
      destroyAfterGrace(channel);
    };

    const socket = {
      on(event: string, listener: (arg?: unknown) => void) {
        if (event === 'data') {
          channel.onData((chunk) => {
            if (refused) return;
            const problem = guard.push(chunk);
            if (guard.withoutSasl && !withoutSasl) {
              // An X.509 device's bare AMQP header: rhea, given a SASL mechanism, would expect the
              // SASL header, so it reads with its AMQP transport from the start, as it does for a
              // server with SASL disabled. Nothing has reached rhea yet.
              withoutSasl = true;
              connection.sasl_transport = undefined;
              connection.transport = connection.amqp_transport;
            }
            if (problem) {
              // The frames before the problem are fine: rhea answers them first (its protocol header,
              // SASL mechanisms), so that the client hears what the server speaks.
              if (problem.at) listener(chunk.subarray(0, problem.at));
              return refuse(problem);
            }
            listener(chunk);
          });
        } else if (event === 'end') channel.onEnd(() => listener());
        else if (event === 'error') channel.onError((err) => listener(err));
      },
      write: (bytes: Buffer) => channel.write(bytes),
      end: () => channel.end(),
      destroy: () => channel.destroy(),
    };

    /** Hands the connection to the hubs' endpoint (see AmqpHubSeam); the DPS listeners leave it alone. */
    const takeAsHub = () => {
      if (!options.hubs || role === 'hub') return;
      role = 'hub';
      options.hubs.accept({
        connection,
        peer,
        transport,
        hostname: remoteHostname(connection),
        clientCertificates,
        ...(hubPlain ? { saslPlain: hubPlain } : {}),
        log,
        grantCredit: (receiver, count) => {
          if (!connection.is_open() || !receiver.is_open()) return;
          credit.set(receiver, (credit.get(receiver) ?? 0) + count);
          receiver.add_credit(count);
        },
        send: (sender, message, tag) => {
          if (!connection.is_open() || overUnsettledBound('messages')) return undefined;
          // The link's ATTACH answer goes out before its first message. rhea writes a session's
          // transfers before its links' ATTACHes in one pass, so a client that granted credit
          // together with its ATTACH (AMQP lets a receiver do so; the SDKs wait for the answer) got
          // an Event Hubs reader's first events before the ATTACH answering it, on a handle it did
          // not know yet: rhea's client ended the connection ("Invalid handle 0"). Written here, not
          // as the link is taken, so that the endpoints' changes to it (offered capabilities) are in.
          if (attachUnwritten(sender)) connection._process();
          let sent: Delivery;
          try {
            sent = sender.send(message as never, tag);
          } catch (err) {
            // rhea keeps every delivery of a session behind the oldest the client has not settled and
            // throws once 2048 wait: a client that holds one and settles the rest fills it. The
            // endpoints also send from timers and hub events, where the throw would end the process.
            sessionFull(err);
            return undefined;
          }
          countUnsettled(sender, sent);
          return sent;
        },
        close: (error) => {
          // Each session ended first, with the error: azure-iot-amqp-base runs a closed connection
          // down link by link, each waiting for an answer the closed connection no longer gives,
          // until its 45 s force timer; on an ended session it drops its links at once and reports
          // the disconnect (the device SDK's 'disconnect') without the wait.
          for (const session of sessions) if (session.is_open()) session.end(error);
          closeConnection(error);
        },
      });
    };

    connection.on('session_open', (context: EventContext) => {
      if (context.session) sessions.add(context.session);
    });
    connection.on('connection_open', () => {
      if (role === 'undecided' && (saslAnonymous || hubPlain)) takeAsHub();
      else if (role === 'undecided' && options.hubs && !attestation) {
        // No SASL PLAIN: a hub client when it presented no certificate (it cannot be a DPS one) or
        // named a hub in its OPEN; else (X.509) its first link decides (see on_attach).
        if (withoutSasl && (clientCertificates.length === 0 || options.hubs.isHubHost(remoteHostname(connection))))
          takeAsHub();
      } else if (role === 'undecided' && attestation) role = 'dps';
      if (role === 'hub') return;
      // X.509: attested when the first link names the registration id.
      if (attestation?.ok || withoutSasl) return;
      const failure: Extract<AttestationResult, { ok: false }> = attestation ?? {
        ok: false,
        registrationId: '',
        reason: 'malformed',
        detail: 'no SASL PLAIN authentication',
      };
      api.service.reportUnauthorized(failure, transport);
      log.debug('amqp.auth', `${clip(failure.registrationId)}: ${failure.reason} (${failure.detail})`, {
        registrationId: clip(failure.registrationId),
        reason: failure.reason,
        transport,
      });
      const error = unauthorizedError();
      connection.local.open.properties = { 'com.microsoft:open-error': describedError(error) };
      connection.close(error);
    });

    /**
     * An X.509 device's first link names the registration id its chain must attest. A refused device
     * still gets its links: its requests are answered 401002 (a rejected delivery with
     * `amqp:unauthorized-access` and the DPS body, as for any refused request), which the SDK raises
     * at once. Refusing the link instead leaves azure-iot-amqp-base attaching its second link and
     * running down both against a closing connection: it hangs 45 s, past its own 30 s request
     * timeout, and reports a TimeoutError without the reason.
     */
    const attestCertificate = (address: AmqpAddress) => {
      authenticated = address;
      attestation = api.service.attest({
        requestedIdScope: address.idScope,
        registrationId: address.registrationId,
        token: undefined,
        clientCertificates,
      });
      if (!attestation.ok) {
        log.debug('amqp.auth', `${clip(attestation.registrationId)}: ${attestation.reason} (${attestation.detail})`, {
          registrationId: clip(attestation.registrationId),
          reason: attestation.reason,
          transport,
        });
      }
    };

    const linkAllowed = (kind: string, address: string | undefined, close: (error: object) => void): boolean => {
      if (withoutSasl && !authenticated) {
        const parsed = parseAmqpAddress(address);
        if (parsed) attestCertificate(parsed);
      }
      const admitted = withoutSasl ? attestation !== undefined : attestation?.ok === true;
      if (!authenticated || !admitted || !sameRegistration(parseAmqpAddress(address), authenticated)) {
        log.warn(
          'amqp.link',
          `${peer} (${transport}): ${kind} link address "${clip(address ?? '')}" is not this connection's {idScope}/registrations/{registrationId}; link refused`,
          { transport, condition: 'amqp:unauthorized-access' },
        );
        close({
          condition: 'amqp:unauthorized-access',
          description: JSON.stringify(
            createErrorBody(
              DpsErrorCode.Unauthorized,
              `The link address must be ${authenticated ? `${authenticated.idScope}/registrations/${authenticated.registrationId}` : '{idScope}/registrations/{registrationId}'}.`,
            ),
          ),
        });
        return false;
      }
      return true;
    };

    connection.on('sender_open', (context: EventContext) => {
      if (role === 'hub') return;
      const sender = context.sender;
      if (!sender) return;
      const address = sender.source?.address;
      if (!linkAllowed('receiver', address, (error) => sender.close(error))) return;
      responder = sender;
    });

    connection.on('receiver_open', (context: EventContext) => {
      if (role === 'hub') return;
      const receiver = context.receiver;
      if (!receiver) return;
      const address = receiver.target?.address;
      if (!linkAllowed('sender', address, (error) => receiver.close(error))) return;
      credit.set(receiver, CREDIT_WINDOW);
      receiver.add_credit(CREDIT_WINDOW);
    });

    connection.on('receiver_close', (context: EventContext) => {
      if (!context.receiver) return;
      // Whoever's the link was, its credit ends with it (the credit guard refuses its transfers).
      credit.delete(context.receiver);
      gathering.delete(context.receiver);
    });
    connection.on('sender_close', (context: EventContext) => {
      if (context.sender === responder) responder = undefined;
    });

    connection.on('message', (context: EventContext) => {
      if (role === 'hub') return;
      const { message, delivery, receiver } = context;
      if (!message || !delivery || !receiver || !attestation) return;
      const request = parseAmqpRequest(message.application_properties);
      const answer = (): DeviceApiResponse | Promise<DeviceApiResponse> => {
        if (!attestation) throw new Error('no attestation');
        switch (request.kind) {
          case 'register':
            return api.registerSoon(attestation, requestBodyBytes(message.body), transport);
          case 'operation-status':
            return request.operationId
              ? api.operationStatus(attestation, request.operationId, transport)
              : errorResponse(
                  DpsErrorCode.InvalidRequestBody,
                  'The iotdps-operation-id application property is required.',
                );
          case 'status-lookup':
            return api.statusLookup(attestation);
          default:
            return errorResponse(
              DpsErrorCode.InvalidRequestBody,
              `The ${OPERATION_TYPE} application property "${clip(request.operationType)}" is not one of ${Object.values(OPERATION_TYPES).join(', ')}.`,
            );
        }
      };
      Promise.resolve()
        .then(answer)
        .catch((err: Error) => {
          log.error('amqp.request', `${peer} (${transport}): ${err.message}`, { stack: err.stack });
          return errorResponse(DpsErrorCode.InternalServerError, 'Internal server error.');
        })
        .then((response) => {
          respond(delivery, message.correlation_id, response);
          renewCredit(receiver);
        })
        .catch((err: Error) => {
          // rhea refused to send (its state no longer takes the answer): end this connection, not the process.
          log.error('amqp.request', `${peer} (${transport}): answer not sent: ${err.message}; connection closed`, {
            stack: err.stack,
          });
          closeConnection({ condition: 'amqp:internal-error', description: 'The answer could not be sent.' });
        });
    });

    const closeConnection = (error: { condition: string; description: string }) => {
      refused = true;
      try {
        if (connection.is_open()) connection.close(error);
      } catch {
        // the socket is gone already
      }
      destroyAfterGrace(channel);
    };

    /**
     * True, with the connection closed and a warning, when MAX_UNSETTLED_ANSWERS of what the listener
     * sent (DPS's answers, a hub endpoint's messages) still wait for the client to settle them: a
     * client that never settles would otherwise hold every one of them.
     */
    const overUnsettledBound = (what: 'answers' | 'messages'): boolean => {
      if (unsettledAnswers < MAX_UNSETTLED_ANSWERS) return false;
      log.warn(
        'amqp.unsettled',
        `${peer} (${transport}): ${unsettledAnswers} ${what} not settled by the client; connection closed`,
        { transport, unsettled: unsettledAnswers, condition: 'amqp:resource-limit-exceeded' },
      );
      closeConnection({
        condition: 'amqp:resource-limit-exceeded',
        description: `At most ${MAX_UNSETTLED_ANSWERS} ${what} may wait for the client to settle them.`,
      });
      return true;
    };

    /** A send rhea refused (see the hubs' `send`): the connection is closed, saying why. */
    const sessionFull = (err: unknown) => {
      const full = err instanceof Error && err.message.startsWith('circular buffer overflow');
      const description = full
        ? 'The session holds 2048 deliveries behind one the client has not settled.'
        : 'A message could not be sent.';
      log.warn('amqp.unsettled', `${peer} (${transport}): ${description} Connection closed.`, {
        transport,
        condition: full ? 'amqp:resource-limit-exceeded' : 'amqp:internal-error',
        ...(full ? {} : { error: clip(err instanceof Error ? err.message : String(err)) }),
      });
      closeConnection({ condition: full ? 'amqp:resource-limit-exceeded' : 'amqp:internal-error', description });
    };

    // Answers the client settles (the SDKs at once, as each arrives); pre-settled ones are not counted,
    // nor a settlement that comes after its link closed (given back then).
    connection.on('settled', (context: EventContext) => {
      const { sender, delivery } = context;
      const held = sender ? unsettledBy.get(sender) : undefined;
      if (!sender || !delivery || !held?.delete(delivery)) return;
      unsettledAnswers -= 1;
      if (held.size === 0) unsettledBy.delete(sender);
    });
    // A link the client detached with deliveries unsettled (a device that stops listening for C2D
    // messages holds the ones it has not completed) can settle none of them any more: they stop
    // counting, and rhea is told they are settled at both ends. It would otherwise keep them in the
    // session's delivery buffer, which frees only from its oldest entry: every later delivery of the
    // session would stay behind them until the buffer's 2048 were used and the next send threw.
    connection.on('sender_close', (context: EventContext) => {
      const sender = context.sender;
      const held = sender ? unsettledBy.get(sender) : undefined;
      if (!sender || !held) return;
      unsettledBy.delete(sender);
      unsettledAnswers -= held.size;
      for (const delivery of held) {
        (delivery as { remote_settled: boolean }).remote_settled = true;
        delivery.update(true);
      }
    });
    // A session the client ends takes its links with it, detached or not (Microsoft.Azure.Amqp, IoT
    // Hub's stack, closes a session's links when it ends), but rhea raises no close for a link the
    // client did not detach itself. Its close is raised here, so that what is kept per link goes
    // with it: its unsettled deliveries (above), its credit, and the hubs' handlers (an Event Hubs
    // partition reader's in-flight events and timer). Without it, a client that ended sessions with
    // readers attached kept their events counted for the connection's life: one such session with
    // a reader's 100 events in flight left every later reader on the connection without events.
    connection.on('session_close', (context: EventContext) => {
      const session = context.session as unknown as RheaSession | undefined;
      for (const link of Object.values(session?.links ?? {})) {
        const peerDetached = (link as { remote?: { detach?: unknown } }).remote?.detach !== undefined;
        if (peerDetached || !isLink(link)) continue;
        connection.emit(link.is_receiver() ? 'receiver_close' : 'sender_close', linkContext(link));
      }
    });

    const respond = (delivery: Delivery, correlationId: unknown, response: DeviceApiResponse) => {
      if (!connection.is_open()) return; // the device left while a poll was held
      if (response.status >= 300) {
        delivery.reject(amqpErrorOf(response));
        return;
      }
      if (!responder?.is_open()) {
        delivery.reject({
          condition: 'amqp:precondition-failed',
          description: JSON.stringify(
            createErrorBody(
              DpsErrorCode.InvalidRequestBody,
              'Attach a receiver link on {idScope}/registrations/{registrationId} before sending requests: answers go there.',
            ),
          ),
        });
        return;
      }
      if (overUnsettledBound('answers')) return;
      delivery.accept();
      const sender = responder;
      const sent = sender.send({
        correlation_id: correlationId as string,
        application_properties:
          response.retryAfterSeconds === undefined ? {} : { [RETRY_AFTER]: String(response.retryAfterSeconds) },
        // The SDK parses `body.content` as JSON: a data section, never an AMQP string.
        body: rhea.message.data_section(Buffer.from(JSON.stringify(response.body), 'utf8')),
      });
      countUnsettled(sender, sent);
    };

    // A frame that passed the guard but not rhea: one its decoder could not read (a ProtocolError,
    // or another error thrown while decoding), or one that decoded but that the connection's state
    // does not allow (see illegalStateCondition). rhea ends the socket right after either event, so
    // the CLOSE saying why is written now (rhea would write it on the next tick, after the end).
    const undecodable = (err: Error) => {
      const stateCondition = illegalStateCondition(err.message);
      log.warn('amqp.protocol', `${peer} (${transport}): ${err.message}; connection closed`, {
        transport,
        kind: stateCondition ? 'illegal-state' : 'undecodable',
      });
      if (!connection.is_open() || refused) return;
      refused = true;
      try {
        connection.close(
          stateCondition
            ? {
                condition: stateCondition,
                description: `A frame the connection's state does not allow: ${err.message}`,
              }
            : { condition: 'amqp:decode-error', description: `The frame could not be decoded: ${err.message}` },
        );
        connection._process();
      } catch {
        // the socket is gone: nothing left to tell
      }
    };
    connection.on('protocol_error', undecodable);
    connection.on('error', undecodable);

    // A client may end a session or detach a link with an error (AMQP 1.0 2.7.5, 2.7.7): that is the
    // client's own reason, answered by END or DETACH as any other (rhea does so on the next tick),
    // and the connection serves on. rhea raises the error as an event; with nobody listening it
    // emits 'error' on the container instead, which throws inside its frame reader: a session END
    // with an error closed the whole connection as amqp:decode-error, the client's description
    // quoted as the reason. Links' errors were heard only through their close listeners above.
    const peerError = (
      event: string,
      what: string,
      error: { condition?: unknown; description?: unknown } | undefined,
    ) =>
      log.debug(
        event,
        `${peer} (${transport}): the client ${what} with ${clip(String(error?.condition))}: ${clip(String(error?.description ?? ''))}`,
        { transport, condition: clip(String(error?.condition)) },
      );
    connection.on('session_error', (context: EventContext) =>
      peerError('amqp.session', 'ended a session', context.session?.error as never),
    );
    connection.on('sender_error', (context: EventContext) =>
      peerError('amqp.link', 'detached its receiver link', context.sender?.error as never),
    );
    connection.on('receiver_error', (context: EventContext) =>
      peerError('amqp.link', 'detached its sender link', context.receiver?.error as never),
    );
    connection.on('connection_error', (context: EventContext) => {
      const error = context.connection.error as { message?: string; description?: string } | undefined;
      log.debug('amqp.connection', `${peer} (${transport}): ${error?.description ?? error?.message ?? 'error'}`);
    });
    connection.on('disconnected', () => {
      open.delete(connection);
    });
    // rhea emits 'disconnected' only for a connection that ends unclosed (3.0.5 connection.js
    // _disconnected: !is_closed()): one closed properly (AMQP CLOSE, as the SDKs do) leaves here
    // when its socket or WebSocket ends, or every registration stayed referenced until stop.
    channel.onEnd(() => open.delete(connection));

    open.add(connection);
    connection.accept(socket);
    logRefusedSaslMechanism(connection, (mechanism) => {
      if (mechanism === 'ANONYMOUS' && options.hubs) {
        saslAnonymous = true;
        return;
      }
      log.debug(
        'amqp.auth',
        `${peer} (${transport}): missing-token (SASL ${clip(mechanism)}: only SASL PLAIN, {idScope}/registrations/{registrationId} and a SAS token, is served)`,
        { registrationId: '', reason: 'missing-token', transport },
      );
    });
  };

  const server = tls.createServer(
    {
      cert: options.tls.cert,
      key: options.tls.key,
      handshakeTimeout: limits.handshakeTimeoutMs,
      ...CLIENT_CERTIFICATE_TLS_OPTIONS,
    },
    (socket) => {
      socket.setNoDelay(true);
      serve(
        socketChannel(socket),
        `${socket.remoteAddress}:${socket.remotePort}`,
        'amqp',
        peerCertificateChain(socket),
      );
    },
  );
  const { sockets } = boundConnections(server, limits, log, 'AMQP');
  server.on('tlsClientError', logTlsClientError(log, { kind: 'amqp', port: 'AMQP', scheme: 'amqps' }));

  const port = await listen(server, {
    label: 'AMQP',
    host: options.host,
    port: options.port,
    portSetting: '--amqp-port (amqpPort)',
  });

  return {
    host: options.host,
    port,
    openConnections: () => open.size,
    acceptWebSocket(ws, peer, clientCertificates = []) {
      serve(webSocketChannel(ws), peer, 'amqp-ws', clientCertificates);
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      for (const connection of open) {
        try {
          connection.close();
        } catch {
          // already gone
        }
      }
      open.clear();
      await closed;
      warnings.flush();
    },
  };
}

/**
 * Answers waiting to be written above which a connection is read no further. rhea writes what it
 * has to send without looking at the socket: a client that sends requests and never reads its
 * socket had every answer kept (32 MB of status lookups: see amqp-backpressure.test.ts). Reading
 * stops while this much waits (a socket's own high-water mark), so TCP holds the client back and
 * a connection silent both ways is closed by the idle timeout; it resumes once the answers leave.
 */
const MAX_PENDING_WRITE_BYTES = 16 * 1024;

function socketChannel(socket: Socket): ByteChannel {
  let stopped = false;
  const resume = () => {
    if (!stopped) socket.resume();
  };
  return {
    onData: (listener) =>
      socket.on('data', (chunk: Buffer) => {
        listener(chunk);
        if (socket.writableNeedDrain) {
          socket.pause();
          socket.once('drain', resume);
        }
      }),
    onEnd: (listener) => {
      // rhea reads `end`; a socket destroyed by a timeout only closes.
      let ended = false;
      const once = () => {
        if (ended) return;
        ended = true;
        listener();
      };
      socket.on('end', once);
      socket.on('close', once);
    },
    onError: (listener) => socket.on('error', listener),
    write: (bytes) => {
      if (socket.writable) socket.write(bytes);
    },
    stopReading: () => {
      stopped = true;
      socket.pause();
    },
    end: () => socket.end(),
    destroy: () => socket.destroy(),
  };
}

function webSocketChannel(ws: WebSocket): ByteChannel {
  // As socketChannel, with what ws reports: its bufferedAmount (the socket's buffer and frames not
  // yet written) and the callback of each send (its frame written), the last of which runs when
  // the socket has drained.
  let paused = false;
  let stopped = false;
  const sent = () => {
    if (paused && !stopped && ws.bufferedAmount < MAX_PENDING_WRITE_BYTES) {
      paused = false;
      ws.resume();
    }
  };
  return {
    onData: (listener) =>
      ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
        listener(toBuffer(data));
        if (!paused && ws.bufferedAmount >= MAX_PENDING_WRITE_BYTES) {
          paused = true;
          ws.pause();
        }
      }),
    onEnd: (listener) => ws.on('close', () => listener()),
    onError: (listener) => ws.on('error', listener),
    write: (bytes) => {
      if (ws.readyState === ws.OPEN) ws.send(bytes, { binary: true }, sent);
    },
    stopReading: () => {
      stopped = true;
      ws.pause();
    },
    end: () => ws.close(1000),
    destroy: () => ws.terminate(),
  };
}

/** The OPEN's hostname, as rhea keeps the peer's OPEN. */
function remoteHostname(connection: Connection): string | undefined {
  const hostname = (connection as unknown as { remote?: { open?: { hostname?: unknown } } }).remote?.open?.hostname;
  return typeof hostname === 'string' ? hostname : undefined;
}

/**
 * The address of an ATTACH's source or target as the frame carries it, before rhea unwraps it: a
 * described list whose first field is the address (AMQP 1.0 3.5.3, 3.5.4).
 */
function terminusAddress(field: unknown): string | undefined {
  const list = (field as { value?: unknown } | null | undefined)?.value;
  const address = Array.isArray(list) ? (list[0] as { value?: unknown } | undefined)?.value : undefined;
  return typeof address === 'string' ? address : undefined;
}

/** Whether rhea has yet to write the ATTACH of `link` (its open requested, not output). */
function attachUnwritten(link: Sender | Receiver): boolean {
  const requests = (link as unknown as { state?: { open_requests?: unknown } }).state?.open_requests;
  return typeof requests === 'number' && requests > 0;
}

/** Whether `value` (from rhea's maps) is one of rhea's links. */
function isLink(value: unknown): value is Sender | Receiver {
  return typeof (value as Receiver | undefined)?.is_receiver === 'function';
}

/** The event context rhea gives a link's events (`_context`, left out of its typings). */
function linkContext(link: Sender | Receiver): EventContext {
  return (link as unknown as { _context(): EventContext })._context();
}

/** Whether `link` (from rhea's handles) is one where the server receives: the client sends on it. */
function isReceiver(link: unknown): link is Receiver {
  return typeof (link as Receiver | undefined)?.is_receiver === 'function' && (link as Receiver).is_receiver();
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.isBuffer(data) ? data : Buffer.from(data);
}

/**
 * rhea's errors for a frame that decoded but that the state of its connection, session or link does
 * not allow (rhea 3.0.5's texts: connection.js, session.js, link.js), with the condition AMQP 1.0
 * names for it (2.8.15, 2.8.16): a DETACH, TRANSFER or FLOW naming a handle no link is attached
 * on is `amqp:session:unattached-handle`; a second OPEN, BEGIN, ATTACH, DETACH, END or CLOSE, a
 * frame on a channel no session was begun on, a transfer on a detached link or out of sequence,
 * `amqp:illegal-state` ("the peer sent a frame that is not permitted in the current state"). They
 * were all closed as `amqp:decode-error`, though the frame decoded: a client detaching a handle
 * twice was told its frame could not be decoded. Undefined for every other error (a decode error).
 */
function illegalStateCondition(message: string): string | undefined {
  if (/^Invalid handle \d+$/.test(message)) return 'amqp:session:unattached-handle';
  const illegal = [
    /^(Open|Close|Begin|End|Attach|Detach) already received$/,
    /^\w+ received on invalid channel \d+$/,
    /^Invalid value for remote channel /,
    /^transfer after detach$/,
    /^got transfer on sending link$/,
    /^frame sequence error: /,
  ];
  return illegal.some((pattern) => pattern.test(message)) ? 'amqp:illegal-state' : undefined;
}

/** The error real DPS closes an unauthorized AMQP connection with (azure-iot-sdk-c#815). */
function unauthorizedError(): { condition: string; description: string } {
  return {
    condition: 'amqp:unauthorized-access',
    description: JSON.stringify(createErrorBody(DpsErrorCode.Unauthorized, 'IotHubUnauthorizedAccess')),
  };
}

/** An AMQP `error` (descriptor 0x1d: condition, description, info) as a value inside a map. */
function describedError(error: { condition: string; description: string }): unknown {
  const { types } = rhea;
  return types.wrap_described(
    types.wrap_list([types.wrap_symbol(error.condition), types.wrap_string(error.description), types.wrap_map({})]),
    0x1d,
  );
}

function describeProblem(problem: AmqpStreamProblem): string {
  switch (problem.kind) {
    case 'not-amqp':
      return problem.protocol === 'unknown'
        ? `sent "${problem.firstBytes}", not an AMQP 1.0 protocol header`
        : `spoke ${problem.protocol.toUpperCase()} on the AMQP port (AMQP 1.0 with SASL PLAIN is served here)`;
    case 'unsupported-header':
      return `sent the protocol header "${problem.header}"; AMQP 1.0 with SASL (AMQP\\x03\\x01\\x00\\x00) is served`;
    case 'frame-too-large':
      return `announced a ${problem.size}-byte frame; the limit is ${AMQP_MAX_FRAME_BYTES} (max-frame-size)`;
    case 'malformed-frame':
      return `sent a malformed frame (${problem.reason})`;
  }
}
