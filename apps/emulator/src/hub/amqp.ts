import { randomUUID } from 'node:crypto';
import { parseSasToken } from '@dpskit/contracts';
import type { EventContext, Message, Receiver, Sender } from 'rhea';
import { clip } from '../core/client-text.js';
import { resourceCovers } from '../core/service-auth.js';
import type { AmqpHubConnection, AmqpHubSeam } from '../transport/amqp.js';
import { C2dConnectionShare } from './amqp-device-c2d-share.js';
import { eventHubName, parseSasRootUser } from './core/eventhub.js';
import type { EventHubService } from './core/eventhub-service.js';
import { type ExpiryTimer, expiryTimer } from './core/expiry-timer.js';
import type { HubService } from './core/hub-service.js';
import { moduleKey, splitIdentityKey } from './core/modules.js';
import { closesConnection, type HubPush } from './core/pushes.js';

/** The claims-based-security node: the client's put-token requests and their answers (both links' address). */
export const CBS_ADDRESS = '$cbs';
/** The token type azure-iot-amqp-base (and the C and C# SDKs) send in a put-token request. */
export const CBS_SAS_TOKEN_TYPE = 'servicebus.windows.net:sastoken';
/**
 * Event Hubs audiences a connection keeps tokens for: the SDK puts one per link (a management link
 * and a partition's), so a consumer of every partition of two hubs needs 10.
 */
const MAX_EVENT_HUB_GRANTS = 64;
/** The longest put-token audience read (a hub host name and a device id, with room). */
const MAX_AUDIENCE_LENGTH = 512;

/** What a connection's CBS put-tokens authorized: a device's token (`sr={hub}/devices/{id}`) or a service policy's (`sr={hub}`). */
export type HubAmqpAuthorization =
  | {
      kind: 'device';
      hub: string;
      deviceId: string;
      /** With a shared store: the `seq` of the `connected` push this connection wrote (see HubService.setConnected). */
      connectedSeq?: number;
    }
  /**
   * A policy's token with ServiceConnect (a put-token `sr={hub}`, or SASL PLAIN
   * `{policy}@sas.root.{hub}`): `resource` is its `sr` (decoded, no scheme, lower case), the prefix
   * by segment of what its links may reach (`service(path)`).
   */
  | { kind: 'service'; hub: string; policy: string; resource: string }
  /**
   * A token for a hub's Event Hubs-compatible endpoint (`sr=sb://{host}/{eventHubName}…`,
   * ServiceConnect), one per audience (`EventHubGrant`: a link reads while one covering its address
   * has not expired; a put-token for the same audience renews it).
   */
  | { kind: 'eventhub'; hub: string; entity: string; audience: string; expiresAt: number };

/**
 * One hub AMQP connection as the endpoints see it: the listener's connection (credit, bounded
 * sends, close) and what its put-tokens authorized. An endpoint that takes a link registers the
 * link's handlers here: rhea reports every link's messages and closes on the connection, and the
 * hub module hands each to the handler of its link.
 */
export interface HubAmqpConnectionContext {
  readonly amqp: AmqpHubConnection;
  /** Names this connection in the registry's record of a device's connection (`HubService.setConnected`). */
  readonly name: string;
  /** The identities the connection's put-tokens authorized, in order. */
  authorizations(): readonly HubAmqpAuthorization[];
  /** The device identity authorized for `deviceId` (case-sensitive, as IoT Hub's ids), if any. */
  device(deviceId: string): Extract<HubAmqpAuthorization, { kind: 'device' }> | undefined;
  /**
   * Authorizes `deviceId` (a device id, or a module's moduleKey `{deviceId}/{moduleId}`) by the TLS
   * client certificate (an X.509 device or module: azure-iot-device-amqp sends no put-token): on
   * the hub the OPEN names, else on the hub that has the device, its thumbprint checked as over
   * MQTT. Undefined (logged and reported) when refused or without a certificate.
   */
  authorizeCertificate(deviceId: string): Extract<HubAmqpAuthorization, { kind: 'device' }> | undefined;
  /**
   * The service authorization (a policy token with ServiceConnect) whose `sr` reaches `{hub}/{path}`
   * (`path`: the link's address without a leading slash, `messages/devicebound`), if any.
   */
  service(path: string): Extract<HubAmqpAuthorization, { kind: 'service' }> | undefined;
  /** Hands `receiver`'s messages to `handler` (it settles each and grants credit for the next). */
  onMessage(receiver: Receiver, handler: (context: EventContext & { message: Message }) => void): void;
  /** Calls `handler` once when `link` closes (detached by either side, or the connection gone). */
  onClose(link: Sender | Receiver, handler: () => void): void;
  /**
   * Records `link` as `deviceId`'s (a device id or moduleKey): `endDevice` detaches it when that
   * device leaves a connection that carries others too.
   */
  own(link: Sender | Receiver, deviceId: string): void;
  /**
   * Calls `handler` once when `deviceId` leaves the connection: its part ended (`endDevice`) while
   * the connection stays, or the connection gone.
   */
  onLeave(deviceId: string, handler: () => void): void;
  /**
   * Ends `deviceId`'s part of the connection (deleted, disabled, connected again elsewhere, its
   * token expired): alone on the connection, the connection is closed with `error`; on one that
   * carries other identities too (several devices multiplexed on it, as the C and Java SDKs do),
   * only its links are detached with `error` and its authorization forgotten, as IoT Hub drops one
   * device's session and leaves the others (azure-iot-sdk-java's MultiplexingClientTests
   * `disableDeviceAfterOpenAndAfterRegistration`).
   */
  endDevice(deviceId: string, error: { condition: string; description: string }): void;
  /** The cloud-to-device deliveries the connection holds unsettled, shared by its devices' links. */
  readonly c2d: C2dConnectionShare;
}

