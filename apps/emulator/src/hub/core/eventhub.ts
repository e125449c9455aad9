// The emulated hubs' Event Hubs-compatible built-in endpoint (`messages/events`), as pure logic:
// partitions, link addresses, the start-position filter, the events' AMQP shape and the
// management answers. The AMQP I/O is in hub/eventhub.ts; the events are kept in the store.

import { clip } from '../../core/client-text.js';
import { resourceCovers } from '../../core/service-auth.js';

/**
 * Partitions of every hub's built-in endpoint: IoT Hub's default (set at creation, 2–128; azure-docs
 * iot-hub-devguide-messages-read-builtin "Partition count"). Ids are "0" … "3".
 */
export const EVENT_HUB_PARTITION_COUNT = 4;

/** The consumer group every built-in endpoint has (IoT Hub creates `$Default`; names are case-insensitive). */
export const DEFAULT_CONSUMER_GROUP = '$Default';

/**
 * The consumer groups a built-in endpoint may have, `$Default` included: Event Hubs Standard's
 * 20 per event hub (azure-docs time-series-insights "limit of 20 consumer groups per Event Hub"),
 * the emulator's bound on what `iotHubs[].consumerGroups` adds.
 */
export const MAX_CONSUMER_GROUPS = 20;

/**
 * What is wrong with a consumer group name for a hub's built-in endpoint, or undefined: 1 to 50
 * letters, digits, hyphens, periods and underscores, as ARM takes them for
 * `Microsoft.Devices/IotHubs/eventHubEndpoints/ConsumerGroups` (`az iot hub consumer-group create`);
 * `$Default` is there without being listed.
 */
export function consumerGroupNameProblem(name: string): string | undefined {
  if (name.toLowerCase() === DEFAULT_CONSUMER_GROUP.toLowerCase())
    return `${DEFAULT_CONSUMER_GROUP} is every hub's own: leave it out`;
  if (!/^[A-Za-z0-9._-]{1,50}$/.test(name)) return 'must be 1 to 50 letters, digits, hyphens, periods or underscores';
  return undefined;
}

/** A hub's consumer groups: `$Default`, then the configured ones in their order. */
export function consumerGroupsOf(configured: readonly string[] = []): string[] {
  return [DEFAULT_CONSUMER_GROUP, ...configured];
}

/**
 * The property an IoT Plug and Play device's component telemetry names its component with over
 * MQTT (`$.sub` in the topic), and the annotation IoT Hub gives it on the event (azure-docs
 * iot/concepts-convention "Telemetry": "add the `$.sub` property with the component name …, the
 * system adds the `dt-subject` property").
 */
export const COMPONENT_PROPERTY = '$.sub';
export const COMPONENT_ANNOTATION = 'dt-subject';

/** `iothub-message-source` of a device's telemetry message. */
export const TELEMETRY_MESSAGE_SOURCE = 'Telemetry';

/** The annotations Event Hubs puts on each event (read by @azure/event-hubs as the event's own fields). */
export const SEQUENCE_NUMBER_ANNOTATION = 'x-opt-sequence-number';
export const OFFSET_ANNOTATION = 'x-opt-offset';
export const ENQUEUED_TIME_ANNOTATION = 'x-opt-enqueued-time';

/** The partition ids of a hub's endpoint, as strings (`getPartitionIds()`). */
export function partitionIds(count = EVENT_HUB_PARTITION_COUNT): string[] {
  return Array.from({ length: count }, (_, index) => String(index));
}

/**
 * The Event Hubs-compatible name of a hub: its name, the first label of its host name
 * (`hub-a.azure-devices.net` → `hub-a`), as Azure names a hub's built-in endpoint by default.
 */
export function eventHubName(hubHostName: string): string {
  return hubHostName.split('.')[0] ?? hubHostName;
}

/**
 * The partition a device's messages go to: always the same one for a device (IoT Hub: "messages
 * from a device always go to the same partition"; its hash is not documented). The emulator's:
 * FNV-1a (32 bits) of the device id's UTF-8 bytes, modulo the partition count.
 */
export function partitionOf(deviceId: string, count = EVENT_HUB_PARTITION_COUNT): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(deviceId, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % count;
}

/** What a link address of the endpoint names (the entity path first, matched case-insensitively). */
export type EventHubAddress =
  | { kind: 'partition'; entity: string; consumerGroup: string; partition: string }
  | { kind: 'management' }
  | { kind: 'other'; entity: string };

/**
 * Reads a link address: `$management` (the management node), or
 * `{entity}/ConsumerGroups/{consumerGroup}/Partitions/{partitionId}` (a receiver's source, as
 * @azure/event-hubs `getReceiverAddress` builds it), an `amqps://host/` prefix allowed. Undefined
 * for an address that names no entity path at all.
 */
