// Bundles the local host's CLI, which tsc has just compiled to dist/local-host/cli.js, for a fast
// cold start (spawn to the first answer, issue #13), in three steps:
//
// 1. dist/local-host/cli-host.cjs: the CLI's own modules and @dpskit/node-kit's as one CommonJS
//    script. Why one: a cold start spent a large part of its time in Node's ESM loader, which
//    resolves, reads and links every small module in turn. Why CommonJS: V8 can take a code cache
//    for a script (vm.Script cachedData), and Node 20 has none for ES modules. The packages the
//    served app imports itself stay external, so that the host and the app share one copy of each:
//    @azure/functions (its `app` registers through the host's @azure/functions-core),
//    @dpskit/contracts, and the rest of the dependencies. `import.meta.url` becomes the entry's
//    (same folder, so registry.ts' package root is unchanged) and the two dynamic imports (the
//    app's modules, tinyglobby) the entry's import(): see cached-entry.ts.
// 2. dist/local-host/cli.cjs: cached-entry.ts (compiled beside it) bundled alone, as a CommonJS
//    script, which runs cli-host.cjs with its code cache and loads the app with require where Node
//    can (cached-entry.ts says why); dist/local-host/cli.js (what tsc wrote, and what
//    `node dist/local-host/cli.js` and the ES module bin dist/cli.js run) becomes an ES module that
//    requires it; dist/cli.cjs, the package's bin, is src/cli.ts's dispatch as a CommonJS script:
//    `start` requires cli.cjs, `package` imports dist/cli.js. Why CommonJS entries: an ES module entry
//    starts Node's asynchronous ES module loader before the first line runs.
// 3. dist/local-host/azure-functions.cjs: @azure/functions' file, as the host resolves it, printed by
//    esbuild in ASCII without its comments, headed by the SHA-256 of the file it was made from. The
//    entry runs it in place of the file when the file it resolves has that digest (cached-entry.ts).
//    Why: the file has non-Latin-1 characters (in comments and one warning's text), so V8 holds its
//    190 KB as 373 KB of two-byte text, parses it as such, and a start's young generation fills sooner.
// 4. dist/local-host/cli-host.cjs.cache, cli-host.cjs.azure-functions.cache and
//    cli-host.cjs.contracts-allocation.cache (the code caches of the host, @azure/functions and
//    @dpskit/contracts/allocation's implementation script; the second for azure-functions.cjs): made
//    by one real start of the built CLI
//    and one request (the tutorial's toaster), so that they hold the functions a start and a first
//    request compile. A cache that is not written (say the contract's layout changed and the entry
//    no longer finds its script) fails the build.
//
// The library entry (dist/index.js) and the app's modules are not bundled. No source map: one for
// the bundle would point into node-kit's sources, which the package does not ship; tsc's maps of
// the unbundled files are removed with them.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TOASTER_REQUEST_2021_10_01 } from '@dpskit/contracts/fixtures';
import { build, transform } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { dependencies } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const external = Object.keys(dependencies).filter((name) => name !== '@dpskit/node-kit');
const dir = join(root, 'dist', 'local-host');
const cli = join(dir, 'cli.cjs');
const esmCli = join(dir, 'cli.js');
const bin = join(root, 'dist', 'cli.cjs');
const host = join(dir, 'cli-host.cjs');
const entry = join(dir, 'cached-entry.js');

