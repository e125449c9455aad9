import { describe, expect, it } from 'vitest';
import { CANCELLED_ERROR_NAME, FleetTally, MAX_MESSAGES_PER_KIND } from './stats.js';
import type { RegistrationOutcome } from './types.js';

function outcome(partial: Partial<RegistrationOutcome>): RegistrationOutcome {
  return { registrationId: 'd', transport: 'mqtt', status: 'assigned', durationMs: 10, ...partial };
}

describe('FleetTally', () => {
  it('groups outcomes by status and error code, counts hubs, and computes the rate', () => {
    const tally = new FleetTally();
    const hubA = 'contoso-toasters-hub-1098.azure-devices.net';
    for (let i = 0; i < 3; i++) tally.add(outcome({ assignedHub: hubA, durationMs: 100 + i }));
    tally.add(outcome({ assignedHub: 'other.azure-devices.net', durationMs: 50 }));
    for (let i = 0; i < 2; i++) {
      tally.add(
        outcome({
          status: 'failed',
          errorCode: 400207,
          errorName: 'ProvisioningRegistrationFailedError',
          errorMessage: 'Custom allocation failed with status code: 400',
          durationMs: 200,
        }),
      );
    }
    tally.add(outcome({ status: 'error', errorCode: 401002, errorName: 'UnauthorizedError', durationMs: 5 }));
    tally.add(outcome({ status: 'error', errorName: CANCELLED_ERROR_NAME, durationMs: 9999 }));

    const s = tally.summary({
      transport: 'mqtt',
      concurrency: 4,
      requested: 10,
      launched: 8,
      durationMs: 2000,
      stoppedEarly: true,
    });
    expect(s.completed).toBe(7);
    expect(s.cancelled).toBe(1);
    expect(s.notStarted).toBe(2);
    expect(s.byStatus).toEqual({ assigned: 4, failed: 2, disabled: 0, error: 1 });
    expect(s.outcomes).toEqual([
      { status: 'assigned', count: 4 },
      {
        status: 'failed',
        errorCode: 400207,
        errorName: 'ProvisioningRegistrationFailedError',
        errorMessage: 'Custom allocation failed with status code: 400',
        count: 2,
      },
      { status: 'error', errorCode: 401002, errorName: 'UnauthorizedError', count: 1 },
    ]);
    expect(s.hubs).toEqual([
      { hub: hubA, count: 3 },
      { hub: 'other.azure-devices.net', count: 1 },
    ]);
    expect(s.registrationsPerSecond).toBe(3.5);
    // the cancelled device's 9999 ms is not a latency
    expect(s.latencyMs?.max).toBe(200);
    expect(s.latencyMs?.count).toBe(7);
  });

  it("keeps apart the messages of one code (a webhook's 400 and 404, unreachable), up to a bound per kind", () => {
    const tally = new FleetTally();
    const failed = (errorMessage: string) =>
      outcome({ status: 'failed', errorCode: 400207, errorName: 'ProvisioningRegistrationFailedError', errorMessage });
    for (let i = 0; i < 3; i++) tally.add(failed('Custom allocation failed with status code: 400'));
    tally.add(failed('An error occurred while sending the request.'));
    for (let i = 0; i < 2; i++) tally.add(failed('Custom allocation failed with status code: 404'));
    // one-off texts beyond the bound share a row, marked as holding other messages
    for (let i = 0; i < MAX_MESSAGES_PER_KIND + 2; i++)
      tally.add(outcome({ status: 'error', errorName: 'Error', errorMessage: `#${i}` }));
    tally.add(outcome({ status: 'error', errorName: 'Error', errorMessage: '#0' }));
    const s = tally.summary({
      transport: 'mqtt',
      concurrency: 1,
      requested: 17,
      launched: 17,
      durationMs: 1,
      stoppedEarly: false,
    });
    const name = 'ProvisioningRegistrationFailedError';
    expect(s.outcomes.slice(0, 3)).toEqual([
      {
        status: 'failed',
        errorCode: 400207,
        errorName: name,
        errorMessage: 'Custom allocation failed with status code: 400',
        count: 3,
      },
      {
        status: 'failed',
        errorCode: 400207,
        errorName: name,
        errorMessage: 'Custom allocation failed with status code: 404',
        count: 2,
      },
      {
        status: 'failed',
        errorCode: 400207,
        errorName: name,
        errorMessage: 'An error occurred while sending the request.',
        count: 1,
      },
    ]);
    const errors = s.outcomes.filter((g) => g.status === 'error');
    expect(errors).toHaveLength(MAX_MESSAGES_PER_KIND + 1);
    expect(errors[0]).toEqual({ status: 'error', errorName: 'Error', errorMessage: '#0', count: 2 });
    expect(errors.at(-1)).toEqual({
      status: 'error',
      errorName: 'Error',
      errorMessage: `#${MAX_MESSAGES_PER_KIND}`,
      otherMessages: true,
      count: 2,
    });
    expect(errors.reduce((n, g) => n + g.count, 0)).toBe(MAX_MESSAGES_PER_KIND + 3);
  });

  it('summarizes an empty run', () => {
    const s = new FleetTally().summary({
      transport: 'http',
      concurrency: 1,
      requested: 0,
      launched: 0,
      durationMs: 0,
      stoppedEarly: false,
    });
    expect(s.latencyMs).toBeNull();
    expect(s.registrationsPerSecond).toBe(0);
    expect(s.outcomes).toEqual([]);
  });
});
