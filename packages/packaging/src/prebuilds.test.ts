import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { expect, it } from 'vitest';
import { workspaceNativePrebuilds } from './install.js';
import { findWorkspaceRoot, listWorkspacePackages } from './workspace.js';

// The better-sqlite3 binary in pnpm's store is one inode hard-linked into every install of it (on
// this shared machine, every engineer's checkout). A link made or removed while tar read it changed
// its ctime, and GNU tar failed "file changed as we read it" (exit 1): readme-commands stopped so
// when another checkout ran pnpm install. workspaceNativePrebuilds now packs a copy.
it('packs the workspace binary while another process links and unlinks it', async () => {
  const root = findWorkspaceRoot();
  const user = listWorkspacePackages(root).find((p) => p.manifest.dependencies?.['better-sqlite3']);
  if (!user) throw new Error('no workspace package depends on better-sqlite3');
  const packageDir = dirname(createRequire(join(user.dir, 'package.json')).resolve('better-sqlite3/package.json'));
  const binary = join(packageDir, 'build', 'Release', 'better_sqlite3.node');
  // A hard link must be on the binary's file system: a folder in the workspace's node_modules.
  const links = mkdtempSync(join(root, 'node_modules', '.dpskit-prebuilds-test-'));
  const link = join(links, 'link.node');
  const churn = spawn(
    'bash',
    [
      '-c',
      `ln -f '${binary}' '${link}' && echo linked; while :; do rm -f '${link}'; ln -f '${binary}' '${link}'; done`,
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const folders: string[] = [];
  try {
    await once(churn.stdout, 'data');
    for (let i = 0; i < 10; i++) {
      const folder = mkdtempSync(join(tmpdir(), 'dpskit-prebuilds-'));
      folders.push(folder);
      const { versions } = workspaceNativePrebuilds(folder, root);
      const [asset, ...more] = readdirSync(folder);
      expect({ more, versions: Object.keys(versions) }).toEqual({ more: [], versions: ['better-sqlite3'] });
      const listed = execFileSync('tar', ['-tzf', join(folder, asset as string)], { encoding: 'utf8' });
      expect(listed.trim()).toBe('build/Release/better_sqlite3.node');
    }
  } finally {
    churn.kill();
    rmSync(links, { recursive: true, force: true });
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  }
});
