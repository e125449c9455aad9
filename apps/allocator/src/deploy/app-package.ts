import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, lstat, mkdir, mkdtemp, readdir, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ignore from 'ignore';
import { collectProductionDependencies, copyPackages } from './production-dependencies.js';
import { secretInFile } from './secret-scan.js';
import { staleModules } from './stale-build.js';
import type { VerifiedApp } from './verify-app.js';
import { createZip, type ZipEntry } from './zip.js';

const run = promisify(execFile);

/**
 * What Core Tools' TypeScript and JavaScript templates put in `.funcignore`: used when the app has
 * none. `node_modules` is never copied from the app (production dependencies are collected
 * separately) and `local.settings.json` is never packaged (it holds local secrets).
 */
export const DEFAULT_FUNCIGNORE = [
  '*.js.map',
  '*.ts',
  '.git*',
  '.vscode',
  '__azurite_db*__.json',
  '__blobstorage__',
  '__queuestorage__',
  'local.settings.json',
  'test',
  'tsconfig.json',
];
/**
 * Never packaged, whatever `.funcignore` says: `local.settings.json` holds local secrets, and
 * `.dpskit` is dpskit's local state (the emulator's default state folder `.dpskit/emulator`, with its
 * CA and server private keys and its database of enrollment and device keys; ready files), which a
 * user running the emulator from the app's folder has there and Core Tools' `.funcignore` does not name.
 */
const ALWAYS_EXCLUDED = ['node_modules', 'local.settings.json', '.git', '.dpskit'];

