// The end-to-end bench's own clients, as one script: `node lean-clients.js <kind> <options JSON>`.
//   handshake: bare TLS 1.3 handshakes (connect, verify the server, close): the ceiling;
//   mqtt:      a lean DPS device on mqtt-packet (the MQTT codec the emulator itself uses) over
//              node:tls: CONNECT with a SAS token, SUBSCRIBE, register, poll until the final answer.
// Like `device-sim fleet`, the devices are spread over worker threads (this same file), each with one
// TLS context and its share of the concurrency, so that client and ceiling use the cores alike.
// Prints one JSON line: { completed, failed, firstError, wallMs, latenciesMs }.
import { availableParallelism } from 'node:os';
import tls from 'node:tls';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { createRegistrationSasToken, deriveDeviceKey } from '@dpskit/contracts';
import mqtt from 'mqtt-packet';

export interface LeanRun {
  kind: 'handshake' | 'mqtt';
  host: string;
  port: number;
  /** The CA to trust (PEM). */
  ca: string;
  count: number;
  concurrency: number;
  workers?: number;
  /** mqtt: registration ids `${prefix}${n}`, n from 1; keys derived from groupKey. */
  prefix?: string;
  idScope?: string;
  groupKey?: string;
  /** Per device (ms): a device without an answer by then fails. */
  timeoutMs?: number;
}

interface Shard {
  run: LeanRun;
  index: number;
  of: number;
}

export interface LeanResult {
  completed: number;
  failed: number;
  firstError?: string;
  wallMs: number;
  latenciesMs: number[];
}

const API_VERSION = '2019-03-31';

/** One TLS handshake to its end: verified, then closed by the client. */
function handshake(run: LeanRun, context: tls.SecureContext): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: run.host, port: run.port, servername: 'localhost', secureContext: context });
    socket.on('secureConnect', () => socket.end());
    socket.on('error', reject);
    socket.on('close', () => resolve());
    socket.resume();
  });
}

/** One device's registration over MQTT: CONNECT, SUBSCRIBE + register, polls, DISCONNECT. */
function registerOverMqtt(run: LeanRun, context: tls.SecureContext, registrationId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const key = deriveDeviceKey(run.groupKey as string, registrationId);
    const password = createRegistrationSasToken({ idScope: run.idScope as string, registrationId, key });
    const socket = tls.connect({ host: run.host, port: run.port, servername: 'localhost', secureContext: context });
    socket.setNoDelay(true);
    const parser = mqtt.parser({ protocolVersion: 4 });
    let rid = 0;
    let done = false;
    const timer = setTimeout(() => fail(new Error(`${registrationId}: no final answer`)), run.timeoutMs ?? 60_000);
    const send = (packet: mqtt.Packet) => socket.write(mqtt.generate(packet));
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    // A request: `topic` with its $rid (and any further query), QoS 1 as the SDK sends it.
    const request = (topic: string, payload: string, query = '') =>
      send({
        cmd: 'publish',
        topic: `${topic}?$rid=${++rid}${query}`,
        payload,
        qos: 1,
        messageId: rid,
        dup: false,
        retain: false,
      });
    parser.on('packet', (packet: mqtt.Packet) => {
      if (packet.cmd === 'connack') {
        if (packet.returnCode !== 0) return fail(new Error(`${registrationId}: CONNACK ${packet.returnCode}`));
        send({ cmd: 'subscribe', messageId: 1000, subscriptions: [{ topic: '$dps/registrations/res/#', qos: 0 }] });
        request('$dps/registrations/PUT/iotdps-register/', JSON.stringify({ registrationId }));
        return;
      }
      if (packet.cmd !== 'publish') return;
      if (packet.qos > 0 && packet.messageId !== undefined) send({ cmd: 'puback', messageId: packet.messageId });
      const match = /^\$dps\/registrations\/res\/(\d+)\/\?(.*)$/.exec(packet.topic);
      if (!match) return;
      const status = Number(match[1]);
      const body = JSON.parse(packet.payload.toString()) as { operationId?: string; status?: string };
      if (status === 200 && body.status === 'assigned') {
        done = true;
        clearTimeout(timer);
        send({ cmd: 'disconnect' });
        socket.end();
        return resolve();
      }
      if ((status === 202 || status === 200) && body.operationId && body.status === 'assigning') {
        const retryAfter = Number(new URLSearchParams(match[2]).get('retry-after') ?? '0');
        const operationId = body.operationId;
        const next = () =>
          request('$dps/registrations/GET/iotdps-get-operationstatus/', '', `&operationId=${operationId}`);
        if (retryAfter > 0) setTimeout(next, retryAfter * 1000);
        else setImmediate(next);
        return;
      }
      fail(new Error(`${registrationId}: ${status} ${packet.payload.toString().slice(0, 200)}`));
    });
    parser.on('error', (err: Error) => fail(err));
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    socket.on('error', (err) => fail(err));
    socket.on('close', () => fail(new Error(`${registrationId}: connection closed before the final answer`)));
    socket.on('secureConnect', () =>
      send({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: true,
        clientId: registrationId,
        keepalive: 0,
        username: `${run.idScope}/registrations/${registrationId}/api-version=${API_VERSION}`,
        password: Buffer.from(password),
      }),
    );
  });
}

/** A worker's shard: devices index, index + of, … with its share of the concurrency. */
async function runShard({ run, index, of }: Shard): Promise<Omit<LeanResult, 'wallMs'>> {
  const context = tls.createSecureContext({ ca: run.ca });
  const devices: number[] = [];
  for (let i = index; i < run.count; i += of) devices.push(i);
  const concurrency = Math.max(1, Math.floor(run.concurrency / of) + (index < run.concurrency % of ? 1 : 0));
  const result: Omit<LeanResult, 'wallMs'> = { completed: 0, failed: 0, latenciesMs: [] };
  let next = 0;
  const lane = async () => {
    while (next < devices.length) {
      const device = devices[next++] as number;
      const started = performance.now();
      try {
        if (run.kind === 'handshake') await handshake(run, context);
        else await registerOverMqtt(run, context, `${run.prefix}${device + 1}`);
        result.completed += 1;
        result.latenciesMs.push(performance.now() - started);
      } catch (err) {
        result.failed += 1;
        result.firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, devices.length) }, lane));
  return result;
}

/** Runs `run` over its worker threads; resolves with the merged result. */
async function runLean(run: LeanRun): Promise<LeanResult> {
  const workers = Math.max(1, Math.min(run.workers ?? availableParallelism(), run.concurrency, run.count));
  const started = performance.now();
  const parts = await Promise.all(
    Array.from(
      { length: workers },
      (_, index) =>
        new Promise<Omit<LeanResult, 'wallMs'>>((resolve, reject) => {
          const worker = new Worker(new URL(import.meta.url), { workerData: { run, index, of: workers } });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
  const wallMs = performance.now() - started;
  const merged: LeanResult = { completed: 0, failed: 0, wallMs, latenciesMs: [] };
  for (const part of parts) {
    merged.completed += part.completed;
    merged.failed += part.failed;
    merged.firstError ??= part.firstError;
    merged.latenciesMs.push(...part.latenciesMs);
  }
  return merged;
}

if (!isMainThread) {
  parentPort?.postMessage(await runShard(workerData as Shard));
} else {
  const [kind, json] = process.argv.slice(2);
  const run = { ...(JSON.parse(json ?? '{}') as Omit<LeanRun, 'kind'>), kind: kind as LeanRun['kind'] };
  process.stdout.write(`${JSON.stringify(await runLean(run))}\n`);
}
