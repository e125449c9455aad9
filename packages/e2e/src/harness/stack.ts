import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AllocatorHost, type AllocatorLogRecord, startAllocatorHost } from '@dpskit/allocator';
import { createEmulator, type Emulator, type EmulatorLogRecord, type RegistrationEvent } from '@dpskit/emulator';
import { TUTORIAL } from './tutorial.js';

export interface TutorialStack {
  allocator: AllocatorHost;
  emulator: Emulator;
  /** Every structured line the allocator logged, in order. */
  allocatorLog: AllocatorLogRecord[];
  emulatorLog: EmulatorLogRecord[];
  registrations: RegistrationEvent[];
  /** device-sim connection flags for a transport: host with the emulator's port, its CA, the ID scope. */
  connectionArgs(transport: 'mqtt' | 'http'): string[];
  close(): Promise<void>;
}

export interface TutorialStackOptions {
  /** `retry-after` the emulator sends while assigning (whole seconds; DPS sends 3; default 0: poll at once). */
  retryAfterSeconds?: number;
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

    const emulator = createEmulator({
      stateDir,
      mqttPort: 0,
      httpsPort: 0,
      retryAfterSeconds: options.retryAfterSeconds ?? 0,
      log: (record) => emulatorLog.push(record),
      config: {
        idScope: TUTORIAL.idScope,
        iotHubs: [{ hostName: TUTORIAL.toasterHub }],
        enrollmentGroups: [
          {
            enrollmentGroupId: TUTORIAL.enrollmentGroupId,
            attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: TUTORIAL.groupKey } },
            provisioningStatus: 'enabled',
            reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
            allocationPolicy: 'custom',
            customAllocationDefinition: { webhookUrl: allocator.webhookUrl, apiVersion: '2021-10-01' },
            iotHubs: [TUTORIAL.toasterHub],
          },
        ],
      },
    });
    emulator.on('registration', (event) => registrations.push(event));
    cleanups.push(() => emulator.stop());
    await emulator.start();

    const connectionArgs = (transport: 'mqtt' | 'http') => {
      const endpoint = transport === 'mqtt' ? emulator.endpoints.mqtt : emulator.endpoints.https;
      if (!endpoint) throw new Error(`the emulator serves no ${transport} endpoint`);
      return [
        '--transport',
        transport,
        '--provisioning-host',
        `localhost:${endpoint.port}`,
        '--ca',
        emulator.caCertPath,
        '--id-scope',
        emulator.idScope,
      ];
    };

    return { allocator, emulator, allocatorLog, emulatorLog, registrations, connectionArgs, close };
  } catch (err) {
    await close();
    throw err;
  }
}
