import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { deriveDeviceKey } from '@dpskit/contracts';
import { createEmulator, type HubEvent } from '@dpskit/emulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectionArgs, DEVICE_SIM_CLI } from './harness/device-sim.js';
import { emulatorHubClient, emulatorRegistry, type HubServiceClient } from './harness/registry.js';
import { stablePorts } from './harness/stable-ports.js';
import { startTutorialStack, type TutorialStack } from './harness/stack.js';
import { TUTORIAL } from './harness/tutorial.js';

// `device-sim register --stay`: a device that provisions, connects to its hub and stays, for users
// testing their service-side code. The service side is the official azure-iothub SDK (Client
// .invokeDeviceMethod, Registry.updateTwin) against the emulated hub; the device is device-sim's
// built CLI in a child process, read line by line. No step is timed: each waits for the line it
// needs (the test's own timeout bounds a hang).

let stack: TutorialStack;
let service: HubServiceClient;
beforeAll(async () => {
  stack = await startTutorialStack();
  service = emulatorHubClient(stack.emulator, TUTORIAL.toasterHub);
});
afterAll(async () => {
  await stack?.close();
});

interface StayingDevice {
  child: ChildProcessWithoutNullStreams;
  /** Every stdout line so far. */
  lines: string[];
  /** Resolves with the first line (from the start) that `match` accepts. */
  line(match: (line: string) => boolean): Promise<string>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stderr(): string;
}

function startStaying(registrationId: string, extra: readonly string[]): StayingDevice {
  return startDeviceSim(['register', '--registration-id', registrationId, ...extra]);
}

/** `device-sim <command> <connection flags> --payload <tutorial's> --stay <extra>` in a child process. */
function startDeviceSim(
  [command, ...extra]: readonly string[],
  connection: readonly string[] = stack.connectionArgs('mqtt'),
): StayingDevice {
  const child = spawn(
    process.execPath,
    [
      DEVICE_SIM_CLI,
      command ?? 'register',
      ...connection,
      '--payload',
      JSON.stringify(TUTORIAL.payload),
      '--stay',
      ...extra,
    ],
    { env: { ...process.env, DPS_GROUP_KEY: TUTORIAL.groupKey } },
  );
  const lines: string[] = [];
  const waiting = new Set<() => void>();
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    for (const wake of waiting) wake();
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    lines,
    stderr: () => stderr,
    exited,
    line: (match) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(match);
          if (found !== undefined) {
            waiting.delete(check);
            resolve(found);
          }
        };
        waiting.add(check);
        check();
        void exited.then(() => {
          if (waiting.has(check)) {
            waiting.delete(check);
            reject(new Error(`device-sim exited before the line; stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`));
          }
        });
      }),
  };
}

/**
 * Resolves once the hub holds no cloud-to-device message for the device: checked now and at each of
 * the device's `c2d` hub events (emitted once the store has committed the change).
 */
function c2dQueueEmpty(id: string, hub: string): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (stack.emulator.cloudToDeviceQueue(id, hub).length > 0) return;
      stack.emulator.off('hub', onHub);
      resolve();
    };
    const onHub = (event: HubEvent) => {
      if (event.kind === 'c2d' && event.deviceId === id) check();
    };
    stack.emulator.on('hub', onHub);
    check();
  });
}

const jsonEvent =
  (event: string, match: (e: Record<string, unknown>) => boolean = () => true) =>
  (line: string): boolean => {
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      return parsed.event === event && match(parsed);
    } catch {
      return false;
    }
  };

