#!/usr/bin/env node
import Module, { createRequire } from 'node:module';
import type { Script as VmScript } from 'node:vm';
import { DEFERRED_BY_AZURE_FUNCTIONS, deferredModule, deferringRequire } from './deferred-require.js';

// Node's other modules through require rather than import: an ES module's import of a built-in
// module makes the ES module loader build a module facade for it (a module job, and every export
// copied onto a synthetic module). Alone, importing these five cost 1.9 ms of main-thread CPU
// against 0.4 ms requiring them (load 8.5; issue #13). (The build makes this file a CommonJS script,
// below; `import.meta.url` is then its own file's URL.)
const nodeRequire = createRequire(import.meta.url);
const { createHash } = nodeRequire('node:crypto') as typeof import('node:crypto');
const { readFileSync, renameSync, writeFileSync } = nodeRequire('node:fs') as typeof import('node:fs');
const path = nodeRequire('node:path') as typeof import('node:path');
const { fileURLToPath } = nodeRequire('node:url') as typeof import('node:url');
const { Script } = nodeRequire('node:vm') as typeof import('node:vm');

/**
 * The local host's CLI entry after the build (scripts/bundle-cli.mjs writes it as the CommonJS script
 * dist/local-host/cli.cjs, which the bin and `node dist/local-host/cli.js` run): runs the host's
 * bundle (cli-host.cjs, cli.ts and everything of the host's own, as one CommonJS script) with V8's
 * code cache for it, so that a cold start does not compile the host's code again: Node 20 has no
 * compile cache for ES modules, and compiling the bundle and the functions a start runs was ~4 ms of
 * main-thread CPU of the spawn-to-first-answer on the 2-core machine (issue #13). The cache
 * (cli-host.cjs.cache) is made by the build with one real start and request, so it holds the
 * functions a start and a first request compile.
 *
 * The cache is used only for the very source it was made from (its SHA-256 is stored with it);
 * V8 itself refuses data from another Node/V8 version or other V8 flags (a profiler, say). Either
 * way the host is then compiled from source as usual: the same code runs, only slower to start.
 * Set DPSKIT_ALLOCATOR_WRITE_CODE_CACHE=1 to write a new cache when the process exits (the build
 * does; nothing else needs to).
 *
 * Why a CommonJS script, and the app's modules loaded with `require` where Node can (loadModule):
 * Node's asynchronous ES module loader, which an ES module entry and `import()` start, resolves,
 * reads (through the thread pool) and links each module in promise jobs; Node >= 20.19 loads an ES
 * module graph with `require` synchronously (the same module instances `import()` gets afterwards).
 * Spawn to first answer, main-thread CPU: this entry as an ES module importing the app and the
 * contract entry against this script requiring them, -2.4 ms paired median (lower in 21 of 30
 * interleaved pairs, load 20; issue #13).
 *
 * `@dpskit/contracts/allocation` is what the served app imports; the host's bundle requires it only
 * for a policy given in code (the library's `startAllocatorHost({ policy })`), never on the CLI's
 * way, so the bundle gets a stand-in that loads it on first use. Its implementation is a CommonJS
 * script that the contract entry requires on its first parse; it is preloaded here with its code
 * cache, like `@azure/functions`.
 * The bundle's two dynamic imports (the app's modules, tinyglobby) go through `loadModule`, this
 * module's own require or import(): a vm script of Node 20 has no import() without an experimental flag.
 */
const HOST = fileURLToPath(new URL('./cli-host.cjs', import.meta.url));
const DIGEST_BYTES = 32;
const writeCaches = process.env.DPSKIT_ALLOCATOR_WRITE_CODE_CACHE === '1';
/** Node's CommonJS module wrapper (Module.wrap's), as the text before and after a module's source. */
const COMMONJS_WRAPPER = ['(function (exports, require, module, __filename, __dirname) { ', '\n});'] as const;
/** Node >= 20.19 (and 22.12) requires an ES module graph without top-level await; older Node throws ERR_REQUIRE_ESM. */
const REQUIRES_ES_MODULES = process.features.require_module === true;
const CONTRACT = '@dpskit/contracts/allocation';

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
type CommonJsScript = (
  exports: object,
  require: NodeJS.Require,
  module: Module,
  filename: string,
  dirname: string,
) => void;

