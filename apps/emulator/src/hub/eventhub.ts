import type { Logger } from '@dpskit/node-kit';
import rhea, { type Message, type Receiver, type Sender } from 'rhea';
import { clip } from '../core/client-text.js';
import { OpenEndpoints } from '../transport/amqp-open-endpoints.js';
import { creditLeft } from '../transport/amqp-sender-credit.js';
import type { HubAmqpConnectionContext, HubAmqpEndpoint } from './amqp.js';
import {
  type EventHubGrant,
  eventHubInfo,
  eventMessage,
  grantedUntil,
  parseEventHubAddress,
  parseEventPosition,
  partitionInfo,
  partitionNumber,
  partitionOf,
  runtimeInfo,
} from './core/eventhub.js';
import type { EventHubService } from './core/eventhub-service.js';
import { type ExpiryTimer, expiryTimer } from './core/expiry-timer.js';
import type { HubService } from './core/hub-service.js';
import { EventHubPoll } from './eventhub-poll.js';

/** The management node's address (@azure/core-amqp `Constants.management`). */
export const EVENT_HUB_MANAGEMENT_ADDRESS = '$management';
/** The filter key @azure/event-hubs puts its start position under (a described string). */
export const SELECTOR_FILTER = 'apache.org:selector-filter:string';
/** The link property a receiver's owner level (epoch) comes in. */
export const EPOCH_PROPERTY = 'com.microsoft:epoch';
/**
 * Events a connection may have sent that the client has not settled yet, over all its partition
 * links: below the listener's MAX_UNSETTLED_ANSWERS (128), which closes a connection past it, so
 * that a reader never reaches it; the next events go as the client accepts these (the SDK at once,
 * as each arrives). Bounds what a client that never reads can make the emulator buffer.
 */
export const EVENTS_IN_FLIGHT_PER_CONNECTION = 100;
/** Events read from the store per look (a link with more credit is sent the rest on the next). */
const EVENTS_PER_READ = 50;
/**
 * How often the endpoint looks for events another process wrote (`--workers`), while anyone reads;
 * this process's own are sent at once (the hub's `telemetry` event wakes its partition's readers).
 */
const EVENTS_POLL_MS = 1000;
/** Management requests a connection may have unanswered (credit on its request link). */
const MANAGEMENT_CREDIT = 10;
/**
 * The capability a receiver asks for with `trackLastEnqueuedEventProperties` (@azure/core-amqp
 * `Constants.enableReceiverRuntimeMetricName`): each event then carries the partition's last
 * enqueued event in its delivery annotations.
 */
export const RUNTIME_METRIC_CAPABILITY = 'com.microsoft:enable-receiver-runtime-metric';
/** Event Hubs' bound on receivers without an owner level on one partition of a consumer group. */
export const MAX_NON_EPOCH_RECEIVERS = 5;

/** A receiver of a partition (one link), as the ownership rules see it. */
interface PartitionReader {
  link: Sender;
  epoch: number | undefined;
}

/**
 * IoT Hub's Event Hubs-compatible built-in endpoint over the hubs' AMQP listener, as
 * @azure/event-hubs' EventHubConsumerClient speaks it (SASL ANONYMOUS, CBS put-token with an
 * `sb://{host}/{eventHubName}/…` audience and a policy token, then links):
 * - `$management` (request/response, `operation: READ`, `type: com.microsoft:eventhub` or
 *   `com.microsoft:partition`): answered from the store with `status-code`/`status-description`;
 * - `{eventHubName}/ConsumerGroups/{consumerGroup}/Partitions/{id}` (`$Default` or one the config
 *   adds): the partition's events from where the selector filter says, then each new one as it is
 *   stored, as far as the client's credit goes.
 * Refusals are the AMQP conditions @azure/core-amqp translates (`amqp:not-found` →
 * MessagingEntityNotFoundError, `com.microsoft:argument-out-of-range`, `com.microsoft:argument-error`,
 * `amqp:unauthorized-access`, `amqp:link:stolen` → ReceiverDisconnectedError,
 * `amqp:resource-limit-exceeded` → QuotaExceededError, `amqp:not-allowed` for a producer).
 */
