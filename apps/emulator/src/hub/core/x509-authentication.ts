import { X509Certificate } from 'node:crypto';
import type { DeviceIdentity } from './identity.js';

export type CertificateAuthFailure =
  | 'certificate-missing'
  | 'certificate-invalid'
  | 'certificate-expired'
  | 'thumbprint-mismatch';

export type CertificateAuthResult = { ok: true } | { ok: false; reason: CertificateAuthFailure; detail: string };

/**
 * IoT Hub's X.509 thumbprint (`selfSigned`) authentication of a device connection: the device's
 * own certificate, presented in the TLS handshake (which proved it holds the private key), has the
 * identity's primary or secondary thumbprint, SHA-1 or SHA-256 (IoT Hub stores either; case and
 * colons do not matter), and is within its validity dates. Nothing else is checked: not the chain,
 * not the subject (the Azure/iotedge edgeHub, which mirrors IoT Hub, checks only thumbprint and
 * expiry for thumbprint authentication).
 */
export function checkThumbprintCertificate(
  identity: Pick<DeviceIdentity, 'deviceId' | 'primaryThumbprint' | 'secondaryThumbprint'>,
  chain: readonly Uint8Array[],
  now: Date,
): CertificateAuthResult {
  const der = chain[0];
  if (!der) {
    return {
      ok: false,
      reason: 'certificate-missing',
      detail: `device "${identity.deviceId}" authenticates by X.509 certificate and presented none in the TLS handshake`,
    };
  }
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(der);
  } catch (err) {
    return {
      ok: false,
      reason: 'certificate-invalid',
      detail: `the client certificate cannot be read (${(err as Error).message})`,
    };
  }
  const sha1 = normalizeThumbprint(leaf.fingerprint);
  const sha256 = normalizeThumbprint(leaf.fingerprint256);
  const expected = [identity.primaryThumbprint, identity.secondaryThumbprint]
    .filter((t): t is string => Boolean(t))
    .map(normalizeThumbprint);
  if (!expected.some((t) => t === sha1 || t === sha256)) {
    return {
      ok: false,
      reason: 'thumbprint-mismatch',
      detail: `the client certificate (SHA-256 ${sha256}) has neither thumbprint of device "${identity.deviceId}"`,
    };
  }
  const from = new Date(leaf.validFrom);
  const to = new Date(leaf.validTo);
  if (now < from || now > to) {
    return {
      ok: false,
      reason: 'certificate-expired',
      detail:
        now < from
          ? `the client certificate is not valid before ${from.toISOString()}`
          : `the client certificate expired ${to.toISOString()}`,
    };
  }
  return { ok: true };
}

/** Thumbprints compare as upper-case hex without separators. */
export function normalizeThumbprint(thumbprint: string): string {
  return thumbprint.replace(/[:\s-]/g, '').toUpperCase();
}

/** Whether `text` is a SHA-1 or SHA-256 thumbprint as IoT Hub's registry takes one (hex, 40 or 64 digits). */
export function isThumbprint(text: string): boolean {
  return /^(?:[0-9A-F]{40}|[0-9A-F]{64})$/.test(normalizeThumbprint(text));
}
