import { describe, expect, it } from 'vitest';
import { run, runOk } from './run.js';

describe('run', () => {
  it('collects the output and exit code of a command', async () => {
    const result = await run(process.execPath, [
      '-e',
      'process.stdout.write("out"); process.stderr.write("err"); process.exit(3)',
    ]);
    expect(result).toEqual({ code: 3, signal: null, stdout: 'out', stderr: 'err' });
  });

  it('passes its input on stdin', async () => {
    const result = await runOk(process.execPath, ['-e', 'process.stdin.pipe(process.stdout)'], { input: 'hello' });
    expect(result.stdout).toBe('hello');
  });

  it('answers a command that exits without reading a large input with its exit code (EPIPE is not an error)', async () => {
    // 4 MiB is far more than a pipe buffers, so the write is still under way when the child exits.
    const result = await run(process.execPath, ['-e', 'process.exit(5)'], { input: 'x'.repeat(4 * 1024 * 1024) });
    expect(result.code).toBe(5);
  });

  it('rejects with the command, its exit and its output when runOk sees a failure', async () => {
    await expect(runOk(process.execPath, ['-e', 'console.log("why"); process.exit(2)'])).rejects.toThrow(
      /exited 2[\s\S]*why/,
    );
  });
});
