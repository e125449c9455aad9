// A module of its own, free of zod, so that the `@dpskit/contracts/allocation` bundle can export it
// without request.ts's classic schemas (see webhook-schemas.ts).

/**
 * `customAllocationDefinition.apiVersion` values DPS sends to webhooks today. They select the
 * version of the service types embedded in the request; bodies captured with both are
 * structurally identical for symmetric-key enrollments.
 */
export const WEBHOOK_API_VERSIONS = ['2019-03-31', '2021-10-01'] as const;
export type WebhookApiVersion = (typeof WEBHOOK_API_VERSIONS)[number];
