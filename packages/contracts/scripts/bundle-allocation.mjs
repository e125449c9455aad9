// Builds the `@dpskit/contracts/allocation` entry, which tsc has just compiled to
// dist/allocation/webhook.js, as two files:
//
// 1. dist/allocation/webhook-impl.cjs: the webhook's schemas (webhook-schemas.js, on zod/mini) and
//    the parts of zod they use, as one CommonJS script that requires nothing. Why one: the main
//    entry loads zod as about a hundred ES modules, and Node's loader resolves, reads, compiles and
//    links each in turn: importing the main entry took ~55 ms, most of a webhook host's cold start
//    (issue #13). Why CommonJS: V8 can take a code cache for a script, and Node 20 has none for ES
//    modules, so a host can load this file with a code cache made by its own build (the allocator's
//    local host does: apps/allocator/src/local-host/cached-entry.ts). The script is a factory:
//    `module.exports = (shared) => ({ parseAllocationRequest, ... })`, handed the main entry's
//    zod-free schema/ modules it imports (ContractValidationError, parseWith), so that their classes
//    are shared by both entries and `instanceof` holds.
// 2. dist/allocation/webhook.js: the entry itself, a small ES module that imports those schema/
//    modules (external, the main entry's own files) and loads webhook-impl.cjs with require on the
//    first parse. Why on the first parse and not on import: a host that loads the script with a
//    code cache must put it in require's cache before that, and the host's own entry imports this
//    module statically (its imports are evaluated before its first line).
//
// No source map: the tsc maps of the bundled modules still describe the unbundled files beside them.
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'dist', 'allocation');
const entry = join(dir, 'webhook.js');
const schemas = join(dir, 'webhook-schemas.js');
const implementation = join(dir, 'webhook-impl.cjs');
const shared = join(root, 'dist', 'schema');
const GLOBAL = 'webhookContract';

/** A relative import of dist/schema/*, as seen from dist/allocation/ ('../schema/parse.js'), or undefined. */
function sharedSpecifier(args) {
  const file = resolve(args.resolveDir, args.path);
  if (dirname(file) !== shared) return undefined;
  return `./${relative(dir, file)}`.replace(/^\.\/\.\.\//, '../');
}

// 1. The implementation. Each shared module it imports becomes `module.exports = shared[specifier]`.
const sharedImports = new Set();
const impl = await build({
  absWorkingDir: root,
  entryPoints: [schemas],
  write: false,
  bundle: true,
  format: 'iife',
  globalName: GLOBAL,
  platform: 'node',
  target: 'node20',
  sourcemap: false,
  logLevel: 'warning',
  plugins: [
    {
      name: 'shared-schema-modules-from-factory',
      setup(b) {
        b.onResolve({ filter: /^\.\.?\// }, (args) => {
          const specifier = sharedSpecifier(args);
          if (specifier === undefined) return undefined;
          sharedImports.add(specifier);
          return { path: specifier, namespace: 'shared' };
        });
        b.onLoad({ filter: /.*/, namespace: 'shared' }, (args) => ({
          contents: `module.exports = shared[${JSON.stringify(args.path)}];`,
          loader: 'js',
        }));
      },
    },
  ],
});
const iife = impl.outputFiles[0].text;
// One script that requires nothing: what a host preloads is all there is (webhook.test.ts holds it to that).
if (/\brequire\(|\bimport\(/.test(iife.replace(/\brequire_[\w$]+\(/g, ''))) {
  throw new Error('bundle-allocation: the implementation must require or import nothing');
}
writeFileSync(
  implementation,
  `'use strict';\n// @dpskit/contracts/allocation's implementation (scripts/bundle-allocation.mjs): a factory handed the\n// main entry's schema/ modules it imports, keyed by their specifiers: ${[...sharedImports].join(', ')}.\nmodule.exports = function createWebhookContract(shared) {\n${iife}return ${GLOBAL};\n};\n`,
);

// 2. The entry: webhook.ts' exports, with webhook-schemas.js' functions loaded from the implementation.
const names = Object.keys(await import(pathToFileURL(schemas).href));
const sharedNamespaces = [...sharedImports].map((specifier, i) => ({ specifier, name: `shared${i}` }));
const loader = [
  `import { createRequire } from 'node:module';`,
  ...sharedNamespaces.map(({ specifier, name }) => `import * as ${name} from ${JSON.stringify(specifier)};`),
  'let contract;',
  'function load() {',
  `  contract = createRequire(import.meta.url)('./webhook-impl.cjs')({ ${sharedNamespaces
    .map(({ specifier, name }) => `${JSON.stringify(specifier)}: ${name}`)
    .join(', ')} });`,
  '  return contract;',
  '}',
  ...names.map((name) => `export function ${name}(...args) { return (contract ?? load()).${name}(...args); }`),
].join('\n');
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
        b.onResolve({ filter: /^\.\/webhook-schemas\.js$/ }, () => ({ path: schemas, namespace: 'loader' }));
        b.onLoad({ filter: /.*/, namespace: 'loader' }, () => ({ contents: loader, loader: 'js', resolveDir: dir }));
        // A relative import of dist/schema/*: external, with its path as seen from the entry.
        b.onResolve({ filter: /^\.\.?\// }, (args) => {
          const specifier = sharedSpecifier(args);
          return specifier === undefined ? undefined : { path: specifier, external: true };
        });
      },
    },
  ],
});
rmSync(`${entry}.map`, { force: true });
