import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { compileTypeScript } from '../deploy/compile.js';
import { PACKAGE_DIR } from '../deploy/package.js';
import type { AllocatorLogRecord } from '../log/record.js';
import { spawnNode } from '../testing/process.js';
import { HEATPUMP_BODY, TOASTER_BODY, TOASTERS_HUB } from '../testing/tutorial-requests.js';
import { writeUserApp } from '../testing/user-app.js';

/**
 * The CLI as `pnpm start` runs it (`node dist/local-host/cli.js`), compiled into a scratch copy of
 * the app so that the test never rewrites the package's own dist while other tasks may read it.
 */
describe('allocator CLI', () => {
  let app: string;
  let cli: string;
  const envWithoutKey = (): NodeJS.ProcessEnv => {
    const env = { ...process.env };
    delete env.ALLOCATOR_FUNCTION_KEY;
    return env;
  };

  beforeAll(async () => {
    app = await mkdtemp(path.join(tmpdir(), 'dpskit-allocator-cli-'));
    await copyFile(path.join(PACKAGE_DIR, 'package.json'), path.join(app, 'package.json'));
    await copyFile(path.join(PACKAGE_DIR, 'host.json'), path.join(app, 'host.json'));
    await symlink(path.join(PACKAGE_DIR, 'node_modules'), path.join(app, 'node_modules'), 'dir');
    await compileTypeScript(path.join(PACKAGE_DIR, 'tsconfig.build.json'), path.join(app, 'dist'));
    cli = path.join(app, 'dist', 'local-host', 'cli.js');
  }, 120_000);

  afterAll(async () => {
    if (app) await rm(app, { recursive: true, force: true });
  });

  it('generates a key, prints the webhook URL with ?code=, serves the tutorial and stops cleanly on Ctrl-C', async () => {
    const child = spawnNode([cli, '--port', '0'], { env: envWithoutKey() });
    try {
      // stdout is a pipe, not a terminal: JSON lines by default.
      const line = await child.waitForLine((l) => l.includes('"msg":"Webhook URL"'));
      const record = JSON.parse(line) as AllocatorLogRecord;
      const webhookUrl = String(record.data?.webhookUrl);
      expect(webhookUrl).toMatch(/^http:\/\/localhost:\d+\/api\/allocate\?code=[A-Za-z0-9_-]{43}$/);
      expect(record.data?.keySource).toBe('generated');

      const toaster = await fetch(webhookUrl, { method: 'POST', body: TOASTER_BODY });
      expect([toaster.status, await toaster.text()]).toEqual([200, `{"iotHubHostName":"${TOASTERS_HUB}"}`]);
      const heatpump = await fetch(webhookUrl, { method: 'POST', body: HEATPUMP_BODY });
      expect([heatpump.status, await heatpump.text()]).toEqual([400, 'Unrecognized device registration.']);
      const noKey = await fetch(webhookUrl.replace(/\?code=.*/, ''), { method: 'POST', body: TOASTER_BODY });
      expect(noKey.status).toBe(401);

      await child.waitForLine((l) => l.includes('"Unrecognized device registration."') && l.includes('"Rejected"'));
      for (const l of child.lines) expect(() => JSON.parse(l)).not.toThrow();

      child.child.kill('SIGINT');
      expect(await child.exited).toBe(0);
      expect(child.lines.at(-1)).toContain('"msg":"Stopped"');
    } finally {
      await child.stop();
    }
  });

  it('writes --ready-file once listening (URL, port, functions, masked webhook URL) and removes it on stop', async () => {
    const readyFile = path.join(app, 'run', 'allocator.json');
    const child = spawnNode([cli, '--port', '0', '--ready-file', readyFile], {
      env: { ...envWithoutKey(), ALLOCATOR_FUNCTION_KEY: 'ready-key-1' },
    });
    try {
      // A script waits for the file, not for a clock.
      await vi.waitFor(() => expect(existsSync(readyFile)).toBe(true), { timeout: 30_000, interval: 50 });
      const ready = JSON.parse(await readFile(readyFile, 'utf8')) as Record<string, unknown> & { port: number };
      expect(ready).toEqual({
        ready: true,
        pid: child.child.pid,
        url: `http://localhost:${ready.port}`,
        port: ready.port,
        webhookUrl: `http://localhost:${ready.port}/api/allocate?code=****`,
        functions: [{ name: 'allocate', methods: ['POST'], url: `http://localhost:${ready.port}/api/allocate` }],
      });
      expect(JSON.stringify(ready)).not.toContain('ready-key-1');
      const res = await fetch(`${ready.url}/api/allocate?code=ready-key-1`, { method: 'POST', body: TOASTER_BODY });
      expect(res.status).toBe(200);
      child.child.kill('SIGTERM');
      expect(await child.exited).toBe(0);
      expect(existsSync(readyFile)).toBe(false);
    } finally {
      await child.stop();
    }
  });

  it('takes the key from ALLOCATOR_FUNCTION_KEY, masks it, and prints readable lines with --pretty', async () => {
    const child = spawnNode([cli, '-p', '0', '--pretty'], {
      env: { ...envWithoutKey(), ALLOCATOR_FUNCTION_KEY: 'env-key-42' },
    });
    try {
      const line = await child.waitForLine((l) => /^ {2}http:\/\/localhost:\d+\/api\/allocate\?code=/.test(l));
      expect(line).toMatch(/\?code=\*\*\*\*$/);
      expect(child.lines.join('\n')).toContain(
        'Webhook URL for the enrollment group (function key from ALLOCATOR_FUNCTION_KEY)',
      );
      const url = line.trim().replace('?code=****', '');
      const res = await fetch(url, {
        method: 'POST',
        body: TOASTER_BODY,
        headers: { 'x-functions-key': 'env-key-42' },
      });
      expect(res.status).toBe(200);
      await child.waitForLine((l) => / INFO {2}\[allocate\] Selected hub /.test(l));
      expect(child.lines.join('\n')).not.toContain('env-key-42');
      child.child.kill('SIGTERM');
      expect(await child.exited).toBe(0);
    } finally {
      await child.stop();
    }
  });

  it('prints only the lines at --log-level or above (ALLOCATOR_LOG_LEVEL when not given), and the webhook URL', async () => {
    const child = spawnNode([cli, '--port', '0'], { env: { ...envWithoutKey(), ALLOCATOR_LOG_LEVEL: 'warn' } });
    try {
      const line = await child.waitForLine((l) => l.includes('"msg":"Webhook URL"'));
      const webhookUrl = String((JSON.parse(line) as AllocatorLogRecord).data?.webhookUrl);
      expect((await fetch(webhookUrl, { method: 'POST', body: TOASTER_BODY })).status).toBe(200);
      expect((await fetch(webhookUrl, { method: 'POST', body: HEATPUMP_BODY })).status).toBe(400);
      await child.waitForLine((l) => l.includes('"msg":"HTTP"'));
      child.child.kill('SIGTERM');
      expect(await child.exited).toBe(0);
      const records = child.lines.map((l) => JSON.parse(l) as AllocatorLogRecord);
      expect(records.map((r) => `${r.level} ${r.msg}`)).toEqual(['info Webhook URL', 'warn Rejected', 'warn HTTP']);
    } finally {
      await child.stop();
    }

    const debug = spawnNode([cli, '--port', '0', '--log-level', 'debug'], {
      env: { ...envWithoutKey(), ALLOCATOR_LOG_LEVEL: 'error' },
    });
    try {
      await debug.waitForLine((l) => l.includes('"msg":"Listening on'));
    } finally {
      await debug.stop();
    }
  });

  it('serves another app folder (start <appDir>) with the key from its local.settings.json', async () => {
    const appDir = await writeUserApp({
      hostJson: { version: '2.0', extensions: { http: { routePrefix: '' } } },
      localSettings: { Values: { ALLOCATOR_FUNCTION_KEY: 'settings-key' } },
      files: {
        'dist/src/functions/echo.js': `import { app } from '@azure/functions';
app.http('echo', { methods: ['POST'], authLevel: 'function', handler: async (request) => ({ body: 'got ' + (await request.text()) }) });`,
      },
    });
    const child = spawnNode([cli, 'start', appDir, '--port', '0'], { env: envWithoutKey() });
    try {
      const line = await child.waitForLine((l) => l.includes('"msg":"Webhook URL"'));
      const record = JSON.parse(line) as AllocatorLogRecord;
      expect(record.data?.webhookUrl).toMatch(/^http:\/\/localhost:\d+\/echo\?code=\*\*\*\*$/);
      const url = String(record.data?.webhookUrl).replace('****', 'settings-key');
      const res = await fetch(url, { method: 'POST', body: 'ping' });
      expect([res.status, await res.text()]).toEqual([200, 'got ping']);
      expect(child.lines.join('\n')).not.toContain('settings-key');
    } finally {
      await child.stop();
      await rm(appDir, { recursive: true, force: true });
    }
  });

  it('exits 2 naming an app folder that does not exist', async () => {
    const child = spawnNode([cli, 'start', path.join(app, 'no-such-app')]);
    expect(await child.exited).toBe(2);
    expect(child.stderr()).toContain("Invalid app folder '");
  });

  it('prints usage for --help', async () => {
    const child = spawnNode([cli, '--help']);
    expect(await child.exited).toBe(0);
    expect(child.lines[0]).toMatch(/^Usage: dpskit-allocator start \[appDir\]/);
  });

  it('exits 2 with a clear message for a bad port, an unknown option or a bad key', async () => {
    const badPort = spawnNode([cli, '--port', 'abc']);
    expect(await badPort.exited).toBe(2);
    expect(badPort.stderr()).toContain("Invalid --port 'abc': expected an integer from 0 to 65535.");

    const unknown = spawnNode([cli, '--verbose']);
    expect(await unknown.exited).toBe(2);
    expect(unknown.stderr()).toBe(
      'dpskit-allocator: unknown option --verbose\nRun "dpskit-allocator start --help" for the options.\n',
    );

    const typo = spawnNode([cli, '--prot', '0']);
    expect(await typo.exited).toBe(2);
    expect(typo.stderr()).toBe(
      'dpskit-allocator: unknown option --prot\nDid you mean --port?\nRun "dpskit-allocator start --help" for the options.\n',
    );

    const packageTypo = spawnNode([path.join(app, 'dist', 'cli.js'), 'package', '--no-zp']);
    expect(await packageTypo.exited).toBe(2);
    expect(packageTypo.stderr()).toBe(
      'dpskit-allocator: unknown option --no-zp\nDid you mean --no-zip?\nRun "dpskit-allocator package --help" for the options.\n',
    );

    const badLevel = spawnNode([cli, '--port', '0'], { env: { ...process.env, ALLOCATOR_LOG_LEVEL: 'verbose' } });
    expect(await badLevel.exited).toBe(2);
    expect(badLevel.stderr()).toContain("Invalid ALLOCATOR_LOG_LEVEL 'verbose': expected debug, info, warn or error.");

    const badKey = spawnNode([cli, '--port', '0'], { env: { ...process.env, ALLOCATOR_FUNCTION_KEY: 'has space' } });
    expect(await badKey.exited).toBe(2);
    expect(badKey.stderr()).toContain(
      'Invalid ALLOCATOR_FUNCTION_KEY: the function key must be printable ASCII without spaces.',
    );
  });

  it('exits 1 naming the port when it is already in use', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const port = (blocker.address() as net.AddressInfo).port;
      const child = spawnNode([cli, '--port', String(port), '--host', '127.0.0.1']);
      expect(await child.exited).toBe(1);
      expect(child.stderr()).toContain(
        `dpskit-allocator: Cannot listen for HTTP on 127.0.0.1:${port}: the port is already in use.`,
      );
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
