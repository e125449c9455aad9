import { randomUUID } from 'node:crypto';
import { clip } from '../../core/client-text.js';

/**
 * Cloud-to-device messages: each device's queue as IoT Hub keeps it (azure-docs
 * iot-hub-devguide-messages-c2d, "The cloud-to-device message life cycle"). A message is Enqueued;
 * a delivery locks it (Invisible) under a lock token, new each delivery; the device completes it
 * (gone), rejects it (dead-lettered: gone, IoT Hub keeps no dead-letter queue), or abandons it
 * (Enqueued again, its delivery count one higher: at the hub's max delivery count it is
 * dead-lettered instead). A lock not settled within the lock timeout (one minute, fixed) lapses:
 * Enqueued again, the delivery count unchanged ("Understand delivery count behavior"). A message
 * past its expiry time is dead-lettered. Over MQTT the PUBACK completes (a device cannot reject or
 * abandon over MQTT); the message is locked to the connection and Enqueued again when it closes.
 * Over AMQP the delivery's disposition settles it; it is locked to the link the same way.
 *
 * The queue lives in the store (`C2dStore`), read and written inside the caller's transaction,
 * so any process on a shared store (`--workers`) may enqueue, deliver and settle. The logic here
 * decides on a device's whole queue (50 messages at most), so it is plain code over a list.
 */

/** "Each device queue holds, at most, 50 cloud-to-device messages." */
export const MAX_C2D_QUEUE_DEPTH = 50;
/** IoT Hub's maximum cloud-to-device message size (azure-docs iot-hub-devguide-quotas-throttling): 64 KB. */
export const MAX_C2D_MESSAGE_BYTES = 64 * 1024;
/** "This timeout is one minute and can't be changed." */
export const C2D_LOCK_TIMEOUT_MS = 60_000;
/** IoT Hub's default max delivery count (`cloudToDevice.maxDeliveryCount`, 1-100, default 10). */
export const C2D_MAX_DELIVERY_COUNT = 10;
/** IoT Hub's default time to live (`cloudToDevice.defaultTtlAsIso8601`, PT1H). */
export const C2D_DEFAULT_TTL_MS = 60 * 60_000;
/** The longest time to live IoT Hub allows (`defaultTtlAsIso8601` up to P2D): a later expiry is clamped to it. */
export const C2D_MAX_TTL_MS = 48 * 60 * 60_000;
/**
 * The most cloud-to-device messages sent on one connection and not yet acknowledged (an MQTT PUBACK,
 * an AMQP disposition): the rest of the queue stays Enqueued until one frees a place. IoT Hub's own
 * window is not documented; the device queue holds 50 at most anyway. One rule for every transport.
 */
export const MAX_C2D_IN_FLIGHT = 50;

/** Which feedback the service asked for (`iothub-ack`): not emulated beyond being carried to the device. */
export type C2dAck = 'none' | 'positive' | 'negative' | 'full';

/** A message's system properties the device sees (`$.mid`, `$.cid`, … / `iothub-messageid`, …). */
export interface C2dSystemProperties {
  messageId?: string;
  correlationId?: string;
  userId?: string;
  contentType?: string;
  contentEncoding?: string;
  ack?: C2dAck;
}

/** A message as the service sends it. */
export interface OutgoingC2d extends C2dSystemProperties {
  body: Buffer;
  /** When the message expires (default: now + `C2D_DEFAULT_TTL_MS`). */
  expiryTimeUtc?: Date;
  /** Application properties. */
  properties?: Record<string, string>;
}

/** Who holds a message's lock: a device's HTTPS receive (timed) or an MQTT connection (until it closes). */
export interface C2dLock {
  token: string;
  /** Timed locks (HTTPS): the lock lapses at this time (ms since the epoch). */
  untilMs?: number;
  /** Connection locks (MQTT, AMQP): the connection or link the message was sent on. */
  connection?: string;
}

/** A message in a device's queue. */
export interface QueuedC2d extends C2dSystemProperties {
  hub: string;
  deviceId: string;
  /** Its place in the device's queue (oldest first), given at enqueue. */
  seq: number;
  /** The hub's own id of the message (never shown to the device). */
  id: string;
  body: Buffer;
  properties: Record<string, string>;
  enqueuedMs: number;
  expiryMs: number;
  /** Whether the service set the expiry (MQTT's `$.exp` is sent only then). */
  expirySet: boolean;
  deliveryCount: number;
  /** Set while the message is Invisible. */
  lock?: C2dLock;
}

