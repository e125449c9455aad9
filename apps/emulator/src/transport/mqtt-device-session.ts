import type mqttPacket from 'mqtt-packet';
import { clip } from '../core/client-text.js';
import { isDeviceRequestTopic, RESPONSE_FILTER } from './mqtt-topics.js';

/**
 * One device's MQTT 3.1.1 session with DPS's device API, as a state machine over decoded packets
 * (pure; no socket): what a broker does for a client, less everything a broker does between
 * clients. DPS's device API is request/response on one connection: a device subscribes to the
 * response filter, publishes requests, and gets each answer on its own connection. Nothing is
 * routed between devices, retained, queued for an offline session or persisted, so the session
 * keeps only what it needs to answer (its state, the CONNECT's identity, the next packet id).
 *
 * What follows MQTT 3.1.1 (as aedes, the broker this replaced, did it):
 * - the first packet must be a CONNECT [MQTT-3.1.0-1], and only one [MQTT-3.1.0-2]; protocol levels
 *   3 (MQIsdp) and 4 are served, others get CONNACK 1 [MQTT-3.1.2-2];
 * - a CONNECT is accepted (return code 0) unless the transport refuses it (`connected`): one that
 *   names no registration (no username) gets CONNACK 5, one the store cannot serve CONNACK 3; other
 *   credentials are checked by the device API, which answers the first request 401 as the real
 *   service does (the SDK raises that as UnauthorizedError; a refused CONNACK would surface as a
 *   plain connection error);
 * - SUBSCRIBE gets a SUBACK granting the response filter at QoS ≤ 1 and refusing (0x80) any other
 *   filter, which also keeps devices from snooping; UNSUBSCRIBE gets its UNSUBACK;
 * - a PUBLISH outside the request topics (another service's, or DPS's response topics, where a
 *   device would forge answers) closes the connection; requests are acknowledged per their QoS
 *   (PUBACK; PUBREC then PUBCOMP on PUBREL) and handed to the device API; the retain flag is
 *   ignored (an answer is never forwarded, so nothing is kept);
 * - PINGREQ gets PINGRESP, DISCONNECT closes, and with a keepalive the connection is closed after
 *   1.5 × keepalive seconds without a packet [MQTT-3.1.2-24] (the transport keeps that timer).
 */
export interface DeviceSessionHooks {
  send(packet: mqttPacket.Packet): void;
  /**
   * Close the connection once what was sent is written; `reason` says why (for the debug log),
   * undefined on DISCONNECT and on a CONNECT refused as server unavailable (the transport said why).
   */
  close(reason: string | undefined): void;
  /**
   * A CONNECT arrived: its client id, username and password (the transport attests them). Returns
   * the CONNACK return code: 0 accepted; 3 (server unavailable) when the server cannot serve it now
   * (its store could not be read); 5 (not authorized) when it names no registration. The session
   * answers a refusal with that CONNACK and ends the connection.
   */
  connected(connect: mqttPacket.IConnectPacket): ConnectReturnCode;
  /** A request on a DPS request topic; answer it with `DeviceSession.reply`. */
  request(topic: string, payload: Buffer): void;
}

/** The MQTT 3.1.1 CONNACK return codes used here. */
export const CONNECTION_ACCEPTED = 0;
const UNACCEPTABLE_PROTOCOL_VERSION = 1;
export const SERVER_UNAVAILABLE = 3;
export const NOT_AUTHORIZED = 5;
/** What `DeviceSessionHooks.connected` answers a CONNECT with. */
export type ConnectReturnCode = typeof CONNECTION_ACCEPTED | typeof SERVER_UNAVAILABLE | typeof NOT_AUTHORIZED;
/** Granted QoS in a SUBACK for a refused filter. */
const SUBSCRIPTION_REFUSED = 0x80;

export class DeviceSession {
  #state: 'connecting' | 'connected' | 'closed' = 'connecting';
  #nextMessageId = 0;
  /**
   * The QoS granted to the device's subscription to the response topics (the last one asked for;
   * 1 until it subscribes, as the SDKs do): answers go at it, since MQTT 3.1.1 delivers at most at
   * the granted QoS (3.8.4) and a device subscribing at QoS 0 sends no PUBACK.
   */
  #answerQos: 0 | 1 = 1;
  /** Seconds from the CONNECT; 0 when the device sends none (its connection's idle timeout applies). */
  keepaliveSeconds = 0;
  clientId = '';