/**
 * A hub AMQP endpoint (the device API, the service API): `attach` is offered every link a
 * connection attaches that is not CBS's, with its address (the client's target for a link where
 * it sends, its source for one where it receives). It takes the link (registers its handlers,
 * grants credit) and returns true, or returns false to leave it to the next endpoint; a link no
 * endpoint takes is refused (`amqp:not-found`).
 */
export interface HubAmqpEndpoint {
  attach(link: Sender | Receiver, address: string, context: HubAmqpConnectionContext): boolean;
}

export interface HubAmqp extends AmqpHubSeam {
  /** Adds an endpoint (the device API is the first; the service API's plugs in here). */
  addEndpoint(endpoint: HubAmqpEndpoint): void;
  /**
   * A push from another process (`--workers`: the store's push table, `seq` its place there):
   * one that ends a device's connection (deleted, disabled, connected again elsewhere) closes the
   * device's connections here. This process's own pushes come from HubService.subscribePushes.
   */
  deliver(push: HubPush, seq?: number): void;
  close(): void;
}

/** The answer to a put-token: IoT Hub's `status-code` and `status-description` application properties. */
interface PutTokenAnswer {
  status: number;
  description: string;
}

/**
 * IoT Hub's AMQP endpoint for the emulated hubs, on the listener the DPS AMQP API shares (TLS 5671
 * and `wss://…/$iothub/websocket`; transport/amqp.ts tells the connections apart and hands the
 * hubs' here). A client authenticates with a CBS put-token on `$cbs` (azure-iot-amqp-base's
 * ClaimsBasedSecurityAgent: application properties `operation: put-token`, `type`, `name` the
 * audience, the SAS token as the body, answered with the request's `message_id` as
 * `correlation_id` and `status-code`/`status-description`): a device token (`sr={hub}/devices/{id}`,
 * checked as over MQTT) or a service policy's (`sr={hub}`, `skn=…` with ServiceConnect). Every other
 * link goes to the endpoints (`addEndpoint`), which check the connection's authorizations.
 */
