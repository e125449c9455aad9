import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAllocatorHost } from '@dpskit/allocator';
import { deriveDeviceKey, generateSymmetricKey } from '@dpskit/contracts';
import { registerDevice } from '@dpskit/device-sim';
import { createEmulator } from '@dpskit/emulator';
import {
  fuzzAllocator,
  fuzzHttps,
  fuzzMqtt,
  fuzzWebhookAnswers,
  HANG_BOUND_MS,
  type SurfaceReport,
  startFuzzWebhook,
  type Target,
} from './surfaces.js';

export interface FuzzOptions {
  /** Malformed inputs per surface. */
  runs: number;
  seed: number;
  /** Progress lines (the summary is returned). */
  log?: (line: string) => void;
}

export interface FuzzSummary {
  seed: number;
  surfaces: SurfaceReport[];
  /** Uncaught exceptions and unhandled rejections while the servers ran in this process. */
  crashes: string[];
  goodRegistrations: { mqtt: string; http: string };
  memory: { startHeapBytes: number; endHeapBytes: number; startRssBytes: number; endRssBytes: number };
  durationMs: number;
}

const ID_SCOPE = '0ne00F022A0';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Lets idle connections close, collects garbage (with --expose-gc), then waits for RSS to stop
 * falling before memory is measured: after a GC, V8 unmaps freed pages and frees ArrayBuffer
 * backing stores on background threads, so RSS read right after gc() still counted memory on its
 * way back to the system (starts of the same run differed by 50 MB).
 */
async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  await sleep(1_000);
  gc?.();
  await sleep(500);
  // A second collection: native objects freed by the first one's weak callbacks (TLS contexts,
  // sockets) release what they held.
  gc?.();
  let previous = process.memoryUsage.rss();
  for (let i = 0; i < 20; i++) {
    await sleep(500);
    const rss = process.memoryUsage.rss();
    if (rss > previous * 0.99) break;
    previous = rss;
  }
}

/**
 * Runs the emulator (MQTT + HTTPS, custom allocation to a fuzzing webhook) and the allocator's local
 * host in this process, feeds each surface `runs` malformed inputs, then provisions a good device
 * over each transport and measures memory against the start.
 */
