import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The line writer on a real process's stdout, a pipe to this test, which stops reading for a while:
// the pipe fills, and the lines the writer has not written yet must not be lost however the process
// ends. The child runs the built package, as a CLI does.
const DIST = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
const LINES = 20_000;
const PAD = 'x'.repeat(100);
const line = (i: number) => `line ${i} ${PAD}`;

/** A child that logs LINES lines (~2.2 MB, far more than a pipe holds) through the writer, then ends as `how` says. */
function child(how: 'exit' | 'throw' | 'return'): ChildProcess {
  const script = `
import { createLineWriter } from ${JSON.stringify(DIST)};
process.stdout.on('error', (err) => process.stderr.write('stdout error ' + err.code + '\\n'));
const out = createLineWriter(process.stdout);
process.on('exit', () => out.flush());
for (let i = 0; i < ${LINES}; i++) out.write('line ' + i + ' ${PAD}');
${how === 'exit' ? 'process.exit(3);' : how === 'throw' ? "throw new Error('deliberate');" : ''}
`;
  return spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Stops reading `stream` (the pipe fills and the child's writes wait) until `resume`; `all` is
 * everything it gives to its end. The listener comes first: Node resumes a child's stdout that has
 * none when the child exits, dropping what it reads.
 */
function stalled(stream: NodeJS.ReadableStream): { resume(): void; all: Promise<string> } {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  stream.pause();
  const all = once(stream, 'end').then(() => Buffer.concat(chunks).toString('utf8'));
  return { resume: () => stream.resume(), all };
}

const expected = `${Array.from({ length: LINES }, (_, i) => line(i)).join('\n')}\n`;

describe('the line writer on a pipe whose reader stalls', () => {
  for (const how of ['exit', 'throw', 'return'] as const) {
    it(`loses no line when the process ends by ${how === 'return' ? 'running out of work' : how === 'exit' ? 'process.exit()' : 'an uncaught exception'}`, async () => {
      const proc = child(how);
      try {
        let stderr = '';
        proc.stderr?.on('data', (d: Buffer) => {
          stderr += d.toString();
        });
        // Nothing read for a second: the child writes what the pipe holds, then waits for room
        // (and, ending, its 'exit' handler waits).
        const reader = stalled(proc.stdout!);
        const closed = once(proc, 'close');
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        reader.resume();
        const [out, [code]] = await Promise.all([reader.all, closed]);
        expect(code).toBe(how === 'exit' ? 3 : how === 'throw' ? 1 : 0);
        if (how === 'throw') expect(stderr).toContain('deliberate');
        expect(out.length).toBe(expected.length);
        expect(out === expected).toBe(true);
      } finally {
        proc.kill('SIGKILL');
      }
    });
  }

  it('does not keep the process from ending when the reader never reads, and hands EPIPE to the stream', async () => {
    const proc = child('exit');
    try {
      let stderr = '';
      proc.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const reader = stalled(proc.stdout!);
      // The writer waits for room at most FINISH_WAIT_MS (10 s), then the process ends.
      const [code] = await once(proc, 'exit');
      expect(code).toBe(3);
      // What was written is the start of the output, up to where the pipe filled.
      reader.resume();
      const out = await reader.all;
      expect(out.length).toBeGreaterThan(0);
      expect(out.length).toBeLessThan(expected.length);
      expect(expected.startsWith(out)).toBe(true);
      expect(stderr).toBe('');
    } finally {
      proc.kill('SIGKILL');
    }

    const gone = child('return');
    try {
      let stderr = '';
      gone.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      gone.stdout?.destroy(); // the reader is gone: writes fail with EPIPE
      const [code] = await once(gone, 'close');
      expect(code).toBe(0);
      expect(stderr).toBe('stdout error EPIPE\n');
    } finally {
      gone.kill('SIGKILL');
    }
  });
});
