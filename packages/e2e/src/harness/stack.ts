import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AllocatorHost, type AllocatorLogRecord, startAllocatorHost } from '@dpskit/allocator';
import type { TransportName } from '@dpskit/device-sim';
import { createEmulator, type Emulator, type EmulatorLogRecord, type RegistrationEvent } from '@dpskit/emulator';
import { connectionArgs as deviceSimConnectionArgs } from './device-sim.js';
import { emulatorServiceClient, type ServiceClient } from './service-client.js';
import { TUTORIAL } from './tutorial.js';

export interface TutorialStack {
  allocator: AllocatorHost;
  emulator: Emulator;
  /** Every structured line the allocator logged, in order. */
  allocatorLog: AllocatorLogRecord[];
  emulatorLog: EmulatorLogRecord[];
  registrations: RegistrationEvent[];
  /** device-sim connection flags for a transport: host with the emulator's port, its CA, the ID scope. */
  /** device-sim's connection flags for one transport (`--provisioning-host localhost:<that transport's port>`, CA, ID scope). */
  connectionArgs(transport: TransportName): string[];
  /** The official service SDK's client for the emulator's service API. */
  serviceClient: ServiceClient;
  close(): Promise<void>;
}

export interface TutorialStackOptions {
  /** `retry-after` the emulator sends while assigning (whole seconds; DPS sends 3; default 0: poll at once). */
  retryAfterSeconds?: number;
  /**
   * How the tutorial's enrollment group gets into the emulator: declared in its config (default), or
   * created after start with the official service SDK, as users' test code does in a `before` hook.
   */
  enrollmentsVia?: 'config' | 'service-api';
  /** The emulator's web view (default `{ port: 0 }`: a free port; `{}`: the emulator's default, 8090). */
  webView?: { port?: number } | false;
}

/**
 * The tutorial on free ports: the allocator served locally with its function key, and the emulator
 * with the enrollment group `contoso-custom-allocated-devices` (custom allocation to the
 * allocator's URL, linked hub `contoso-toasters-hub-1098.azure-devices.net`). Whatever started is
 * stopped again if a later step fails.
 */
export async function startTutorialStack(options: TutorialStackOptions = {}): Promise<TutorialStack> {
  const allocatorLog: AllocatorLogRecord[] = [];
  const emulatorLog: EmulatorLogRecord[] = [];
  const registrations: RegistrationEvent[] = [];
  const cleanups: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    cleanups.length = 0;
  };

  try {
    const stateDir = await mkdtemp(join(tmpdir(), 'dpskit-e2e-'));
    cleanups.push(() => rm(stateDir, { recursive: true, force: true }));

    const allocator = await startAllocatorHost({ port: 0, log: (record) => allocatorLog.push(record) });
    cleanups.push(() => allocator.close());

    const group = {
      enrollmentGroupId: TUTORIAL.enrollmentGroupId,
      attestation: { type: 'symmetricKey' as const, symmetricKey: { primaryKey: TUTORIAL.groupKey } },
      provisioningStatus: 'enabled' as const,
      reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
      allocationPolicy: 'custom' as const,
      customAllocationDefinition: { webhookUrl: allocator.webhookUrl, apiVersion: '2021-10-01' },
      iotHubs: [TUTORIAL.toasterHub],
      initialTwin: TUTORIAL.initialTwin,
    };
    const viaApi = options.enrollmentsVia === 'service-api';
    const emulator = createEmulator({
      stateDir,
      mqttPort: 0,
      httpsPort: 0,
      amqpPort: 0,
      retryAfterSeconds: options.retryAfterSeconds ?? 0,
      webView: options.webView ?? { port: 0 },
      log: (record) => emulatorLog.push(record),
      config: {
        idScope: TUTORIAL.idScope,
        iotHubs: [{ hostName: TUTORIAL.toasterHub }],
        enrollmentGroups: viaApi ? [] : [group],
      },
    });
    emulator.on('registration', (event) => registrations.push(event));
    cleanups.push(() => emulator.stop());
    await emulator.start();
    const serviceClient = emulatorServiceClient(emulator);
    // The SDK's typings want both keys; the service generates the secondary one, as DPS does.
    type SdkGroup = Parameters<ServiceClient['createOrUpdateEnrollmentGroup']>[0];
    if (viaApi) await serviceClient.createOrUpdateEnrollmentGroup(group as unknown as SdkGroup);

    const connectionArgs = (transport: TransportName) => deviceSimConnectionArgs(emulator, transport);

    return { allocator, emulator, allocatorLog, emulatorLog, registrations, connectionArgs, serviceClient, close };
  } catch (err) {
    await close();
    throw err;
  }
}
