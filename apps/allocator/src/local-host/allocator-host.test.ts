import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AllocatorLogRecord } from '../log/record.js';
import { accept } from '../policy/policy.js';
import { HEATPUMP_BODY, TOASTER_BODY, TOASTERS_HUB } from '../testing/tutorial-requests.js';
import { type AllocatorHost, startAllocatorHost } from './allocator-host.js';

const KEY = 'test-function-key-0123456789';
const TOASTER_RESPONSE = `{"iotHubHostName":"${TOASTERS_HUB}"}`;

function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
}

describe('startAllocatorHost over real HTTP', () => {
  let host: AllocatorHost;
  const logs: AllocatorLogRecord[] = [];
  let allocateUrl: string;

  beforeAll(async () => {
    host = await startAllocatorHost({ port: 0, functionKey: KEY, log: (r) => logs.push(r) });
    allocateUrl = `${host.url}/api/allocate`;
  });
  afterAll(async () => {
    await host?.close();
  });

  /** After every bad request: the server must still answer the toaster. */
  async function expectStillServing(): Promise<void> {
    const res = await post(host.webhookUrl, TOASTER_BODY);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(TOASTER_RESPONSE);
  }

  it('reports localhost URLs with the key in the webhook URL', () => {
    expect(host.port).toBeGreaterThan(0);
    expect(host.url).toBe(`http://localhost:${host.port}`);
    expect(host.webhookUrl).toBe(`http://localhost:${host.port}/api/allocate?code=${KEY}`);
    expect(host.functionKey).toBe(KEY);
  });

  it('assigns the tutorial toaster: 200 {"iotHubHostName":"contoso-toasters-hub-1098.azure-devices.net"}', async () => {
    const res = await post(host.webhookUrl, TOASTER_BODY);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.text()).toBe(TOASTER_RESPONSE);
  });

  it('refuses the tutorial heat pump: 400 Unrecognized device registration.', async () => {
    const res = await post(host.webhookUrl, HEATPUMP_BODY);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toBe('Unrecognized device registration.');
    await expectStillServing();
  });

  it('answers 401 without a key and with a wrong key', async () => {
    const missing = await post(allocateUrl, TOASTER_BODY);
    expect(missing.status).toBe(401);
    expect(await missing.text()).toContain('"code" query parameter or the "x-functions-key" header');
    await expectStillServing();

    const wrong = await post(`${allocateUrl}?code=not-the-key`, TOASTER_BODY);
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toBe('Unauthorized: the function key is not valid.');
    await expectStillServing();
  });

  it('accepts the key in the x-functions-key header, which wins over ?code=', async () => {
    const res = await post(allocateUrl, TOASTER_BODY, { 'x-functions-key': KEY });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(TOASTER_RESPONSE);

    const headerWins = await post(host.webhookUrl, TOASTER_BODY, { 'x-functions-key': 'wrong' });
    expect(headerWins.status).toBe(401);
  });

  it('answers 400 naming the problem for a malformed body', async () => {
    const res = await post(host.webhookUrl, '{"linkedHubs": [');
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/^Invalid allocation request: body is not valid JSON \(/);
    await expectStillServing();
  });

  it('answers 400 listing the invalid fields of a schema-invalid request', async () => {
    const res = await post(host.webhookUrl, '{"enrollmentGroup":{},"deviceRuntimeContext":{},"linkedHubs":[1]}');
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(text).toContain('enrollmentGroup.enrollmentGroupId');
    expect(text).toContain('deviceRuntimeContext.registrationId');
    expect(text).toContain('linkedHubs[0]');
    await expectStillServing();
  });

  it('answers 405 with Allow: POST for GET', async () => {
    const res = await fetch(host.webhookUrl);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    await expectStillServing();
  });

  it('answers 404 for unknown routes', async () => {
    for (const path of ['/api/allocat', '/allocate', '/', '/api/allocate/x']) {
      const res = await post(`${host.url}${path}?code=${KEY}`, TOASTER_BODY);
      expect(res.status, path).toBe(404);
    }
    await expectStillServing();
  });

  it('answers 413 for a body over 1 MiB', async () => {
    const res = await post(host.webhookUrl, `{"x":"${'a'.repeat(1024 * 1024)}"}`);
    expect(res.status).toBe(413);
    await expectStillServing();
  });

  it('answers 400 to malformed HTTP and keeps serving', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(host.port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let data = '';
      socket.on('data', (d) => {
        data += d.toString();
      });
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    expect(logs.some((r) => r.msg === 'Malformed HTTP request' && typeof r.data?.code === 'string')).toBe(true);
    await expectStillServing();
  });

  it('survives a client that disconnects in the middle of the body', async () => {
    logs.length = 0;
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(host.port, '127.0.0.1', () => {
        socket.write(
          `POST /api/allocate?code=${KEY} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n{"linked`,
        );
        setTimeout(() => socket.destroy(), 50);
      });
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    await expectStillServing();
    // The abandoned request is logged without a status (nothing was answered) and is not a server error.
    // The server sees the close on its own schedule; wait for the log line, not for a clock.
    await vi.waitFor(
      () => {
        expect(logs.some((r) => r.msg === 'HTTP' && r.data?.status === null)).toBe(true);
      },
      { timeout: 30_000, interval: 20 },
    );
    expect(logs.some((r) => r.level === 'error' || r.msg === 'Malformed HTTP request')).toBe(false);
  });

  it('is reachable on 127.0.0.1 as well as through the localhost name', async () => {
    const res = await post(`http://127.0.0.1:${host.port}/api/allocate?code=${KEY}`, TOASTER_BODY);
    expect(res.status).toBe(200);
  });

  it('logs the device payload, the rejection reason and the HTTP exchange, never the key', async () => {
    logs.length = 0;
    await post(host.webhookUrl, HEATPUMP_BODY);
    const functionLogs = logs.filter((r) => r.source === 'function');
    expect(functionLogs.map((r) => r.msg)).toEqual(['Request.Body', 'Linked hubs', 'Rejected', 'Response']);
    const body = functionLogs[0]!.data!.body as { deviceRuntimeContext: { registrationId: string; payload: unknown } };
    expect(body.deviceRuntimeContext.registrationId).toBe('contoso-heatpump-088');
    expect(body.deviceRuntimeContext.payload).toEqual({
      MyDeviceFirmwareVersion: '12.0.2.5',
      MyDeviceProvisioningVersion: '1.0.0.0',
    });
    expect(functionLogs[2]!.data!.reason).toBe('Unrecognized device registration.');
    // One invocation id per call, shared by the function's lines and the host's Executing line.
    const invocationId = functionLogs[0]!.invocationId!;
    expect(functionLogs.every((r) => r.invocationId === invocationId)).toBe(true);
    expect(logs.some((r) => r.source === 'host' && r.msg.startsWith(`Executing 'Functions.allocate'`))).toBe(true);
    const http = logs.find((r) => r.source === 'host' && r.msg === 'HTTP');
    expect(http?.data).toMatchObject({ method: 'POST', path: '/api/allocate?code=****', status: 400 });
    expect(JSON.stringify(logs)).not.toContain(KEY);
  });
});

