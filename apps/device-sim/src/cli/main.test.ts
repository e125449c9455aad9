import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closedPort } from '@dpskit/vitest-config/closed-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetSummary } from '../lib/stats.js';
import { type HttpsDps, startHttpsDps } from '../testing/https-dps.js';
import { captureIo } from '../testing/io.js';
import { createTestPki } from '../testing/tls.js';
import { TUTORIAL_HUB, TUTORIAL_TOASTER_OUTPUT } from '../testing/tutorial.js';
import { main } from './main.js';

// `main` with in-memory stdio, provisioning through the real SDK against the in-test HTTPS responder.

const GROUP_KEY = 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';
const TUTORIAL_PAYLOAD = '{"MyDeviceFirmwareVersion":"12.0.2.5","MyDeviceProvisioningVersion":"1.0.0.0"}';

let dps: HttpsDps;
let dir: string;
let caFile: string;
let env: Record<string, string>;

beforeAll(async () => {
  const pki = createTestPki();
  dir = mkdtempSync(join(tmpdir(), 'device-sim-main-'));
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, pki.caPem);
  dps = await startHttpsDps({
    pki,
    idScope: '0ne00000A0A',
    groupKey: GROUP_KEY,
    decide: (id) =>
      id.startsWith('contoso-toaster')
        ? { kind: 'assigned', hub: TUTORIAL_HUB }
        : id.startsWith('contoso-unreached')
          ? // DPS's words when the webhook cannot be reached (the Function not running)
            { kind: 'failed', errorCode: 400207, errorMessage: 'An error occurred while sending the request.' }
          : { kind: 'failed', errorCode: 400207, errorMessage: 'Custom allocation failed with status code: 400' },
  });
  // Secrets and connection through the environment, as the README recommends.
  env = {
    DPS_ID_SCOPE: '0ne00000A0A',
    DPS_GROUP_KEY: GROUP_KEY,
    DPS_PROVISIONING_HOST: dps.host,
    DPS_CA_FILE: caFile,
    DPS_TRANSPORT: 'http',
  };
});

afterAll(async () => {
  await dps?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('device-sim register', () => {
  it("prints the tutorial's output for the toaster and exits 0", async () => {
    const io = captureIo({ env });
    const code = await main(
      ['register', '--registration-id', 'contoso-toaster-007', '--payload', TUTORIAL_PAYLOAD],
      io,
    );
    expect(code).toBe(0);
    expect(io.out()).toBe(TUTORIAL_TOASTER_OUTPUT);
    expect(io.err()).toBe('');
    expect(dps.registrations.at(-1)?.payload).toEqual(JSON.parse(TUTORIAL_PAYLOAD));
  });

  it('prints the failure with the service message and code for the heat pump and exits 1', async () => {
    const io = captureIo({ env });
    const code = await main(['register', '--registration-id', 'contoso-heatpump-088'], io);
    expect(code).toBe(1);
    expect(io.out()).toMatch(
      /Provisioning Failure: OperationId: 4\.[0-9a-f]{16}\.[0-9a-f-]{36} - Date: \d{4}-\d\d-\d\dT[^ ]+ - Msg: Custom allocation failed with status code: 400\n/,
    );
    expect(io.out()).toContain('Failure registering device: status failed, error code 400207\n');
  });

  it('prints one JSON object with --json', async () => {
    const io = captureIo({ env });
    const code = await main(['register', '--registration-id', 'contoso-toaster-008', '--json'], io);
    expect(code).toBe(0);
    const lines = io.out().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      registrationId: 'contoso-toaster-008',
      transport: 'http',
      status: 'assigned',
      assignedHub: TUTORIAL_HUB,
      deviceId: 'contoso-toaster-008',
    });
  });

  it('exits 1 with a hint to pass --ca when the CA is not given', async () => {
    const io = captureIo({ env: { ...env, DPS_CA_FILE: '' } });
    const code = await main(['register', '--registration-id', 'contoso-toaster-009'], io);
    expect(code).toBe(1);
    expect(io.out()).toContain('Hint: the server certificate of');
    expect(io.out()).toContain('pass --ca <file>');
  });

  it('exits 2 on a bad payload without connecting', async () => {
    const before = dps.registrations.length;
    const io = captureIo({ env });
    const code = await main(['register', '--registration-id', 'contoso-toaster-010', '--payload', 'firmware=12'], io);
    expect(code).toBe(2);
    expect(io.out()).toBe('');
    expect(io.err()).toContain('device-sim: --payload is not valid JSON');
    expect(io.err()).toContain('Run "device-sim register --help"');
    expect(dps.registrations.length).toBe(before);
  });
});