export function parseEventHubAddress(address: string): EventHubAddress | undefined {
  const path = address.replace(/^amqps?:\/\/[^/]*\//i, '').replace(/^\/+/, '');
  if (path === '$management') return { kind: 'management' };
  const parts = path.split('/');
  const [entity = '', groups, consumerGroup, partitions, partition] = parts;
  if (!entity) return undefined;
  if (
    parts.length === 5 &&
    groups?.toLowerCase() === 'consumergroups' &&
    consumerGroup &&
    partitions?.toLowerCase() === 'partitions' &&
    partition !== undefined
  ) {
    return { kind: 'partition', entity, consumerGroup, partition };
  }
  return { kind: 'other', entity };
}

/**
 * IoT Hub's SASL PLAIN username for its built-in endpoint, `{policy}@sas.root.{hub name}` (the
 * Event Hubs samples' iothubConnectionString: they connect with it to learn the endpoint from a
 * link redirect), read; undefined for any other username.
 */
export function parseSasRootUser(username: string): { policy: string; hubName: string } | undefined {
  const match = /^([^@/]{1,128})@sas\.root\.([a-z0-9-]{1,64})$/i.exec(username);
  return match ? { policy: match[1] as string, hubName: match[2] as string } : undefined;
}

/** The partition id `id` names (a decimal "0" … count − 1), or undefined. */
export function partitionNumber(id: string, count = EVENT_HUB_PARTITION_COUNT): number | undefined {
  if (!/^(0|[1-9]\d{0,2})$/.test(id)) return undefined;
  const n = Number(id);
  return n < count ? n : undefined;
}

/**
 * Where a receiver starts: the `apache.org:selector-filter:string` filter @azure/event-hubs sends
 * (`getEventPositionFilter`): `amqp.annotation.x-opt-offset > '-1'` (earliest), `… > '@latest'`
 * (latest), an offset or sequence number with `>` or `>=`, or `x-opt-enqueued-time > '{ms}'`.
 */
export type EventPosition =
  | { kind: 'earliest' }
  | { kind: 'latest' }
  | { kind: 'offset'; offset: number; inclusive: boolean }
  | { kind: 'sequence'; sequenceNumber: number; inclusive: boolean }
  | { kind: 'enqueued'; enqueuedMs: number };

/** The longest filter read (the SDK's are under 60 characters). */
const MAX_FILTER_LENGTH = 256;
/** The longest part of a filter's value an error repeats (it goes to the client and the debug log). */
const MAX_FILTER_VALUE_SHOWN = 32;

/** Parses a selector filter; an error names what is wrong (without echoing more than a clip of it). */
export function parseEventPosition(
  filter: unknown,
): { ok: true; position: EventPosition } | { ok: false; error: string } {
  if (filter === undefined) return { ok: true, position: { kind: 'latest' } };
  if (typeof filter !== 'string') return { ok: false, error: 'The selector filter is not a string.' };
  if (filter.length > MAX_FILTER_LENGTH)
    return { ok: false, error: `The selector filter is longer than ${MAX_FILTER_LENGTH} characters.` };
  const match =
    /^\s*amqp\.annotation\.(x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time)\s*(>=|>)\s*'([^']*)'\s*$/i.exec(
      filter,
    );
  if (!match)
    return {
      ok: false,
      error:
        "The selector filter is not amqp.annotation.{x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time} > (or >=) '{value}'.",
    };
  const [, annotation = '', operator, value = ''] = match;
  const inclusive = operator === '>=';
  // The client's text, clipped and its control characters escaped: the refusal is logged.
  const shown = clip(value, MAX_FILTER_VALUE_SHOWN);
  switch (annotation.toLowerCase()) {
    case OFFSET_ANNOTATION:
      if (value === '@latest') return { ok: true, position: { kind: 'latest' } };
      if (value === '-1') return { ok: true, position: { kind: 'earliest' } };
      if (!/^\d{1,15}$/.test(value)) return { ok: false, error: `The offset '${shown}' is not a number.` };
      return { ok: true, position: { kind: 'offset', offset: Number(value), inclusive } };
    case SEQUENCE_NUMBER_ANNOTATION:
      if (!/^-?\d{1,15}$/.test(value)) return { ok: false, error: `The sequence number '${shown}' is not a number.` };
      if (Number(value) < 0) return { ok: true, position: { kind: 'earliest' } };
      return { ok: true, position: { kind: 'sequence', sequenceNumber: Number(value), inclusive } };
    default:
      if (!/^\d{1,15}$/.test(value))
        return { ok: false, error: `The enqueued time '${shown}' is not milliseconds since 1970.` };
      return { ok: true, position: { kind: 'enqueued', enqueuedMs: Number(value) } };
  }
}

