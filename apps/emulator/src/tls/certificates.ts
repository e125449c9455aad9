import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { generate } from 'selfsigned';

export interface TlsMaterial {
  caCertPath: string;
  caCertPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  /** What happened on this start: reused files, or why they were (re)generated. */
  action: 'reused' | 'generated' | 'regenerated-server' | 'regenerated-all';
  reason?: string;
}

const DAY = 86_400_000;
/** Certificates this close to expiry are replaced rather than reused. */
const RENEW_BEFORE_MS = DAY;

/** The names every server certificate covers: what `localhost:PORT` and loopback addresses resolve to. */
export const DEFAULT_TLS_NAMES = ['localhost', '127.0.0.1', '::1'] as const;

/**
 * A local CA and a server certificate signed by it, in `<dir>`: created on first start and reused
 * afterwards, so the CA a user trusted (NODE_EXTRA_CA_CERTS) keeps working. The server certificate
 * is re-issued by the same CA when it is about to expire or does not cover every requested name;
 * the CA is replaced only when it is unusable or about to expire itself.
 */
export async function ensureCertificates(options: {
  dir: string;
  names?: readonly string[];
  now?: Date;
}): Promise<TlsMaterial> {
  const now = options.now ?? new Date();
  const names = unique([...DEFAULT_TLS_NAMES, ...(options.names ?? [])]);
  const paths = {
    caCert: join(options.dir, 'ca.pem'),
    caKey: join(options.dir, 'ca.key.pem'),
    serverCert: join(options.dir, 'server.pem'),
    serverKey: join(options.dir, 'server.key.pem'),
  };
  mkdirSync(options.dir, { recursive: true });

  const existing = Object.values(paths).every((path) => existsSync(path));
  let ca: { cert: string; key: string } | undefined;
  let caProblem = existing ? undefined : 'no certificates yet';
  if (existing) {
    const caCert = readFileSync(paths.caCert, 'utf8');
    const caKey = readFileSync(paths.caKey, 'utf8');
    caProblem = caCertificateProblem(caCert, caKey, now);
    if (!caProblem) ca = { cert: caCert, key: caKey };
  }

  if (ca) {
    const serverCert = readFileSync(paths.serverCert, 'utf8');
    const serverKey = readFileSync(paths.serverKey, 'utf8');
    const problem = serverCertificateProblem(serverCert, serverKey, ca.cert, names, now);
    if (!problem)
      return {
        caCertPath: paths.caCert,
        caCertPem: ca.cert,
        serverCertPem: serverCert,
        serverKeyPem: serverKey,
        action: 'reused',
      };
    const server = await issueServerCertificate(ca, names, now);
    writeSecret(paths.serverKey, server.key);
    writeFileSync(paths.serverCert, server.cert);
    return {
      caCertPath: paths.caCert,
      caCertPem: ca.cert,
      serverCertPem: server.cert,
      serverKeyPem: server.key,
      action: 'regenerated-server',
      reason: problem,
    };
  }

  const newCa = await createCa(now);
  const server = await issueServerCertificate(newCa, names, now);
  writeSecret(paths.caKey, newCa.key);
  writeFileSync(paths.caCert, newCa.cert);
  writeSecret(paths.serverKey, server.key);
  writeFileSync(paths.serverCert, server.cert);
  const result: TlsMaterial = {
    caCertPath: paths.caCert,
    caCertPem: newCa.cert,
    serverCertPem: server.cert,
    serverKeyPem: server.key,
    action: existing ? 'regenerated-all' : 'generated',
  };
  if (existing && caProblem) result.reason = caProblem;
  return result;
}

async function createCa(now: Date): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: 'commonName', value: 'dpskit DPS emulator local CA' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - DAY),
    notAfterDate: new Date(now.getTime() + 10 * 365 * DAY),
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

async function issueServerCertificate(
  ca: { cert: string; key: string },
  names: readonly string[],
  now: Date,
): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: 'commonName', value: names.find((n) => !isIP(n)) ?? 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - DAY),
    notAfterDate: new Date(now.getTime() + 825 * DAY),
    ca,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: names.map((name) =>
          isIP(name) ? { type: 7 as const, ip: name } : { type: 2 as const, value: name },
        ),
      },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

function caCertificateProblem(certPem: string, keyPem: string, now: Date): string | undefined {
  try {
    const cert = new X509Certificate(certPem);
    if (!cert.ca) return 'the CA certificate is not a CA';
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) return 'the CA key does not match the CA certificate';
    return validityProblem(cert, now, 'CA certificate');
  } catch (err) {
    return `the CA files cannot be read (${(err as Error).message})`;
  }
}

function serverCertificateProblem(
  certPem: string,
  keyPem: string,
  caPem: string,
  names: readonly string[],
  now: Date,
): string | undefined {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return 'the server certificate was not issued by the CA';
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) return 'the server key does not match the server certificate';
    const validity = validityProblem(cert, now, 'server certificate');
    if (validity) return validity;
    const covered = subjectAltNames(cert);
    const missing = names.filter((name) => !covered.has(normalizeName(name)));
    if (missing.length > 0) return `the server certificate does not cover ${missing.join(', ')}`;
    return undefined;
  } catch (err) {
    return `the server certificate files cannot be read (${(err as Error).message})`;
  }
}

function validityProblem(cert: X509Certificate, now: Date, what: string): string | undefined {
  const from = new Date(cert.validFrom).getTime();
  const to = new Date(cert.validTo).getTime();
  if (now.getTime() < from) return `the ${what} is not valid before ${cert.validFrom}`;
  if (now.getTime() > to - RENEW_BEFORE_MS) return `the ${what} expires ${cert.validTo}`;
  return undefined;
}

/** `DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1` → normalized names. */
export function subjectAltNames(cert: X509Certificate): Set<string> {
  const out = new Set<string>();
  for (const part of (cert.subjectAltName ?? '').split(/,\s*/)) {
    const match = /^(DNS|IP Address):(.+)$/.exec(part.trim());
    if (match?.[2]) out.add(normalizeName(match[2]));
  }
  return out;
}

function normalizeName(name: string): string {
  return isIP(name) === 6 ? expandIpv6(name) : name.toLowerCase();
}

function expandIpv6(address: string): string {
  const [head = '', tail] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((group) => Number.parseInt(group, 16).toString(16)).join(':');
}

function unique(names: readonly string[]): string[] {
  const seen = new Set<string>();
  return names.filter((name) => {
    const key = normalizeName(name);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function writeSecret(path: string, content: string): void {
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600);
}