export function eventHubEndpoint(
  hub: HubService,
  eventHubs: EventHubService,
  options: {
    /** Where the endpoint is reached (`localhost:{amqp port}`), for the redirect's `hostname`. */
    endpointHost: () => string | undefined;
    /** For what happens outside a connection (a poll's store error). */
    log: Logger;
  },
): HubAmqpEndpoint {
  /** Open readers per partition and consumer group of this process (owner levels are kept here). */
  const readers = new Map<string, PartitionReader[]>();
  /**
   * Per connection: how many events it has in flight, and its links that stopped for that bound
   * (woken as the client settles, the others wait for their own credit or events).
   */
  const connections = new WeakMap<HubAmqpConnectionContext, { inFlight: number; blocked: Set<() => void> }>();
  const stateOf = (context: HubAmqpConnectionContext) => {
    let state = connections.get(context);
    if (!state) {
      state = { inFlight: 0, blocked: new Set() };
      connections.set(context, state);
    }
    return state;
  };
  /** When the readers look at the store: one poll for the endpoint, for other processes' events. */
  const poll = new EventHubPoll({
    everyMs: EVENTS_POLL_MS,
    lastSequenceNumber: (hubName, partition) => eventHubs.partitionState(hubName, partition).lastSequenceNumber,
    onError: (hubName, err) =>
      options.log.error('hub.eventhub', `${hubName}: partitions not read: ${(err as Error).message}`),
  });
  // This process's own telemetry wakes the readers of its partition at once.
  hub.subscribe((event) => {
    if (event.kind === 'telemetry') poll.stored(event.hub, partitionOf(event.deviceId, eventHubs.partitionCount));
  });

  const authorized = (context: HubAmqpConnectionContext, hubName: string) =>
    context.authorizations().some((a) => a.kind === 'eventhub' && a.hub === hubName);

  const attachManagement = (link: Sender | Receiver, context: HubAmqpConnectionContext): boolean => {
    const { amqp } = context;
    if (!link.is_receiver()) return true; // the client's reply link: answers are sent on it
    context.onMessage(link as Receiver, ({ message, delivery }) => {
      delivery?.accept();
      amqp.grantCredit(link as Receiver, 1);
      const answer = manage(message, context);
      const replyLink = replyLinkOf(context, message.reply_to);
      if (!replyLink) {
        amqp.log.debug(
          'hub.eventhub',
          `${amqp.peer}: a management request with no $management reply link; not answered`,
        );
        return;
      }
      amqp.send(replyLink, {
        correlation_id: message.message_id,
        application_properties: {
          'status-code': answer.status,
          'status-description': answer.description,
          ...(answer.condition ? { 'error-condition': answer.condition } : {}),
        },
        ...(answer.body ? { body: answer.body } : {}),
      });
    });
    amqp.grantCredit(link as Receiver, MANAGEMENT_CREDIT);
    return true;
  };

  /** Answers a management request (READ of the event hub or of a partition). */
  const manage = (
    message: Message,
    context: HubAmqpConnectionContext,
  ): { status: number; description: string; condition?: string; body?: Record<string, unknown> } => {
    const properties = (message.application_properties ?? {}) as Record<string, unknown>;
    const name = typeof properties.name === 'string' ? properties.name : '';
    const hubName = eventHubs.hubOfEntity(name);
    if (!hubName)
      return {
        status: 404,
        condition: 'amqp:not-found',
        description: `The messaging entity '${clip(name)}' could not be found.`,
      };
    // The SDK puts a token for `…/{eventHubName}/$management` on $cbs before it attaches here.
    if (!authorized(context, hubName))
      return {
        status: 401,
        condition: 'amqp:unauthorized-access',
        description: `Unauthorized: put a token of a policy with ServiceConnect for '${clip(name)}' on $cbs first.`,
      };
    if (properties.operation !== 'READ')
      return {
        status: 400,
        condition: 'com.microsoft:argument-error',
        description: `The management operation '${clip(String(properties.operation))}' is not READ.`,
      };
    const entity = eventHubs.entityOf(hubName);
    if (properties.type === 'com.microsoft:eventhub')
      return {
        status: 200,
        description: 'OK',
        body: eventHubInfo(entity, eventHubs.createdAt, eventHubs.partitionCount),
      };
    if (properties.type === 'com.microsoft:partition') {
      const id = typeof properties.partition === 'string' ? properties.partition : String(properties.partition);
      const partition = partitionNumber(id, eventHubs.partitionCount);
      if (partition === undefined)
        return {
          status: 400,
          condition: 'com.microsoft:argument-out-of-range',
          description: partitionRangeError(eventHubs.partitionCount),
        };
      return {
        status: 200,
        description: 'OK',
        body: partitionInfo(entity, partition, eventHubs.partitionState(hubName, partition)),
      };
    }
    return {
      status: 400,
      condition: 'com.microsoft:argument-error',
      description: `The management type '${clip(String(properties.type))}' is not com.microsoft:eventhub or com.microsoft:partition.`,
    };
  };

  /** The client's `$management` reply link whose target is `replyTo` (the SDK's receiver), else its latest. */
  const replyLinks = new WeakMap<HubAmqpConnectionContext, OpenEndpoints<Sender>>();
  const replyLinkOf = (context: HubAmqpConnectionContext, replyTo: unknown): Sender | undefined => {
    const links = [...(replyLinks.get(context) ?? [])].filter((l) => l.is_open());
    return links.find((l) => l.target?.address === replyTo) ?? links[links.length - 1];
  };

  const attachPartition = (
    link: Sender | Receiver,
    address: Extract<ReturnType<typeof parseEventHubAddress>, { kind: 'partition' }>,
    context: HubAmqpConnectionContext,
  ): boolean => {
    const { amqp } = context;
    const hubName = eventHubs.hubOfEntity(address.entity);
    const refuse = (condition: string, description: string) => {
      amqp.log.debug(
        'hub.eventhub',
        `${amqp.peer}: a receiver on "${clip(address.entity)}/…/Partitions/${clip(address.partition)}" refused: ${description}`,
      );
      link.close({ condition, description });
      return true;
    };
    if (link.is_receiver())
      return refuse(
        'amqp:not-allowed',
        "IoT Hub's built-in endpoint takes no events: its telemetry comes from devices.",
      );
    if (!hubName) return refuse('amqp:not-found', `The messaging entity '${clip(address.entity)}' could not be found.`);
    // Authorized by a put-token whose audience covers the link's address (the SDK puts one per link).
    const path = `${address.entity}/ConsumerGroups/${address.consumerGroup}/Partitions/${address.partition}`;
    const grantedFor = () => grantedUntil(eventHubGrants(context), hubName, path);
    if (grantedFor() === undefined)
      return refuse(
        'amqp:unauthorized-access',
        `Unauthorized: put a token of a policy with ServiceConnect for '${clip(address.entity)}' on $cbs first.`,
      );
    // A consumer group the hub has not got: Event Hubs refuses the link as an entity not found.
    const consumerGroup = eventHubs.consumerGroupOf(hubName, address.consumerGroup);
    if (consumerGroup === undefined)
      return refuse(
        'amqp:not-found',
        `The messaging entity '${clip(address.entity)}/ConsumerGroups/${clip(address.consumerGroup)}' could not be found (${eventHubs.entityOf(hubName)}'s consumer groups: ${eventHubs.consumerGroups(hubName).join(', ')}; the emulator's config adds them: iotHubs[].consumerGroups).`,
      );
    const partition = partitionNumber(address.partition, eventHubs.partitionCount);
    if (partition === undefined)
      return refuse('com.microsoft:argument-out-of-range', partitionRangeError(eventHubs.partitionCount));
    const parsed = parseEventPosition(selectorOf(link as Sender));
    if (!parsed.ok) return refuse('com.microsoft:argument-error', parsed.error);
    const start = eventHubs.startSequence(hubName, partition, parsed.position);
    if (!start.ok) return refuse('com.microsoft:argument-out-of-range', start.error);
    const sender = link as Sender;
    const withRuntimeMetric = asksFor(sender, RUNTIME_METRIC_CAPABILITY);
    // Offered back, as Event Hubs does for a capability it grants.
    if (withRuntimeMetric)
      (sender as unknown as { local: { attach: Record<string, unknown> } }).local.attach.offered_capabilities =
        RUNTIME_METRIC_CAPABILITY;

    // Owner levels (epochs), among this process's readers of the partition and consumer group:
    // each consumer group has its own (Event Hubs applies them per consumer group and partition).
    const key = `${hubName.toLowerCase()}|${consumerGroup.toLowerCase()}|${partition}`;
    const epoch = epochOf(sender);
    const current = (readers.get(key) ?? []).filter((r) => r.link.is_open());
    const highest = Math.max(-1, ...current.map((r) => r.epoch ?? -1));
    if (epoch === undefined) {
      if (current.some((r) => r.epoch !== undefined))
        return refuse(
          'amqp:link:stolen',
          `A receiver with epoch '${highest}' already exists on partition ${partition}; a receiver without an epoch cannot be created.`,
        );
      if (current.length >= MAX_NON_EPOCH_RECEIVERS)
        return refuse(
          'amqp:resource-limit-exceeded',
          `Exceeded the maximum number of allowed receivers per partition in a consumer group which is ${MAX_NON_EPOCH_RECEIVERS}.`,
        );
    } else {
      if (highest > epoch)
        return refuse(
          'amqp:link:stolen',
          `Receiver with a higher epoch '${highest}' already exists on partition ${partition}; epoch '${epoch}' cannot be created.`,
        );
      for (const reader of current)
        reader.link.close({
          condition: 'amqp:link:stolen',
          description: `New receiver with higher epoch of '${epoch}' is created hence current receiver with epoch '${reader.epoch ?? 'none'}' is getting disconnected.`,
        });
      current.length = 0;
    }
    const reader: PartitionReader = { link: sender, epoch };
    current.push(reader);
    readers.set(key, current);

    const connection = stateOf(context);
    let next = start.sequenceNumber;
    let unsettled = 0;
    /** Events sent on the link (rhea's delivery count catches up as it writes them). */
    let sent = 0;
    let closed = false;
    const pump = () => {
      if (closed || !sender.is_open()) return;
      const credit = creditLeft(sender, sent);
      if (credit <= 0) return; // 'sendable' wakes it
      const connectionRoom = EVENTS_IN_FLIGHT_PER_CONNECTION - connection.inFlight;
      if (connectionRoom <= 0) {
        connection.blocked.add(pump); // a settlement wakes it
        return;
      }
      const wanted = Math.min(credit, connectionRoom, EVENTS_PER_READ);
      let events: ReturnType<EventHubService['eventsFrom']>;
      let runtime: Record<string, unknown> | undefined;
      try {
        events = eventHubs.eventsFrom(hubName, partition, next, wanted);
        // The runtime metric, read once a batch (when the receiver asked for it).
        if (events.length > 0 && withRuntimeMetric) runtime = runtimeInfo(eventHubs.partitionState(hubName, partition));
      } catch (err) {
        // The next poll (or telemetry) tries again.
        amqp.log.error('hub.eventhub', `${hubName} partition ${partition}: events not read: ${(err as Error).message}`);
        return;
      }
      for (const event of events) {
        const shaped = eventMessage(event);
        const delivery = amqp.send(sender, {
          ...shaped.properties,
          ...(runtime ? { delivery_annotations: runtime } : {}),
          message_annotations: shaped.message_annotations,
          application_properties: shaped.application_properties,
          body: rhea.message.data_section(shaped.body),
        });
        if (!delivery) return; // the connection is closed (or closing)
        next = event.sequenceNumber + 1;
        sent += 1;
        unsettled += 1;
        connection.inFlight += 1;
      }
      // A full batch: there may be more (the next look stops at credit, the bound or the end).
      if (events.length === wanted) pump();
    };
    sender.on('sendable', pump);
    // Its token runs out at its se unless a put-token for its audience renews it (the SDK renews
    // before): then Event Hubs force-detaches the link, as Service Bus does (RenewToken).
    const expiry = watchGrant(grantedFor, () => {
      amqp.log.debug(
        'hub.eventhub',
        `${amqp.peer}: a receiver on ${path}: its token expired unrenewed; link detached`,
        {
          hub: hubName,
          reason: 'expired',
        },
      );
      sender.close({ condition: 'amqp:link:detach-forced', description: renewTokenDescription(sender.name, path) });
    });
    sender.on('settled', () => {
      if (unsettled === 0) return;
      unsettled -= 1;
      connection.inFlight -= 1;
      // Room again on the connection: the links that stopped for it go on.
      const blocked = [...connection.blocked];
      connection.blocked.clear();
      for (const other of blocked) other();
    });
    const unpoll = poll.add({ hub: hubName, partition, next: () => next, pump });
    context.onClose(sender, () => {
      closed = true;
      expiry.cancel();
      unpoll();
      connection.blocked.delete(pump);
      connection.inFlight -= unsettled;
      unsettled = 0;
      const left = (readers.get(key) ?? []).filter((r) => r !== reader && r.link.is_open());
      if (left.length > 0) readers.set(key, left);
      else readers.delete(key);
    });
    amqp.log.debug(
      'hub.eventhub',
      `${amqp.peer}: a receiver on ${eventHubs.entityOf(hubName)} consumer group ${consumerGroup} partition ${partition}, from sequence number ${next}`,
      { hub: hubName, consumerGroup, partition, sequenceNumber: next, ...(epoch === undefined ? {} : { epoch }) },
    );
    pump();
    return true;
  };

  /**
   * A link on the hub's own `messages/events` (its AMQP endpoint, as the Event Hubs samples'
   * iothubConnectionString opens one): detached with `amqp:link:redirect`, its info naming the
   * built-in endpoint (`hostname`, `network-host`, `port`, `address`
   * `amqps://{host}:{port}/{hub name}/$management`), as IoT Hub answers. The `hostname` carries the
   * port when it is not 5671, so that a connection string made from it (`sb://{hostname}/`) reaches
   * the emulator.
   */
  const redirect = (link: Sender | Receiver, context: HubAmqpConnectionContext): boolean => {
    const service = context.service('messages/events');
    if (!service) {
      link.close({
        condition: 'amqp:unauthorized-access',
        description:
          'Reading messages/events needs a policy with ServiceConnect whose sr reaches {hub}/messages/events (SASL PLAIN {policy}@sas.root.{hub name}).',
      });
      return true;
    }
    const endpoint = options.endpointHost() ?? 'localhost:5671';
    const [host = 'localhost', portText = '5671'] = endpoint.split(':');
    const port = Number(portText);
    const hostname = port === 5671 ? host : `${host}:${port}`;
    link.close({
      condition: 'amqp:link:redirect',
      description: `The built-in endpoint of ${service.hub} is the event hub ${eventHubs.entityOf(service.hub)} at ${hostname}.`,
      info: {
        hostname,
        'network-host': host,
        port,
        address: `amqps://${host}:${port}/${eventHubs.entityOf(service.hub)}/$management`,
      },
    } as never);
    return true;
  };

  return {
    attach(link, address, context) {
      const parsed = parseEventHubAddress(address);
      if (!parsed) return false;
      if (parsed.kind === 'management') {
        if (!link.is_receiver()) {
          const links = replyLinks.get(context) ?? new OpenEndpoints<Sender>();
          links.add(link as Sender);
          replyLinks.set(context, links);
          return true;
        }
        return attachManagement(link, context);
      }
      if (parsed.kind === 'partition') return attachPartition(link, parsed, context);
      if (isMessagesEvents(address)) return redirect(link, context);
      // `{eventHubName}` or `{eventHubName}/Partitions/{id}`: a producer's link (only for a hub's name).
      if (!eventHubs.hubOfEntity(parsed.entity)) return false;
      link.close({
        condition: link.is_receiver() ? 'amqp:not-allowed' : 'amqp:not-found',
        description: link.is_receiver()
          ? "IoT Hub's built-in endpoint takes no events: its telemetry comes from devices."
          : `The address '${clip(address)}' is not {eventHubName}/ConsumerGroups/{consumerGroup}/Partitions/{partitionId}.`,
      });
      return true;
    },
  };
}

