import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { decodeJson, parseSasToken } from '@dpskit/contracts';
import type { Logger } from '@dpskit/node-kit';
import { Aedes, type Client } from 'aedes';
import mqttPacket from 'mqtt-packet';
import { clip } from '../core/client-text.js';
import { type LimitedKind, limitWarnings } from '../core/limited-warnings.js';
import { destroyAfterGrace } from '../transport/connection-limits.js';
import { MAX_HUB_KEEPALIVE_SECONDS, MAX_MQTT_PACKET_BYTES } from '../transport/mqtt.js';
import { peerCertificateChain } from '../transport/peer-certificates.js';
import { closeWebSocketWith, MQTT_WEBSOCKET_CLOSE } from '../transport/websocket-stream.js';
import { c2dTopic, MAX_C2D_IN_FLIGHT } from './core/c2d.js';
import { type ExpiryTimer, expiryTimer } from './core/expiry-timer.js';
import { HubError, type HubService, TwinError } from './core/hub-service.js';
import { moduleKey, splitIdentityKey } from './core/modules.js';
import type { HubPush } from './core/pushes.js';
import { refuseOutOfRangeIntegers } from './core/twin.js';
import {
  DESIRED_FILTER,
  desiredPushTopic,
  hubOfUsername,
  isDeviceSubscription,
  METHODS_FILTER,
  methodRequestTopic,
  parseDevicePublish,
  parseHubUsername,
  twinResponseTopic,
} from './mqtt-topics.js';
import { PacedMqttStream } from './paced-stream.js';

/**
 * The most a device connection may hold of pushes the device has not read (bytes queued in the
 * server for its socket): past it, a desired-property push closes the connection instead.
 */
export const MAX_UNSENT_PUSH_BYTES = 1024 * 1024;

export interface HubMqtt {
  /** The handler for a connection whose CONNECT username names one of the hubs; else undefined. */
  route(username: string | undefined): ((stream: Duplex) => void) | undefined;
  /**
   * Delivers a push that another process on the same store owes (`dps-emulator start --workers`)
   * to the device if it is connected here; `seq` is the push's place in the store's order. The
   * pushes this process owes are delivered without it (`HubService.subscribePushes`).
   */
  deliver(push: HubPush, seq?: number): void;
  close(): Promise<void>;
}

/**
 * The hubs' MQTT warnings, each a connection closed (or a will dropped) for what the client sent,
 * counted by `reason`: a packet over the bound or a dropped will before any credential (aedes reads
 * the CONNECT and its will before authenticate), a QoS 2 PUBLISH, a topic the device may not
 * publish to or pushes left unread by an authenticated device, once per connection. Logged at most
 * once in full a second for all the hubs, the rest counted (limitWarnings) and flushed at close.
 */
export const HUB_MQTT_LIMITED_WARNINGS: Readonly<Record<string, LimitedKind>> = {
  'hub.mqtt': {
    summary: 'hub MQTT connection(s) closed or will(s) dropped for what the client sent',
    countBy: 'reason',
  },
  // A device may answer a method late (after its timeout), twice, or with a $rid never sent: each
  // answer is dropped, as IoT Hub has nobody to give it to; any device can send many.
  'hub.method-answer': {
    summary: 'direct method answer(s) for no call in flight dropped',
    countBy: 'reason',
  },
};

/** CONNACK codes (MQTT 3.1.1): 2 identifier rejected, 5 not authorized (what IoT Hub answers bad credentials with). */
function refusal(returnCode: 2 | 3 | 5, message: string): Error & { returnCode: number } {
  return Object.assign(new Error(message), { returnCode });
}

interface Session {
  hub: string;
  /**
   * The device id, or for a module (`ModuleClient`) its `moduleKey`, `{deviceId}/{moduleId}`: the MQTT
   * client id, under which the hub names the connection everywhere (twin, methods, pushes).
   */
  deviceId: string;
  desired: boolean;
  /** Subscribed to `$iothub/methods/POST/#`: direct method requests are sent to it. */
  methods: boolean;
  /** Names this connection in the registry's record of the device's connection. */
  connection: string;
  /**
   * With a shared store: the `seq` of the `connected` push this connection wrote; a `connected`
   * push of the same device with a higher one is a newer connection on another process.
   */
  connectedSeq?: number;
  /** The CONNECT username had no api-version: the device's twin operations fail (400). */
  unversioned?: true;
  /** Subscribed to `devices/{id}/messages/devicebound/#`: the QoS granted (cloud-to-device messages are sent at it). */
  c2d?: 0 | 1;
  /** Cloud-to-device messages sent at QoS 1 and not yet acknowledged: packet id → lock token. */
  c2dInFlight: Map<number, string>;
  /** The packet id of the last cloud-to-device message sent (1-65535, then round again). */
  c2dPacketId: number;
  /** Set while this connection's queue is being sent (a PUBACK or push arriving meanwhile asks again). */
  c2dPumping?: boolean;
  /** Set while the sending waits for the connection to drain (sendCloudToDevice goes on then). */
  c2dAwaitingDrain?: boolean;
  /** The SAS token's `se` in ms (none for an X.509 device): the connection is closed then (`expiry`). */
  tokenExpiresAtMs?: number;
  expiry?: ExpiryTimer;
}

