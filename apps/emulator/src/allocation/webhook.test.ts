import { execFile } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPortUrl, tempStateDir } from '../testing/fixtures.js';
import { ensureCertificates } from '../tls/certificates.js';
import { WebhookClient } from './webhook.js';

const execFileAsync = promisify(execFile);
/** The built client (`npm test` builds the package first). */
const BUILT_WEBHOOK = fileURLToPath(new URL('../../dist/allocation/webhook.js', import.meta.url));

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

describe('WebhookClient and connections closed without an answer', () => {
  /** A webhook whose nth request (1-based, over all its connections) is met by `onRequest`. */
  async function webhook(onRequest: (n: number, req: http.IncomingMessage, res: http.ServerResponse) => void) {
    const seen: { connection: number; connectionHeader: string | undefined }[] = [];
    const connections = new WeakMap<object, number>();
    let opened = 0;
    const server = http.createServer((req, res) => {
      let connection = connections.get(req.socket);
      if (connection === undefined) {
        connection = ++opened;
        connections.set(req.socket, connection);
      }
      seen.push({ connection, connectionHeader: req.headers.connection });
      req.resume();
      req.on('end', () => onRequest(seen.length, req, res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/allocate?code=k`;
    const close = async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    };
    return { url, seen, close };
  }
  const answer = (res: http.ServerResponse) =>
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"iotHubHostName":"a.net"}');

  it.each([
    ['closed (FIN)', (socket: net.Socket) => socket.destroy()],
    ['reset (RST)', (socket: net.Socket) => socket.resetAndDestroy()],
  ])('sends a request whose kept-alive connection is %s again, once, on a connection of its own', async (_how, end) => {
    // The first request to arrive on a connection an earlier answer came on is met by a close:
    // the client cannot tell that from a connection the server closed as it was reused. Which
    // call meets it is the client's choice of connection, so the calls go on until one has.
    let reset: number | undefined;
    const perConnection = new Map<number, number>();
    const hook = await webhook((n, req, res) => {
      const connection = hook.seen[n - 1]?.connection ?? 0;
      const earlier = perConnection.get(connection) ?? 0;
      perConnection.set(connection, earlier + 1);
      if (earlier > 0 && reset === undefined) {
        reset = n;
        end(req.socket);
      } else answer(res);
    });
    const client = new WebhookClient({ timeoutMs: 30_000 });
    try {
      for (let call = 0; call < 50 && reset === undefined; call++) {
        expect(await client.call(hook.url, '{}')).toMatchObject({ kind: 'response', status: 200 });
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(reset).toBeDefined();
      // The reset request was sent again, once, on a new connection that closes after it.
      const openedBefore = Math.max(...hook.seen.slice(0, reset).map((seen) => seen.connection));
      expect(hook.seen.slice(reset ?? 0)).toEqual([{ connection: openedBefore + 1, connectionHeader: 'close' }]);
    } finally {
      client.close();
      await hook.close();
    }
  });

  it('does not send a request again when a new connection is closed without an answer', async () => {
    const hook = await webhook((_n, req) => req.socket.destroy());
    const client = new WebhookClient({ timeoutMs: 30_000 });
    try {
      const outcome = await client.call(hook.url, '{}');
      expect(outcome).toMatchObject({ kind: 'connection-error' });
      expect(['socket hang up', 'read ECONNRESET']).toContain(outcome.kind === 'connection-error' && outcome.reason);
      expect(hook.seen).toEqual([{ connection: 1, connectionHeader: 'keep-alive' }]);
    } finally {
      client.close();
      await hook.close();
    }
  });
});

describe('WebhookClient over HTTPS', () => {
  it("verifies the webhook's certificate against Node's trusted CAs, NODE_EXTRA_CA_CERTS included", async () => {
    const state = tempStateDir();
    const tls = await ensureCertificates({ dir: state.path });
    const server = https.createServer({ cert: tls.serverCertPem, key: tls.serverKeyPem }, (req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'Content-Type': 'application/json' }).end(`{"url":"${req.url}"}`));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const client = new WebhookClient({ timeoutMs: 30_000 });
    try {
      // This process does not trust the CA.
      const untrusted = await client.call(`https://127.0.0.1:${port}/api/allocate?code=k`, '{}');
      expect(untrusted).toMatchObject({ kind: 'connection-error', reason: expect.stringMatching(/certificate/) });
      // A process that does (the built client, as `dps-emulator` runs it): by address and by name,
      // twice each (the second call on the kept connection).
      const script = `
        import { WebhookClient } from ${JSON.stringify(BUILT_WEBHOOK)};
        const client = new WebhookClient({ timeoutMs: 30000 });
        const outcomes = [];
        for (const host of ['127.0.0.1', 'localhost', '127.0.0.1', 'localhost'])
          outcomes.push(await client.call('https://' + host + ':${port}/api/allocate?code=k', '{}'));
        client.close();
        console.log(JSON.stringify(outcomes));`;
      const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, NODE_EXTRA_CA_CERTS: tls.caCertPath },
      });
      const outcomes = JSON.parse(stdout) as unknown[];
      expect(outcomes).toHaveLength(4);
      for (const outcome of outcomes)
        expect(outcome).toMatchObject({ kind: 'response', status: 200, body: '{"url":"/api/allocate?code=k"}' });
    } finally {
      client.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      state.remove();
    }
  });
});