export async function runFuzz(options: FuzzOptions): Promise<FuzzSummary> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  const crashes: string[] = [];
  const onCrash = (err: unknown) => crashes.push(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  try {
    const stateDir = await mkdtemp(join(tmpdir(), 'dpskit-fuzz-'));
    cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
    const webhook = await startFuzzWebhook();
    cleanups.push(() => webhook.close());
    const allocator = await startAllocatorHost({ port: 0, log: () => {} });
    cleanups.push(() => allocator.close());
    const fuzzKey = generateSymmetricKey();
    const goodKey = generateSymmetricKey();
    const symmetricKey = (primaryKey: string) => ({ type: 'symmetricKey' as const, symmetricKey: { primaryKey } });
    const emulator = createEmulator({
      stateDir,
      mqttPort: 0,
      httpsPort: 0,
      amqpPort: 0,
      retryAfterSeconds: 0,
      log: () => {},
      // Connections left half-sent are closed after 2 s of silence (the documented bound).
      limits: { idleTimeoutMs: 2_000, handshakeTimeoutMs: 2_000 },
      // Answers ≥ 429 fail at once instead of DPS's 415 s of retries.
      webhook: { timeoutMs: 10_000, retry: { count: 0 } },
      config: {
        idScope: ID_SCOPE,
        iotHubs: [{ hostName: 'fuzz-hub.azure-devices.net' }],
        enrollmentGroups: [
          {
            enrollmentGroupId: 'fuzz',
            attestation: symmetricKey(fuzzKey),
            allocationPolicy: 'custom',
            customAllocationDefinition: { webhookUrl: webhook.url, apiVersion: '2021-10-01' },
          },
          { enrollmentGroupId: 'good', attestation: symmetricKey(goodKey), allocationPolicy: 'hashed' },
        ],
      },
    });
    await emulator.start();
    cleanups.push(() => emulator.stop());
    const https = emulator.endpoints.https;
    if (!https) throw new Error('the emulator serves no HTTPS');
    const target: Target = {
      idScope: ID_SCOPE,
      groupKey: fuzzKey,
      ca: emulator.caCertPem,
      mqttPort: emulator.endpoints.mqtt.port,
      httpsPort: https.port,
    };

    // A good device over each transport, through the official SDK.
    const ca = await readFile(emulator.caCertPath, 'utf8');
    const good = async (transport: 'mqtt' | 'http', port: number, registrationId: string) => {
      const outcome = await registerDevice({
        idScope: ID_SCOPE,
        registrationId,
        deviceKey: deriveDeviceKey(goodKey, registrationId),
        transport,
        provisioningHost: `localhost:${port}`,
        ca,
        timeoutMs: 60_000,
      });
      return outcome.status === 'assigned'
        ? `assigned to ${outcome.assignedHub}`
        : `${outcome.status} ${outcome.errorMessage}`;
    };

    // Warm up every path the run takes before the baseline: JIT code, TLS and SQLite caches, and
    // caches made once on first use (mqtt-packet's 65,536 two-byte number buffers, one set per copy
    // of the module, the broker's and the SDK's: 12.6 MB of heap that a baseline taken before any
    // MQTT traffic counted as growth). 2,000 inputs per surface also bring glibc's arenas to the
    // size this traffic keeps them at: a surface's first 2,000 inputs raised RSS by up to 80 MB of
    // freed memory glibc keeps for reuse (malloc_trim gives it back), the next 8,000 by nothing
    // more. Growth from here on is what the inputs leave behind.
    const warmUp = Math.min(2_000, options.runs);
    await fuzzMqtt(target, warmUp, options.seed + 100);
    await fuzzHttps(target, warmUp, options.seed + 101);
    await fuzzWebhookAnswers(target, warmUp, options.seed + 102, webhook.answers);
    await fuzzAllocator(allocator.webhookUrl, warmUp, options.seed + 103);
    await good('mqtt', target.mqttPort, 'fuzz-warm-up-mqtt');
    await good('http', target.httpsPort, 'fuzz-warm-up-http');
    await settle();
    const startMemory = process.memoryUsage();

    const surfaces: SurfaceReport[] = [];
    const run = async (name: string, go: () => Promise<SurfaceReport>) => {
      const t0 = performance.now();
      log(`${name}: ${options.runs} inputs…`);
      const report = await go();
      surfaces.push(report);
      log(`${name}: done in ${Math.round((performance.now() - t0) / 1000)} s`);
    };
    await run('MQTT', () => fuzzMqtt(target, options.runs, options.seed));
    await run('HTTPS device API', () => fuzzHttps(target, options.runs, options.seed + 1));
    await run('webhook answers', () => fuzzWebhookAnswers(target, options.runs, options.seed + 2, webhook.answers));
    await run('allocator', () => fuzzAllocator(allocator.webhookUrl, options.runs, options.seed + 3));

    // A good device still provisions over each transport.
    const goodRegistrations = {
      mqtt: await good('mqtt', target.mqttPort, 'fuzz-good-mqtt'),
      http: await good('http', target.httpsPort, 'fuzz-good-http'),
    };

    await settle();
    const endMemory = process.memoryUsage();
    return {
      seed: options.seed,
      surfaces,
      crashes,
      goodRegistrations,
      memory: {
        startHeapBytes: startMemory.heapUsed,
        endHeapBytes: endMemory.heapUsed,
        startRssBytes: startMemory.rss,
        endRssBytes: endMemory.rss,
      },
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
  }
}

/** Whether the run found nothing wrong (memory apart: see memoryProblems). */
export function fuzzProblems(summary: FuzzSummary): string[] {
  const problems: string[] = [];
  for (const s of summary.surfaces) {
    if (s.hangs) problems.push(`${s.surface}: ${s.hangs} hangs past ${HANG_BOUND_MS} ms`);
    if (s.serverErrors) problems.push(`${s.surface}: ${s.serverErrors} 5xx or internal-error answers`);
    if (s.malformedAnswers) problems.push(`${s.surface}: ${s.malformedAnswers} answers that are not DPS-shaped`);
  }
  if (summary.crashes.length) problems.push(`${summary.crashes.length} crashes (uncaught exceptions)`);
  for (const [transport, result] of Object.entries(summary.goodRegistrations)) {
    if (!result.startsWith('assigned')) problems.push(`the good ${transport} registration afterwards: ${result}`);
  }
  return problems;
}

/** How far memory may end above its start (after the warm-up, after GC): 20%. */
export const MEMORY_GROWTH_BOUND = 1.2;

/**
 * Whether memory came back within MEMORY_GROWTH_BOUND of its start: the JS heap after GC (objects
 * the inputs left behind) and the process RSS (native memory too: TLS, SQLite, buffers, and what
 * the allocator kept). Checked by `npm run fuzz`; a 120-input sample in `npm test` is too short to
 * say anything about memory.
 */
export function memoryProblems(summary: FuzzSummary): string[] {
  const { startHeapBytes, endHeapBytes, startRssBytes, endRssBytes } = summary.memory;
  const problems: string[] = [];
  const percent = (end: number, start: number) => `${((end / start) * 100).toFixed(0)}%`;
  if (endHeapBytes > startHeapBytes * MEMORY_GROWTH_BOUND) {
    problems.push(`heap after GC ended at ${percent(endHeapBytes, startHeapBytes)} of its start (bound 120%)`);
  }
  if (endRssBytes > startRssBytes * MEMORY_GROWTH_BOUND) {
    problems.push(`RSS ended at ${percent(endRssBytes, startRssBytes)} of its start (bound 120%)`);
  }
  return problems;
}

export function formatFuzzSummary(summary: FuzzSummary): string {
  const lines: string[] = [];
  const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
  lines.push(`dpskit fuzz (seed ${summary.seed}), ${Math.round(summary.durationMs / 1000)} s`);
  for (const s of summary.surfaces) {
    const answers = Object.entries(s.answers)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ');
    lines.push(
      `  ${s.surface.padEnd(18)} inputs ${s.inputs}, crashes 0, hangs ${s.hangs}, 5xx ${s.serverErrors}, not DPS-shaped ${s.malformedAnswers}`,
    );
    lines.push(`  ${''.padEnd(18)} answers by code: ${answers}`);
    for (const example of s.examples) lines.push(`  ${''.padEnd(18)} e.g. ${example}`);
  }
  lines.push(`  crashes (uncaught exceptions in the servers' process): ${summary.crashes.length}`);
  for (const crash of summary.crashes.slice(0, 3)) lines.push(`    ${crash.split('\n').slice(0, 3).join(' | ')}`);
  lines.push(
    `  good registration afterwards: MQTT ${summary.goodRegistrations.mqtt}; HTTPS ${summary.goodRegistrations.http}`,
  );
  const { startHeapBytes, endHeapBytes, startRssBytes, endRssBytes } = summary.memory;
  const percent = (end: number, start: number) => `${((end / start) * 100).toFixed(0)}% of start`;
  lines.push(
    `  memory after the warm-up and GC: heap used ${mb(startHeapBytes)} -> ${mb(endHeapBytes)} (${percent(endHeapBytes, startHeapBytes)}); RSS ${mb(startRssBytes)} -> ${mb(endRssBytes)} (${percent(endRssBytes, startRssBytes)}); bound 120%`,
  );
  return lines.join('\n');
}
