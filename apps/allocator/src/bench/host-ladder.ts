import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { decodeJson, parseAllocationRequest } from '@dpskit/contracts/allocation';
import { percentile, readBody } from '@dpskit/node-kit';
import { createAllocateHandler } from '../handler/allocate.js';
import { checkFunctionKey, presentedKey } from '../local-host/function-key.js';
import { LocalInvocationContext } from '../local-host/invocation-objects.js';
import { plainResponseParts, toFunctionRequest, writeResponseParts } from '../local-host/node-http.js';
import { FunctionRouter } from '../local-host/router.js';
import { tutorialPolicy } from '../policy/tutorial.js';
import { httpTriggerOptions } from '../registration/http-function.js';
import { firstLine, processCpuTimes, waitForFile } from './processes.js';
import { TOASTER_LOAD_CONNECTIONS, toasterLoad } from './toaster-load.js';

/**
 * `node dist/bench/host-ladder.js [rounds=5] [seconds=3]`: where the local host's CPU per request goes,
 * bottom up. Starts the bench's bare node:http server and then servers that each add one piece of
 * what the host does per request, cumulatively, plus the CLI itself at warn and at info (JSON lines to
 * a file, as the bench runs it); loads each with autocannon (50 connections, the toaster request) in
 * interleaved rounds, the order alternating, and prints each one's median CPU time per request
 * (user + system, from /proc) beside the step before it. On a 2-core machine a slower server also pays
 * more kernel time per request (its client sleeps between answers and is woken for each), so a step's
 * figure is its own work and that feedback. The steps use the host's own modules; the parts of
 * server.ts that are not exported (the URL from the Host header, the promise reaction) are written out
 * the same way here.
 */

const STEP_ENV = 'DPSKIT_LADDER_STEP';
const KEY = 'bench-function-key-0123456789';
const ANSWER = JSON.stringify({ iotHubHostName: 'contoso-toasters-hub-1098.azure-devices.net' });
const JSON_TYPE = 'application/json; charset=utf-8';

const STEPS = [
  ['bare', 'bare node:http (the bench ceiling: data/end events, writeHead + end, chunked)'],
  ['body', "+ node-kit readBody in an async handler, one promise reaction (the host's way)"],
  ['length', "+ the host's way of answering (writeResponseParts: content-length, ended with the turn's answers)"],
  ['route', '+ URL from the Host header, router match, function key check'],
  ['objects', '+ HttpRequest/InvocationContext objects, invocation id, plain answer parts'],
  ['validate', "+ the handler's decodeJson and zod request validation"],
  ['handler', '+ the whole allocate handler (tutorial policy, log calls dropped as at warn)'],
] as const;
type Step = (typeof STEPS)[number][0];

// ---- one step as a server (this file run with DPSKIT_LADDER_STEP) ----

