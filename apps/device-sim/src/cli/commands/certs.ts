import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type CertificateSummary,
  createDeviceCertificate,
  createIntermediateCa,
  createRootCa,
  type IssuedCertificate,
  summarizeCertificate,
} from '../../lib/certificates.js';
import { InvalidOptionError } from '../../lib/errors.js';
import type { CertsCreateConfig, CertsThumbprintConfig } from '../args.js';
import { type CliIo, EXIT } from '../io.js';

const ROOT_NAME = 'dpskit test root CA';
const INTERMEDIATE_NAME = 'dpskit test intermediate CA';

/** `device-sim certs create`: CAs (reused when present) and device certificates, with their thumbprints. */
export async function runCertsCreate(config: CertsCreateConfig, io: CliIo): Promise<number> {
  mkdirSync(config.out, { recursive: true });
  const options = { days: config.days };
  const print = (role: string, file: string, summary: CertificateSummary, reused: boolean) =>
    io.stdout.write(
      config.json
        ? `${JSON.stringify({ role, file, reused, ...summary })}\n`
        : `${role.padEnd(12)} ${file}${reused ? ' (kept)' : ''}\n  ${summary.subject}  issuer ${summary.issuer}  until ${summary.notAfter}\n  SHA-1 ${summary.sha1Thumbprint}  SHA-256 ${summary.sha256Thumbprint}\n`,
    );

  const root = await ensureCa(join(config.out, 'root'), () => createRootCa(ROOT_NAME, options));
  print('root CA', root.file, summarizeCertificate(root.pair.cert), root.reused);
  let issuer = root.pair;
  let chain = '';
  if (config.intermediate) {
    const intermediate = await ensureCa(join(config.out, 'intermediate'), () =>
      createIntermediateCa(INTERMEDIATE_NAME, root.pair, options),
    );
    print('intermediate', intermediate.file, summarizeCertificate(intermediate.pair.cert), intermediate.reused);
    issuer = intermediate.pair;
    chain = intermediate.pair.cert;
  }
  for (const id of config.ids) {
    const device = await createDeviceCertificate(id, issuer, {
      ...options,
      ...(config.organizationalUnit ? { organizationalUnit: config.organizationalUnit } : {}),
    });
    const file = join(config.out, `${id}.pem`);
    // What the device presents: its certificate, then the intermediate (DPS needs the chain up to
    // the enrollment group's certificate).
    writeFileSync(file, device.cert + chain);
    writeFileSync(join(config.out, `${id}.key.pem`), device.key, { mode: 0o600 });
    print('device', file, summarizeCertificate(device.cert), false);
  }
  return EXIT.ok;
}

/** `device-sim certs thumbprint`: subject and thumbprints of the first certificate in each file. */
export async function runCertsThumbprint(config: CertsThumbprintConfig, io: CliIo): Promise<number> {
  let failed = 0;
  for (const file of config.files) {
    let summary: CertificateSummary;
    try {
      summary = summarizeCertificate(readFileSync(file, 'utf8'));
    } catch (err) {
      failed++;
      const why =
        err instanceof InvalidOptionError ? err.message : ((err as NodeJS.ErrnoException).code ?? String(err));
      io.stderr.write(`device-sim: ${file}: ${why}\n`);
      continue;
    }
    io.stdout.write(
      config.json
        ? `${JSON.stringify({ file, ...summary })}\n`
        : `${file}\n  ${summary.subject}  issuer ${summary.issuer}  until ${summary.notAfter}\n  SHA-1 ${summary.sha1Thumbprint}  SHA-256 ${summary.sha256Thumbprint}\n`,
    );
  }
  return failed > 0 ? EXIT.notAssigned : EXIT.ok;
}

/** `<base>.pem` and `<base>.key.pem`: read when both exist, else created and written. */
async function ensureCa(
  base: string,
  create: () => Promise<IssuedCertificate>,
): Promise<{ pair: IssuedCertificate; file: string; reused: boolean }> {
  const file = `${base}.pem`;
  const keyFile = `${base}.key.pem`;
  if (existsSync(file) && existsSync(keyFile)) {
    return { pair: { cert: readFileSync(file, 'utf8'), key: readFileSync(keyFile, 'utf8') }, file, reused: true };
  }
  const pair = await create();
  writeFileSync(file, pair.cert);
  writeFileSync(keyFile, pair.key, { mode: 0o600 });
  return { pair, file, reused: false };
}
