import { createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  PemConverter,
  Pkcs10CertificateRequest,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from '@peculiar/x509';
import { DEFAULT_ISSUED_CERTIFICATE_DAYS, IssuingCaError } from './issuing-ca.js';

// DPS certificate issuance (api-version 2025-07-01-preview and later): a device sends a PKCS#10
// certificate signing request (`csr`) with its register request; on assignment DPS answers with
// `issuedCertificateChain` (the issued certificate, then its issuers up to the root) and registers
// the issued certificate's thumbprint in the device's hub. Real DPS forwards the request to a CA
// linked through a credential policy; the emulator signs with an issuing CA given to it (a
// certificate and its private key, PEM). ASN.1 is @peculiar/x509's, over Node's WebCrypto.

// @peculiar/x509 types its provider as the DOM's Crypto; Node's webcrypto is that at runtime.
type Provider = NonNullable<Parameters<typeof X509CertificateGenerator.create>[1]>;
const crypto = webcrypto as unknown as Provider;
type CryptoKey = webcrypto.CryptoKey;

const DAY = 86_400_000;

export interface IssuingCa {
  /** The issuing certificate first, then the issuers given with it (up to the root), DER. */
  chain: readonly X509Certificate[];
  signingKey: CryptoKey;
  signingAlgorithm: { name: string; hash: string };
  days: number;
}

/**
 * Loads the issuing CA: `certPem` holds the CA certificate (optionally followed by its issuers up
 * to the root, which go into every issued chain), `keyPem` its private key (PKCS#8 or the
 * traditional EC/RSA PEM). Checks that the certificate is a CA and that the key is its key.
 */
export async function loadIssuingCa(
  certPem: string,
  keyPem: string,
  options: { days?: number } = {},
): Promise<IssuingCa> {
  let chain: X509Certificate[];
  try {
    chain = PemConverter.decode(certPem).map((der) => new X509Certificate(der));
  } catch (err) {
    throw new IssuingCaError(`the issuing CA certificate is not PEM X.509 (${(err as Error).message})`);
  }
  const [ca] = chain;
  if (!ca) throw new IssuingCaError('the issuing CA certificate file holds no certificate');
  const constraints = ca.getExtension(BasicConstraintsExtension);
  if (!constraints?.ca) {
    throw new IssuingCaError(`the issuing CA certificate "${ca.subject}" is not a CA certificate (basicConstraints)`);
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new IssuingCaError('the issuing CA key is not a PEM private key');
  }
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (!Buffer.from(ca.publicKey.rawData).equals(spki)) {
    throw new IssuingCaError(`the issuing CA key is not the key of "${ca.subject}"`);
  }
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  let algorithm: { name: string; namedCurve?: string; hash?: string };
  let signingAlgorithm: { name: string; hash: string };
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const named =
      curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : curve === 'secp521r1' ? 'P-521' : undefined;
    if (!named) throw new IssuingCaError(`the issuing CA key's curve ${curve ?? '?'} is not P-256, P-384 or P-521`);
    algorithm = { name: 'ECDSA', namedCurve: named };
    signingAlgorithm = {
      name: 'ECDSA',
      hash: named === 'P-256' ? 'SHA-256' : named === 'P-384' ? 'SHA-384' : 'SHA-512',
    };
  } else if (key.asymmetricKeyType === 'rsa') {
    algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    signingAlgorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  } else {
    throw new IssuingCaError(`the issuing CA key is ${key.asymmetricKeyType ?? 'of an unknown type'}, not EC or RSA`);
  }
  const signingKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign']);
  const days = options.days ?? DEFAULT_ISSUED_CERTIFICATE_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > 3650) {
    throw new IssuingCaError(`issued certificates' validity must be 1 to 3650 days, not ${days}`);
  }
  return { chain, signingKey, signingAlgorithm, days };
}

export type CsrCheck = { ok: true; request: Pkcs10CertificateRequest } | { ok: false; problem: string };

/**
 * What is wrong with a register body's `csr`, read as DPS specifies it (base64 DER PKCS#10 without
 * PEM armour, subject CN = the registration id, case-insensitive as registration ids are), or
 * undefined. Synchronous: the signature is `checkCsr`'s.
 */
export function csrProblem(csr: string, registrationId: string): string | undefined {
  const read = readCsr(csr, registrationId);
  return 'problem' in read ? read.problem : undefined;
}

function readCsr(csr: string, registrationId: string): { request: Pkcs10CertificateRequest } | { problem: string } {
  let request: Pkcs10CertificateRequest;
  try {
    request = new Pkcs10CertificateRequest(Buffer.from(csr, 'base64'));
  } catch (err) {
    return { problem: `csr is not a base64 DER PKCS#10 certificate signing request (${(err as Error).message})` };
  }
  const names = request.subjectName.getField('CN');
  const cn = names[names.length - 1];
  if (cn === undefined || cn.toLowerCase() !== registrationId.toLowerCase()) {
    return {
      problem: `csr's subject CN ${cn === undefined ? 'is missing' : `"${cn.slice(0, 128)}"`} is not the registration id "${registrationId}"`,
    };
  }
  return { request };
}

/** `csrProblem`, and the request's signature verified with its public key (the device holds the key). */
export async function checkCsr(csr: string, registrationId: string): Promise<CsrCheck> {
  const read = readCsr(csr, registrationId);
  if ('problem' in read) return { ok: false, problem: read.problem };
  const { request } = read;
  let verified: boolean;
  try {
    verified = await request.verify(crypto);
  } catch (err) {
    return { ok: false, problem: `csr's signature cannot be checked (${(err as Error).message})` };
  }
  if (!verified) return { ok: false, problem: "csr's signature does not verify with its public key" };
  return { ok: true, request };
}

/**
 * Signs a device certificate for the checked request: subject `CN=<registration id>` (the id as the
 * device sent it), the request's public key, client authentication, valid from one hour before
 * `now` (clock skew) for the CA's configured days. Returns `issuedCertificateChain`: base64 DER,
 * the new certificate first, then the CA's chain.
 */
export async function issueCertificate(
  ca: IssuingCa,
  request: Pkcs10CertificateRequest,
  registrationId: string,
  now: Date,
): Promise<string[]> {
  const issuer = ca.chain[0] as X509Certificate;
  const publicKey = await request.publicKey.export(crypto);
  const certificate = await X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: `CN=${registrationId.replace(/([,+"\\<>;=])/g, '\\$1')}`,
      issuer: issuer.subject,
      notBefore: new Date(now.getTime() - 3_600_000),
      notAfter: new Date(now.getTime() + ca.days * DAY),
      publicKey,
      signingKey: ca.signingKey,
      signingAlgorithm: ca.signingAlgorithm,
      extensions: [
        new BasicConstraintsExtension(false, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
        new ExtendedKeyUsageExtension([ExtendedKeyUsage.clientAuth]),
        await SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
        await AuthorityKeyIdentifierExtension.create(issuer, false, crypto),
      ],
    },
    crypto,
  );
  return [certificate, ...ca.chain].map((c) => Buffer.from(c.rawData).toString('base64'));
}

/** 16 random bytes, the first below 0x80 so that the DER integer stays positive. */
function serialNumber(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f || 0x01;
  return Buffer.from(bytes).toString('hex');
}
