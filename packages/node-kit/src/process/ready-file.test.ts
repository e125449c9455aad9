import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeReadyFile, writeReadyFile } from './ready-file.js';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'node-kit-ready-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('ready file', () => {
  it('writes ready, the pid and the details as JSON, creating the folder, leaving no temporary file', async () => {
    const dir = tempDir();
    const path = join(dir, 'nested', 'ready.json');
    const info = await writeReadyFile(path, { mqtt: { port: 8883 } });
    expect(info).toEqual({ ready: true, pid: process.pid, mqtt: { port: 8883 } });
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(info);
    expect(readdirSync(join(dir, 'nested'))).toEqual(['ready.json']);
  });

  it('replaces a stale file and removes it; removing a missing file is fine', async () => {
    const path = join(tempDir(), 'ready.json');
    writeFileSync(path, 'stale');
    await writeReadyFile(path, {});
    expect(JSON.parse(readFileSync(path, 'utf8')).ready).toBe(true);
    await removeReadyFile(path);
    expect(existsSync(path)).toBe(false);
    await removeReadyFile(path);
  });
});
