import { createHmac, timingSafeEqual } from 'node:crypto';
import { parseSasToken, SasTokenError } from '@dpskit/contracts';
import type { ServiceAuthFailure } from '../../core/service-auth.js';
import {
  audienceEntity,
  consumerGroupsOf,
  EVENT_HUB_PARTITION_COUNT,
  type EventPosition,
  eventHubName,
  type PartitionState,
  resourceCovers,
  type StoredHubEvent,
} from './eventhub.js';
import { HUB_OWNER_POLICY_NAME, type HubPolicy } from './hub-service.js';

/**
 * The events the store keeps for the built-in endpoint (HubStore extends it): the telemetry
 * messages added with their event fields (`HubStore.addTelemetry`), numbered per partition from 0,
 * offsets counting the bytes before each. A partition keeps what the telemetry keeps: the hub's
 * newest MAX_TELEMETRY_KEPT and each device's newest MAX_TELEMETRY_PER_DEVICE (a partition's newest
 * is always kept: it is its device's newest), so older events may have gaps between them.
 */
export interface EventHubStore {
  /** A partition's events from sequence number `from` on, oldest first, at most `limit`. */
  eventsFrom(hub: string, partition: number, from: number, limit: number): StoredHubEvent[];
  /** A partition's bounds (EMPTY_PARTITION when nothing was ever enqueued there). */
  partitionState(hub: string, partition: number): PartitionState;
  /**
   * The sequence number of the first event kept whose offset is above `offset` (or at it:
   * `inclusive`), or whose enqueued time is after `enqueuedAfterMs`; undefined when none is.
   */
  firstSequenceWhere(
    hub: string,
    partition: number,
    where: { offset: number; inclusive: boolean } | { enqueuedAfterMs: number },
  ): number | undefined;
}

/**
 * The policy a built-in endpoint's connection string names: `iothubowner` (the portal's "Built-in
 * endpoints" string is iothubowner's) if it has ServiceConnect, else the first policy that has it;
 * undefined when none has (the endpoint takes only ServiceConnect: a string of any other policy
 * would be refused with UnauthorizedError at the first call).
 */
export function eventHubReaderPolicy(policies: readonly HubPolicy[]): HubPolicy | undefined {
  const readers = policies.filter((p) => p.rights.includes('ServiceConnect'));
  return readers.find((p) => p.keyName === HUB_OWNER_POLICY_NAME) ?? readers[0];
}

/** Why a put-token or management request for the endpoint was refused (for the log; the client gets 401/404). */
export type EventHubAuthResult =
  /** `expiresAt`: the token's `se` (seconds): links it authorizes are detached then unless renewed. */
  | { ok: true; hub: string; entity: string; expiresAt: number }
  | { ok: false; reason: ServiceAuthFailure | 'unknown-entity'; detail: string };

/**
 * The emulated hubs' Event Hubs-compatible endpoints over the store (any process serving the
 * state folder answers the same): authorization by the hubs' shared access policies with
 * ServiceConnect (as IoT Hub's built-in endpoint takes `iothubowner` or `service`), entity names,
 * partition states and where a receiver starts.
 */
export class EventHubService {
  readonly #store: EventHubStore;
  readonly #hubs: readonly string[];
  /** Each hub's consumer groups (`$Default` first), by its lower-cased host name. */
  readonly #consumerGroups: ReadonlyMap<string, readonly string[]>;
  readonly #policies: readonly HubPolicy[];
  readonly #now: () => Date;
  /** `created_at` of every endpoint: when this service started (the emulator's hubs exist from its start). */
  readonly createdAt: Date;