/** Event Hubs' text for a partition id out of range. */
function partitionRangeError(count: number): string {
  return `The specified partition is invalid for an EventHub partition sender or receiver. It should be between 0 and ${count - 1}.`;
}

/** The selector filter's string (rhea gives a described value or, unwrapped, the string). */
function selectorOf(link: Sender): unknown {
  const filter = (link.source as { filter?: Record<string, unknown> } | undefined)?.filter;
  const value = filter?.[SELECTOR_FILTER];
  if (value && typeof value === 'object' && 'value' in value) return (value as { value: unknown }).value;
  return value;
}

/** The receiver's owner level (`com.microsoft:epoch`), if it has one. */
function epochOf(link: Sender): number | undefined {
  const value = (link.properties as Record<string, unknown> | undefined)?.[EPOCH_PROPERTY];
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  return undefined;
}

/** The credit the client gave `link` (rhea keeps it on the link; its typings leave it out). */

/** Whether `address` is a hub's own `messages/events` (with or without `amqps://{host}/`, a `$management` tail). */
function isMessagesEvents(address: string): boolean {
  const path = address
    .replace(/^amqps?:\/\/[^/]*\//i, '')
    .replace(/^\/+/, '')
    .toLowerCase();
  return path === 'messages/events' || path.startsWith('messages/events/');
}

/** Whether the peer's ATTACH of `link` lists `capability` among its desired capabilities (a symbol or an array of them). */
function asksFor(link: Sender, capability: string): boolean {
  const desired = (link as unknown as { remote?: { attach?: { desired_capabilities?: unknown } } }).remote?.attach
    ?.desired_capabilities;
  const list = Array.isArray(desired) ? desired : desired === undefined ? [] : [desired];
  return list.some((value) => String(value) === capability);
}

/** The Event Hubs put-tokens of a connection (`EventHubGrant`s). */
function eventHubGrants(context: HubAmqpConnectionContext): EventHubGrant[] {
  const grants: EventHubGrant[] = [];
  for (const a of context.authorizations()) if (a.kind === 'eventhub') grants.push(a);
  return grants;
}

/**
 * Calls `onExpired` once `until()` (seconds since the epoch, re-read when it is reached: a renewal
 * moves it on) is past, or undefined; `cancel` stops it. Each wait is an `expiryTimer`.
 */
function watchGrant(until: () => number | undefined, onExpired: () => void): { cancel(): void } {
  let timer: ExpiryTimer | undefined;
  let cancelled = false;
  const arm = () => {
    const at = until();
    if (at === undefined || at * 1000 <= Date.now()) {
      onExpired();
      return;
    }
    timer = expiryTimer(at * 1000, () => {
      if (!cancelled) arm();
    });
  };
  arm();
  return {
    cancel: () => {
      cancelled = true;
      timer?.cancel();
    },
  };
}

/**
 * The force-detach of a link whose token expired unrenewed, in Service Bus's words ("The link '…' is
 * force detached. Code: RenewToken. Details: Unauthorized access. 'Listen' claim(s) are required to
 * perform this operation. Resource: '…'": azure-sdk-for-python#23487, dapr/components-contrib#809;
 * condition amqp:link:detach-forced), without the TrackingId, SystemTracker and Timestamp it adds.
 */
function renewTokenDescription(linkName: string, path: string): string {
  return `The link '${clip(linkName)}' is force detached. Code: RenewToken. Details: Unauthorized access. 'Listen' claim(s) are required to perform this operation. Resource: '${clip(path)}'.`;
}