describe('device-sim register at a wrong --hub-host', () => {
  // The device is assigned by the in-test DPS, then dials a closed port for its hub with the real
  // device SDK: the socket's cause and the --hub-host hint, at once (over AMQP the SDK used to retry
  // until the 60 s hub timeout; over MQTT it said "Not authorized").
  it.each([
    ['mqtt', 'MQTT'],
    ['amqp', 'AMQP'],
    ['amqp-ws', 'HTTPS'],
  ])('names the refused connection over %s and says which --hub-host port to use', async (transport, listener) => {
    const port = await closedPort();
    const io = captureIo({ env });
    const code = await main(
      [
        'register',
        '--registration-id',
        'contoso-toaster-011',
        '--hub-transport',
        transport,
        '--hub-host',
        `127.0.0.1:${port}`,
      ],
      io,
    );
    expect(code).toBe(1);
    expect(io.out()).toContain(`Failure on the hub: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:${port}\n`);
    expect(io.out()).toContain(
      `Hint: nothing accepts connections at 127.0.0.1:${port}: is the emulator running, and is --hub-host the ${listener} port it printed?\n`,
    );
  });

  it('puts the hint in the --json outcome', async () => {
    const port = await closedPort();
    const io = captureIo({ env });
    const code = await main(
      [
        'register',
        '--registration-id',
        'contoso-toaster-012',
        '--connect',
        '--hub-host',
        `127.0.0.1:${port}`,
        '--json',
      ],
      io,
    );
    expect(code).toBe(1);
    expect(JSON.parse(io.out())).toMatchObject({
      status: 'assigned',
      hubSession: { status: 'error', errorName: 'ECONNREFUSED' },
      hint: expect.stringContaining('--hub-host the MQTT port'),
    });
  });
});

describe('device-sim fleet', () => {
  it('registers mixed device types and summarizes outcomes by status, code and hub', async () => {
    const io = captureIo({ env });
    const code = await main(
      [
        'fleet',
        '--count',
        '6',
        '--concurrency',
        '6',
        '--registration-id-template',
        'contoso-toaster-{n:3},contoso-heatpump-{n:3}',
        '--start',
        '100',
        '--json',
      ],
      io,
    );
    expect(code).toBe(0);
    const summary = JSON.parse(io.out()) as FleetSummary;
    expect(summary).toMatchObject({
      transport: 'http',
      requested: 6,
      launched: 6,
      completed: 6,
      cancelled: 0,
      stoppedEarly: false,
      byStatus: { assigned: 3, failed: 3, disabled: 0, error: 0 },
      hubs: [{ hub: TUTORIAL_HUB, count: 3 }],
    });
    expect(summary.outcomes).toEqual([
      { status: 'assigned', count: 3 },
      {
        status: 'failed',
        errorCode: 400207,
        errorName: 'ProvisioningRegistrationFailedError',
        errorMessage: 'Custom allocation failed with status code: 400',
        count: 3,
        hint: 'the custom allocation webhook answered with an error status: its log says why',
      },
    ]);
    expect(summary.latencyMs?.count).toBe(6);
    const ids = dps.registrations.map((r) => r.registrationId);
    for (const id of ['contoso-toaster-100', 'contoso-toaster-102', 'contoso-heatpump-100', 'contoso-heatpump-102']) {
      expect(ids).toContain(id);
    }
    // not a terminal: no progress bar on stderr
    expect(io.err()).toBe('');
  });

  it("prints register's hints under the outcomes (and in --json): a webhook DPS could not reach, a closed port", async () => {
    const io = captureIo({ env });
    const args = ['fleet', '--count', '4', '--registration-id-template', 'contoso-toaster-h{n},contoso-unreached-{n}'];
    expect(await main(args, io)).toBe(0);
    const reach =
      "Hint: the service could not reach the custom allocation webhook: is your Function running, at the enrollment's webhookUrl (host, port, route)?";
    expect(io.out()).toContain(`An error occurred while sending the request.\n${reach}\n`);
    const json = captureIo({ env });
    expect(await main([...args, '--start', '10', '--json'], json)).toBe(0);
    const summary = JSON.parse(json.out()) as FleetSummary;
    expect(summary.outcomes.map((g) => g.hint)).toEqual([undefined, reach.slice('Hint: '.length)]);

    // One code, two causes: DPS's messages keep them apart (a row each), as a policy's load test needs.
    const mixed = captureIo({ env });
    const templates = 'contoso-unreached-m{n},contoso-heatpump-m{n},contoso-heatpump-n{n}';
    expect(await main(['fleet', '--count', '6', '--registration-id-template', templates, '--json'], mixed)).toBe(0);
    expect((JSON.parse(mixed.out()) as FleetSummary).outcomes).toEqual([
      expect.objectContaining({
        errorCode: 400207,
        errorMessage: 'Custom allocation failed with status code: 400',
        count: 4,
      }),
      expect.objectContaining({
        errorCode: 400207,
        errorMessage: 'An error occurred while sending the request.',
        count: 2,
      }),
    ]);

    const closed = captureIo({ env });
    const host = `localhost:${await closedPort()}`;
    expect(
      await main(
        [...args.slice(0, 3), '--provisioning-host', host, '--registration-id-template', 'closed-{n}'],
        closed,
      ),
      closed.err(),
    ).toBe(1);
    expect(closed.out()).toContain(
      `Hint: nothing accepts connections at ${host}: is the emulator running, and is --provisioning-host the HTTPS port it printed?\n`,
    );
  });

  it('logs progress lines on a stderr that is no terminal, but not with --json (2>&1 stays one JSON document)', async () => {
    const args = ['fleet', '--count', '4', '--concurrency', '2', '--registration-id-template', 'contoso-toaster-p{n}'];
    const text = captureIo({ env, progressLogIntervalMs: 1 });
    expect(await main(args, text)).toBe(0);
    expect(text.err()).toMatch(
      /^device-sim: \d\/4 \d+% {2}assigned \d {2}failed 0 {2}error 0 {2}in flight \d {2}[\d.]+\/s {2}[\d.]+ s\n/,
    );
    const json = captureIo({ env, progressLogIntervalMs: 1 });
    expect(await main([...args, '--start', '10', '--json'], json)).toBe(0);
    expect(json.err()).toBe('');
  });

  it('stops on Ctrl-C, still prints the summary, and exits 130', async () => {
    const io = captureIo({ env });
    const before = dps.registrations.length;
    const running = main(
      ['fleet', '--count', '40', '--concurrency', '4', '--registration-id-template', 'contoso-toaster-stop-{n}'],
      io,
    );
    // interrupt once the first devices are waiting for their answer
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (dps.registrations.length - before >= 4) {
          clearInterval(poll);
          resolve();
        }
      }, 10);
    });
    io.interrupt();
    const code = await running;
    expect(code).toBe(130);
    expect(io.err()).toContain('stopping: no new devices');
    expect(io.out()).toContain('Fleet summary (http, concurrency 4)');
    expect(io.out()).toMatch(/stopped early: \d+ of 40 devices completed \(\d+ cancelled in flight, \d+ not started\)/);
    expect(dps.registrations.length - before).toBeLessThan(40);
  });
});

