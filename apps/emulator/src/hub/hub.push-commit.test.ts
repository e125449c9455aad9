// A hub push (here the `deleted` push a DPS re-provisioning to another hub owes the device's
// connection to its old hub) reaches the connections only once the write that owes it is committed:
// a write that rolls back owes nothing. The fault is real: the emulator's process may grow no file
// any more (a file size limit put on it with prlimit, which SQLite meets as a full disk), so the
// re-provisioning's commit fails. Seen through the official SDKs: azure-iot-provisioning-device
// (and -service) for DPS, azure-iot-device over MQTT for the device, azure-iothub's Registry.
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { generateSymmetricKey } from '@dpskit/contracts';
import { describe, expect, it } from 'vitest';
import { WELL_KNOWN_SERVICE_KEY } from '../core/service-auth.js';
import { startCliEmulator } from '../testing/cli-process.js';
import { closedPortUrl, HUB_A, HUB_B, testConfig } from '../testing/fixtures.js';
import { deviceClient, keptAliveRegistry, Message } from '../testing/hub-sdk.js';
import { register } from '../testing/sdk.js';
import { serviceClient } from '../testing/service-sdk.js';

/** The process's soft limit on the size of the files it writes (`prlimit`, util-linux), as prlimit prints it. */
function fileSizeLimit(pid: number): string {
  return execFileSync('prlimit', ['--pid', String(pid), '--fsize', '--output=SOFT', '--noheadings', '--raw'], {
    encoding: 'utf8',
  }).trim();
}

function setFileSizeLimit(pid: number, soft: string): void {
  execFileSync('prlimit', ['--pid', String(pid), `--fsize=${soft}:`]);
}

describe('hub pushes are announced only once their write is committed', () => {
  it('a re-provisioning whose commit fails leaves the device in its hub, on its connection', async () => {
    const unreachable = await closedPortUrl();
    const child = await startCliEmulator(testConfig(unreachable, unreachable));
    try {
      const id = 'push-rollback';
      const key = generateSymmetricKey();
      const service = serviceClient(
        child.view,
        `HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=${WELL_KNOWN_SERVICE_KEY}`,
      );
      const enroll = async (hub: string, etag?: string) =>
        (
          await service.createOrUpdateIndividualEnrollment({
            registrationId: id,
            attestation: {
              type: 'symmetricKey',
              symmetricKey: { primaryKey: key, secondaryKey: generateSymmetricKey() },
            },
            allocationPolicy: 'static',
            iotHubs: [hub],
            reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
            ...(etag ? { etag } : {}),
          } as never)
        ).responseBody as { etag: string };
      const enrolled = await enroll(HUB_A);
      expect(await register(child.view, id, key)).toMatchObject({ assignedHub: HUB_A });

      const client = await deviceClient(child.view, { hub: HUB_A, deviceId: id, key });
      await client.open();
      try {
        const registry = keptAliveRegistry(child.view, HUB_A);
        const connected = (await registry.get(id)).responseBody;
        expect(connected.connectionState).toBe('Connected');
        await enroll(HUB_B, enrolled.etag);

        // From here the emulator's database cannot grow: the next commit (the re-provisioning's
        // single write: operation, record, the identity moved from hub A to hub B) fails.
        const original = fileSizeLimit(child.pid);
        setFileSizeLimit(child.pid, String(statSync(join(child.stateDir, 'emulator.db-wal')).size));
        try {
          await expect(register(child.view, id, key, { transport: 'https' })).rejects.toThrow();
        } finally {
          setFileSizeLimit(child.pid, original);
        }

        // Nothing of the re-provisioning was committed: the device is still in hub A, and its
        // connection there was never closed (a closed one, the SDK would open anew for this message,
        // which the registry would show as a newer connection state).
        await client.sendEvent(new Message('still here'));
        expect((await registry.get(id)).responseBody).toMatchObject({
          connectionState: 'Connected',
          connectionStateUpdatedTime: connected.connectionStateUpdatedTime,
        });
        await expect(keptAliveRegistry(child.view, HUB_B).get(id)).rejects.toMatchObject({
          name: 'DeviceNotFoundError',
        });
        expect((await service.getDeviceRegistrationState(id)).responseBody).toMatchObject({ assignedHub: HUB_A });
      } finally {
        await client.close();
      }
    } finally {
      expect(await child.stop()).toBe(0);
    }
  });
});
