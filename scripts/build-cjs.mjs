// Writes a package's CommonJS build beside its ES module one, after tsc: `dist/cjs/`, which each
// entry of package.json `exports` names under its `require` condition. Run from the package folder
// (its `build` script: `node ../../scripts/build-cjs.mjs`).
//
// Why: Jest runs test files in a module loader of its own that cannot require() an ES module (before
// Node 24.9) nor import() one without --experimental-vm-modules, so a plain `jest` CommonJS project
// could not load dpskit at all (reports/old/user18.md, friction 1). Node itself resolves `require`
// to these files too (a `require`-based project gets CommonJS throughout).
//
// What: every source module reachable from the package's entries (static and dynamic imports),
// transpiled one to one by esbuild into dist/cjs/ with the same relative layout, so that each module
// exists once in the CommonJS world (no bundle duplicating a module shared by two entries, whose
// classes would then be two). dist/cjs/package.json says `"type": "commonjs"`, so the `./x.js`
// specifiers stay as they are. In detail:
// - import() becomes require(): Jest's loader has no import() without the flag. `DPSKIT_COMMONJS_BUILD`
//   is defined (true) for the few places that must differ (declared and explained in each: the
//   allocator's host requires an app's modules by path, not by file URL).
// - `import.meta.url` becomes the URL of the module's ES twin in dist/ (computed from __dirname), so
//   every path made relative to it (the web view's files, worker and cluster scripts, package.json)
//   is the one the ES build uses, and workers and child processes still run the ES build in plain
//   Node. Any other `import.meta` fails the build.
// - A dependency that only ships an ES module (no `require` condition: aedes 1.x) cannot be required
//   by Jest's loader: it is transpiled into dist/cjs/vendor/<name>.js with its license, and its own
//   dependencies are still required where it is installed (createRequire at its resolved path).
// - The declarations are copied to dist/cjs/ too: under "type": "commonjs" TypeScript reads them as
//   a CommonJS module's, which is what a `require`-based TypeScript project (module node16) needs.
// Top-level await in a reachable module fails the build (esbuild cannot turn it into CommonJS).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { build } from 'esbuild';

const root = process.cwd();
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const out = join(root, 'dist', 'cjs');
const src = join(root, 'src');
const requireFromPackage = createRequire(join(root, 'package.json'));
rmSync(out, { recursive: true, force: true });

/** The source of each entry: `./dist/x/y.js` under `import` ↔ `src/x/y.ts`, `./dist/cjs/x/y.js` under `require`. */
const entries = [];
for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
  if (typeof target === 'string') continue; // ./package.json
  const esm = target.import;
  const esmTarget = typeof esm === 'string' ? esm : esm?.default;
  const cjsTarget = typeof target.require === 'string' ? target.require : target.require?.default;
  const match = /^\.\/dist\/(.+)\.js$/.exec(esmTarget ?? '');
  if (!match) throw new Error(`build-cjs: exports["${subpath}"].import is not ./dist/….js`);
  if (cjsTarget !== `./dist/cjs/${match[1]}.js`) {
    throw new Error(`build-cjs: exports["${subpath}"].require must be "./dist/cjs/${match[1]}.js" (is ${cjsTarget})`);
  }
  entries.push(join(src, `${match[1]}.ts`));
}
if (entries.length === 0) throw new Error('build-cjs: package.json exports names no entry');

const isBare = (path) => !path.startsWith('.') && !path.startsWith('/') && !path.startsWith('node:');
/** The package name of a bare specifier (`@scope/name/sub` → `@scope/name`). */
const packageName = (specifier) =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

/** Whether `require(specifier)` from `from` finds an ES module only (so Jest's loader cannot load it). */
function esmOnly(specifier, from) {
  let file;
  try {
    file = createRequire(from).resolve(specifier);
  } catch {
    return false; // not installed here (an optional peer): required at run time, or not at all
  }
  if (file.endsWith('.mjs')) return true;
  if (!file.endsWith('.js')) return false;
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) return JSON.parse(readFileSync(pkg, 'utf8')).type === 'module';
  }
  return false;
}

function resolvable(specifier, from) {
  try {
    createRequire(from).resolve(specifier);
    return true;
  } catch {
    return false;
  }
}

// 1. The modules the entries reach (a bundle that keeps every package external, never written).
const graph = await build({
  absWorkingDir: root,
  entryPoints: entries,
  bundle: true,
  write: false,
  metafile: true,
  outdir: out,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  plugins: [
    {
      name: 'packages-external',
      setup(b) {
        b.onResolve({ filter: /.*/ }, (args) =>
          isBare(args.path) || args.path.startsWith('node:') ? { external: true } : undefined,
        );
      },
    },
  ],
});
const modules = Object.keys(graph.metafile.inputs)
  .map((file) => resolve(root, file))
  .filter((file) => file.startsWith(src + sep) && file.endsWith('.ts'));