describe('startAllocatorHost options', () => {
  it('serves a custom policy on the same route, methods and auth level', async () => {
    const host = await startAllocatorHost({
      port: 0,
      policy: (request) => accept({ iotHubHostName: request.linkedHubs.at(-1)!, payload: { chosen: true } }),
    });
    try {
      expect(host.functionKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const res = await post(host.webhookUrl, HEATPUMP_BODY);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ iotHubHostName: TOASTERS_HUB, payload: { chosen: true } });
      expect((await post(`${host.url}/api/allocate`, HEATPUMP_BODY)).status).toBe(401);
      expect((await fetch(host.webhookUrl, { method: 'PUT', body: '{}' })).status).toBe(405);
    } finally {
      await host.close();
    }
  });

  it('keeps serving when the log sink throws', async () => {
    const host = await startAllocatorHost({
      port: 0,
      log: () => {
        throw new Error('sink broken');
      },
    });
    try {
      const res = await post(host.webhookUrl, TOASTER_BODY);
      expect(res.status).toBe(200);
    } finally {
      await host.close();
    }
  });

  it('stops accepting connections after close()', async () => {
    const host = await startAllocatorHost({ port: 0 });
    await post(host.webhookUrl, TOASTER_BODY);
    await host.close();
    await host.close();
    await expect(post(host.webhookUrl, TOASTER_BODY)).rejects.toThrow();
  });

  it('rejects an invalid port or key before listening', async () => {
    await expect(startAllocatorHost({ port: 70000 })).rejects.toThrow('Invalid port 70000');
    await expect(startAllocatorHost({ port: 1.5 })).rejects.toThrow(RangeError);
    await expect(startAllocatorHost({ port: 0, functionKey: 'has space' })).rejects.toThrow(
      'Invalid functionKey: the function key must be printable ASCII without spaces.',
    );
  });

  it('fails clearly when the port is taken', async () => {
    const first = await startAllocatorHost({ port: 0, host: '127.0.0.1' });
    try {
      await expect(startAllocatorHost({ port: first.port, host: '127.0.0.1' })).rejects.toMatchObject({
        code: 'EADDRINUSE',
      });
    } finally {
      await first.close();
    }
  });
});
