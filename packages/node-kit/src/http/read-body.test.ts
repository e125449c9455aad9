import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodyTooLargeError, ClientAbortedError, readBody } from './read-body.js';

describe('readBody', () => {
  const results: Array<Promise<Buffer>> = [];
  let server: http.Server;
  let port: number;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const body = readBody(req, 16);
      results.push(body);
      body.then(
        (b) => res.end(`ok ${b.length}`),
        (err: Error) => res.writeHead(err instanceof BodyTooLargeError ? 413 : 400).end(err.name),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  const post = async (body: string) => {
    const res = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body });
    return { status: res.status, text: await res.text() };
  };

  it('reads a body up to the limit', async () => {
    expect(await post('0123456789abcdef')).toEqual({ status: 200, text: 'ok 16' });
    expect(await post('')).toEqual({ status: 200, text: 'ok 0' });
  });

  it('refuses a larger body and still lets the server answer', async () => {
    expect(await post('x'.repeat(100_000))).toEqual({ status: 413, text: 'BodyTooLargeError' });
  });

  it('rejects when the client goes away mid-body', async () => {
    const before = results.length;
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc');
    await expect.poll(() => results.length).toBe(before + 1);
    socket.destroy();
    await expect(results[before]).rejects.toBeInstanceOf(ClientAbortedError);
  });
});
