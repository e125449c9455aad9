import * as z from 'zod';
import { defineWebhookSchemas } from './webhook-definition.js';

/**
 * The webhook's contract (webhook-definition.ts) built on zod classic: the main entry's schemas,
 * exported by enrollment.ts, certificate-info.ts, request.ts and response.ts.
 */
export const classicWebhookSchemas = defineWebhookSchemas(z);
