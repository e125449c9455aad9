import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogRecord } from '@dpskit/node-kit';
import { describe, expect, it } from 'vitest';
import { BUILT_CLI, startCliEmulator } from '../testing/cli-process.js';
import { closedPortUrl, groupDeviceKey, HUB_A, HUB_B, HUB_C, testConfig } from '../testing/fixtures.js';
import { register, type SdkTransport } from '../testing/sdk.js';
import { parseCliArgs } from './args.js';

// `dps-emulator start --workers 2` (the built CLI, a node:cluster primary and two workers on one
// state folder) against a fleet of the official SDK's devices over MQTT and HTTPS.

describe('dps-emulator start --workers', () => {
  it('serves a fleet from two workers on one store: every device assigned once, polls answered by either worker', async () => {
    const unreachable = await closedPortUrl();
    const child = await startCliEmulator(testConfig(unreachable, unreachable), [
      '--workers',
      '2',
      '--log-level',
      'debug',
    ]);
    try {
      const devices = Array.from({ length: 60 }, (_, i) => ({
        id: `workers-${String(i).padStart(2, '0')}`,
        transport: (i % 2 ? 'https' : 'mqtt') as SdkTransport,
      }));
      const results = await Promise.all(
        devices.map(({ id, transport }) => register(child.view, id, groupDeviceKey('hashed', id), { transport })),
      );
      for (const [i, result] of results.entries()) {
        const id = devices[i]?.id;
        expect(result).toMatchObject({ registrationId: id, deviceId: id, status: 'assigned' });
        expect([HUB_A, HUB_B, HUB_C]).toContain(result.assignedHub);
      }

      const log = child.log();
      const ids = devices.map((device) => device.id).sort();
      // Exactly one allocation per device, whichever worker ran it; both workers ran some.
      const allocations = log.filter((line) => line.event === 'registration');
      expect(allocations.map((line) => line.registrationId).sort()).toEqual(ids);
      expect(new Set(allocations.map((line) => line.worker))).toEqual(new Set([1, 2]));
      // A poll answered `done` by the worker that did not run its allocation: it read the store.
      const allocatedBy = new Map(allocations.map((line) => [line.operationId as string, line.worker]));
      const polls = log.filter((line): line is LogRecord & { operationId: string } => line.event === 'operation.poll');
      const crossed = polls.filter(
        (poll) =>
          poll.state === 'done' &&
          allocatedBy.has(poll.operationId) &&
          allocatedBy.get(poll.operationId) !== poll.worker,
      );
      expect(crossed.length).toBeGreaterThan(0);
      expect(polls.every((poll) => poll.state !== 'not-found')).toBe(true);

      // One record per device in the shared store, each what its device was told.
      const list = await child.cli(['registrations', 'list', '--json']);
      expect(list.code, list.stderr).toBe(0);
      const records = JSON.parse(list.stdout) as Array<{ registrationId: string; result: unknown }>;
      expect(records.map((record) => record.registrationId).sort()).toEqual(ids);
      for (const record of records)
        expect(record.result).toEqual(results[devices.findIndex((d) => d.id === record.registrationId)]);
    } finally {
      const code = await child.stop();
      expect(code, child.stderr()).toBe(0);
    }
  });

  it("fails the start with the worker's reason and exit code 1 when the first worker cannot listen", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    const dir = mkdtempSync(join(tmpdir(), 'dpskit-workers-'));
    try {
      const child = spawn(
        process.execPath,
        [
          BUILT_CLI,
          'start',
          '--state-dir',
          dir,
          '--mqtt-port',
          String(port),
          '--no-https',
          '--no-amqp',
          '--no-web',
        ].concat(['--workers', '2', '--log-format', 'json']),
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
      });
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code).toBe(1);
      expect(stderr).toContain(`127.0.0.1:${port}: the port is already in use`);
      expect(stderr).toMatch(/could not start 2 workers: worker 1 \(pid \d+\) exited \(code 1\)/);
    } finally {
      taken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes 1 to 64 workers', () => {
    expect(parseCliArgs(['start', '--workers', '2'])).toMatchObject({ workers: 2 });
    expect(parseCliArgs(['start'])).not.toHaveProperty('workers');
    for (const bad of ['0', '65', '1.5', 'two', ''])
      expect(() => parseCliArgs(['start', `--workers=${bad}`]), bad).toThrow(
        /--workers must be a whole number from 1 to 64/,
      );
  });
});
