import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TOASTER_REQUEST_2021_10_01 as TOASTER_BODY } from '@dpskit/contracts/fixtures';
import { percentile, summarizeLatencies } from '@dpskit/node-kit';
import { firstLine, processCpuTimes, waitForFile } from './processes.js';
import { loadError, TOASTER_LOAD_CONNECTIONS, toasterLoad } from './toaster-load.js';

/**
 * `pnpm --filter @dpskit/allocator bench`: the local host against bare node:http, measured in the
 * same run (only ratios mean anything on a shared machine). Each server runs as its own process:
 *   - ceiling: dist/bench/bare-http-server.js (read body, JSON.parse, answer JSON);
 *   - the allocator CLI as users run it (`dpskit-allocator start`, the tutorial app, the function
 *     key checked, JSON log lines to a file: its normal logging on);
 *   - the same with --log-level warn (what the per-request log lines cost).
 * Beside the throughput, each server's CPU time per request (from /proc): on a loaded machine the
 * throughput of a round swings with what else runs, its CPU per request much less.
 * Throughput: autocannon, 50 connections, the tutorial's toaster request, rounds interleaved with the
 * order alternating; each figure is the median of its rounds, latency percentiles nearest-rank
 * (node-kit) over every response of a round. Cold start: spawn to the first 200 answer, polling
 * every millisecond, the bare server and the CLI alternately.
 * Usage: node dist/bench/allocate.js [rounds=5] [seconds=3] [coldRounds=7] (coldRounds 0: no cold start)
 */
/** A positional argument as a whole number of at least `min`; exits with a message naming it otherwise. */
function wholeArgument(index: number, name: string, fallback: number, min: number): number {
  const text = process.argv[index];
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() !== '' && Number.isInteger(n) && n >= min) return n;
  process.stderr.write(`allocator bench: ${name} must be a whole number >= ${min}, not "${text}"\n`);
  process.exit(2);
}
const rounds = wholeArgument(2, 'rounds', 5, 1);
const seconds = wholeArgument(3, 'seconds', 3, 1);
const coldRounds = wholeArgument(4, 'coldRounds', 7, 0);
const KEY = 'bench-function-key-0123456789';
const DIST = fileURLToPath(new URL('../', import.meta.url));
const BARE = path.join(DIST, 'bench', 'bare-http-server.js');
// The bin, as `dpskit-allocator start` runs it (package.json "bin").
const CLI = path.join(DIST, 'cli.cjs');
const work = mkdtempSync(path.join(tmpdir(), 'dpskit-allocator-bench-'));

interface Target {
  name: string;
  url: string;
  process: ChildProcess;
}

interface Round {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  /** The server process's CPU time per answered request (µs), from /proc: NaN where there is none. */
  cpuUsPerRequest: number;
}

/** A process's CPU time (user + system, ms); NaN where /proc has none. */
function processCpuMs(pid: number | undefined): number {
  try {
    const { userMs, systemMs } = processCpuTimes(pid);
    return userMs + systemMs;
  } catch {
    return Number.NaN;
  }
}

async function load(url: string, duration: number, pid?: number): Promise<Round> {
  const cpuBefore = processCpuMs(pid);
  const round = await loadRound(url, duration);
  round.cpuUsPerRequest = ((processCpuMs(pid) - cpuBefore) * 1000) / (round.requestsPerSecond * duration);
  return round;
}

async function loadRound(url: string, duration: number): Promise<Round> {
  const latencies: number[] = [];
  let ok = 0;
  const result = await toasterLoad(url, duration, (status, ms) => {
    if (status === 200) {
      ok += 1;
      latencies.push(ms);
    }
  });
  if (ok === 0) throw loadError(url, result);
  const summary = summarizeLatencies(latencies)!;
  return { requestsPerSecond: ok / result.duration, p50: summary.p50, p99: summary.p99, cpuUsPerRequest: Number.NaN };
}

async function startBare(): Promise<Target> {
  const child = spawn(process.execPath, [BARE], { stdio: ['ignore', 'pipe', 'inherit'] });
  const { port } = JSON.parse(await firstLine(child)) as { port: number };
  return { name: 'bare node:http', url: `http://127.0.0.1:${port}/`, process: child };
}

async function startAllocator(name: string, extra: string[]): Promise<Target> {
  const readyFile = path.join(work, `${name.replace(/\W+/g, '-')}.ready.json`);
  const log = path.join(work, `${name.replace(/\W+/g, '-')}.log`);
  const child = spawn(
    process.execPath,
    [CLI, '--port', '0', '--host', '127.0.0.1', '--json', '--ready-file', readyFile, ...extra],
    { stdio: ['ignore', openSync(log, 'w'), 'inherit'], env: { ...process.env, ALLOCATOR_FUNCTION_KEY: KEY } },
  );
  const { port } = JSON.parse(await waitForFile(readyFile, child)) as { port: number };
  return { name, url: `http://127.0.0.1:${port}/api/allocate?code=${KEY}`, process: child };
}