/**
 * IoT Hub's device API over MQTT 3.1.1 (as `azure-iot-device-mqtt` speaks it), one aedes broker
 * per hub: MQTT client ids are device ids, unique only within a hub, and aedes keeps one session
 * per client id. Every answer and push goes to the device's own connection (`client.publish`),
 * never through the broker, so no device sees another's twin.
 */
export async function startHubMqtt(
  hub: HubService,
  logger: Logger,
  options: {
    /** Called when the first device connects (true) and when the last one leaves (false). */
    onDevicesConnected?: (any: boolean) => void;
    /** The clock the warning limit (HUB_MQTT_LIMITED_WARNINGS) is measured on (default: the wall clock). */
    now?: () => Date;
  } = {},
): Promise<HubMqtt> {
  const warnings = limitWarnings(logger, HUB_MQTT_LIMITED_WARNINGS, { now: options.now });
  const { log } = warnings;
  const brokers = new Map<string, Aedes>();
  const sessions = new WeakMap<Client, Session>();
  const connected = new Set<Client>();

  for (const hubName of hub.hubs) {
    const broker = await Aedes.createBroker({
      preConnect(_client, packet, done) {
        // IoT Hub closes a silent session after 1.5 × its keepalive, 1767 s at most
        // (MAX_HUB_KEEPALIVE_SECONDS): aedes times the session by the CONNECT's keepalive.
        if ((packet.keepalive ?? 0) > MAX_HUB_KEEPALIVE_SECONDS) packet.keepalive = MAX_HUB_KEEPALIVE_SECONDS;
        // IoT Hub forwards a will "as a telemetry message" when it is on the device's telemetry
        // topic (azure-docs iot-mqtt-connect-to-iot-hub); no other will is documented. aedes
        // publishes a will through authorizePublish when the connection drops, where one on a twin
        // topic would patch the twin: any other will is dropped here, with a warning (the client
        // id is the device id, or authenticate refuses the CONNECT).
        const will = packet.will;
        if (will && (will.qos === 2 || parseDevicePublish(will.topic, packet.clientId).kind !== 'telemetry')) {
          log.warn(
            'hub.mqtt',
            `${clip(packet.clientId)} on ${hubName}: a will ${will.qos === 2 ? 'at QoS 2' : `on ${clip(will.topic)}`}, not devices/${clip(packet.clientId)}/messages/events/ (the only will IoT Hub forwards); the will is dropped`,
            { reason: 'will-dropped' },
          );
          delete packet.will;
        }
        done(null, true);
      },
      authenticate(client, username, password, done) {
        /**
         * A refused CONNECT: its `hub.auth` debug line (the device, the reason and why; never the
         * password), the `connect-refused` event (and so the limited warning), then the CONNACK.
         * Every refusal has the line, those decided before the credentials are read too.
         */
        const refuse = (deviceId: string, reason: string, detail: string, returnCode: 2 | 5, message: string) => {
          // `deviceId` is a module's moduleKey for a ModuleClient: the line names device and module apart.
          const who = splitIdentityKey(deviceId);
          log.debug('hub.auth', `${clip(deviceId)} on ${hubName} over MQTT: ${reason} (${detail})`, {
            hub: hubName,
            deviceId: clip(who.deviceId),
            ...(who.moduleId !== undefined ? { moduleId: clip(who.moduleId) } : {}),
            reason,
          });
          hub.reportRefused(hubName, deviceId, 'mqtt', reason);
          done(refusal(returnCode, message), false);
        };
        const parsed = parseHubUsername(username);
        if (!parsed || parsed.hub.toLowerCase() !== hubName.toLowerCase()) {
          const expected = `${hubName}/{deviceId}/?api-version=…`;
          return refuse(
            clip(client.id),
            'malformed',
            `the username is not ${expected}`,
            5,
            `username is not ${expected}`,
          );
        }
        // A module's client id is {deviceId}/{moduleId} (azure-iot-device-mqtt's, IoT Hub's).
        const key = parsed.moduleId === undefined ? parsed.deviceId : moduleKey(parsed.deviceId, parsed.moduleId);
        if (client.id !== key) {
          const detail = `the MQTT client id differs from the ${parsed.moduleId === undefined ? 'device id' : '{deviceId}/{moduleId}'} in the username`;
          return refuse(key, 'client-id-mismatch', detail, 2, 'the MQTT client id must be the device id');
        }
        let auth: ReturnType<typeof hub.authenticateDevice>;
        try {
          auth = hub.authenticateDevice({
            hub: hubName,
            deviceId: parsed.deviceId,
            ...(parsed.moduleId !== undefined ? { moduleId: parsed.moduleId } : {}),
            // X.509 devices send no password (or an empty one) and their certificate in the handshake.
            token: password?.length ? password.toString('utf8') : undefined,
            clientCertificates: peerCertificateChain(connectionOf(client)),
          });
        } catch (err) {
          // The store could not be read: CONNACK 3, server unavailable (MQTT 3.1.1 3.2.2.3), and the server goes on.
          log.error('hub.mqtt', `${clip(key)} on ${hubName}: identity not read: ${(err as Error).message}`);
          // Over WebSockets the close says so too (1011), as DPS's CONNACK 3 does.
          closeWebSocketWith(connectionOf(client), MQTT_WEBSOCKET_CLOSE.serverUnavailable);
          return done(refusal(3, 'server unavailable'), false);
        }
        if (!auth.ok) return refuse(key, auth.reason, auth.detail, 5, 'not authorized');
        // The `se` authenticateDevice verified; parsed here only for a device its certificate
        // authenticated that sent a token as its password too (whose expiry ends it, as before).
        const tokenExpiresAtMs =
          auth.tokenExpiresAt !== undefined
            ? auth.tokenExpiresAt * 1000
            : password?.length
              ? sasExpiryMs(password.toString('utf8'))
              : undefined;
        sessions.set(client, {
          ...(tokenExpiresAtMs !== undefined ? { tokenExpiresAtMs } : {}),
          hub: auth.hub,
          deviceId: auth.moduleId === undefined ? auth.deviceId : moduleKey(auth.deviceId, auth.moduleId),
          desired: false,
          methods: false,
          connection: randomUUID(),
          c2dInFlight: new Map(),
          c2dPacketId: 0,
          ...(parsed.unversioned ? { unversioned: true } : {}),
        });
        grantAtMostQos1(client);
        completeOnPuback(client);
        done(null, true);
      },
      authorizeSubscribe(client, subscription, done) {
        const session = client ? sessions.get(client) : undefined;
        if (!session || !isDeviceSubscription(subscription.topic, session.deviceId)) {
          log.debug('hub.mqtt', `${clip(client?.id ?? '?')}: subscription to ${clip(subscription.topic)} refused`);
          return done(null, null);
        }
        if (subscription.topic === DESIRED_FILTER) session.desired = true;
        if (subscription.topic === METHODS_FILTER) session.methods = true;
        if (subscription.topic === c2dFilter(session.deviceId)) session.c2d = subscription.qos === 0 ? 0 : 1;
        // Granted at the QoS asked up to 1 (see grantAtMostQos1); the hub's own publishes (twin
        // answers, desired pushes) are QoS 0, so the device gets them at QoS 0 whatever it was
        // granted (MQTT 3.1.1 3.8.4: a delivery's QoS is at most the granted one).
        done(null, subscription);
      },
      authorizePublish(client, packet, done) {
        if (!client) return done(null);
        const session = sessions.get(client);
        if (!session) return done(new Error('not authenticated'));
        if (packet.qos === 2) {
          // "IoT Hub doesn't support QoS 2 messages. If a device app publishes a message with QoS 2,
          // IoT Hub closes the network connection" (azure-docs iot-mqtt-connect-to-iot-hub). Closed
          // here, before anything is stored or answered: aedes would answer PUBREC and keep each
          // message until its PUBREL, up to 1000 of 256 KiB per connection.
          log.warn(
            'hub.mqtt',
            `${clip(session.deviceId)} on ${session.hub}: a PUBLISH at QoS 2, which IoT Hub does not support; connection closed`,
            { reason: 'qos-2' },
          );
          return done(new Error('QoS 2 is not supported'));
        }
        const publish = parseDevicePublish(packet.topic, session.deviceId);
        if (publish.kind === 'invalid') {
          // IoT Hub closes the connection of a device that publishes where it may not.
          log.warn('hub.mqtt', `${clip(session.deviceId)} on ${session.hub}: ${publish.reason}; connection closed`, {
            reason: 'topic',
          });
          return done(new Error(publish.reason));
        }
        packet.retain = false;
        const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : Buffer.from(packet.payload);
        if (publish.kind === 'telemetry') {
          // Saved before the PUBACK (sent once `done` is called): an acknowledged message is kept.
          // Committed with the turn's other writes (the other connections' messages): the device's
          // next packet is read only after `done`, so its messages are saved and answered in order.
          hub
            .receiveTelemetrySoon(session.hub, session.deviceId, {
              body: payload,
              properties: publish.properties,
              transport: 'mqtt',
            })
            .then(
              () => done(null),
              (err: unknown) => {
                log.error('hub.mqtt', `${clip(session.deviceId)}: telemetry not stored: ${(err as Error).message}`);
                done(err as Error);
              },
            );
          return;
        }
        let answer: { topic: string; body: unknown } | undefined;
        try {
          if ((publish.kind === 'twin-get' || publish.kind === 'twin-reported') && session.unversioned) {
            // IoT Hub fails twin operations of a device connected without an api-version with 400
            // (andriyadi/AzureIoTHubMQTTClient#5); its body there is not documented.
            throw new HubError(
              400,
              'ArgumentInvalid',
              'twin operations need an api-version in the CONNECT username ({hub}/{deviceId}/?api-version=2021-04-12)',
            );
          }
          if (publish.kind === 'twin-get') {
            answer = {
              topic: twinResponseTopic(200, publish.rid),
              body: hub.deviceTwin(session.hub, session.deviceId),
            };
          } else if (publish.kind === 'twin-reported') {
            const patch = parsePatch(payload);
            const version = hub.reportProperties(session.hub, session.deviceId, patch);
            answer = { topic: twinResponseTopic(204, publish.rid, version), body: undefined };
          } else if (publish.kind === 'method-response') {
            // The device's answer ends its call (the service's request is answered); one for no call in
            // flight is dropped, said in a limited warning.
            const outcome = hub.methods.answer(session.hub, session.deviceId, publish.rid, publish.status, payload);
            if (outcome === 'unknown')
              log.warn(
                'hub.method-answer',
                `${clip(session.deviceId)} on ${session.hub}: a direct method answer for $rid ${clip(publish.rid)}, which no call in flight of this device has (answered, timed out or never sent); dropped`,
                { reason: 'unknown-rid' },
              );
          }
        } catch (err) {
          if (publish.kind === 'twin-get' || publish.kind === 'twin-reported') {
            const status = err instanceof HubError ? err.status : err instanceof TwinError ? 400 : 500;
            const message = err instanceof Error && status !== 500 ? err.message : 'internal error';
            if (status === 500) log.error('hub.mqtt', `${clip(session.deviceId)}: ${(err as Error).message}`);
            const code = err instanceof HubError || err instanceof TwinError ? err.code : undefined;
            answer = { topic: twinResponseTopic(status, publish.rid), body: twinErrorBody(status, code, message) };
          } else {
            log.error('hub.mqtt', `${clip(session.deviceId)}: ${(err as Error).message}`);
            return done(err as Error);
          }
        }
        // A twin request is done once its answer is written (aedes writes a publish a turn later):
        // the device's next packet is read only then, so that answers leave in request order.
        if (answer) reply(client, answer.topic, answer.body, () => done(null));
        else done(null);
      },
    });
    // A store write that fails here (its disk full, say) is logged and the server goes on serving:
    // thrown from aedes's event it would end the process. A connection whose state could not be
    // written is closed, so that the registry never shows a device connected that is not.
    broker.on('clientReady', (client) => {
      if (client.conn instanceof PacedMqttStream) client.conn.connectHandled();
      const session = sessions.get(client);
      if (!session) return;
      try {
        session.connectedSeq = hub.setConnected(session.hub, session.deviceId, true, 'mqtt', session.connection);
      } catch (err) {
        log.error(
          'hub.mqtt',
          `${clip(session.deviceId)} on ${session.hub}: connection state not stored, connection closed: ${(err as Error).message}`,
        );
        client.close();
        return;
      }
      connected.add(client);
      if (connected.size === 1) options.onDevicesConnected?.(true);
      // "When the token expires, the IoT hub severs the device/module connection" (azure-docs
      // iot-hub-dev-guide-sas; since 2018 over MQTT too, azure-iot-sdk-c#163): the SDKs connect again
      // with a new token before (azure-iot-device-mqtt's token renewal).
      if (session.tokenExpiresAtMs !== undefined)
        session.expiry = expiryTimer(session.tokenExpiresAtMs, () => {
          log.debug(
            'hub.auth',
            `${clip(session.deviceId)} on ${session.hub} over MQTT: expired (the SAS token ran out); connection closed`,
            {
              hub: session.hub,
              deviceId: clip(session.deviceId),
              reason: 'expired',
            },
          );
          client.close();
        });
    });
    broker.on('clientDisconnect', (client) => {
      const session = sessions.get(client);
      if (!session) return;
      session.expiry?.cancel();
      try {
        hub.setConnected(session.hub, session.deviceId, false, 'mqtt', session.connection);
      } catch (err) {
        log.error(
          'hub.mqtt',
          `${clip(session.deviceId)} on ${session.hub}: disconnection not stored: ${(err as Error).message}`,
        );
      }
      // The method calls sent on this connection end now (the device cannot answer them any more).
      hub.methods.connectionClosed(session.connection);
      // Its unacknowledged cloud-to-device messages are Enqueued again, for the device's next
      // connection (IoT Hub redelivers them when it reconnects).
      session.c2dInFlight.clear();
      try {
        hub.releaseCloudToDevice(session.connection);
      } catch (err) {
        log.error(
          'hub.mqtt',
          `${clip(session.deviceId)} on ${session.hub}: cloud-to-device messages of the closed connection not put back: ${(err as Error).message}`,
        );
      }
      if (connected.delete(client) && connected.size === 0) options.onDevicesConnected?.(false);
    });
    // After the SUBACK is written (aedes emits this once it is queued): the method calls waiting for
    // the device (connectTimeoutInSeconds) are sent to it.
    broker.on('subscribe', (subscriptions, client) => {
      const session = client ? sessions.get(client) : undefined;
      if (session?.methods && subscriptions.some((s) => s.topic === METHODS_FILTER))
        hub.methods.deviceReady(session.hub, session.deviceId);
      // The messages queued for the device are sent once it listens to them.
      if (client && session?.c2d !== undefined && subscriptions.some((s) => s.topic === c2dFilter(session.deviceId)))
        sendCloudToDevice(client, session);
    });
    // Pushes go to the device's connection, not through the broker (see reply): a device that
    // unsubscribes from them gets no more (MQTT 3.1.1 3.10.4: the server stops adding messages for
    // the filter), as the SUBSCRIBE that granted them started them.
    broker.on('unsubscribe', (unsubscriptions, client) => {
      const session = sessions.get(client);
      if (session && unsubscriptions.includes(DESIRED_FILTER)) session.desired = false;
      if (session && unsubscriptions.includes(METHODS_FILTER)) session.methods = false;
      if (session && unsubscriptions.includes(c2dFilter(session.deviceId))) delete session.c2d;
    });
    // aedes reports the timeout as an error, which would close a WebSocket with 1002 (a
    // violation); the client broke nothing it sent (websocket-stream.ts: why 1001).
    broker.on('keepaliveTimeout', (client) =>
      closeWebSocketWith(connectionOf(client), MQTT_WEBSOCKET_CLOSE.keepaliveTimeout),
    );
    broker.on('clientError', (client, err) => log.debug('hub.mqtt', `${clip(client.id)}: ${err.message}`));
    broker.on('connectionError', (client, err) => log.debug('hub.mqtt', `${clip(client?.id ?? '?')}: ${err.message}`));
    brokers.set(hubName.toLowerCase(), broker);
  }

  /** Publishes an answer or push on the device's connection; `written` is called once it is written (or cannot be). */
  function reply(client: Client, topic: string, body: unknown, written?: () => void): void {
    publishRaw(client, topic, body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body)), written);
  }

  function publishRaw(client: Client, topic: string, payload: Buffer, written?: () => void): void {
    if (client.closed) {
      written?.();
      return;
    }
    client.publish(
      {
        cmd: 'publish',
        topic,
        payload,
        qos: 0,
        retain: false,
        dup: false,
      },
      (err) => {
        if (err) log.debug('hub.mqtt', `${clip(client.id)}: answer not delivered (${err.message})`);
        written?.();
      },
    );
  }

  /** Serves a device connection: aedes reads and closes it through a PacedMqttStream (why: there). */
  function serve(broker: Aedes, stream: Duplex): void {
    let client: Client | undefined;
    const paced = new PacedMqttStream(stream, MAX_MQTT_PACKET_BYTES, (size) => {
      const socket = stream as Partial<Socket>;
      const who = client?.id ? clip(client.id) : `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
      log.warn(
        'hub.mqtt',
        size === undefined
          ? `${who}: a packet's remaining length runs past 4 bytes (malformed); connection closed after the packets before it`
          : `${who}: a ${size}-byte packet exceeds ${MAX_MQTT_PACKET_BYTES} bytes; connection closed after the packets before it`,
        { size, reason: size === undefined ? 'malformed-length' : 'too-large' },
      );
    });
    client = broker.handle(paced);
  }

  /**
   * Sends the device's Enqueued cloud-to-device messages on its connection, each locked to it, at
   * the QoS its subscription was granted: at QoS 1 its PUBACK completes it (completeOnPuback); at
   * QoS 0 it is completed once written (no acknowledgement will come). At most MAX_C2D_IN_FLIGHT
   * unacknowledged, and none while the device leaves more than MAX_UNSENT_PUSH_BYTES unread: the
   * rest waits Enqueued for a PUBACK or for the connection to drain (at QoS 0 no PUBACK comes; and
   * within this loop every write after the first stays in the buffer, so a few large messages
   * reach the bound). A store failure is logged; the messages stay queued.
   */
  function sendCloudToDevice(client: Client, session: Session): void {
    if (session.c2d === undefined || session.c2dPumping || client.closed || !connected.has(client)) return;
    session.c2dPumping = true;
    try {
      while (session.c2dInFlight.size < MAX_C2D_IN_FLIGHT && unsentBytes(client) <= MAX_UNSENT_PUSH_BYTES) {
        const message = hub.receiveCloudToDevice(session.hub, session.deviceId, 'mqtt', session.connection);
        const token = message?.lock?.token;
        if (!message || token === undefined) break;
        const qos = session.c2d;
        const packet = {
          cmd: 'publish' as const,
          topic: c2dTopic(message),
          payload: message.body,
          qos,
          retain: false,
          dup: false,
        };
        if (qos === 1) {
          session.c2dPacketId = (session.c2dPacketId % 65535) + 1;
          session.c2dInFlight.set(session.c2dPacketId, token);
          // Written on the connection as aedes writes its packets (one write: nothing interleaves),
          // not through client.publish, whose QoS 1 delivery aedes would also keep and resend itself
          // for a session that is not clean (the SDK's): the queue in the store is the only copy.
          client.conn.write(mqttPacket.generate({ ...packet, messageId: session.c2dPacketId }));
        } else {
          client.conn.write(mqttPacket.generate(packet));
          hub.settleCloudToDevice(session.hub, session.deviceId, token, 'complete', 'mqtt');
        }
      }
      if (unsentBytes(client) > MAX_UNSENT_PUSH_BYTES) sendOnDrain(client, session);
    } catch (err) {
      log.error(
        'hub.mqtt',
        `${clip(session.deviceId)} on ${session.hub}: cloud-to-device messages not sent: ${(err as Error).message}`,
      );
    } finally {
      session.c2dPumping = false;
    }
  }

  /** Sends the rest of the device's queue once its connection has written what it holds. */
  function sendOnDrain(client: Client, session: Session): void {
    if (session.c2dAwaitingDrain) return;
    // The backlog is the paced stream's when it holds one (it empties only as its carrier drains).
    const stream = client.conn.writableNeedDrain ? client.conn : connectionOf(client);
    session.c2dAwaitingDrain = true;
    stream.once('drain', () => {
      session.c2dAwaitingDrain = false;
      sendCloudToDevice(client, session);
    });
  }

  /**
   * A PUBACK for a cloud-to-device message completes it, and the next may be sent. Read from the
   * client's parser ahead of aedes (which finds no packet of its own under the id and goes on).
   */
  function completeOnPuback(client: Client): void {
    const parser = (client as unknown as { _parser?: EventEmitter })._parser;
    parser?.prependListener('packet', (packet: { cmd?: string; messageId?: number }) => {
      if (packet.cmd !== 'puback' || packet.messageId === undefined) return;
      const session = sessions.get(client);
      const token = session?.c2dInFlight.get(packet.messageId);
      if (!session || token === undefined) return;
      session.c2dInFlight.delete(packet.messageId);
      try {
        hub.settleCloudToDevice(session.hub, session.deviceId, token, 'complete', 'mqtt');
      } catch (err) {
        // Its lock lost meanwhile (the device deleted and created again, say): nothing to complete.
        log.debug(
          'hub.mqtt',
          `${clip(session.deviceId)}: PUBACK of a cloud-to-device message not completed: ${(err as Error).message}`,
        );
      }
      sendCloudToDevice(client, session);
    });
  }

  /** A push owed to a device: sent on its connection if it is connected here, else nothing. */
  const deliver = (push: HubPush, seq?: number) => {
    // Relayed method calls are the hub service's (DirectMethods), never a push to a connection.
    if (push.kind === 'method' || push.kind === 'method-end') return;
    const broker = brokers.get(push.hub.toLowerCase());
    const client = broker ? findClient(broker, push.deviceId) : undefined;
    const session = client ? sessions.get(client) : undefined;
    if (!client || !session) return;
    if (push.kind === 'c2d') {
      sendCloudToDevice(client, session);
      return;
    }
    if (push.kind === 'desired') {
      const version = push.desired.$version;
      if (!session.desired || typeof version !== 'number') return;
      // A push is written whether the device reads or not (an answer waits for its socket to drain
      // before the next request is read; a push comes from the registry): a device that stops
      // reading would have every later push queued here for as long as its connection lasts.
      if (unsentBytes(client) > MAX_UNSENT_PUSH_BYTES) {
        log.warn(
          'hub.mqtt',
          `${clip(session.deviceId)} on ${session.hub}: over ${MAX_UNSENT_PUSH_BYTES} bytes of desired-property pushes left unread; connection closed`,
          { reason: 'pushes-unread' },
        );
        client.close();
        return;
      }
      reply(client, desiredPushTopic(version), push.desired);
      return;
    }
    if (push.kind === 'connected') {
      // IoT Hub keeps one connection per device and drops the existing one when another connects
      // (azure-docs iot-mqtt-connect-to-iot-hub: 400027 ConnectionForcefullyClosedOnNewConnection).
      // Within this process the push names the newer connection (MQTT here or AMQP; aedes itself
      // drops an older MQTT one of the same client id, MQTT-3.1.4-2); a connection on another
      // process is newer when its push came after this connection's own. A connection that has not
      // yet written its own will write it after this one, so it is the newer and stays.
      if (seq === undefined) {
        // (A connection not yet ready here will record itself after the push's: it is the newer.)
        if (push.connection === undefined || push.connection === session.connection || !connected.has(client)) return;
      } else if (session.connectedSeq === undefined || session.connectedSeq > seq) return;
    }
    // Deleted (through the registry, or moved away by a DPS re-provisioning), disabled, or
    // connected anew elsewhere: IoT Hub ends the connection.
    log.debug(
      'hub.mqtt',
      `${clip(session.deviceId)} on ${session.hub}: connection closed (${closeReason[push.kind]})`,
      {
        hub: session.hub,
        deviceId: clip(session.deviceId),
        reason: closeReason[push.kind],
      },
    );
    client.close();
  };
  const unsubscribe = hub.subscribePushes((push) => deliver(push));

  // Direct method requests: to the device's connection here when it subscribed to them, at QoS 0
  // ("Method requests are QoS 0", azure-docs iot-hub-devguide-direct-methods).
  /** The device's connection here, when it is connected here. */
  const heldDevice = (hubName: string, deviceId: string) => {
    const broker = brokers.get(hubName.toLowerCase());
    const client = broker ? findClient(broker, deviceId) : undefined;
    const session = client ? sessions.get(client) : undefined;
    return client && session && !client.closed && connected.has(client) ? { client, session } : undefined;
  };
  hub.methods.attach({
    holds: (hubName, deviceId) => heldDevice(hubName, deviceId) !== undefined,
    send(request) {
      const broker = brokers.get(request.hub.toLowerCase());
      const client = broker ? findClient(broker, request.deviceId) : undefined;
      const session = client ? sessions.get(client) : undefined;
      if (!client || !session?.methods || client.closed || !connected.has(client)) {
        // Said at debug: the call waits (connectTimeoutInSeconds) or ends 404103, whose usual cause
        // is a device connected without listening to methods (azure-docs troubleshoot-error-codes).
        log.debug(
          'hub.method',
          `${clip(request.deviceId)} on ${request.hub}: direct method ${clip(request.methodName)} not sent: ${session && !client?.closed ? 'connected here but not subscribed to $iothub/methods/POST/#' : 'not connected here'}`,
          { hub: request.hub, deviceId: clip(request.deviceId), methodName: clip(request.methodName) },
        );
        return undefined;
      }
      // As for desired-property pushes: a device that leaves what it was sent unread has its
      // connection closed rather than every later request queued in the server.
      if (unsentBytes(client) > MAX_UNSENT_PUSH_BYTES) {
        log.warn(
          'hub.mqtt',
          `${clip(session.deviceId)} on ${session.hub}: over ${MAX_UNSENT_PUSH_BYTES} bytes of pushes and method requests left unread; connection closed`,
          { reason: 'pushes-unread' },
        );
        client.close();
        return undefined;
      }
      publishRaw(client, methodRequestTopic(request.methodName, request.rid), Buffer.from(request.payloadJson));
      return session.connection;
    },
  });

  return {
    deliver,
    route(username) {
      const named = hubOfUsername(username);
      if (!named) return undefined; // DPS's
      const hubName = hub.hubNamed(named);
      const broker = hubName ? brokers.get(hubName.toLowerCase()) : undefined;
      if (broker) return (stream) => serve(broker, stream);
      // An IoT Hub CONNECT for a hub that is not linked: refused as IoT Hub refuses bad credentials,
      // rather than handed to DPS, whose answers a hub client would not understand.
      return (stream) => {
        const deviceId = parseHubUsername(username)?.deviceId ?? '';
        log.debug('hub.auth', `${clip(deviceId)} on ${clip(named)} over MQTT: unknown-hub`, { hub: clip(named) });
        hub.reportRefused(clip(named), deviceId, 'mqtt', 'unknown-hub');
        stream.on('error', () => {});
        // Like any refused peer's (connection-limits.ts): the CONNACK ended, not destroyed, what the
        // peer still sends read and dropped, REFUSED_PEER_GRACE_MS to close its side; over
        // WebSockets an orderly close (1000: the CONNACK says why), as for a refused DPS CONNECT.
        stream.resume();
        closeWebSocketWith(stream, MQTT_WEBSOCKET_CLOSE.normal);
        stream.end(mqttPacket.generate({ cmd: 'connack', returnCode: 5, sessionPresent: false }));
        destroyAfterGrace(stream);
      };
    },
    async close() {
      unsubscribe();
      // The calls in flight are answered (503) before the listeners go.
      hub.methods.attach(undefined);
      hub.methods.close();
      await Promise.all(
        [...brokers.values()].map((broker) => new Promise<void>((resolve) => broker.close(() => resolve()))),
      );
      warnings.flush();
    },
  };
}

