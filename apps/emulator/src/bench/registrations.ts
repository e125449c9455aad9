// Measures registrations per second and latency percentiles of N devices registering at once over
// each transport (MQTT, MQTT over WebSockets, AMQP, AMQP over WebSockets, HTTPS), against hashed and
// custom (local webhook) allocation, and reports the transports side by side, each as a ratio to
// MQTT over TLS measured in the same run. Run: npm run bench (or pnpm --filter @dpskit/emulator bench)
// Options: --devices N (default 250), --concurrency C (default = devices), --rounds R (default 3),
// --transports mqtt,mqtt-ws,amqp,amqp-ws,https (default all).
// Then the hub: QoS 1 telemetry from official-SDK devices (azure-iot-device-mqtt) that send their
// messages all at once, against the same client's rate to a bare aedes broker on TLS (the broker the
// hub runs on, with nothing behind it) in the same run. --hub-devices N (default 10, 0 skips it),
// --hub-messages M per device per round (default 200), --hub-rounds R (default 9) after --hub-warmup W
// (default 3) round pairs that are not counted; each round also gives the process's CPU per message.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { deriveDeviceKey, generateSymmetricKey, parseAllocationRequestJson } from '@dpskit/contracts';
import { percentile } from '@dpskit/node-kit';
import { Aedes } from 'aedes';
import { pickHashed } from '../core/allocation/hashed.js';
import { createEmulator, type Emulator } from '../emulator.js';
import { deviceClient, type HubTarget, Message } from '../testing/hub-sdk.js';
import { register, type SdkTransport } from '../testing/sdk.js';
import { CLIENT_CERTIFICATE_TLS_OPTIONS } from '../transport/peer-certificates.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '250' },
    concurrency: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    transports: { type: 'string', default: 'mqtt,mqtt-ws,amqp,amqp-ws,https' },
    'hub-devices': { type: 'string', default: '10' },
    'hub-messages': { type: 'string', default: '200' },
    // Not --rounds: the hub's rate climbs over its first rounds in a fresh process (JIT, the SDK's and the
    // store's first runs), and three rounds with one warm-up left the median on that slope (issue #13).
    'hub-rounds': { type: 'string', default: '9' },
    'hub-warmup': { type: 'string', default: '3' },
  },
});
const ALL_TRANSPORTS: readonly SdkTransport[] = ['mqtt', 'mqtt-ws', 'amqp', 'amqp-ws', 'https'];
const transports = values.transports.split(',').map((t) => t.trim()) as SdkTransport[];
for (const t of transports) {
  if (!ALL_TRANSPORTS.includes(t)) throw new Error(`--transports: "${t}" is not one of ${ALL_TRANSPORTS.join(', ')}`);
}
const devices = Number(values.devices);
const concurrency = Number(values.concurrency ?? values.devices);
const rounds = Number(values.rounds);
const hubDevices = Number(values['hub-devices']);
const hubMessages = Number(values['hub-messages']);
const hubRounds = Number(values['hub-rounds']);
const hubWarmup = Number(values['hub-warmup']);
for (const [name, value, min] of [
  ['--hub-rounds', hubRounds, 1],
  ['--hub-warmup', hubWarmup, 0],
] as const) {
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be a whole number >= ${min}`);
}

const HUBS = ['hub-1.azure-devices.net', 'hub-2.azure-devices.net'];
const HASHED_KEY = generateSymmetricKey();
const CUSTOM_KEY = generateSymmetricKey();

/** One device on the official SDK over `transport` (the test helper's setup: the CA, and the WebSocket agent for the port). */
function registerOne(
  emulator: Emulator,
  transport: SdkTransport,
  registrationId: string,
  groupKey: string,
): Promise<unknown> {
  return register(emulator, registrationId, deriveDeviceKey(groupKey, registrationId), {
    transport,
    payload: { bench: true },
  });
}

async function runRound(
  emulator: Emulator,
  transport: SdkTransport,
  prefix: string,
  groupKey: string,
  count = devices,
): Promise<{ wallMs: number; latencies: number[] }> {
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++] as string;
      const t0 = performance.now();
      await registerOne(emulator, transport, id, groupKey);
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { wallMs: performance.now() - started, latencies };
}

interface HubRound {
  /** Messages per second. */
  rate: number;
  /**
   * This process's CPU time per message (µs, all threads): the SDK clients' and the server's (the
   * hub or the bare broker), so the hub's figure less the bare broker's is what the hub's server
   * side costs over bare aedes. Unlike the rate, it hardly moves with the machine's load: the rate is
   * the share of a core the process gets on a shared machine divided by this.
   */
  cpuUs: number;
}

/**
 * One round of hub telemetry: every device opens, then sends `hubMessages` QoS 1 messages at once
 * (the SDK resolves each on its PUBACK); timed from the first send to the last PUBACK.
 */
async function hubRound(
  target: HubTarget,
  devices: { hub: string; deviceId: string; key: string }[],
): Promise<HubRound> {
  const clients = await Promise.all(devices.map((device) => deviceClient(target, device)));
  await Promise.all(clients.map((client) => client.open()));
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    clients.flatMap((client, d) =>
      Array.from({ length: hubMessages }, (_, i) =>
        client.sendEvent(new Message(JSON.stringify({ device: d, seq: i, temperature: 21.5 }))),
      ),
    ),
  );
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  await Promise.all(clients.map((client) => client.close()));
  const messages = devices.length * hubMessages;
  return { rate: messages / (wallMs / 1000), cpuUs: (cpu.user + cpu.system) / messages };
}

/** The hub's telemetry rate against a bare aedes broker's on TLS (same certificate, same client), interleaved rounds. */
async function hubPhase(emulator: Emulator, stateDir: string): Promise<void> {
  // Devices of the hubs: registered through DPS (hashed), so the hub knows them and their keys.
  const devices = await Promise.all(
    Array.from({ length: hubDevices }, async (_, i) => {
      const deviceId = `hub-bench-${i}`;
      const key = deriveDeviceKey(HASHED_KEY, deviceId);
      const state = (await register(emulator, deviceId, key)) as { assignedHub?: string };
      if (!state.assignedHub) throw new Error(`${deviceId}: not assigned`);
      return { hub: state.assignedHub, deviceId, key };
    }),
  );
  const broker = await Aedes.createBroker();
  const bare = tls.createServer(
    {
      cert: readFileSync(join(stateDir, 'tls', 'server.pem')),
      key: readFileSync(join(stateDir, 'tls', 'server.key.pem')),
      // The emulator's TLS settings: it asks every client for a certificate.
      ...CLIENT_CERTIFICATE_TLS_OPTIONS,
    },
    (socket) => broker.handle(socket),
  );
  await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
  const bareTarget: HubTarget = {
    caCertPem: emulator.caCertPem,
    endpoints: {
      ...emulator.endpoints,
      mqtt: { ...emulator.endpoints.mqtt, provisioningHost: `localhost:${(bare.address() as AddressInfo).port}` },
    },
  };
  try {
    for (let round = 0; round < hubWarmup; round++) {
      await hubRound(emulator, devices);
      await hubRound(bareTarget, devices);
    }
    const hub: HubRound[] = [];
    const bareRounds: HubRound[] = [];
    for (let round = 1; round <= hubRounds; round++) {
      // Alternating which goes first, so that neither always runs on a warmer (or busier) machine.
      if (round % 2 === 1) {
        hub.push(await hubRound(emulator, devices));
        bareRounds.push(await hubRound(bareTarget, devices));
      } else {
        bareRounds.push(await hubRound(bareTarget, devices));
        hub.push(await hubRound(emulator, devices));
      }
      const h = hub.at(-1)!;
      const b = bareRounds.at(-1)!;
      console.log(
        `hub telemetry ${String(round).padStart(5)}  ${String(hubDevices * hubMessages).padStart(7)}  hub ${h.rate.toFixed(0).padStart(6)} msgs/s ${h.cpuUs.toFixed(1).padStart(6)} µs  bare aedes ${b.rate.toFixed(0).padStart(6)} msgs/s ${b.cpuUs.toFixed(1).padStart(6)} µs  ratio ${(h.rate / b.rate).toFixed(3)}`,
      );
    }
    const median = (values: number[]) =>
      percentile(
        [...values].sort((a, b) => a - b),
        50,
      );
    const ratios = hub.map((round, i) => round.rate / bareRounds[i]!.rate).sort((a, b) => a - b);
    const hubCpu = median(hub.map((r) => r.cpuUs));
    const bareCpu = median(bareRounds.map((r) => r.cpuUs));
    console.log('');
    console.log(
      `hub telemetry (${hubDevices} SDK devices over MQTT, ${hubMessages} QoS 1 messages each sent at once, per round; ${hubWarmup} warm-up round pairs): ` +
        `${median(hub.map((r) => r.rate)).toFixed(0)} msgs/s against ${median(bareRounds.map((r) => r.rate)).toFixed(0)} for a bare aedes broker on TLS in this run; ` +
        `ratio ${median(ratios).toFixed(2)} (median of ${hubRounds} interleaved rounds' ratios, ${ratios[0]!.toFixed(2)}-${ratios.at(-1)!.toFixed(2)}); ` +
        `process CPU per message ${hubCpu.toFixed(1)} µs against ${bareCpu.toFixed(1)} (the same SDK clients), the hub's server side ${(hubCpu - bareCpu).toFixed(1)} µs over bare aedes`,
    );
  } finally {
    bare.close();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
  }
}

