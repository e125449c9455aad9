import { X509Certificate } from 'node:crypto';
import { DpsErrorCode, deriveDeviceKey, distinguishedNameAttribute, generateSymmetricKey } from '@dpskit/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistrationEvent } from '../core/events.js';
import type { Emulator } from '../emulator.js';
import { createTestCa, createTestDeviceCertificate, pemChain, type TestCertificate } from '../testing/certificates.js';
import {
  HUB_A,
  HUB_B,
  HUB_C,
  ID_SCOPE,
  startTestEmulator,
  tempStateDir,
  testEmulatorOptions,
} from '../testing/fixtures.js';
import { register, registerWithCertificate, rejectionOf, type SdkTransport } from '../testing/sdk.js';
import { sdkFailure, serviceClient } from '../testing/service-sdk.js';
import { startWebhook, type TestWebhook } from '../testing/webhook-server.js';

// The official azure-iot-provisioning-device(-mqtt/-http/-amqp) packages with azure-iot-security-x509,
// unmodified, presenting client certificates in real TLS handshakes to a running emulator whose
// listeners also serve symmetric-key devices.

const TOASTERS = HUB_A;
const HEATPUMPS = HUB_B;
const DAY = 86_400_000;

let emulator: Emulator;
let events: RegistrationEvent[];
let webhook: TestWebhook;
let stop: () => Promise<void>;
let root: TestCertificate;
let line: TestCertificate;
let solo: TestCertificate;
let soloDisabled: TestCertificate;
let disabledCa: TestCertificate;
const keys = { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() };

beforeAll(async () => {
  root = await createTestCa('Contoso root CA');
  line = await createTestCa('Contoso factory line 1', { issuer: root });
  disabledCa = await createTestCa('Contoso retired line');
  solo = await createTestDeviceCertificate('x509-solo');
  soloDisabled = await createTestDeviceCertificate('x509-solo-disabled');
  // The tutorial's split, by a certificate property: the device certificate's OU.
  webhook = await startWebhook((request) => {
    const subject = request.deviceRuntimeContext.x509?.certificateInfo?.subjectName ?? '';
    const unit = distinguishedNameAttribute(subject, 'OU');
    const hub = unit === 'toasters' ? TOASTERS : unit === 'heatpumps' ? HEATPUMPS : undefined;
    return hub
      ? { body: { iotHubHostName: hub, payload: { unit } } }
      : { status: 400, body: { message: 'unknown unit' } };
  });
  const state = tempStateDir();
  const started = await startTestEmulator(
    testEmulatorOptions(
      {
        idScope: ID_SCOPE,
        iotHubs: [{ hostName: HUB_A }, { hostName: HUB_B }, { hostName: HUB_C }],
        certificates: [{ name: 'contoso-root', certificate: root.cert }],
        enrollmentGroups: [
          {
            enrollmentGroupId: 'x509-line-1',
            attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: line.cert } } } },
            allocationPolicy: 'custom',
            customAllocationDefinition: { webhookUrl: `${webhook.url}?code=secret`, apiVersion: '2021-10-01' },
            iotHubs: [TOASTERS, HEATPUMPS],
          },
          {
            enrollmentGroupId: 'x509-root',
            attestation: { type: 'x509', x509: { caReferences: { primary: 'contoso-root' } } },
            allocationPolicy: 'static',
            iotHubs: [HUB_C],
          },
          {
            enrollmentGroupId: 'x509-retired',
            attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: disabledCa.cert } } } },
            provisioningStatus: 'disabled',
          },
          {
            enrollmentGroupId: 'keyed-group',
            attestation: { type: 'symmetricKey', symmetricKey: keys },
            allocationPolicy: 'static',
            iotHubs: [HUB_C],
          },
        ],
        individualEnrollments: [
          {
            registrationId: 'x509-solo',
            deviceId: 'solo-hub-device',
            attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: solo.cert } } } },
            allocationPolicy: 'static',
            iotHubs: [HUB_A],
          },
          {
            registrationId: 'x509-solo-disabled',
            attestation: {
              type: 'x509',
              x509: { clientCertificates: { primary: { certificate: soloDisabled.cert } } },
            },
            provisioningStatus: 'disabled',
          },
        ],
      },
      state.path,
    ),
  );
  ({ emulator, events } = started);
  stop = async () => {
    await emulator.stop();
    state.remove();
    await webhook.close();
  };
});

