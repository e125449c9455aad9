// Certificate signing requests as a device makes them for DPS certificate issuance: a fresh
// ECDSA P-256 key pair and a PKCS#10 request signed with it, made with @peculiar/x509.
import { webcrypto } from 'node:crypto';
import { PemConverter, Pkcs10CertificateRequestGenerator } from '@peculiar/x509';

type Provider = NonNullable<Parameters<typeof Pkcs10CertificateRequestGenerator.create>[1]>;
const crypto = webcrypto as unknown as Provider;
const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface TestCsr {
  /** What the register body's `csr` carries: base64 DER, no PEM armour. */
  csr: string;
  /** The device's private key, PEM (PKCS#8), to use with the issued certificate. */
  key: string;
}

/** A request for `CN=<commonName>` (DPS requires the registration id). */
export async function createTestCsr(commonName: string): Promise<TestCsr> {
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const request = await Pkcs10CertificateRequestGenerator.create(
    { name: `CN=${commonName}`, keys, signingAlgorithm: ALGORITHM },
    crypto,
  );
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return {
    csr: Buffer.from(request.rawData).toString('base64'),
    key: `${PemConverter.encode(pkcs8, 'PRIVATE KEY')}\n`,
  };
}

/** The same request with one byte of its signature changed: well formed, signature invalid. */
export function tamperedCsr(csr: string): string {
  const der = Buffer.from(csr, 'base64');
  const last = der.length - 1;
  der[last] = (der[last] ?? 0) ^ 0x01;
  return der.toString('base64');
}