const requireFromHost = createRequire(HOST);
preloadAzureFunctions();
preloadAllocationContract();

// One line: the bundle's line numbers in stack traces stay its own.
const host = compile(
  HOST,
  ['(function (exports, require, module, __filename, __dirname, __cliModuleUrl, __cliImport) {', '\n})'],
  `${HOST}.cache`,
);
const contract = deferredModule(() => requireFromHost(CONTRACT) as object);
const hostRequire: HostRequire = Object.assign(
  (id: string): unknown => (id === CONTRACT ? contract : requireFromHost(id)),
  {
    resolve: requireFromHost.resolve,
    cache: requireFromHost.cache,
  },
);
const hostModule = { exports: {} };
(host.runInThisContext() as HostScript)(
  hostModule.exports,
  hostRequire,
  hostModule,
  HOST,
  path.dirname(HOST),
  import.meta.url,
  loadModule,
);

/**
 * A module for the host: a file's (the app's `main` modules) with `require` where Node can load its
 * graph that way (REQUIRES_ES_MODULES; one with top-level await it cannot: ERR_REQUIRE_ASYNC_MODULE,
 * thrown before any of it runs), otherwise, and for a package (tinyglobby), with `import()`, as the
 * Functions worker imports an app. A module that throws as it loads rejects, as `import()` would.
 */
function loadModule(specifier: string): Promise<unknown> {
  if (REQUIRES_ES_MODULES && specifier.startsWith('file:')) {
    try {
      return Promise.resolve(nodeRequire(fileURLToPath(specifier)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException | undefined)?.code !== 'ERR_REQUIRE_ASYNC_MODULE') return Promise.reject(err);
    }
  }
  return import(specifier);
}

/**
 * `@azure/functions` (one 190 KB CommonJS file, which the host and the app both require) put in
 * require's cache as Node's loader would, compiled with its code cache (cli-host.cjs.azure-functions.cache,
 * made by the same build run): ~2 ms of main-thread CPU of a cold start. The app's require or import
 * of the package then gets this same module, as it got the host's before. Where the package is not
 * where the host resolves it, or a cache is wrong, Node loads it itself as before. Its two
 * dependencies, `cookie` and `@azure/functions-extensions-base`, are required when the library first
 * uses them, not when it loads (deferred-require.ts): on the way to the first answer it never does.
 */
function preloadAzureFunctions(): void {
  let file: string;
  try {
    file = requireFromHost.resolve('@azure/functions');
  } catch {
    return; // the host's own require then says what is missing
  }
  if (!file.endsWith('.js')) return;
  preloadCommonJs(file, `${HOST}.azure-functions.cache`, DEFERRED_BY_AZURE_FUNCTIONS, asciiLibrary(file));
}

/**
 * azure-functions.cjs beside the host (scripts/bundle-cli.mjs): `file`, the library as resolved, printed
 * by esbuild in ASCII without comments, when its first line names the SHA-256 of `file` as it is now.
 * It is run in `file`'s place (the same module, in require's cache under `file`; stack traces name the
 * copy, whose lines they count). Otherwise, say after an update of the package, `file` itself is run.
 *
 * Why: `file` has sixteen characters beyond Latin-1 (in comments and one warning's text, `—` and `→`),
 * so its 190 KB become 373 KB of two-byte text for V8, one large object in a young generation whose
 * first semi-space is 1 MB; the copy is 169 KB of one-byte text, the warning's character escaped.
 */
function asciiLibrary(file: string): { file: string; bytes: Buffer } | undefined {
  try {
    const copy = path.join(path.dirname(HOST), 'azure-functions.cjs');
    const bytes = readFileSync(copy);
    const header = `// sha256:${createHash('sha256').update(readFileSync(file)).digest('hex')} `;
    return bytes.toString('latin1', 0, header.length) === header ? { file: copy, bytes } : undefined;
  } catch {
    return undefined; // no copy (or no file): the file, as Node would load it
  }
}

/**
 * `@dpskit/contracts/allocation`'s implementation, dist/allocation/webhook-impl.cjs in the contracts
 * package (one CommonJS script with zod/mini inside, which the ES module entry beside it requires on
 * its first parse: the contracts README), put in require's cache with its code cache
 * (cli-host.cjs.contracts-allocation.cache). Compiling it and the functions a first request runs is
 * what the cache saves. The package is found through its package.json (exported), so the file is
 * the one beside the ES module entry that the app imports, whatever `require` of the entry itself
 * would resolve. If the file is not there (another layout of the package), the entry requires
 * whatever it has itself; the build fails then, as its cache is not written.
 */
