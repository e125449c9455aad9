import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPortUrl } from '../testing/fixtures.js';
import { WebhookClient } from './webhook.js';

let server: http.Server;
let base: string;
const received: { method?: string; url?: string; headers: http.IncomingHttpHeaders; body: string }[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      // never answers: the client's timeout (or abort) is the only way out, however slow the machine
      if (req.url?.startsWith('/slow')) return;
      if (req.url?.startsWith('/big')) return void res.end('x'.repeat(5_000));
      if (req.url?.startsWith('/redirect')) return void res.writeHead(302, { Location: '/elsewhere' }).end();
      if (req.url?.startsWith('/cut')) return void res.socket?.destroy();
      res.writeHead(201, { 'Content-Type': 'application/json' }).end('{"ok":"ü"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('WebhookClient', () => {
  // Answers must never race a deadline on a loaded machine; only the silent /slow route meets the short one.
  const client = new WebhookClient({ timeoutMs: 30_000, maxResponseBytes: 1_000 });
  const impatient = new WebhookClient({ timeoutMs: 300, maxResponseBytes: 1_000 });
  afterAll(() => {
    client.close();
    impatient.close();
  });

  it('POSTs the body as JSON to the URL with its query and returns status and text', async () => {
    const outcome = await client.call(`${base}/api/allocate?code=secret%3D&x=1`, '{"a":"é"}');
    expect(outcome).toMatchObject({ kind: 'response', status: 201, body: '{"ok":"ü"}' });
    expect(outcome.latencyMs).toBeGreaterThanOrEqual(0);
    const last = received.at(-1);
    expect(last).toMatchObject({ method: 'POST', url: '/api/allocate?code=secret%3D&x=1', body: '{"a":"é"}' });
    expect(last?.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(last?.headers['content-length']).toBe(String(Buffer.byteLength('{"a":"é"}')));
  });

  it('reports timeouts, refused connections, cut answers, oversized bodies and bad URLs without throwing', async () => {
    expect(await impatient.call(`${base}/slow`, '{}')).toMatchObject({ kind: 'timeout', timeoutMs: 300 });
    expect(await client.call(await closedPortUrl(), '{}')).toMatchObject({
      kind: 'connection-error',
      reason: expect.stringContaining('ECONNREFUSED'),
    });
    expect(await client.call(`${base}/cut`, '{}')).toMatchObject({ kind: 'connection-error' });
    expect(await client.call(`${base}/big`, '{}')).toMatchObject({
      kind: 'response',
      status: 200,
      bodyError: 'the body is larger than 1000 bytes',
    });
    expect(await client.call(`${base}/redirect`, '{}')).toMatchObject({ kind: 'response', status: 302 });
    expect(await client.call('not a url', '{}')).toMatchObject({
      kind: 'connection-error',
      reason: '"not a url" is not a valid URL',
    });
    expect(await client.call('ftp://x/y', '{}')).toMatchObject({
      kind: 'connection-error',
      reason: 'unsupported protocol "ftp:"',
    });
  });

  it('stops waiting when aborted', async () => {
    const controller = new AbortController();
    const pending = client.call(`${base}/slow`, '{}', controller.signal);
    setTimeout(() => controller.abort(), 20);
    expect(await pending).toMatchObject({ kind: 'connection-error', reason: 'aborted: the emulator is stopping' });
  });
});

describe('WebhookClient and a webhook that closes idle connections (issue 8 item 8)', () => {
  it('retries a request that met a dead kept-alive connection on a fresh one: no call fails', async () => {
    // Closes every connection ~5 ms after a complete answer, as a busy Functions host may: the
    // agent's next request can be written into a socket the server is just closing.
    const closing = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.on('finish', () => setTimeout(() => req.socket.destroy(), 5));
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"iotHubHostName":"a.net"}');
      });
    });
    await new Promise<void>((resolve) => closing.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(closing.address() as AddressInfo).port}/api/allocate`;
    const client = new WebhookClient({ timeoutMs: 30_000 });
    const failures: string[] = [];
    try {
      for (let i = 0; i < 300; i++) {
        const outcome = await client.call(url, '{}');
        if (outcome.kind !== 'response' || outcome.status !== 200) failures.push(JSON.stringify(outcome));
        // Waits around the server's 5 ms, so that some requests meet a socket being closed.
        await new Promise((resolve) => setTimeout(resolve, i % 9));
      }
    } finally {
      client.close();
      closing.closeAllConnections();
      await new Promise((resolve) => closing.close(resolve));
    }
    expect(failures).toEqual([]);
  });
});