  constructor(private readonly hooks: DeviceSessionHooks) {}

  get closed(): boolean {
    return this.#state === 'closed';
  }

  /** Feeds one decoded packet. */
  packet(packet: mqttPacket.Packet): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'connecting') {
      if (packet.cmd === 'connect') this.#connect(packet);
      else this.#close(`sent ${packet.cmd.toUpperCase()} before CONNECT`);
      return;
    }
    switch (packet.cmd) {
      case 'publish':
        this.#publish(packet);
        break;
      case 'subscribe': {
        const granted = packet.subscriptions.map((s) =>
          s.topic === RESPONSE_FILTER ? (Math.min(s.qos, 1) as 0 | 1) : SUBSCRIPTION_REFUSED,
        );
        for (const qos of granted) if (qos !== SUBSCRIPTION_REFUSED) this.#answerQos = qos;
        this.hooks.send({ cmd: 'suback', messageId: packet.messageId, granted });
        break;
      }
      case 'unsubscribe':
        this.hooks.send({ cmd: 'unsuback', messageId: packet.messageId, granted: [] });
        break;
      case 'pingreq':
        this.hooks.send({ cmd: 'pingresp' });
        break;
      case 'pubrel':
        this.hooks.send({ cmd: 'pubcomp', messageId: packet.messageId });
        break;
      case 'puback':
      case 'pubrec':
      case 'pubcomp':
        // Answers are sent at QoS 1 once: no session outlives its connection, so none is resent.
        break;
      case 'disconnect':
        this.#state = 'closed';
        this.hooks.close(undefined);
        break;
      case 'connect':
        this.#close('sent a second CONNECT');
        break;
      default:
        this.#close(`sent ${packet.cmd.toUpperCase()}, which a client does not send`);
    }
  }

  /** Sends an answer on a response topic at QoS 1 (as the SDKs subscribe), unless the session has ended. */
  reply(topic: string, payload: Buffer | string): void {
    if (this.#state !== 'connected') return;
    if (this.#answerQos === 0) {
      // Subscribed at QoS 0: delivered at QoS 0, without a packet id.
      this.hooks.send({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false });
      return;
    }
    // Packet ids 1…65535, reused in turn; a device never has that many answers outstanding.
    this.#nextMessageId = (this.#nextMessageId % 65535) + 1;
    this.hooks.send({
      cmd: 'publish',
      topic,
      payload,
      qos: 1,
      messageId: this.#nextMessageId,
      retain: false,
      dup: false,
    });
  }

  /** The connection ended (or the transport closed it): later replies are dropped. */
  ended(): void {
    this.#state = 'closed';
  }

  #connect(packet: mqttPacket.IConnectPacket): void {
    const version = packet.protocolVersion ?? 4;
    if (version !== 3 && version !== 4) {
      this.hooks.send({ cmd: 'connack', returnCode: UNACCEPTABLE_PROTOCOL_VERSION, sessionPresent: false });
      this.#close(`spoke MQTT protocol level ${version}; DPS serves 3.1.1 (level 4)`);
      return;
    }
    this.#state = 'connected';
    this.clientId = packet.clientId;
    this.keepaliveSeconds = packet.keepalive ?? 0;
    const returnCode = this.hooks.connected(packet);
    if (returnCode !== CONNECTION_ACCEPTED) {
      // Closed with no reason of the session's: the transport logged why.
      this.hooks.send({ cmd: 'connack', returnCode, sessionPresent: false });
      this.#state = 'closed';
      this.hooks.close(undefined);
      return;
    }
    this.hooks.send({ cmd: 'connack', returnCode: CONNECTION_ACCEPTED, sessionPresent: false });
  }

  #publish(packet: mqttPacket.IPublishPacket): void {
    if (!isDeviceRequestTopic(packet.topic)) {
      this.#close(`published on ${clip(packet.topic)}, which is not a DPS device request topic`);
      return;
    }
    if (packet.qos === 1) this.hooks.send({ cmd: 'puback', messageId: packet.messageId });
    else if (packet.qos === 2) this.hooks.send({ cmd: 'pubrec', messageId: packet.messageId });
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload, 'utf8') : packet.payload;
    this.hooks.request(packet.topic, payload);
  }

  #close(reason: string): void {
    this.#state = 'closed';
    this.hooks.close(reason);
  }
}
