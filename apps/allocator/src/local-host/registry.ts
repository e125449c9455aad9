import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { HttpFunctionDefinition } from '../registration/http-function.js';
import {
  type CoreLog,
  type CoreRegistration,
  collectRegistrations,
  registrationsByModule,
  toHttpDefinition,
} from './functions-core.js';
import { matchMainFiles } from './main-files.js';

/** The allocator package root (where its package.json and host.json live), from `src/local-host` or `dist/local-host`. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** `src/` when running from source (tests), `dist/` when compiled. */
const CODE_ROOT = fileURLToPath(new URL('../', import.meta.url));
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const OUT_DIR = 'dist';

export interface FunctionApp {
  /** The app folder (package.json, host.json). */
  root: string;
  /** `extensions.http.routePrefix` of host.json (default `api`). */
  routePrefix: string;
  /** The modules `main` names, in load order. */
  modules: string[];
  /** The HTTP functions the modules registered with `app.http` (and friends). */
  definitions: HttpFunctionDefinition[];
  /** Registered functions the local host cannot serve (non-HTTP triggers), with the reason. */
  skipped: Array<{ name: string; reason: string }>;
}

export class FunctionAppError extends Error {
  override name = 'FunctionAppError';
}

const definitionByRegistration = new WeakMap<CoreRegistration, ReturnType<typeof toHttpDefinition>>();

/**
 * Loads a Functions (Node.js v4 model) app the way the Functions host and its Node worker do:
 * host.json for the route prefix, package.json `main` (a path or a glob) for the entry modules,
 * each imported in turn while `@azure/functions-core` records what it registers. Running the
 * allocator's own app from source (vitest), `dist/functions/*.js` maps to `src/functions/*.ts`.
 */
export async function loadFunctionApp(root: string = PACKAGE_ROOT, log: CoreLog = () => {}): Promise<FunctionApp> {
  const appRoot = path.resolve(root);
  const routePrefix = readRoutePrefix(appRoot);
  const modules = await resolveMainModules(appRoot);
  const registrations: CoreRegistration[] = [];
  for (const file of modules) {
    // registrationsByModule (functions-core.ts, shared by every copy of the host in the process): a
    // module is evaluated once per process, so a second load of the same app (tests, several hosts)
    // reuses what its first import registered.
    let registered = registrationsByModule.get(file);
    if (!registered) {
      registered = collectRegistrations(log, async () => {
        try {
          await loadModule(file);
        } catch (err) {
          throw new FunctionAppError(
            `Could not load ${path.relative(appRoot, file) || file} (from package.json "main"): ${errorMessage(err)}`,
            { cause: err },
          );
        }
      });
      registrationsByModule.set(file, registered);
    }
    registrations.push(...(await registered));
  }

  const definitions: HttpFunctionDefinition[] = [];
  const skipped: FunctionApp['skipped'] = [];
  const names = new Set<string>();
  for (const registration of registrations) {
    const key = registration.name.toLowerCase();
    if (names.has(key)) throw new FunctionAppError(`Two functions are named "${registration.name}".`);
    names.add(key);
    let definition = definitionByRegistration.get(registration);
    if (!definition) {
      definition = toHttpDefinition(registration);
      definitionByRegistration.set(registration, definition);
    }
    if ('skipped' in definition) skipped.push({ name: registration.name, reason: definition.skipped });
    else definitions.push(definition);
  }
  return { root: appRoot, routePrefix, modules, definitions, skipped };
}

/**
 * Defined (`true`) in the CommonJS build only (scripts/build-cjs.mjs): there an app's modules are
 * required, because Jest's module loader, which runs that build, has no import() (without
 * --experimental-vm-modules); Node >= 20.19 requires an ES module app too (one without top-level
 * await). The ES module build imports them, as the Functions worker imports an ES module app.
 */
declare const DPSKIT_COMMONJS_BUILD: true | undefined;

function loadModule(file: string): unknown {
  return typeof DPSKIT_COMMONJS_BUILD === 'undefined' ? import(pathToFileURL(file).href) : require(file);
}

// host.json and package.json are read synchronously: two small files, once per app load, on the way
// to the host's first answer, where fs/promises' readFile took four thread-pool round trips each
// (open, stat, read, close) of waiting on a busy machine (issue #13 cold start).
function readRoutePrefix(root: string): string {
  const file = path.join(root, 'host.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new FunctionAppError(
      `${file} could not be read (${errorMessage(err)}): a Functions app folder has a host.json at its root.`,
    );
  }
  let host: { extensions?: { http?: { routePrefix?: unknown } } };
  try {
    host = JSON.parse(text) as typeof host;
  } catch (err) {
    throw new FunctionAppError(`${file} is not valid JSON: ${errorMessage(err)}`);
  }
  const prefix = host?.extensions?.http?.routePrefix;
  if (prefix === undefined) return 'api';
  if (typeof prefix !== 'string') throw new FunctionAppError(`${file}: extensions.http.routePrefix must be a string.`);
  return prefix.replace(/^\/+|\/+$/g, '');
}

/**
 * Expands `main` (one path or a glob such as `dist/src/functions/*.js`), relative to the app
 * folder, as the Node worker does (it uses globby; tinyglobby follows the same pattern syntax).
 */
export async function resolveMainModules(root: string): Promise<string[]> {
  const file = path.join(root, 'package.json');
  let pkg: { main?: unknown };
  try {
    pkg = JSON.parse(readFileSync(file, 'utf8')) as typeof pkg;
  } catch (err) {
    throw new FunctionAppError(`${file} could not be read: ${errorMessage(err)}`);
  }
  if (typeof pkg.main !== 'string' || pkg.main.trim() === '') {
    throw new FunctionAppError(
      `${file} has no "main": the Functions host would load nothing (e.g. "main": "dist/src/functions/*.js").`,
    );
  }
  let main = path.posix.normalize(pkg.main.replaceAll('\\', '/')).replace(/^\.\//, '');
  let cwd = root;
  // The allocator's own app, run from source: its compiled layout mirrors src/.
  if (FROM_SOURCE && path.resolve(root) === path.resolve(PACKAGE_ROOT) && main.startsWith(`${OUT_DIR}/`)) {
    main = main.slice(OUT_DIR.length + 1).replace(/\.js$/, '.ts');
    cwd = CODE_ROOT;
  }
  const files = (await matchMainFiles(main, cwd))
    .filter((f) => !/\.(test|spec|d)\.[cm]?[jt]s$/.test(f))
    .map((f) => path.normalize(f))
    .sort();
  if (files.length === 0) {
    throw new FunctionAppError(
      `No file matches package.json "main" ${JSON.stringify(pkg.main)} in ${root}${/\.js$/.test(main) ? ' (is the app built?)' : ''}.`,
    );
  }
  return files;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
