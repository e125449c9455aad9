import { Console } from 'node:console';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLineWriter } from './line-writer.js';

function capture() {
  const writes: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      writes.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { stream, writes };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('createLineWriter', () => {
  it('writes the lines of one turn in one write, in order, with their newlines', async () => {
    const { stream, writes } = capture();
    const writer = createLineWriter(stream);
    writer.write('one');
    writer.write('two');
    expect(writes).toEqual([]);
    await nextTurn();
    writer.write('three');
    await nextTurn();
    expect(writes).toEqual(['one\ntwo\n', 'three\n']);
  });

  it('flush() writes at once, and a full queue is written without waiting for the turn', async () => {
    const { stream, writes } = capture();
    const writer = createLineWriter(stream, { maxPending: 10 });
    writer.write('a');
    writer.flush();
    expect(writes).toEqual(['a\n']);
    writer.write('0123456789');
    expect(writes).toEqual(['a\n', '0123456789\n']);
    writer.flush();
    await nextTurn();
    expect(writes).toEqual(['a\n', '0123456789\n']);
  });

  it('reuses one buffer over a real socket, also while the reader stalls and writes queue, losing no byte', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dpskit-line-writer-'));
    const received: Buffer[] = [];
    let reader: net.Socket | undefined;
    const server = net.createServer((socket) => {
      reader = socket;
      socket.pause(); // the kernel buffers fill: the writer's chunks get queued, holding its buffer
      socket.on('data', (d: Buffer) => received.push(d));
    });
    const socketPath = path.join(dir, 'sock');
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    const socket = net.connect(socketPath);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    try {
      const writer = createLineWriter(socket, { maxPending: 1000, reuseBuffer: true });
      const expected: string[] = [];
      // Multi-byte characters, lines across the 1000-character mark, and lines longer than the buffer.
      const samples = ['plain', 'é à ü', '中文 日本語', 'emoji 😀 and a pair 🇪🇺', '"quoted" \\ and \t'];
      for (let i = 0; i < 3000; i++) {
        const line =
          i % 500 === 7 ? `${i} ${'long '.repeat(2000)}` : `${i} ${samples[i % samples.length]} ${'x'.repeat(i % 300)}`;
        expected.push(line);
        writer.write(line);
        if (i % 400 === 0) await nextTurn();
      }
      writer.flush();
      expect(socket.writableLength).toBeGreaterThan(0); // some chunks did queue
      const done = new Promise<void>((resolve) => reader!.on('end', resolve));
      socket.end();
      reader!.resume();
      await done;
      expect(Buffer.concat(received).toString('utf8')).toBe(`${expected.join('\n')}\n`);
    } finally {
      socket.destroy();
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('createLineWriter captureStreamWrites', () => {
  it("puts the stream's other writes (console.log) in their place among the queued lines", async () => {
    const { stream, writes } = capture();
    const writer = createLineWriter(stream);
    writer.captureStreamWrites();
    const log = new Console(stream);
    writer.write('one');
    log.log('from console');
    writer.write('two');
    stream.write(Buffer.from('bytes\n'));
    stream.write('latin1 é\n', 'latin1');
    await nextTurn();
    expect(writes).toEqual([
      'one\n',
      'from console\n',
      'two\n',
      'bytes\n',
      Buffer.from('latin1 é\n', 'latin1').toString(),
    ]);
  });

  it("calls a captured write's callback and leaves argument errors to the stream", async () => {
    const { stream } = capture();
    const writer = createLineWriter(stream);
    writer.captureStreamWrites();
    await new Promise((resolve) => stream.write('x\n', resolve));
    await new Promise((resolve) => stream.write('y\n', 'utf8', resolve));
    expect(() => stream.write(42 as unknown as string)).toThrow(/chunk/);
  });
});
