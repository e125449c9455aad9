// The emulator server's own costs, each against its ceiling measured in the same run, with the
// server in a process of its own (server-process.ts) and a lean raw-MQTT client (lean-mqtt-device.ts,
// the same as packages/e2e's bench) in this one. Run: npm run bench:server (all phases) or npm run bench:memory (idle + memory).
//   cpu     server CPU per registration (fresh TLS connection, CONNECT, SUBSCRIBE, register, poll)
//           against server CPU per bare TLS handshake; goal ≤ 1.5×.
//   idle    RSS per idle connected MQTT device (CONNECT + SUBSCRIBE, then nothing) against RSS per
//           idle bare TLS connection, and the emulator's RSS holding them; goal < 400 MB at 10,000.
//   memory  RSS after --registrations (default 200,000) against RSS after 10,000; goal ≤ 1.2×.
// Options: --only cpu,idle,memory  --registrations N  --idle N  --cpu-registrations N  --rounds R
//          --concurrency C  --profile (the emulator runs under node --cpu-prof; profiles in --profile-dir)
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createDeviceKeyDeriver } from '@dpskit/contracts';
import { bareHandshake, connectTls } from './device-tls.js';
import { connectIdle, type LeanTarget, registerLean, runPool } from './lean-mqtt-device.js';
import type { ServerCpu, ServerMeasure, ServerReady } from './server-process.js';

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'cpu,idle,memory' },
    registrations: { type: 'string', default: '200000' },
    idle: { type: 'string', default: '10000' },
    'cpu-registrations': { type: 'string', default: '1500' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '32' },
    profile: { type: 'boolean', default: false },
    'profile-dir': { type: 'string', default: 'bench-profiles' },
  },
});
const phases = new Set(values.only.split(',').map((p) => p.trim()));
for (const phase of phases) {
  if (!['cpu', 'idle', 'memory'].includes(phase)) throw new Error(`--only: "${phase}" is not cpu, idle or memory`);
}
const number = (name: string, text: string) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a whole number >= 1, not ${text}`);
  return n;
};
const totalRegistrations = number('registrations', values.registrations);
const idleCount = number('idle', values.idle);
const cpuRegistrations = number('cpu-registrations', values['cpu-registrations']);
const rounds = number('rounds', values.rounds);
const concurrency = number('concurrency', values.concurrency);
const FIRST_MARK = 10_000;

const here = dirname(fileURLToPath(import.meta.url));

interface Server {
  ready: ServerReady;
  target: LeanTarget;
  /** RSS and heap after two forced full GCs (idle and memory phases). */
  measure(): Promise<ServerMeasure>;
  /** The process's CPU so far, with nothing forced (cpu phase). */
  cpu(): Promise<ServerCpu>;
  stop(): Promise<void>;
}

async function startServer(kind: 'emulator' | 'bare', stateDir: string): Promise<Server> {
  const execArgv = ['--expose-gc'];
  if (values.profile && kind === 'emulator') execArgv.push('--cpu-prof', `--cpu-prof-dir=${values['profile-dir']}`);
  const child: ChildProcess = fork(join(here, 'server-process.js'), [kind, stateDir], {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = <T>(cmd: string) =>
    new Promise<T>((resolve, reject) => {
      const onMessage = (message: { cmd: string }) => {
        if (message.cmd !== cmd) return;
        child.off('exit', onExit);
        child.off('message', onMessage);
        resolve(message as T);
      };
      const onExit = (code: number | null) => reject(new Error(`${kind} server exited (${code})`));
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  const ready = await next<ServerReady>('ready');
  return {
    ready,
    target: {
      host: '127.0.0.1',
      port: ready.port,
      idScope: ready.idScope,
      secureContext: tls.createSecureContext({ ca: ready.caCertPem }),
    },
    measure: () => {
      const measured = next<ServerMeasure>('measured');
      child.send({ cmd: 'measure' });
      return measured;
    },
    cpu: () => {
      const measured = next<ServerCpu>('cpu');
      child.send({ cmd: 'cpu' });
      return measured;
    },
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.send({ cmd: 'stop' });
      }),
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] as number;
};
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

async function cpuPhase(root: string): Promise<void> {
  console.log(
    `\n[cpu] server CPU per registration vs per bare TLS handshake; ${rounds} interleaved rounds of ${cpuRegistrations}`,
  );
  const bare = await startServer('bare', join(root, 'cpu-bare'));
  const emulator = await startServer('emulator', join(root, 'cpu-emulator'));
  const derive = createDeviceKeyDeriver(emulator.ready.groupKey);
  let serial = 0;
  const register = async () => {
    const registrationId = `cpu-${serial++}`;
    const result = await registerLean(emulator.target, { registrationId, key: derive(registrationId) });
    if (result.status !== 200 || result.body.status !== 'assigned')
      throw new Error(`${registrationId}: ${result.status}`);
  };
  try {
    // Warm-up: JIT, SQLite pages, TLS caches on both. A round's worth: with a few hundred the first
    // round still compiled much of the path (--trace-opt: ~560 TurboFan jobs in 300 + 3,000
    // registrations, ~100 in the next 3,000), and so did the bare server's.
    await runPool(Math.max(200, cpuRegistrations), concurrency, () => bareHandshake(bare.target));
    await runPool(Math.max(200, cpuRegistrations), concurrency, register);
    const bareMs: number[] = [];
    const emulatorMs: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      let before = await bare.cpu();
      await runPool(cpuRegistrations, concurrency, () => bareHandshake(bare.target));
      let after = await bare.cpu();
      bareMs.push((after.cpuMicros - before.cpuMicros) / 1000 / cpuRegistrations);
      before = await emulator.cpu();
      await runPool(cpuRegistrations, concurrency, register);
      after = await emulator.cpu();
      emulatorMs.push((after.cpuMicros - before.cpuMicros) / 1000 / cpuRegistrations);
      console.log(
        `  round ${round}: bare handshake ${bareMs.at(-1)?.toFixed(3)} ms CPU, registration ${emulatorMs.at(-1)?.toFixed(3)} ms CPU, load ${load()}`,
      );
    }
    const ratio = median(emulatorMs) / median(bareMs);
    console.log(
      `  median: registration ${median(emulatorMs).toFixed(3)} ms CPU / bare handshake ${median(bareMs).toFixed(3)} ms = ${ratio.toFixed(2)}× (goal ≤ 1.50×) ${ratio <= 1.5 ? 'ok' : 'OVER'}`,
    );
  } finally {
    await bare.stop();
    await emulator.stop();
  }
}

async function holdIdle(server: Server, count: number, open: (i: number) => Promise<tls.TLSSocket>) {
  const sockets: tls.TLSSocket[] = [];
  const before = await server.measure();
  await runPool(count, 100, async (i) => {
    sockets.push(await open(i));
  });
  // Let the last handshakes' buffers go before measuring.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const after = await server.measure();
  for (const socket of sockets) socket.destroy();
  return { before, after, perConnection: (after.rss - before.rss) / count };
}

async function idlePhase(root: string): Promise<void> {
  console.log(`\n[idle] ${idleCount} idle connections held: RSS per connection, emulator vs bare TLS`);
  const bare = await startServer('bare', join(root, 'idle-bare'));
  const bareHeld = await holdIdle(
    bare,
    idleCount,
    (_i) =>
      new Promise((resolve, reject) => {
        const socket = connectTls(bare.target);
        socket.once('secureConnect', () => resolve(socket));
        socket.on('error', reject);
      }),
  );
  await bare.stop();
  const emulator = await startServer('emulator', join(root, 'idle-emulator'));
  const derive = createDeviceKeyDeriver(emulator.ready.groupKey);
  const held = await holdIdle(emulator, idleCount, (i) => {
    const registrationId = `idle-${i}`;
    return connectIdle(emulator.target, { registrationId, key: derive(registrationId) });
  });
  await emulator.stop();
  const ratio = held.perConnection / bareHeld.perConnection;
  console.log(
    `  bare TLS: ${mb(bareHeld.before.rss)} → ${mb(bareHeld.after.rss)} MB, +${(bareHeld.perConnection / 1024).toFixed(1)} KB/connection`,
  );
  console.log(
    `  emulator: ${mb(held.before.rss)} → ${mb(held.after.rss)} MB, +${(held.perConnection / 1024).toFixed(1)} KB/connection (${ratio.toFixed(2)}× bare), heap ${mb(held.after.heapUsed)} MB`,
  );
  console.log(
    `  emulator RSS with ${idleCount} idle devices: ${mb(held.after.rss)} MB (goal < 400 MB at 10,000) ${held.after.rss < 400 * 1024 * 1024 ? 'ok' : 'OVER'}; load ${load()}`,
  );
}

async function memoryPhase(root: string): Promise<void> {
  console.log(
    `\n[memory] RSS after ${FIRST_MARK} registrations vs after ${totalRegistrations} (concurrency ${concurrency})`,
  );
  const emulator = await startServer('emulator', join(root, 'memory'));
  const derive = createDeviceKeyDeriver(emulator.ready.groupKey);
  const marks = [FIRST_MARK, 50_000, 100_000, 150_000, totalRegistrations].filter(
    (mark, i, all) => mark <= totalRegistrations && all.indexOf(mark) === i,
  );
  let done = 0;
  let first: ServerMeasure | undefined;
  const started = performance.now();
  try {
    for (const mark of marks) {
      const from = done;
      await runPool(mark - from, concurrency, async (i) => {
        const registrationId = `mem-${from + i}`;
        const result = await registerLean(emulator.target, { registrationId, key: derive(registrationId) });
        if (result.status !== 200) throw new Error(`${registrationId}: ${result.status}`);
      });
      done = mark;
      const measured = await emulator.measure();
      first ??= measured;
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `  after ${String(mark).padStart(7)}: RSS ${mb(measured.rss).padStart(6)} MB, heap ${mb(measured.heapUsed).padStart(6)} MB, ` +
          `${(measured.rss / first.rss).toFixed(2)}× the ${FIRST_MARK} mark; ${(done / seconds).toFixed(0)} reg/s overall; load ${load()}`,
      );
    }
    const last = await emulator.measure();
    if (first && totalRegistrations > FIRST_MARK) {
      const ratio = last.rss / first.rss;
      console.log(
        `  RSS ${totalRegistrations} / ${FIRST_MARK}: ${ratio.toFixed(2)}× (goal ≤ 1.20×) ${ratio <= 1.2 ? 'ok' : 'OVER'}`,
      );
    }
  } finally {
    await emulator.stop();
  }
}

async function main(): Promise<void> {
  const cpu = cpus();
  console.log('dpskit emulator server costs (bench:server)');
  console.log(
    `machine: ${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}; load ${load()}`,
  );
  console.log(
    'method: the server in its own process (CPU as it ran, RSS after two full GCs); a lean raw-MQTT client (mqtt-packet on TLS, one SecureContext) in this one; hashed symmetric-key group, retry-after 0',
  );
  const root = mkdtempSync(join(tmpdir(), 'dpskit-bench-server-'));
  try {
    if (phases.has('cpu')) await cpuPhase(root);
    if (phases.has('idle')) await idlePhase(root);
    if (phases.has('memory')) await memoryPhase(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
