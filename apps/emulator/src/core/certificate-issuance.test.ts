import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestCa, createTestDeviceCertificate, pemChain, type TestCertificate } from '../testing/certificates.js';
import { createTestCsr, tamperedCsr } from '../testing/csr.js';
import { checkCsr, csrProblem, issueCertificate, loadIssuingCa } from './certificate-issuance.js';
import { IssuingCaError } from './issuing-ca.js';

let root: TestCertificate;
let issuing: TestCertificate;

beforeAll(async () => {
  root = await createTestCa('Issuance test root');
  issuing = await createTestCa('Issuance test issuing CA', { issuer: root });
});

describe('certificate issuance', () => {
  it('signs a request for the registration id: CN, the request key, client auth, chain leaf → issuing CA → root', async () => {
    const ca = await loadIssuingCa(pemChain(issuing, root), issuing.key, { days: 7 });
    const { csr } = await createTestCsr('Dev-Issued-1');
    const checked = await checkCsr(csr, 'dev-issued-1');
    if (!checked.ok) throw new Error(checked.problem);
    const now = new Date();
    const chain = await issueCertificate(ca, checked.request, 'dev-issued-1', now);
    const [leaf, issuer, top] = chain.map((der) => new X509Certificate(Buffer.from(der, 'base64')));
    expect(chain).toHaveLength(3);
    expect(leaf?.subject).toBe('CN=dev-issued-1');
    expect(leaf?.issuer).toBe('CN=Issuance test issuing CA');
    expect(leaf?.verify(new X509Certificate(issuing.cert).publicKey)).toBe(true);
    expect(leaf?.ca).toBe(false);
    expect(leaf?.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(new Date(leaf?.validTo ?? 0).getTime() - now.getTime()).toBeGreaterThan(6.9 * 86_400_000);
    expect(new Date(leaf?.validTo ?? 0).getTime() - now.getTime()).toBeLessThanOrEqual(7 * 86_400_000);
    expect(issuer?.raw.equals(new X509Certificate(issuing.cert).raw)).toBe(true);
    expect(top?.raw.equals(new X509Certificate(root.cert).raw)).toBe(true);
  });

  it('refuses a request that is not PKCS#10, names another CN, or whose signature fails, saying why', async () => {
    const { csr } = await createTestCsr('dev-issued-2');
    expect(csrProblem('bm90IGEgcmVxdWVzdA==', 'dev-issued-2')).toMatch(/csr is not a base64 DER PKCS#10/);
    expect(csrProblem(csr, 'dev-issued-3')).toBe(
      `csr's subject CN "dev-issued-2" is not the registration id "dev-issued-3"`,
    );
    expect(csrProblem(csr, 'DEV-ISSUED-2')).toBeUndefined();
    expect(await checkCsr(tamperedCsr(csr), 'dev-issued-2')).toEqual({
      ok: false,
      problem: "csr's signature does not verify with its public key",
    });
  });

  it('refuses an issuing CA that is not a CA, a key that is not its key, and a bad validity, naming the cause', async () => {
    const device = await createTestDeviceCertificate('not-a-ca', { issuer: root });
    await expect(loadIssuingCa(device.cert, device.key)).rejects.toThrow(/is not a CA certificate/);
    await expect(loadIssuingCa(issuing.cert, root.key)).rejects.toThrow(
      `the issuing CA key is not the key of "CN=Issuance test issuing CA"`,
    );
    await expect(loadIssuingCa(issuing.cert, 'not a key')).rejects.toThrow(IssuingCaError);
    await expect(loadIssuingCa('no certificate here', issuing.key)).rejects.toThrow(/holds no certificate|not PEM/);
    await expect(loadIssuingCa(issuing.cert, issuing.key, { days: 0 })).rejects.toThrow(/1 to 3650 days/);
  });
});
