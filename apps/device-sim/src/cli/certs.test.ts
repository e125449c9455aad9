import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { captureIo } from '../testing/io.js';
import { parseCommandLine } from './args.js';
import { main } from './main.js';

const dir = mkdtempSync(join(tmpdir(), 'device-sim-certs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('device-sim certs', () => {
  it('creates a root, an intermediate and N device certificates, prints thumbprints, and reuses the CAs', async () => {
    const out = join(dir, 'pki');
    const io = captureIo();
    const code = await main(
      [
        'certs',
        'create',
        '--out',
        out,
        '--count',
        '3',
        '--registration-id-template',
        'contoso-toaster-{n}',
        '--ou',
        'toasters',
      ],
      io,
    );
    expect(code, io.err()).toBe(0);
    const device = new X509Certificate(readFileSync(join(out, 'contoso-toaster-2.pem')));
    const intermediate = new X509Certificate(readFileSync(join(out, 'intermediate.pem')));
    const root = new X509Certificate(readFileSync(join(out, 'root.pem')));
    expect(device.subject).toBe('OU=toasters\nCN=contoso-toaster-2');
    expect(device.verify(intermediate.publicKey) && intermediate.verify(root.publicKey)).toBe(true);
    // The device file carries the intermediate after the device certificate.
    expect(readFileSync(join(out, 'contoso-toaster-2.pem'), 'utf8').match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(statSync(join(out, 'contoso-toaster-2.key.pem')).mode & 0o777).toBe(0o600);
    expect(io.out()).toContain(device.fingerprint256.replaceAll(':', ''));
    expect(io.out()).toContain(`SHA-1 ${root.fingerprint.replaceAll(':', '')}`);

    const again = captureIo();
    expect(await main(['certs', 'create', '--out', out, 'contoso-heatpump-1', '--json'], again)).toBe(0);
    const lines = again
      .out()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.role, l.reused])).toEqual([
      ['root CA', true],
      ['intermediate', true],
      ['device', false],
    ]);
    expect(lines[0]?.sha256Thumbprint).toBe(root.fingerprint256.replaceAll(':', ''));
  });

  it('prints the thumbprints of certificate files and says which it cannot read', async () => {
    const out = join(dir, 'direct');
    expect(await main(['certs', 'create', '--out', out, '--no-intermediate', 'dev-1'], captureIo())).toBe(0);
    const device = new X509Certificate(readFileSync(join(out, 'dev-1.pem')));
    expect(device.issuer).toBe('CN=dpskit test root CA');
    writeFileSync(join(dir, 'junk.pem'), 'junk');
    const io = captureIo();
    expect(await main(['certs', 'thumbprint', join(out, 'dev-1.pem'), join(dir, 'junk.pem')], io)).toBe(1);
    expect(io.out()).toContain(device.fingerprint.replaceAll(':', ''));
    expect(io.err()).toContain('junk.pem');
  });

  it('takes --cert/--key for register and {id} templates for fleet, and refuses what cannot work', () => {
    const env = { DPS_ID_SCOPE: '0ne00000A0A' };
    const files: Record<string, string> = { 'c.pem': 'CERT', 'k.pem': 'KEY' };
    const readFile = (path: string) => {
      const text = files[path];
      if (text === undefined) throw Object.assign(new Error('no'), { code: 'ENOENT' });
      return text;
    };
    expect(
      parseCommandLine(['register', '--registration-id', 'd1', '--cert', 'c.pem', '--key', 'k.pem'], env, { readFile }),
    ).toMatchObject({ kind: 'register', config: { certificate: { cert: 'CERT', key: 'KEY' } } });
    expect(() =>
      parseCommandLine(['register', '--registration-id', 'd1', '--cert', 'missing.pem', '--key', 'k.pem'], env, {
        readFile,
      }),
    ).toThrow(/--cert: the certificate file "missing.pem" does not exist/);
    expect(() =>
      parseCommandLine(['register', '--registration-id', 'd1', '--cert', 'c.pem'], env, { readFile }),
    ).toThrow(/--cert needs --key/);
    expect(() =>
      parseCommandLine(
        ['register', '--registration-id', 'd1', '--cert', 'c.pem', '--key', 'k.pem', '--group-key', 'a2V5'],
        env,
        {
          readFile,
        },
      ),
    ).toThrow(/not both/);
    expect(
      parseCommandLine(
        [
          'fleet',
          '--count',
          '2',
          '--registration-id-template',
          'd{n}',
          '--cert',
          'certs/{id}.pem',
          '--key',
          'certs/{id}.key.pem',
        ],
        env,
      ),
    ).toMatchObject({
      kind: 'fleet',
      config: { certificates: { certTemplate: 'certs/{id}.pem', keyTemplate: 'certs/{id}.key.pem' } },
    });
    expect(() =>
      parseCommandLine(
        ['fleet', '--count', '2', '--registration-id-template', 'd{n}', '--cert', 'one.pem', '--key', 'k/{id}'],
        env,
      ),
    ).toThrow(/has no \{id\}/);
    expect(() => parseCommandLine(['certs', 'create', 'dev-1'], {})).toThrow(/missing --out/);
    expect(() => parseCommandLine(['certs', 'create', '--out', 'x', 'bad id'], {})).toThrow(/registration id/);
  });
});
