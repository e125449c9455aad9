import { type LatencySummary, summarizeLatencies } from '@dpskit/node-kit';
import type { OutcomeStatus, RegistrationOutcome, TransportName } from './types.js';

/** One row of "outcomes by status and error code". */
export interface OutcomeGroup {
  status: OutcomeStatus;
  errorCode?: number;
  errorName?: string;
  /**
   * The devices' message: outcomes of one status, code and error name are told apart by it (DPS's
   * 400207 says the webhook's status, or that it could not be reached, or did not answer), up to
   * `MAX_MESSAGES_PER_KIND` texts; past those, the rest share one row, with `otherMessages`.
   */
  errorMessage?: string;
  /** This row also holds devices with messages other than `errorMessage` (the first of them). */
  otherMessages?: true;
  count: number;
  /** What to change, when the cause is usually on the user's side: `device-sim fleet` fills it in, `runFleet` does not. */
  hint?: string;
}

export interface FleetSummary {
  transport: TransportName;
  concurrency: number;
  /** Devices asked for (`--count`). */
  requested: number;
  /** Devices whose registration was started. */
  launched: number;
  /** Devices that reached an outcome (any status, cancelled ones excluded). */
  completed: number;
  /** Devices in flight when the run was stopped, cancelled without an outcome. */
  cancelled: number;
  /** Devices never started because the run was stopped. */
  notStarted: number;
  stoppedEarly: boolean;
  byStatus: Record<OutcomeStatus, number>;
  outcomes: OutcomeGroup[];
  /** Devices per assigned hub, most first. */
  hubs: Array<{ hub: string; count: number }>;
  durationMs: number;
  /** Completed registrations per second of wall-clock time. */
  registrationsPerSecond: number;
  /** Latency of completed registrations (register() start to outcome), in ms. */
  latencyMs: LatencySummary | null;
  /** With `connect`: devices that connected to their hub (twin read, property reported, telemetry sent), those that could not, and messages sent. */
  hub?: {
    connected: number;
    failed: number;
    telemetrySent: number;
    /** `hint`: as on an outcome group (`device-sim fleet`'s). */
    errors: Array<{ errorName: string; count: number; hint?: string }>;
    /** With `connect.stay`: what the devices answered and received while they stayed, summed. */
    stay?: { methods: number; desiredChanges: number; messages: number };
  };
}

/**
 * Rows of their own per status, code and error name, one per message: enough for DPS's 400207 texts
 * (each webhook status, unreachable, timeout, a bad answer); a message carrying per-device detail must
 * not grow the table, or the tally's memory, with the fleet.
 */
export const MAX_MESSAGES_PER_KIND = 8;

/** The error name `registerDevice` gives a registration stopped by its AbortSignal. */
export const CANCELLED_ERROR_NAME = 'AbortError';

export function isCancelled(outcome: RegistrationOutcome): boolean {
  return outcome.status === 'error' && outcome.errorName === CANCELLED_ERROR_NAME;
}

/** Accumulates outcomes as they arrive; `summary` can be taken at any time (progress, Ctrl-C). */
export class FleetTally {
  private readonly groups = new Map<string, OutcomeGroup>();
  /** Distinct messages with a row of their own, per status, code and error name. */
  private readonly messagesPerKind = new Map<string, number>();
  private readonly hubs = new Map<string, number>();
  private readonly latencies: number[] = [];
  readonly byStatus: Record<OutcomeStatus, number> = { assigned: 0, failed: 0, disabled: 0, error: 0 };
  completed = 0;
  cancelled = 0;
  private hubSessions:
    | {
        connected: number;
        failed: number;
        telemetrySent: number;
        errors: Map<string, number>;
        stay?: { methods: number; desiredChanges: number; messages: number };
      }
    | undefined;