/**
 * A feedback record (azure-docs iot-hub-devguide-messages-c2d, "Message feedback"): the outcome of
 * a message whose sender asked for it (`ack`), as IoT Hub's feedback message body lists them.
 */
export interface C2dFeedbackRecord {
  originalMessageId: string;
  /** When the outcome happened. */
  enqueuedTimeUtc: string;
  statusCode: 'Success' | 'Expired' | 'DeliveryCountExceeded' | 'Rejected' | 'Purged';
  description: string;
  deviceId: string;
  deviceGenerationId: string;
}

/** A feedback record waiting in its hub's feedback queue. */
export interface QueuedC2dFeedback {
  seq: number;
  record: C2dFeedbackRecord;
}

/** What the queue needs of the store, inside the caller's transaction. Device ids are case-sensitive. */
export interface C2dStore {
  /** Appends a record to the hub's feedback queue (the newest `MAX_C2D_FEEDBACK_KEPT` are kept). */
  addC2dFeedback(hub: string, record: C2dFeedbackRecord): void;
  /** Locks to `holder` and returns the hub's oldest unlocked records, at most `limit`. */
  takeC2dFeedback(hub: string, holder: string, limit: number): QueuedC2dFeedback[];
  /** Completes (deletes) or releases (unlocks) records taken. */
  settleC2dFeedback(seqs: readonly number[], complete: boolean): void;
  /** Unlocks every record `holder` took (its link closed). */
  releaseC2dFeedback(holder: string): void;
  /** The device's queue, oldest first. */
  c2dMessages(hub: string, deviceId: string): QueuedC2d[];
  /** Writes a message (inserted, or replaced by `seq`). */
  putC2d(message: QueuedC2d): void;
  deleteC2d(hub: string, deviceId: string, seq: number): void;
  /** The messages locked to `connection` (MQTT); with no connection, those locked to any connection. */
  c2dLockedTo(connection: string | undefined): QueuedC2d[];
}

/** Feedback records kept per store (oldest dropped first): bounded whether or not a service reads them. */
export const MAX_C2D_FEEDBACK_KEPT = 1000;

const FEEDBACK: Partial<
  Record<C2dOutcome, { statusCode: C2dFeedbackRecord['statusCode']; description: string; positive: boolean }>
> = {
  completed: { statusCode: 'Success', description: 'Success', positive: true },
  rejected: { statusCode: 'Rejected', description: 'Message rejected', positive: false },
  expired: { statusCode: 'Expired', description: 'Message expired', positive: false },
  'dead-lettered': {
    statusCode: 'DeliveryCountExceeded',
    description: 'Maximum delivery count exceeded',
    positive: false,
  },
  purged: { statusCode: 'Purged', description: 'Message purged', positive: false },
};

/**
 * The feedback record a change owes, if its message asked for it: `positive` or `full` for
 * Success, `negative` or `full` for the others (Rejected, Expired, DeliveryCountExceeded, Purged).
 */
export function feedbackOf(
  change: C2dChange,
  deviceGenerationId: string,
  nowMs: number,
): C2dFeedbackRecord | undefined {
  const kind = FEEDBACK[change.outcome];
  const ack = change.message.ack ?? 'none';
  if (!kind || ack === 'none' || (kind.positive ? ack === 'negative' : ack === 'positive')) return undefined;
  return {
    originalMessageId: change.message.messageId ?? '',
    enqueuedTimeUtc: new Date(nowMs).toISOString(),
    statusCode: kind.statusCode,
    description: kind.description,
    deviceId: change.message.deviceId,
    deviceGenerationId,
  };
}