function stop(target: Target): Promise<void> {
  return new Promise((resolve) => {
    if (target.process.exitCode !== null) return resolve();
    target.process.on('exit', () => resolve());
    target.process.kill('SIGTERM');
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function postOnce(port: number, urlPath: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: 'POST', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(TOASTER_BODY);
  });
}

/**
 * The environment both cold starts run in: this process's, without NODE_EXTRA_CA_CERTS. Node parses
 * that bundle at every start (about 100 ms of CPU for Debian's ca-certificates.crt on the 2-core
 * machine, against some 35 ms for the rest of a bare start), so a machine that sets it adds the same
 * cost to the ceiling and to the CLI and pulls the ratio towards 1. Neither needs an extra CA: the
 * webhook is plain HTTP.
 */
const { NODE_EXTRA_CA_CERTS: extraCaCerts, ...coldEnv } = process.env;

/** Milliseconds from spawn to the first 200 answer. */
async function coldStart(args: (port: number) => string[], urlPath: string): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, args(port), {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...coldEnv, PORT: String(port), ALLOCATOR_FUNCTION_KEY: KEY },
  });
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${args(port).join(' ')} exited with ${child.exitCode}`);
      if ((await postOnce(port, urlPath)) === 200) return performance.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  } finally {
    await stop({ name: '', url: '', process: child });
  }
}

// The median is node-kit's nearest-rank 50th percentile, the one definition every dpskit figure uses.
const median = (values: number[]): number =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
const fixed = (value: number, digits: number): string => value.toFixed(digits);

const loadBefore = loadavg();
const targets: Target[] = [];
const results = new Map<string, Round[]>();
const cold = { bare: [] as number[], allocator: [] as number[] };
try {
  targets.push(await startBare());
  targets.push(await startAllocator('allocator host', []));
  targets.push(await startAllocator('allocator host, --log-level warn', ['--log-level', 'warn']));
  for (const target of targets) {
    await load(target.url, 1); // warm-up: JIT, connection pools
    results.set(target.name, []);
  }
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const target of order) results.get(target.name)!.push(await load(target.url, seconds, target.process.pid));
  }
  for (let round = 0; round < coldRounds; round++) {
    const bare = () => coldStart(() => [BARE], '/');
    const allocator = () =>
      coldStart((port) => [CLI, '--port', String(port), '--host', '127.0.0.1', '--json'], `/api/allocate?code=${KEY}`);
    if (round % 2 === 0) {
      cold.bare.push(await bare());
      cold.allocator.push(await allocator());
    } else {
      cold.allocator.push(await allocator());
      cold.bare.push(await bare());
    }
  }
} finally {
  await Promise.all(targets.map(stop));
  rmSync(work, { recursive: true, force: true });
}

const summary = (name: string) => {
  const list = results.get(name)!;
  return {
    rps: median(list.map((r) => r.requestsPerSecond)),
    p50: median(list.map((r) => r.p50)),
    p99: median(list.map((r) => r.p99)),
    cpuUs: median(list.map((r) => r.cpuUsPerRequest)),
  };
};
const ceiling = summary('bare node:http');
const lines = [
  `allocator bench: autocannon -c ${TOASTER_LOAD_CONNECTIONS}, ${seconds} s a round, median of ${rounds} interleaved rounds; ${coldRounds > 0 ? `cold start median of ${coldRounds}` : 'no cold start'}; node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'unknown cpu'}; ${new Date().toISOString()}; load average ${loadBefore.map((l) => fixed(l, 2)).join(' ')} before, ${loadavg()
    .map((l) => fixed(l, 2))
    .join(' ')} after`,
  `ceiling  bare node:http                    ${fixed(ceiling.rps, 0).padStart(6)} req/s   p50 ${fixed(ceiling.p50, 2)} ms   p99 ${fixed(ceiling.p99, 2)} ms   CPU ${fixed(ceiling.cpuUs, 0)} µs/request`,
];
// Each round's own ratio too: on a shared machine their spread says how far the median can be trusted.
const bareRounds = results.get('bare node:http')!;
for (const target of targets.slice(1)) {
  const s = summary(target.name);
  const perRound = results
    .get(target.name)!
    .map((r, i) => r.requestsPerSecond / bareRounds[i]!.requestsPerSecond)
    .sort((a, b) => a - b);
  lines.push(
    `${target.name.padEnd(42)} ${fixed(s.rps, 0).padStart(6)} req/s   p50 ${fixed(s.p50, 2)} ms   p99 ${fixed(s.p99, 2)} ms   ratio ${fixed(s.rps / ceiling.rps, 2)} of the ceiling (rounds ${fixed(perRound[0]!, 2)}-${fixed(perRound.at(-1)!, 2)})${target.name === 'allocator host' ? ' (goal >= 0.70, p99 < 5 ms)' : ''}; CPU ${fixed(s.cpuUs, 0)} µs/request = ${fixed(ceiling.cpuUs / s.cpuUs, 2)} of the ceiling's cost`,
  );
}
if (coldRounds > 0) {
  const coldRatio = median(cold.allocator) / median(cold.bare);
  lines.push(
    `cold start to the first answer: allocator CLI ${fixed(median(cold.allocator), 0)} ms, ceiling bare node:http ${fixed(median(cold.bare), 0)} ms   ratio ${fixed(coldRatio, 2)} (goal <= 1.50)${extraCaCerts === undefined ? '' : '; both started without NODE_EXTRA_CA_CERTS, which this environment sets (Node parses the bundle at every start, the same cost on both sides)'}`,
  );
}
process.stdout.write(`${lines.join('\n')}\n`);
