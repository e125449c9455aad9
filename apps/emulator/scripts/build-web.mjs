// Bundles the web view (web/) into dist/web-ui: index.html, app.js, app.css. Everything the page
// needs ships in the package (no CDN, works offline); the emulator serves these files itself.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web-ui');
mkdirSync(out, { recursive: true });
await build({
  absWorkingDir: root,
  entryPoints: { app: 'web/src/main.tsx' },
  outdir: out,
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  // The page uses node-kit's percentile only: its pure module, not the package's Node entry point.
  alias: { '@dpskit/node-kit': join(root, '..', '..', 'packages', 'node-kit', 'src', 'stats', 'latency.ts') },
  legalComments: 'eof',
  logLevel: 'warning',
});
copyFileSync(join(root, 'web', 'index.html'), join(out, 'index.html'));