/** An error the service or device is answered with: IoT Hub's status, code name and number. */
export class C2dError extends Error {
  override readonly name = 'C2dError';
  constructor(
    readonly status: number,
    readonly code: string,
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** How a message left its device's queue, or was put back. */
export type C2dOutcome =
  | 'enqueued'
  | 'delivered'
  | 'completed'
  | 'rejected'
  | 'abandoned'
  | 'lock-lapsed'
  | 'released'
  | 'expired'
  | 'dead-lettered'
  | 'purged';

/** A message's change, for the hub's `c2d` event (never its body). */
export interface C2dChange {
  outcome: C2dOutcome;
  message: QueuedC2d;
}

/**
 * IoT Hub's allowed characters in property names and values of cloud-to-device messages: "ASCII
 * alphanumeric characters, plus {'!', '#', '$', '%, '&', ''', '*', '+', '-', '.', '^', '_', '`',
 * '|', '~'}" (azure-docs iot-hub-devguide-messages-construct). They travel as HTTP headers.
 */
const PROPERTY_TEXT = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;

/** System property values (message id, correlation id, …): printable ASCII, at most 128 characters. */
const SYSTEM_TEXT = /^[\x20-\x7e]{1,128}$/;

/** The size IoT Hub's 64 KB bound is checked on: the body, and the properties' names and values. */
export function c2dSize(message: Pick<OutgoingC2d, 'body' | 'properties'>): number {
  let size = message.body.length;
  for (const [name, value] of Object.entries(message.properties ?? {}))
    size += Buffer.byteLength(name) + Buffer.byteLength(value);
  return size;
}

/**
 * Applies time to a device's queue: messages past their expiry are dead-lettered (deleted), timed
 * locks past their time are released (Enqueued again, delivery count unchanged). Returns what
 * remains (oldest first) and the changes made.
 */
export function sweep(
  store: C2dStore,
  hub: string,
  deviceId: string,
  nowMs: number,
): {
  queue: QueuedC2d[];
  changes: C2dChange[];
} {
  const queue: QueuedC2d[] = [];
  const changes: C2dChange[] = [];
  for (const message of store.c2dMessages(hub, deviceId)) {
    if (message.expiryMs <= nowMs) {
      store.deleteC2d(hub, deviceId, message.seq);
      changes.push({ outcome: 'expired', message });
      continue;
    }
    if (message.lock?.untilMs !== undefined && message.lock.untilMs <= nowMs) {
      const { lock: _lapsed, ...released } = message;
      store.putC2d(released);
      changes.push({ outcome: 'lock-lapsed', message: released });
      queue.push(released);
      continue;
    }
    queue.push(message);
  }
  return { queue, changes };
}

/** Validates and enqueues a message for a device (which the caller has found in the registry). */
export function enqueue(
  store: C2dStore,
  hub: string,
  deviceId: string,
  outgoing: OutgoingC2d,
  nowMs: number,
): { message: QueuedC2d; changes: C2dChange[] } {
  const properties = outgoing.properties ?? {};
  for (const [name, value] of Object.entries(properties)) {
    if (!PROPERTY_TEXT.test(name) || !PROPERTY_TEXT.test(value)) {
      throw new C2dError(
        400,
        'ArgumentInvalid',
        400004,
        `Application property ${clip(name)}: names and values of cloud-to-device message properties may hold only ASCII letters, digits and !#$%&'*+-.^_\`|~.`,
      );
    }
  }
  for (const field of ['messageId', 'correlationId', 'userId', 'contentType', 'contentEncoding'] as const) {
    const value = outgoing[field];
    // IoT Hub's message ids are "up to 128 characters long of ASCII 7-bit alphanumeric characters"
    // and some marks (iot-hub-devguide-messages-construct); they travel as HTTP headers and MQTT topics.
    if (value !== undefined && value !== '' && !SYSTEM_TEXT.test(value)) {
      throw new C2dError(
        400,
        'ArgumentInvalid',
        400004,
        `The message ${field} must be 1 to 128 printable ASCII characters.`,
      );
    }
  }
  const size = c2dSize(outgoing);
  if (size > MAX_C2D_MESSAGE_BYTES) {
    throw new C2dError(
      413,
      'MessageTooLarge',
      413001,
      `Message size ${size} bytes exceeds the cloud-to-device limit of ${MAX_C2D_MESSAGE_BYTES} bytes.`,
    );
  }
  const expiry = outgoing.expiryTimeUtc?.getTime();
  if (expiry !== undefined && !Number.isFinite(expiry))
    throw new C2dError(400, 'ArgumentInvalid', 400004, 'The message expiryTimeUtc is not a valid time.');
  const { queue, changes } = sweep(store, hub, deviceId, nowMs);
  if (queue.length >= MAX_C2D_QUEUE_DEPTH) {
    throw new C2dError(
      403,
      'DeviceMaximumQueueDepthExceeded',
      403004,
      `The device ${clip(deviceId)} already has ${MAX_C2D_QUEUE_DEPTH} cloud-to-device messages queued (IoT Hub's maximum queue depth).`,
    );
  }
  const message: QueuedC2d = {
    hub,
    deviceId,
    seq: (queue.at(-1)?.seq ?? 0) + 1,
    id: randomUUID(),
    body: outgoing.body,
    ...text('messageId', outgoing.messageId),
    ...text('correlationId', outgoing.correlationId),
    ...text('userId', outgoing.userId),
    ...text('contentType', outgoing.contentType),
    ...text('contentEncoding', outgoing.contentEncoding),
    ...(outgoing.ack !== undefined ? { ack: outgoing.ack } : {}),
    properties: { ...properties },
    enqueuedMs: nowMs,
    expiryMs: Math.min(expiry ?? nowMs + C2D_DEFAULT_TTL_MS, nowMs + C2D_MAX_TTL_MS),
    expirySet: expiry !== undefined,
    deliveryCount: 0,
  };
  store.putC2d(message);
  changes.push({ outcome: 'enqueued', message });
  return { message, changes };
}

/**
 * Takes the device's oldest Enqueued message and locks it: for `C2D_LOCK_TIMEOUT_MS` (HTTPS), or to
 * `connection` (MQTT). Undefined when none is Enqueued.
 */
export function receive(
  store: C2dStore,
  hub: string,
  deviceId: string,
  holder: { connection?: string },
  nowMs: number,
): { message: QueuedC2d | undefined; changes: C2dChange[] } {
  const { queue, changes } = sweep(store, hub, deviceId, nowMs);
  const next = queue.find((m) => m.lock === undefined);
  if (!next) return { message: undefined, changes };
  const lock: C2dLock =
    holder.connection !== undefined
      ? { token: randomUUID(), connection: holder.connection }
      : { token: randomUUID(), untilMs: nowMs + C2D_LOCK_TIMEOUT_MS };
  const message: QueuedC2d = { ...next, lock };
  store.putC2d(message);
  changes.push({ outcome: 'delivered', message });
  return { message, changes };
}

export type C2dSettlement = 'complete' | 'reject' | 'abandon';

/**
 * Settles the message locked under `lockToken`: completed or rejected (gone), or abandoned (Enqueued
 * again, delivery count + 1; dead-lettered once it reaches `C2D_MAX_DELIVERY_COUNT`). A token no
 * message holds (never given, settled, lapsed, or its connection closed) is IoT Hub's 412002
 * DeviceMessageLockLost.
 */
export function settle(
  store: C2dStore,
  hub: string,
  deviceId: string,
  lockToken: string,
  action: C2dSettlement,
  nowMs: number,
): { message: QueuedC2d; changes: C2dChange[] } {
  const { queue, changes } = sweep(store, hub, deviceId, nowMs);
  const locked = queue.find((m) => m.lock?.token === lockToken);
  if (!locked) {
    throw new C2dError(
      412,
      'DeviceMessageLockLost',
      412002,
      `No cloud-to-device message of ${clip(deviceId)} is locked under ${clip(lockToken)}: never given, already settled, or its lock timed out (${C2D_LOCK_TIMEOUT_MS / 1000} s).`,
    );
  }
  const { lock: _settled, ...unlocked } = locked;
  if (action === 'abandon') {
    const abandoned: QueuedC2d = { ...unlocked, deliveryCount: unlocked.deliveryCount + 1 };
    if (abandoned.deliveryCount >= C2D_MAX_DELIVERY_COUNT) {
      store.deleteC2d(hub, deviceId, locked.seq);
      changes.push({ outcome: 'abandoned', message: abandoned }, { outcome: 'dead-lettered', message: abandoned });
    } else {
      store.putC2d(abandoned);
      changes.push({ outcome: 'abandoned', message: abandoned });
    }
    return { message: abandoned, changes };
  }
  store.deleteC2d(hub, deviceId, locked.seq);
  changes.push({ outcome: action === 'complete' ? 'completed' : 'rejected', message: unlocked });
  return { message: unlocked, changes };
}

/**
 * The messages locked to a connection that closed (or, with no connection, to any: no connection
 * outlives the process that held it) are Enqueued again, their delivery count unchanged, as a
 * lapsed lock: IoT Hub redelivers an unacknowledged MQTT message when the device reconnects.
 */
export function releaseConnection(store: C2dStore, connection: string | undefined): C2dChange[] {
  return store.c2dLockedTo(connection).map((message) => {
    const { lock: _released, ...released } = message;
    store.putC2d(released);
    return { outcome: 'released', message: released };
  });
}

/** Deletes every message of the device's queue (`DELETE /devices/{id}/commands`, or the device deleted). */
export function purge(store: C2dStore, hub: string, deviceId: string): C2dChange[] {
  return store.c2dMessages(hub, deviceId).map((message) => {
    store.deleteC2d(hub, deviceId, message.seq);
    return { outcome: 'purged', message };
  });
}

function text<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined || value === '' ? {} : { [key]: value }) as { [P in K]?: string };
}