afterAll(() => stop?.());

const lastEvent = (registrationId: string) => events.filter((e) => e.registrationId === registrationId).at(-1);

describe.each<SdkTransport>(['mqtt', 'https', 'mqtt-ws', 'amqp', 'amqp-ws'])('X.509 over %s', (transport) => {
  it('provisions an individual enrollment by its client certificate', async () => {
    const result = await registerWithCertificate(emulator, 'x509-solo', solo, { transport });
    expect(result).toMatchObject({
      registrationId: 'x509-solo',
      deviceId: 'solo-hub-device',
      assignedHub: HUB_A,
      status: 'assigned',
    });
    expect(result).not.toHaveProperty('symmetricKey');
  });

  it('provisions intermediate-signed devices through the webhook, toasters and heat pumps split by certificate OU', async () => {
    const toaster = await createTestDeviceCertificate(`${transport}-tstr-001`, {
      issuer: line,
      organizationalUnit: 'toasters',
    });
    const heatpump = await createTestDeviceCertificate(`${transport}-hp-001`, {
      issuer: line,
      organizationalUnit: 'heatpumps',
    });
    const [t, h] = await Promise.all([
      registerWithCertificate(
        emulator,
        `${transport}-tstr-001`,
        { cert: pemChain(toaster, line), key: toaster.key },
        { transport },
      ),
      registerWithCertificate(
        emulator,
        `${transport}-hp-001`,
        { cert: pemChain(heatpump, line), key: heatpump.key },
        { transport },
      ),
    ]);
    expect(t).toMatchObject({ assignedHub: TOASTERS, status: 'assigned', x509: { enrollmentGroupId: 'x509-line-1' } });
    expect(t.payload).toEqual({ unit: 'toasters' });
    expect(h).toMatchObject({ assignedHub: HEATPUMPS, status: 'assigned', x509: { enrollmentGroupId: 'x509-line-1' } });

    const [call] = webhook.callsFor(`${transport}-tstr-001`);
    const context = call?.body.deviceRuntimeContext;
    expect(context).not.toHaveProperty('symmetricKey');
    expect(context?.x509?.clientCertificate).toBe(new X509Certificate(toaster.cert).raw.toString('base64'));
    expect(context?.x509?.certificateInfo).toMatchObject({
      subjectName: `CN=${transport}-tstr-001, OU=toasters`,
      issuerName: 'CN=Contoso factory line 1',
      sha256Thumbprint: new X509Certificate(toaster.cert).fingerprint256.replaceAll(':', ''),
    });
    expect(context?.x509?.certificateChain).toEqual([new X509Certificate(line.cert).raw.toString('base64')]);
    expect(context?.x509?.signingCertificateInfo?.subjectName).toBe('CN=Contoso factory line 1');
    expect(call?.body.enrollmentGroup?.attestation).toEqual({ type: 'x509' });
  });

  it('provisions a root-signed device through the group with a CA reference', async () => {
    const device = await createTestDeviceCertificate(`${transport}-root-signed`, { issuer: root });
    const result = await registerWithCertificate(emulator, `${transport}-root-signed`, device, { transport });
    expect(result).toMatchObject({ assignedHub: HUB_C, x509: { enrollmentGroupId: 'x509-root' } });
  });

  it('refuses an expired certificate, another CA, a CN that is not the registration id, and disabled enrollments', async () => {
    const expired = await createTestDeviceCertificate(`${transport}-expired`, {
      issuer: line,
      notBefore: new Date(Date.now() - 10 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    const stranger = await createTestCa('Stranger CA');
    const foreign = await createTestDeviceCertificate(`${transport}-foreign`, { issuer: stranger });
    const renamed = await createTestDeviceCertificate(`${transport}-cn-a`, {
      issuer: line,
      organizationalUnit: 'toasters',
    });
    const retired = await createTestDeviceCertificate(`${transport}-retired`, { issuer: disabledCa });

    const cases: [string, { cert: string; key: string }, string][] = [
      [`${transport}-expired`, { cert: pemChain(expired, line), key: expired.key }, 'certificate-expired'],
      [`${transport}-foreign`, { cert: pemChain(foreign, stranger), key: foreign.key }, 'no-matching-enrollment'],
      [`${transport}-cn-b`, { cert: pemChain(renamed, line), key: renamed.key }, 'cn-mismatch'],
    ];
    for (const [id, credentials, reason] of cases) {
      const error = await rejectionOf(registerWithCertificate(emulator, id, credentials, { transport }));
      if (transport.startsWith('amqp')) {
        // Over AMQP the SDK rejects with the AMQP error its request was refused with, as it comes.
        const { condition, description } = error as unknown as { condition: string; description: string };
        expect(condition, id).toBe('amqp:unauthorized-access');
        expect(JSON.parse(description), id).toMatchObject({ errorCode: DpsErrorCode.Unauthorized });
      } else {
        expect(error.name, id).toBe('UnauthorizedError');
      }
      const event = lastEvent(id);
      expect(event?.outcome).toMatchObject({
        status: 'unauthorized',
        errorCode: transport.startsWith('mqtt') ? DpsErrorCode.MqttUnauthorized : DpsErrorCode.Unauthorized,
      });
      expect(event?.outcome.errorMessage, id).toContain(reason);
    }

    // Disabled enrollments: the device is attested, then refused as DPS does (status disabled).
    for (const [id, credentials] of [
      [`${transport}-retired`, { cert: pemChain(retired), key: retired.key }],
      ['x509-solo-disabled', soloDisabled],
    ] as const) {
      const error = await rejectionOf(registerWithCertificate(emulator, id, credentials, { transport }));
      expect(error.message, id).toMatch(/disabled/i);
      expect(lastEvent(id)?.outcome.status).toBe('disabled');
    }
  });

  it('keeps serving symmetric-key devices on the same listener', async () => {
    const id = `${transport}-keyed-after-x509`;
    const result = await register(emulator, id, deriveDeviceKey(keys.primaryKey, id), { transport });
    expect(result).toMatchObject({ assignedHub: HUB_C, symmetricKey: { enrollmentGroupId: 'keyed-group' } });
  });
});

describe('X.509 enrollments through the service API (azure-iot-provisioning-service)', () => {
  it('creates an individual enrollment and an intermediate-signed group whose devices then provision', async () => {
    const client = serviceClient(emulator);
    const device = await createTestDeviceCertificate('svc-x509-device');
    const created = (
      await client.createOrUpdateIndividualEnrollment({
        registrationId: 'svc-x509-device',
        attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: device.cert } } } },
        allocationPolicy: 'static',
        iotHubs: [HUB_B],
      } as never)
    ).responseBody as unknown as {
      attestation: { x509: { clientCertificates: { primary: { info: { sha256Thumbprint: string } } } } };
    };
    expect(created.attestation.x509.clientCertificates.primary.info.sha256Thumbprint).toBe(
      new X509Certificate(device.cert).fingerprint256.replaceAll(':', ''),
    );
    expect(await registerWithCertificate(emulator, 'svc-x509-device', device)).toMatchObject({ assignedHub: HUB_B });

    const plant = await createTestCa('Service-made plant', { issuer: root });
    await client.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'svc-plant',
      attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: plant.cert } } } },
      allocationPolicy: 'static',
      iotHubs: [HUB_A],
    } as never);
    const member = await createTestDeviceCertificate('svc-plant-device-1', { issuer: plant });
    const chain = { cert: pemChain(member, plant), key: member.key };
    // The plant's group is more specific than the root's (CA reference) group.
    expect(await registerWithCertificate(emulator, 'svc-plant-device-1', chain, { transport: 'https' })).toMatchObject({
      assignedHub: HUB_A,
      x509: { enrollmentGroupId: 'svc-plant' },
    });

    // Disabled through the service API: refused at the next registration.
    const group = (await client.getEnrollmentGroup('svc-plant')).responseBody;
    await client.createOrUpdateEnrollmentGroup({ ...group, provisioningStatus: 'disabled' } as never);
    const error = await rejectionOf(registerWithCertificate(emulator, 'svc-plant-device-1', chain));
    expect(error.message).toMatch(/disabled/i);
    await client.deleteEnrollmentGroup('svc-plant');
    // Without the plant's group the root's group takes the device.
    expect(await registerWithCertificate(emulator, 'svc-plant-device-1', chain)).toMatchObject({
      x509: { enrollmentGroupId: 'x509-root' },
    });
  });

  it('refuses with 409 (409202) a certificate another enrollment of the same kind already uses, naming it', async () => {
    const client = serviceClient(emulator);
    const copy = await sdkFailure(
      client.createOrUpdateIndividualEnrollment({
        registrationId: 'x509-solo-copy',
        attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: solo.cert } } } },
      } as never),
    );
    expect(copy.status).toBe(409);
    expect(copy.body).toMatchObject({
      errorCode: DpsErrorCode.CertificateConflict,
      message: expect.stringContaining(
        'Invalid attestation.x509.clientCertificates.primary: the certificate (SHA-256 ',
      ),
    });
    expect(String(copy.body.message)).toContain(
      'is already the clientCertificates.primary of individual enrollment "x509-solo"',
    );
    const group = await sdkFailure(
      client.createOrUpdateEnrollmentGroup({
        enrollmentGroupId: 'x509-line-1-copy',
        attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: line.cert } } } },
      } as never),
    );
    expect(group.status).toBe(409);
    expect(String(group.body.message)).toContain(
      'is already the signingCertificates.primary of enrollment group "x509-line-1"',
    );
    // Nothing was stored.
    expect((await sdkFailure(client.getEnrollmentGroup('x509-line-1-copy'))).status).toBe(404);
  });

  it('refuses a CA reference to a certificate the instance does not have, naming it', async () => {
    const failure = await sdkFailure(
      serviceClient(emulator).createOrUpdateEnrollmentGroup({
        enrollmentGroupId: 'svc-dangling',
        attestation: { type: 'x509', x509: { caReferences: { primary: 'no-such-ca' } } },
      } as never),
    );
    expect(failure.status).toBe(400);
    expect(String(failure.body.message)).toContain('"no-such-ca" is not a certificate of this provisioning service');
  });
});

describe('one certificate, one enrollment, across a restart', () => {
  it('refuses to start with a config file whose group trusts a certificate a service API group already trusts', async () => {
    const plant = await createTestCa('Restart plant');
    const state = tempStateDir();
    const base = { idScope: ID_SCOPE, iotHubs: [{ hostName: HUB_A }] };
    try {
      const first = await startTestEmulator(testEmulatorOptions(base, state.path, { webView: false }));
      await serviceClient(first.emulator).createOrUpdateEnrollmentGroup({
        enrollmentGroupId: 'api-plant',
        attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: plant.cert } } } },
      } as never);
      await first.emulator.stop();

      const withFile = testEmulatorOptions(
        {
          ...base,
          enrollmentGroups: [
            {
              enrollmentGroupId: 'file-plant',
              attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: plant.cert } } } },
            },
          ],
        },
        state.path,
        { webView: false },
      );
      await expect(startTestEmulator(withFile)).rejects.toMatchObject({
        name: 'ConfigError',
        message: expect.stringContaining(
          'enrollmentGroups "file-plant" attestation.x509.signingCertificates.primary: the certificate (SHA-256 ',
        ),
      });
    } finally {
      state.remove();
    }
  });
});
