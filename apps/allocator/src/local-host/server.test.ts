import functions from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AllocatorLogRecord } from '../log/record.js';
import { httpFunction } from '../registration/http-function.js';
import { type RunningFunctionsHost, startFunctionsHost } from './server.js';

const { HttpResponse } = functions;

/** Generic host behaviour, with functions defined here rather than the allocator's. */
describe('startFunctionsHost', () => {
  let host: RunningFunctionsHost;
  const logs: AllocatorLogRecord[] = [];

  beforeAll(async () => {
    host = await startFunctionsHost({
      port: 0,
      host: '127.0.0.1',
      routePrefix: 'api',
      functionKey: 'k',
      log: (r) => logs.push(r),
      definitions: [
        httpFunction('echo', {
          route: 'echo/{id}',
          handler: async (request, context) => {
            context.log('echoing', request.params.id);
            return new HttpResponse({
              status: 201,
              jsonBody: {
                id: request.params.id,
                method: request.method,
                query: request.query.get('q'),
                header: request.headers.get('x-test'),
                body: await request.text(),
                url: request.url,
              },
              cookies: [{ name: 'c', value: 'v', path: '/', httpOnly: true }],
            });
          },
        }),
        httpFunction('boom', {
          methods: ['POST'],
          authLevel: 'function',
          handler: () => {
            throw new Error('kaput');
          },
        }),
        httpFunction('nothing', { methods: ['GET'], handler: () => undefined as never }),
      ],
    });
  });
  afterAll(async () => {
    await host?.close();
  });

  it('applies the app.http defaults: route = name, GET and POST, anonymous', () => {
    expect(host.triggers.map((t) => [t.name, t.route, t.methods.join(','), t.authLevel])).toEqual([
      ['echo', 'echo/{id}', 'GET,POST', 'anonymous'],
      ['boom', 'boom', 'POST', 'function'],
      ['nothing', 'nothing', 'GET', 'anonymous'],
    ]);
  });

  it('passes route params, query, headers and body in a real HttpRequest and writes an HttpResponse', async () => {
    const res = await fetch(`${host.url}/api/echo/dev-1?q=yes`, {
      method: 'POST',
      headers: { 'x-test': 'hdr' },
      body: 'payload',
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('set-cookie')).toBe('c=v; Path=/; HttpOnly');
    expect(await res.json()).toEqual({
      id: 'dev-1',
      method: 'POST',
      query: 'yes',
      header: 'hdr',
      body: 'payload',
      url: `${host.url}/api/echo/dev-1?q=yes`,
    });
    expect(logs.some((r) => r.source === 'function' && r.functionName === 'echo' && r.msg === 'echoing dev-1')).toBe(
      true,
    );
  });

  it('answers 500 with no body when a function throws, logs it, and keeps serving', async () => {
    const res = await fetch(`${host.url}/api/boom`, { method: 'POST', headers: { 'x-functions-key': 'k' } });
    expect(res.status).toBe(500);
    expect(await res.text()).toBe('');
    expect(
      logs.some(
        (r) =>
          r.level === 'error' && r.msg.startsWith("Executed 'Functions.boom' (Failed") && r.data?.error === 'kaput',
      ),
    ).toBe(true);
    expect((await fetch(`${host.url}/api/echo/again`)).status).toBe(201);
  });

  it('answers 200 with an empty body when a function returns nothing', async () => {
    const res = await fetch(`${host.url}/api/nothing`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });

  it('checks the key before calling a function-level function', async () => {
    expect((await fetch(`${host.url}/api/boom`, { method: 'POST' })).status).toBe(401);
  });
});

describe('startFunctionsHost log levels', () => {
  async function levelsLogged(logLevel: 'debug' | 'info' | 'warn' | 'error' | undefined) {
    const logs: AllocatorLogRecord[] = [];
    const host = await startFunctionsHost({
      port: 0,
      host: '127.0.0.1',
      routePrefix: 'api',
      functionKey: 'k',
      log: (r) => logs.push(r),
      ...(logLevel !== undefined ? { logLevel } : {}),
      definitions: [
        httpFunction('chatty', {
          handler: (_request, context) => {
            context.trace('t');
            context.debug('d');
            context.info('i');
            context.warn('w');
            context.error('e');
            return { body: 'ok' };
          },
        }),
      ],
    });
    try {
      expect((await fetch(`${host.url}/api/chatty`)).status).toBe(200);
      expect((await fetch(`${host.url}/api/missing`)).status).toBe(404);
    } finally {
      await host.close();
    }
    return {
      function: logs.filter((r) => r.source === 'function').map((r) => `${r.level} ${r.msg}`),
      host: logs.filter((r) => r.source === 'host').map((r) => `${r.level} ${r.msg.split(' ')[0]}`),
    };
  }

  it('gives the sink the lines at or above the level, info by default as the Functions host does', async () => {
    // The HTTP line of a successful exchange is debug (func start shows the host's request lines only
    // from Warning up by default); a >= 400 answer's is warn.
    expect(await levelsLogged(undefined)).toEqual({
      function: ['info i', 'warn w', 'error e'],
      host: ['info Listening', 'info Executing', 'info Executed', 'warn HTTP', 'info Stopped'],
    });
    expect(await levelsLogged('debug')).toEqual({
      function: ['debug t', 'debug d', 'info i', 'warn w', 'error e'],
      host: ['info Listening', 'info Executing', 'info Executed', 'debug HTTP', 'warn HTTP', 'info Stopped'],
    });
    expect(await levelsLogged('warn')).toEqual({ function: ['warn w', 'error e'], host: ['warn HTTP'] });
    expect(await levelsLogged('error')).toEqual({ function: ['error e'], host: [] });
  });
});
