// Bundles the `@dpskit/contracts/allocation` entry, which tsc has just compiled to
// dist/allocation/webhook.js, into that one file: the webhook's schemas (webhook-schemas.js, on
// zod/mini) and the parts of zod they use. Why: the main entry loads zod as about a hundred ES
// modules, and Node's loader resolves, reads, compiles and links each in turn: importing the main
// entry took ~55 ms, most of a webhook host's cold start (issue #13); the bundle keeps what the
// schemas use (they import zod as `* as z`, which esbuild can tree-shake). The zod-free modules
// (schema/: decodeJson, ContractValidationError) stay external imports of the main entry's own
// files, so their classes are shared by both entries. No source map: the tsc maps of the bundled
// modules still describe the unbundled files beside them.
import { rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist', 'allocation', 'webhook.js');
const shared = join(root, 'dist', 'schema');

await build({
  absWorkingDir: root,
  entryPoints: [entry],
  outfile: entry,
  allowOverwrite: true,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: false,
  logLevel: 'warning',
  plugins: [
    {
      name: 'shared-schema-modules',
      setup(b) {
        // A relative import of dist/schema/*: external, with its path as seen from the bundle.
        b.onResolve({ filter: /^\.\.?\// }, (args) => {
          const file = resolve(args.resolveDir, args.path);
          if (dirname(file) !== shared) return undefined;
          return { path: `./${relative(dirname(entry), file)}`.replace(/^\.\/\.\.\//, '../'), external: true };
        });
      },
    },
  ],
});
rmSync(`${entry}.map`, { force: true });