describe('register --stay', () => {
  it('answers direct methods, takes desired changes (acknowledged), sends telemetry, leaves on SIGTERM with 0', async () => {
    const id = 'contoso-toaster-stay-1';
    const device = startStaying(id, [
      '--json',
      '--method',
      'reboot=200:{"rebooting":true}',
      '--method',
      'selfTest=500:{"error":"heater open"}',
      '--method',
      'quiet=none',
      '--ack-desired',
      '--interval',
      '1',
    ]);
    try {
      // The outcome first, as soon as the device is assigned; then `connected` once it listens.
      const outcome = JSON.parse(device.lines[0] ?? (await device.line(() => true)));
      expect(outcome).toMatchObject({ status: 'assigned', assignedHub: TUTORIAL.toasterHub, deviceId: id });
      const connected = JSON.parse(await device.line(jsonEvent('connected')));
      expect(connected).toMatchObject({ hub: TUTORIAL.toasterHub, deviceId: id, telemetrySent: 0 });
      expect(connected.desired).toMatchObject(TUTORIAL.initialTwin.properties.desired);

      // Direct methods, as a backend calls them.
      const reboot = await service.invokeDeviceMethod(id, { methodName: 'reboot', payload: { delay: 3 } });
      expect(reboot.result).toEqual({ status: 200, payload: { rebooting: true } });
      const selfTest = await service.invokeDeviceMethod(id, { methodName: 'selfTest' });
      expect(selfTest.result).toEqual({ status: 500, payload: { error: 'heater open' } });
      // A method no --method names: the request echoed.
      const ping = await service.invokeDeviceMethod(id, { methodName: 'ping', payload: { n: 1 } });
      expect(ping.result).toEqual({ status: 200, payload: { methodName: 'ping', payload: { n: 1 } } });
      // quiet=none: no answer, so IoT Hub's timeout answers the caller.
      const quiet = await service.invokeDeviceMethod(id, { methodName: 'quiet', responseTimeoutInSeconds: 5 }).then(
        () => undefined,
        (err: { response?: { statusCode?: number; headers?: Record<string, unknown> } }) => err,
      );
      expect(quiet?.response?.statusCode).toBe(504);
      expect(quiet?.response?.headers?.['iothub-errorcode']).toBe('GatewayTimeout');
      // The service may have an answer before the device's line is out: wait for the last call's line.
      await device.line(jsonEvent('method', (e) => e.methodName === 'quiet'));
      const methodLines = device.lines.filter(jsonEvent('method')).map((l) => JSON.parse(l));
      expect(methodLines).toEqual([
        expect.objectContaining({
          methodName: 'reboot',
          payload: { delay: 3 },
          status: 200,
          response: { rebooting: true },
        }),
        expect.objectContaining({
          methodName: 'selfTest',
          payload: null,
          status: 500,
          response: { error: 'heater open' },
        }),
        expect.objectContaining({ methodName: 'ping', payload: { n: 1 }, status: 200 }),
        expect.not.objectContaining({ status: expect.anything() }),
      ]);

      // A desired property change from the service: printed, and acknowledged as PnP does.
      const registry = emulatorRegistry(stack.emulator, TUTORIAL.toasterHub);
      await registry.updateTwin(id, { properties: { desired: { toastLevel: 5 } } }, '*');
      const desired = JSON.parse(await device.line(jsonEvent('desired')));
      expect(desired.patch).toMatchObject({ toastLevel: 5 });
      expect(typeof desired.version).toBe('number');
      const acked = JSON.parse(await device.line(jsonEvent('reported')));
      expect(acked).toEqual(
        expect.objectContaining({
          reported: { toastLevel: { value: 5, ac: 200, av: desired.version, ad: 'completed' } },
        }),
      );
      expect(acked.errorMessage).toBeUndefined();
      const twin = (await registry.getTwin(id)).responseBody;
      expect(twin.properties.reported.toastLevel).toEqual({ value: 5, ac: 200, av: desired.version, ad: 'completed' });

      // Telemetry every --interval: the hub received what the lines say was sent.
      await device.line(jsonEvent('telemetry', (e) => e.seq === 2));
      const seqs = stack.emulator
        .telemetry(TUTORIAL.toasterHub, id)
        .map((m) => JSON.parse(m.body.toString()).seq as number);
      expect(seqs.slice(0, 2)).toEqual([1, 2]);

      device.child.kill('SIGTERM');
      expect(await device.exited, device.stderr()).toBe(0);
      const left = JSON.parse(device.lines.at(-1) ?? '');
      expect(left).toMatchObject({
        event: 'left',
        status: 'connected',
        hub: TUTORIAL.toasterHub,
        deviceId: id,
        stay: { methods: 4, desiredChanges: 1, messages: 0 },
      });
      expect(left.telemetrySent).toBeGreaterThanOrEqual(2);
      // Never a key or token in the output.
      const output = device.lines.join('\n') + device.stderr();
      for (const secret of [
        TUTORIAL.groupKey,
        deriveDeviceKey(TUTORIAL.groupKey, id),
        'SharedAccessSignature',
        'sig=',
      ]) {
        expect(output).not.toContain(secret);
      }
    } finally {
      device.child.kill('SIGKILL');
    }
  }, 120_000);

  it('prints one line per event as text, and leaves on Ctrl-C (SIGINT) with 0', async () => {
    const id = 'contoso-toaster-stay-2';
    const device = startStaying(id, []);
    try {
      await device.line((l) => l.startsWith('Listening for direct methods'));
      expect(device.lines).toContain(`Connecting to IoT hub ${TUTORIAL.toasterHub} as ${id}`);
      const answer = await service.invokeDeviceMethod(id, { methodName: 'getLog', payload: 'all' });
      expect(answer.result).toEqual({ status: 200, payload: { methodName: 'getLog', payload: 'all' } });
      const methodLine = await device.line((l) => / method getLog /.test(l));
      expect(methodLine).toMatch(
        /^\d{4}-\d\d-\d\dT[\d:.]+Z method getLog \(request \w+\) payload "all" -> 200 \{"methodName":"getLog","payload":"all"\}$/,
      );
      // Method names that are Object.prototype's members are methods like any other: echoed.
      for (const methodName of ['constructor', 'toString', '__proto__']) {
        const echoed = await service.invokeDeviceMethod(id, { methodName, payload: 1 });
        expect(echoed.result).toEqual({ status: 200, payload: { methodName, payload: 1 } });
      }
      device.child.kill('SIGINT');
      expect(await device.exited, device.stderr()).toBe(0);
      expect(device.lines.at(-1)).toMatch(
        /^Left the hub after \d+\.\d s: 4 method calls, 0 desired property changes, 0 cloud-to-device messages, 0 telemetry messages sent$/,
      );
    } finally {
      device.child.kill('SIGKILL');
    }
  }, 120_000);

  it('prints each cloud-to-device message the hub delivers (emulator API, azure-iothub Client.send) and completes it', async () => {
    const id = 'contoso-toaster-stay-c2d';
    const device = startStaying(id, ['--json']);
    try {
      await device.line(jsonEvent('connected'));
      const hub = TUTORIAL.toasterHub;
      stack.emulator.sendCloudToDevice(
        id,
        {
          body: '{"toast":"now"}\nsecond line',
          messageId: 'm-1',
          correlationId: 'c-1',
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          properties: { priority: 'high' },
        },
        hub,
      );
      stack.emulator.sendCloudToDevice(id, { body: new Uint8Array([0xff, 0x00, 0x01]), messageId: 'm-2' }, hub);
      // And as a backend sends one: azure-iothub's Client.send over AMQP.
      const amqp = emulatorHubClient(stack.emulator, hub);
      try {
        await amqp.send(id, 'from the service SDK');
      } finally {
        await amqp.close();
      }
      const fromSdk = JSON.parse(await device.line(jsonEvent('message', (e) => e.body === 'from the service SDK')));
      expect(fromSdk).toMatchObject({ deviceId: id, bodyEncoding: 'utf-8', bodyBytes: 20, completed: true });
      const first = JSON.parse(await device.line(jsonEvent('message', (e) => e.messageId === 'm-1')));
      expect(first).toEqual({
        atUtc: expect.any(String),
        deviceId: id,
        event: 'message',
        messageId: 'm-1',
        correlationId: 'c-1',
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        // The SDK keeps the hub's iothub-ack (the feedback asked for, none by default) among the properties.
        properties: { priority: 'high', 'iothub-ack': 'none' },
        body: '{"toast":"now"}\nsecond line',
        bodyEncoding: 'utf-8',
        bodyBytes: 27,
        completed: true,
      });
      const second = JSON.parse(await device.line(jsonEvent('message', (e) => e.messageId === 'm-2')));
      expect(second).toMatchObject({ body: '/wAB', bodyEncoding: 'base64', bodyBytes: 3, completed: true });
      // Completed: the hub's queue for the device empties (the PUBACK reaches it after the line may be out).
      await c2dQueueEmpty(id, hub);
      device.child.kill('SIGTERM');
      expect(await device.exited, device.stderr()).toBe(0);
      expect(JSON.parse(device.lines.at(-1) ?? '')).toMatchObject({ event: 'left', stay: { messages: 3 } });
    } finally {
      device.child.kill('SIGKILL');
    }
  }, 120_000);

  it('fleet --stay: every device stays and answers; on SIGINT they leave, the summary counts it, exit 0', async () => {
    const ids = [1, 2, 3].map((n) => `contoso-toaster-fleetstay-${n}`);
    const fleet = startDeviceSim([
      'fleet',
      '--count',
      '3',
      '--registration-id-template',
      'contoso-toaster-fleetstay-{n}',
      '--method',
      'reboot=200:{"rebooting":true}',
      '--json',
    ]);
    try {
      for (const id of ids) await fleet.line(jsonEvent('connected', (e) => e.deviceId === id));
      for (const id of ids) {
        const answer = await service.invokeDeviceMethod(id, { methodName: 'reboot' });
        expect(answer.result).toEqual({ status: 200, payload: { rebooting: true } });
      }
      // Each device printed its call (the service may have its answer before the device's line is out).
      for (const id of ids) await fleet.line(jsonEvent('method', (e) => e.deviceId === id && e.status === 200));
      fleet.child.kill('SIGINT');
      expect(await fleet.exited, fleet.stderr()).toBe(0);
      expect(fleet.stderr()).toContain('leaving: every device disconnects from its hub');
      const summary = JSON.parse(fleet.lines.at(-1) ?? '');
      expect(summary).toMatchObject({
        requested: 3,
        completed: 3,
        byStatus: { assigned: 3 },
        hub: { connected: 3, failed: 0, stay: { methods: 3, desiredChanges: 0, messages: 0 } },
      });
    } finally {
      fleet.child.kill('SIGKILL');
    }
  }, 120_000);
});

