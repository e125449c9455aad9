import type * as z from 'zod';
import { classicWebhookSchemas } from '../allocation/webhook-classic.js';

/**
 * `X509CertificateInfo` as the DPS service API reports it for an uploaded certificate (and, in
 * dpskit, as the webhook's `deviceRuntimeContext.x509` describes the device's certificate).
 * Names are printed the .NET way, most specific first: `CN=device-1, O=Contoso, C=US`.
 * Thumbprints are upper-case hex without separators.
 */
export const x509CertificateInfoSchema = classicWebhookSchemas.x509CertificateInfoSchema;
export type X509CertificateInfo = z.infer<typeof x509CertificateInfoSchema>;
