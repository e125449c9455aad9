import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { userEnv } from './install.js';
import { run } from './run.js';
import { findWorkspaceRoot, publishablePackages } from './workspace.js';

// The root README's "Installing the packages" packs dpskit with one pnpm command, run here as a
// user's shell runs it (npm test does not run the README; `npm run readme-commands` does, and only
// checks that it exits 0). `--filter "@dpskit/allocator..."` also selects a package's workspace
// devDependencies: it packed the private @dpskit/vitest-config, a tarball of no published package.

const root = findWorkspaceRoot();
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const work = mkdtempSync(join(tmpdir(), 'dpskit-readme-pack-'));

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The README's shell command that packs into `$APPS/dpskit-packs`, its continuation lines joined. */
function packCommand(): string {
  const commands = readme
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /^npx pnpm .* pack .*--pack-destination "\$APPS\/dpskit-packs"/.test(line));
  expect(commands, 'README.md: the one command packing into "$APPS/dpskit-packs"').toHaveLength(1);
  return commands[0] as string;
}

/** The tarball `pnpm pack` names for a package: `@scope/name` → `scope-name-{version}.tgz`. */
const tarballName = (name: string, version: string) => `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`;

describe("the root README's pack command", () => {
  it('packs every publishable package and no private one; the tarballs the README names are among them', async () => {
    const result = await run('sh', ['-c', packCommand()], { cwd: root, env: userEnv({ APPS: work }) });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    const packed = readdirSync(join(work, 'dpskit-packs')).sort();
    const publishable = publishablePackages(root).map((p) => tarballName(p.name, p.manifest.version ?? ''));
    expect(packed).toEqual(publishable.sort());
    // The package.json change the README gives (dependencies, overrides) names these files.
    const named = [...new Set(readme.match(/dpskit-packs\/[\w.-]+\.tgz/g) ?? [])].map((f) =>
      f.slice('dpskit-packs/'.length),
    );
    expect(named.length).toBeGreaterThan(0);
    for (const file of named) expect(packed, `README.md names ${file}`).toContain(file);
  }, 600_000);
});
