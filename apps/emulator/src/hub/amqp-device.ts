import { decodeJson } from '@dpskit/contracts';
import rhea, { type EventContext, type Message, type Receiver, type Sender } from 'rhea';
import { clip } from '../core/client-text.js';
import type { HubAmqpConnectionContext, HubAmqpEndpoint } from './amqp.js';
import { attachC2dDeviceLink, type C2dDeviceLink } from './amqp-device-c2d.js';
import { HubError, type HubService, TwinError } from './core/hub-service.js';
import { MODULE_C2D_REFUSAL, moduleKey } from './core/modules.js';
import type { HubPush } from './core/pushes.js';
import { refuseOutOfRangeIntegers } from './core/twin.js';
import { twinErrorBody } from './mqtt.js';

/**
 * Messages a device may have unanswered on one of its links (telemetry it sent, twin requests):
 * the credit the hub grants, one more as each is settled. azure-iot-amqp-base sends while rhea's
 * link is sendable, so a burst of `sendEvent`s waits for credit rather than piling up here.
 */
export const DEVICE_LINK_CREDIT = 10;

/**
 * IoT Hub's device-to-cloud message limit, 256 KB (azure-docs iot-hub-devguide-quotas-throttling),
 * counted here as the body and the properties' names and values. The listener bounds a message's
 * transfer frames only roughly (all but its last frame, MAX_AMQP_MESSAGE_BYTES): a 300 KiB message
 * got through and was stored.
 */
export const MAX_DEVICE_TO_CLOUD_BYTES = 256 * 1024;

/**
 * The device and module addresses of azure-iot-common's `endpoint` (`/devices/{id}/…`, a module's
 * `/devices/{id}/modules/{moduleId}/…`; a module has no cloud-to-device link, see attach).
 */
const DEVICE_ADDRESS =
  /^\/devices\/([^/]+)(?:\/modules\/([^/]+))?\/(messages\/events|messages\/devicebound|twin|methods\/devicebound)$/;

/** IoT Hub's application property naming a direct method (azure-iot-device-amqp's `methodMessagePropertyKeys`). */
const METHOD_NAME_PROPERTY = 'IoThub-methodname';
const METHOD_STATUS_PROPERTY = 'IoThub-status';

/** A device's links on one connection. */
interface DeviceLinks {
  hub: string;
  deviceId: string;
  context: HubAmqpConnectionContext;
  twinReplies?: Sender;
  /** The device asked for desired-property updates (PUT /notifications/twin/properties/desired). */
  desired: boolean;
  methodRequests?: Sender;
  methodAnswers?: Receiver;
  /** The device's cloud-to-device link (the newest it attached on the connection). */
  c2d?: C2dDeviceLink;
}

export interface DeviceAmqpEndpoint extends HubAmqpEndpoint {
  /**
   * A push owed to a device (HubService.subscribePushes; `--workers`: the push table): desired
   * properties, a cloud-to-device message; those that end its connection are HubAmqp's.
   */
  deliver(push: HubPush): void;
  close(): void;
}

/**
 * IoT Hub's device API over AMQP as azure-iot-device-amqp speaks it, on the links of a connection
 * whose CBS put-token authorized the device (hub/amqp.ts): telemetry on
 * `/devices/{id}/messages/events`, the twin on `/devices/{id}/twin` (requests with the
 * `operation`/`resource` message annotations, answers with `status` and the request's
 * `correlation_id`, desired-property patches pushed without one), direct methods on
 * `/devices/{id}/methods/devicebound` (requests with `IoThub-methodname`, answers with
 * `IoThub-status`), cloud-to-device messages on `/devices/{id}/messages/devicebound`
 * (amqp-device-c2d.ts), all through the same core as MQTT (HubService, DirectMethods, the C2D queue).
 */
