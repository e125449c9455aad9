import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readZip } from '../testing/unzip.js';
import { createZip } from './zip.js';

describe('createZip', () => {
  const entries = [
    { path: 'host.json', data: Buffer.from('{"version":"2.0"}\n'.repeat(20)) },
    { path: 'dist/functions/allocate.js', data: Buffer.from('export {};\n') },
    { path: 'node_modules/x/bin/run', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
    { path: 'data/ünïcode.bin', data: randomBytes(4096) },
    { path: 'empty.txt', data: Buffer.alloc(0) },
  ];

  it('round-trips names, contents and modes through an independent reader (yauzl, zlib CRC-32)', async () => {
    const read = await readZip(createZip(entries));
    expect(read.map((e) => e.path)).toEqual(entries.map((e) => e.path));
    for (const [i, entry] of entries.entries()) {
      expect(read[i]!.data.equals(entry.data)).toBe(true);
      expect(read[i]!.mode).toBe(entry.mode ?? 0o644);
    }
  });

  it('compresses what compresses and stores what does not', async () => {
    const zip = createZip(entries);
    // host.json is repetitive (compressible); the random bytes are stored as they are.
    expect(zip.length).toBeLessThan(entries.reduce((n, e) => n + e.data.length, 0) + 600);
    expect(zip.includes(entries[3]!.data)).toBe(true);
    const methods = Object.fromEntries((await readZip(zip)).map((e) => [e.path, e.method]));
    expect(methods['host.json']).toBe(8);
    expect(methods['data/ünïcode.bin']).toBe(0);
  });

  it('is reproducible: same input, same bytes', () => {
    expect(createZip(entries).equals(createZip(entries))).toBe(true);
  });

  it('writes a valid empty archive', async () => {
    expect(await readZip(createZip([]))).toEqual([]);
  });
});