async function main(): Promise<void> {
  const webhook = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request = parseAllocationRequestJson(Buffer.concat(chunks).toString('utf8'));
      if (!request.ok) return void res.writeHead(400).end();
      const id = request.value.deviceRuntimeContext.registrationId;
      const hub = pickHashed(
        id,
        request.value.linkedHubs.map((hostName) => ({ hostName, allocationWeight: 1 })),
      );
      res
        .writeHead(200, { 'Content-Type': 'application/json' })
        .end(JSON.stringify({ iotHubHostName: hub, payload: { for: id } }));
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  const webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/api/allocate?code=bench`;

  const stateDir = mkdtempSync(join(tmpdir(), 'dpskit-bench-'));
  const webhookLatencies: number[] = [];
  const emulator = createEmulator({
    stateDir,
    mqttPort: 0,
    httpsPort: 0,
    amqpPort: 0,
    retryAfterSeconds: 0,
    log: () => {},
    config: {
      iotHubs: HUBS.map((hostName) => ({ hostName })),
      enrollmentGroups: [
        {
          enrollmentGroupId: 'bench-hashed',
          attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: HASHED_KEY } },
          allocationPolicy: 'hashed',
        },
        {
          enrollmentGroupId: 'bench-custom',
          attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: CUSTOM_KEY } },
          allocationPolicy: 'custom',
          customAllocationDefinition: { webhookUrl, apiVersion: '2021-10-01' },
        },
      ],
    },
  });
  emulator.on('registration', (event) => {
    if (event.webhook) webhookLatencies.push(event.webhook.latencyMs);
  });
  await emulator.start();

  const cpu = cpus();
  console.log('dpskit emulator registration benchmark');
  console.log(
    `machine: ${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}, ${process.platform}`,
  );
  console.log(
    `method: ${devices} official-SDK clients (azure-iot-provisioning-device with -mqtt, -amqp or -http; TLS; symmetric-key group) ` +
      `register with ${concurrency} in flight per transport, in the same process as the emulator; retry-after 0 (the SDK polls at once); ` +
      `a fresh connection per device; ${rounds} rounds per transport and policy after a 20-device warm-up; latency = register() call to result. ` +
      `Transports one after another in one run; the ratio column is against MQTT over TLS of the same run.`,
  );
  console.log('');
  console.log('policy  transport  round  devices  wall s  regs/s   p50 ms  p90 ms  p99 ms  max ms');
  const totals = new Map<string, { rate: number; p50: number; p99: number }>();
  const row = (label: string, round: string, count: number, wallMs: number, sorted: number[]) =>
    `${label} ${round.padStart(5)}  ${String(count).padStart(7)}  ${(wallMs / 1000).toFixed(2).padStart(6)}  ${(count / (wallMs / 1000)).toFixed(0).padStart(6)}  ${[50, 90, 99, 100].map((p) => percentile(sorted, p).toFixed(0).padStart(6)).join('  ')}`;
  try {
    for (const [policy, key] of [
      ['hashed', HASHED_KEY],
      ['custom', CUSTOM_KEY],
    ] as const) {
      for (const transport of transports) {
        const label = `${policy.padEnd(7)} ${transport.padEnd(9)}`;
        await runRound(emulator, transport, `warmup-${policy}-${transport}`, key, 20);
        const all: number[] = [];
        let totalWall = 0;
        for (let round = 1; round <= rounds; round++) {
          const { wallMs, latencies } = await runRound(emulator, transport, `${policy}-${transport}-r${round}`, key);
          all.push(...latencies);
          totalWall += wallMs;
          console.log(
            row(
              label,
              String(round),
              devices,
              wallMs,
              [...latencies].sort((a, b) => a - b),
            ),
          );
        }
        const sorted = all.sort((a, b) => a - b);
        console.log(row(label, 'all', all.length, totalWall, sorted));
        totals.set(`${policy}/${transport}`, {
          rate: all.length / (totalWall / 1000),
          p50: percentile(sorted, 50),
          p99: percentile(sorted, 99),
        });
      }
    }
    console.log('');
    console.log('side by side (all rounds; ratio = registrations/s against MQTT over TLS in this run)');
    console.log('transport   hashed regs/s  ratio  p50 ms  p99 ms   custom regs/s  ratio  p50 ms  p99 ms');
    for (const transport of transports) {
      const cells = (['hashed', 'custom'] as const).map((policy) => {
        const t = totals.get(`${policy}/${transport}`);
        const base = totals.get(`${policy}/mqtt`);
        if (!t) return ''.padStart(36);
        const ratio = base ? (t.rate / base.rate).toFixed(2) : '  –';
        return `${t.rate.toFixed(0).padStart(13)}  ${ratio.padStart(5)}  ${t.p50.toFixed(0).padStart(6)}  ${t.p99.toFixed(0).padStart(6)}`;
      });
      console.log(`${transport.padEnd(9)} ${cells.join('  ')}`);
    }
    const wh = [...webhookLatencies].sort((a, b) => a - b);
    console.log('');
    console.log(
      `webhook calls: ${wh.length}, latency p50 ${percentile(wh, 50).toFixed(0)} ms, p99 ${percentile(wh, 99).toFixed(0)} ms (as the emulator measured them)`,
    );
    if (hubDevices > 0) {
      console.log('');
      await hubPhase(emulator, stateDir);
    }
  } finally {
    await emulator.stop();
    webhook.closeAllConnections();
    await new Promise((resolve) => webhook.close(resolve));
    rmSync(stateDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