// 2. Each module on its own, every import left as it is except the ES-only packages.
const vendored = new Map(); // package name → the file it is required from in dist/cjs
const importMetaUrl = (file) => {
  const twin = relative(dirname(join(out, relative(src, file))), join(root, 'dist', relative(src, file)));
  return `require('node:url').pathToFileURL(require('node:path').join(__dirname, ${JSON.stringify(twin.replace(/\.ts$/, '.js'))})).href`;
};
await build({
  absWorkingDir: root,
  entryPoints: modules,
  outbase: src,
  outdir: out,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  sourcesContent: false, // the package ships src/, which the maps point at
  supported: { 'dynamic-import': false },
  // For the few places where the CommonJS build must differ (declared and documented in each).
  define: { DPSKIT_COMMONJS_BUILD: 'true' },
  logLevel: 'warning',
  plugins: [
    {
      name: 'one-module-per-file',
      setup(b) {
        b.onResolve({ filter: /.*/ }, (args) => {
          if (args.kind === 'entry-point') return undefined;
          if (!isBare(args.path)) return { external: true };
          const name = packageName(args.path);
          const from = join(args.resolveDir, 'x.js');
          if (esmOnly(args.path, from)) {
            // A subpath named with its ES file's extension whose package ships a CommonJS twin (zod/v4/locales/en.js).
            const twin = args.path.replace(/\.js$/, '.cjs');
            if (twin !== args.path && resolvable(twin, from) && !esmOnly(twin, from))
              return { path: twin, external: true };
            if (args.path !== name)
              throw new Error(`build-cjs: ${args.path}: only a package's main entry can be vendored`);
            vendored.set(name, join(out, 'vendor', `${name.replace('/', '+')}.js`));
            const vendor = relative(dirname(join(out, relative(src, args.importer))), vendored.get(name));
            return { path: vendor.startsWith('.') ? vendor : `./${vendor}`, external: true };
          }
          return { external: true };
        });
        b.onLoad({ filter: /\.ts$/ }, (args) => {
          let text = readFileSync(args.path, 'utf8');
          if (text.includes('import.meta')) {
            text = text.replaceAll('import.meta.url', `(${importMetaUrl(args.path)})`);
            if (/import\.meta(?!\.url)/.test(text.replaceAll(/\/\/.*$|\/\*[\s\S]*?\*\//gm, ''))) {
              throw new Error(`build-cjs: ${relative(root, args.path)} uses import.meta beyond .url`);
            }
          }
          return { contents: text, loader: 'ts' };
        });
      },
    },
  ],
});
writeFileSync(join(out, 'package.json'), '{ "type": "commonjs" }\n');

// 3. The ES-only packages, as CommonJS, requiring their own dependencies from where they are installed.
for (const [name, file] of vendored) {
  const entry = requireFromPackage.resolve(name);
  let packageDir = dirname(entry);
  while (!existsSync(join(packageDir, 'package.json'))) packageDir = dirname(packageDir);
  const { version, license } = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
  const licenseFile = ['LICENSE', 'LICENSE.md', 'license'].map((f) => join(packageDir, f)).find(existsSync);
  if (!licenseFile) throw new Error(`build-cjs: ${name} has no LICENSE file to ship with its vendored copy`);
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
    plugins: [
      {
        name: 'dependencies-external',
        setup(b) {
          b.onResolve({ filter: /.*/ }, (args) => {
            if (!isBare(args.path) && !args.path.startsWith('node:')) return undefined;
            if (isBare(args.path) && esmOnly(args.path, args.importer)) {
              throw new Error(`build-cjs: ${name} depends on ${args.path}, an ES module only too: vendor it as well`);
            }
            return { external: true };
          });
        },
      },
    ],
  });
  const code = result.outputFiles[0].text.replace(/\brequire\("(?!node:)/g, '__vendorRequire("');
  const notice = readFileSync(licenseFile, 'utf8').replaceAll('*/', '* /');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(
    file,
    `/* ${name} ${version} (${license}), transpiled to CommonJS by dpskit's build (scripts/build-cjs.mjs)\n\n${notice}*/\n` +
      `const __vendorRequire = require('node:module').createRequire(require.resolve(${JSON.stringify(name)}));\n${code}`,
  );
}

// 4. The declarations, read as a CommonJS module's under dist/cjs/package.json: those of the entries
// and every declaration they reach by a relative specifier (type-only modules included, which
// esbuild's graph above leaves out).
const declarations = entries.map((entry) => join(root, 'dist', relative(src, entry)).replace(/\.ts$/, '.d.ts'));
for (const declaration of declarations) {
  if (!existsSync(declaration)) throw new Error(`build-cjs: no ${relative(root, declaration)} (tsc's declarations)`);
  const text = readFileSync(declaration, 'utf8');
  for (const [, specifier] of text.matchAll(/(?:from |import\()['"](\.{1,2}\/[^'"]+)\.js['"]/g)) {
    const reached = resolve(dirname(declaration), `${specifier}.d.ts`);
    if (!declarations.includes(reached)) declarations.push(reached);
  }
  const target = join(out, relative(join(root, 'dist'), declaration));
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, text.replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n'));
}
