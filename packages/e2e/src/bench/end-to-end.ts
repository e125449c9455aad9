// End to end at the speed of TLS? Each path's registrations per second against the bare TLS 1.3
// handshake rate measured in the same run (the ceiling: a device cannot register faster than it can
// open its TLS connection), in interleaved rounds, each path's ratio the median of its rounds' own
// ratios (each against the ceiling of its round). Every part runs as its own process, as users run
// them: the emulator (`dps-emulator start`, JSON logs to a file), the tutorial allocator
// (`dpskit-allocator start`, JSON logs to a file), a node:tls server with the emulator's certificate
// (the ceiling's server), and the clients: `device-sim fleet` (the official SDK, over worker threads)
// and lean-clients.js (the emulator's bench: bare handshakes, a lean MQTT device), both spreading their
// devices over the same number of worker threads. Then the scale curve: SDK fleets of growing size
// against the same emulator, its RSS and CPU per registration at each, so that a cost growing with
// the number of devices or records shows; each step after bare handshakes of the same count, so
// that it also gives the SDK's ratio once each process's start and JIT warm-up weigh less. Only ratios mean anything on a shared machine: the load
// average is printed with every round.
// Run: npm run bench (this is part of it), or node packages/e2e/dist/bench/end-to-end.js
//   --devices N (1000) --rounds R (5) --concurrency C (100) --workers W (cores) --scale 1000,10000
//   --fleet-workers F (cores - 1, device-sim's own default): worker threads of the device fleets,
//   `device-sim fleet --workers` and the lean MQTT client's (--workers is the ceiling's handshakes')
//   --fleet-workers-compare F2 (0: off): the hashed SDK and lean paths again with F2 worker threads in
//   the same rounds, printed against the first (registrations/s, client CPU per registration)
//   --emulator-workers E (2): a second emulator, `dps-emulator start --workers E` on a store of its own,
//   gets the hashed SDK and lean paths in the same rounds, printed against the one-process emulator
//   (0 or 1: not run).
// npm run bench:scale: --rounds 0 --scale 1000,10000,100000 (outside CI).
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateSymmetricKey } from '@dpskit/contracts';
import { percentile } from '@dpskit/device-sim';
import { DEVICE_SIM_CLI } from '../harness/device-sim.js';
import { EMULATOR_CLI } from '../harness/emulator-process.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '100' },
    workers: { type: 'string', default: String(availableParallelism()) },
    // device-sim fleet's own default: a core left to the emulator on the same machine (see README).
    'fleet-workers': { type: 'string', default: String(Math.max(1, availableParallelism() - 1)) },
    'fleet-workers-compare': { type: 'string', default: '0' },
    scale: { type: 'string', default: '1000,10000' },
    'emulator-workers': { type: 'string', default: '2' },
  },
});
const devices = Number(values.devices);
const rounds = Number(values.rounds);
const concurrency = Number(values.concurrency);
const workers = Number(values.workers);
const fleetWorkers = Number(values['fleet-workers']);
const fleetWorkersCompare = Number(values['fleet-workers-compare']);
const emulatorWorkers = Number(values['emulator-workers']);
const scaleSteps = values.scale
  .split(',')
  .filter((s) => s.trim() !== '')
  .map(Number);

const GROUP_KEY = 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';
const CUSTOM_KEY = generateSymmetricKey();
const FUNCTION_KEY = 'bench-function-key-0123456789';
const ID_SCOPE = '0ne00BENCH0';
const HERE = dirname(fileURLToPath(import.meta.url));
const HANDSHAKE_SERVER = join(HERE, 'tls-handshake-server.js');
const require = createRequire(import.meta.url);
// The bare handshakes and the lean MQTT device: the emulator's bench clients (bench:server uses the same device).
const LEAN_CLIENTS = join(
  dirname(require.resolve('@dpskit/emulator/package.json')),
  'dist',
  'bench',
  'lean-clients.js',
);
const ALLOCATOR_CLI = join(dirname(require.resolve('@dpskit/allocator/package.json')), 'dist', 'cli.js');
// Preloaded into each client process: writes its CPU time (all its threads) at exit to $DPSKIT_BENCH_CPU_FILE.
const REPORT_CPU = join(dirname(require.resolve('@dpskit/device-sim/package.json')), 'dist', 'bench', 'report-cpu.js');
const work = mkdtempSync(join(tmpdir(), 'dpskit-e2e-bench-'));
const fixed = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const median = (list: number[]) =>
  percentile(
    [...list].sort((a, b) => a - b),
    50,
  );