/**
 * The topic IoT Hub publishes a message on over MQTT: `devices/{id}/messages/devicebound/` and its
 * property bag, URL-encoded `key=value` pairs joined by `&`: system properties first (`$.mid`,
 * `$.to`, `$.exp` when the service set it, `$.cid`, `$.uid`, `$.ct`, `$.ce`), `iothub-ack`, then the
 * application properties, as in captures of IoT Hub's topics (Azure IoT SDK samples and tests:
 * `devices/d/messages/devicebound/%24.mid=…&%24.to=%2Fdevices%2Fd%2Fmessages%2Fdevicebound&%24.ce=utf-8&iothub-ack=none`).
 */
export function c2dTopic(message: QueuedC2d): string {
  const pairs: [string, string][] = [];
  const add = (key: string, value: string | undefined) => {
    if (value !== undefined) pairs.push([key, value]);
  };
  add('$.mid', message.messageId);
  add('$.to', c2dTo(message.deviceId));
  if (message.expirySet) add('$.exp', new Date(message.expiryMs).toISOString());
  add('$.cid', message.correlationId);
  add('$.uid', message.userId);
  add('$.ct', message.contentType);
  add('$.ce', message.contentEncoding);
  add('iothub-ack', message.ack ?? 'none');
  for (const [key, value] of Object.entries(message.properties)) add(key, value);
  const bag = pairs.map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`).join('&');
  return `devices/${message.deviceId}/messages/devicebound/${bag}`;
}

/** The `to` IoT Hub sets on every cloud-to-device message. */
export function c2dTo(deviceId: string): string {
  return `/devices/${deviceId}/messages/devicebound`;
}

/**
 * The headers of `GET /devices/{id}/messages/deviceBound`'s 200 as `azure-iot-device-http` reads
 * them: `ETag` the lock token in quotes, `iothub-messageid`, `iothub-to`, `iothub-expiry`,
 * `iothub-correlationid`, `iothub-app-{name}` (the SDK keeps the prefix in the property's name, as
 * against IoT Hub), and the others IoT Hub sends (`iothub-deliverycount`, `iothub-enqueuedtime`,
 * `iothub-sequencenumber`, `iothub-userid`, `iothub-ack`, content type and encoding).
 */
export function c2dHttpHeaders(message: QueuedC2d): Record<string, string> {
  const headers: Record<string, string> = {
    ETag: `"${message.lock?.token ?? ''}"`,
    'iothub-to': c2dTo(message.deviceId),
    'iothub-sequencenumber': String(message.seq),
    'iothub-enqueuedtime': new Date(message.enqueuedMs).toISOString(),
    'iothub-expiry': new Date(message.expiryMs).toISOString(),
    'iothub-deliverycount': String(message.deliveryCount),
    'iothub-ack': message.ack ?? 'none',
  };
  if (message.messageId !== undefined) headers['iothub-messageid'] = message.messageId;
  if (message.correlationId !== undefined) headers['iothub-correlationid'] = message.correlationId;
  if (message.userId !== undefined) headers['iothub-userid'] = message.userId;
  if (message.contentType !== undefined) headers['iothub-contenttype'] = message.contentType;
  if (message.contentEncoding !== undefined) headers['iothub-contentencoding'] = message.contentEncoding;
  for (const [name, value] of Object.entries(message.properties)) headers[`iothub-app-${name}`] = value;
  return headers;
}
