import type { Logger } from '@dpskit/node-kit';

/** How one kind (log event) of flood-able warning is counted and summed up. */
export interface LimitedKind {
  /** What the count line says was held: `N more <summary> since <time>, not logged one by one (…)`. */
  summary: string;
  /**
   * The field of a warning's fields its count is kept under (`reason`, `status`, `code`); several:
   * the first a warning has (a kind logged from places that name their cause by different fields);
   * none: `other`.
   */
  countBy: string | readonly string[];
  /** Fields the count line carries besides `suppressed` and `reasons` (e.g. `{ status: 401 }`). */
  fields?: Record<string, unknown>;
}

export interface LimitedWarningsOptions {
  /** The clock the interval is measured on (injectable: tests move it instead of waiting). */
  now?: () => Date;
  /** At most one line in full per kind per interval (default 1000 ms). */
  intervalMs?: number;
}

export interface LimitedWarnings {
  /** The logger to hand to a listener's code: `warn` of a limited kind goes through the limiter, all else as is. */
  readonly log: Logger;
  /** Logs every count held (the listener's close): no warning goes uncounted. */
  flush(): void;
}

/** Distinct keys counted per kind per interval; more are counted as `other`. */
const MAX_COUNTED_KEYS = 32;

interface KindState {
  lastLogged: number;
  held: Map<string, number>;
  heldSince: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * A listener's logger whose warnings of the given kinds, the ones any client can cause once per
 * request or connection (a refused token, an unrouted path, a client not speaking TLS), are
 * logged at most once in full per kind per interval, however hard the flood: one line per request
 * let anyone who can reach a port fill the log. The first warning of a kind in each interval is
 * logged in full, as it was; the others are counted by `countBy` and logged as one line an interval
 * later (an unref'd timer), before the next full line of that kind, or at flush() (the listener's
 * close), whichever comes first: the first is never lost and none goes uncounted. The count line
 * carries only the counts and the kind's own fields: nothing a client sent (no token, no path).
 * Hand-written: a sampling or rate-limited logger from npm would drop lines without counting them.
 */
export function limitWarnings(
  log: Logger,
  kinds: Readonly<Record<string, LimitedKind>>,
  options: LimitedWarningsOptions = {},
): LimitedWarnings {
  const now = options.now ?? (() => new Date());
  const intervalMs = options.intervalMs ?? 1000;
  const states = new Map<string, KindState>();

  const flushKind = (event: string, kind: LimitedKind, state: KindState): void => {
    clearTimeout(state.timer);
    state.timer = undefined;
    if (state.held.size === 0) return;
    const reasons = Object.fromEntries(state.held);
    const count = [...state.held.values()].reduce((sum, n) => sum + n, 0);
    const listed = Object.entries(reasons)
      .map(([reason, n]) => `${reason} ${n}`)
      .join(', ');
    state.held = new Map();
    log.warn(
      event,
      `${count} more ${kind.summary} since ${new Date(state.heldSince).toISOString()}, not logged one by one (${listed})`,
      { ...kind.fields, suppressed: count, reasons },
    );
  };

  const warn = (event: string, msg: string, fields?: Record<string, unknown>): void => {
    const kind = kinds[event];
    if (!kind) {
      log.warn(event, msg, fields);
      return;
    }
    let state = states.get(event);
    if (!state) {
      state = { lastLogged: Number.NEGATIVE_INFINITY, held: new Map(), heldSince: 0, timer: undefined };
      states.set(event, state);
    }
    const at = now().getTime();
    if (at - state.lastLogged < intervalMs) {
      const named = warningKey(kind, fields);
      const key = state.held.has(named) || state.held.size < MAX_COUNTED_KEYS ? named : 'other';
      if (state.held.size === 0) state.heldSince = at;
      state.held.set(key, (state.held.get(key) ?? 0) + 1);
      const held = state;
      state.timer ??= setTimeout(() => flushKind(event, kind, held), intervalMs).unref();
      return;
    }
    flushKind(event, kind, state);
    state.lastLogged = at;
    log.warn(event, msg, fields);
  };

  return {
    log: {
      debug: (event, msg, fields) => log.debug(event, msg, fields),
      info: (event, msg, fields) => log.info(event, msg, fields),
      warn,
      error: (event, msg, fields) => log.error(event, msg, fields),
    },
    flush() {
      for (const [event, state] of states) {
        const kind = kinds[event];
        if (kind) flushKind(event, kind, state);
      }
    },
  };
}

/**
 * The key a warning of `kind` is counted under: the value of the first of `countBy`'s fields it
 * has, else `other`. A count's key is the emulator's own (a reason, a status, an error code);
 * bounded all the same, in length (and by the limiter in number), so that the counts held are too.
 */
export function warningKey(kind: LimitedKind, fields: Record<string, unknown> | undefined): string {
  const names = typeof kind.countBy === 'string' ? [kind.countBy] : kind.countBy;
  const value = names.map((name) => fields?.[name]).find((v) => v !== undefined);
  return value === undefined ? 'other' : String(value).slice(0, 64);
}