/**
 * CPU time (ms) and RSS (MB) of a process, from /proc (Linux; clock ticks of 10 ms, Linux's USER_HZ),
 * and its main thread's voluntary context switches: how often its event loop went to sleep and was
 * woken by a packet. A client that sends its packets one at a time (the official SDK: issue #13,
 * stop 34) wakes the server more often per registration, and each wake-up costs the server CPU.
 */
function processStats(pid: number): { cpuMs: number; rssMb: number; wakeups: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuMs = (Number(fields[11]) + Number(fields[12])) * 10;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    const switches = /^voluntary_ctxt_switches:\s+(\d+)$/m.exec(status);
    return {
      cpuMs,
      rssMb: rss ? Number(rss[1]) / 1024 : Number.NaN,
      wakeups: switches ? Number(switches[1]) : Number.NaN,
    };
  } catch {
    return null;
  }
}

/** Spawns `args`, stdout to `logFile` (or piped), resolving once `readyFile` exists (or the first stdout line). */
async function startProcess(
  name: string,
  args: string[],
  ready: { file: string } | { line: true },
  env: NodeJS.ProcessEnv = {},
): Promise<{ child: ChildProcess; ready: string }> {
  const log = openSync(join(work, `${name}.log`), 'w');
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'line' in ready ? 'pipe' : log, log],
    env: { ...process.env, ...env },
  });
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  if ('line' in ready) {
    const line = await new Promise<string>((resolve, reject) => {
      let text = '';
      child.stdout?.on('data', (d: Buffer) => {
        text += d.toString('utf8');
        if (text.includes('\n')) resolve(text.slice(0, text.indexOf('\n')));
      });
      child.on('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
    });
    return { child, ready: line };
  }
  while (!existsSync(ready.file)) {
    if (exited)
      throw new Error(`${name} exited before it was ready: ${readFileSync(join(work, `${name}.log`), 'utf8')}`);
    await sleep(50);
  }
  await sleep(50); // the file is written whole, but give a slow writer a moment
  return { child, ready: readFileSync(ready.file, 'utf8') };
}

let clientRuns = 0;
/** Runs a client process to its end; resolves with its stdout and its CPU time (ms, all its threads). */
function runClient(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ out: string; cpuMs: number }> {
  const cpuFile = join(work, `client-${++clientRuns}.cpu`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', REPORT_CPU, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env, DPSKIT_BENCH_CPU_FILE: cpuFile },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString('utf8');
    });
    child.on('exit', (code) =>
      code === 0 || (code === 1 && out.trim() !== '')
        ? resolve({ out, cpuMs: existsSync(cpuFile) ? Number(readFileSync(cpuFile, 'utf8')) : Number.NaN })
        : reject(new Error(`${args.slice(0, 2).join(' ')} exited ${code}: ${err.slice(0, 2000)}`)),
    );
  });
}

interface Measured {
  completed: number;
  failed: number;
  firstError?: string;
  perSecond: number;
  p50: number;
  p99: number;
  /** CPU of the server process (emulator, or the handshake server) per completed operation. */
  serverCpuMs: number;
  /** The server's RSS after the run. */
  serverRssMb: number;
  /** Voluntary context switches of the server's main thread(s) per completed operation (its wake-ups). */
  serverWakeups: number;
  /** CPU of the client process (all its worker threads) per completed operation. */
  clientCpuMs: number;
  /** CPU of the allocator process per completed operation (the custom paths call it; about 0 for the others). */
  allocatorCpuMs: number;
}