/** One event of a partition as the store keeps it. */
export interface StoredHubEvent {
  hub: string;
  partition: number;
  sequenceNumber: number;
  /** Bytes before it in the partition (Event Hubs' offset, sent as a string). */
  offset: number;
  enqueuedMs: number;
  deviceId: string;
  /** The module of the device that sent it (`ModuleClient`), absent for the device's own. */
  moduleId?: string;
  /** `sas`, `selfSigned` or `certificateAuthority`: the device identity's authentication type. */
  authenticationType: string;
  generationId: string;
  body: Buffer;
  /** The telemetry message's properties as the hub stored them (`$.mid`, `$.ct`, …, application properties). */
  properties: Record<string, string>;
}

/**
 * What makes a telemetry message an event of the built-in endpoint: the store keeps them with the
 * message (one copy of each message) and numbers it in its partition.
 */
export type HubEventFields = Pick<StoredHubEvent, 'partition' | 'enqueuedMs' | 'authenticationType' | 'generationId'>;

/** A partition's runtime information, from the store. */
export interface PartitionState {
  /** The oldest event kept (0 when none was ever enqueued). */
  beginSequenceNumber: number;
  /** The newest event's (−1 when none). */
  lastSequenceNumber: number;
  /** The newest event's offset (−1 when none). */
  lastOffset: number;
  /** The newest event's enqueued time (0 when none). */
  lastEnqueuedMs: number;
  empty: boolean;
}

export const EMPTY_PARTITION: PartitionState = {
  beginSequenceNumber: 0,
  lastSequenceNumber: -1,
  lastOffset: -1,
  lastEnqueuedMs: 0,
  empty: true,
};

/**
 * A partition's state from its oldest kept and newest event (their sequence numbers; the newest's
 * offset and enqueued time), EMPTY_PARTITION without them.
 */
export function partitionStateOf(
  first: { sequenceNumber: number } | undefined,
  last: { sequenceNumber: number; offset: number; enqueuedMs: number } | undefined,
): PartitionState {
  if (!first || !last) return EMPTY_PARTITION;
  return {
    beginSequenceNumber: first.sequenceNumber,
    lastSequenceNumber: last.sequenceNumber,
    lastOffset: last.offset,
    lastEnqueuedMs: last.enqueuedMs,
    empty: false,
  };
}

/** The MQTT-style system property names the hub stores, and the AMQP message property each becomes. */
const SYSTEM_PROPERTIES: Readonly<
  Record<string, 'message_id' | 'correlation_id' | 'user_id' | 'content_type' | 'content_encoding' | 'to'>
> = {
  '$.mid': 'message_id',
  '$.cid': 'correlation_id',
  '$.uid': 'user_id',
  '$.ct': 'content_type',
  '$.ce': 'content_encoding',
  '$.to': 'to',
};

/**
 * The `iothub-connection-auth-method` annotation: IoT Hub's JSON text (as its events carry it); a
 * module's message has `scope: "module"`, as IoT Edge modules' messages show it.
 */
export function authMethodOf(authenticationType: string, scope: 'device' | 'module' = 'device'): string {
  const type = authenticationType === 'sas' ? 'sas' : 'x509Certificate';
  return JSON.stringify({ scope, type, issuer: 'iothub', acceptingIpFilterRule: null });
}

/** An event as an AMQP message (rhea's fields; `body` to be sent as one data section). */
export interface EventMessage {
  message_annotations: Record<string, unknown>;
  application_properties: Record<string, string>;
  properties: Partial<Record<'message_id' | 'correlation_id' | 'content_type' | 'content_encoding' | 'to', string>> & {
    user_id?: Buffer;
  };
  body: Buffer;
}

/**
 * The AMQP message IoT Hub forwards for a telemetry event: the body's bytes as sent, the device's
 * message id, correlation id, user id, content type and encoding as AMQP properties, its
 * application properties as they were (an unknown `$.` name among them too, as IoT Hub forwards
 * `$.cdid`), and the annotations IoT Hub and Event Hubs add (azure-docs
 * iot-hub-devguide-messages-construct "System properties of D2C IoT Hub messages"; the quickstarts'
 * printed events): `iothub-connection-device-id`, `-auth-method` (JSON text),
 * `-auth-generation-id`, `iothub-enqueuedtime`, `iothub-message-source: Telemetry`, `dt-subject`
 * (an IoT Plug and Play component's name, from its `$.sub`, then no application property),
 * `x-opt-sequence-number`, `x-opt-offset` (a string), `x-opt-enqueued-time`. The timestamps are
 * `Date`s here (AMQP timestamps on the wire).
 */
