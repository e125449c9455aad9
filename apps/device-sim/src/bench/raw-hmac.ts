import { createHmac } from 'node:crypto';
import { readFileSync, writeSync } from 'node:fs';

// The ceiling of the `keys derive` bench on stdin: the least a program can do for the same work.
// Reads all of stdin at once, one HMAC-SHA256 per line, output written in 64 KiB pieces (one huge
// string would cost more than the writes). No validation, no streaming, no backpressure.
// Usage: node dist/bench/raw-hmac.js <group key> < ids.txt > keys.txt
const key = Buffer.from(process.argv[2] ?? '', 'base64');
const ids = readFileSync(0, 'utf8').split('\n');
let out = '';
for (const id of ids) {
  if (id === '') continue;
  out += `${id} ${createHmac('sha256', key).update(id, 'utf8').digest('base64')}\n`;
  if (out.length >= 65_536) {
    writeSync(1, out);
    out = '';
  }
}
writeSync(1, out);
