import { cpus } from 'node:os';
import { Readable, Writable } from 'node:stream';
import { deriveKeysFromLines } from '../lib/keys.js';

// `pnpm --filter @dpskit/device-sim bench`: throughput of `device-sim keys derive` on stdin-like
// input, in memory (no disk or pipe in the measurement). Usage: node dist/bench/keys-derive.js [count]

const GROUP_KEY = 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';
const count = Number(process.argv[2] ?? 1_000_000);

function* ids(): Generator<string> {
  const batch = 10_000;
  for (let i = 0; i < count; i += batch) {
    let chunk = '';
    for (let j = i; j < Math.min(count, i + batch); j++) chunk += `contoso-toaster-${j}\n`;
    yield chunk;
  }
}

let bytes = 0;
const sink = new Writable({
  write(chunk: Buffer, _encoding, callback) {
    bytes += chunk.length;
    callback();
  },
});

const started = performance.now();
const report = await deriveKeysFromLines(Readable.from(ids()), sink, { groupKey: GROUP_KEY });
const seconds = (performance.now() - started) / 1000;
process.stdout.write(
  `${JSON.stringify({
    bench: 'keys-derive',
    ids: report.derived,
    seconds: Number(seconds.toFixed(2)),
    idsPerSecond: Math.round(report.derived / seconds),
    outputBytes: bytes,
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
  })}\n`,
);
