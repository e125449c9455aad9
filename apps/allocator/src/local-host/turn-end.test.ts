import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { endWithTurn } from './turn-end.js';

let server: http.Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

/** A real server that hands each request to `onRequest`; resolves with its base URL. */
async function serve(onRequest: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = http.createServer(onRequest);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** What a client gets: status and body, or the error of a connection that went away. */
async function get(url: string): Promise<{ status: number; body: string } | 'failed'> {
  try {
    const res = await fetch(url);
    return { status: res.status, body: await res.text() };
  } catch {
    return 'failed';
  }
}

describe('endWithTurn', () => {
  it('writes the head at once and the body after the turn, each answer to its own client', async () => {
    const seen: Array<{ headersSent: boolean; ended: boolean }> = [];
    const url = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      endWithTurn(res, `answer to ${req.url}`);
      seen.push({ headersSent: res.headersSent, ended: res.writableEnded });
    });
    const paths = Array.from({ length: 20 }, (_, i) => `/r${i}`);
    const answers = await Promise.all(paths.map((path) => get(`${url}${path}`)));
    expect(answers).toEqual(paths.map((path) => ({ status: 200, body: `answer to ${path}` })));
    expect(seen).toEqual(paths.map(() => ({ headersSent: true, ended: false })));
  });

  it('answers a HEAD request (no body) and a Buffer body', async () => {
    const url = await serve((req, res) => {
      res.writeHead(200, { 'content-length': '3' });
      endWithTurn(res, req.method === 'HEAD' ? undefined : Buffer.from('abc'));
    });
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    expect(await get(url)).toEqual({ status: 200, body: 'abc' });
  });

  it('still answers the rest of the turn when one response cannot be ended', async () => {
    const waiting: ServerResponse[] = [];
    const url = await serve((_req, res) => {
      waiting.push(res);
      if (waiting.length < 4) return;
      // All four in one turn; the first is given a body res.end refuses (ERR_INVALID_ARG_TYPE).
      for (const [i, held] of waiting.entries()) {
        held.writeHead(200, { 'content-type': 'text/plain' });
        endWithTurn(held, i === 0 ? (42 as unknown as string) : `ok ${i}`);
      }
    });
    const answers = await Promise.all([1, 2, 3, 4].map(() => get(url)));
    expect(answers.filter((a) => a === 'failed')).toHaveLength(1);
    expect(
      answers
        .filter((a) => a !== 'failed')
        .map((a) => a.body)
        .sort(),
    ).toEqual(['ok 1', 'ok 2', 'ok 3']);
  });
});
