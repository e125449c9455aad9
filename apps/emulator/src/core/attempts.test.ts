import { describe, expect, it } from 'vitest';
import { attemptFromEvent, MAX_ATTEMPT_TEXT } from './attempts.js';
import type { RegistrationEvent } from './events.js';

const event = (overrides: Partial<RegistrationEvent> = {}): RegistrationEvent => ({
  registrationId: 'dev-1',
  operationId: 'op-1',
  transport: 'mqtt',
  enrollment: { kind: 'group', id: 'g' },
  policy: 'custom',
  outcome: { status: 'failed', errorCode: 400207, errorMessage: 'Custom allocation failed with status code: 400' },
  webhook: { url: 'http://x/api?****', status: 400, latencyMs: 3, attempts: 1 },
  webhookExchange: {
    request: { url: 'http://x/api?****', body: '{"deviceRuntimeContext":{}}' },
    response: { status: 400, body: 'Unrecognized device registration.' },
  },
  devicePayload: { a: 1 },
  registrationState: { registrationId: 'dev-1', status: 'failed', errorCode: 400207 },
  durationMs: 5,
  timestampUtc: '2026-12-02T12:00:00.000Z',
  ...overrides,
});

describe('attemptFromEvent', () => {
  it('keeps the summary for the list and the exchange, payload and state as text for the detail', () => {
    const entry = attemptFromEvent(event());
    expect(entry).toMatchObject({
      registrationId: 'dev-1',
      status: 'failed',
      errorCode: 400207,
      webhook: { status: 400 },
      detail: {
        devicePayload: { text: '{"a":1}' },
        webhook: {
          request: { url: 'http://x/api?****', body: { text: '{"deviceRuntimeContext":{}}' } },
          response: { status: 400, body: { text: 'Unrecognized device registration.' } },
        },
        registrationState: { text: '{"registrationId":"dev-1","status":"failed","errorCode":400207}' },
      },
    });
    expect(entry).not.toHaveProperty('webhookExchange');
  });

  it('bounds what a device or a webhook chose: long bodies clipped with a count, long ids clipped', () => {
    const long = 'x'.repeat(MAX_ATTEMPT_TEXT + 10);
    const entry = attemptFromEvent(
      event({
        registrationId: `${'r'.repeat(300)}\n`,
        webhookExchange: { request: { url: 'u', body: long }, response: { status: 200, body: long } },
      }),
    );
    expect(entry.detail.webhook?.request.body).toEqual({ text: 'x'.repeat(MAX_ATTEMPT_TEXT), omitted: 10 });
    expect(entry.detail.webhook?.response?.body.omitted).toBe(10);
    expect(entry.registrationId.length).toBeLessThan(200);
  });
});
