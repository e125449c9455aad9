import net from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { createAmqpTransport } from './amqp.js';
import { RegistrationObserver } from './observer.js';

/** The parts of the SDK's AMQP transport and base (private in their typings) the test reaches. */
interface AmqpInternals {
  _amqpBase: {
    connect(config: object, done: (err?: Error) => void): void;
    disconnect(done: () => void): void;
    _rheaConnection?: { socket?: net.Socket };
  };
}

describe('createAmqpTransport', () => {
  it('turns Nagle’s algorithm off on rhea’s socket as the base connects', async () => {
    // With Nagle on, each small AMQP frame the SDK wrote a moment after another waited in the kernel
    // for the service's delayed ACK (40 ms): two such waits in every registration (see amqp.ts).
    const listener = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const { port } = listener.address() as net.AddressInfo;
    const setNoDelay = vi.spyOn(net.Socket.prototype, 'setNoDelay');
    try {
      const observer = new RegistrationObserver('device-1', performance.now(), undefined);
      const endpoint = { hostname: '127.0.0.1', port, hostWithPort: `127.0.0.1:${port}` };
      const transport = createAmqpTransport(observer, endpoint, undefined);
      const base = (transport.sdkTransport as unknown as AmqpInternals)._amqpBase;
      const failed = new Promise<Error | undefined>((resolve) =>
        base.connect({ uri: `amqps://127.0.0.1:${port}`, sslOptions: {}, userAgentString: 'test' }, resolve),
      );
      const socket = base._rheaConnection?.socket;
      expect(socket).toBeInstanceOf(net.Socket);
      expect(setNoDelay.mock.contexts).toContain(socket);
      expect(setNoDelay.mock.calls[setNoDelay.mock.contexts.indexOf(socket)]).toEqual([true]);
      // The listener drops the connection: the connect fails, and nothing is left open.
      expect(await failed).toBeInstanceOf(Error);
    } finally {
      setNoDelay.mockRestore();
      await new Promise((resolve) => listener.close(resolve));
    }
  });
});
