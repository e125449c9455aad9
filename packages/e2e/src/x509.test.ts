import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AllocatorHost, certificatePolicy, startAllocatorHost } from '@dpskit/allocator';
import { createEmulator, type Emulator, type RegistrationEvent } from '@dpskit/emulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectionArgs, runDeviceSim } from './harness/device-sim.js';

// The tutorial's toaster/heat-pump split with X.509 attestation, on one machine: device-sim makes
// the certificates (root, intermediate, devices with OU=toasters / OU=heatpumps), the emulator
// verifies the TLS client certificates against an intermediate-signed enrollment group and an
// individual enrollment, and the allocator's certificatePolicy decides by the certificate's OU.

const TOASTERS = 'contoso-toasters-hub-1098.azure-devices.net';
const HEATPUMPS = 'contoso-heatpumps-hub-1098.azure-devices.net';

let dir: string;
let allocator: AllocatorHost;
let emulator: Emulator;
const registrations: RegistrationEvent[] = [];

async function deviceSim(args: string[]) {
  const run = await runDeviceSim(args);
  return { ...run, json: () => JSON.parse(run.stdout) as Record<string, unknown> };
}

const connection = (transport: 'mqtt' | 'http' | 'amqp' | 'amqp-ws') => connectionArgs(emulator, transport);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dpskit-e2e-x509-'));
  const pki = join(dir, 'pki');
  for (const [template, unit] of [
    ['contoso-tstr-{n}', 'toasters'],
    ['contoso-hp-{n}', 'heatpumps'],
  ] as const) {
    const made = await deviceSim([
      'certs',
      'create',
      '--out',
      pki,
      '--count',
      '2',
      '--registration-id-template',
      template,
      '--ou',
      unit,
    ]);
    expect(made.code, made.stderr).toBe(0);
  }
  const solo = await deviceSim(['certs', 'create', '--out', join(dir, 'solo'), '--no-intermediate', 'x509-solo-1']);
  expect(solo.code, solo.stderr).toBe(0);

  allocator = await startAllocatorHost({ port: 0, policy: certificatePolicy, log: () => {} });
  emulator = createEmulator({
    stateDir: join(dir, 'state'),
    mqttPort: 0,
    httpsPort: 0,
    amqpPort: 0,
    webView: { port: 0 },
    retryAfterSeconds: 0,
    log: () => {},
    config: {
      iotHubs: [{ hostName: TOASTERS }, { hostName: HEATPUMPS }],
      enrollmentGroups: [
        {
          enrollmentGroupId: 'contoso-x509-line',
          attestation: {
            type: 'x509',
            x509: {
              signingCertificates: { primary: { certificate: await readFile(join(pki, 'intermediate.pem'), 'utf8') } },
            },
          },
          allocationPolicy: 'custom',
          customAllocationDefinition: { webhookUrl: allocator.webhookUrl, apiVersion: '2021-10-01' },
          iotHubs: [TOASTERS, HEATPUMPS],
        },
      ],
      individualEnrollments: [
        {
          registrationId: 'x509-solo-1',
          attestation: {
            type: 'x509',
            x509: {
              clientCertificates: {
                primary: { certificate: await readFile(join(dir, 'solo', 'x509-solo-1.pem'), 'utf8') },
              },
            },
          },
          allocationPolicy: 'static',
          iotHubs: [HEATPUMPS],
        },
      ],
    },
  });
  emulator.on('registration', (event) => registrations.push(event));
  await emulator.start();
});