export interface AppPackageOptions {
  /** The Functions app folder: package.json (with `main`), host.json, the built code, node_modules. */
  appDir: string;
  /** Where `app/` and `app.zip` are written; default `<appDir>/deploy`. */
  outDir?: string;
  /** Also write the zip (default true). */
  zip?: boolean;
  /** Load the packaged app under plain Node from an empty folder before writing anything (default true). */
  verify?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface AppPackage {
  /** The unpacked package: `func azure functionapp publish --no-build` runs here. */
  appDir: string;
  zipFile: string | undefined;
  zipBytes: number | undefined;
  fileCount: number;
  /** What the packaged app registered when it was loaded from an empty folder (when verified). */
  verified: VerifiedApp | undefined;
}

export class AppPackageError extends Error {
  override name = 'AppPackageError';
}

/**
 * Packages a user's Functions app for zip deploy: the app's files (minus `.funcignore`), its
 * production dependencies as a flat folder of real files, nothing from devDependencies. The
 * package is staged in an empty temporary folder outside any node_modules tree and loaded there
 * with plain Node (every module of `main`, each registered function listed): a package whose
 * imports cannot resolve, or that registers nothing, is refused before anything is written.
 */
export async function createAppPackage(options: AppPackageOptions): Promise<AppPackage> {
  const log = options.log ?? (() => {});
  const appDir = path.resolve(options.appDir);
  const outDir = path.resolve(options.outDir ?? path.join(appDir, 'deploy'));
  await checkAppFolder(appDir);

  const stageRoot = await mkdtemp(path.join(tmpdir(), 'dpskit-app-package-'));
  try {
    const stage = path.join(stageRoot, 'app');
    await mkdir(stage);
    const files = await appFiles(appDir, outDir, log);
    log(`copying ${files.length} app files from ${appDir}`);
    for (const rel of files) await cp(path.join(appDir, rel), path.join(stage, rel), { dereference: true });

    const packages = await collectProductionDependencies(appDir);
    log(`copying ${packages.length} production dependencies`);
    await copyPackages(packages, stage);

    let verified: VerifiedApp | undefined;
    if (options.verify !== false) {
      log('loading the packaged app under plain Node from an empty folder');
      verified = await verifyPackagedApp(stage);
      for (const fn of verified.functions) log(`  ${fn.name}: [${fn.methods.join(',')}] /${fn.path} (${fn.authLevel})`);
    }

    const allFiles = await listFiles(stage);
    const entries: ZipEntry[] = [];
    let zip: Buffer | undefined;
    if (options.zip !== false) {
      for (const rel of allFiles) {
        const full = path.join(stage, rel);
        entries.push({
          path: rel.split(path.sep).join('/'),
          data: await readFile(full),
          mode: (await stat(full)).mode,
        });
      }
      zip = createZip(entries);
    }

    const packagedDir = path.join(outDir, 'app');
    const zipFile = path.join(outDir, 'app.zip');
    await removePreviousPackage(outDir);
    await mkdir(outDir, { recursive: true });
    await cp(stage, packagedDir, { recursive: true });
    if (zip) {
      await writeFile(zipFile, zip);
      log(`zipped ${allFiles.length} files → ${zipFile}`);
    }
    return {
      appDir: packagedDir,
      zipFile: zip ? zipFile : undefined,
      zipBytes: zip?.length,
      fileCount: allFiles.length,
      verified,
    };
  } finally {
    await rm(stageRoot, { recursive: true, force: true });
  }
}

async function checkAppFolder(appDir: string): Promise<void> {
  for (const name of ['package.json', 'host.json']) {
    try {
      await stat(path.join(appDir, name));
    } catch {
      throw new AppPackageError(`${appDir} is not a Functions app folder: it has no ${name}.`);
    }
  }
}

/**
 * How the emulator marks a state folder (`--state-dir`, default `.dpskit/emulator`, which
 * ALWAYS_EXCLUDED covers): it claims the folder through `emulator.lock` and keeps its store in
 * `emulator.db` (apps/emulator src/state-claim.ts, emulator.ts), both made at every start; its TLS
 * folder holds the CA's and the server's private keys (`tls/ca.key.pem`, `tls/server.key.pem`). A
 * folder holding any of these is left out whole, wherever it is in the app and whatever its name.
 */
export const EMULATOR_STATE_MARKERS = ['emulator.lock', 'emulator.db', 'ca.key.pem', 'server.key.pem'] as const;

/**
 * The app's own files, relative, filtered by its .funcignore (or Core Tools' default one), without
 * emulator state folders. Symlinks are not followed into the package: zip deploy keeps none, so
 * packaging one ships what it points to. A link to a file the package holds anyway is copied as
 * that file; any other link (outside the app folder, to a left-out file, to a folder) is refused
 * with its path, unless `.funcignore` names it.
 */
export async function appFiles(
  appDir: string,
  outDir: string,
  log: (line: string) => void = () => {},
): Promise<string[]> {
  let patterns = DEFAULT_FUNCIGNORE;
  try {
    patterns = (await readFile(path.join(appDir, '.funcignore'), 'utf8')).split(/\r?\n/);
  } catch {
    // no .funcignore: Core Tools' default
  }
  const ig = ignore().add(patterns).add(ALWAYS_EXCLUDED);
  const outRel = path.relative(appDir, outDir);
  const skipOut = outRel !== '' && !outRel.startsWith('..') && !path.isAbsolute(outRel);
  const out: string[] = [];
  const links: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(path.join(appDir, rel))).sort();
    const marker = EMULATOR_STATE_MARKERS.find((m) => names.includes(m));
    if (rel !== '' && marker) {
      log(`leaving out ${rel}/: an emulator state folder (it holds ${marker})`);
      return;
    }
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      if (skipOut && childRel === outRel.split(path.sep).join('/')) continue;
      const info = await lstat(path.join(appDir, childRel));
      if (info.isSymbolicLink()) {
        if (!ig.ignores(childRel) && !ig.ignores(`${childRel}/`)) links.push(childRel);
      } else if (info.isDirectory()) {
        if (!ig.ignores(`${childRel}/`)) await walk(childRel);
      } else if (info.isFile() && !ig.ignores(childRel)) {
        out.push(childRel);
      }
    }
  };
  if (EMULATOR_STATE_MARKERS.some((m) => existsSync(path.join(appDir, m)))) {
    throw new AppPackageError(
      `${appDir} is an emulator state folder (it holds its keys and database): package the Functions app's folder, and keep the emulator's --state-dir out of it.`,
    );
  }
  await walk('');
  await refuseSecrets(appDir, out);
  // A build older than its sources packs the code as it was: say so (the docs' `npm run package` builds first).
  for (const { module, source } of await staleModules(appDir, out)) {
    log(
      `warning: ${module} is older than ${source}: this package holds the last build, not your latest edit (build first)`,
    );
  }
  if (links.length > 0) {
    const root = await realpath(appDir);
    const packaged = new Set(out);
    for (const link of links) {
      const full = path.join(appDir, link);
      const target = await realpath(full).catch(() => undefined);
      const targetRel = target === undefined ? undefined : path.relative(root, target).split(path.sep).join('/');
      if (targetRel !== undefined && packaged.has(targetRel)) {
        out.push(link);
        continue;
      }
      const where =
        target === undefined
          ? 'a missing file'
          : targetRel === undefined || targetRel.startsWith('..') || path.isAbsolute(targetRel)
            ? `${target}, outside the app folder`
            : `${targetRel}, which the package leaves out or which is a folder`;
      throw new AppPackageError(
        `${link} is a symbolic link to ${where}: zip deploy keeps no links, so the package would ship what it points to. Replace it with the file itself, or name it in .funcignore.`,
      );
    }
  }
  return out;
}