/**
 * The bytes of the first request a raw TCP server receives (headers and a body of the announced
 * length); it answers 200 and closes.
 */
async function captureOne(send: (port: number) => Promise<unknown>, host = '127.0.0.1'): Promise<string> {
  let captured = '';
  const server = net.createServer((socket) => {
    let data = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = Number(/content-length: (\d+)/i.exec(data.subarray(0, end).toString('latin1'))?.[1] ?? 0);
      if (data.length < end + 4 + length) return;
      captured = data.toString('latin1');
      socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  try {
    await send((server.address() as AddressInfo).port);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  return captured;
}

describe('WebhookClient on the wire (issue #13: request options kept per URL)', () => {
  // What the client wrote before it kept each URL's options: http.request(new URL(url), ...).
  const byUrlObject = (url: string, body: string) =>
    new Promise<void>((resolve, reject) => {
      const agent = new http.Agent({ keepAlive: true });
      const payload = Buffer.from(body, 'utf8');
      const request = http.request(new URL(url), {
        method: 'POST',
        agent,
        headers: {
          'Content-Type': 'application/json; charset=utf-8',
          Accept: 'application/json',
          'Content-Length': payload.length,
          'User-Agent': 'dpskit-emulator',
        },
      });
      request.on('error', reject);
      request.on('response', (response) => {
        response.resume();
        response.on('end', () => {
          agent.destroy();
          resolve();
        });
      });
      request.end(payload);
    });

  it.each([
    ['127.0.0.1', (port: number) => `http://127.0.0.1:${port}/api/allocate?code=secret%3D&x=1`],
    ['127.0.0.1', (port: number) => `http://127.0.0.1:${port}`],
    ['127.0.0.1', (port: number) => `http://127.0.0.1:${port}/a%20b/../c?q=%C3%A9#fragment`],
    ['127.0.0.1', (port: number) => `HTTP://LocalHost:${port}/Api/Allocate?code=k`],
    ['::1', (port: number) => `http://[::1]:${port}/api/allocate?code=k`],
  ])(
    'writes the bytes a request made from a URL object writes (%s), the first call and the next',
    async (host, urlOf) => {
      const body = '{"registrationId":"dev-ü","linkedHubs":["a.azure-devices.net"]}';
      const client = new WebhookClient({ timeoutMs: 30_000 });
      try {
        const reference = await captureOne((port) => byUrlObject(urlOf(port), body), host).catch((err: unknown) => {
          // A machine without an IPv6 loopback has nothing to compare there.
          if (host === '::1' && (err as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL') return undefined;
          throw err;
        });
        if (reference === undefined) return;
        expect(reference).toContain('POST ');
        for (let call = 0; call < 2; call++) {
          const sent = await captureOne((port) => client.call(urlOf(port), body), host);
          // The same request but for the port the capturing server got.
          const ports = /Host: [^\r]*?(\d+)\r\n/;
          expect(sent.replace(ports, 'Host: PORT\r\n')).toBe(reference.replace(ports, 'Host: PORT\r\n'));
        }
      } finally {
        client.close();
      }
    },
  );
});
