import { createWriteStream } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';

/**
 * Unpacks a zip into `target` as Azure's zip deploy does (files with their Unix permission bits),
 * refusing entries that would land outside `target`. Returns the number of files.
 */
export async function extractZip(zipFile: string, target: string): Promise<number> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(zipFile, { lazyEntries: true }, (err, z) => (err ? reject(err) : resolve(z))),
  );
  let files = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('error', reject);
      zip.on('end', () => resolve());
      zip.on('entry', (entry: yauzl.Entry) => {
        const destination = path.resolve(target, entry.fileName);
        if (!destination.startsWith(path.resolve(target) + path.sep)) {
          reject(new Error(`zip entry outside the target folder: ${entry.fileName}`));
          return;
        }
        if (entry.fileName.endsWith('/')) {
          mkdir(destination, { recursive: true }).then(() => zip.readEntry(), reject);
          return;
        }
        (async () => {
          await mkdir(path.dirname(destination), { recursive: true });
          await pipeline(await zip.openReadStreamPromise(entry), createWriteStream(destination));
          const mode = (entry.externalFileAttributes >>> 16) & 0o7777;
          if (mode) await chmod(destination, mode);
          files++;
        })().then(() => zip.readEntry(), reject);
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
  return files;
}
