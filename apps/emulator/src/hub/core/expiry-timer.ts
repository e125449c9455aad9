/**
 * The longest delay `setTimeout` takes (2^31-1 ms, ~24.8 days): Node fires a longer one after 1 ms
 * (TimeoutOverflowWarning), so a SAS token valid for a year would end its connection at once.
 */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * The longest one wait of an expiry timer, after which it reads the clock again. Node's timers run
 * on the monotonic clock while a token's `se` is wall-clock time: a clock set forward (or a host
 * suspended and resumed: the monotonic clock stands still meanwhile) would otherwise let a connection
 * outlive its token by as long as the jump. Five minutes bounds that lateness at one wake-up per
 * timer every five minutes.
 */
export const EXPIRY_STEP_MS = 5 * 60_000;

export interface ExpiryTimer {
  /** Stops the timer: `onExpired` is not called (again). */
  cancel(): void;
}

/**
 * Calls `onExpired` once, when the wall clock (`now`, default `Date.now`) reaches `expiresAtMs` (a
 * token's `se` × 1000): never before, whatever the clock does meanwhile (set back: it waits on), and
 * at most EXPIRY_STEP_MS after (set forward), however far ahead the expiry is. Already past: on the
 * next turn, never synchronously (the caller finishes what it was doing first). The timer does not
 * keep the process alive.
 */
export function expiryTimer(
  expiresAtMs: number,
  onExpired: () => void,
  options: { now?: () => number } = {},
): ExpiryTimer {
  if (!Number.isFinite(expiresAtMs)) throw new RangeError(`expiresAtMs must be a finite time, not ${expiresAtMs}`);
  const now = options.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let done = false;
  const schedule = () => {
    timer = setTimeout(step, Math.min(Math.max(expiresAtMs - now(), 0), EXPIRY_STEP_MS));
    timer.unref();
  };
  const step = () => {
    if (done) return;
    if (expiresAtMs - now() > 0) {
      schedule();
      return;
    }
    done = true;
    onExpired();
  };
  schedule();
  return {
    cancel() {
      done = true;
      clearTimeout(timer);
    },
  };
}
