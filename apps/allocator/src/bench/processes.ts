import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

// What the allocator's benches (allocate.ts, host-ladder.ts) do with the server processes they start.

/** Resolves with the first stdout line of a child (the bench servers print {"port":N} there). */
export function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      const end = text.indexOf('\n');
      if (end !== -1) resolve(text.slice(0, end));
    });
    child.on('exit', (code) => reject(new Error(`exited with ${code} before printing`)));
  });
}

/** Resolves with a file's text once it exists (a ready file); rejects if the child exits first. */
export async function waitForFile(file: string, child: ChildProcess): Promise<string> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${file}: the process exited with ${child.exitCode}`);
    try {
      return readFileSync(file, 'utf8');
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** A process's CPU time, user and system (ms), from /proc (Linux, USER_HZ 100); throws elsewhere. */
export function processCpuTimes(pid: number | undefined): { userMs: number; systemMs: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { userMs: Number(fields[11]) * 10, systemMs: Number(fields[12]) * 10 };
}
