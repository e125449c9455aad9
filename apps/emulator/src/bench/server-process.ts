// The server side of `bench:server`, in a process of its own so that its RSS and CPU are the
// server's alone: either the emulator (MQTT only, no logging, no web view) or a bare TLS server
// with the same certificate, the ceiling. Driven over IPC by server.ts:
//   → { cmd: 'measure' }   ← { rss, heapUsed, cpuMicros } after two full GCs (node --expose-gc)
//   → { cmd: 'cpu' }       ← { cpuMicros }, nothing else done (the cpu phase's reading)
//   → { cmd: 'stop' }      ← exits
// Argument: emulator | bare, then the state folder.
import { join } from 'node:path';
import tls from 'node:tls';
import { generateSymmetricKey } from '@dpskit/contracts';
import { createEmulator } from '../emulator.js';
import { ensureCertificates } from '../tls/certificates.js';
import { CLIENT_CERTIFICATE_TLS_OPTIONS } from '../transport/peer-certificates.js';

export interface ServerReady {
  cmd: 'ready';
  port: number;
  caCertPem: string;
  idScope: string;
  groupKey: string;
}

export interface ServerCpu {
  cmd: 'cpu';
  /** User + system CPU of this process since it started, in microseconds. */
  cpuMicros: number;
}

export interface ServerMeasure {
  cmd: 'measured';
  rss: number;
  heapUsed: number;
  /** User + system CPU of this process since it started, in microseconds. */
  cpuMicros: number;
}

const [kind, stateDir] = process.argv.slice(2);
if ((kind !== 'emulator' && kind !== 'bare') || !stateDir) {
  throw new Error('usage: server-process.js emulator|bare STATE_DIR');
}
const send = (message: ServerReady | ServerCpu | ServerMeasure) => process.send?.(message);
const gc = (globalThis as { gc?: () => void }).gc;

async function main(): Promise<() => Promise<void>> {
  if (kind === 'bare') {
    const material = await ensureCertificates({ dir: join(stateDir as string, 'tls'), names: [] });
    // The emulator's TLS settings (peer-certificates.ts): it asks every client for a certificate.
    const serverOptions = {
      cert: material.serverCertPem,
      key: material.serverKeyPem,
      ...CLIENT_CERTIFICATE_TLS_OPTIONS,
    };
    const server = tls.createServer(serverOptions, (socket) => {
      socket.setNoDelay(true);
      socket.on('data', () => {});
      socket.on('error', () => {});
      socket.on('end', () => socket.end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    send({ cmd: 'ready', port, caCertPem: material.caCertPem, idScope: '', groupKey: '' });
    return () => new Promise((resolve) => server.close(() => resolve()));
  }
  const groupKey = generateSymmetricKey();
  const emulator = createEmulator({
    stateDir,
    mqttPort: 0,
    httpsPort: null,
    amqpPort: null,
    webView: false,
    retryAfterSeconds: 0,
    log: () => {},
    // The idle phase holds 10,000 devices for as long as it takes to connect them all.
    limits: { maxConnections: 20_000, idleTimeoutMs: 30 * 60_000 },
    config: {
      iotHubs: [{ hostName: 'hub-1.azure-devices.net' }, { hostName: 'hub-2.azure-devices.net' }],
      enrollmentGroups: [
        {
          enrollmentGroupId: 'bench',
          attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey } },
          allocationPolicy: 'hashed',
        },
      ],
    },
  });
  await emulator.start();
  send({
    cmd: 'ready',
    port: emulator.endpoints.mqtt.port,
    caCertPem: emulator.caCertPem,
    idScope: emulator.idScope,
    groupKey,
  });
  return () => emulator.stop();
}

main().then(
  (stop) => {
    process.on('message', (message: { cmd: string }) => {
      if (message.cmd === 'cpu') {
        // No forced GC here. With 'measure' opening a round, its two full collections (with no
        // connection open) ran inside the measured interval, after the reading that opened it:
        // their own time, and the optimized code V8 then dropped and compiled again in the round
        // (about 0.25 ms per registration for the emulator, measured side by side). A server in
        // use collects as its allocation asks; those collections stay measured.
        const cpu = process.cpuUsage();
        send({ cmd: 'cpu', cpuMicros: cpu.user + cpu.system });
      } else if (message.cmd === 'measure') {
        // CPU first: the collections below are the measurement's, not the server's work.
        const cpu = process.cpuUsage();
        gc?.();
        gc?.();
        const memory = process.memoryUsage();
        send({ cmd: 'measured', rss: memory.rss, heapUsed: memory.heapUsed, cpuMicros: cpu.user + cpu.system });
      } else if (message.cmd === 'stop') {
        void stop().finally(() => process.exit(0));
      }
    });
  },
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
