import { X509Certificate } from 'node:crypto';
import { createRegistrationSasToken } from '@dpskit/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../emulator.js';
import { createEmulator } from '../emulator.js';
import { createTestCa, pemChain, type TestCertificate } from '../testing/certificates.js';
import { createTestCsr, tamperedCsr } from '../testing/csr.js';
import {
  closedPortUrl,
  groupDeviceKey,
  ID_SCOPE,
  tempStateDir,
  testConfig,
  testEmulatorOptions,
} from '../testing/fixtures.js';
import { deviceClient, expectRefused, Message, nextHubEvent, registryClient } from '../testing/hub-sdk.js';
import { rawRequest } from '../testing/raw-https.js';
import { connectRawDevice, subscribeResponses } from '../testing/raw-mqtt.js';
import { startTestBed } from '../testing/test-bed.js';

// DPS certificate issuance (api-version 2025-07-01-preview): the npm device SDK never sends `csr`,
// so the register requests are raw HTTPS and raw MQTT (mqtt.js, the SDK's own MQTT library); the
// issued certificate then opens the device's hub connection with the official azure-iot-device.

const PREVIEW = '2025-07-01-preview';
let emulator: Emulator;
let close: (() => Promise<void>) | undefined;
let root: TestCertificate;
let issuing: TestCertificate;

beforeAll(async () => {
  root = await createTestCa('Issuance root');
  issuing = await createTestCa('Issuance CA', { issuer: root });
  const unused = await closedPortUrl();
  ({ emulator, close } = await startTestBed(unused, unused, {
    issuingCa: { cert: pemChain(issuing, root), key: issuing.key },
  }));
});
afterAll(() => close?.());

const token = (id: string) =>
  createRegistrationSasToken({ idScope: ID_SCOPE, registrationId: id, key: groupDeviceKey('hashed', id) });

interface Operation {
  operationId: string;
  status: string;
  registrationState?: {
    assignedHub?: string;
    deviceId?: string;
    status?: string;
    errorCode?: number;
    errorMessage?: string;
    issuedCertificateChain?: string[];
  };
}

/** Registers over raw HTTPS and polls until the operation ends. */
async function registerHttps(id: string, body: object, apiVersion = PREVIEW): Promise<Operation> {
  const headers = { Authorization: token(id) };
  const put = await rawRequest(emulator, {
    method: 'PUT',
    path: `/${ID_SCOPE}/registrations/${id}/register?api-version=${apiVersion}`,
    headers,
    body: JSON.stringify({ registrationId: id, ...body }),
  });
  if (put.status !== 202) return put.json as Operation;
  const { operationId } = put.json as Operation;
  for (;;) {
    const poll = await rawRequest(emulator, {
      method: 'GET',
      path: `/${ID_SCOPE}/registrations/${id}/operations/${operationId}?api-version=${apiVersion}`,
      headers,
    });
    const operation = poll.json as Operation;
    if (operation.status !== 'assigning') return operation;
  }
}

const certificates = (chain: string[] | undefined) =>
  (chain ?? []).map((der) => new X509Certificate(Buffer.from(der, 'base64')));

