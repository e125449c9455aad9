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
});
