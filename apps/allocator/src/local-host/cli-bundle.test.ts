import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runInThisContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { PACKAGE_DIR } from '../deploy/package.js';
import { spawnNode } from '../testing/process.js';
import { HEATPUMP_BODY, TOASTER_BODY, TOASTERS_HUB } from '../testing/tutorial-requests.js';
import { writeUserApp } from '../testing/user-app.js';

/** The contract entry's implementation script, which the entry preloads (cached-entry.ts): beside the ES module entry. */
function contractImplementation(from: string): string {
  const contracts = path.dirname(createRequire(from).resolve('@dpskit/contracts/package.json'));
  return path.join(contracts, 'dist', 'allocation', 'webhook-impl.cjs');
}

/**
 * The build bundles the CLI into dist/local-host/cli.cjs (scripts/bundle-cli.mjs) for a faster cold
 * start; cli.test.ts runs a plain tsc build of the CLI, so this holds the bundle itself, as the bin,
 * `npm run allocator` and the bench run it, to the same answers.
 */
describe('the bundled CLI (dist/local-host/cli.cjs after the build)', () => {
  const cli = path.join(PACKAGE_DIR, 'dist', 'local-host', 'cli.cjs');

  it("is one CommonJS script: only packages and Node's modules are required; the bin and cli.js run it", async () => {
    const source = await readFile(cli, 'utf8');
    expect(source.startsWith("#!/usr/bin/env node\n'use strict';\n")).toBe(true);
    const specifiers = [...source.matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1]);
    expect(specifiers).toContain('node:module');
    expect(specifiers.filter((s) => s!.startsWith('.') || s === '@dpskit/node-kit')).toEqual([]);
    expect(source).not.toMatch(/^import /m);
    const manifest = JSON.parse(await readFile(path.join(PACKAGE_DIR, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    expect(manifest.bin['dpskit-allocator']).toBe('dist/cli.cjs');
    expect(await readFile(path.join(PACKAGE_DIR, 'dist', 'cli.cjs'), 'utf8')).toContain(
      "require('./local-host/cli.cjs')",
    );
    expect(await readFile(path.join(PACKAGE_DIR, 'dist', 'local-host', 'cli.js'), 'utf8')).toContain(
      "createRequire(import.meta.url)('./cli.cjs')",
    );
  });

  // cached-entry.ts: Node's asynchronous ES module loader (an ES module entry, import()) costs a cold
  // start its promise jobs and thread-pool reads; Node >= 20.19 requires an ES module graph instead.
  // NODE_DEBUG=module traces CommonJS loads (require), not import(). An older Node imports the app.
  it("loads the app's modules with require where Node can, the bin and `node dist/local-host/cli.js` alike", async () => {
    const app = path.join(PACKAGE_DIR, 'dist', 'functions', 'allocate.js');
    for (const entry of [
      path.join(PACKAGE_DIR, 'dist', 'cli.cjs'),
      cli,
      path.join(PACKAGE_DIR, 'dist', 'local-host', 'cli.js'),
    ]) {
      const child = spawnNode([entry, '--port', '0', '--host', '127.0.0.1', '--json'], {
        env: { ...process.env, NODE_DEBUG: 'module', ALLOCATOR_FUNCTION_KEY: 'require-test-key' },
      });
      try {
        const line = await child.waitForLine((l) => l.includes('"msg":"Listening on'));
        const required = child.stderr().includes(`Module._load REQUEST ${app} parent: ${cli}`);
        expect([entry, required]).toEqual([entry, process.features.require_module === true]);
        const url = `${(JSON.parse(line) as { data: { url: string } }).data.url}/api/allocate?code=require-test-key`;
        const toaster = await fetch(url, { method: 'POST', body: TOASTER_BODY });
        expect([toaster.status, await toaster.text()]).toEqual([200, `{"iotHubHostName":"${TOASTERS_HUB}"}`]);
      } finally {
        await child.stop();
      }
    }
  });

  // One that Node cannot require (top-level await) is imported, as the Functions worker imports an
  // app, and runs once; one that throws as it loads is reported as before.
  it('serves an app module with top-level await, and names the error of one that throws as it loads', async () => {
    const root = await writeUserApp({
      files: {
        'dist/src/functions/later.js': `import functions from '@azure/functions';
globalThis.laterRuns = (globalThis.laterRuns ?? 0) + 1;
const answer = await Promise.resolve('registered after an await');
functions.app.http('later', { methods: ['GET', 'POST'], authLevel: 'anonymous', handler: () => ({
  jsonBody: { answer, runs: globalThis.laterRuns },
}) });`,
      },
    });
    const broken = await writeUserApp({
      files: { 'dist/src/functions/broken.js': `throw new Error('the app refuses to load');` },
    });
    const child = spawnNode([cli, root, '--port', '0', '--host', '127.0.0.1', '--json']);
    const refused = spawnNode([cli, broken, '--port', '0', '--host', '127.0.0.1', '--json']);
    try {
      const line = await child.waitForLine((l) => l.includes('"msg":"Listening on'));
      const response = await fetch(`${(JSON.parse(line) as { data: { url: string } }).data.url}/api/later`);
      expect(await response.json()).toEqual({ answer: 'registered after an await', runs: 1 });
      expect(await refused.exited).toBe(1);
      expect(refused.stderr()).toContain(
        'could not start: Could not load dist/src/functions/broken.js (from package.json "main"): the app refuses to load',
      );
    } finally {
      await child.stop();
      await refused.stop();
      await rm(root, { recursive: true, force: true });
      await rm(broken, { recursive: true, force: true });
    }
  });

  it("carries V8's code cache for its host bundle, made for that very source", async () => {
    const host = await readFile(path.join(PACKAGE_DIR, 'dist', 'local-host', 'cli-host.cjs'));
    const cache = await readFile(path.join(PACKAGE_DIR, 'dist', 'local-host', 'cli-host.cjs.cache'));
    expect(cache.subarray(0, 32).equals(createHash('sha256').update(host).digest())).toBe(true);
    expect(cache.length).toBeGreaterThan(1000);
    // @azure/functions' cache is made for the ASCII copy of the library that the build writes.
    const library = await readFile(path.join(PACKAGE_DIR, 'dist', 'local-host', 'azure-functions.cjs'));
    const libraryCache = await readFile(
      path.join(PACKAGE_DIR, 'dist', 'local-host', 'cli-host.cjs.azure-functions.cache'),
    );
    expect(libraryCache.subarray(0, 32).equals(createHash('sha256').update(library).digest())).toBe(true);
    // The bundle's dynamic imports go through the entry's import(): a vm script has none.
    expect(host.toString('utf8')).not.toMatch(/\bimport\(|import\.meta/);
  });

  // cached-entry.ts runs this copy in the library's place when its first line names the library's SHA-256.
  it("carries @azure/functions' file as the host resolves it, in ASCII: the same exports, classes and names", async () => {
    const file = createRequire(path.join(PACKAGE_DIR, 'dist', 'local-host', 'cli-host.cjs')).resolve(
      '@azure/functions',
    );
    const copy = await readFile(path.join(PACKAGE_DIR, 'dist', 'local-host', 'azure-functions.cjs'), 'utf8');
    const digest = createHash('sha256')
      .update(await readFile(file))
      .digest('hex');
    expect(copy.startsWith(`// sha256:${digest} `)).toBe(true);
    expect(/[^\p{ASCII}]/u.test(copy)).toBe(false);
    // Both run as Node runs a CommonJS file, each with its own module object.
    const run = (text: string): Record<string, unknown> => {
      const module = { exports: {} as Record<string, unknown> };
      const wrapped = runInThisContext(`(function (exports, require, module, __filename, __dirname) {${text}\n})`) as (
        ...args: unknown[]
      ) => void;
      wrapped(module.exports, createRequire(file), module, file, path.dirname(file));
      return module.exports;
    };
    const original = run(await readFile(file, 'utf8'));
    const ascii = run(copy);
    expect(Object.keys(ascii)).toEqual(Object.keys(original));
    const shape = (exports: Record<string, unknown>) =>
      Object.entries(exports).map(([key, value]) => [
        key,
        typeof value,
        typeof value === 'function'
          ? [value.name, Object.getOwnPropertyNames(value.prototype ?? {}).sort()]
          : Object.keys(value ?? {}).sort(),
      ]);
    expect(shape(ascii)).toEqual(shape(original));
  });

  // The contract entry loads its implementation, one CommonJS script beside it, with require on its
  // first parse; the host preloads that script with this cache (cached-entry.ts). The build fails if
  // the cache is not written, so a change to the contract's layout cannot drop the preload silently.
  it("carries V8's code cache for @dpskit/contracts/allocation's implementation script, made for that very file", async () => {
    const implementation = await readFile(contractImplementation(import.meta.url));
    const cache = await readFile(
      path.join(PACKAGE_DIR, 'dist', 'local-host', 'cli-host.cjs.contracts-allocation.cache'),
    );
    expect(cache.subarray(0, 32).equals(createHash('sha256').update(implementation).digest())).toBe(true);
    expect(cache.length).toBeGreaterThan(1000);
  });

  it('runs from source, the same, with a cache for other source or one V8 refuses', async () => {
    const scratch = await mkdtemp(path.join(tmpdir(), 'dpskit-cli-cache-'));
    try {
      const dir = path.join(scratch, 'dist', 'local-host');
      await mkdir(dir, { recursive: true });
      await symlink(path.join(PACKAGE_DIR, 'node_modules'), path.join(scratch, 'node_modules'), 'dir');
      for (const file of ['cli.cjs', 'cli-host.cjs']) {
        await copyFile(path.join(PACKAGE_DIR, 'dist', 'local-host', file), path.join(dir, file));
      }
      const host = await readFile(path.join(dir, 'cli-host.cjs'));
      const digest = createHash('sha256').update(host).digest();
      for (const cache of [
        Buffer.concat([Buffer.alloc(32), Buffer.alloc(64, 1)]),
        Buffer.concat([digest, Buffer.alloc(64, 1)]),
      ]) {
        await writeFile(path.join(dir, 'cli-host.cjs.cache'), cache);
        const child = spawnNode([path.join(dir, 'cli.cjs'), '--help']);
        try {
          await child.waitForLine((line) => line.startsWith('Usage: dpskit-allocator start'));
          expect(await child.exited).toBe(0);
        } finally {
          await child.stop();
        }
      }
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  // Every cache the entry reads is checked against its file's SHA-256 and then by V8 (its version and
  // flags): a cache made for other bytes is not used, and one V8 refuses is dropped by V8. Either way
  // the script is compiled from source, and the host answers as it does with good caches.
  it('serves the tutorial app the same with every code cache made for other bytes, or refused by V8', async () => {
    const scratch = await mkdtemp(path.join(tmpdir(), 'dpskit-cli-caches-'));
    try {
      const dir = path.join(scratch, 'dist', 'local-host');
      await mkdir(dir, { recursive: true });
      await symlink(path.join(PACKAGE_DIR, 'node_modules'), path.join(scratch, 'node_modules'), 'dir');
      for (const file of ['cli.cjs', 'cli-host.cjs']) {
        await copyFile(path.join(PACKAGE_DIR, 'dist', 'local-host', file), path.join(dir, file));
      }
      const resolve = createRequire(path.join(dir, 'cli-host.cjs')).resolve;
      const cached: Array<[cache: string, file: string]> = [
        ['cli-host.cjs.cache', path.join(dir, 'cli-host.cjs')],
        ['cli-host.cjs.azure-functions.cache', resolve('@azure/functions')],
        ['cli-host.cjs.contracts-allocation.cache', contractImplementation(path.join(dir, 'cli-host.cjs'))],
      ];
      const digests = await Promise.all(
        cached.map(async ([, file]) =>
          createHash('sha256')
            .update(await readFile(file))
            .digest(),
        ),
      );
      // An ASCII copy of another version of the library: not run, the library's own file is.
      await writeFile(
        path.join(dir, 'azure-functions.cjs'),
        `// sha256:${'0'.repeat(64)} @azure/functions\nthrow 1;\n`,
      );
      for (const kind of ['other bytes', 'refused by V8'] as const) {
        await Promise.all(
          cached.map(([cache], i) =>
            writeFile(
              path.join(dir, cache),
              Buffer.concat([kind === 'other bytes' ? Buffer.alloc(32) : digests[i]!, Buffer.alloc(64, 1)]),
            ),
          ),
        );
        // The app folder named: the scratch copy's own package root has no app.
        const child = spawnNode(
          [path.join(dir, 'cli.cjs'), PACKAGE_DIR, '--port', '0', '--host', '127.0.0.1', '--json'],
          {
            env: { ...process.env, ALLOCATOR_FUNCTION_KEY: 'stale-cache-key' },
          },
        );
        try {
          const line = await child.waitForLine((l) => l.includes('"msg":"Listening on'));
          const url = `${(JSON.parse(line) as { data: { url: string } }).data.url}/api/allocate?code=stale-cache-key`;
          const toaster = await fetch(url, { method: 'POST', body: TOASTER_BODY });
          expect([kind, toaster.status, await toaster.text()]).toEqual([
            kind,
            200,
            `{"iotHubHostName":"${TOASTERS_HUB}"}`,
          ]);
          const invalid = await fetch(url, { method: 'POST', body: '{"deviceRuntimeContext":{}}' });
          expect([kind, invalid.status]).toEqual([kind, 400]);
          child.child.kill('SIGTERM');
          expect(await child.exited).toBe(0);
        } finally {
          await child.stop();
        }
      }
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("gives a user app the host's own @azure/functions (loaded with its code cache): one HttpRequest class", async () => {
    const root = await writeUserApp({
      files: {
        // The default import: the package's webpack bundle has no named exports Node can detect.
        'dist/src/functions/same.js': `import functions from '@azure/functions';
const { app, HttpRequest, InvocationContext } = functions;
app.http('same', { methods: ['GET', 'POST'], authLevel: 'anonymous', handler: (request, context) => ({
  jsonBody: { request: request instanceof HttpRequest, context: context instanceof InvocationContext },
}) });`,
      },
    });
    const child = spawnNode([cli, root, '--port', '0', '--host', '127.0.0.1', '--json']);
    try {
      const line = await child.waitForLine((l) => l.includes('"msg":"Listening on'));
      const response = await fetch(`${(JSON.parse(line) as { data: { url: string } }).data.url}/api/same`);
      expect(await response.json()).toEqual({ request: true, context: true });
    } finally {
      await child.stop();
      await rm(root, { recursive: true, force: true });
    }
  });

  // deferred-require.ts: the library's two dependencies are required when it first uses them, which
  // serving HTTP functions locally never does. The app still gets them, the same modules, if it asks.
  it('loads @azure/functions without its cookie and extensions-base dependencies until they are used', async () => {
    const root = await writeUserApp({
      files: {
        'dist/src/functions/loaded.js': `import functions from '@azure/functions';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const loaded = () => Object.keys(require.cache).filter((f) => /[\\\\/](cookie|functions-extensions-base)[\\\\/]/.test(f)).length;
functions.app.http('loaded', { methods: ['GET', 'POST'], authLevel: 'anonymous', handler: () => {
  const before = loaded();
  const library = createRequire(require.resolve('@azure/functions'));
  const cookie = library('cookie').serialize('a', 'b');
  return { jsonBody: { before, cookie, after: loaded() } };
} });`,
      },
    });
    const child = spawnNode([cli, root, '--port', '0', '--host', '127.0.0.1', '--json']);
    try {
      const line = await child.waitForLine((l) => l.includes('"msg":"Listening on'));
      const response = await fetch(`${(JSON.parse(line) as { data: { url: string } }).data.url}/api/loaded`);
      expect(await response.json()).toEqual({ before: 0, cookie: 'a=b', after: 1 });
    } finally {
      await child.stop();
      await rm(root, { recursive: true, force: true });
    }
  });

  it('serves the tutorial app with the key, logging JSON lines, and stops on SIGTERM', async () => {
    const child = spawnNode([cli, '--port', '0', '--host', '127.0.0.1', '--json'], {
      env: { ...process.env, ALLOCATOR_FUNCTION_KEY: 'bundle-test-key' },
    });
    try {
      const line = await child.waitForLine((l) => l.includes('"msg":"Listening on'));
      const url = `${(JSON.parse(line) as { data: { url: string } }).data.url}/api/allocate?code=bundle-test-key`;
      const toaster = await fetch(url, { method: 'POST', body: TOASTER_BODY });
      expect([toaster.status, await toaster.text()]).toEqual([200, `{"iotHubHostName":"${TOASTERS_HUB}"}`]);
      const heatpump = await fetch(url, { method: 'POST', body: HEATPUMP_BODY });
      expect([heatpump.status, await heatpump.text()]).toEqual([400, 'Unrecognized device registration.']);
      await child.waitForLine((l) => l.includes('"msg":"Selected hub"'));
      child.child.kill('SIGTERM');
      expect(await child.exited).toBe(0);
    } finally {
      await child.stop();
    }
  });
});