/**
 * "When a device app subscribes to a topic with QoS 2, IoT Hub grants maximum QoS level 1 in the
 * SUBACK packet" (azure-docs iot-mqtt-connect-to-iot-hub). aedes answers the SUBACK with the QoS
 * asked, read before `authorizeSubscribe` runs (a subscription returned from it with another QoS
 * changes the delivery, not the SUBACK), so the QoS is lowered on the parsed SUBSCRIBE itself, by a
 * listener ahead of aedes's own on the client's packet parser (aedes 1.x's `_parser`; a test pins
 * the granted QoS, should a newer aedes rename it).
 */
function grantAtMostQos1(client: Client): void {
  const parser = (client as unknown as { _parser?: EventEmitter })._parser;
  parser?.prependListener('packet', (packet: { cmd?: string; subscriptions?: { qos: number }[] }) => {
    if (packet.cmd !== 'subscribe' || !Array.isArray(packet.subscriptions)) return;
    for (const subscription of packet.subscriptions) if (subscription.qos > 1) subscription.qos = 1;
  });
}

const closeReason = {
  deleted: 'device deleted',
  disabled: 'device disabled',
  connected: 'the device connected again on another connection',
} as const;

/** The device's connection (its TLS socket or WebSocket stream), under the PacedMqttStream aedes reads. */
function connectionOf(client: Client): Duplex {
  return client.conn instanceof PacedMqttStream ? client.conn.carrier : client.conn;
}

