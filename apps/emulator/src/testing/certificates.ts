// X.509 material for tests, made with selfsigned (the library the emulator's own TLS files come
// from): CAs, intermediates and device certificates with chosen names, issuers and dates.
import { generate } from 'selfsigned';

export interface TestCertificate {
  /** PEM. */
  cert: string;
  /** PEM (PKCS#8). */
  key: string;
}

const DAY = 86_400_000;

interface Validity {
  notBefore?: Date;
  notAfter?: Date;
}

function dates(validity: Validity) {
  const now = Date.now();
  return {
    notBeforeDate: validity.notBefore ?? new Date(now - DAY),
    notAfterDate: validity.notAfter ?? new Date(now + 365 * DAY),
  };
}

/** A CA certificate: self-signed (a root) or signed by `issuer` (an intermediate). */
export async function createTestCa(
  commonName: string,
  options: Validity & { issuer?: TestCertificate } = {},
): Promise<TestCertificate> {
  const pems = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    ...dates(options),
    ...(options.issuer ? { ca: options.issuer } : {}),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/**
 * A device (end-entity) certificate whose subject CN is `commonName` (DPS takes the registration id
 * from it), signed by `issuer`, or self-signed without one. `organizationalUnit` gives a property a
 * custom allocation policy can decide by.
 */
export async function createTestDeviceCertificate(
  commonName: string,
  options: Validity & { issuer?: TestCertificate; organizationalUnit?: string } = {},
): Promise<TestCertificate> {
  const pems = await generate(
    // Encoded most general first, as CAs do: printed (most specific first) as `CN=…, OU=…`.
    [
      ...(options.organizationalUnit ? [{ shortName: 'OU', value: options.organizationalUnit }] : []),
      { name: 'commonName', value: commonName },
    ],
    {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      ...dates(options),
      ...(options.issuer ? { ca: options.issuer } : {}),
      extensions: [
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, critical: true },
        { name: 'extKeyUsage', clientAuth: true },
      ],
    },
  );
  return { cert: pems.cert, key: pems.private };
}

/** What a device presents: its certificate followed by the intermediates, as one PEM text. */
export function pemChain(...certificates: TestCertificate[]): string {
  return `${certificates.map((c) => c.cert.trim()).join('\n')}\n`;
}

/** DER bytes of each certificate in a PEM text. */
export function derChain(pem: string): Buffer[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map((m) =>
    Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'),
  );
}