export function createDeviceAmqpEndpoint(hub: HubService): DeviceAmqpEndpoint {
  /** The devices' links, by `{hub}/{deviceId}` (hub lower-case): the newest connection's. */
  const held = new Map<string, DeviceLinks>();
  const keyOf = (hubName: string, deviceId: string) => `${hubName.toLowerCase()}/${deviceId}`;

  const linksOf = (context: HubAmqpConnectionContext, hubName: string, deviceId: string): DeviceLinks => {
    const key = keyOf(hubName, deviceId);
    const current = held.get(key);
    if (current?.context === context) return current;
    const links: DeviceLinks = { hub: hubName, deviceId, context, desired: false };
    held.set(key, links);
    context.onLeave(deviceId, () => {
      // The device's method calls sent on this connection end now (504101: it cannot answer them any more).
      hub.methods.connectionClosed(context.name, { hub: hubName, deviceId });
      if (held.get(key) === links) held.delete(key);
    });
    return links;
  };

  const unsubscribe = hub.subscribePushes((push) => deliver(push));

  const methods = hub.methods.attach({
    holds: (hubName, deviceId) => held.get(keyOf(hubName, deviceId))?.context.amqp.connection.is_open() === true,
    send(request) {
      const links = held.get(keyOf(request.hub, request.deviceId));
      const sender = links?.methodRequests;
      if (!links || !sender?.is_open() || !links.methodAnswers?.is_open()) return undefined;
      const sent = links.context.amqp.send(sender, {
        correlation_id: request.rid,
        application_properties: { [METHOD_NAME_PROPERTY]: request.methodName },
        body: rhea.message.data_section(Buffer.from(request.payloadJson, 'utf8')),
      });
      return sent ? links.context.name : undefined;
    },
  });

  const deliver = (push: HubPush) => {
    // The pushes that end a connection are hub/amqp.ts's (it holds every authorized connection).
    if (push.kind !== 'desired' && push.kind !== 'c2d') return;
    const links = held.get(keyOf(push.hub, push.deviceId));
    if (!links) return;
    // A message to deliver: sent if the device listens (its C2D link), else it waits in the queue.
    if (push.kind === 'c2d') {
      links.c2d?.pump();
      return;
    }
    if (push.kind === 'desired') {
      if (!links.desired || !links.twinReplies?.is_open()) return;
      links.context.amqp.send(links.twinReplies, {
        body: rhea.message.data_section(Buffer.from(JSON.stringify(push.desired), 'utf8')),
      });
    }
  };

  /** Telemetry: stored (as MQTT's, committed with the turn's writes) before its delivery is accepted. */
  const onTelemetry = (links: DeviceLinks, receiver: Receiver, ctx: EventContext & { message: Message }) => {
    const { message, delivery } = ctx;
    const { context } = links;
    const body = bodyBytes(message.body);
    const properties = telemetryProperties(message);
    const size =
      body.length +
      Object.entries(properties).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
    if (size > MAX_DEVICE_TO_CLOUD_BYTES) {
      // The link stays: IoT Hub refuses the message (the SDK's MessageTooLargeError), not the device.
      delivery?.reject({
        condition: 'amqp:link:message-size-exceeded',
        description: `The message is ${size} bytes (body and properties), over IoT Hub's ${MAX_DEVICE_TO_CLOUD_BYTES}-byte limit.`,
      });
      context.amqp.grantCredit(receiver, 1);
      return;
    }
    hub
      .receiveTelemetrySoon(links.hub, links.deviceId, { body, properties, transport: 'amqp' })
      .then(
        () => delivery?.accept(),
        (err: unknown) => {
          context.amqp.log.error(
            'hub.amqp',
            `${clip(links.deviceId)} on ${links.hub}: telemetry not stored: ${(err as Error).message}`,
          );
          delivery?.reject({ condition: 'amqp:internal-error', description: 'The message could not be stored.' });
        },
      )
      .finally(() => context.amqp.grantCredit(receiver, 1));
  };

  /** A twin request (azure-iot-device-amqp's AmqpTwinClient): answered on the device's twin receiver link. */
  const onTwinRequest = (links: DeviceLinks, receiver: Receiver, ctx: EventContext & { message: Message }) => {
    const { message, delivery } = ctx;
    const { context } = links;
    if (delivery && !delivery.remote_settled) delivery.accept();
    context.amqp.grantCredit(receiver, 1);
    const annotations = (message.message_annotations ?? {}) as Record<string, unknown>;
    const operation = String(annotations.operation ?? '');
    const resource = annotations.resource === undefined ? undefined : String(annotations.resource);
    let status: number;
    let body: unknown;
    let version: number | undefined;
    try {
      if (operation === 'GET' && resource === undefined) {
        status = 200;
        body = hub.deviceTwin(links.hub, links.deviceId);
      } else if (operation === 'PATCH' && resource === '/properties/reported') {
        const text = bodyBytes(message.body).toString('utf8');
        const decoded = decodeJson(text, { maxDepth: 32 });
        if (!decoded.ok)
          throw new TwinError('ArgumentInvalid', `the reported properties are not valid JSON: ${decoded.reason}`);
        refuseOutOfRangeIntegers(text, 'reported');
        version = hub.reportProperties(links.hub, links.deviceId, decoded.value);
        status = 204;
      } else if (
        (operation === 'PUT' || operation === 'DELETE') &&
        resource === '/notifications/twin/properties/desired'
      ) {
        links.desired = operation === 'PUT';
        status = 200;
      } else {
        throw new HubError(
          400,
          'ArgumentInvalid',
          `the twin operation ${clip(operation)} ${clip(resource ?? '')} is not one of GET, PATCH /properties/reported, PUT or DELETE /notifications/twin/properties/desired`,
        );
      }
    } catch (err) {
      status = err instanceof HubError ? err.status : err instanceof TwinError ? 400 : 500;
      const text = err instanceof Error && status !== 500 ? err.message : 'internal error';
      if (status === 500) context.amqp.log.error('hub.amqp', `${clip(links.deviceId)}: ${(err as Error).message}`);
      const code = err instanceof HubError || err instanceof TwinError ? err.code : undefined;
      body = twinErrorBody(status, code, text);
    }
    if (!links.twinReplies?.is_open()) return;
    context.amqp.send(links.twinReplies, {
      correlation_id: message.correlation_id,
      message_annotations: { status, ...(version === undefined ? {} : { version }) },
      ...(body === undefined ? {} : { body: rhea.message.data_section(Buffer.from(JSON.stringify(body), 'utf8')) }),
    });
  };

  /** A device's answer to a direct method: ends its call in the core. */
  const onMethodAnswer = (links: DeviceLinks, receiver: Receiver, ctx: EventContext & { message: Message }) => {
    const { message, delivery } = ctx;
    if (delivery && !delivery.remote_settled) delivery.accept();
    links.context.amqp.grantCredit(receiver, 1);
    const status = Number(
      (message.application_properties as Record<string, unknown> | undefined)?.[METHOD_STATUS_PROPERTY],
    );
    const rid = correlationText(message.correlation_id);
    const outcome =
      rid !== undefined && Number.isInteger(status)
        ? hub.methods.answer(links.hub, links.deviceId, rid, status, bodyBytes(message.body))
        : 'unknown';
    if (outcome === 'unknown')
      links.context.amqp.log.warn(
        'hub.method-answer',
        `${clip(links.deviceId)} on ${links.hub}: a direct method answer over AMQP for no call in flight (or without ${METHOD_STATUS_PROPERTY}); dropped`,
        { reason: 'unknown-rid' },
      );
  };

  return {
    attach(link, address, context) {
      const match = DEVICE_ADDRESS.exec(address);
      if (!match) return false;
      const [, owner = '', moduleId, kind] = match;
      // No cloud-to-device messages for modules (docs/hubs.md "Cloud-to-device messages and modules"):
      // such a link is refused amqp:not-found, saying so.
      if (moduleId !== undefined && kind === 'messages/devicebound') {
        context.amqp.log.debug(
          'hub.amqp',
          `${context.amqp.peer}: a module's cloud-to-device link ${clip(address)}; refused (modules get no cloud-to-device messages)`,
        );
        link.close({ condition: 'amqp:not-found', description: MODULE_C2D_REFUSAL });
        return true;
      }
      // A module's links go by its moduleKey, the name its put-token authorized it under.
      const deviceId = moduleId === undefined ? owner : moduleKey(owner, moduleId);
      const device = context.device(deviceId) ?? context.authorizeCertificate(deviceId);
      if (!device) {
        if (context.amqp.clientCertificates.length === 0)
          context.amqp.log.debug(
            'hub.auth',
            `${context.amqp.peer}: a link on ${clip(address)} without a put-token for the device; refused`,
            { deviceId: clip(deviceId), reason: 'missing-token' },
          );
        link.close({
          condition: 'amqp:unauthorized-access',
          description:
            context.amqp.clientCertificates.length === 0
              ? `Put a token for ${clip(deviceId)} on $cbs before attaching ${clip(address)}.`
              : `The client certificate does not authenticate device ${clip(deviceId)}.`,
        });
        return true;
      }
      const links = linksOf(context, device.hub, device.deviceId);
      // Detached alone if the device leaves a connection that carries other devices too.
      context.own(link, device.deviceId);
      const receiving = link.is_receiver();
      if (kind === 'messages/events') {
        if (!receiving) return false;
        const receiver = link as Receiver;
        context.onMessage(receiver, (ctx) => onTelemetry(links, receiver, ctx));
        context.amqp.grantCredit(receiver, DEVICE_LINK_CREDIT);
        return true;
      }
      if (kind === 'messages/devicebound') {
        // The device receives here (the hub sends): a link where the device would send is not served.
        if (receiving) return false;
        const c2d = attachC2dDeviceLink(hub, links, link as Sender, context);
        links.c2d = c2d;
        // Queued messages go once the device gives credit (its flow after the ATTACH: `sendable`).
        c2d.pump();
        return true;
      }
      if (kind === 'twin') {
        if (receiving) {
          const receiver = link as Receiver;
          context.onMessage(receiver, (ctx) => onTwinRequest(links, receiver, ctx));
          context.amqp.grantCredit(receiver, DEVICE_LINK_CREDIT);
        } else {
          links.twinReplies = link as Sender;
          context.onClose(link, () => {
            if (links.twinReplies === link) {
              links.twinReplies = undefined;
              links.desired = false;
            }
          });
        }
        return true;
      }
      // The methods' two links: calls are sent once both are attached (the SDK attaches its sender first).
      if (receiving) {
        const receiver = link as Receiver;
        links.methodAnswers = receiver;
        context.onMessage(receiver, (ctx) => onMethodAnswer(links, receiver, ctx));
        context.amqp.grantCredit(receiver, DEVICE_LINK_CREDIT);
        context.onClose(link, () => {
          if (links.methodAnswers === link) links.methodAnswers = undefined;
        });
      } else {
        links.methodRequests = link as Sender;
        context.onClose(link, () => {
          if (links.methodRequests === link) links.methodRequests = undefined;
        });
      }
      if (links.methodAnswers?.is_open() && links.methodRequests) {
        const ready = () => hub.methods.deviceReady(links.hub, links.deviceId);
        // The sender is open once the server's ATTACH answer is written: after this turn.
        setImmediate(ready);
      }
      return true;
    },
    deliver,
    close() {
      unsubscribe();
      methods();
    },
  };
}

