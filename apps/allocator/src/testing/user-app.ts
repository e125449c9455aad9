import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PACKAGE_ROOT as PACKAGE_DIR } from '../local-host/registry.js';

export interface UserAppFiles {
  /** package.json fields; `main` defaults to `dist/src/functions/*.js`. */
  packageJson?: Record<string, unknown>;
  hostJson?: unknown;
  localSettings?: unknown;
  /** Relative path → file text. */
  files: Record<string, string>;
}

/**
 * A Functions app folder as a user writes one, outside the repository, with `@azure/functions`
 * linked from the allocator's own dependencies. `ALLOCATOR_SOURCE` lets a module import the
 * allocator's library from source (vitest transforms it), the way a user imports '@dpskit/allocator'.
 */
export async function writeUserApp(app: UserAppFiles): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'dpskit-user-app-'));
  await writeFile(
    path.join(root, 'package.json'),
    JSON.stringify({
      name: 'user-app',
      version: '1.0.0',
      type: 'module',
      main: 'dist/src/functions/*.js',
      ...app.packageJson,
    }),
  );
  await writeFile(
    path.join(root, 'host.json'),
    JSON.stringify(app.hostJson ?? { version: '2.0', extensions: { http: { routePrefix: 'api' } } }),
  );
  if (app.localSettings !== undefined) {
    await writeFile(path.join(root, 'local.settings.json'), JSON.stringify(app.localSettings));
  }
  for (const [rel, text] of Object.entries(app.files)) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), text);
  }
  await mkdir(path.join(root, 'node_modules', '@azure'), { recursive: true });
  await symlink(
    path.join(PACKAGE_DIR, 'node_modules', '@azure', 'functions'),
    path.join(root, 'node_modules', '@azure', 'functions'),
    'dir',
  );
  return root;
}

/** `import … from ALLOCATOR_SOURCE` in a fixture module stands for `from '@dpskit/allocator'`. */
export const ALLOCATOR_SOURCE = pathToFileURL(path.join(PACKAGE_DIR, 'src', 'index.ts')).href;