  add(outcome: RegistrationOutcome): void {
    if (isCancelled(outcome)) {
      this.cancelled += 1;
      return;
    }
    this.completed += 1;
    this.byStatus[outcome.status] += 1;
    if (outcome.hubSession) {
      this.hubSessions ??= { connected: 0, failed: 0, telemetrySent: 0, errors: new Map() };
      const session = outcome.hubSession;
      this.hubSessions.telemetrySent += session.telemetrySent;
      if (session.stay) {
        this.hubSessions.stay ??= { methods: 0, desiredChanges: 0, messages: 0 };
        const stay = this.hubSessions.stay;
        stay.methods += session.stay.methods;
        stay.desiredChanges += session.stay.desiredChanges;
        stay.messages += session.stay.messages;
      }
      if (session.status === 'connected') this.hubSessions.connected += 1;
      else {
        this.hubSessions.failed += 1;
        const name = session.errorName ?? 'Error';
        this.hubSessions.errors.set(name, (this.hubSessions.errors.get(name) ?? 0) + 1);
      }
    }
    this.latencies.push(outcome.durationMs);
    if (outcome.status === 'assigned' && outcome.assignedHub) {
      this.hubs.set(outcome.assignedHub, (this.hubs.get(outcome.assignedHub) ?? 0) + 1);
    }
    this.count(outcome);
  }

  /** Adds the outcome to its row: by status, code, error name and message (bounded per kind, see `OutcomeGroup`). */
  private count(outcome: RegistrationOutcome): void {
    if (outcome.status === 'assigned') {
      const assigned = this.groups.get('assigned');
      if (assigned) assigned.count += 1;
      else this.groups.set('assigned', { status: 'assigned', count: 1 });
      return;
    }
    const kind = `${outcome.status}|${outcome.errorCode ?? ''}|${outcome.errorName ?? ''}`;
    const exact = `${kind}|m:${outcome.errorMessage ?? ''}`;
    const messages = this.messagesPerKind.get(kind) ?? 0;
    const key = this.groups.has(exact) || messages < MAX_MESSAGES_PER_KIND ? exact : `${kind}|other`;
    const group = this.groups.get(key);
    if (group) {
      group.count += 1;
      return;
    }
    const created: OutcomeGroup = { status: outcome.status, count: 1 };
    if (outcome.errorCode !== undefined) created.errorCode = outcome.errorCode;
    if (outcome.errorName !== undefined) created.errorName = outcome.errorName;
    if (outcome.errorMessage !== undefined) created.errorMessage = outcome.errorMessage;
    if (key === exact) this.messagesPerKind.set(kind, messages + 1);
    else created.otherMessages = true;
    this.groups.set(key, created);
  }

  summary(run: {
    transport: TransportName;
    concurrency: number;
    requested: number;
    launched: number;
    durationMs: number;
    stoppedEarly: boolean;
  }): FleetSummary {
    const statusOrder: OutcomeStatus[] = ['assigned', 'failed', 'disabled', 'error'];
    const outcomes = [...this.groups.values()].sort(
      (a, b) =>
        statusOrder.indexOf(a.status) - statusOrder.indexOf(b.status) ||
        Number(a.otherMessages ?? false) - Number(b.otherMessages ?? false) ||
        b.count - a.count,
    );
    const hubs = [...this.hubs.entries()]
      .map(([hub, count]) => ({ hub, count }))
      .sort((a, b) => b.count - a.count || a.hub.localeCompare(b.hub));
    const seconds = run.durationMs / 1000;
    return {
      transport: run.transport,
      concurrency: run.concurrency,
      requested: run.requested,
      launched: run.launched,
      completed: this.completed,
      cancelled: this.cancelled,
      notStarted: run.requested - run.launched,
      stoppedEarly: run.stoppedEarly,
      byStatus: { ...this.byStatus },
      outcomes,
      hubs,
      durationMs: run.durationMs,
      registrationsPerSecond: seconds > 0 ? this.completed / seconds : 0,
      latencyMs: summarizeLatencies(this.latencies),
      ...(this.hubSessions
        ? {
            hub: {
              connected: this.hubSessions.connected,
              failed: this.hubSessions.failed,
              telemetrySent: this.hubSessions.telemetrySent,
              errors: [...this.hubSessions.errors].map(([errorName, count]) => ({ errorName, count })),
              ...(this.hubSessions.stay ? { stay: { ...this.hubSessions.stay } } : {}),
            },
          }
        : {}),
    };
  }
}
