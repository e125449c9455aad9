import net from 'node:net';
import { createSecureContext } from 'node:tls';
import { describe, expect, it, vi } from 'vitest';
import { createMqttTransport } from './mqtt.js';
import { RegistrationObserver } from './observer.js';

/** The SDK's queue of PUBLISHes awaiting a PUBACK, which createMqttTransport's purge patch wraps. */
interface OnTheWire {
  add(key: number, message: { enqueuedTimeSecondsSinceEpoch: number; callback: (err?: Error) => void }): void;
  purge(err?: Error): void;
}

function transportQueue(tlsContext?: ReturnType<typeof createSecureContext>): {
  queue: OnTheWire;
  provider: unknown;
} {
  const observer = new RegistrationObserver('device-1', performance.now(), undefined);
  const endpoint = { hostname: '127.0.0.1', port: 8883, hostWithPort: '127.0.0.1:8883' };
  const transport = createMqttTransport(observer, endpoint, undefined, false, tlsContext);
  const base = (
    transport.sdkTransport as unknown as { _mqttBase: { _onTheWirePublishes: OnTheWire; mqttProvider: unknown } }
  )._mqttBase;
  return { queue: base._onTheWirePublishes, provider: base.mqttProvider };
}

describe('createMqttTransport', () => {
  it('still fails a PUBLISH awaiting its PUBACK with the SDK’s NotConnectedError when the connection is lost', () => {
    const { queue } = transportQueue();
    const failures: Error[] = [];
    queue.add(1, {
      enqueuedTimeSecondsSinceEpoch: Math.floor(Date.now() / 1000),
      callback: (err) => failures.push(err as Error),
    });
    queue.purge();
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ name: 'NotConnectedError', message: 'Connect was lost' });
    expect(failures[0]?.stack).toContain('NotConnectedError: Connect was lost\n    at ');
    // Purged once: a second disconnect has nothing left to fail.
    queue.purge();
    expect(failures).toHaveLength(1);
  });

  it('gives errors their stack traces again once the transport is made', () => {
    const limit = Error.stackTraceLimit;
    transportQueue();
    expect(Error.stackTraceLimit).toBe(limit);
  });

  it('shares one mqtt.js factory between the devices of one TLS context, another for another context', () => {
    const context = createSecureContext({});
    const first = transportQueue(context).provider;
    expect(transportQueue(context).provider).toBe(first);
    expect(transportQueue(createSecureContext({})).provider).not.toBe(first);
    expect(transportQueue().provider).not.toBe(first);
  });

  it('turns Nagle’s algorithm off on the SDK’s socket, with and without a shared TLS context', async () => {
    // With Nagle on, the SDK's poll (retry-after 0) waited in the kernel for the service's delayed
    // ACK of the PUBACK written just before it: ~40 ms a registration (see connectWithoutDelay).
    const listener = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const { port } = listener.address() as net.AddressInfo;
    const setNoDelay = vi.spyOn(net.Socket.prototype, 'setNoDelay');
    try {
      for (const context of [undefined, createSecureContext({})]) {
        setNoDelay.mockClear();
        const { provider } = transportQueue(context);
        const client = (provider as { connect(uri: string, options: object): unknown }).connect(
          `mqtts://127.0.0.1:${port}`,
          { reconnectPeriod: 0, rejectUnauthorized: false },
        ) as { stream: net.Socket; on(event: 'error', listener: () => void): void; end(force: boolean): void };
        client.on('error', () => {});
        expect(setNoDelay.mock.contexts).toContain(client.stream);
        expect(setNoDelay.mock.calls[setNoDelay.mock.contexts.indexOf(client.stream)]).toEqual([true]);
        client.end(true);
      }
    } finally {
      setNoDelay.mockRestore();
      await new Promise((resolve) => listener.close(resolve));
    }
  });
});