function serveStep(step: Step): void {
  const level = STEPS.findIndex(([name]) => name === step);
  const trigger = { name: 'allocate', route: 'allocate', methods: ['POST' as const], authLevel: 'function' as const };
  const router = new FunctionRouter('api', [{ trigger, entry: trigger }]);
  const allocate = createAllocateHandler(tutorialPolicy);
  const validating = async (request: HttpRequest): Promise<HttpResponseInit> => {
    const text = await request.text();
    const decoded = decodeJson(text);
    if (!decoded.ok || !parseAllocationRequest(decoded.value).ok) throw new Error('invalid request');
    return { status: 200, headers: { 'content-type': JSON_TYPE }, body: ANSWER };
  };
  const trivial = async (request: HttpRequest): Promise<HttpResponseInit> => {
    JSON.parse(await request.text());
    return { status: 200, headers: { 'content-type': JSON_TYPE }, body: ANSWER };
  };
  const handler = level >= 6 ? allocate : level >= 5 ? validating : trivial;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let url: URL | undefined;
    let params: Record<string, string> = {};
    if (level >= 3) {
      url = new URL(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`);
      const match = router.match((req.method ?? 'GET').toUpperCase(), url.pathname);
      if (match.kind !== 'found') throw new Error('no route');
      params = match.params;
      const key = req.headers['x-functions-key'];
      const check = checkFunctionKey(
        'function',
        presentedKey(Array.isArray(key) ? key[0] : key, url.searchParams),
        KEY,
      );
      if (!check.ok) throw new Error('wrong key');
    }
    const body = await readBody(req, 1024 * 1024);
    if (level < 4) {
      JSON.parse(body.toString('utf8'));
      if (level < 2) {
        res.writeHead(200, { 'content-type': JSON_TYPE });
        res.end(ANSWER);
      } else {
        writeResponseParts(
          res,
          { status: 200, headers: [['content-type', JSON_TYPE]], cookies: [], body: ANSWER },
          'POST',
        );
      }
      return;
    }
    const request = toFunctionRequest(req, url!, body, params);
    const context = new LocalInvocationContext({
      invocationId: randomUUID(),
      functionName: trigger.name,
      logHandler: () => {},
      options: httpTriggerOptions(trigger),
    });
    const result = await handler(request, context);
    const parts = plainResponseParts(result);
    if (!parts) throw new Error('not a plain answer');
    writeResponseParts(res, parts, 'POST');
  };

  const server = http.createServer((req, res) => {
    if (level === 0) {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        JSON.parse(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(200, { 'content-type': JSON_TYPE });
        res.end(ANSWER);
      });
      return;
    }
    const started = performance.now();
    handle(req, res).then(
      () => Math.round((performance.now() - started) * 10) / 10,
      (err: unknown) => {
        res.writeHead(500);
        res.end(String(err));
      },
    );
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

// ---- the driver ----

interface Target {
  name: string;
  label: string;
  url: string;
  process: ChildProcess;
}

async function drive(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 5);
  const seconds = Number(process.argv[3] ?? 3);
  const self = fileURLToPath(import.meta.url);
  const cli = path.join(path.dirname(self), '..', 'local-host', 'cli.js');
  const work = mkdtempSync(path.join(tmpdir(), 'dpskit-allocator-ladder-'));

  const startStep = async (name: Step, label: string): Promise<Target> => {
    const child = spawn(process.execPath, [self], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, [STEP_ENV]: name },
    });
    const { port } = JSON.parse(await firstLine(child)) as { port: number };
    return { name, label, url: `http://127.0.0.1:${port}/api/allocate?code=${KEY}`, process: child };
  };
  const startCli = async (name: string, label: string, extra: string[]): Promise<Target> => {
    const readyFile = path.join(work, `${name}.ready.json`);
    const child = spawn(
      process.execPath,
      [cli, '--port', '0', '--host', '127.0.0.1', '--json', '--ready-file', readyFile, ...extra],
      {
        stdio: ['ignore', openSync(path.join(work, `${name}.log`), 'w'), 'inherit'],
        env: { ...process.env, ALLOCATOR_FUNCTION_KEY: KEY },
      },
    );
    const { port } = JSON.parse(await waitForFile(readyFile, child)) as { port: number };
    return { name, label, url: `http://127.0.0.1:${port}/api/allocate?code=${KEY}`, process: child };
  };
  const load = async (url: string, duration: number): Promise<number> =>
    (await toasterLoad(url, duration)).requests.total;

  const targets: Target[] = [];
  const figures = new Map<string, Array<{ user: number; system: number; rps: number }>>();
  const loads = [loadavg()[0]!];
  try {
    for (const [name, label] of STEPS) targets.push(await startStep(name, label));
    targets.push(await startCli('cli-warn', 'the CLI, --log-level warn', ['--log-level', 'warn']));
    targets.push(await startCli('cli-info', 'the CLI at info (its normal logging, JSON lines to a file)', []));
    for (const target of targets) {
      await load(target.url, 1); // warm-up: JIT, connection pools
      figures.set(target.name, []);
    }
    for (let round = 0; round < rounds; round++) {
      for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
        const { userMs: user0, systemMs: system0 } = processCpuTimes(target.process.pid);
        const requests = await load(target.url, seconds);
        const { userMs: user1, systemMs: system1 } = processCpuTimes(target.process.pid);
        figures.get(target.name)!.push({
          user: ((user1 - user0) * 1000) / requests,
          system: ((system1 - system0) * 1000) / requests,
          rps: requests / seconds,
        });
      }
      loads.push(loadavg()[0]!);
    }
  } finally {
    for (const target of targets) target.process.kill('SIGTERM');
    rmSync(work, { recursive: true, force: true });
  }

  const median = (values: number[]): number =>
    percentile(
      [...values].sort((a, b) => a - b),
      50,
    );
  const lines = [
    `allocator host ladder: autocannon -c ${TOASTER_LOAD_CONNECTIONS}, ${seconds} s a round, median of ${rounds} interleaved rounds; node ${process.version}; load average (1 min) ${loads.map((l) => l.toFixed(1)).join(' ')}`,
    'CPU µs per request (user + system; in brackets the change from the line before), requests/s:',
  ];
  let previous: number | undefined;
  let bare = 0;
  for (const target of targets) {
    const list = figures.get(target.name)!;
    const cpu = median(list.map((f) => f.user + f.system));
    if (previous === undefined) bare = cpu;
    const delta = previous === undefined ? '' : `(${cpu >= previous ? '+' : ''}${(cpu - previous).toFixed(1)})`;
    const user = median(list.map((f) => f.user)).toFixed(1);
    const system = median(list.map((f) => f.system)).toFixed(1);
    const rps = median(list.map((f) => f.rps)).toFixed(0);
    lines.push(
      `${target.name.padEnd(9)} ${cpu.toFixed(1).padStart(5)} ${delta.padEnd(7)} user ${user.padStart(4)} sys ${system.padStart(4)}  ${(cpu / bare).toFixed(2)}x bare  ${rps.padStart(6)} req/s  ${target.label}`,
    );
    previous = cpu;
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

const step = process.env[STEP_ENV];
if (step !== undefined) {
  if (!STEPS.some(([name]) => name === step)) throw new Error(`${STEP_ENV}: unknown step ${step}`);
  serveStep(step as Step);
} else {
  await drive();
}
