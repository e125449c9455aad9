import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';

export interface UnzippedEntry {
  path: string;
  data: Buffer;
  mode: number;
  /** 0 stored, 8 deflate. */
  method: number;
}

/**
 * Reads a ZIP archive with yauzl, a reader independent of the writer (fflate): through the central
 * directory as unzip tools do, each entry's size checked by yauzl and its CRC-32 here with zlib's
 * (yauzl leaves CRCs to the caller).
 */
export function readZip(zip: Buffer): Promise<UnzippedEntry[]> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true, decodeStrings: true, strictFileNames: true }, (err, archive) => {
      if (err) {
        reject(err);
        return;
      }
      const entries: UnzippedEntry[] = [];
      archive.on('error', reject);
      archive.on('end', () => resolve(entries));
      archive.on('entry', (entry: yauzl.Entry) => {
        archive.openReadStream(entry, (openErr, stream) => {
          if (openErr) {
            reject(openErr);
            return;
          }
          const chunks: Buffer[] = [];
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.on('error', reject);
          stream.on('end', () => {
            const data = Buffer.concat(chunks);
            if (crc32(data) !== entry.crc32) {
              reject(new Error(`CRC mismatch for ${entry.fileName}`));
              return;
            }
            entries.push({
              path: entry.fileName,
              data,
              mode: (entry.externalFileAttributes >>> 16) & 0o7777,
              method: entry.compressionMethod,
            });
            archive.readEntry();
          });
        });
      });
      archive.readEntry();
    });
  });
}
