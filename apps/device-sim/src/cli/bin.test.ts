import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HttpsDps, startHttpsDps } from '../testing/https-dps.js';
import { createTestPki } from '../testing/tls.js';

// The built bin (`device-sim` → dist/cli.js) as a user runs it: real process, exit codes, stdin, SIGINT.

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli.js');
const GROUP_KEY = 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(
  args: string[],
  env: Record<string, string> = {},
  stdin?: string,
): { child: ChildProcess; done: Promise<Run> } {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "pnpm --filter @dpskit/device-sim build" first`);
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString('utf8');
  });
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  child.stdin?.end(stdin ?? '');
  const done = new Promise<Run>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}

let dps: HttpsDps;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  const pki = createTestPki();
  dir = mkdtempSync(join(tmpdir(), 'device-sim-cli-'));
  writeFileSync(join(dir, 'ca.pem'), pki.caPem);
  dps = await startHttpsDps({
    pki,
    idScope: '0ne00000A0A',
    groupKey: GROUP_KEY,
    decide: () => ({ kind: 'assigned', hub: 'contoso-toasters-hub-1098.azure-devices.net' }),
    retryAfter: '2',
  });
  env = {
    DPS_ID_SCOPE: '0ne00000A0A',
    DPS_GROUP_KEY: GROUP_KEY,
    DPS_PROVISIONING_HOST: dps.host,
    DPS_CA_FILE: join(dir, 'ca.pem'),
    DPS_TRANSPORT: 'http',
  };
});

afterAll(async () => {
  await dps?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('device-sim (built bin)', () => {
  it('prints its version', async () => {
    const run = await start(['--version']).done;
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /^device-sim 0\.1\.0 \(azure-iot-provisioning-device 1\.9\.1, DPS api-version 2019-03-31\)\n$/,
    );
  });

  it('exits 2 with a message for a usage error', async () => {
    const run = await start(['register', '--id-scope', '0ne00000A0A']).done;
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('missing --registration-id');
    const typo = await start(['fleet', '--coutn', '3']).done;
    expect(typo.code).toBe(2);
    expect(typo.stdout).toBe('');
    expect(typo.stderr).toBe(
      'device-sim: unknown option --coutn\nDid you mean --count?\nRun "device-sim fleet --help" for the options.\n',
    );
  });

  it('derives keys from stdin', async () => {
    const run = await start(['keys', 'derive', '--json'], { DPS_GROUP_KEY: GROUP_KEY }, 'contoso-heatpump-088\n').done;
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      registrationId: 'contoso-heatpump-088',
      derivedKey: 'NI9dUEI2tga168Qi1U/HKuMmFHewrvaqI1MPTEU1A5w=',
    });
  });

  it('registers a device and exits 0', async () => {
    const run = await start(['register', '--registration-id', 'contoso-toaster-007'], env).done;
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      'Registration Information received from service: contoso-toasters-hub-1098.azure-devices.net',
    );
  });

  // SIGTERM: what `timeout`, a cancelled CI job or a stopped container sends (was: no summary, exit 143).
  it.each(['SIGINT', 'SIGTERM'] as const)('stops a fleet on %s, prints the summary and exits 130', async (signal) => {
    const before = dps.registrations.length;
    const { child, done } = start(
      ['fleet', '--count', '50', '--concurrency', '5', '--registration-id-template', `contoso-toaster-${signal}-{n}`],
      env,
    );
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (dps.registrations.length - before >= 5) {
          clearInterval(poll);
          resolve();
        }
      }, 10);
    });
    child.kill(signal);
    const run = await done;
    expect(run.code).toBe(130);
    expect(run.stdout).toContain('Fleet summary');
    expect(run.stdout).toMatch(/stopped early: \d+ of 50 devices completed/);
    expect(run.stderr).toContain('stopping');
  });
});
