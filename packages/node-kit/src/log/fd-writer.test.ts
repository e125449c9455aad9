import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_KEPT_BYTES } from './fd-writer.js';

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

  it('keeps at most DEFAULT_MAX_KEPT_BYTES for a stalled reader: later lines are dropped whole, and one line says how many once the reader has caught up', async () => {
    // ~6.6 MB of lines while the reader takes nothing: the pipe takes its fill, 4 MiB are kept, the
    // rest are dropped (whole lines). Once the reader has taken what was kept, the writer says how
    // many it dropped; lines written after that arrive, every one.
    const BURST = 60_000;
    const TAIL = 100;
    const script = `
import { createLineWriter } from ${JSON.stringify(DIST)};
const out = createLineWriter(process.stdout);
process.on('exit', () => out.flush());
for (let i = 0; i < ${BURST}; i++) out.write('line ' + i + ' ${PAD}');
// The turn's last chunk goes to the writer at its end: say so after it.
setImmediate(() => process.stderr.write('burst written\\n'));
process.stdin.once('data', () => {
  for (let i = ${BURST}; i < ${BURST + TAIL}; i++) out.write('line ' + i + ' ${PAD}');
  process.stdin.destroy();
});
`;
    const proc = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      const reader = stalled(proc.stdout!);
      let text = '';
      proc.stdout!.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
      });
      let stderr = '';
      await new Promise<void>((resolve) => {
        proc.stderr!.on('data', (d: Buffer) => {
          stderr += d.toString();
          if (stderr.includes('burst written')) resolve();
        });
      });
      // The burst is all with the writer (kept or dropped) before the reader takes a byte.
      reader.resume();
      const lastBurstLine = new RegExp(`^line ${BURST - 1} `, 'm');
      await new Promise<void>((resolve) => {
        const check = () => {
          // The notice; or, with nothing dropped (no cap), the burst's last line.
          if (/dropped/.test(text) || lastBurstLine.test(text)) {
            proc.stdout!.off('data', check);
            resolve();
          }
        };
        proc.stdout!.on('data', check);
        check();
      });
      proc.stdin!.end('more\n');
      const [out, [code]] = await Promise.all([reader.all, once(proc, 'close')]);
      expect(code).toBe(0);
      expect(stderr).toBe('burst written\n');
      const received = out.split('\n');
      expect(received.pop()).toBe(''); // ends with a whole line
      const notices = received.flatMap((l, at) => (/dropped/.test(l) ? [at] : []));
      expect(notices).toHaveLength(1);
      const at = notices[0] as number;
      // Before the notice, the burst's first lines, whole and in order; bounded by what was kept
      // (plus what the pipe took, a megabyte at the very most).
      const before = received.slice(0, at);
      expect(before.length).toBeGreaterThan(0);
      expect(before.every((l, i) => l === line(i))).toBe(true);
      expect(Buffer.byteLength(before.join('\n'))).toBeLessThan(DEFAULT_MAX_KEPT_BYTES + 1024 * 1024);
      // The notice counts the rest of the burst; after it, every later line.
      const dropped = BURST - before.length;
      expect(received[at]).toBe(
        `${dropped} log line(s) dropped: the reader of this output fell more than ${DEFAULT_MAX_KEPT_BYTES} bytes behind`,
      );
      expect(received.slice(at + 1)).toEqual(Array.from({ length: TAIL }, (_, i) => line(BURST + i)));
    } finally {
      proc.kill('SIGKILL');
    }
  });
});
