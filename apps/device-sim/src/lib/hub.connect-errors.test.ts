import net from 'node:net';
import { closedPort } from '@dpskit/vitest-config/closed-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectToHub } from './hub.js';
import type { HubTransportName } from './hub-transport.js';

// The official device SDK, as device-sim drives it, at a --hub-host where no hub is: a closed port
// (refused), and a port where something else answers (plain bytes where TLS is expected). Real
// sockets; no hub is needed. The session names the socket's cause at once: over AMQP the SDK used
// to retry the refused connection until device-sim's timeout (TimeoutError), over MQTT it called
// it "Not authorized" (UnauthorizedError).

const KEY = 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';
const TRANSPORTS: HubTransportName[] = ['mqtt', 'mqtt-ws', 'amqp', 'amqp-ws'];
// Bounds the old code's retries (a TimeoutError after this long); the new code answers at once.
const BOUND_MS = 15_000;

function connect(transport: HubTransportName, gatewayHost: string) {
  return connectToHub({
    hub: 'contoso-toasters-hub-1098.azure-devices.net',
    deviceId: 'contoso-toaster-007',
    deviceKey: KEY,
    gatewayHost,
    transport,
    telemetryCount: 1,
    timeoutMs: BOUND_MS,
  });
}

describe('connectToHub at a wrong hub host', () => {
  let other: net.Server;
  let otherPort = 0;
  const sockets = new Set<net.Socket>();
  beforeAll(async () => {
    // Something that is no TLS listener: it answers in plain text and hangs up.
    other = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n', () => socket.destroy());
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    otherPort = (other.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => other.close(() => resolve()));
  });

  it.each(TRANSPORTS)('names a refused connection over %s', async (transport) => {
    const session = await connect(transport, `127.0.0.1:${await closedPort()}`);
    expect(session).toMatchObject({ status: 'error', errorName: 'ECONNREFUSED' });
    expect(session.errorMessage).toContain('ECONNREFUSED');
  });

  it.each(['mqtt', 'amqp'] as const)(
    'names a refused connection of a device meant to stay, over %s',
    async (transport) => {
      const port = await closedPort();
      const session = await connectToHub({
        hub: 'contoso-toasters-hub-1098.azure-devices.net',
        deviceId: 'contoso-toaster-007',
        deviceKey: KEY,
        gatewayHost: `127.0.0.1:${port}`,
        transport,
        timeoutMs: BOUND_MS,
        signal: new AbortController().signal,
        stay: {},
      });
      expect(session).toMatchObject({ status: 'error', errorName: 'ECONNREFUSED' });
    },
  );

  it.each(TRANSPORTS)('names the TLS failure at a port that speaks no TLS over %s', async (transport) => {
    const session = await connect(transport, `127.0.0.1:${otherPort}`);
    expect(session.status, JSON.stringify(session)).toBe('error');
    expect(session.errorName, session.errorMessage).toMatch(/^(ERR_SSL_|EPROTO$|ECONNRESET$)/);
  });
});
