import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AllocatorLogRecord } from '../log/record.js';
import { spawnNode } from '../testing/process.js';
import { readZip } from '../testing/unzip.js';
import { appFiles } from './app-package.js';
import { compileTypeScript } from './compile.js';
import { PACKAGE_DIR } from './package.js';

/** A user's policy as they write it: imports from '@dpskit/allocator', one call registers it. */
const POLICY_MODULE = `
import { accept, registerAllocationFunction, reject } from '@dpskit/allocator';

export const assign = registerAllocationFunction('assign', {
  policy: (request) => {
    const hub = request.linkedHubs.find((h) => h.startsWith(String(request.deviceRuntimeContext.payload?.site)));
    return hub ? accept({ iotHubHostName: hub, initialTwin: { tags: { site: 'north' } } }) : reject('Unknown site.', 404);
  },
});
`;

function allocationBody(site: string): string {
  return JSON.stringify({
    enrollmentGroup: { enrollmentGroupId: 'group', attestation: { type: 'symmetricKey' } },
    deviceRuntimeContext: { registrationId: 'device-1', symmetricKey: {}, payload: { site } },
    linkedHubs: ['south-hub.azure-devices.net', 'north-hub.azure-devices.net'],
  });
}

/**
 * `dpskit-allocator package` as a user runs it, from the compiled CLI (built into a scratch copy of
 * the allocator, which the user's app links as its installed '@dpskit/allocator').
 */