interface Path {
  key: string;
  label: string;
  goal?: number;
  run(round: string, count: number): Promise<Measured>;
}

async function main(): Promise<void> {
  const cpu = cpus();
  console.log('dpskit end-to-end bench: registrations per second against bare TLS 1.3 handshakes, same run');
  console.log(
    `machine: ${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}, ${process.platform}; ${new Date().toISOString()}; load average ${load()}`,
  );
  console.log(
    `method: ${devices} devices a path and round, ${concurrency} in flight; the ceiling's handshakes over ${workers} worker threads, the fleets (device-sim, lean) over ${fleetWorkers}; ` +
      `${rounds} rounds, order alternating; each a fresh TLS connection per device; emulator --retry-after 0 (devices poll at once), ` +
      "its JSON logs (info) and the allocator's to files; ratio = median of the rounds' ratios to the ceiling of the same round.",
  );

  // The allocator (the tutorial's policy: ids containing contoso-toaster go to the first linked hub).
  const allocatorReady = join(work, 'allocator.ready.json');
  const allocator = await startProcess(
    'allocator',
    [ALLOCATOR_CLI, 'start', '--port', '0', '--host', '127.0.0.1', '--json', '--ready-file', allocatorReady],
    { file: allocatorReady },
    { ALLOCATOR_FUNCTION_KEY: FUNCTION_KEY },
  );
  const allocatorInfo = JSON.parse(allocator.ready) as { functions: Array<{ url: string }> };
  const webhookUrl = `${allocatorInfo.functions[0]?.url}?code=${FUNCTION_KEY}`;

  const config = {
    idScope: ID_SCOPE,
    iotHubs: [{ hostName: 'contoso-toasters-hub-1098.azure-devices.net' }, { hostName: 'hub-2.azure-devices.net' }],
    enrollmentGroups: [
      {
        enrollmentGroupId: 'bench-hashed',
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: GROUP_KEY } },
        allocationPolicy: 'hashed',
      },
      {
        enrollmentGroupId: 'bench-custom',
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: CUSTOM_KEY } },
        allocationPolicy: 'custom',
        customAllocationDefinition: { webhookUrl, apiVersion: '2021-10-01' },
      },
    ],
  };
  const configFile = join(work, 'emulator.json');
  writeFileSync(configFile, JSON.stringify(config));
  const emulatorReady = join(work, 'emulator.ready.json');
  const emulatorArgs = (stateDir: string, readyFile: string) => [
    EMULATOR_CLI,
    'start',
    '--config',
    configFile,
    '--state-dir',
    stateDir,
    '--mqtt-port',
    '0',
    '--no-https',
    '--no-amqp',
    '--no-web',
    '--retry-after',
    '0',
    '--log-format',
    'json',
    '--ready-file',
    readyFile,
  ];
  const emulator = await startProcess('emulator', emulatorArgs(join(work, 'state'), emulatorReady), {
    file: emulatorReady,
  });
  const emulatorInfo = JSON.parse(emulator.ready) as { pid: number; mqtt: { port: number }; caCertPath: string };
  const tlsDir = dirname(emulatorInfo.caCertPath);
  const ca = readFileSync(emulatorInfo.caCertPath, 'utf8');
  const handshakeServer = await startProcess(
    'handshake-server',
    [HANDSHAKE_SERVER, join(tlsDir, 'server.pem'), join(tlsDir, 'server.key.pem')],
    { line: true },
  );
  const handshakePort = (JSON.parse(handshakeServer.ready) as { port: number }).port;
  const children = [allocator.child, emulator.child, handshakeServer.child];
  // `dps-emulator start --workers E` on a store of its own, with the first emulator's TLS files
  // (so one CA serves both): its CPU is the primary's and every worker's.
  let clustered: { pids: number[]; port: number } | undefined;
  if (emulatorWorkers > 1) {
    const stateDir = join(work, 'state-workers');
    cpSync(tlsDir, join(stateDir, 'tls'), { recursive: true });
    const readyFile = join(work, 'emulator-workers.ready.json');
    const started = await startProcess(
      'emulator-workers',
      [...emulatorArgs(stateDir, readyFile), '--workers', String(emulatorWorkers)],
      { file: readyFile },
    );
    children.push(started.child);
    const info = JSON.parse(started.ready) as { pid: number; workerPids: number[]; mqtt: { port: number } };
    clustered = { pids: [info.pid, ...info.workerPids], port: info.mqtt.port };
  }
  /** Registrations the emulator holds (each device registers once, under its own id). */
  let registered = 0;

  /** CPU and RSS of the server's processes together (one, or a --workers primary with its workers). */
  const serverStats = (pids: number[]) => {
    const stats = pids.map(processStats);
    return stats.every((stat) => stat !== null)
      ? stats.reduce((sum, stat) => ({
          cpuMs: sum.cpuMs + stat.cpuMs,
          rssMb: sum.rssMb + stat.rssMb,
          wakeups: sum.wakeups + stat.wakeups,
        }))
      : null;
  };
  const measure = async (
    pid: number | number[],
    fn: () => Promise<
      Omit<Measured, 'serverCpuMs' | 'serverRssMb' | 'serverWakeups' | 'clientCpuMs' | 'allocatorCpuMs'> & {
        clientCpuTotalMs: number;
      }
    >,
  ): Promise<Measured> => {
    const pids = typeof pid === 'number' ? [pid] : pid;
    const before = serverStats(pids);
    const allocatorBefore = processStats(allocator.child.pid ?? 0);
    const result = await fn();
    const after = serverStats(pids);
    const allocatorAfter = processStats(allocator.child.pid ?? 0);
    if (pid === emulatorInfo.pid) registered += result.completed;
    const { clientCpuTotalMs, ...rest } = result;
    return {
      ...rest,
      clientCpuMs: clientCpuTotalMs / Math.max(1, result.completed),
      serverCpuMs: before && after ? (after.cpuMs - before.cpuMs) / Math.max(1, result.completed) : Number.NaN,
      serverRssMb: after?.rssMb ?? Number.NaN,
      serverWakeups: before && after ? (after.wakeups - before.wakeups) / Math.max(1, result.completed) : Number.NaN,
      allocatorCpuMs:
        allocatorBefore && allocatorAfter
          ? (allocatorAfter.cpuMs - allocatorBefore.cpuMs) / Math.max(1, result.completed)
          : Number.NaN,
    };
  };
  const lean = (
    kind: 'handshake' | 'mqtt',
    port: number,
    count: number,
    extra: Record<string, unknown> = {},
    threads = kind === 'handshake' ? workers : fleetWorkers,
  ) =>
    runClient([
      LEAN_CLIENTS,
      kind,
      JSON.stringify({
        host: '127.0.0.1',
        port,
        ca,
        count,
        concurrency,
        workers: threads,
        idScope: ID_SCOPE,
        ...extra,
      }),
    ]).then(({ out, cpuMs }) => {
      const r = JSON.parse(out) as {
        completed: number;
        failed: number;
        firstError?: string;
        wallMs: number;
        latenciesMs: number[];
      };
      const sorted = r.latenciesMs.sort((a, b) => a - b);
      return {
        clientCpuTotalMs: cpuMs,
        completed: r.completed,
        failed: r.failed,
        ...(r.firstError ? { firstError: r.firstError } : {}),
        perSecond: r.completed / (r.wallMs / 1000),
        p50: sorted.length ? percentile(sorted, 50) : Number.NaN,
        p99: sorted.length ? percentile(sorted, 99) : Number.NaN,
      };
    });
  const sdkFleet = (
    template: string,
    groupKey: string,
    count: number,
    port = emulatorInfo.mqtt.port,
    threads = fleetWorkers,
  ) =>
    runClient(
      [
        DEVICE_SIM_CLI,
        'fleet',
        '--id-scope',
        ID_SCOPE,
        '--provisioning-host',
        `127.0.0.1:${port}`,
        '--ca',
        emulatorInfo.caCertPath,
        '--count',
        String(count),
        '--concurrency',
        String(concurrency),
        '--workers',
        String(threads),
        '--registration-id-template',
        template,
        '--json',
      ],
      { DPS_GROUP_KEY: groupKey },
    ).then(({ out, cpuMs }) => {
      const s = JSON.parse(out) as {
        completed: number;
        byStatus: { assigned: number };
        outcomes: Array<{ status: string; errorName?: string; errorMessage?: string }>;
        registrationsPerSecond: number;
        latencyMs: { p50: number; p99: number } | null;
      };
      const failedGroup = s.outcomes.find((o) => o.status !== 'assigned');
      return {
        clientCpuTotalMs: cpuMs,
        completed: s.byStatus.assigned,
        failed: count - s.byStatus.assigned,
        ...(failedGroup ? { firstError: `${failedGroup.errorName}: ${failedGroup.errorMessage}` } : {}),
        perSecond:
          s.byStatus.assigned === count
            ? s.registrationsPerSecond
            : (s.registrationsPerSecond * s.byStatus.assigned) / s.completed,
        p50: s.latencyMs?.p50 ?? Number.NaN,
        p99: s.latencyMs?.p99 ?? Number.NaN,
      };
    });

  const paths: Path[] = [
    {
      key: 'ceiling',
      label: 'ceiling: bare TLS 1.3 handshakes (node:tls, same certificate)',
      run: (_round, count) => measure(handshakeServer.child.pid ?? 0, () => lean('handshake', handshakePort, count)),
    },
    {
      key: 'sdk-hashed',
      label: 'official SDK (device-sim fleet) -> emulator, hashed',
      goal: 0.6,
      run: (round, count) => measure(emulatorInfo.pid, () => sdkFleet(`sdk-hashed-${round}-{n}`, GROUP_KEY, count)),
    },
    {
      key: 'sdk-custom',
      label: 'official SDK -> emulator -> allocator, custom',
      goal: 0.6,
      run: (round, count) =>
        measure(emulatorInfo.pid, () => sdkFleet(`contoso-toaster-sdk-${round}-{n}`, CUSTOM_KEY, count)),
    },
    {
      key: 'lean-hashed',
      label: 'lean MQTT client (mqtt-packet) -> emulator, hashed',
      goal: 0.8,
      run: (round, count) =>
        measure(emulatorInfo.pid, () =>
          lean('mqtt', emulatorInfo.mqtt.port, count, { prefix: `lean-hashed-${round}-`, groupKey: GROUP_KEY }),
        ),
    },
    {
      key: 'lean-custom',
      label: 'lean MQTT client -> emulator -> allocator, custom',
      goal: 0.8,
      run: (round, count) =>
        measure(emulatorInfo.pid, () =>
          lean('mqtt', emulatorInfo.mqtt.port, count, {
            prefix: `contoso-toaster-lean-${round}-`,
            groupKey: CUSTOM_KEY,
          }),
        ),
    },
  ];
  // The hashed fleets again with another number of worker threads, in the same rounds.
  const fleetWorkersPaths = new Map<string, string>();
  if (fleetWorkersCompare > 0 && fleetWorkersCompare !== fleetWorkers) {
    const f = fleetWorkersCompare;
    paths.push(
      {
        key: `sdk-hashed-fw${f}`,
        label: `official SDK, device-sim fleet --workers ${f}, hashed`,
        run: (round, count) =>
          measure(emulatorInfo.pid, () => sdkFleet(`sdk-fw-${round}-{n}`, GROUP_KEY, count, emulatorInfo.mqtt.port, f)),
      },
      {
        key: `lean-hashed-fw${f}`,
        label: `lean MQTT client over ${f} worker threads, hashed`,
        run: (round, count) =>
          measure(emulatorInfo.pid, () =>
            lean('mqtt', emulatorInfo.mqtt.port, count, { prefix: `lean-fw-${round}-`, groupKey: GROUP_KEY }, f),
          ),
      },
    );
    fleetWorkersPaths.set('sdk-hashed', `sdk-hashed-fw${f}`).set('lean-hashed', `lean-hashed-fw${f}`);
  }
  // The hashed paths again against `dps-emulator start --workers E`, in the same rounds.
  const workersPaths = new Map<string, string>();
  if (clustered) {
    const { pids, port } = clustered;
    paths.push(
      {
        key: `sdk-hashed-w${emulatorWorkers}`,
        label: `official SDK -> emulator --workers ${emulatorWorkers}, hashed`,
        run: (round, count) => measure(pids, () => sdkFleet(`sdk-w-${round}-{n}`, GROUP_KEY, count, port)),
      },
      {
        key: `lean-hashed-w${emulatorWorkers}`,
        label: `lean MQTT client -> emulator --workers ${emulatorWorkers}, hashed`,
        run: (round, count) =>
          measure(pids, () => lean('mqtt', port, count, { prefix: `lean-w-${round}-`, groupKey: GROUP_KEY })),
      },
    );
    workersPaths
      .set('sdk-hashed', `sdk-hashed-w${emulatorWorkers}`)
      .set('lean-hashed', `lean-hashed-w${emulatorWorkers}`);
  }

  const results = new Map<string, Measured[]>(paths.map((p) => [p.key, []]));
  const row = (round: string, path: Path, m: Measured) =>
    `${round.padStart(5)}  ${path.key.padEnd(14)}  ${String(m.completed).padStart(6)}  ${fixed(m.perSecond).padStart(6)}  ${fixed(m.p50).padStart(6)}  ${fixed(m.p99).padStart(6)}  ${fixed(m.clientCpuMs, 2).padStart(10)}  ${fixed(m.serverCpuMs, 2).padStart(10)}  ${fixed(m.serverWakeups, 2).padStart(8)}  ${fixed(m.serverRssMb).padStart(7)}  ${load()}${m.failed ? `  ${m.failed} FAILED, e.g. ${m.firstError}` : ''}`;
  const header =
    'round  path            done  regs/s  p50 ms  p99 ms  client CPU  server CPU  wake-ups  RSS MB  load average';
  try {
    if (rounds > 0) {
      for (const path of paths) await path.run('warmup', Math.min(200, devices)); // JIT, caches, SDK module loading
      console.log('');
      console.log(
        `${header}   (CPU: ms per operation, the client process with its threads; the emulator, or the handshake server; wake-ups: the server's voluntary context switches per operation)`,
      );
      for (let round = 1; round <= rounds; round++) {
        const order = round % 2 === 1 ? paths : [...paths].reverse();
        for (const path of order) {
          const m = await path.run(`r${round}`, devices);
          results.get(path.key)?.push(m);
          console.log(row(String(round), path, m));
        }
      }
      const ceiling = results.get('ceiling') ?? [];
      // With both cores busy, a path's rate follows the CPU one operation costs client, server and
      // allocator (custom paths) together: its ratio tends to (ceiling's CPU per handshake) / (path's CPU per registration),
      // the bound printed beside it, per round against the ceiling of the same round.
      const whole = (m: Measured | undefined) => (m ? m.clientCpuMs + m.serverCpuMs + m.allocatorCpuMs : Number.NaN);
      const spread = (list: number[]) => {
        const sorted = [...list].sort((a, b) => a - b);
        return `${fixed(median(sorted), 2).padStart(5)} (${fixed(sorted[0] ?? Number.NaN, 2)}-${fixed(sorted.at(-1) ?? Number.NaN, 2)})`;
      };
      console.log('');
      console.log(
        `path                                                           regs/s  p50 ms  p99 ms  ratio (rounds)     CPU ms client + server + allocator  bound (rounds)     goal`,
      );
      for (const path of paths) {
        const list = results.get(path.key) ?? [];
        const cells = `${fixed(median(list.map((m) => m.perSecond))).padStart(6)}  ${fixed(median(list.map((m) => m.p50))).padStart(6)}  ${fixed(median(list.map((m) => m.p99))).padStart(6)}`;
        const ratio = spread(list.map((m, i) => m.perSecond / (ceiling[i]?.perSecond ?? Number.NaN)));
        const cpu = `${fixed(median(list.map((m) => m.clientCpuMs)), 2)} + ${fixed(median(list.map((m) => m.serverCpuMs)), 2)} + ${fixed(median(list.map((m) => m.allocatorCpuMs)), 2)} = ${fixed(median(list.map(whole)), 2)}`;
        const bound = spread(list.map((m, i) => whole(ceiling[i]) / whole(m)));
        console.log(
          `${path.label.padEnd(62)} ${cells}  ${ratio.padEnd(17)}  ${cpu.padStart(34)}  ${bound.padEnd(17)}  ${path.goal ? `>= ${path.goal.toFixed(2)}` : ''}`,
        );
      }
      const serverCpu = (key: string) => median((results.get(key) ?? []).map((m) => m.serverCpuMs));
      const handshakeCpu = serverCpu('ceiling');
      const ceilingCpu = median(ceiling.map(whole));
      console.log('');
      console.log(
        `bound = ceiling CPU / path CPU (client + server + allocator per operation): what the ratio tends to when the cores are saturated. A goal g needs a path CPU of at most ceiling/g: ${paths
          .filter((p) => p.goal)
          .map(
            (p) =>
              `${p.key} <= ${fixed(ceilingCpu / (p.goal ?? 1), 2)} ms (now ${fixed(median((results.get(p.key) ?? []).map(whole)), 2)})`,
          )
          .join(', ')}`,
      );
      console.log('');
      console.log(
        `emulator CPU per registration against the handshake server's CPU per handshake (goal <= 1.50): ${[
          'sdk-hashed',
          'lean-hashed',
          'sdk-custom',
          'lean-custom',
        ]
          .map((k) => `${k} ${fixed(serverCpu(k), 2)} ms = ${fixed(serverCpu(k) / handshakeCpu, 2)}x`)
          .join(', ')} (handshake ${fixed(handshakeCpu, 2)} ms)`,
      );
      // Each time its event loop sleeps and a packet wakes it, a server pays a context switch and cold
      // caches: a client that sends its packets one at a time (the SDK's SUBSCRIBE, PUBACK, DISCONNECT)
      // costs it more per registration than one that sends them together, for the same bytes.
      const wakeups = (key: string) => fixed(median((results.get(key) ?? []).map((m) => m.serverWakeups)), 2);
      console.log(
        `server wake-ups per operation (its main thread's voluntary context switches, median of rounds): ${paths
          .map((p) => `${p.key} ${wakeups(p.key)}`)
          .join(', ')}`,
      );
      if (fleetWorkersPaths.size > 0) {
        // Each round's ratio of the two fleets (same emulator, same round), then their median.
        const sorted = (list: number[]) => list.sort((a, b) => a - b);
        const range = (list: number[]) =>
          `${fixed(median(list), 2)}x (rounds ${fixed(list[0] ?? Number.NaN, 2)}-${fixed(list.at(-1) ?? Number.NaN, 2)})`;
        const clientCpu = (list: Measured[]) => fixed(median(list.map((m) => m.clientCpuMs)), 2);
        const against = [...fleetWorkersPaths].map(([single, otherKey]) => {
          const one = results.get(single) ?? [];
          const other = results.get(otherKey) ?? [];
          const rates = sorted(other.map((m, i) => m.perSecond / (one[i]?.perSecond ?? Number.NaN)));
          const cpus = sorted(other.map((m, i) => m.clientCpuMs / (one[i]?.clientCpuMs ?? Number.NaN)));
          return `${single} registrations/s ${range(rates)}, client CPU per registration ${range(cpus)}: ${clientCpu(one)} -> ${clientCpu(other)} ms`;
        });
        console.log('');
        console.log(
          `fleets over ${fleetWorkersCompare} worker threads against ${fleetWorkers} (hashed, same emulator, same rounds): ${against.join('; ')}`,
        );
      }
      if (workersPaths.size > 0) {
        // Each round's ratio of the two emulators (same clients, same round), then their median.
        const against = [...workersPaths].map(([single, clusteredKey]) => {
          const one = results.get(single) ?? [];
          const ratios = (results.get(clusteredKey) ?? [])
            .map((m, i) => m.perSecond / (one[i]?.perSecond ?? Number.NaN))
            .sort((a, b) => a - b);
          return `${single} ${fixed(median(ratios), 2)}x (rounds ${fixed(ratios[0] ?? Number.NaN, 2)}-${fixed(ratios.at(-1) ?? Number.NaN, 2)}), emulator CPU per registration ${fixed(serverCpu(single), 2)} -> ${fixed(serverCpu(clusteredKey), 2)} ms`;
        });
        console.log('');
        console.log(
          `dps-emulator --workers ${emulatorWorkers} against one process, registrations/s (same clients, same rounds; ${availableParallelism()} cores shared with the clients): ${against.join('; ')}`,
        );
      }
    }

    if (scaleSteps.length > 0) {
      console.log('');
      console.log(
        'scale curve: official SDK fleets (hashed) of growing size against the same emulator; records = registrations in its store after the step; ' +
          'each step right after bare TLS handshakes of the same count (the ceiling), so that each client process pays its start and JIT warm-up over as many operations: ' +
          "ratio = the fleet's registrations/s over those handshakes/s; bound = their CPU per operation (client + server) over the fleet's, what the ratio tends to on saturated cores",
      );
      console.log(
        'devices  records  regs/s  p50 ms  p99 ms  emulator CPU ms/reg  emulator RSS MB  handshakes/s  ratio  client CPU ms/reg  bound  load average',
      );
      const perReg: number[] = [];
      for (const [step, count] of scaleSteps.entries()) {
        const ceilingAtStep = await measure(handshakeServer.child.pid ?? 0, () =>
          lean('handshake', handshakePort, count),
        );
        const m = await measure(emulatorInfo.pid, () => sdkFleet(`scale-${step}-{n:6}`, GROUP_KEY, count));
        perReg.push(m.serverCpuMs);
        console.log(
          `${String(count).padStart(7)}  ${String(registered).padStart(7)}  ${fixed(m.perSecond).padStart(6)}  ${fixed(m.p50).padStart(6)}  ${fixed(m.p99).padStart(6)}  ${fixed(m.serverCpuMs, 2).padStart(19)}  ${fixed(m.serverRssMb).padStart(15)}  ${fixed(ceilingAtStep.perSecond).padStart(12)}  ${fixed(m.perSecond / ceilingAtStep.perSecond, 2).padStart(5)}  ${fixed(m.clientCpuMs, 2).padStart(17)}  ${fixed((ceilingAtStep.clientCpuMs + ceilingAtStep.serverCpuMs) / (m.clientCpuMs + m.serverCpuMs), 2).padStart(5)}  ${load()}${m.failed ? `  ${m.failed} FAILED, e.g. ${m.firstError}` : ''}`,
        );
      }
      if (perReg.length > 1) {
        console.log(
          `emulator CPU per registration, largest step against the first: ${fixed((perReg.at(-1) ?? Number.NaN) / (perReg[0] ?? Number.NaN), 2)} (1.00 = flat; goal: not growing)`,
        );
      }
    }
    console.log('');
    console.log(`load average after: ${load()}`);
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(
      children.map((c) => (c.exitCode !== null ? undefined : new Promise((resolve) => c.once('exit', resolve)))),
    );
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