/** A message body's bytes: a data section's, an AMQP string's (UTF-8), else its JSON. */
function bodyBytes(body: unknown): Buffer {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(body)) return body;
  const content = (body as { content?: unknown }).content;
  if (Buffer.isBuffer(content)) return content;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  return Buffer.from(JSON.stringify(body) ?? '', 'utf8');
}

/** A correlation id as text: a string, or a UUID (rhea gives a 16-byte Buffer). */
function correlationText(id: unknown): string | undefined {
  if (typeof id === 'string') return id;
  if (typeof id === 'number') return String(id);
  if (Buffer.isBuffer(id) && id.length === 16) return rhea.uuid_to_string(id);
  return undefined;
}

/**
 * A telemetry message's properties, as MQTT's are kept (the property bag the SDKs put in the topic):
 * application properties as text, and the AMQP properties under MQTT's system names (`$.mid`,
 * `$.cid`, `$.uid`, `$.ct`, `$.ce`; the `to` the SDK sets to the link's address is left out, as MQTT has none), so that `emulator.telemetry()` reads the same whichever
 * transport the device used.
 */
function telemetryProperties(message: Message): Record<string, string> {
  const properties: Record<string, string> = {};
  const application = (message.application_properties ?? {}) as Record<string, unknown>;
  for (const [name, value] of Object.entries(application)) {
    if (value === undefined || value === null) continue;
    properties[name] =
      typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
  }
  const system: [string, unknown][] = [
    ['$.mid', message.message_id],
    ['$.cid', message.correlation_id],
    ['$.uid', message.user_id],
    ['$.ct', message.content_type],
    ['$.ce', message.content_encoding],
  ];
  for (const [name, value] of system) {
    const text = Buffer.isBuffer(value)
      ? (correlationText(value) ?? value.toString('utf8'))
      : value === undefined || value === null
        ? undefined
        : String(value);
    if (text !== undefined && text !== '') properties[name] = text;
  }
  return properties;
}
