import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Compiles a tsconfig into `outDir` with the workspace's TypeScript. Used to build into a fresh
 * folder instead of the package's own `dist`, which other processes (turbo tasks, other test
 * files) may be reading at the same time.
 */
export async function compileTypeScript(project: string, outDir: string): Promise<void> {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    await run(process.execPath, [tsc, '-p', project, '--outDir', outDir], { maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`TypeScript compilation of ${project} failed:\n${stdout ?? ''}${stderr ?? ''}`);
  }
}