/**
 * Refuses app files that hold a key or token (secret-scan.ts): following the docs, a user's app
 * folder gets the emulator's banner in a log (its service and hub keys), an emulator config with an
 * enrollment group's key (copied from `az … show --show-keys`), a device's PEM key; zip deploy
 * would put each in the Function app's wwwroot. Refused rather than left out: the app may need
 * the file; its owner decides (.funcignore, or move it). The message names the files, never a value.
 */
async function refuseSecrets(appDir: string, files: readonly string[]): Promise<void> {
  const found: string[] = [];
  for (const rel of files) {
    const secret = await secretInFile(path.join(appDir, rel));
    if (secret) found.push(`  ${rel}: ${secret.what}, line ${secret.line}`);
  }
  if (found.length === 0) return;
  throw new AppPackageError(
    `These app files hold secrets that a deployment package must not carry:\n${found.join('\n')}\nMove them out of the app folder, or name them in .funcignore (e.g. *.log).`,
  );
}

/**
 * Loads the staged package in a child Node process (its own module cache, no workspace around it)
 * and returns what it registered. The staging folder is under the OS temp folder, so no
 * node_modules of the developer's machine is on its resolution path.
 */
export async function verifyPackagedApp(stage: string): Promise<VerifiedApp> {
  const verifier = fileURLToPath(new URL('./verify-app.js', import.meta.url));
  try {
    await stat(verifier);
  } catch {
    throw new AppPackageError(`The package verifier ${verifier} is missing (run the packager from the built package).`);
  }
  const env = { ...process.env };
  delete env.NODE_PATH;
  delete env.NODE_OPTIONS;
  let stdout: string;
  try {
    ({ stdout } = await run(process.execPath, [verifier, stage], { cwd: stage, env, maxBuffer: 16 * 1024 * 1024 }));
  } catch (err) {
    const { stderr, stdout: out } = err as { stderr?: string; stdout?: string };
    throw new AppPackageError(
      `The packaged app does not load under plain Node from an empty folder, so Azure would find no functions in it:\n${(stderr || out || String(err)).trim()}`,
    );
  }
  const verified = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as VerifiedApp;
  if (verified.functions.length === 0) {
    throw new AppPackageError('The packaged app loads but registers no HTTP function.');
  }
  return verified;
}

/** Refuses to delete an outDir that does not look like a previous package (e.g. a mistyped --out). */
async function removePreviousPackage(outDir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(outDir);
  } catch {
    return;
  }
  const unexpected = entries.filter((e) => e !== 'app' && e !== 'app.zip');
  if (unexpected.length > 0) {
    throw new AppPackageError(
      `Refusing to write into ${outDir}: it holds ${unexpected.slice(0, 3).join(', ')}, so it is not a previous package folder (choose another --out).`,
    );
  }
  if (entries.includes('app')) {
    const hostJson = await lstat(path.join(outDir, 'app', 'host.json')).catch(() => undefined);
    if (!hostJson)
      throw new AppPackageError(`Refusing to delete ${path.join(outDir, 'app')}: it is not a previous package.`);
  }
  await rm(path.join(outDir, 'app'), { recursive: true, force: true });
  await rm(path.join(outDir, 'app.zip'), { force: true });
}

/** Relative paths of all regular files, sorted. */
async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const full = path.join(dir, name);
      const info = await lstat(full);
      if (info.isDirectory()) await walk(full);
      else if (info.isFile()) out.push(path.relative(root, full));
    }
  };
  await walk(root);
  return out;
}
