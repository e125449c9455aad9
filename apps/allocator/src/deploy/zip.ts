import { deflateRawSync } from 'node:zlib';
import { type ZipAttributes, type Zippable, zipSync } from 'fflate';

export interface ZipEntry {
  /** Forward-slash path inside the archive. */
  path: string;
  data: Buffer;
  /** Unix permission bits, kept so that executables stay executable on Linux hosts. */
  mode?: number;
}

// 1980-01-01 00:00, the earliest DOS date: a fixed timestamp makes the archive reproducible. Built from
// local-time parts because fflate writes the DOS date from local-time getters, whatever the time zone.
const FIXED_MTIME = new Date(1980, 0, 1, 0, 0, 0);
const UNIX = 3;
const REGULAR_FILE = 0o100000;

/**
 * A plain ZIP archive (deflate or stored, no ZIP64, so under 4 GiB and 65535 entries), which is what
 * Azure's zip deploy and `func azure functionapp publish` accept; written by fflate (Node has no zip
 * writer and CI machines need not have the `zip` tool). Reproducible: same entries in, same bytes
 * out (fixed timestamps, Unix modes, entries in the order given). A file that deflate does not make
 * smaller is stored as it is.
 */
export function createZip(entries: readonly ZipEntry[]): Buffer {
  if (entries.length > 0xffff) throw new Error('Too many files for a ZIP archive without ZIP64.');
  let total = 0;
  const files: Zippable = {};
  for (const entry of entries) {
    if (Object.hasOwn(files, entry.path)) throw new Error(`Duplicate path in the ZIP archive: ${entry.path}`);
    total += entry.data.length;
    if (total > 0xffffffff) throw new Error('ZIP archive too large without ZIP64.');
    const data = new Uint8Array(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
    const options: ZipAttributes & { level: 0 | 9 } = {
      // zlib (native, fast) only tells whether deflate pays for this file; fflate writes the archive.
      level: deflateRawSync(data).length < data.length ? 9 : 0,
      mtime: FIXED_MTIME,
      os: UNIX,
      // The external attributes' high 16 bits are the Unix st_mode: regular file + permissions.
      attrs: (((entry.mode ?? 0o644) & 0o7777) | REGULAR_FILE) * 0x10000,
    };
    files[entry.path] = [data, options];
  }
  const zip = zipSync(files);
  return Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength);
}