/** Bytes written to a device connection and not yet handed to the operating system. */
function unsentBytes(client: Client): number {
  const carrier = connectionOf(client);
  return (client.conn === carrier ? 0 : client.conn.writableLength) + carrier.writableLength;
}

/** The filter a device subscribes to for its cloud-to-device messages. */
function c2dFilter(deviceId: string): string {
  return `devices/${deviceId}/messages/devicebound/#`;
}

function findClient(broker: Aedes, deviceId: string): Client | undefined {
  const clients = (broker as unknown as { clients: Record<string, Client> }).clients;
  return Object.hasOwn(clients, deviceId) ? clients[deviceId] : undefined;
}

/**
 * IoT Hub's numeric codes (REST API "common error codes") for the twin errors the device API answers;
 * any other status gets `{status}001`, as 500001 (ServerError).
 */
const TWIN_ERROR_CODES: Readonly<Record<string, number>> = { ArgumentInvalid: 400004, DeviceNotFound: 404001 };

/**
 * A twin error answer's body as IoT Hub sends it over MQTT (and, the emulator's choice, over AMQP) (`{"errorCode":400004,"trackingId":…,
 * "message":…,"timestampUtc":…}`, as quoted in amenzhinsky/iothub#70 and azure-iot-sdk-c#210).
 * azure-iot-device-mqtt reads the failure from `errorCode` alone (the topic's status is ignored):
 * without it a refused patch is reported to the device as done.
 */
export function twinErrorBody(status: number, code: string | undefined, message: string): Record<string, unknown> {
  const now = new Date().toISOString();
  return {
    errorCode: (code === undefined ? undefined : TWIN_ERROR_CODES[code]) ?? status * 1000 + 1,
    trackingId: `${randomUUID().replace(/-/g, '')}-TimeStamp:${now}`,
    message,
    timestampUtc: now,
  };
}

function parsePatch(payload: Buffer): unknown {
  // Bounded before parsing: the twin allows 10 levels, a deeper document is refused unparsed.
  const text = payload.toString('utf8');
  const decoded = decodeJson(text, { maxDepth: 32 });
  if (!decoded.ok)
    throw new TwinError('ArgumentInvalid', `the reported properties are not valid JSON: ${decoded.reason}`);
  refuseOutOfRangeIntegers(text, 'reported');
  return decoded.value;
}

/** A SAS token's `se` in ms, or undefined if it does not parse. */
function sasExpiryMs(token: string): number | undefined {
  try {
    return parseSasToken(token).expiresAt * 1000;
  } catch {
    return undefined;
  }
}
