import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { modulesResolved } from '@dpskit/vitest-config/module-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// `keys derive` starts without the contracts' schema layer: the built CLI, run as a user runs it,
// with a module hook recording every ES module it resolves. A `keys` command line loads
// keys-args.ts alone and the keys entry of @dpskit/contracts, never zod (about 60 ms of CPU).
// Nor do the other commands on the way to an assigned device: zod's classic schemas (the contract's
// main entry) are loaded only to describe a device's failure (issue #13: 60-80 ms of CPU at every
// start and in every fleet worker thread).

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli.js');
const GROUP_KEY = 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'device-sim-keys-start-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The ES modules `node <entry> ...args` resolved (the CLI unless `entry` is given), with `stdin` piped
 * in, its stdout and exit code.
 */
function modulesLoaded(
  args: string[],
  stdin: string,
  entry = CLI,
): Promise<{ modules: string[]; stdout: string; code: number }> {
  return modulesResolved([entry, ...args], { stdin, env: { PATH: process.env.PATH ?? '' } });
}

const zod = (modules: string[]) => modules.filter((url) => /[\\/]zod[\\/]/.test(url));

describe('device-sim keys derive at start-up', () => {
  it('reads ids on stdin without loading zod', async () => {
    const { modules, stdout } = await modulesLoaded(
      ['keys', 'derive', '--group-key', GROUP_KEY],
      'contoso-toaster-007\n',
    );
    expect(stdout).toBe('contoso-toaster-007 NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI=\n');
    expect(modules.some((url) => url.endsWith('/cli/keys-args.js'))).toBe(true);
    expect(zod(modules)).toEqual([]);
  });

  it('derives keys for ids given as arguments without loading zod', async () => {
    const { modules, stdout } = await modulesLoaded(
      ['keys', 'derive', '--group-key', GROUP_KEY, 'contoso-toaster-007'],
      '',
    );
    expect(stdout).toBe('contoso-toaster-007 NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI=\n');
    expect(zod(modules)).toEqual([]);
  });

  it('loads no zod on the way to an assigned device: the command line, the fleet, a registration, its transport', async () => {
    // A script importing what `fleet` and `register` load before and while a device registers (a
    // run needs a service; its modules do not), each as the CLI's own modules import them.
    const script = join(dir, 'import-all.mjs');
    const built = (path: string) => pathToFileURL(join(dirname(CLI), path)).href;
    writeFileSync(
      script,
      ['cli/args.js', 'cli/commands/fleet.js', 'lib/fleet.js', 'lib/register.js', 'lib/transport/mqtt.js']
        .map((path) => `await import(${JSON.stringify(built(path))});`)
        .join('\n'),
    );
    const { modules } = await modulesLoaded([], '', script);
    expect(modules.some((url) => url.includes('azure-iot-provisioning-device'))).toBe(true);
    expect(modules.filter((url) => url.endsWith('/contracts/dist/index.js'))).toEqual([]);
    expect(zod(modules)).toEqual([]);
  });

  it('(control) the hook sees zod where the CLI loads it: a registration that fails is described', async () => {
    // Port 1 on the loopback: nothing listens, the connection is refused at once.
    const { modules, code } = await modulesLoaded(
      [
        'register',
        '--id-scope',
        '0ne00000A0A',
        '--registration-id',
        'device-1',
        '--group-key',
        GROUP_KEY,
        '--provisioning-host',
        '127.0.0.1:1',
      ],
      '',
    );
    expect(code).toBe(1);
    expect(zod(modules).length).toBeGreaterThan(0);
  });
});