describe('register --stay --hub-transport', () => {
  /** `--hub-host` for the emulated hubs over `transport` (the stack's emulator listens on ports of its own). */
  const hubHost = (transport: string): string => {
    const { amqp, https, webSockets } = stack.emulator.endpoints;
    const port = transport === 'amqp' ? amqp?.port : transport === 'http' ? https?.port : webSockets?.port;
    return `localhost:${port}`;
  };
  const overTransport = (transport: string) => ['--hub-transport', transport, '--hub-host', hubHost(transport)];

  it.each(['amqp', 'amqp-ws', 'mqtt-ws'])(
    'over %s: answers direct methods (named and any other), takes desired changes, prints and completes C2D messages',
    async (transport) => {
      const id = `contoso-toaster-stay-${transport}`;
      const hubTransports: string[] = [];
      const onHub = (event: HubEvent) => {
        if (event.kind === 'connected' && event.deviceId === id) hubTransports.push(event.transport);
      };
      stack.emulator.on('hub', onHub);
      const device = startStaying(id, [
        '--json',
        '--method',
        'reboot=200:{"rebooting":true}',
        '--ack-desired',
        ...overTransport(transport),
      ]);
      try {
        const connected = JSON.parse(await device.line(jsonEvent('connected')));
        expect(connected).toMatchObject({ hub: TUTORIAL.toasterHub, deviceId: id, transport });
        expect(connected.desired).toMatchObject(TUTORIAL.initialTwin.properties.desired);
        const reboot = await service.invokeDeviceMethod(id, { methodName: 'reboot' });
        expect(reboot.result).toEqual({ status: 200, payload: { rebooting: true } });
        // A method no --method names: the request echoed (the SDK itself drops it).
        const ping = await service.invokeDeviceMethod(id, { methodName: 'ping', payload: { n: 1 } });
        expect(ping.result).toEqual({ status: 200, payload: { methodName: 'ping', payload: { n: 1 } } });

        const registry = emulatorRegistry(stack.emulator, TUTORIAL.toasterHub);
        await registry.updateTwin(id, { properties: { desired: { toastLevel: 4 } } }, '*');
        const desired = JSON.parse(await device.line(jsonEvent('desired')));
        expect(desired.patch).toMatchObject({ toastLevel: 4 });
        await device.line(jsonEvent('reported', (e) => e.errorMessage === undefined));

        stack.emulator.sendCloudToDevice(
          id,
          { body: 'over the hub transport', messageId: `m-${transport}` },
          TUTORIAL.toasterHub,
        );
        const message = JSON.parse(await device.line(jsonEvent('message')));
        expect(message).toMatchObject({ messageId: `m-${transport}`, body: 'over the hub transport', completed: true });
        await c2dQueueEmpty(id, TUTORIAL.toasterHub);
        // The hub saw the device connect over that transport (WebSockets count as their protocol).
        expect(hubTransports).toContain(transport.startsWith('amqp') ? 'amqp' : 'mqtt');

        device.child.kill('SIGTERM');
        expect(await device.exited, device.stderr()).toBe(0);
        expect(JSON.parse(device.lines.at(-1) ?? '')).toMatchObject({
          event: 'left',
          status: 'connected',
          stay: { methods: 2, desiredChanges: 1, messages: 1 },
        });
      } finally {
        stack.emulator.off('hub', onHub);
        device.child.kill('SIGKILL');
      }
    },
    120_000,
  );

  it('over http: no twin, cloud-to-device messages by polling, telemetry on the interval; methods refused up front', async () => {
    const id = 'contoso-toaster-stay-http';
    const device = startStaying(id, ['--json', '--interval', '1', ...overTransport('http')]);
    try {
      const connected = JSON.parse(await device.line(jsonEvent('connected')));
      expect(connected).toMatchObject({ hub: TUTORIAL.toasterHub, deviceId: id, transport: 'http' });
      expect(connected.desired).toBeUndefined();
      stack.emulator.sendCloudToDevice(id, { body: 'polled', messageId: 'm-http' }, TUTORIAL.toasterHub);
      expect(JSON.parse(await device.line(jsonEvent('message')))).toMatchObject({
        messageId: 'm-http',
        completed: true,
      });
      await device.line(jsonEvent('telemetry', (e) => e.seq === 1 && e.errorMessage === undefined));
      expect(stack.emulator.telemetry(TUTORIAL.toasterHub, id).length).toBeGreaterThanOrEqual(1);
      // A direct method finds no device listening (IoT Hub's 404103): HTTP has none.
      const call = await service.invokeDeviceMethod(id, { methodName: 'reboot', connectTimeoutInSeconds: 0 }).then(
        () => undefined,
        (err: { response?: { statusCode?: number } }) => err,
      );
      expect(call?.response?.statusCode).toBe(404);
      device.child.kill('SIGTERM');
      expect(await device.exited, device.stderr()).toBe(0);
    } finally {
      device.child.kill('SIGKILL');
    }

    const refused = startStaying('contoso-toaster-stay-http-2', ['--method', 'reboot=200', ...overTransport('http')]);
    expect(await refused.exited).toBe(2);
    expect(refused.stderr()).toContain("--hub-transport http (IoT Hub's HTTPS device API) has neither");
  }, 120_000);

  it('Ctrl-C after the assignment, before the device listens on its hub: it leaves, exit 0', async () => {
    // A hub host that takes the connection and never answers: the device stays between its
    // assignment and its first hub answer until the signal.
    const held: Socket[] = [];
    const silent = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    const connecting = new Promise<void>((resolve) => silent.once('connection', () => resolve()));
    const device = startStaying('contoso-toaster-stay-early', ['--json', '--hub-host', `127.0.0.1:${port}`]);
    try {
      const outcome = JSON.parse(await device.line(() => true));
      expect(outcome).toMatchObject({ status: 'assigned' });
      await connecting;
      device.child.kill('SIGINT');
      expect(await device.exited, device.stderr()).toBe(0);
      expect(JSON.parse(device.lines.at(-1) ?? '')).toMatchObject({ event: 'left', errorName: 'AbortError' });
    } finally {
      device.child.kill('SIGKILL');
      for (const socket of held) socket.destroy();
      silent.close();
    }
  }, 120_000);
});

