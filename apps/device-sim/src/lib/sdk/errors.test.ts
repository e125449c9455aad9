import { describe, expect, it } from 'vitest';
import { describeRegistrationError } from './errors.js';

describe('describeRegistrationError: AMQP', () => {
  it('names the condition as azure-iot-amqp-base would and reads the DPS body from the description', () => {
    // What the AMQP transport rejects register() with for a wrong key: the connection's close error, as is.
    const closeError = {
      condition: 'amqp:unauthorized-access',
      description: '{"errorCode":401002,"trackingId":"t","message":"IotHubUnauthorizedAccess","timestampUtc":"x"}',
    };
    expect(describeRegistrationError(closeError)).toEqual({
      status: 'error',
      errorName: 'UnauthorizedError',
      errorMessage: 'IotHubUnauthorizedAccess',
      errorCode: 401002,
    });
  });

  it('keeps an unknown condition and a description that is not a DPS body', () => {
    expect(
      describeRegistrationError({ condition: 'amqp:resource-limit-exceeded', description: 'too many links' }),
    ).toEqual({
      status: 'error',
      errorName: 'amqp:resource-limit-exceeded',
      errorMessage: 'too many links',
    });
  });
});
