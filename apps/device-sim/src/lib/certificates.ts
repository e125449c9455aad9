import { X509Certificate as NodeX509Certificate, webcrypto } from 'node:crypto';
import { registrationIdProblem } from '@dpskit/contracts/keys';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  type Extension,
  KeyUsageFlags,
  KeyUsagesExtension,
  PemConverter,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from '@peculiar/x509';
import { InvalidOptionError } from './errors.js';

// Test and demo certificates for X.509 attestation, made with @peculiar/x509 over Node's WebCrypto
// (no hand-written ASN.1): a root CA, an intermediate CA, and device certificates whose subject CN
// is the registration id, as DPS requires. ECDSA P-256 with SHA-256 throughout.

// @peculiar/x509 types its provider as the DOM's Crypto; Node's webcrypto is that at runtime.
type Provider = NonNullable<Parameters<typeof X509CertificateGenerator.create>[1]>;
const crypto = webcrypto as unknown as Provider;
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

/** A certificate with its private key, both PEM (the key PKCS#8). */
export interface IssuedCertificate {
  cert: string;
  key: string;
}

export interface CertificateOptions {
  /** Valid from one hour before `now` (clock skew) for this many days. Default 365. */
  days?: number;
  now?: Date;
}

/** A self-signed root CA certificate named `CN=<commonName>`. */
export async function createRootCa(commonName: string, options: CertificateOptions = {}): Promise<IssuedCertificate> {
  const keys = await generateKeys();
  const name = distinguishedName({ commonName });
  const cert = await X509CertificateGenerator.create(
    {
      ...validity(options),
      serialNumber: serialNumber(),
      subject: name,
      issuer: name,
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new BasicConstraintsExtension(true, undefined, true),
        new KeyUsagesExtension(
          KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign | KeyUsageFlags.digitalSignature,
          true,
        ),
        await SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { cert: `${cert.toString('pem')}\n`, key: await exportKey(keys.privateKey) };
}

/** An intermediate CA certificate named `CN=<commonName>`, signed by `issuer`. */
export async function createIntermediateCa(
  commonName: string,
  issuer: IssuedCertificate,
  options: CertificateOptions = {},
): Promise<IssuedCertificate> {
  return issue(issuer, distinguishedName({ commonName }), options, [
    new BasicConstraintsExtension(true, 0, true),
    new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign | KeyUsageFlags.digitalSignature, true),
  ]);
}

/**
 * A device certificate: subject `CN=<registrationId>` (and `OU=<organizationalUnit>`, a property a
 * custom allocation policy can decide by), client authentication, signed by `issuer`.
 */
export async function createDeviceCertificate(
  registrationId: string,
  issuer: IssuedCertificate,
  options: CertificateOptions & { organizationalUnit?: string } = {},
): Promise<IssuedCertificate> {
  const problem = registrationIdProblem(registrationId);
  if (problem) throw new InvalidOptionError('registrationId', problem);
  const name = distinguishedName({ commonName: registrationId, organizationalUnit: options.organizationalUnit });
  return issue(issuer, name, options, [
    new BasicConstraintsExtension(false, undefined, true),
    new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
    new ExtendedKeyUsageExtension([ExtendedKeyUsage.clientAuth]),
  ]);
}

/** What identifies a certificate: its subject and the thumbprints DPS and the Azure portal show. */
export interface CertificateSummary {
  subject: string;
  issuer: string;
  /** Upper-case hex, no separators (as the portal and `X509CertificateInfo`). */
  sha1Thumbprint: string;
  sha256Thumbprint: string;
  notAfter: string;
}

/** Describes the first certificate of a PEM text (a device file holds its chain after it). */
export function summarizeCertificate(pem: string): CertificateSummary {
  let certificate: NodeX509Certificate;
  try {
    certificate = new NodeX509Certificate(firstPem(pem));
  } catch (err) {
    throw new InvalidOptionError('certificate', `not a PEM certificate (${(err as Error).message})`);
  }
  return {
    subject: certificate.subject.split('\n').reverse().join(', '),
    issuer: certificate.issuer.split('\n').reverse().join(', '),
    sha1Thumbprint: certificate.fingerprint.replaceAll(':', ''),
    sha256Thumbprint: certificate.fingerprint256.replaceAll(':', ''),
    notAfter: new Date(certificate.validTo).toISOString(),
  };
}

/** The certificates of a PEM text, in order (a device's certificate followed by its chain). */
export function splitPemCertificates(pem: string): string[] {
  return PemConverter.decode(pem).map((der) => `${new X509Certificate(der).toString('pem')}\n`);
}

async function issue(
  issuer: IssuedCertificate,
  subject: string,
  options: CertificateOptions,
  extensions: Extension[],
): Promise<IssuedCertificate> {
  const issuerCert = new X509Certificate(firstPem(issuer.cert));
  const signingKey = await importKey(issuer.key);
  const keys = await generateKeys();
  const cert = await X509CertificateGenerator.create(
    {
      ...validity(options),
      serialNumber: serialNumber(),
      subject,
      issuer: issuerCert.subject,
      publicKey: keys.publicKey,
      signingKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        ...extensions,
        await SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await AuthorityKeyIdentifierExtension.create(issuerCert, false, crypto),
      ],
    },
    crypto,
  );
  return { cert: `${cert.toString('pem')}\n`, key: await exportKey(keys.privateKey) };
}

function distinguishedName(parts: { commonName: string; organizationalUnit?: string | undefined }): string {
  // Most general first, as CAs encode names; printed most specific first as `CN=…, OU=…`.
  const escaped = (value: string) => value.replace(/([,+"\\<>;=])/g, '\\$1');
  return [
    ...(parts.organizationalUnit ? [`OU=${escaped(parts.organizationalUnit)}`] : []),
    `CN=${escaped(parts.commonName)}`,
  ].join(', ');
}

function validity(options: CertificateOptions): { notBefore: Date; notAfter: Date } {
  const days = options.days ?? 365;
  if (!Number.isFinite(days) || days <= 0) throw new InvalidOptionError('days', `days must be positive, not ${days}`);
  const now = options.now ?? new Date();
  return { notBefore: new Date(now.getTime() - 3_600_000), notAfter: new Date(now.getTime() + days * DAY) };
}

/** 16 random bytes, the first below 0x80 so that the DER integer stays positive. */
function serialNumber(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f || 0x01;
  return Buffer.from(bytes).toString('hex');
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function exportKey(key: CryptoKey): Promise<string> {
  return `${PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY')}\n`;
}

async function importKey(pem: string): Promise<CryptoKey> {
  try {
    const [der] = PemConverter.decode(pem);
    if (!der) throw new Error('no PEM block');
    return await webcrypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign']);
  } catch (err) {
    throw new InvalidOptionError('key', `the issuer key is not a PKCS#8 P-256 private key (${(err as Error).message})`);
  }
}

function firstPem(pem: string): string {
  const [first] = splitPemCertificates(pem);
  if (!first) throw new InvalidOptionError('certificate', 'no PEM certificate found');
  return first;
}