function preloadAllocationContract(): void {
  let file: string;
  try {
    file = path.join(
      path.dirname(requireFromHost.resolve('@dpskit/contracts/package.json')),
      'dist',
      'allocation',
      'webhook-impl.cjs',
    );
  } catch {
    return;
  }
  preloadCommonJs(file, `${HOST}.contracts-allocation.cache`);
}

/**
 * A CommonJS file put in require's cache as Node's loader would (a `Module` with its paths, run in
 * Node's wrapper), compiled with the code cache in `cacheFile` (from `source` when given: the same
 * code in other text, asciiLibrary). Does nothing if the file is in the
 * cache already or cannot be read: Node then loads it itself on the first require. The packages in
 * `deferred` are required on their first use instead of when the file requires them
 * (deferred-require.ts).
 */
function preloadCommonJs(
  file: string,
  cacheFile: string,
  deferred: ReadonlySet<string> = new Set(),
  source?: { file: string; bytes: Buffer },
): void {
  if (file in requireFromHost.cache) return;
  let script: VmScript;
  try {
    script = compile(source?.file ?? file, COMMONJS_WRAPPER, cacheFile, source?.bytes);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const fileRequire = createRequire(file);
  const loaded = new Module(file);
  loaded.filename = file;
  // The node_modules folders a require of a package from the file searches (a relative request's would be its folder).
  loaded.paths = fileRequire.resolve.paths('some-package') ?? [];
  requireFromHost.cache[file] = loaded;
  try {
    const scriptRequire = deferred.size > 0 ? deferringRequire(fileRequire, deferred) : fileRequire;
    (script.runInThisContext() as CommonJsScript)(loaded.exports, scriptRequire, loaded, file, path.dirname(file));
  } catch (err) {
    delete requireFromHost.cache[file];
    throw err;
  }
  loaded.loaded = true;
}

/**
 * A vm.Script of `file` (`bytes`, its contents, between `wrapper`'s two parts) with V8's code cache from `cacheFile` when
 * the cache was made for this very file (its SHA-256 is stored first). With
 * DPSKIT_ALLOCATOR_WRITE_CODE_CACHE=1 the cache is written on exit, after the run, so that it holds
 * the functions the run compiled.
 *
 * The wrapped text is decoded once from the file's bytes, which are also what is hashed (SHA-256 of
 * the file, as before). Reading the text and then wrapping it made two copies of it, each a large
 * object in V8's young generation, whose first semi-space is 1 MB: @azure/functions' file has
 * characters beyond Latin-1, so its text takes two bytes a character, 373 KB a copy (and hashing the
 * text encoded it to UTF-8 once more). The start still makes three young-generation collections
 * before its first answer, where bare node:http makes none (two of them before this script runs).
 * With the require above: main-thread CPU to the first answer 94.0 -> 92.2 ms, median of 41
 * interleaved starts, lower in 26 of 41 pairs (load 12.3; issue #13).
 */
function compile(
  file: string,
  wrapper: readonly [string, string],
  cacheFile: string,
  bytes: Buffer = readFileSync(file),
): VmScript {
  const digest = createHash('sha256').update(bytes).digest();
  let cachedData: Buffer | undefined;
  try {
    const cache = readFileSync(cacheFile);
    if (cache.length > DIGEST_BYTES && cache.subarray(0, DIGEST_BYTES).equals(digest)) {
      cachedData = cache.subarray(DIGEST_BYTES);
    }
  } catch {
    // no cache: compiled from source
  }
  const source = Buffer.concat([Buffer.from(wrapper[0]), bytes, Buffer.from(wrapper[1])]).toString('utf8');
  const script = new Script(source, { filename: file, ...(cachedData ? { cachedData } : {}) });
  if (writeCaches) {
    process.once('exit', () => {
      const temporary = `${cacheFile}.${process.pid}.tmp`;
      writeFileSync(temporary, Buffer.concat([digest, script.createCachedData()]));
      renameSync(temporary, cacheFile);
    });
  }
  return script;
}
