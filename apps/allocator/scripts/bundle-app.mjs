// Bundles the allocator's own Functions app, which tsc has just compiled, for a faster cold start of
// the local host (spawn to the first answer, issue #13): each module that package.json `main`
// names (dist/functions/*.js) becomes one ES module with the app's own code inside, in place.
//
// Why: the host imports the app as the Functions worker does (import() of each `main` module), and
// Node's ES module loader resolves, reads (thread-pool round trips), compiles and links every module
// of the app in turn; the tutorial app was eight modules (the function, its handler, the policy, the
// registration and the log fields), about 5 ms of main-thread CPU of a 60 ms cold start on the 2-core
// machine. A bundled app is what Azure Functions' own packaging tool did for cold starts too
// (Azure/azure-functions-pack: "condensing everything into one file"; Run From Package replaced it
// on Azure).
// The packages stay external (`dependencies`): the app and the host share one @azure/functions
// (its `app` registers through the host's @azure/functions-core) and one @dpskit/contracts.
// The library entry (dist/index.js) and the modules it imports are not touched: a user's app that
// imports @dpskit/allocator gets them as they are. The source map is chained through tsc's, so a
// stack trace still names src/….ts.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { dependencies, main } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
if (main !== 'dist/functions/*.js') {
  throw new Error(`bundle-app: package.json "main" is ${JSON.stringify(main)}: update scripts/bundle-app.mjs`);
}
const dir = join(root, 'dist', 'functions');
const modules = readdirSync(dir).filter((name) => name.endsWith('.js') && !name.includes('.test.'));
if (modules.length === 0) throw new Error('bundle-app: no module in dist/functions');

for (const name of modules) {
  const file = join(dir, name);
  await build({
    absWorkingDir: root,
    entryPoints: [file],
    outfile: file,
    allowOverwrite: true,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: Object.keys(dependencies),
    sourcemap: 'linked',
    logLevel: 'warning',
  });
}
