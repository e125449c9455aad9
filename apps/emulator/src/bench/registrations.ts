// Measures registrations per second and latency percentiles of N devices registering at once over
// MQTT, against hashed and custom (local webhook) allocation. Run: pnpm --filter @dpskit/emulator bench
// Options: --devices N (default 250), --concurrency C (default = devices), --rounds R (default 3).
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { deriveDeviceKey, generateSymmetricKey, parseAllocationRequestJson } from '@dpskit/contracts';
import { percentile } from '@dpskit/node-kit';
import mqttBase from 'azure-iot-mqtt-base';
import provisioningDevice from 'azure-iot-provisioning-device';
import mqttTransport from 'azure-iot-provisioning-device-mqtt';
import symmetricKey from 'azure-iot-security-symmetric-key';
import { pickHashed } from '../core/allocation/hashed.js';
import { createEmulator, type Emulator } from '../emulator.js';

const { ProvisioningDeviceClient } = provisioningDevice;
const { Mqtt } = mqttTransport;
const { MqttBase } = mqttBase;
const { SymmetricKeySecurityClient } = symmetricKey;
type Security = Parameters<typeof ProvisioningDeviceClient.create>[3];

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '250' },
    concurrency: { type: 'string' },
    rounds: { type: 'string', default: '3' },
  },
});
const devices = Number(values.devices);
const concurrency = Number(values.concurrency ?? values.devices);
const rounds = Number(values.rounds);

const HUBS = ['hub-1.azure-devices.net', 'hub-2.azure-devices.net'];
const HASHED_KEY = generateSymmetricKey();
const CUSTOM_KEY = generateSymmetricKey();

function registerOne(emulator: Emulator, registrationId: string, groupKey: string): Promise<unknown> {
  const base = new MqttBase();
  base.setOptions({ ca: emulator.caCertPem });
  const transport = new Mqtt(base);
  const security = new SymmetricKeySecurityClient(
    registrationId,
    deriveDeviceKey(groupKey, registrationId),
  ) as unknown as Security;
  const client = ProvisioningDeviceClient.create(
    emulator.endpoints.mqtt.provisioningHost,
    emulator.idScope,
    transport,
    security,
  );
  client.setProvisioningPayload({ bench: true });
  return client.register() as unknown as Promise<unknown>;
}

async function runRound(
  emulator: Emulator,
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
      await registerOne(emulator, id, groupKey);
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { wallMs: performance.now() - started, latencies };
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
    httpsPort: null,
    amqpPort: null,
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
    `method: ${devices} official-SDK MQTT clients (azure-iot-provisioning-device-mqtt, TLS, symmetric-key group) register with ` +
      `${concurrency} in flight, in the same process as the emulator; retry-after 0 (the SDK polls at once); ` +
      `a fresh TLS connection per device; ${rounds} rounds per policy after a 20-device warm-up; latency = register() call to result.`,
  );
  console.log('');
  console.log('policy   round  devices  wall s  regs/s   p50 ms  p90 ms  p99 ms  max ms');
  try {
    for (const [policy, key] of [
      ['hashed', HASHED_KEY],
      ['custom', CUSTOM_KEY],
    ] as const) {
      await runRound(emulator, `warmup-${policy}`, key, 20);
      const all: number[] = [];
      let totalWall = 0;
      for (let round = 1; round <= rounds; round++) {
        const { wallMs, latencies } = await runRound(emulator, `${policy}-r${round}`, key);
        const sorted = [...latencies].sort((a, b) => a - b);
        all.push(...latencies);
        totalWall += wallMs;
        console.log(
          `${policy.padEnd(8)} ${String(round).padStart(5)}  ${String(devices).padStart(7)}  ${(wallMs / 1000).toFixed(2).padStart(6)}  ${(devices / (wallMs / 1000)).toFixed(0).padStart(6)}  ${[50, 90, 99, 100].map((p) => percentile(sorted, p).toFixed(0).padStart(6)).join('  ')}`,
        );
      }
      const sorted = all.sort((a, b) => a - b);
      console.log(
        `${policy.padEnd(8)}   all  ${String(all.length).padStart(7)}  ${(totalWall / 1000).toFixed(2).padStart(6)}  ${(all.length / (totalWall / 1000)).toFixed(0).padStart(6)}  ${[50, 90, 99, 100].map((p) => percentile(sorted, p).toFixed(0).padStart(6)).join('  ')}`,
      );
    }
    const wh = [...webhookLatencies].sort((a, b) => a - b);
    console.log('');
    console.log(
      `webhook calls: ${wh.length}, latency p50 ${percentile(wh, 50).toFixed(0)} ms, p99 ${percentile(wh, 99).toFixed(0)} ms (as the emulator measured them)`,
    );
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
