import { createSecureContext } from 'node:tls';
import { describe, expect, it } from 'vitest';
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
});