export function eventMessage(event: StoredHubEvent): EventMessage {
  const properties: EventMessage['properties'] = {};
  const application: Record<string, string> = {};
  let component: string | undefined;
  for (const [name, value] of Object.entries(event.properties)) {
    const field = SYSTEM_PROPERTIES[name];
    if (name === COMPONENT_PROPERTY) component = value;
    else if (field === 'user_id') properties.user_id = Buffer.from(value, 'utf8');
    else if (field) properties[field] = value;
    else application[name] = value;
  }
  const enqueued = new Date(event.enqueuedMs);
  return {
    message_annotations: {
      'iothub-connection-device-id': event.deviceId,
      // "the moduleId of the device that sent the message" (azure-docs iot-hub-devguide-messages-construct).
      ...(event.moduleId !== undefined ? { 'iothub-connection-module-id': event.moduleId } : {}),
      'iothub-connection-auth-method': authMethodOf(
        event.authenticationType,
        event.moduleId === undefined ? 'device' : 'module',
      ),
      'iothub-connection-auth-generation-id': event.generationId,
      'iothub-enqueuedtime': enqueued,
      'iothub-message-source': TELEMETRY_MESSAGE_SOURCE,
      ...(component !== undefined ? { [COMPONENT_ANNOTATION]: component } : {}),
      [SEQUENCE_NUMBER_ANNOTATION]: event.sequenceNumber,
      [OFFSET_ANNOTATION]: String(event.offset),
      [ENQUEUED_TIME_ANNOTATION]: enqueued,
    },
    application_properties: application,
    properties,
    body: event.body,
  };
}

/**
 * The delivery annotations of an event for a receiver that asked for the runtime metric
 * (`trackLastEnqueuedEventProperties`): the partition's last enqueued event, and when this was read
 * (@azure/event-hubs reads `last_enqueued_sequence_number`, `last_enqueued_offset`,
 * `last_enqueued_time_utc`, `runtime_info_retrieval_time_utc`).
 */
export function runtimeInfo(state: PartitionState, now = new Date()): Record<string, unknown> {
  return {
    last_enqueued_sequence_number: state.lastSequenceNumber,
    last_enqueued_offset: String(state.lastOffset),
    last_enqueued_time_utc: new Date(state.lastEnqueuedMs),
    runtime_info_retrieval_time_utc: now,
  };
}

/** The management node's answer to `READ com.microsoft:eventhub` (@azure/event-hubs `getEventHubProperties`). */
export function eventHubInfo(
  name: string,
  createdAt: Date,
  count = EVENT_HUB_PARTITION_COUNT,
): Record<string, unknown> {
  return {
    name,
    type: 'com.microsoft:eventhub',
    created_at: createdAt,
    partition_count: count,
    partition_ids: partitionIds(count),
  };
}

/** The management node's answer to `READ com.microsoft:partition` (`getPartitionProperties`). */
export function partitionInfo(name: string, partition: number, state: PartitionState): Record<string, unknown> {
  return {
    name,
    type: 'com.microsoft:partition',
    partition: String(partition),
    begin_sequence_number: state.beginSequenceNumber,
    last_enqueued_sequence_number: state.lastSequenceNumber,
    last_enqueued_offset: String(state.lastOffset),
    last_enqueued_time_utc: new Date(state.lastEnqueuedMs),
    is_partition_empty: state.empty,
  };
}

/** Whether a SAS token's resource grants an audience: the hubs' rule (core/service-auth), Event Hubs' too. */
export { resourceCovers };

/** A put-token an Event Hubs client made on a connection: its audience and its token's `se` (seconds). */
export interface EventHubGrant {
  hub: string;
  audience: string;
  expiresAt: number;
}

/**
 * Until when (seconds since the epoch) the connection's put-tokens let a link on `address` (a
 * partition's `{entity}/ConsumerGroups/{group}/Partitions/{n}`) read `hub`: the latest `se` among
 * the tokens whose audience covers the address by segment (Event Hubs authorizes a link by the
 * token put for its audience: the SDK puts one per link, `sb://{host}/{entity}/ConsumerGroups/…`,
 * and renews it before it expires), or undefined when none does.
 */
export function grantedUntil(grants: readonly EventHubGrant[], hub: string, address: string): number | undefined {
  const path = (uri: string) => uri.replace(/^[a-z]+:\/\/[^/]*\/?/i, '').replace(/^\/+/, '');
  let until: number | undefined;
  for (const grant of grants) {
    if (grant.hub !== hub || !resourceCovers(path(grant.audience), path(address))) continue;
    if (until === undefined || grant.expiresAt > until) until = grant.expiresAt;
  }
  return until;
}

/**
 * The entity path of an Event Hubs audience (`sb://{host}/{entity}/…`): the first path segment,
 * or undefined for an audience that is not an `sb://` (or `amqps://`) URI with one.
 */
export function audienceEntity(audience: string): string | undefined {
  const match = /^(?:sb|amqps?):\/\/[^/]+\/([^/]+)/i.exec(audience);
  return match?.[1];
}