describe('device-sim keys derive, help and usage', () => {
  it('derives keys for ids on the command line', async () => {
    const io = captureIo({ env: { DPS_GROUP_KEY: GROUP_KEY } });
    expect(await main(['keys', 'derive', 'contoso-toaster-007', 'contoso-heatpump-088'], io)).toBe(0);
    expect(io.out()).toBe(
      'contoso-toaster-007 NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI=\n' +
        'contoso-heatpump-088 NI9dUEI2tga168Qi1U/HKuMmFHewrvaqI1MPTEU1A5w=\n',
    );
  });

  it('derives keys for ids on stdin and exits 1 when some were invalid', async () => {
    const io = captureIo({ stdin: 'contoso-toaster-007\nnot valid\n' });
    expect(await main(['keys', 'derive', '--group-key', GROUP_KEY], io)).toBe(1);
    expect(io.out()).toBe('contoso-toaster-007 NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI=\n');
    expect(io.err()).toContain('line 2 skipped');
  });

  it('prints help for each command with exit 0', async () => {
    for (const argv of [
      ['--help'],
      ['register', '--help'],
      ['fleet', '-h'],
      ['keys', 'derive', '--help'],
      ['help', 'keys'],
    ]) {
      const io = captureIo();
      expect(await main(argv, io)).toBe(0);
      expect(io.out()).toContain('device-sim');
      expect(io.out()).toContain('Usage:');
    }
  });

  it('prints the main help on stderr and exits 2 without a command', async () => {
    const io = captureIo();
    expect(await main([], io)).toBe(2);
    expect(io.err()).toContain('device-sim register [options]');
  });

  it('exits 2 for unknown commands and options', async () => {
    const unknownCommand = captureIo();
    expect(await main(['provision'], unknownCommand)).toBe(2);
    expect(unknownCommand.err()).toContain('unknown command "provision"');
    const unknownOption = captureIo({ env });
    expect(await main(['fleet', '--cont', '3'], unknownOption)).toBe(2);
    expect(unknownOption.err()).toContain('unknown option --cont');
  });
});
