import { createHmac } from 'node:crypto';
import { readSync, writeSync } from 'node:fs';

// The ceiling of the `keys derive` bench on stdin: the least a program can do for the same work.
// Synchronous 64 KiB reads of stdin, lines split on LF, one HMAC-SHA256 per line, output written in
// 64 KiB pieces. No validation, no trimming, no async iteration, no backpressure (ASCII ids only).
// Usage: node dist/bench/raw-hmac.js <group key> < ids.txt > keys.txt
const key = Buffer.from(process.argv[2] ?? '', 'base64');
const chunk = Buffer.alloc(65_536);
let pending = '';
let out = '';
const derive = (id: string): void => {
  if (id === '') return;
  out += `${id} ${createHmac('sha256', key).update(id, 'utf8').digest('base64')}\n`;
  if (out.length >= 65_536) {
    writeSync(1, out);
    out = '';
  }
};
for (let read = readSync(0, chunk); read > 0; read = readSync(0, chunk)) {
  const text = pending + chunk.toString('latin1', 0, read);
  let start = 0;
  for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
    derive(text.slice(start, end));
    start = end + 1;
  }
  pending = text.slice(start);
}
derive(pending);
writeSync(1, out);
