import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * What a server writes to its `--ready-file` once every listener is bound: `ready: true`, its
 * process id, and the details a script needs next (ports, URLs, paths).
 */
export type ReadyInfo = { ready: true; pid: number } & Record<string, unknown>;

/**
 * Writes the ready file atomically (a temporary file renamed into place), so a script that polls
 * for it never reads half a file: the file exists only once it is complete. Returns what it wrote.
 */
export async function writeReadyFile(path: string, details: Record<string, unknown>): Promise<ReadyInfo> {
  const info: ReadyInfo = { ready: true, pid: process.pid, ...details };
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, path);
  return info;
}

/**
 * Removes a ready file: before starting (a file left by an earlier run must not announce this one)
 * and after stopping (a stopped server is not ready).
 */
export async function removeReadyFile(path: string): Promise<void> {
  await rm(path, { force: true });
}
