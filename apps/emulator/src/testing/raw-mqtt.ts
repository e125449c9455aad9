// A raw MQTT 3.1.1 client for what the SDK never sends: mqtt.js 4, the very client library the
// SDK's azure-iot-mqtt-base uses underneath, taken from that package's own dependencies.
import { createRequire } from 'node:module';
import type { Emulator } from '../emulator.js';

const requireFromHere = createRequire(import.meta.url);
const requireFromBase = createRequire(requireFromHere.resolve('azure-iot-mqtt-base'));

interface MqttClient {
  on(event: 'message', listener: (topic: string, payload: Buffer, packet: { qos: number }) => void): this;
  on(event: 'close' | 'connect', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  removeListener(event: 'message', listener: (topic: string, payload: Buffer, packet: { qos: number }) => void): this;
  subscribe(
    topic: string,
    options: { qos: 0 | 1 | 2 },
    callback: (err: Error | null, granted: { topic: string; qos: number }[]) => void,
  ): void;
  unsubscribe(topic: string, callback: (err?: Error) => void): void;
  publish(
    topic: string,
    payload: string | Buffer,
    options: { qos: 0 | 1; retain?: boolean },
    callback?: (err?: Error) => void,
  ): void;
  end(force?: boolean, callback?: () => void): void;
  connected: boolean;
}

const mqtt = requireFromBase('mqtt') as { connect(url: string, options: Record<string, unknown>): MqttClient };

export interface RawMqttDevice {
  client: MqttClient;
  /** Publishes and resolves with the response for this `$rid` (status from the topic, JSON body). */
  request(
    topic: string,
    payload: string | Buffer,
    rid: string,
  ): Promise<{ topic: string; status: number; body: unknown }>;
  /** Resolves when the broker closes the connection. */
  closed: Promise<void>;
  end(): Promise<void>;
}

export async function connectRawDevice(
  emulator: Emulator,
  options: { clientId: string; username?: string; password?: string; keepalive?: number },
): Promise<RawMqttDevice> {
  const client = mqtt.connect(`mqtts://localhost:${emulator.endpoints.mqtt.port}`, {
    ca: emulator.caCertPem,
    clientId: options.clientId,
    ...(options.username !== undefined ? { username: options.username } : {}),
    ...(options.password !== undefined ? { password: options.password } : {}),
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    ...(options.keepalive !== undefined ? { keepalive: options.keepalive } : {}),
  });
  const closed = new Promise<void>((resolve) => client.on('close', () => resolve()));
  // A refused CONNACK is an error (mqtt.js: `Connection refused: …`, its return code as `code`).
  let refusal: Error | undefined;
  client.on('error', (err) => {
    refusal ??= err;
  });
  await new Promise<void>((resolve, reject) => {
    client.on('connect', () => resolve());
    void closed.then(() => reject(refusal ?? new Error('connection closed before CONNACK')));
  });
  const waiting = new Map<string, (response: { topic: string; status: number; body: unknown }) => void>();
  client.on('message', (topic, payload) => {
    const match = /^\$dps\/registrations\/res\/(\d+)\/\?(.*)$/.exec(topic);
    if (!match) return;
    const rid = new URLSearchParams(match[2]).get('$rid') ?? '';
    waiting.get(rid)?.({ topic, status: Number(match[1]), body: JSON.parse(payload.toString('ascii')) });
  });
  return {
    client,
    closed,
    request: (topic, payload, rid) =>
      new Promise((resolve) => {
        waiting.set(rid, resolve);
        client.publish(topic, payload, { qos: 1 });
      }),
    end: () => new Promise<void>((resolve) => client.end(true, () => resolve())),
  };
}

export function subscribeResponses(device: RawMqttDevice, topic = '$dps/registrations/res/#'): Promise<number> {
  return new Promise((resolve, reject) =>
    device.client.subscribe(topic, { qos: 1 }, (err, granted) => (err ? reject(err) : resolve(granted[0]?.qos ?? -1))),
  );
}