describe('dpskit-allocator package <appDir>', () => {
  let work: string;
  let cli: string;
  let userApp: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'dpskit-app-package-'));
    const allocator = path.join(work, 'allocator');
    await mkdir(allocator);
    await copyFile(path.join(PACKAGE_DIR, 'package.json'), path.join(allocator, 'package.json'));
    await copyFile(path.join(PACKAGE_DIR, 'host.json'), path.join(allocator, 'host.json'));
    await symlink(path.join(PACKAGE_DIR, 'node_modules'), path.join(allocator, 'node_modules'), 'dir');
    await compileTypeScript(path.join(PACKAGE_DIR, 'tsconfig.build.json'), path.join(allocator, 'dist'));
    cli = path.join(allocator, 'dist', 'cli.js');

    userApp = path.join(work, 'my-allocator');
    const files: Record<string, string> = {
      'package.json': JSON.stringify({
        name: 'my-allocator',
        version: '1.0.0',
        type: 'module',
        main: 'dist/src/functions/*.js',
        dependencies: { '@azure/functions': '^4.0.0', '@dpskit/allocator': '*' },
        devDependencies: { typescript: '*' },
      }),
      'host.json': JSON.stringify({ version: '2.0', extensions: { http: { routePrefix: 'api' } } }),
      'local.settings.json': JSON.stringify({ Values: { SECRET: 'do-not-ship' } }),
      // The emulator's default state folder and a ready file, as a user running it from here has them.
      '.dpskit/emulator/tls/ca.key.pem': '-----BEGIN PRIVATE KEY-----\ndo-not-ship\n-----END PRIVATE KEY-----\n',
      '.dpskit/emulator.ready.json': '{}',
      'tsconfig.json': '{}',
      'src/functions/assign.ts': '// the source; the build writes dist/',
      'dist/src/functions/assign.js': POLICY_MODULE,
      'dist/src/functions/assign.js.map': '{}',
    };
    for (const [rel, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(userApp, rel)), { recursive: true });
      await writeFile(path.join(userApp, rel), text);
    }
    await mkdir(path.join(userApp, 'node_modules', '@azure'), { recursive: true });
    await mkdir(path.join(userApp, 'node_modules', '@dpskit'), { recursive: true });
    await symlink(
      path.join(PACKAGE_DIR, 'node_modules', '@azure', 'functions'),
      path.join(userApp, 'node_modules', '@azure', 'functions'),
    );
    await symlink(allocator, path.join(userApp, 'node_modules', '@dpskit', 'allocator'));
    await symlink(
      path.join(PACKAGE_DIR, '..', '..', 'node_modules', 'typescript'),
      path.join(userApp, 'node_modules', 'typescript'),
    );
  }, 180_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('packs, verifies and zips the app; unpacked in an empty folder it answers as the policy decides', async () => {
    const run = spawnNode([cli, 'package', userApp]);
    expect(await run.exited, run.stderr()).toBe(0);
    const output = run.lines.join('\n');
    expect(output).toContain('loading the packaged app under plain Node from an empty folder');
    expect(output).toContain('assign: [POST] /api/assign (function)');

    // Azure's zip deploy: the archive's files in an empty folder, nothing else.
    const unpacked = path.join(work, 'unpacked');
    await mkdir(unpacked);
    for (const entry of await readZip(await readFile(path.join(userApp, 'deploy', 'app.zip')))) {
      const target = path.join(unpacked, ...entry.path.split('/'));
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, entry.data, { mode: entry.mode });
    }
    const top = (await readdir(unpacked)).sort();
    expect(top).toEqual(['dist', 'host.json', 'node_modules', 'package.json']);
    const modules = await readdir(path.join(unpacked, 'node_modules'));
    expect(modules).not.toContain('typescript');
    expect(modules).toContain('@dpskit');
    await expect(stat(path.join(unpacked, 'dist', 'src', 'functions', 'assign.js.map'))).rejects.toThrow();

    const host = spawnNode([cli, 'start', unpacked, '--port', '0', '--json'], {
      env: { ...process.env, ALLOCATOR_FUNCTION_KEY: 'pkg-key' },
    });
    try {
      const line = await host.waitForLine((l) => l.includes('"msg":"Webhook URL"'));
      const url = String((JSON.parse(line) as AllocatorLogRecord).data?.webhookUrl).replace('****', 'pkg-key');
      const north = await fetch(url, { method: 'POST', body: allocationBody('north') });
      expect([north.status, await north.json()]).toEqual([
        200,
        { iotHubHostName: 'north-hub.azure-devices.net', initialTwin: { tags: { site: 'north' } } },
      ]);
      const west = await fetch(url, { method: 'POST', body: allocationBody('west') });
      expect([west.status, await west.text()]).toEqual([404, 'Unknown site.']);
    } finally {
      await host.stop();
    }
  }, 120_000);

  it('refuses a package that would not load (a dev dependency imported at run time) and writes nothing', async () => {
    const broken = path.join(work, 'broken');
    await mkdir(path.join(broken, 'dist', 'src', 'functions'), { recursive: true });
    for (const name of ['package.json', 'host.json']) await copyFile(path.join(userApp, name), path.join(broken, name));
    await writeFile(path.join(broken, 'dist', 'src', 'functions', 'a.js'), `import 'typescript';\n${POLICY_MODULE}`);
    await symlink(path.join(userApp, 'node_modules'), path.join(broken, 'node_modules'));
    const run = spawnNode([cli, 'package', broken]);
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toContain('The packaged app does not load under plain Node from an empty folder');
    expect(run.stderr()).toContain("'typescript'");
    await expect(stat(path.join(broken, 'deploy'))).rejects.toThrow();
  }, 60_000);

  it('names an unbuilt app and a dependency that is not installed', async () => {
    const unbuilt = path.join(work, 'unbuilt');
    await mkdir(unbuilt);
    for (const name of ['package.json', 'host.json'])
      await copyFile(path.join(userApp, name), path.join(unbuilt, name));
    const noBuild = spawnNode([cli, 'package', unbuilt]);
    expect(await noBuild.exited).toBe(1);
    expect(noBuild.stderr()).toContain('@azure/functions (a dependency of my-allocator) is not installed');

    await symlink(path.join(userApp, 'node_modules'), path.join(unbuilt, 'node_modules'));
    const noMain = spawnNode([cli, 'package', unbuilt]);
    expect(await noMain.exited).toBe(1);
    expect(noMain.stderr()).toContain('No file matches package.json "main" "dist/src/functions/*.js"');
  }, 60_000);
});

