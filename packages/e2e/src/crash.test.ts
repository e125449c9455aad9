import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSymmetricKey } from '@dpskit/contracts';
import { type FleetSummary, type RegistrationOutcome, runFleet } from '@dpskit/device-sim';
import { afterAll, describe, expect, it } from 'vitest';
import { type EmulatorProcess, runEmulatorCli, startEmulatorProcess } from './harness/emulator-process.js';
import { type HoldingWebhook, hubFor, startHoldingWebhook } from './harness/holding-webhook.js';
import { stablePorts } from './harness/stable-ports.js';

// Issue 8, "crash safety as a property": a fleet over MQTT and HTTPS (device-sim on the official SDK)
// registers against the emulator's built CLI; the emulator is killed with SIGKILL while allocations
// are known to be in flight (the webhook holds them), restarted on the same state folder and ports,
// and at the end every device has exactly one outcome, the right one, and a record equal to it.
//
// A device polling while the emulator is down fails in the Node SDK at its first refused poll; the
// fleet registers again with back-off (`retries`), as a real device does. A device whose poll reaches
// the restarted emulator is answered from the store. Nothing here depends on how fast the restart is.

const ID_SCOPE = '0ne00C4A5E0';
const HUBS = ['crash-hub-1.azure-devices.net', 'crash-hub-2.azure-devices.net'];
const PER_TRANSPORT = 40;
const CONCURRENCY = 10;
/** Answered before the webhook starts holding: devices that finish before the crash. */
const ANSWERED_BEFORE_CRASH = 16;
/** Allocations in flight (held by the webhook) when the emulator is killed. */
const HELD_AT_CRASH = 8;

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

interface StoredRecord {
  registrationId: string;
  result: RegistrationOutcome['registrationState'] & { payload?: unknown };
}