  constructor(options: {
    store: EventHubStore;
    hubs: readonly string[];
    /** The consumer groups each hub has besides `$Default`, by host name (none: only `$Default`). */
    consumerGroups?: Readonly<Record<string, readonly string[]>>;
    policies: readonly HubPolicy[];
    now?: () => Date;
  }) {
    this.#store = options.store;
    this.#hubs = options.hubs;
    this.#consumerGroups = new Map(
      options.hubs.map((hub) => [hub.toLowerCase(), consumerGroupsOf(options.consumerGroups?.[hub])]),
    );
    this.#policies = options.policies;
    this.#now = options.now ?? (() => new Date());
    this.createdAt = this.#now();
  }

  /** The hub whose Event Hubs-compatible name is `entity` (any case). */
  hubOfEntity(entity: string): string | undefined {
    const wanted = entity.toLowerCase();
    return this.#hubs.find((hub) => eventHubName(hub).toLowerCase() === wanted);
  }

  /** `hub`'s consumer groups, `$Default` first. */
  consumerGroups(hub: string): readonly string[] {
    return this.#consumerGroups.get(hub.toLowerCase()) ?? consumerGroupsOf();
  }

  /** The consumer group of `hub` that `name` names (any case), as configured; undefined if it has none so named. */
  consumerGroupOf(hub: string, name: string): string | undefined {
    const wanted = name.toLowerCase();
    return this.consumerGroups(hub).find((group) => group.toLowerCase() === wanted);
  }

  /** The Event Hubs-compatible name of `hub` (its entity path). */
  entityOf(hub: string): string {
    return eventHubName(hub);
  }

  /**
   * Checks a token for `audience` (`sb://{host}/{entity}/…`): the entity names a hub, the token's
   * `sr` covers the audience, it is signed by a policy of the hubs' with ServiceConnect and not expired.
   */
  authorize(audience: string, token: string | undefined): EventHubAuthResult {
    const entity = audienceEntity(audience);
    const hub = entity === undefined ? undefined : this.hubOfEntity(entity);
    if (!entity || !hub)
      return {
        ok: false,
        reason: 'unknown-entity',
        detail: entity ? `no hub's Event Hubs-compatible name is "${entity}"` : 'the audience names no entity path',
      };
    const fail = (reason: ServiceAuthFailure, detail: string): EventHubAuthResult => ({ ok: false, reason, detail });
    if (!token) return fail('missing-token', 'no token');
    let parsed: ReturnType<typeof parseSasToken>;
    try {
      parsed = parseSasToken(token);
    } catch (err) {
      if (err instanceof SasTokenError) return fail('malformed', err.message);
      throw err;
    }
    const { keyName } = parsed;
    if (!keyName) return fail('unknown-policy', 'the token has no skn (shared access policy name)');
    const policy = this.#policies.find((p) => p.keyName.toLowerCase() === keyName.toLowerCase());
    if (!policy) return fail('unknown-policy', `no shared access policy is named "${keyName}"`);
    if (parsed.expiresAt * 1000 <= this.#now().getTime())
      return fail('expired', `token expired at ${new Date(parsed.expiresAt * 1000).toISOString()}`);
    if (!resourceCovers(parsed.resource, audience))
      return fail('resource-mismatch', `the token is for "${parsed.resource}", not "${audience}"`);
    // Event Hubs (Service Bus) signs with the key's text as the HMAC key (@azure/core-amqp
    // signString: TextEncoder), where IoT Hub signs with the key's base64-decoded bytes.
    const presented = Buffer.from(parsed.signature, 'base64');
    const signed = `${parsed.rawResource}\n${parsed.expiresAt}`;
    const keys = policy.secondaryKey ? [policy.primaryKey, policy.secondaryKey] : [policy.primaryKey];
    const signedByKey = keys.some((key) => {
      const expected = createHmac('sha256', Buffer.from(key, 'utf8')).update(signed).digest();
      return expected.length === presented.length && timingSafeEqual(expected, presented);
    });
    if (!signedByKey)
      return fail('signature-mismatch', `token signature does not match the key (policy "${policy.keyName}")`);
    if (!policy.rights.includes('ServiceConnect'))
      return fail('missing-right', `policy "${policy.keyName}" lacks the ServiceConnect right`);
    return { ok: true, hub, entity: eventHubName(hub), expiresAt: parsed.expiresAt };
  }

  partitionState(hub: string, partition: number): PartitionState {
    return this.#store.partitionState(hub, partition);
  }

  eventsFrom(hub: string, partition: number, from: number, limit: number): StoredHubEvent[] {
    return this.#store.eventsFrom(hub, partition, from, limit);
  }

  /**
   * The sequence number a receiver starting at `position` gets first (events the store no longer
   * keeps are skipped, as Event Hubs skips expired ones), or an error for a sequence number beyond
   * the partition's next (Event Hubs: "The supplied sequence number … is invalid").
   */
  startSequence(
    hub: string,
    partition: number,
    position: EventPosition,
  ): { ok: true; sequenceNumber: number } | { ok: false; error: string } {
    const state = this.#store.partitionState(hub, partition);
    const next = state.lastSequenceNumber + 1;
    const atLeastBegin = (n: number) => Math.max(n, state.empty ? next : state.beginSequenceNumber);
    switch (position.kind) {
      case 'earliest':
        return { ok: true, sequenceNumber: state.empty ? next : state.beginSequenceNumber };
      case 'latest':
        return { ok: true, sequenceNumber: next };
      case 'sequence': {
        const first = position.sequenceNumber + (position.inclusive ? 0 : 1);
        if (first > next)
          return {
            ok: false,
            error: `The supplied sequence number '${position.sequenceNumber}' is invalid. The last sequence number in the system is '${state.lastSequenceNumber}'.`,
          };
        return { ok: true, sequenceNumber: atLeastBegin(first) };
      }
      case 'offset': {
        const found = this.#store.firstSequenceWhere(hub, partition, {
          offset: position.offset,
          inclusive: position.inclusive,
        });
        return { ok: true, sequenceNumber: found ?? next };
      }
      case 'enqueued': {
        const found = this.#store.firstSequenceWhere(hub, partition, { enqueuedAfterMs: position.enqueuedMs });
        return { ok: true, sequenceNumber: found ?? next };
      }
    }
  }

  get partitionCount(): number {
    return EVENT_HUB_PARTITION_COUNT;
  }
}