describe('appFiles', () => {
  it("leaves out dpskit's local state (.dpskit) and local.settings.json whatever the app's .funcignore says", async () => {
    const app = await mkdtemp(path.join(tmpdir(), 'dpskit-app-files-'));
    try {
      const files: Record<string, string> = {
        '.funcignore': '*.ts\ntest\n', // a user's own, naming neither
        'host.json': '{}',
        'local.settings.json': '{}',
        'dist/src/functions/a.js': '',
        '.dpskit/emulator/tls/ca.key.pem': 'key',
        '.dpskit/emulator/emulator.db': 'keys',
        '.dpskit/allocator.ready.json': '{}',
      };
      for (const [rel, text] of Object.entries(files)) {
        await mkdir(path.dirname(path.join(app, rel)), { recursive: true });
        await writeFile(path.join(app, rel), text);
      }
      expect(await appFiles(app, path.join(app, 'deploy'))).toEqual([
        '.funcignore',
        'dist/src/functions/a.js',
        'host.json',
      ]);
    } finally {
      await rm(app, { recursive: true, force: true });
    }
  });

  /** An app folder with these files (text) and symlinks (relative path -> target), in a temp folder. */
  async function appWith(files: Record<string, string>, links: Record<string, string> = {}): Promise<string> {
    const app = await mkdtemp(path.join(tmpdir(), 'dpskit-app-files-'));
    for (const [rel, text] of Object.entries({ 'host.json': '{}', 'dist/a.js': '', ...files })) {
      await mkdir(path.dirname(path.join(app, rel)), { recursive: true });
      await writeFile(path.join(app, rel), text);
    }
    for (const [rel, target] of Object.entries(links)) {
      await mkdir(path.dirname(path.join(app, rel)), { recursive: true });
      await symlink(target, path.join(app, rel));
    }
    return app;
  }

  /** `appWith`'s folder for the length of `use`, removed afterwards. */
  async function inAppWith(files: Record<string, string>, use: (app: string) => Promise<void>): Promise<void> {
    const app = await appWith(files);
    try {
      await use(app);
    } finally {
      await rm(app, { recursive: true, force: true });
    }
  }

  it('leaves out an emulator --state-dir anywhere in the app folder, by what the emulator keeps in it', async () => {
    const app = await appWith({
      // dps-emulator start --state-dir test-state (its lock, database and TLS keys)
      'test-state/emulator.lock': '',
      'test-state/emulator.db': 'keys',
      'test-state/tls/ca.key.pem': 'key',
      'test-state/tls/ca.pem': 'cert',
      'test-state/notes.txt': 'anything else in it goes too',
      // a state folder copied without its lock, and a TLS folder alone
      'fixtures/old-state/emulator.db': 'keys',
      'fixtures/old-state/registrations.json': '[]',
      'certs/server.key.pem': 'key',
      'certs/server.pem': 'cert',
      'fixtures/config.json': '{}',
    });
    const lines: string[] = [];
    try {
      expect(await appFiles(app, path.join(app, 'deploy'), (line) => lines.push(line))).toEqual([
        'dist/a.js',
        'fixtures/config.json',
        'host.json',
      ]);
      expect(lines).toEqual([
        'leaving out certs/: an emulator state folder (it holds server.key.pem)',
        'leaving out fixtures/old-state/: an emulator state folder (it holds emulator.db)',
        'leaving out test-state/: an emulator state folder (it holds emulator.lock)',
      ]);
    } finally {
      await rm(app, { recursive: true, force: true });
    }
  });

  it('refuses app files holding keys (the emulator banner in a log, a config with a group key), naming them, not the keys', async () => {
    const key = 'xHGZEpihJzjogt7rNRfrtwz6XLpBiq363VC2bcDVj8A=';
    const files = {
      // `dps-emulator start … 2> emulator.err`: its banner prints the service and hub keys
      'emulator.err': `DPS emulator running\n  Service API  HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=${key}\n`,
      // the README's jq of `az iot dps enrollment-group show --show-keys` into the emulator's config
      'dps-emulator.yaml': `iotHubs: [{ hostName: a.azure-devices.net }]\nenrollmentGroups:\n  - attestation: { type: symmetricKey, symmetricKey: { primaryKey: ${key} } }\n`,
      'dist/cs.js': `export const cs = (h, k) => \`HostName=\${h};SharedAccessKey=\${k}\`;`,
      // dependencies are not the app's files: never read (msal-node's typings name a PEM header)
      'node_modules/@azure/msal-node/Configuration.d.ts': `-----BEGIN PRIVATE KEY-----\n${'A'.repeat(64)}\n`,
    };
    await inAppWith(files, async (app) => {
      const refusal = appFiles(app, path.join(app, 'deploy'));
      await expect(refusal).rejects.toThrow(
        'These app files hold secrets that a deployment package must not carry:\n' +
          '  dps-emulator.yaml: an enrollment or device key (primaryKey/secondaryKey), line 3\n' +
          '  emulator.err: a shared access key (SharedAccessKey=…), line 2\n' +
          'Move them out of the app folder, or name them in .funcignore (e.g. *.log).',
      );
      await expect(refusal).rejects.not.toThrow(key);
      // Named in .funcignore, they stay out and the rest packs.
      await writeFile(path.join(app, '.funcignore'), 'emulator.err\ndps-emulator.yaml\n');
      expect(await appFiles(app, path.join(app, 'deploy'))).toEqual([
        '.funcignore',
        'dist/a.js',
        'dist/cs.js',
        'host.json',
      ]);
    });
  });

  it('warns when a compiled module is older than a source its map names (packaging without the build)', async () => {
    const files = {
      'src/policy.ts': 'export const hub = "b";',
      'dist/src/policy.js': 'export const hub = "a";',
      'dist/src/policy.js.map': JSON.stringify({ version: 3, sources: ['../../src/policy.ts'], mappings: '' }),
      'dist/src/fresh.js': '',
      'dist/src/fresh.js.map': JSON.stringify({ version: 3, sources: ['../../src/fresh.ts'], mappings: '' }),
      'src/fresh.ts': '',
    };
    await inAppWith(files, async (app) => {
      const past = new Date(Date.now() - 60_000);
      await utimes(path.join(app, 'dist/src/policy.js'), past, past);
      await utimes(path.join(app, 'src/fresh.ts'), past, past);
      const lines: string[] = [];
      await appFiles(app, path.join(app, 'deploy'), (line) => lines.push(line));
      expect(lines).toEqual([
        'warning: dist/src/policy.js is older than src/policy.ts: this package holds the last build, not your latest edit (build first)',
      ]);
    });
  });

  it('refuses an app folder that is itself an emulator state folder', async () => {
    const app = await appWith({ 'emulator.db': 'keys', 'package.json': '{}' });
    try {
      await expect(appFiles(app, path.join(app, 'deploy'))).rejects.toThrow(/is an emulator state folder/);
    } finally {
      await rm(app, { recursive: true, force: true });
    }
  });

  it('does not follow a symlink out of the app folder, to a left-out file or to a folder', async () => {
    const outside = await mkdtemp(path.join(tmpdir(), 'dpskit-outside-'));
    await writeFile(path.join(outside, 'id_rsa'), 'private');
    const cases: [Record<string, string>, RegExp][] = [
      [
        { 'dist/key.pem': path.join(outside, 'id_rsa') },
        /dist\/key\.pem is a symbolic link to .*id_rsa, outside the app folder/,
      ],
      [{ shared: outside }, /shared is a symbolic link to .*, outside the app folder/],
      [
        { 'dist/settings.json': '../local.settings.json' },
        /dist\/settings\.json is a symbolic link to local\.settings\.json, which the package leaves out/,
      ],
      [{ 'dist/gone.js': 'missing.js' }, /dist\/gone\.js is a symbolic link to a missing file/],
    ];
    try {
      for (const [links, message] of cases) {
        const app = await appWith({ 'local.settings.json': '{"Values":{"SECRET":"x"}}' }, links);
        try {
          await expect(appFiles(app, path.join(app, 'deploy'))).rejects.toThrow(message);
        } finally {
          await rm(app, { recursive: true, force: true });
        }
      }
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('copies a symlink to a file the package holds anyway, and skips one .funcignore names', async () => {
    const outside = await mkdtemp(path.join(tmpdir(), 'dpskit-outside-'));
    const app = await appWith({ '.funcignore': 'data\n' }, { 'dist/b.js': 'a.js', data: outside });
    try {
      expect(await appFiles(app, path.join(app, 'deploy'))).toEqual([
        '.funcignore',
        'dist/a.js',
        'host.json',
        'dist/b.js',
      ]);
    } finally {
      await rm(app, { recursive: true, force: true });
      await rm(outside, { recursive: true, force: true });
    }
  });
});