function logLines(output: string): Array<Record<string, unknown>> {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('a crash of the emulator (SIGKILL) in the middle of a fleet', () => {
  it('loses, duplicates and crosses no device over MQTT and HTTPS; records equal outcomes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dpskit-crash-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const webhook: HoldingWebhook = await startHoldingWebhook({ hubs: HUBS, answerFirst: ANSWERED_BEFORE_CRASH });
    cleanups.push(() => webhook.close());
    const groupKey = generateSymmetricKey();
    const configFile = join(dir, 'emulator.json');
    await writeFile(
      configFile,
      JSON.stringify({
        idScope: ID_SCOPE,
        iotHubs: HUBS.map((hostName) => ({ hostName })),
        enrollmentGroups: [
          {
            enrollmentGroupId: 'crash-fleet',
            attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey } },
            allocationPolicy: 'custom',
            customAllocationDefinition: { webhookUrl: webhook.url, apiVersion: '2021-10-01' },
          },
        ],
      }),
    );
    const stateDir = join(dir, 'state');
    const common = [
      ...['--config', configFile, '--state-dir', stateDir, '--retry-after', '1', '--log-format', 'json'],
      // Only MQTT and HTTPS are under test: no other listener that could meet a taken port.
      ...['--no-web', '--no-amqp'],
    ];
    const track = (emulator: EmulatorProcess) => {
      cleanups.push(async () => {
        emulator.child.kill('SIGKILL');
        await emulator.exited;
      });
      return emulator;
    };

    // The restart listens on the same ports: ports no outgoing connection can take meanwhile (see stablePorts).
    const [mqttPort, httpsPort] = (await stablePorts(2)).map(String) as [string, string];
    const ports = ['--mqtt-port', mqttPort, '--https-port', httpsPort];
    const first = track(await startEmulatorProcess([...common, ...ports], join(dir, 'ready-1.json')));
    const { mqtt, https, caCertPath } = first.ready;
    if (!https) throw new Error('the emulator serves no HTTPS');
    const ca = await readFile(caCertPath, 'utf8');

    const outcomes = new Map<string, RegistrationOutcome[]>();
    const fleet = (transport: 'mqtt' | 'http', port: number): Promise<FleetSummary> =>
      runFleet({
        provisioningHost: `localhost:${port}`,
        idScope: ID_SCOPE,
        groupKey,
        count: PER_TRANSPORT,
        concurrency: CONCURRENCY,
        registrationIdTemplates: `crash-${transport}-{n:3}`,
        transport,
        payload: (registrationId) => ({ device: registrationId }),
        ca,
        // A real device's persistence: register again after a transient failure, with back-off.
        retries: 10,
        // A hang bound per device, far above what the back-offs add up to.
        timeoutMs: 600_000,
        onOutcome: (outcome) => {
          outcomes.set(outcome.registrationId, [...(outcomes.get(outcome.registrationId) ?? []), outcome]);
        },
      });
    const fleets = Promise.all([fleet('mqtt', mqtt.port), fleet('http', https.port)]);

    // Allocations in flight, their operations saved: now the crash.
    await webhook.whenHeld(HELD_AT_CRASH);
    const finishedBeforeCrash = outcomes.size;
    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    webhook.release();

    const second = track(await startEmulatorProcess([...common, ...ports], join(dir, 'ready-2.json')));
    const [mqttSummary, httpSummary] = await fleets;

    // Every device: exactly one outcome, assigned, to its own hub, with its own payload back.
    const ids = [...outcomes.keys()].sort();
    expect(ids).toHaveLength(2 * PER_TRANSPORT);
    const problems: string[] = [];
    for (const [id, list] of outcomes) {
      if (list.length !== 1) problems.push(`${id}: ${list.length} outcomes`);
      const outcome = list[0] as RegistrationOutcome;
      if (outcome.status !== 'assigned') {
        problems.push(`${id}: ${outcome.status} ${outcome.errorName}: ${outcome.errorMessage}`);
        continue;
      }
      if (outcome.assignedHub !== hubFor(id, HUBS)) problems.push(`${id}: assigned to ${outcome.assignedHub}`);
      if (outcome.deviceId !== id) problems.push(`${id}: deviceId ${outcome.deviceId}`);
      if (outcome.payload?.device !== id) problems.push(`${id}: payload ${JSON.stringify(outcome.payload)}`);
      if (outcome.registrationState?.registrationId !== id) problems.push(`${id}: state of another registration`);
    }
    expect(problems).toEqual([]);
    for (const summary of [mqttSummary, httpSummary]) {
      expect(summary).toMatchObject({ requested: PER_TRANSPORT, completed: PER_TRANSPORT, stoppedEarly: false });
    }
    // The crash came in the middle: some devices had finished, and some had not.
    expect(finishedBeforeCrash).toBeGreaterThanOrEqual(1);
    expect(finishedBeforeCrash).toBeLessThan(2 * PER_TRANSPORT - HELD_AT_CRASH);

    // The restarted emulator ran again the allocations the killed one left unfinished.
    const resumed = logLines(second.stdout()).find((line) => line.event === 'resume');
    expect(resumed?.operations).toBeGreaterThanOrEqual(HELD_AT_CRASH);

    // The store: one record per device, none lost or extra, each what its device was told.
    const list = await runEmulatorCli(['registrations', 'list', '--json', '--state-dir', stateDir]);
    expect(list.code, list.stderr).toBe(0);
    const records = JSON.parse(list.stdout) as StoredRecord[];
    expect(records.map((record) => record.registrationId).sort()).toEqual(ids);
    for (const record of records) {
      expect(record.result, record.registrationId).toEqual(outcomes.get(record.registrationId)?.[0]?.registrationState);
    }

    // Both processes answered every device API request without an internal error.
    for (const output of [first.stdout(), second.stdout()]) {
      expect(logLines(output).filter((line) => line.level === 'error')).toEqual([]);
    }
  }, 900_000);
});