describe('certificate issuance (csr → issuedCertificateChain)', () => {
  it('over HTTPS: the assigned answer carries the chain; the device reaches its hub with the issued certificate', async () => {
    const id = 'hashed-issued-https';
    const { csr, key } = await createTestCsr(id);
    const operation = await registerHttps(id, { csr });
    expect(operation).toMatchObject({ status: 'assigned', registrationState: { status: 'assigned', deviceId: id } });
    const [leaf, ca, top] = certificates(operation.registrationState?.issuedCertificateChain);
    expect(leaf?.subject).toBe(`CN=${id}`);
    expect(leaf?.verify(new X509Certificate(issuing.cert).publicKey)).toBe(true);
    expect(ca?.subject).toBe('CN=Issuance CA');
    expect(top?.subject).toBe('CN=Issuance root');
    // The status lookup never carries it (REST spec).
    const lookup = await rawRequest(emulator, {
      method: 'POST',
      path: `/${ID_SCOPE}/registrations/${id}?api-version=${PREVIEW}`,
      headers: { Authorization: token(id) },
      body: JSON.stringify({ registrationId: id }),
    });
    expect(lookup.status).toBe(200);
    expect(lookup.json).toMatchObject({ status: 'assigned', deviceId: id });
    expect(lookup.json).not.toHaveProperty('issuedCertificateChain');

    // DPS registers the issued certificate's thumbprint in the hub: the device connects with it.
    const hub = operation.registrationState?.assignedHub ?? '';
    const { responseBody: identity } = await registryClient(emulator, hub).get(id);
    expect(identity.authentication).toMatchObject({
      type: 'selfSigned',
      x509Thumbprint: { primaryThumbprint: leaf?.fingerprint256.replaceAll(':', '') },
    });
    const cert = `${leaf?.toString()}`;
    const client = await deviceClient(emulator, { hub, deviceId: id, x509: { cert, key } });
    await client.open();
    try {
      const seen = nextHubEvent(emulator, (e) => e.kind === 'telemetry' && e.deviceId === id);
      await client.sendEvent(new Message('issued'));
      await seen;
    } finally {
      await client.close();
    }
    // Its group-derived key no longer opens the hub: the identity is the certificate's.
    await expectRefused(emulator, { hub, deviceId: id, key: groupDeviceKey('hashed', id) }, 'certificate-missing');
  });

  it('over MQTT: the api-version of the CONNECT username carries csr; the poll answers the chain', async () => {
    const id = 'hashed-issued-mqtt';
    const { csr } = await createTestCsr(id);
    const device = await connectRawDevice(emulator, {
      clientId: id,
      username: `${ID_SCOPE}/registrations/${id}/api-version=${PREVIEW}&ClientVersion=raw`,
      password: token(id),
    });
    try {
      await subscribeResponses(device);
      const accepted = await device.request(
        '$dps/registrations/PUT/iotdps-register/?$rid=1',
        JSON.stringify({ registrationId: id, csr }),
        '1',
      );
      expect(accepted.status).toBe(202);
      const { operationId } = accepted.body as Operation;
      let operation: Operation;
      let rid = 2;
      do {
        const poll = await device.request(
          `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${rid}&operationId=${operationId}`,
          '',
          String(rid),
        );
        rid++;
        operation = poll.body as Operation;
      } while (operation.status === 'assigning');
      expect(operation.status).toBe('assigned');
      expect(certificates(operation.registrationState?.issuedCertificateChain)[0]?.subject).toBe(`CN=${id}`);

      // The same device under an api-version before issuance: refused, nothing started.
      const old = await connectRawDevice(emulator, {
        clientId: `${id}-old`,
        username: `${ID_SCOPE}/registrations/${id}-old/api-version=2021-06-01&ClientVersion=raw`,
        password: token(`${id}-old`),
      });
      try {
        await subscribeResponses(old);
        const refused = await old.request(
          '$dps/registrations/PUT/iotdps-register/?$rid=1',
          JSON.stringify({ csr: (await createTestCsr(`${id}-old`)).csr }),
          '1',
        );
        expect(refused).toMatchObject({ status: 400, body: { errorCode: 400001 } });
        expect((refused.body as { message: string }).message).toContain(
          'csr (certificate issuance) needs api-version 2025-07-01-preview or later, not 2021-06-01',
        );
      } finally {
        await old.end();
      }
    } finally {
      await device.end();
    }
  });

  it('refuses a csr that is not PKCS#10, names another device, or whose signature fails; the emulator keeps issuing', async () => {
    const id = 'hashed-issued-bad';
    const notPkcs10 = await registerHttps(id, { csr: 'bm90IGEgcmVxdWVzdA==' });
    expect(notPkcs10).toMatchObject({ errorCode: 400001 });
    const other = await registerHttps(id, { csr: (await createTestCsr('someone-else')).csr });
    expect(other).toMatchObject({
      errorCode: 400001,
      message: `csr's subject CN "someone-else" is not the registration id "${id}".`,
    });
    const pem = await registerHttps(id, { csr: '-----BEGIN CERTIFICATE REQUEST-----' });
    expect(pem).toMatchObject({ errorCode: 400001 });
    // A forged signature is found when the certificate would be signed: the registration fails.
    const forged = await registerHttps(id, { csr: tamperedCsr((await createTestCsr(id)).csr) });
    expect(forged).toMatchObject({
      status: 'failed',
      registrationState: { errorCode: 400001, errorMessage: "csr's signature does not verify with its public key." },
    });
    const fine = await registerHttps(id, { csr: (await createTestCsr(id)).csr });
    expect(fine.status).toBe('assigned');
    expect(fine.registrationState?.issuedCertificateChain).toHaveLength(3);
  });

  it('takes the issuing CA from the config file (issuingCa) too', async () => {
    const state = tempStateDir();
    const configured = createEmulator(
      testEmulatorOptions(
        {
          ...testConfig(await closedPortUrl(), await closedPortUrl()),
          issuingCa: { certificate: issuing.cert, key: issuing.key, days: 2 },
        },
        state.path,
      ),
    );
    await configured.start();
    try {
      const id = 'hashed-issued-config';
      const { csr } = await createTestCsr(id);
      const accepted = await rawRequest(configured, {
        method: 'PUT',
        path: `/${ID_SCOPE}/registrations/${id}/register?api-version=${PREVIEW}`,
        headers: { Authorization: token(id) },
        body: JSON.stringify({ csr }),
      });
      expect(accepted.status).toBe(202);
      let operation: Operation;
      do {
        const poll = await rawRequest(configured, {
          method: 'GET',
          path: `/${ID_SCOPE}/registrations/${id}/operations/${(accepted.json as Operation).operationId}?api-version=${PREVIEW}`,
          headers: { Authorization: token(id) },
        });
        operation = poll.json as Operation;
      } while (operation.status === 'assigning');
      const [leaf, ca] = certificates(operation.registrationState?.issuedCertificateChain);
      expect(leaf?.subject).toBe(`CN=${id}`);
      expect(ca?.subject).toBe('CN=Issuance CA');
      // 2 days from the config (plus the hour of clock skew before issuance).
      const days = (new Date(leaf?.validTo ?? 0).getTime() - new Date(leaf?.validFrom ?? 0).getTime()) / 86_400_000;
      expect(Math.round(days)).toBe(2);
    } finally {
      await configured.stop();
      state.remove();
    }
  });

  it('registers without a csr as before: no chain, the hub identity keeps its keys', async () => {
    const id = 'hashed-issued-none';
    const operation = await registerHttps(id, {});
    expect(operation.status).toBe('assigned');
    expect(operation.registrationState).not.toHaveProperty('issuedCertificateChain');
    const { responseBody: identity } = await registryClient(emulator, operation.registrationState?.assignedHub).get(id);
    expect(identity.authentication).toMatchObject({ type: 'sas' });
  });
});
