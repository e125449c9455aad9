import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { percentile } from '@dpskit/node-kit';
import { deriveKeysFromLines } from '../lib/keys.js';

// `pnpm --filter @dpskit/device-sim bench`: `device-sim keys derive` against its ceiling, a raw
// HMAC-SHA256 loop over the same ids, measured in the same run. Two pairs, in interleaved rounds
// (order alternating), each pair run back to back:
//   library: deriveKeysFromLines on an in-memory stream   vs  a bare loop over the id array
//   stdin:   the built CLI, ids piped from a file on stdin  vs  dist/bench/raw-hmac.js on the same stdin
// Each side is timed in CPU time (user + system of its process; children report theirs through
// report-cpu.js), not wall time: on a shared machine, wall time counts whatever else held the cores.
// The ratio is the median of the rounds' own ratios (each side against its ceiling measured next to
// it): a paired ratio moves less with drifting load than a ratio of two separate medians; the
// spread of the rounds' ratios is printed beside it, and the wall-time ratio for comparison.
// Only the ratios mean anything on a shared machine. Usage: node dist/bench/keys-derive.js [count] [rounds]

const GROUP_KEY = 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';
const count = Number(process.argv[2] ?? 500_000);
const rounds = Number(process.argv[3] ?? 9);
const DIST = fileURLToPath(new URL('../', import.meta.url));

const ids = Array.from({ length: count }, (_, i) => `contoso-toaster-${i}`);
const idText = `${ids.join('\n')}\n`;
const work = mkdtempSync(path.join(tmpdir(), 'dpskit-keys-bench-'));
const idFile = path.join(work, 'ids.txt');
writeFileSync(idFile, idText);

interface Timing {
  wallMs: number;
  cpuMs: number;
}

const cpuMsNow = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

function rawLoop(): Timing {
  const key = Buffer.from(GROUP_KEY, 'base64');
  const started = performance.now();
  const cpu = cpuMsNow();
  let bytes = 0;
  for (const id of ids) bytes += createHmac('sha256', key).update(id, 'utf8').digest('base64').length;
  if (bytes === 0) throw new Error('no output');
  return { wallMs: performance.now() - started, cpuMs: cpuMsNow() - cpu };
}

async function library(): Promise<Timing> {
  function* chunks(): Generator<string> {
    for (let i = 0; i < idText.length; i += 65_536) yield idText.slice(i, i + 65_536);
  }
  const sink = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  const started = performance.now();
  const cpu = cpuMsNow();
  const report = await deriveKeysFromLines(Readable.from(chunks()), sink, { groupKey: GROUP_KEY });
  if (report.derived !== count) throw new Error(`derived ${report.derived} of ${count}`);
  return { wallMs: performance.now() - started, cpuMs: cpuMsNow() - cpu };
}

/** A child process reading the id file on stdin and writing to a file: its wall and CPU time. */
function child(args: string[]): Promise<Timing> {
  const stdin = openSync(idFile, 'r');
  const stdout = openSync(path.join(work, 'out.txt'), 'w');
  const cpuFile = path.join(work, 'cpu.txt');
  rmSync(cpuFile, { force: true });
  const started = performance.now();
  const proc = spawn(process.execPath, ['--import', path.join(DIST, 'bench', 'report-cpu.js'), ...args], {
    stdio: [stdin, stdout, 'inherit'],
    env: { ...process.env, DPSKIT_BENCH_CPU_FILE: cpuFile },
  });
  return new Promise((resolve, reject) => {
    proc.on('error', reject);
    proc.on('exit', (code) => {
      const wallMs = performance.now() - started;
      closeSync(stdin);
      closeSync(stdout);
      if (code !== 0) reject(new Error(`${args.join(' ')} exited with ${code}`));
      else resolve({ wallMs, cpuMs: Number(readFileSync(cpuFile, 'utf8')) });
    });
  });
}
const cli = () => child([path.join(DIST, 'cli.js'), 'keys', 'derive', '--group-key', GROUP_KEY]);
const rawChild = () => child([path.join(DIST, 'bench', 'raw-hmac.js'), GROUP_KEY]);

// The median is node-kit's nearest-rank 50th percentile, the one definition every dpskit figure uses.
const median = (values: number[]): number =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

const loadBefore = loadavg();
const times = { raw: [] as Timing[], library: [] as Timing[], rawChild: [] as Timing[], cli: [] as Timing[] };
try {
  await library(); // warm-up
  rawLoop();
  for (let round = 0; round < rounds; round++) {
    // Alternate the order so that a drift in machine load does not favour one side.
    if (round % 2 === 0) {
      times.raw.push(rawLoop());
      times.library.push(await library());
      times.rawChild.push(await rawChild());
      times.cli.push(await cli());
    } else {
      times.cli.push(await cli());
      times.rawChild.push(await rawChild());
      times.library.push(await library());
      times.raw.push(rawLoop());
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const rate = (ms: number): number => Math.round(count / (ms / 1000));
const pairedRatios = (mine: Timing[], ceiling: Timing[], key: keyof Timing): number[] =>
  mine.map((t, i) => ceiling[i]![key] / t[key]).sort((a, b) => a - b);
const line = (what: string, mine: Timing[], ceiling: Timing[], ceilingName: string): string => {
  const ratios = pairedRatios(mine, ceiling, 'cpuMs');
  const wall = pairedRatios(mine, ceiling, 'wallMs');
  const cpuRate = (list: Timing[]) => String(rate(median(list.map((t) => t.cpuMs)))).padStart(8);
  return `keys derive, ${what.padEnd(7)} ${cpuRate(mine)} ids/CPU-s   ceiling (${ceilingName}) ${cpuRate(ceiling)} ids/CPU-s   ratio ${median(ratios).toFixed(2)} (rounds ${ratios[0]!.toFixed(2)}-${ratios.at(-1)!.toFixed(2)}; wall-time ratio ${median(wall).toFixed(2)}; goal >= 0.90)`;
};
process.stdout.write(
  [
    `keys derive bench: ${count} ids, median of ${rounds} interleaved rounds; node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'unknown cpu'}; ${new Date().toISOString()}; load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')} before, ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} after`,
    line('library', times.library, times.raw, 'raw HMAC loop, same process'),
    line('stdin', times.cli, times.rawChild, 'raw HMAC script on the same stdin'),
    '',
  ].join('\n'),
);
