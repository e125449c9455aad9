// Bundles the local host's CLI, which tsc has just compiled to dist/local-host/cli.js, into that one
// file: the CLI's own modules and @dpskit/node-kit's. Why: a cold start (spawn to the first answer)
// spent a large part of its time in Node's ESM loader, which resolves, reads and links every small
// module in turn (issue #13). The packages the served app imports itself stay external, so that
// the host and the app share one copy of each: @azure/functions (its `app` registers through the
// host's @azure/functions-core), @dpskit/contracts with zod, and the rest of the dependencies.
// Paths the CLI derives from import.meta.url (registry.ts: the package root) are unchanged, as the
// bundle stays in dist/local-host/. The library entry (dist/index.js) and the app's modules are not
// bundled. No source map: one for the bundle would point into node-kit's sources, which the package does
// not ship; tsc's map of the unbundled cli.js is removed with it.
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { dependencies } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const cli = join(root, 'dist', 'local-host', 'cli.js');
await build({
  absWorkingDir: root,
  entryPoints: [cli],
  outfile: cli,
  allowOverwrite: true,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: Object.keys(dependencies).filter((name) => name !== '@dpskit/node-kit'),
  sourcemap: false,
  logLevel: 'warning',
});
rmSync(`${cli}.map`, { force: true });
