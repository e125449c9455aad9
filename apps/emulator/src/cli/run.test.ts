import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { deriveDeviceKey } from '@dpskit/contracts';
import { afterAll, describe, expect, it } from 'vitest';
import { TUTORIAL_GROUP_KEY, tutorialConfig } from '../config/defaults.js';
import type { Emulator } from '../emulator.js';
import { SqliteStore } from '../store/sqlite.js';
import { createTestDeviceCertificate } from '../testing/certificates.js';
import { captureIo, startArgs, whileRunning } from '../testing/cli-io.js';
import { tempStateDir } from '../testing/fixtures.js';
import { register, rejectionOf } from '../testing/sdk.js';
import { sdkFailure, serviceClient } from '../testing/service-sdk.js';
import { startWebhook } from '../testing/webhook-server.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, runCli } from './run.js';

const dir = tempStateDir();
afterAll(() => dir.remove());

describe('dps-emulator', () => {
  it('starts the tutorial setup, prints endpoints, CA and keys, serves devices, and stops', async () => {
    const state = join(dir.path, 'tutorial');
    const run = await whileRunning(startArgs(state), async (emulator) => {
      const result = await register(
        emulator,
        'contoso-toaster-007',
        deriveDeviceKey(TUTORIAL_GROUP_KEY, 'contoso-toaster-007'),
      );
      expect(result.status).toBe('assigned');
    });
    expect(run.code).toBe(EXIT_OK);
    // JSON logs on stdout (not a terminal), the summary on stderr.
    const lines = run.out
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string; msg: string });
    expect(lines.map((l) => l.event)).toEqual(['tls', 'started', 'registration', 'stopped']);
    expect(lines[2]?.msg).toContain('contoso-toaster-007 assigned to');
    const banner = run.err;
    expect(banner).toContain('ID scope 0ne00000A0A');
    expect(banner).toMatch(/MQTT {3}mqtts:\/\/127\.0\.0\.1:\d+ {3}provisioningHost "localhost:\d+"/);
    expect(banner).toMatch(
      /HTTPS {2}https:\/\/127\.0\.0\.1:\d+ {3}provisioningHost "localhost" {2}\(Node SDKs' HTTPS clients dial 443: point them here with @dpskit\/emulator\/sdk, or an https.Agent with defaultPort \d+\)/,
    );
    expect(banner).toMatch(
      /AMQP {3}amqps:\/\/127\.0\.0\.1:\d+ {3}provisioningHost "localhost:\d+" {2}\(the C SDK always dials 5671\)/,
    );
    expect(banner).toMatch(
      /WS {5}wss:\/\/127\.0\.0\.1:\d+\/\$iothub\/websocket {3}subprotocols mqtt, AMQPWSB10 {3}provisioningHost "localhost" {2}\(Node MqttWs\/AmqpWs always dial 443: point them here with @dpskit\/emulator\/sdk, or a webSocketAgent for port \d+\)/,
    );
    expect(banner).toContain(`export NODE_EXTRA_CA_CERTS="${join(state, 'tls', 'ca.pem')}"`);
    // Python and C cannot take a port: the banner says what they need and that these ports will not do.
    expect(banner).toContain('Python SDK: server_verification_cert=<text of ca.pem>, provisioning_host "localhost"\n');
    expect(banner).toContain(
      'C SDK: OPTION_TRUSTED_CERT <text of ca.pem> or the system CA store, global_prov_uri "localhost"\n',
    );
    expect(banner).toMatch(
      /\(Python and C always use ports 8883 and 443: MQTT is on \d+, not 8883 \(start with --mqtt-port 8883\); HTTPS is on \d+, not 443\)\n/,
    );
    expect(banner).toContain(
      'contoso-custom-allocated-devices  [hashed; hubs contoso-toasters-hub-1098.azure-devices.net',
    );
    expect(banner).toContain(`primaryKey   ${TUTORIAL_GROUP_KEY}\n`);
    expect(banner).toMatch(/secondaryKey [A-Za-z0-9+/=]{88} {2}\(generated\)/);
  });

  it('masks the webhook key in the banner and takes the webhook retry schedule from the command line', async () => {
    const webhook = await startWebhook(() => ({ status: 503, body: { error: 'busy' } }));
    try {
      const run = await whileRunning(
        startArgs(
          join(dir.path, 'retry'),
          '--no-https',
          '--no-amqp',
          '--webhook-url',
          `${webhook.url}?code=very-secret-function-key`,
          '--webhook-retries',
          '2',
          '--webhook-retry-interval',
          '10',
          '--webhook-retry-increment',
          '0',
        ),
        async (emulator) => {
          const err = await rejectionOf(
            register(emulator, 'contoso-heatpump-088', deriveDeviceKey(TUTORIAL_GROUP_KEY, 'contoso-heatpump-088')),
          );
          expect(err.result).toMatchObject({ registrationState: { errorCode: 400207 } });
        },
      );
      expect(run.code).toBe(EXIT_OK);
      expect(webhook.calls).toHaveLength(3);
      expect(run.err).toContain('?****');
      expect(run.err + run.out).not.toContain('very-secret-function-key');
    } finally {
      await webhook.close();
    }
  });

  it('writes --ready-file once listening (ports, provisioningHost, CA) and removes it on stop', async () => {
    const state = join(dir.path, 'ready');
    const readyFile = join(dir.path, 'ready', 'run', 'emulator.json');
    mkdirSync(dirname(readyFile), { recursive: true });
    writeFileSync(readyFile, '{"left":"by an earlier run"}');
    let seen: Record<string, unknown> | undefined;
    const run = await whileRunning(startArgs(state, '--ready-file', readyFile), async (emulator) => {
      seen = JSON.parse(readFileSync(readyFile, 'utf8')) as Record<string, unknown>;
      expect(seen).toEqual({
        ready: true,
        pid: process.pid,
        idScope: '0ne00000A0A',
        mqtt: {
          host: '127.0.0.1',
          port: emulator.endpoints.mqtt.port,
          provisioningHost: `localhost:${emulator.endpoints.mqtt.port}`,
        },
        https: { host: '127.0.0.1', port: emulator.endpoints.https?.port, provisioningHost: 'localhost' },
        amqp: {
          host: '127.0.0.1',
          port: emulator.endpoints.amqp?.port,
          provisioningHost: `localhost:${emulator.endpoints.amqp?.port}`,
        },
        webSockets: {
          url: `wss://localhost:${emulator.endpoints.https?.port}/$iothub/websocket`,
          port: emulator.endpoints.https?.port,
          provisioningHost: 'localhost',
          subprotocols: ['mqtt', 'AMQPWSB10'],
        },
        serviceConnectionString: emulator.serviceConnectionString,
        hubs: emulator.linkedHubs.map((hub) => ({
          hostName: hub.hostName,
          connectionString: emulator.hubConnectionString(hub.hostName),
          eventHubConnectionString: `Endpoint=sb://localhost:${emulator.endpoints.amqp?.port}/;SharedAccessKeyName=iothubowner;SharedAccessKey=${emulator.hubConnectionString(hub.hostName).split('SharedAccessKey=')[1]};EntityPath=${hub.hostName.split('.')[0]}`,
          consumerGroups: ['$Default'],
        })),
        caCertPath: join(state, 'tls', 'ca.pem'),
        stateDir: state,
      });
      // what the file says is enough to provision a device
      const result = await register(
        emulator,
        'contoso-toaster-007',
        deriveDeviceKey(TUTORIAL_GROUP_KEY, 'contoso-toaster-007'),
      );
      expect(result.status).toBe('assigned');
    });
    expect(run.code).toBe(EXIT_OK);
    expect(seen?.ready).toBe(true);
    expect(existsSync(readyFile)).toBe(false);
    expect(readdirSync(dirname(readyFile))).toEqual([]);
  });

  it("keeps the newest --attempt-history attempts, the flag over the config's attemptHistory", async () => {
    const state = join(dir.path, 'history');
    const file = join(dir.path, 'history.json');
    writeFileSync(file, JSON.stringify({ ...tutorialConfig(), attemptHistory: 1 }));
    const registerAll = (ids: string[]) => async (emulator: Emulator) => {
      for (const id of ids) {
        expect((await register(emulator, id, deriveDeviceKey(TUTORIAL_GROUP_KEY, id))).status).toBe('assigned');
      }
    };
    const kept = () => {
      const store = SqliteStore.open(join(state, 'emulator.db'));
      try {
        return store.latestAttempts(100).map((a) => a.registrationId);
      } finally {
        store.close();
      }
    };
    const fromConfig = await whileRunning(startArgs(state, '--config', file), registerAll(['device-1', 'device-2']));
    expect(fromConfig.code, fromConfig.err).toBe(EXIT_OK);
    expect(kept()).toEqual(['device-2']);
    const fromFlag = await whileRunning(
      startArgs(state, '--config', file, '--attempt-history', '3'),
      registerAll(['device-3', 'device-4', 'device-5', 'device-6']),
    );
    expect(fromFlag.code, fromFlag.err).toBe(EXIT_OK);
    expect(kept()).toEqual(['device-4', 'device-5', 'device-6']);

    const bad = captureIo();
    expect(await runCli(startArgs(state, '--attempt-history', 'all'), bad.io)).toBe(EXIT_USAGE);
    expect(bad.err()).toContain(
      'dps-emulator: --attempt-history must be a whole number of attempts from 0 to 1000000 (0 keeps none), not "all".\n',
    );
    writeFileSync(file, JSON.stringify({ ...tutorialConfig(), attemptHistory: -5 }));
    const badConfig = captureIo();
    expect(await runCli(startArgs(state, '--config', file), badConfig.io)).toBe(EXIT_FAILURE);
    expect(badConfig.err()).toContain(
      '  - attemptHistory: must be a whole number of attempts from 0 to 1000000 (0 keeps none)\n',
    );
  });

  it('exits 1 naming the option for a missing or wrong issuing CA (the key never printed)', async () => {
    const missing = captureIo();
    const state = join(dir.path, 'issuing');
    expect(
      await runCli(startArgs(state, '--issuing-ca', join(dir.path, 'nope.pem'), '--issuing-ca-key', 'x'), missing.io),
    ).toBe(EXIT_FAILURE);
    expect(missing.err()).toBe(`dps-emulator: --issuing-ca ${join(dir.path, 'nope.pem')}: ENOENT\n`);
    const device = await createTestDeviceCertificate('not-a-ca');
    writeFileSync(join(dir.path, 'device.pem'), device.cert);
    writeFileSync(join(dir.path, 'device.key.pem'), device.key);
    const wrong = captureIo();
    expect(
      await runCli(
        startArgs(
          state,
          '--issuing-ca',
          join(dir.path, 'device.pem'),
          '--issuing-ca-key',
          join(dir.path, 'device.key.pem'),
        ),
        wrong.io,
      ),
    ).toBe(EXIT_FAILURE);
    expect(wrong.err()).toBe(
      `dps-emulator: issuing CA (--issuing-ca/--issuing-ca-key or the config's issuingCa): the issuing CA certificate "CN=not-a-ca" is not a CA certificate (basicConstraints)\n`,
    );
  });

  it('exits 1 with the file and field for a bad config', async () => {
    const file = join(dir.path, 'bad.yaml');
    writeFileSync(file, 'iotHubs: []\n');
    const run = captureIo();
    expect(await runCli(['start', '--config', file, '--state-dir', join(dir.path, 'bad')], run.io)).toBe(EXIT_FAILURE);
    expect(run.err()).toBe(
      `dps-emulator: Invalid emulator config (${file}):\n  - iotHubs: link at least one IoT hub\n`,
    );
  });

  it("exits 1 naming an enrollment's initialTwin integer outside IoT Hub's range, in JSON and in YAML (it was rounded)", async () => {
    const range = "is outside IoT Hub's integer range (-4503599627370496 to 4503599627370495)";
    const hubs = '{"iotHubs":[{"hostName":"hub-1.azure-devices.net"}]';
    const cases: Array<[string, string, string]> = [
      [
        'big.json',
        // 9007199254740993 is past 2^53: JSON.parse reads it as ...992.
        `${hubs},"enrollmentGroups":[{"enrollmentGroupId":"g1","initialTwin":{"tags":{"fine":4503599627370495,"f":1e21}}},{"enrollmentGroupId":"g2","initialTwin":{"properties":{"desired":{"a":[1,9007199254740993]}}}}]}`,
        `enrollmentGroups[1].initialTwin.properties.desired.a[1]: 9007199254740993 ${range}`,
      ],
      [
        'big.yaml',
        [
          'iotHubs: [{ hostName: hub-1.azure-devices.net }]',
          'individualEnrollments:',
          '  - registrationId: d1',
          '    initialTwin: { tags: { min: -4503599627370496, hex: 0xff } }',
          '  - registrationId: d2',
          '    initialTwin:',
          '      tags:',
          '        serial: -4503599627370497',
          '',
        ].join('\n'),
        `individualEnrollments[1].initialTwin.tags.serial: -4503599627370497 ${range}`,
      ],
    ];
    for (const [name, text, issue] of cases) {
      const file = join(dir.path, name);
      writeFileSync(file, text);
      const run = captureIo();
      expect(await runCli(['start', '--config', file, '--state-dir', join(dir.path, 'big')], run.io)).toBe(
        EXIT_FAILURE,
      );
      expect(run.err()).toBe(`dps-emulator: Invalid emulator config (${file}):\n  - ${issue}\n`);
    }
  });

  it('bounds enrollments by --max-individual-enrollments and --max-enrollment-groups (403 403001 past them), and names a bad value', async () => {
    const individual = (id: string) => ({ registrationId: id, attestation: { type: 'symmetricKey' } }) as never;
    const group = (id: string) => ({ enrollmentGroupId: id, attestation: { type: 'symmetricKey' } }) as never;
    const args = startArgs(
      join(dir.path, 'quotas'),
      '--max-individual-enrollments',
      '1',
      '--max-enrollment-groups',
      '2',
    );
    const run = await whileRunning(args, async (emulator) => {
      // The tutorial's one symmetric-key group counts toward the group quota.
      const client = serviceClient(emulator);
      await client.createOrUpdateIndividualEnrollment(individual('quota-device-1'));
      await client.createOrUpdateEnrollmentGroup(group('quota-group-1'));
      expect(await sdkFailure(client.createOrUpdateIndividualEnrollment(individual('quota-device-2')))).toMatchObject({
        status: 403,
        name: 'TooManyDevicesError',
        body: { errorCode: 403001, message: expect.stringContaining('has 1 individual enrollments, its quota') },
      });
      expect(await sdkFailure(client.createOrUpdateEnrollmentGroup(group('quota-group-2')))).toMatchObject({
        status: 403,
        body: {
          errorCode: 403001,
          message: expect.stringContaining('has 2 enrollment groups with symmetricKey attestation, its quota'),
        },
      });
    });
    expect(run.code, run.err).toBe(EXIT_OK);
    for (const [flag, value, message] of [
      ['--max-individual-enrollments', '0', '--max-individual-enrollments must be at least 1.'],
      ['--max-enrollment-groups', '1.5', '--max-enrollment-groups must be a whole number >= 0, not "1.5".'],
      ['--max-enrollment-groups', 'many', '--max-enrollment-groups must be a whole number >= 0, not "many".'],
    ]) {
      const bad = captureIo();
      expect(await runCli(startArgs(join(dir.path, 'quotas'), flag as string, value as string), bad.io)).toBe(
        EXIT_USAGE,
      );
      expect(bad.err()).toContain(message);
    }
  });

  it('exits 1 with the fix when the MQTT port is taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const run = captureIo();
      const code = await runCli(
        ['start', '--state-dir', join(dir.path, 'busy'), '--mqtt-port', String(port), '--no-https'],
        run.io,
      );
      expect(code).toBe(EXIT_FAILURE);
      expect(run.err()).toContain(`Cannot listen for MQTT on 127.0.0.1:${port}: the port is already in use.`);
      expect(run.err()).toContain('--mqtt-port');
    } finally {
      blocker.close();
    }
  });

  it('prints usage for bad arguments (exit 2) and help (exit 0)', async () => {
    const bad = captureIo();
    expect(await runCli(['start', '--mqtt-port', 'x'], bad.io)).toBe(EXIT_USAGE);
    expect(bad.err()).toMatch(
      /^dps-emulator: --mqtt-port must be a port number[^\n]*\nRun "dps-emulator start --help" for the options\.\n$/,
    );
    const typo = captureIo();
    expect(await runCli(['start', '--mqtt-prot', '1'], typo.io)).toBe(EXIT_USAGE);
    expect(typo.err()).toBe(
      'dps-emulator: unknown option --mqtt-prot\nDid you mean --mqtt-port?\nRun "dps-emulator start --help" for the options.\n',
    );
    const help = captureIo();
    expect(await runCli(['--help'], help.io)).toBe(EXIT_OK);
    expect(help.out()).toContain('--webhook-url <url>');
    const version = captureIo();
    expect(await runCli(['--version'], version.io)).toBe(EXIT_OK);
    expect(version.out()).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});
