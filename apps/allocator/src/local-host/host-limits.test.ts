import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { AllocatorLogRecord } from '../log/record.js';
import { httpFunction } from '../registration/http-function.js';
import {
  DEFAULT_HOST_LIMITS,
  type HostLimits,
  hostLimits,
  type RunningFunctionsHost,
  startFunctionsHost,
} from './server.js';

// Real sockets against the host; no assertion on how long anything took. The timeouts are short
// so that the test is quick, and each case waits for what the host does (an answer, a close)
// however long a loaded machine takes: on a host without the bound it never comes, and the case
// fails at vitest's timeout.

let host: RunningFunctionsHost | undefined;
const logs: AllocatorLogRecord[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await host?.close();
  host = undefined;
  logs.length = 0;
});

async function start(limits: Partial<HostLimits>): Promise<RunningFunctionsHost> {
  host = await startFunctionsHost({
    port: 0,
    host: '127.0.0.1',
    routePrefix: 'api',
    functionKey: 'k',
    log: (r) => logs.push(r),
    limits,
    definitions: [
      httpFunction('echo', { methods: ['POST'], handler: async (request) => ({ body: await request.text() }) }),
    ],
  });
  return host;
}

/** A raw connection and everything it receives until the host closes it. */
function connect(port: number): { socket: net.Socket; received: Promise<string>; opened: Promise<void> } {
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  const received = new Promise<string>((resolve) =>
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1'))),
  );
  const opened = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, received, opened };
}

async function post(port: number, body: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://127.0.0.1:${port}/api/echo?code=k`, { method: 'POST', body });
  return { status: response.status, text: await response.text() };
}

/** `post` again (a new connection each time) until one is not closed for the connection cap. */
async function postUntilServed(port: number, body: string): Promise<{ status: number; text: string }> {
  for (;;) {
    const answered = await post(port, body).catch(() => undefined);
    if (answered) return answered;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the host bounds each connection', () => {
  it('answers 408 and closes a connection whose headers do not arrive within headersTimeoutMs, and keeps serving', async () => {
    const running = await start({ headersTimeoutMs: 300, requestTimeoutMs: 10_000 });
    const slow = connect(running.port);
    await slow.opened;
    // A slowloris client: a request line and one header, then nothing (the socket stays open).
    slow.socket.write('POST /api/echo?code=k HTTP/1.1\r\nHost: localhost\r\n');
    const answer = await slow.received;
    expect(answer.startsWith('HTTP/1.1 408 Request Timeout\r\n')).toBe(true);
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'HTTP request not received in time',
        data: expect.objectContaining({ headersTimeoutMs: 300, status: 408 }),
      }),
    );
    expect(await post(running.port, 'still here')).toEqual({ status: 200, text: 'still here' });
  });

  it('answers 408 and closes a connection whose body trickles in past requestTimeoutMs', async () => {
    const running = await start({ headersTimeoutMs: 200, requestTimeoutMs: 400 });
    const slow = connect(running.port);
    await slow.opened;
    slow.socket.write('POST /api/echo?code=k HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n');
    // A byte every 50 ms: never silent, never done.
    const trickle = setInterval(() => slow.socket.writable && slow.socket.write('x'), 50);
    try {
      const answer = await slow.received;
      expect(answer.startsWith('HTTP/1.1 408 Request Timeout\r\n')).toBe(true);
    } finally {
      clearInterval(trickle);
    }
    expect(await post(running.port, 'next')).toEqual({ status: 200, text: 'next' });
  });

  it('closes connections over maxConnections as they arrive, with a warning, and takes new ones once there is room', async () => {
    const running = await start({ maxConnections: 2 });
    const first = connect(running.port);
    const second = connect(running.port);
    await Promise.all([first.opened, second.opened]);
    // Both are accepted and held: a request on each is answered on the same connection.
    for (const held of [first, second])
      held.socket.write('POST /api/echo?code=k HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok');
    await Promise.all(
      [first, second].map((held) => new Promise<void>((resolve) => held.socket.once('data', () => resolve()))),
    );
    const third = connect(running.port);
    expect(await third.received).toBe('');
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: '2 connections open, the limit (limits.maxConnections); closed 1 new connection(s)',
      }),
    );
    first.socket.destroy();
    await first.received;
    expect(await postUntilServed(running.port, 'room')).toEqual({ status: 200, text: 'room' });
  });

  it("answers 431 (not 400) to headers over Node's 16 KiB", async () => {
    const running = await start({});
    const big = connect(running.port);
    await big.opened;
    big.socket.write(`POST /api/echo?code=k HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect((await big.received).startsWith('HTTP/1.1 431 Request Header Fields Too Large\r\n')).toBe(true);
  });
});

describe('a refused request', () => {
  it('does not keep the connection of a client that never closes its side after the answer', async () => {
    // One connection allowed: the next request is served only once the refused one is let go.
    const running = await start({ maxConnections: 1 });
    // allowHalfOpen: the client does not end its side when the host ends its own, and stays silent.
    const socket = net.connect({ port: running.port, host: '127.0.0.1', allowHalfOpen: true });
    sockets.push(socket);
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
    socket.write('NOT HTTP AT ALL\r\n\r\n');
    await ended;
    expect(Buffer.concat(chunks).toString('latin1').startsWith('HTTP/1.1 400 Bad Request\r\n')).toBe(true);
    // The host ended its side and, 5 s later (its grace), lets the connection go: then there is room.
    expect(await postUntilServed(running.port, 'after')).toEqual({ status: 200, text: 'after' });
  });
});

describe('hostLimits', () => {
  it("fills in the defaults: 30 s for headers (Kestrel), 60 s for a request, Node's 5 s keep-alive, 10,000 connections", () => {
    expect(hostLimits()).toEqual({
      headersTimeoutMs: 30_000,
      requestTimeoutMs: 60_000,
      keepAliveTimeoutMs: 5_000,
      maxConnections: 10_000,
    });
    expect(hostLimits({ maxConnections: 5 })).toEqual({ ...DEFAULT_HOST_LIMITS, maxConnections: 5 });
  });

  it('refuses values that cannot be used, naming the setting', () => {
    expect(() => hostLimits({ maxConnections: 0 })).toThrow(
      'limits.maxConnections must be a whole number >= 1, not 0.',
    );
    expect(() => hostLimits({ headersTimeoutMs: 1.5 })).toThrow('limits.headersTimeoutMs must be a whole number >= 1');
    expect(() => hostLimits({ headersTimeoutMs: 61_000 })).toThrow(
      'limits.headersTimeoutMs (61000) must not be larger than limits.requestTimeoutMs (60000)',
    );
  });
});
