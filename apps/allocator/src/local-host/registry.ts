import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type HttpFunctionDefinition, isHttpFunctionDefinition } from '../registration/http-function.js';

/** The package root (where package.json and host.json live), from `src/local-host` or `dist/local-host`. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** `src/` when running from source (tests), `dist/` when compiled. */
const CODE_ROOT = fileURLToPath(new URL('../', import.meta.url));
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const OUT_DIR = 'dist';

export interface FunctionApp {
  /** `extensions.http.routePrefix` of host.json (default `api`). */
  routePrefix: string;
  /** The modules `main` names, resolved to this copy of the code. */
  modules: string[];
  definitions: HttpFunctionDefinition[];
}

/**
 * Loads the function app the way the Functions host does: host.json for the route prefix and the
 * package.json `main` glob for the function modules, then collects the HTTP function definitions
 * those modules export. Running from source (vitest), `dist/functions/*.js` maps to
 * `src/functions/*.ts`, so tests serve the same module list as the compiled app.
 */
export async function loadFunctionApp(root: string = PACKAGE_ROOT): Promise<FunctionApp> {
  const routePrefix = await readRoutePrefix(root);
  const modules = await resolveMainModules(root);
  const definitions: HttpFunctionDefinition[] = [];
  await withoutTestModeWarnings(async () => {
    for (const file of modules) {
      const exports = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
      for (const value of Object.values(exports)) {
        if (isHttpFunctionDefinition(value) && !definitions.includes(value)) definitions.push(value);
      }
    }
  });
  const names = new Set<string>();
  for (const d of definitions) {
    if (names.has(d.name.toLowerCase())) throw new Error(`Two functions are named "${d.name}".`);
    names.add(d.name.toLowerCase());
  }
  return { routePrefix, modules, definitions };
}

async function readRoutePrefix(root: string): Promise<string> {
  const text = await readFile(path.join(root, 'host.json'), 'utf8');
  const host = JSON.parse(text) as { extensions?: { http?: { routePrefix?: unknown } } };
  const prefix = host.extensions?.http?.routePrefix;
  return typeof prefix === 'string' ? prefix : 'api';
}

/**
 * Expands `main` (one path or a glob with `*` in the file name, e.g. `dist/functions/*.js`) onto
 * this copy of the code. Deeper globs (`**`) are not supported; the allocator does not need them.
 */
export async function resolveMainModules(root: string): Promise<string[]> {
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { main?: unknown };
  if (typeof pkg.main !== 'string')
    throw new Error('package.json has no "main": the Functions host would load nothing.');
  let main = path.posix.normalize(pkg.main.replaceAll('\\', '/'));
  if (main.startsWith(`${OUT_DIR}/`)) main = main.slice(OUT_DIR.length + 1);
  if (FROM_SOURCE) main = main.replace(/\.js$/, '.ts');
  const dir = path.join(CODE_ROOT, path.posix.dirname(main));
  const pattern = path.posix.basename(main);
  if (pattern.includes('**') || path.posix.dirname(main).includes('*')) {
    throw new Error(`Unsupported "main" glob ${pkg.main}: use a "*" in the file name only.`);
  }
  const matcher = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('[^/]*')}$`);
  const files = (await readdir(dir)).filter((f) => matcher.test(f) && !/\.(test|d)\.[cm]?[jt]s$/.test(f)).sort();
  return files.map((f) => path.join(dir, f));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Outside the Functions host, `app.http` prints that it is in "test mode" and skips the
 * registration. That is exactly the situation the local host handles (it serves the exported
 * definitions), so those two warnings are dropped while the modules load; anything else passes.
 */
async function withoutTestModeWarnings(load: () => Promise<void>): Promise<void> {
  const original = console.warn;
  console.warn = (...args: unknown[]) => {
    const first = args[0];
    if (
      typeof first === 'string' &&
      /^WARNING: (Failed to detect the Azure Functions runtime|Skipping call to register function)/.test(first)
    ) {
      return;
    }
    original.apply(console, args);
  };
  try {
    await load();
  } finally {
    console.warn = original;
  }
}