afterAll(async () => {
  await emulator?.stop();
  await allocator?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('X.509 devices with device-sim, the emulator and the certificate policy', () => {
  it('a fleet of intermediate-signed devices is split into toasters and heat pumps by certificate OU (MQTT)', async () => {
    const pki = join(dir, 'pki');
    const run = await deviceSim([
      'fleet',
      ...connection('mqtt'),
      '--count',
      '4',
      '--registration-id-template',
      'contoso-tstr-{n},contoso-hp-{n}',
      '--cert',
      join(pki, '{id}.pem'),
      '--key',
      join(pki, '{id}.key.pem'),
      // Then each device connects to its hub with the same certificate (selfSigned by its thumbprint).
      '--connect',
      '--telemetry',
      '1',
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const summary = run.json() as {
      byStatus: Record<string, number>;
      hubs: { hub: string; count: number }[];
      hub: { connected: number; failed: number; telemetrySent: number };
    };
    expect(summary.byStatus.assigned).toBe(4);
    expect(summary.hub).toMatchObject({ connected: 4, failed: 0, telemetrySent: 4 });
    const [identity] = emulator.hubDevices(TOASTERS).filter((d) => d.identity.deviceId === 'contoso-tstr-1');
    expect(identity?.identity).toMatchObject({
      authenticationType: 'selfSigned',
      primaryThumbprint: new X509Certificate(await readFile(join(pki, 'contoso-tstr-1.pem'))).fingerprint256.replaceAll(
        ':',
        '',
      ),
    });
    expect(emulator.telemetry(TOASTERS, 'contoso-tstr-1')).toHaveLength(1);
    expect(summary.hubs).toEqual(
      expect.arrayContaining([
        { hub: TOASTERS, count: 2 },
        { hub: HEATPUMPS, count: 2 },
      ]),
    );
    const toaster = registrations.find((e) => e.registrationId === 'contoso-tstr-1');
    expect(toaster?.outcome).toMatchObject({
      status: 'assigned',
      assignedHub: TOASTERS,
      initialTwin: { tags: { deviceType: 'toasters' } },
    });
    expect(toaster?.enrollment).toEqual({ kind: 'group', id: 'contoso-x509-line' });
  });

  it('registers one device over HTTPS with --cert/--key', async () => {
    const pki = join(dir, 'pki');
    const run = await deviceSim([
      'register',
      ...connection('http'),
      '--registration-id',
      'contoso-hp-2',
      '--cert',
      join(pki, 'contoso-hp-2.pem'),
      '--key',
      join(pki, 'contoso-hp-2.key.pem'),
      '--connect',
      '--hub-host',
      `localhost:${emulator.endpoints.mqtt.port}`,
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json()).toMatchObject({
      status: 'assigned',
      assignedHub: HEATPUMPS,
      registrationState: { x509: { enrollmentGroupId: 'contoso-x509-line' } },
      hubSession: { status: 'connected', hub: HEATPUMPS, deviceId: 'contoso-hp-2' },
    });
  });

  it('provisions the individual enrollment by its certificate (thumbprint as printed by certs thumbprint)', async () => {
    const file = join(dir, 'solo', 'x509-solo-1.pem');
    const printed = await deviceSim(['certs', 'thumbprint', file, '--json']);
    expect(printed.code).toBe(0);
    expect(printed.json().sha256Thumbprint).toBe(
      new X509Certificate(await readFile(file)).fingerprint256.replaceAll(':', ''),
    );
    const enrolled = emulator.enrollments.individuals[0]?.attestation.x509?.clientCertificates?.primary?.info;
    expect(enrolled?.sha256Thumbprint).toBe(printed.json().sha256Thumbprint);
    const run = await deviceSim([
      'register',
      ...connection('mqtt'),
      '--registration-id',
      'x509-solo-1',
      '--cert',
      file,
      '--key',
      join(dir, 'solo', 'x509-solo-1.key.pem'),
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json()).toMatchObject({ status: 'assigned', assignedHub: HEATPUMPS });
  });

  it.each(['amqp', 'amqp-ws'] as const)(
    'registers over %s with --cert/--key, and refuses a registration id that is not the CN',
    async (transport) => {
      const pki = join(dir, 'pki');
      const device = (registrationId: string, file: string) =>
        deviceSim([
          'register',
          ...connection(transport),
          '--registration-id',
          registrationId,
          '--cert',
          join(pki, `${file}.pem`),
          '--key',
          join(pki, `${file}.key.pem`),
          '--json',
        ]);
      const run = await device('contoso-tstr-1', 'contoso-tstr-1');
      expect(run.code, run.stderr).toBe(0);
      expect(run.json()).toMatchObject({
        status: 'assigned',
        assignedHub: TOASTERS,
        registrationState: { x509: { enrollmentGroupId: 'contoso-x509-line' } },
      });
      expect(registrations.findLast((e) => e.registrationId === 'contoso-tstr-1')?.transport).toBe(transport);

      const renamed = await device(`contoso-tstr-${transport}`, 'contoso-hp-1');
      expect(renamed.code).toBe(1);
      expect(renamed.json()).toMatchObject({ status: 'error', errorName: 'UnauthorizedError' });
      expect(registrations.findLast((e) => e.registrationId === `contoso-tstr-${transport}`)?.outcome).toMatchObject({
        status: 'unauthorized',
        errorCode: 401002,
        errorMessage: expect.stringContaining('cn-mismatch'),
      });
    },
  );

  it('refuses a certificate from another CA and a registration id that is not the CN, and keeps serving', async () => {
    const other = join(dir, 'other');
    expect((await deviceSim(['certs', 'create', '--out', other, 'contoso-tstr-9'])).code).toBe(0);
    const foreign = await deviceSim([
      'register',
      ...connection('mqtt'),
      '--registration-id',
      'contoso-tstr-9',
      '--cert',
      join(other, 'contoso-tstr-9.pem'),
      '--key',
      join(other, 'contoso-tstr-9.key.pem'),
      '--json',
    ]);
    expect(foreign.code).toBe(1);
    expect(foreign.json()).toMatchObject({ status: 'error', errorName: 'UnauthorizedError' });
    expect(registrations.findLast((e) => e.registrationId === 'contoso-tstr-9')?.outcome.errorMessage).toContain(
      'no-matching-enrollment',
    );

    const pki = join(dir, 'pki');
    const renamed = await deviceSim([
      'register',
      ...connection('http'),
      '--registration-id',
      'contoso-tstr-7',
      '--cert',
      join(pki, 'contoso-tstr-1.pem'),
      '--key',
      join(pki, 'contoso-tstr-1.key.pem'),
      '--json',
    ]);
    expect(renamed.code).toBe(1);
    expect(registrations.findLast((e) => e.registrationId === 'contoso-tstr-7')?.outcome.errorMessage).toContain(
      'cn-mismatch',
    );

    const again = await deviceSim([
      'register',
      ...connection('mqtt'),
      '--registration-id',
      'contoso-tstr-2',
      '--cert',
      join(pki, 'contoso-tstr-2.pem'),
      '--key',
      join(pki, 'contoso-tstr-2.key.pem'),
      '--json',
    ]);
    expect(again.json()).toMatchObject({ status: 'assigned', assignedHub: TOASTERS });
  });
});
