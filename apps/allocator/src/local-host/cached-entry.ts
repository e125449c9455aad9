#!/usr/bin/env node
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import * as allocation from '@dpskit/contracts/allocation';

/**
 * The local host's CLI entry after the build (scripts/bundle-cli.mjs writes it as
 * dist/local-host/cli.js): runs the host's bundle (cli-host.cjs, cli.ts and everything of the host's
 * own, as one CommonJS script) with V8's code cache for it, so that a cold start does not compile
 * the host's code again: Node 20 has no compile cache for ES modules, and compiling the bundle and
 * the functions a start runs was ~4 ms of main-thread CPU of the spawn-to-first-answer on the
 * 2-core machine (issue #13). The cache (cli-host.cjs.cache) is made by the build with one real
 * start and request, so it holds the functions a start and a first request compile.
 *
 * The cache is used only for the very source it was made from (its SHA-256 is stored with it);
 * V8 itself refuses data from another Node/V8 version or other V8 flags (a profiler, say). Either
 * way the host is then compiled from source as usual: the same code runs, only slower to start.
 * Set DPSKIT_ALLOCATOR_WRITE_CODE_CACHE=1 to write a new cache when the process exits (the build
 * does; nothing else needs to).
 *
 * `@dpskit/contracts/allocation` is imported here and handed to the bundle's `require`: it is an ES
 * module, shared with the served app (which imports it itself), and Node 20 cannot require one.
 * The bundle's two dynamic imports (the app's modules, tinyglobby) go through `importModule`, this
 * module's own import(): a vm script of Node 20 has none without an experimental flag.
 */
const HOST = fileURLToPath(new URL('./cli-host.cjs', import.meta.url));
const CACHE = `${HOST}.cache`;
const DIGEST_BYTES = 32;

type HostRequire = ((id: string) => unknown) & Pick<NodeJS.Require, 'resolve' | 'cache'>;
type HostScript = (
  exports: object,
  require: HostRequire,
  module: { exports: object },
  filename: string,
  dirname: string,
  moduleUrl: string,
  importModule: (specifier: string) => Promise<unknown>,
) => void;

const source = readFileSync(HOST, 'utf8');
const digest = createHash('sha256').update(source).digest();
const cachedData = readCache();
// One line: the bundle's line numbers in stack traces stay its own.
const script = new Script(
  `(function (exports, require, module, __filename, __dirname, __cliModuleUrl, __cliImport) {${source}\n})`,
  { filename: HOST, ...(cachedData ? { cachedData } : {}) },
);
if (process.env.DPSKIT_ALLOCATOR_WRITE_CODE_CACHE === '1') process.once('exit', writeCache);

const requireFromHost = createRequire(HOST);
const hostRequire: HostRequire = Object.assign(
  (id: string): unknown => (id === '@dpskit/contracts/allocation' ? allocation : requireFromHost(id)),
  { resolve: requireFromHost.resolve, cache: requireFromHost.cache },
);
const hostModule = { exports: {} };
(script.runInThisContext() as HostScript)(
  hostModule.exports,
  hostRequire,
  hostModule,
  HOST,
  path.dirname(HOST),
  import.meta.url,
  (specifier) => import(specifier),
);

function readCache(): Buffer | undefined {
  let file: Buffer;
  try {
    file = readFileSync(CACHE);
  } catch {
    return undefined; // no cache: compiled from source
  }
  return file.length > DIGEST_BYTES && file.subarray(0, DIGEST_BYTES).equals(digest)
    ? file.subarray(DIGEST_BYTES)
    : undefined;
}

// After the run, so that the functions it compiled (the start, the first request) are in the cache.
function writeCache(): void {
  const temporary = `${CACHE}.${process.pid}.tmp`;
  writeFileSync(temporary, Buffer.concat([digest, script.createCachedData()]));
  renameSync(temporary, CACHE);
}
