import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EXPIRY_STEP_MS, expiryTimer, MAX_TIMER_DELAY_MS } from './expiry-timer.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

// vitest's fake timers: `Date.now()` is the wall clock, which vi.setSystemTime sets (a jump) without
// moving the timers' own clock, as a clock set by hand or NTP does to Node's monotonic timers.
const pass = (ms: number) => vi.advanceTimersByTime(ms);
/** The wall clock jumps by `ms` (negative: set back); the timers' clock does not move. */
const jump = (ms: number) => vi.setSystemTime(Date.now() + ms);

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(1_700_000_000_000);
});
afterEach(() => {
  vi.useRealTimers();
});

describe('expiryTimer', () => {
  it("a token valid for 40 days (beyond setTimeout's ~24.8): not at once, not before its expiry, once at it", () => {
    const expired = vi.fn();
    expiryTimer(Date.now() + 40 * DAY, expired);
    pass(MAX_TIMER_DELAY_MS + 1);
    expect(expired).not.toHaveBeenCalled();
    pass(40 * DAY - (MAX_TIMER_DELAY_MS + 1) - 1);
    expect(expired).not.toHaveBeenCalled();
    pass(1);
    expect(expired).toHaveBeenCalledTimes(1);
    pass(DAY);
    expect(expired).toHaveBeenCalledTimes(1);
  });

  it('waits on when the wall clock is set back: never before the expiry', () => {
    const expired = vi.fn();
    const expiresAt = Date.now() + 10 * MINUTE;
    expiryTimer(expiresAt, expired);
    pass(5 * MINUTE);
    jump(-60 * MINUTE);
    pass(10 * MINUTE);
    expect(expired).not.toHaveBeenCalled();
    pass(expiresAt - Date.now() - 1);
    expect(expired).not.toHaveBeenCalled();
    pass(EXPIRY_STEP_MS);
    expect(expired).toHaveBeenCalledTimes(1);
  });

  it('fires within one step of a wall clock set forward past the expiry (or a host resumed from suspend)', () => {
    const expired = vi.fn();
    expiryTimer(Date.now() + DAY, expired);
    jump(2 * DAY);
    pass(EXPIRY_STEP_MS);
    expect(expired).toHaveBeenCalledTimes(1);
  });

  it('an expiry already past fires on the next turn, not while the caller is still at work', () => {
    const expired = vi.fn();
    expiryTimer(Date.now() - 1000, expired);
    expect(expired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(0);
    expect(expired).toHaveBeenCalledTimes(1);
  });

  it('cancelled, it never fires; it keeps no timer', () => {
    const expired = vi.fn();
    const timer = expiryTimer(Date.now() + 30 * DAY, expired);
    pass(EXPIRY_STEP_MS * 3);
    timer.cancel();
    expect(vi.getTimerCount()).toBe(0);
    pass(31 * DAY);
    expect(expired).not.toHaveBeenCalled();
  });

  it('refuses an expiry that is no time, naming it', () => {
    expect(() => expiryTimer(Number.NaN, () => {})).toThrow(/expiresAtMs must be a finite time, not NaN/);
  });
});
