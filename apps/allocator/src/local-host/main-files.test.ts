import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { glob } from 'tinyglobby';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matchMainFiles } from './main-files.js';

describe('matchMainFiles', () => {
  let root: string;

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'dpskit-main-files-'));
    const files = [
      'index.js',
      'dist/app.js',
      'dist/.hidden.js',
      'dist/src/functions/allocate.js',
      'dist/src/functions/allocate.test.js',
      'dist/src/functions/b.mjs',
      'dist/src/functions/readme.md',
      'dist/src/functions/nested/deep.js',
      'dist/src/functions/a b.js',
      'dist/src/functions/Upper.JS',
    ];
    for (const file of files) {
      await mkdir(path.dirname(path.join(root, file)), { recursive: true });
      await writeFile(path.join(root, file), '');
    }
    await mkdir(path.join(root, 'dist/src/functions/folder.js'));
    await symlink(path.join(root, 'dist/app.js'), path.join(root, 'dist/src/functions/linked.js'));
    await symlink(path.join(root, 'dist/src'), path.join(root, 'dist/src/functions/dirlink.js'));
  });
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  const patterns = [
    'dist/src/functions/*.js',
    'dist/src/functions/*',
    'dist/src/functions/a*.js',
    'dist/src/functions/*ate.js',
    'dist/src/functions/allocate.js',
    'dist/src/functions/missing.js',
    'dist/src/functions/folder.js',
    'dist/*.js',
    '*.js',
    'index.js',
    'missing/*.js',
    'dist/src/functions/**/*.js',
    'dist/src/functions/{allocate,b}.*',
    'dist/src/functions/?.mjs',
    'dist/src/functions/*.{js,mjs}',
    'dist/src/functions/*.JS',
  ];

  it.each(patterns)('finds what tinyglobby finds for %s', async (pattern) => {
    const expected = await glob(pattern, { cwd: root, absolute: true, onlyFiles: true, expandDirectories: false });
    const actual = await matchMainFiles(pattern, root);
    expect(actual.map((f) => path.normalize(f)).sort()).toEqual(expected.map((f) => path.normalize(f)).sort());
  });
});