describe('register --stay while its hub restarts', () => {
  it('says the connection was lost, reconnects through the SDK and answers methods again', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'dpskit-e2e-stay-restart-'));
    // The emulator's own tutorial setup (hashed allocation), restarted on the same state folder and MQTT port.
    const start = (mqttPort: number) => {
      const emulator = createEmulator({
        stateDir,
        mqttPort,
        httpsPort: 0,
        amqpPort: 0,
        retryAfterSeconds: 0,
        log: () => {},
      });
      return emulator.start().then(() => emulator);
    };
    // The restart listens on the same MQTT port: one no outgoing connection can take meanwhile (see stablePorts).
    const [mqttPort] = (await stablePorts(1)) as [number];
    let emulator = await start(mqttPort);
    const id = 'contoso-toaster-stay-restart';
    const device = startDeviceSim(['register', '--registration-id', id, '--json'], connectionArgs(emulator, 'mqtt'));
    try {
      const connected = JSON.parse(await device.line(jsonEvent('connected')));
      await emulator.stop();
      const lost = JSON.parse(await device.line(jsonEvent('reconnecting')));
      expect(lost).toMatchObject({ deviceId: id, errorMessage: expect.any(String) });
      emulator = await start(mqttPort);
      await device.line(jsonEvent('reconnected'));
      // The SDK subscribed again by itself: a method reaches the device (the hub may route it only
      // once the SUBSCRIBE is granted, so a call that finds the device not yet listening is repeated).
      const hub = emulatorHubClient(emulator, connected.hub);
      for (;;) {
        const answer = await hub.invokeDeviceMethod(id, { methodName: 'ping', connectTimeoutInSeconds: 5 }).then(
          (r) => r.result,
          () => undefined,
        );
        if (answer) {
          expect(answer).toEqual({ status: 200, payload: { methodName: 'ping', payload: null } });
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      device.child.kill('SIGTERM');
      expect(await device.exited, device.stderr()).toBe(0);
      expect(device.lines.filter(jsonEvent('disconnected'))).toEqual([]);
    } finally {
      device.child.kill('SIGKILL');
      await emulator.stop();
      await rm(stateDir, { recursive: true, force: true });
    }
  }, 180_000);
});
