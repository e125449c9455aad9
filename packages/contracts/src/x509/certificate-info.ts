import * as z from 'zod';

/**
 * `X509CertificateInfo` as the DPS service API reports it for an uploaded certificate (and, in
 * dpskit, as the webhook's `deviceRuntimeContext.x509` describes the device's certificate).
 * Names are printed the .NET way, most specific first: `CN=device-1, O=Contoso, C=US`.
 * Thumbprints are upper-case hex without separators.
 */
export const x509CertificateInfoSchema = z.looseObject({
  subjectName: z.string(),
  sha1Thumbprint: z.string(),
  sha256Thumbprint: z.string(),
  issuerName: z.string(),
  notBeforeUtc: z.string(),
  notAfterUtc: z.string(),
  serialNumber: z.string(),
  version: z.number().int(),
});
export type X509CertificateInfo = z.infer<typeof x509CertificateInfoSchema>;
