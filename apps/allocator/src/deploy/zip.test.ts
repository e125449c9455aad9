import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readZip } from '../test/unzip.js';
import { crc32, createZip } from './zip.js';

describe('crc32', () => {
  it('matches the standard check value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.alloc(0))).toBe(0);
  });
});

describe('createZip', () => {
  const entries = [
    { path: 'host.json', data: Buffer.from('{"version":"2.0"}\n'.repeat(20)) },
    { path: 'dist/functions/allocate.js', data: Buffer.from('export {};\n') },
    { path: 'node_modules/x/bin/run', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
    { path: 'data/ünïcode.bin', data: randomBytes(4096) },
    { path: 'empty.txt', data: Buffer.alloc(0) },
  ];

  it('round-trips names, contents and modes', () => {
    const read = readZip(createZip(entries));
    expect(read.map((e) => e.path)).toEqual(entries.map((e) => e.path));
    for (const [i, entry] of entries.entries()) {
      expect(read[i]!.data.equals(entry.data)).toBe(true);
      expect(read[i]!.mode).toBe(entry.mode ?? 0o644);
    }
  });

  it('compresses what compresses and stores what does not', () => {
    const zip = createZip(entries);
    // host.json is repetitive (compressible); the random bytes are stored as they are.
    expect(zip.length).toBeLessThan(entries.reduce((n, e) => n + e.data.length, 0) + 600);
    expect(zip.includes(entries[3]!.data)).toBe(true);
  });

  it('is reproducible: same input, same bytes', () => {
    expect(createZip(entries).equals(createZip(entries))).toBe(true);
  });

  it('writes a valid empty archive', () => {
    expect(readZip(createZip([]))).toEqual([]);
  });
});