export function createHubAmqp(
  hub: HubService,
  options: {
    /** The hubs' Event Hubs-compatible built-in endpoints (their links, on the same listener). */
    eventHubs?: EventHubService;
    /**
     * Called when the first device is authorized here and when the last one's connection ends:
     * with `--workers`, the other workers' pushes (desired properties, method calls, messages, a
     * newer connection of the device) are followed while it is true.
     */
    onDevicesConnected?: (any: boolean) => void;
  } = {},
): HubAmqp {
  const { eventHubs } = options;
  const endpoints: HubAmqpEndpoint[] = [];
  /** The connections authorized for each device (`{hub lower-case}/{deviceId}`), links or not. */
  const byDevice = new Map<string, Set<HubAmqpConnectionContext>>();
  const keyOf = (hubName: string, deviceId: string) => `${hubName.toLowerCase()}/${deviceId}`;

  /**
   * IoT Hub ends a device's connection when its identity is deleted or disabled, or when the
   * device connects again (it keeps one connection per device, the newer, whatever the transport:
   * MQTT's 400027 ConnectionForcefullyClosedOnNewConnection). A `connected` push of this process
   * names the newer connection; one of another process is newer than a connection here when it
   * came after this connection's own (`connectedSeq`); a connection that has not yet written its
   * own will write it after, so it is the newer and stays.
   */
  const deliver = (push: HubPush, seq?: number) => {
    if (!closesConnection(push)) return;
    for (const context of [...(byDevice.get(keyOf(push.hub, push.deviceId)) ?? [])]) {
      if (push.kind === 'connected') {
        if (seq === undefined) {
          if (push.connection === undefined || push.connection === context.name) continue;
        } else {
          const mine = context.device(push.deviceId)?.connectedSeq;
          if (mine === undefined || mine > seq) continue;
        }
      }
      context.amqp.log.debug('hub.amqp', `${clip(push.deviceId)} on ${push.hub}: connection ended (${push.kind})`, {
        hub: push.hub,
        deviceId: clip(push.deviceId),
        reason: push.kind,
      });
      context.endDevice(push.deviceId, {
        condition: 'amqp:unauthorized-access',
        description:
          push.kind === 'connected'
            ? 'The device connected again on another connection.'
            : `The device was ${push.kind === 'deleted' ? 'deleted' : 'disabled'}.`,
      });
    }
  };
  const unsubscribe = hub.subscribePushes((push) => deliver(push));

  const accept = (amqp: AmqpHubConnection) => {
    const { connection, peer, transport, log } = amqp;
    const authorizations: HubAmqpAuthorization[] = [];
    // SASL PLAIN `{policy}@sas.root.{hub name}`, checked in its SASL (authorizeSaslPlain): a service
    // connection for what its token's sr reaches, as a put-token of one makes it.
    // SASL PLAIN carries one token for the connection's life: "When the token expires, the TCP
    // connection disconnects from the service" (azure-docs iot-hub-dev-guide-sas, Special
    // considerations for SASL PLAIN).
    let saslExpiry: ExpiryTimer | undefined;
    /**
     * A service put-token's (one per hub: its audience and sr are the hub) runs out at its se unless
     * a later one renews it (azure-iothub's Amqp puts a new one every 45 minutes): the connection is
     * closed then, as a lone device's and a SASL PLAIN connection's are (the emulator's choice: IoT
     * Hub documents only that it severs a connection whose token expired).
     */
    const serviceExpiries = new Map<string, ExpiryTimer>();
    const expireService = (hubName: string, expiresAt: number) => {
      serviceExpiries.get(hubName)?.cancel();
      serviceExpiries.set(
        hubName,
        expiryTimer(expiresAt * 1000, () => {
          log.debug(
            'hub.auth',
            `${peer} (${transport}): the service token of ${hubName} expired unrenewed; connection closed`,
            {
              hub: hubName,
              reason: 'expired',
            },
          );
          amqp.close({
            condition: 'amqp:unauthorized-access',
            description: `The service's SAS token for ${hubName} expired: put a new one on $cbs before it does.`,
          });
        }),
      );
    };
    if (amqp.saslPlain) {
      const grant = amqp.saslPlain;
      const hubName = grant.hub;
      // A device's is authorized below, once `authorize` is (it marks the device Connected).
      if (grant.kind === 'service')
        authorizations.push({ kind: 'service', hub: hubName, policy: grant.policy, resource: grant.resource });
      saslExpiry = expiryTimer(grant.expiresAt * 1000, () => {
        log.debug('hub.auth', `${peer} (${transport}): the SASL PLAIN token of ${hubName} expired; connection closed`, {
          hub: hubName,
          reason: 'expired',
        });
        amqp.close({
          condition: 'amqp:unauthorized-access',
          description: 'The SAS token of the connection (SASL PLAIN) expired: connect again with a new one.',
        });
      });
    }
    const messageHandlers = new Map<Receiver, (context: EventContext & { message: Message }) => void>();
    const closeHandlers = new Map<Sender | Receiver, () => void>();
    /** The device (or module) each of the connection's open device links is of (`own`). */
    const owners = new Map<Sender | Receiver, string>();
    const leaveHandlers = new Map<string, (() => void)[]>();
    let cbsReplies: Sender | undefined;
    const context: HubAmqpConnectionContext = {
      amqp,
      name: randomUUID(),
      authorizations: () => authorizations,
      device: (deviceId) =>
        authorizations.find(
          (a): a is Extract<HubAmqpAuthorization, { kind: 'device' }> => a.kind === 'device' && a.deviceId === deviceId,
        ),
      service: (path) =>
        authorizations.find(
          (a): a is Extract<HubAmqpAuthorization, { kind: 'service' }> =>
            a.kind === 'service' && resourceCovers(a.resource, `${a.hub}/${path.replace(/^\/+/, '')}`),
        ),
      authorizeCertificate: (deviceId) => byCertificate(deviceId),
      onMessage: (receiver, handler) => messageHandlers.set(receiver, handler),
      onClose: (link, handler) => closeHandlers.set(link, handler),
      own: (link, deviceId) => owners.set(link, deviceId),
      onLeave: (deviceId, handler) => {
        const handlers = leaveHandlers.get(deviceId);
        if (handlers) handlers.push(handler);
        else leaveHandlers.set(deviceId, [handler]);
      },
      endDevice: (deviceId, error) => endDevice(deviceId, error),
      c2d: new C2dConnectionShare(),
    };
    const who = (deviceId?: string) => `${peer} (${transport}${deviceId ? `, ${clip(deviceId)}` : ''})`;

    /** Checks a put-token's token for `audience`; records what it authorizes. */
    const putToken = (audience: string, token: string | undefined): PutTokenAnswer => {
      // @azure/event-hubs' audiences: `sb://{host}/{eventHubName}/…` (its connection string's Endpoint).
      if (eventHubs && /^sb:\/\//i.test(audience)) return putEventHubToken(eventHubs, audience, token);
      // The SDKs send the token's `sr`, URL-encoded as a whole (`{hub}%2Fdevices%2F{id}`).
      const [hubPart = '', ...rest] = decoded(audience)
        .replace(/^amqps?:\/\//i, '')
        .split('/');
      const hubName = hub.hubNamed(hubPart);
      if (!hubName) {
        const deviceId = rest[0] === 'devices' ? clip(rest[1] ?? '') : '';
        log.debug('hub.auth', `${who(deviceId)}: put-token for "${clip(audience)}": unknown-hub`, {
          hub: clip(hubPart),
          deviceId,
          reason: 'unknown-hub',
        });
        hub.reportRefused(clip(hubPart), deviceId, 'amqp', 'unknown-hub');
        return { status: 404, description: `The audience "${clip(audience)}" names no emulated hub.` };
      }
      if (rest.length === 0 || (rest.length === 1 && rest[0] === '')) {
        const result = hub.authorizeRegistry(hubName, token, 'ServiceConnect');
        if (!result.ok) {
          log.debug('hub.auth', `${who()}: service put-token for ${hubName}: ${result.reason} (${result.detail})`, {
            hub: hubName,
            reason: result.reason,
          });
          return { status: 401, description: 'Unauthorized' };
        }
        if (!authorizations.some((a) => a.kind === 'service' && a.resource === result.resource)) {
          authorizations.push({ kind: 'service', hub: hubName, policy: result.policy, resource: result.resource });
        }
        expireService(hubName, result.expiresAt);
        return { status: 200, description: 'OK' };
      }
      // A device's audience `{hub}/devices/{id}`, a module's `{hub}/devices/{id}/modules/{moduleId}`.
      const moduleId = rest.length === 4 && rest[2] === 'modules' && rest[3] ? rest[3] : undefined;
      if (rest[0] !== 'devices' || !rest[1] || (rest.length !== 2 && moduleId === undefined)) {
        const deviceId = rest[0] === 'devices' ? (rest[1] ?? '') : '';
        log.debug('hub.auth', `${who(deviceId)}: put-token for "${clip(audience)}": malformed`, {
          reason: 'malformed',
        });
        hub.reportRefused(hubName, clip(deviceId), 'amqp', 'malformed');
        return {
          status: 401,
          description: `The audience "${clip(audience)}" is neither {hub}, {hub}/devices/{deviceId} nor {hub}/devices/{deviceId}/modules/{moduleId}.`,
        };
      }
      const deviceId = rest[1];
      const auth = hub.authenticateDevice({
        hub: hubName,
        deviceId,
        ...(moduleId !== undefined ? { moduleId } : {}),
        token,
      });
      // A module is authorized under its moduleKey (`{deviceId}/{moduleId}`), the name its links use.
      const key = moduleId === undefined ? deviceId : moduleKey(deviceId, moduleId);
      if (!auth.ok) {
        log.debug('hub.auth', `${clip(key)} on ${hubName} over AMQP: ${auth.reason} (${auth.detail})`, {
          hub: hubName,
          deviceId: clip(deviceId),
          ...(moduleId !== undefined ? { moduleId: clip(moduleId) } : {}),
          reason: auth.reason,
        });
        hub.reportRefused(hubName, key, 'amqp', auth.reason);
        return { status: 401, description: putTokenRefusal(auth.reason) };
      }
      const authorized = auth.moduleId === undefined ? auth.deviceId : moduleKey(auth.deviceId, auth.moduleId);
      if (!context.device(authorized)) authorize(auth.hub, authorized);
      expireWith(authorized, auth.tokenExpiresAt, token);
      return { status: 200, description: 'OK' };
    };

    /** Checks a token for an Event Hubs audience; records the hub whose endpoint it opens. */
    const putEventHubToken = (
      endpoint: EventHubService,
      audience: string,
      token: string | undefined,
    ): PutTokenAnswer => {
      const result = endpoint.authorize(audience, token);
      if (!result.ok) {
        log.debug('hub.auth', `${who()}: put-token for "${clip(audience)}": ${result.reason} (${result.detail})`, {
          reason: result.reason,
        });
        return result.reason === 'unknown-entity'
          ? { status: 404, description: `The messaging entity '${clip(audience)}' could not be found.` }
          : result.reason === 'expired'
            ? { status: 401, description: expiredTokenDescription(token) }
            : { status: 401, description: 'Unauthorized' };
      }
      const renewed = authorizations.find(
        (a): a is Extract<HubAmqpAuthorization, { kind: 'eventhub' }> =>
          a.kind === 'eventhub' && a.audience === audience,
      );
      if (renewed) renewed.expiresAt = Math.max(renewed.expiresAt, result.expiresAt);
      else {
        // Bounded: past MAX_EVENT_HUB_GRANTS audiences the one that expires first goes.
        const grants = authorizations.filter((a) => a.kind === 'eventhub');
        if (grants.length >= MAX_EVENT_HUB_GRANTS) {
          const first = grants.reduce((a, b) => (a.expiresAt <= b.expiresAt ? a : b));
          authorizations.splice(authorizations.indexOf(first), 1);
        }
        authorizations.push({
          kind: 'eventhub',
          hub: result.hub,
          entity: result.entity,
          audience,
          expiresAt: result.expiresAt,
        });
      }
      return { status: 200, description: 'OK' };
    };

    /** A device authorized on this connection: recorded, and Connected in the registry. */
    const authorize = (hubName: string, deviceId: string) => {
      const authorization: Extract<HubAmqpAuthorization, { kind: 'device' }> = {
        kind: 'device',
        hub: hubName,
        deviceId,
      };
      authorizations.push(authorization);
      const key = keyOf(hubName, deviceId);
      byDevice.set(key, (byDevice.get(key) ?? new Set()).add(context));
      if (byDevice.size === 1) options.onDevicesConnected?.(true);
      try {
        const seq = hub.setConnected(hubName, deviceId, true, 'amqp', context.name);
        if (seq !== undefined) authorization.connectedSeq = seq;
      } catch (err) {
        log.error('hub.amqp', `${who(deviceId)}: connection state not stored: ${(err as Error).message}`);
      }
      return authorization;
    };

    /** `name`: the device id, or a module's moduleKey (`{deviceId}/{moduleId}`), its links' address names it so. */
    const byCertificate = (name: string) => {
      const { clientCertificates } = amqp;
      if (clientCertificates.length === 0) return undefined;
      const { deviceId, moduleId } = splitIdentityKey(name);
      const named = hub.hubNamed(amqp.hostname);
      let refusal: { hub: string; reason: string; detail: string } | undefined;
      for (const hubName of named ? [named] : hub.hubs) {
        const auth = hub.authenticateDevice({
          hub: hubName,
          deviceId,
          ...(moduleId !== undefined ? { moduleId } : {}),
          token: undefined,
          clientCertificates,
        });
        if (auth.ok) {
          const key = auth.moduleId === undefined ? auth.deviceId : moduleKey(auth.deviceId, auth.moduleId);
          return context.device(key) ?? authorize(auth.hub, key);
        }
        // The most telling refusal: the hub that has the device over one that has not.
        if (!refusal || refusal.reason === 'device-not-found') refusal = { hub: hubName, ...auth };
      }
      if (refusal) {
        log.debug('hub.auth', `${clip(name)} on ${refusal.hub} over AMQP: ${refusal.reason} (${refusal.detail})`, {
          hub: refusal.hub,
          deviceId: clip(deviceId),
          ...(moduleId !== undefined ? { moduleId: clip(moduleId) } : {}),
          reason: refusal.reason,
        });
        hub.reportRefused(refusal.hub, name, 'amqp', refusal.reason);
      }
      return undefined;
    };

    /**
     * A device's token on this connection runs out at its `se`: IoT Hub ends a connection whose
     * token expired unrenewed (azure-iot-amqp-base puts a new one before: `tokenRenewal`), so the
     * connection is closed then, unless a later put-token for the device moved the expiry on.
     */
    const expiries = new Map<string, ExpiryTimer>();
    const expireWith = (deviceId: string, verifiedExpiresAt: number | undefined, token: string | undefined) => {
      // The `se` authenticateDevice verified; parsed here only for a device its certificate
      // authenticated that put a token too (whose expiry ends it, as before).
      let expiresAtMs: number;
      try {
        expiresAtMs = (verifiedExpiresAt ?? parseSasToken(token ?? '').expiresAt) * 1000;
      } catch {
        return; // no token's expiry to keep
      }
      expiries.get(deviceId)?.cancel();
      // However far ahead (a token valid for a year: beyond setTimeout's ~24.8 days), by the wall clock.
      const timer = expiryTimer(expiresAtMs, () => {
        expiries.delete(deviceId);
        log.debug('hub.auth', `${who(deviceId)}: the device's SAS token expired unrenewed; its part ended`, {
          deviceId: clip(deviceId),
          reason: 'expired',
        });
        endDevice(deviceId, {
          condition: 'amqp:unauthorized-access',
          description: `The SAS token of device ${clip(deviceId)} expired: put a new one on $cbs before it does.`,
        });
      });
      expiries.set(deviceId, timer);
    };

    const onCbsRequest = (receiver: Receiver, ctx: EventContext & { message: Message }) => {
      const { message, delivery } = ctx;
      const properties = (message.application_properties ?? {}) as Record<string, unknown>;
      const answer = ((): PutTokenAnswer => {
        if (properties.operation !== 'put-token')
          return {
            status: 400,
            description: `The CBS operation "${clip(String(properties.operation))}" is not put-token.`,
          };
        if (properties.type !== CBS_SAS_TOKEN_TYPE && properties.type !== 'azure-devices.net:sastoken')
          return {
            status: 400,
            description: `The token type "${clip(String(properties.type))}" is not ${CBS_SAS_TOKEN_TYPE}.`,
          };
        const audience = properties.name;
        if (typeof audience !== 'string' || audience.length === 0 || audience.length > MAX_AUDIENCE_LENGTH)
          return { status: 400, description: 'The put-token request names no audience (application property name).' };
        return putToken(audience, tokenOf(message.body));
      })();
      delivery?.accept();
      amqp.grantCredit(receiver, 1);
      if (!cbsReplies?.is_open()) {
        log.debug('hub.amqp', `${who()}: a put-token with no ${CBS_ADDRESS} receiver link to answer on; not answered`);
        return;
      }
      amqp.send(cbsReplies, {
        correlation_id: message.message_id,
        application_properties: { 'status-code': answer.status, 'status-description': answer.description },
      });
    };

    connection.on('receiver_open', (ctx: EventContext) => {
      const receiver = ctx.receiver;
      if (!receiver) return;
      const address = receiver.target?.address ?? '';
      if (address === CBS_ADDRESS) {
        context.onMessage(receiver, (message) => onCbsRequest(receiver, message));
        amqp.grantCredit(receiver, 1);
        return;
      }
      offer(receiver, address);
    });
    connection.on('sender_open', (ctx: EventContext) => {
      const sender = ctx.sender;
      if (!sender) return;
      const address = sender.source?.address ?? '';
      if (address === CBS_ADDRESS) {
        cbsReplies = sender;
        return;
      }
      offer(sender, address);
    });

    /** A link that is not CBS's: to the first endpoint that takes it, else refused. */
    const offer = (link: Sender | Receiver, address: string) => {
      for (const endpoint of endpoints) if (endpoint.attach(link, address, context)) return;
      log.debug('hub.amqp', `${who()}: a link on "${clip(address)}", which no hub endpoint serves; refused`);
      link.close({
        condition: 'amqp:not-found',
        description: `The address "${clip(address)}" is not served by the emulated hub.`,
      });
    };

    connection.on('message', (ctx: EventContext) => {
      const handler = ctx.receiver ? messageHandlers.get(ctx.receiver) : undefined;
      if (handler && ctx.message) handler(ctx as EventContext & { message: Message });
      else ctx.delivery?.reject({ condition: 'amqp:not-allowed', description: 'No endpoint takes this link.' });
    });
    const closed = (link: Sender | Receiver | undefined) => {
      if (!link) return;
      owners.delete(link);
      messageHandlers.delete(link as Receiver);
      const handler = closeHandlers.get(link);
      closeHandlers.delete(link);
      if (link === cbsReplies) cbsReplies = undefined;
      handler?.();
    };
    connection.on('receiver_close', (ctx: EventContext) => closed(ctx.receiver));
    connection.on('sender_close', (ctx: EventContext) => closed(ctx.sender));
    // The connection's end, once: rhea emits `disconnected` only for a socket that ended without
    // the CLOSE exchange; a client that closes properly (the SDKs' close()) gives connection_close.
    let ended = false;
    /** A device authorization gone from the connection: out of byDevice, Disconnected, its leave handlers run. */
    const left = (authorization: Extract<HubAmqpAuthorization, { kind: 'device' }>) => {
      const key = keyOf(authorization.hub, authorization.deviceId);
      const contexts = byDevice.get(key);
      contexts?.delete(context);
      if (contexts?.size === 0 && byDevice.delete(key) && byDevice.size === 0) options.onDevicesConnected?.(false);
      try {
        hub.setConnected(authorization.hub, authorization.deviceId, false, 'amqp', context.name);
      } catch (err) {
        log.error('hub.amqp', `${who(authorization.deviceId)}: disconnection not stored: ${(err as Error).message}`);
      }
      const handlers = leaveHandlers.get(authorization.deviceId) ?? [];
      leaveHandlers.delete(authorization.deviceId);
      for (const handler of handlers) handler();
    };
    const endDevice = (deviceId: string, error: { condition: string; description: string }) => {
      if (ended) return;
      const index = authorizations.findIndex((a) => a.kind === 'device' && a.deviceId === deviceId);
      const authorization = authorizations[index];
      if (authorization?.kind !== 'device') return;
      // Alone on the connection (the SDKs' one device per connection): the connection goes, as before.
      if (authorizations.length === 1) {
        amqp.close(error);
        return;
      }
      authorizations.splice(index, 1);
      expiries.get(deviceId)?.cancel();
      expiries.delete(deviceId);
      // Its links detached with the error (their close handlers run now: a client that never
      // answers the DETACH does not keep its messages locked), the other identities' left alone.
      for (const [link, owner] of [...owners]) {
        if (owner !== deviceId) continue;
        link.close(error);
        closed(link);
      }
      left(authorization);
    };
    const end = () => {
      if (ended) return;
      ended = true;
      saslExpiry?.cancel();
      for (const timer of serviceExpiries.values()) timer.cancel();
      for (const timer of expiries.values()) timer.cancel();
      expiries.clear();
      for (const link of [...closeHandlers.keys()]) closed(link);
      for (const authorization of authorizations) if (authorization.kind === 'device') left(authorization);
      // Leave handlers of links whose device was never authorized here cannot be: own follows authorization.
      leaveHandlers.clear();
    };
    connection.on('connection_close', end);
    connection.on('disconnected', end);
    // SASL PLAIN `{deviceId}@sas.{hub}`: the device is authorized for the connection, as a put-token makes it.
    if (amqp.saslPlain?.kind === 'device') authorize(amqp.saslPlain.hub, amqp.saslPlain.deviceId);
  };

  /** The hub whose name (its host's first label, without case) a SASL PLAIN username gives, if any. */
  const hubNamed = (name: string) => hub.hubs.find((h) => eventHubName(h).toLowerCase() === name.toLowerCase());
  /** The hub a `{policy}@sas.root.{hub name}` username names, if one of the hubs is so named. */
  const sasRootHub = (username: string) => {
    const parsed = parseSasRootUser(username);
    return parsed ? hubNamed(parsed.hubName) : undefined;
  };

  /** The hub and device a `{deviceId}@sas.{hub name}` username names, if one of the hubs is so named. */
  const sasDevice = (username: string) => {
    const match = /^([^/]{1,128})@sas\.([a-z0-9-]{1,64})$/i.exec(username);
    const name = match?.[2];
    const hubName = name === undefined ? undefined : hubNamed(name);
    return hubName && match?.[1] ? { hub: hubName, deviceId: match[1] } : undefined;
  };

  /**
   * A hub SASL PLAIN username's token: `{deviceId}@sas.{hub name}`, the device's (as its put-token
   * is checked: its own key, or a policy's with DeviceConnect); `{policy}@sas.root.{hub name}`, the
   * policy named, ServiceConnect, `sr` the hub or under it.
   */
  const authorizeSaslPlain: AmqpHubSeam['authorizeSaslPlain'] = (username, password) => {
    const device = sasDevice(username);
    if (device) {
      const auth = hub.authenticateDevice({ hub: device.hub, deviceId: device.deviceId, token: password });
      if (!auth.ok) {
        hub.reportRefused(device.hub, clip(device.deviceId), 'amqp', auth.reason);
        return { ok: false, hub: device.hub, reason: auth.reason, detail: auth.detail };
      }
      return {
        ok: true,
        grant: {
          kind: 'device',
          hub: auth.hub,
          deviceId: auth.deviceId,
          expiresAt: auth.tokenExpiresAt ?? parseSasToken(password).expiresAt,
        },
      };
    }
    const hubName = sasRootHub(username);
    const policy = parseSasRootUser(username)?.policy ?? '';
    if (!hubName) return { ok: false, reason: 'unknown-hub', detail: 'the username names no emulated hub' };
    const result = hub.authorizeUnderHub(hubName, password, 'ServiceConnect');
    if (!result.ok) return { ok: false, hub: hubName, reason: result.reason, detail: result.detail };
    // The username names the policy whose key signs the password's token: a token of another is refused.
    if (result.policy.toLowerCase() !== policy.toLowerCase())
      return {
        ok: false,
        hub: hubName,
        reason: 'unknown-policy',
        detail: `the username names the policy "${clip(policy)}", the token "${result.policy}"`,
      };
    return {
      ok: true,
      grant: {
        kind: 'service',
        hub: hubName,
        policy: result.policy,
        resource: result.resource,
        expiresAt: result.expiresAt,
      },
    };
  };

  return {
    isHubHost: (hostname) => hub.hubNamed(hostname) !== undefined,
    takesSaslPlain: (username) => sasRootHub(username) !== undefined || sasDevice(username) !== undefined,
    authorizeSaslPlain,
    accept,
    addEndpoint: (endpoint) => {
      endpoints.push(endpoint);
    },
    deliver,
    close: unsubscribe,
  };
}

/** The SAS token of a put-token: an AMQP string (azure-iot-amqp-base) or a data section of UTF-8. */
function tokenOf(body: unknown): string | undefined {
  if (typeof body === 'string') return body;
  const content = (body as { content?: unknown } | undefined)?.content;
  if (Buffer.isBuffer(content)) return content.toString('utf8');
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  return undefined;
}

/** The audience percent-decoded (as given if it is not valid percent-encoding). */
function decoded(audience: string): string {
  try {
    return decodeURIComponent(audience);
  } catch {
    return audience;
  }
}

/**
 * A refused device put-token's `status-description`: IoT Hub's where known (the signature's, from
 * the C# SDK's log in azure-iot-sdk-csharp#886), else a sentence naming the cause, never the token.
 */
function putTokenRefusal(reason: string): string {
  switch (reason) {
    case 'signature-mismatch':
      return 'The specified SAS token has an invalid signature. It does not match either the primary or secondary key.';
    case 'expired':
      return 'The specified SAS token is expired.';
    case 'device-not-found':
      return 'The device is not registered in the hub.';
    case 'device-disabled':
      return 'The device is disabled.';
    case 'module-not-found':
      return 'The module is not registered on the device.';
    case 'unknown-policy':
      return 'The token names no shared access policy of the hub.';
    case 'missing-right':
      return 'The shared access policy of the token lacks the DeviceConnect permission.';
    default:
      return `Unauthorized (${reason}).`;
  }
}

/**
 * Event Hubs' put-token answer to an expired token, with its expiry as Service Bus writes it
 * ("ExpiredToken: The token is expired. Expiration time: '2019-04-11 21:12:56Z'", the status
 * description azure-service-bus-java#354 quotes).
 */
function expiredTokenDescription(token: string | undefined): string {
  let expiresAt: number;
  try {
    expiresAt = parseSasToken(token ?? '').expiresAt;
  } catch {
    return 'ExpiredToken: The token is expired.';
  }
  const time = new Date(expiresAt * 1000)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, 'Z');
  return `ExpiredToken: The token is expired. Expiration time: '${time}'`;
}