const bundled = await build({
  absWorkingDir: root,
  entryPoints: [esmCli],
  write: false,
  outfile: host,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external,
  define: { 'import.meta.url': '__cliModuleUrl' },
  sourcemap: false,
  logLevel: 'warning',
});
let source = bundled.outputFiles[0].text.replace(/^#!.*\n/, '');
// The entry hands the bundle its own import() as __cliImport (cached-entry.ts says why). Exactly the
// two known dynamic imports are rewritten; any other import( fails the build rather than the host.
const dynamicImports = source.match(/\bimport\(/g)?.length ?? 0;
if (dynamicImports !== 2) {
  throw new Error(`bundle-cli: expected the CLI's 2 dynamic imports, found ${dynamicImports}: update cached-entry.ts`);
}
source = source.replace(/\bimport\(/g, '__cliImport(');
writeFileSync(host, source);

// `import.meta.url` in the CommonJS entry: its own file's URL, as in the ES module it was compiled as.
const entryUrl = "require('node:url').pathToFileURL(__filename).href";
await build({
  absWorkingDir: root,
  entryPoints: [entry],
  outfile: cli,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external,
  // "use strict" first: esbuild's own directive comes after the banner.
  banner: { js: `'use strict';\nconst __cliEntryUrl = ${entryUrl};` },
  define: { 'import.meta.url': '__cliEntryUrl' },
  sourcemap: false,
  logLevel: 'warning',
});
if (/\bimport\.meta\b/.test(readFileSync(cli, 'utf8')))
  throw new Error('bundle-cli: import.meta left in the CommonJS entry');
writeFileSync(
  esmCli,
  `#!/usr/bin/env node
// The local host's CLI as an ES module, for \`node dist/local-host/cli.js\`: the CLI is the CommonJS
// script beside it (scripts/bundle-cli.mjs says why).
import { createRequire } from 'node:module';

createRequire(import.meta.url)('./cli.cjs');
`,
);
writeFileSync(
  bin,
  `#!/usr/bin/env node
'use strict';
// dpskit-allocator: src/cli.ts's dispatch (dist/cli.js) as a CommonJS script, so that \`start\` (the
// default) runs the local host's CommonJS entry without Node's ES module loader (scripts/bundle-cli.mjs).
const argv = process.argv.slice(2);
const args = argv[0] === '--' ? argv.slice(1) : argv;
if (args[0] === 'package') import('./cli.js');
else require('./local-host/cli.cjs');
`,
  { mode: 0o755 },
);
for (const file of [
  `${esmCli}.map`,
  entry,
  `${entry}.map`,
  join(dir, 'cached-entry.d.ts'),
  join(dir, 'cached-entry.d.ts.map'),
]) {
  rmSync(file, { force: true });
}

await writeAsciiLibrary();
await writeCodeCache();

/** Step 3: azure-functions.cjs, the first line naming the SHA-256 of the file it was printed from. */
async function writeAsciiLibrary() {
  const library = createRequire(host).resolve('@azure/functions');
  const bytes = readFileSync(library);
  const { code } = await transform(bytes.toString('utf8'), {
    loader: 'js',
    charset: 'ascii',
    legalComments: 'none',
    target: 'node20',
    logLevel: 'warning',
  });
  const digest = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(
    join(dir, 'azure-functions.cjs'),
    `// sha256:${digest} @azure/functions (scripts/bundle-cli.mjs)\n${code}`,
  );
}

/** One start of the built CLI and one toaster request, with the entry told to write its caches on exit. */
async function writeCodeCache() {
  const caches = [`${host}.cache`, `${host}.azure-functions.cache`, `${host}.contracts-allocation.cache`];
  for (const cache of caches) rmSync(cache, { force: true });
  const key = 'build-code-cache-key';
  const child = spawn(process.execPath, [cli, '--port', '0', '--host', '127.0.0.1', '--json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ALLOCATOR_FUNCTION_KEY: key, DPSKIT_ALLOCATOR_WRITE_CODE_CACHE: '1' },
  });
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const url = await new Promise((resolve, reject) => {
      let buffered = '';
      child.stdout.on('data', (chunk) => {
        buffered += chunk;
        const line = buffered.split('\n').find((l) => l.includes('"msg":"Listening on'));
        if (line) resolve(JSON.parse(line).data.url);
      });
      child.once('exit', (code) => reject(new Error(`bundle-cli: the CLI exited (${code}) before listening`)));
    });
    const response = await fetch(`${url}/api/allocate?code=${key}`, {
      method: 'POST',
      body: TOASTER_REQUEST_2021_10_01,
    });
    if (response.status !== 200)
      throw new Error(`bundle-cli: the CLI answered ${response.status}: ${await response.text()}`);
  } finally {
    child.kill('SIGTERM');
  }
  const code = await exited;
  if (code !== 0 || !caches.every((cache) => existsSync(cache))) {
    throw new Error(`bundle-cli: the code caches were not written (exit ${code})`);
  }
}
