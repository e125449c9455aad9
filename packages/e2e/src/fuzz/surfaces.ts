import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { createRegistrationSasToken, deriveDeviceKey } from '@dpskit/contracts';
import fc from 'fast-check';
import { sampleLazily } from './inputs.js';

/** What one surface's run saw: inputs tried, answers by code, and what must stay zero. */
export interface SurfaceReport {
  surface: string;
  inputs: number;
  /** Answers by HTTP/MQTT status and DPS error code, e.g. `400/400001`, or `closed` for a dropped connection. */
  answers: Record<string, number>;
  /** Answers that are not DPS-shaped JSON, and 5xx answers. */
  malformedAnswers: number;
  serverErrors: number;
  /** No answer and no close within the bound. */
  hangs: number;
  examples: string[];
}

/** Longer than any documented bound the fuzzed servers run with (idle timeout 2 s, webhook timeout 10 s). */
export const HANG_BOUND_MS = 20_000;

const isHeaderSafe = (value: string) => /^[\t\x20-\x7e]*$/.test(value);

function report(surface: string): SurfaceReport {
  return { surface, inputs: 0, answers: {}, malformedAnswers: 0, serverErrors: 0, hangs: 0, examples: [] };
}

function count(r: SurfaceReport, key: string): void {
  r.answers[key] = (r.answers[key] ?? 0) + 1;
}

function note(r: SurfaceReport, what: string): void {
  if (r.examples.length < 5) r.examples.push(what.slice(0, 300));
}

/** A DPS error body or a registration answer: an object with errorCode+message or status. */
function isDpsShaped(status: number, body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const o = body as Record<string, unknown>;
  if (status >= 300) return typeof o.errorCode === 'number' && typeof o.message === 'string';
  return typeof o.status === 'string' || typeof o.operationId === 'string';
}

/** Runs `run` over the inputs in `concurrency` slots, drawing each input only when a slot is free. */
async function pool<T>(
  items: Iterable<T>,
  concurrency: number,
  run: (item: T, slot: number) => Promise<void>,
): Promise<void> {
  const iterator = items[Symbol.iterator]();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, slot) => {
      for (let next = iterator.next(); !next.done; next = iterator.next()) await run(next.value, slot);
    }),
  );
}

export interface Target {
  idScope: string;
  groupKey: string;
  ca: string;
  mqttPort: number;
  httpsPort: number;
}

const token = (t: Target, id: string) =>
  createRegistrationSasToken({ idScope: t.idScope, registrationId: id, key: deriveDeviceKey(t.groupKey, id) });

// ---- generators -------------------------------------------------------------------------------

const junkText = fc.oneof(
  fc.string({ maxLength: 64 }),
  fc.string({ unit: 'binary', maxLength: 256 }),
  fc.constantFrom('', '{', '}', 'null', '[]', '"x"', '1e999', '{"registrationId":', '\u0000', '%', '%%41'),
);

/** Register bodies: valid-looking, wrong types, deep nesting, huge, invalid UTF-8. */
export function registerBodies(id: string): fc.Arbitrary<Buffer> {
  return fc.oneof(
    junkText.map((s) => Buffer.from(s)),
    fc.json({ maxDepth: 6 }).map((s) => Buffer.from(s)),
    fc
      .record({
        registrationId: fc.oneof(fc.constant(id), fc.string({ maxLength: 200 }), fc.integer()),
        payload: fc.anything({ maxDepth: 4 }),
      })
      .map((o) => Buffer.from(JSON.stringify(o))),
    fc
      .integer({ min: 60, max: 50_000 })
      .map((d) => Buffer.from(`{"registrationId":"${id}","payload":${'['.repeat(d)}${']'.repeat(d)}}`)),
    fc
      .integer({ min: 90_000, max: 120_000 })
      .map((n) => Buffer.from(`{"registrationId":"${id}","payload":{"a":"${'x'.repeat(n)}"}}`)),
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  );
}

/** Authorization values: malformed and mutated SAS tokens. */
export function tokens(good: string): fc.Arbitrary<string> {
  return fc.oneof(
    junkText,
    fc.constant(good),
    fc
      .tuple(fc.nat({ max: good.length }), fc.string({ maxLength: 20 }))
      .map(([i, s]) => good.slice(0, i) + s + good.slice(i)),
    fc.nat({ max: good.length }).map((i) => good.slice(0, i)),
    fc.string({ maxLength: 30 }).map((s) => `${good}&${s}`),
    fc
      .constantFrom('skn=iothubowner', 'skn=', 'skn=provisioningserviceowner')
      .map((s) => good.replace('skn=registration', s)),
    fc.integer({ min: 2_000, max: 15_000 }).map((n) => `${good}&x=${'a'.repeat(n)}`),
  );
}

// ---- HTTPS device API ---------------------------------------------------------------------------

export async function fuzzHttps(t: Target, runs: number, seed: number): Promise<SurfaceReport> {
  const r = report('HTTPS device API');
  const id = 'fuzz-https-device';
  const good = token(t, id);
  const agent = new https.Agent({ keepAlive: true, ca: t.ca, maxSockets: 16 });
  const request = fc.record({
    method: fc.constantFrom('PUT', 'GET', 'POST', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'PUT', 'PUT'),
    path: fc.oneof(
      fc.constant(`/${t.idScope}/registrations/${id}/register?api-version=2019-03-31`),
      fc.constant(
        `/${t.idScope}/registrations/${id}/operations/4.0123456789abcdef.00000000-0000-0000-0000-000000000000?api-version=2019-03-31`,
      ),
      fc.constant(`/${t.idScope}/registrations/${id}?api-version=2019-03-31`),
      fc.webPath().map((p) => p || '/'),
      fc
        .string({ maxLength: 80 })
        .map((s) => `/${t.idScope}/registrations/${encodeURIComponent(s)}/register?api-version=2019-03-31`),
    ),
    authorization: fc.option(tokens(good).filter(isHeaderSafe), { nil: undefined }),
    body: registerBodies(id),
  });
  const inputs = sampleLazily(request, runs, seed);
  await pool(inputs, 16, async (input) => {
    r.inputs += 1;
    const outcome = await new Promise<{ status: number; text: string } | 'hang' | 'closed'>((resolve) => {
      const headers: Record<string, string | number> = {
        'Content-Type': 'application/json',
        'Content-Length': input.body.length,
      };
      if (input.authorization !== undefined) headers.Authorization = input.authorization;
      let req: http.ClientRequest;
      try {
        req = https.request({
          host: 'localhost',
          port: t.httpsPort,
          method: input.method,
          path: input.path,
          headers,
          agent,
        });
      } catch {
        // A header value Node itself refuses to send (control characters): not an input for the server.
        r.inputs -= 1;
        return resolve('closed');
      }
      const timer = setTimeout(() => {
        req.destroy();
        resolve('hang');
      }, HANG_BOUND_MS);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', () => {
          clearTimeout(timer);
          resolve('closed');
        });
      });
      req.on('error', () => {
        clearTimeout(timer);
        resolve('closed');
      });
      req.end(input.method === 'HEAD' || input.method === 'GET' ? undefined : input.body);
    });
    if (outcome === 'hang') {
      r.hangs += 1;
      note(r, `hang: ${input.method} ${input.path}`);
      return;
    }
    if (outcome === 'closed') return count(r, 'closed');
    let body: unknown;
    try {
      body =
        outcome.text === '' && input.method === 'HEAD'
          ? { status: 'head', errorCode: 0, message: '' }
          : JSON.parse(outcome.text);
    } catch {
      body = undefined;
    }
    const code =
      typeof (body as { errorCode?: unknown })?.errorCode === 'number' ? (body as { errorCode: number }).errorCode : '';
    count(r, `${outcome.status}${code ? `/${code}` : ''}`);
    if (outcome.status >= 500) {
      r.serverErrors += 1;
      note(r, `${outcome.status}: ${input.method} ${input.path} -> ${outcome.text}`);
    }
    if (input.method !== 'HEAD' && !isDpsShaped(outcome.status, body)) {
      r.malformedAnswers += 1;
      note(r, `not DPS-shaped: ${outcome.status} ${outcome.text}`);
    }
  });
  agent.destroy();
  return r;
}

// ---- MQTT ------------------------------------------------------------------------------------------

function mqttString(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([Buffer.from([(b.length >> 8) & 0xff, b.length & 0xff]), b]);
}

function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

function packet(first: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([first]), remainingLength(body.length), body]);
}

function connectPacket(
  clientId: string,
  username: string | undefined,
  password: string | undefined,
  keepalive: number,
): Buffer {
  const flags = 0x02 | (username !== undefined ? 0x80 : 0) | (password !== undefined ? 0x40 : 0);
  const body = Buffer.concat([
    mqttString('MQTT'),
    Buffer.from([4, flags, (keepalive >> 8) & 0xff, keepalive & 0xff]),
    mqttString(clientId),
    ...(username !== undefined ? [mqttString(username)] : []),
    ...(password !== undefined ? [mqttString(password)] : []),
  ]);
  return packet(0x10, body);
}

/** One MQTT exchange: CONNECT (good or mutated), SUBSCRIBE, then a publish or raw junk. */
export async function fuzzMqtt(t: Target, runs: number, seed: number): Promise<SurfaceReport> {
  const r = report('MQTT');
  const id = 'fuzz-mqtt-device';
  const username = `${t.idScope}/registrations/${id}/api-version=2019-03-31`;
  const good = token(t, id);
  const exchange = fc.record({
    clientId: fc.oneof(fc.constant(id), fc.string({ maxLength: 40 })),
    username: fc.oneof(fc.constant(username), fc.option(fc.string({ maxLength: 80 }), { nil: undefined })),
    password: fc.oneof(fc.constant(good), fc.option(tokens(good), { nil: undefined })),
    keepalive: fc.constantFrom(0, 1, 60, 65535),
    topic: fc.oneof(
      fc.constant('$dps/registrations/PUT/iotdps-register/?$rid=1'),
      fc.constant(
        '$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=4.0123456789abcdef.00000000-0000-0000-0000-000000000000',
      ),
      fc.string({ maxLength: 60 }).map((s) => `$dps/registrations/${s}`),
      fc.string({ maxLength: 60 }),
    ),
    payload: registerBodies(id),
    junk: fc.option(fc.uint8Array({ minLength: 1, maxLength: 64 }), { nil: undefined, freq: 3 }),
  });
  const inputs = sampleLazily(exchange, runs, seed);
  await pool(inputs, 24, async (input) => {
    r.inputs += 1;
    const result = await new Promise<string>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port: t.mqttPort, servername: 'localhost', ca: t.ca });
      let received = Buffer.alloc(0);
      const timer = setTimeout(() => {
        socket.destroy();
        resolve('hang');
      }, HANG_BOUND_MS);
      const done = (what: string) => {
        clearTimeout(timer);
        socket.destroy();
        resolve(what);
      };
      socket.on('error', () => done('closed'));
      socket.on('close', () => done(received.length > 0 ? 'answered-then-closed' : 'closed'));
      socket.on('secureConnect', () => {
        socket.write(connectPacket(input.clientId, input.username, input.password, input.keepalive));
        socket.write(
          packet(0x82, Buffer.concat([Buffer.from([0, 1]), mqttString('$dps/registrations/res/#'), Buffer.from([1])])),
        );
        if (input.junk) socket.write(Buffer.from(input.junk));
        else {
          const topic = Buffer.from(input.topic);
          socket.write(packet(0x32, Buffer.concat([mqttString(topic), Buffer.from([0, 2]), input.payload])));
        }
      });
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        // A PUBLISH from the server (0x3_) is the answer: status in its topic.
        for (let i = 0; i < received.length; i++) {
          if ((received[i] ?? 0) >> 4 !== 3) continue;
          const text = received.subarray(i).toString('latin1');
          const m = /\$dps\/registrations\/res\/(\d{3})\//.exec(text);
          if (m) {
            const json = text.slice(text.indexOf('{'));
            const code = /"errorCode":(\d+)/.exec(json)?.[1];
            return done(`${m[1]}${code ? `/${code}` : ''}`);
          }
        }
      });
    });
    if (result === 'hang') {
      r.hangs += 1;
      note(r, `hang: ${JSON.stringify({ ...input, payload: input.payload.length })}`);
      return;
    }
    count(r, result);
    if (/^5\d\d/.test(result)) {
      r.serverErrors += 1;
      note(r, `${result}: ${input.topic}`);
    }
  });
  return r;
}

// ---- webhook answers ---------------------------------------------------------------------------

/** Webhook answers: any status, any body; each one allocates a real registration over HTTPS. */
export async function fuzzWebhookAnswers(
  t: Target,
  runs: number,
  seed: number,
  answers: Map<string, WebhookAnswer>,
): Promise<SurfaceReport> {
  const r = report('webhook answers');
  const answer = fc.record({
    status: fc.oneof(
      fc.constant(200),
      fc.constant(200),
      fc.integer({ min: 200, max: 599 }),
      fc.constantFrom(401, 404, 302, 204, 429, 503),
    ),
    body: fc.oneof(
      junkText,
      fc.json({ maxDepth: 5 }),
      fc
        .record({
          iotHubHostName: fc.oneof(
            fc.constant('fuzz-hub.azure-devices.net'),
            fc.string({ maxLength: 40 }),
            fc.constant(null),
          ),
          initialTwin: fc.option(fc.anything({ maxDepth: 4 }), { nil: undefined }),
          payload: fc.option(fc.anything({ maxDepth: 4 }), { nil: undefined }),
        })
        .map((o) => JSON.stringify(o)),
      fc
        .integer({ min: 65, max: 40_000 })
        .map((d) => `{"iotHubHostName":"fuzz-hub.azure-devices.net","payload":${'{"a":'.repeat(d)}1${'}'.repeat(d)}}`),
    ),
  });
  const inputs = sampleLazily(answer, runs, seed);
  const agent = new https.Agent({ keepAlive: true, ca: t.ca, maxSockets: 16 });
  const call = (method: string, path: string, id: string, body = '') =>
    new Promise<{ status: number; json: unknown } | 'hang' | 'closed'>((resolve) => {
      const req = https.request(
        {
          host: 'localhost',
          port: t.httpsPort,
          method,
          path,
          agent,
          headers: {
            Authorization: token(t, id),
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(body),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            clearTimeout(timer);
            let json: unknown;
            try {
              json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, json });
          });
        },
      );
      const timer = setTimeout(() => {
        req.destroy();
        resolve('hang');
      }, HANG_BOUND_MS);
      req.on('error', () => {
        clearTimeout(timer);
        resolve('closed');
      });
      req.end(body);
    });
  // One device per concurrent slot, its allocations one after another: the webhook answers each
  // device's call with the answer the fuzzer chose for that device's current registration.
  await pool(inputs, 16, async (input, slot) => {
    const id = `fuzz-webhook-${slot}`;
    r.inputs += 1;
    answers.set(id, input);
    const started = await call(
      'PUT',
      `/${t.idScope}/registrations/${id}/register?api-version=2019-03-31`,
      id,
      JSON.stringify({ registrationId: id }),
    );
    if (started === 'hang' || started === 'closed' || started.status !== 202) {
      r.malformedAnswers += 1;
      note(r, `register: ${JSON.stringify(started)}`);
      return;
    }
    const operationId = (started.json as { operationId: string }).operationId;
    let final: { status: number; json: unknown } | 'hang' | 'closed' = started;
    for (let polls = 0; polls < 50; polls++) {
      final = await call(
        'GET',
        `/${t.idScope}/registrations/${id}/operations/${operationId}?api-version=2019-03-31`,
        id,
      );
      if (final === 'hang' || final === 'closed' || final.status !== 202) break;
    }
    if (final === 'hang') {
      r.hangs += 1;
      note(r, `hang for answer ${JSON.stringify(input).slice(0, 200)}`);
      return;
    }
    if (final === 'closed') {
      count(r, 'closed');
      return;
    }
    const state = (final.json as { registrationState?: { status?: string; errorCode?: number } })?.registrationState;
    count(r, `${state?.status ?? final.status}${state?.errorCode ? `/${state.errorCode}` : ''}`);
    if (final.status >= 500 || state?.errorCode === 500001) {
      r.serverErrors += 1;
      note(r, `internal error for answer ${JSON.stringify(input).slice(0, 200)}`);
    }
    if (!isDpsShaped(final.status, final.json)) {
      r.malformedAnswers += 1;
      note(r, `not DPS-shaped: ${JSON.stringify(final.json).slice(0, 200)}`);
    }
  });
  agent.destroy();
  return r;
}

export interface WebhookAnswer {
  status: number;
  body: string;
}

/** The webhook the emulator calls: answers each device with what the fuzzer chose for it. */
export async function startFuzzWebhook(): Promise<{
  url: string;
  answers: Map<string, WebhookAnswer>;
  close(): Promise<void>;
}> {
  const answers = new Map<string, WebhookAnswer>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let id = '';
      try {
        id = (
          JSON.parse(Buffer.concat(chunks).toString('utf8')) as { deviceRuntimeContext: { registrationId: string } }
        ).deviceRuntimeContext.registrationId;
      } catch {}
      const answer = answers.get(id) ?? { status: 200, body: '{"iotHubHostName":"fuzz-hub.azure-devices.net"}' };
      res.writeHead(answer.status, { 'Content-Type': 'application/json' }).end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/allocate?code=fuzz`,
    answers,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---- allocator -----------------------------------------------------------------------------------

export async function fuzzAllocator(webhookUrl: string, runs: number, seed: number): Promise<SurfaceReport> {
  const r = report('allocator');
  const url = new URL(webhookUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const request = fc.record({
    withKey: fc.boolean(),
    method: fc.constantFrom('POST', 'POST', 'POST', 'GET', 'PUT'),
    body: fc.oneof(
      junkText,
      fc.json({ maxDepth: 6 }),
      fc
        .record({
          enrollmentGroup: fc.anything({ maxDepth: 3 }),
          deviceRuntimeContext: fc.record({
            registrationId: fc.string({ maxLength: 140 }),
            payload: fc.anything({ maxDepth: 3 }),
          }),
          linkedHubs: fc.array(fc.string({ maxLength: 40 }), { maxLength: 4 }),
        })
        .map((o) => JSON.stringify(o)),
      fc
        .integer({ min: 65, max: 40_000 })
        .map(
          (d) =>
            `{"deviceRuntimeContext":{"registrationId":"x","payload":${'['.repeat(d)}${']'.repeat(d)}},"linkedHubs":[]}`,
        ),
    ),
  });
  const inputs = sampleLazily(request, runs, seed);
  await pool(inputs, 16, async (input) => {
    r.inputs += 1;
    const path = input.withKey ? `${url.pathname}${url.search}` : url.pathname;
    const result = await new Promise<{ status: number } | 'hang' | 'closed'>((resolve) => {
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          method: input.method,
          path,
          agent,
          headers: { 'Content-Type': 'application/json' },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0 });
          });
        },
      );
      const timer = setTimeout(() => {
        req.destroy();
        resolve('hang');
      }, HANG_BOUND_MS);
      req.on('error', () => {
        clearTimeout(timer);
        resolve('closed');
      });
      req.end(input.method === 'GET' ? undefined : input.body);
    });
    if (result === 'hang') {
      r.hangs += 1;
      return;
    }
    if (result === 'closed') return count(r, 'closed');
    count(r, String(result.status));
    if (result.status >= 500) {
      r.serverErrors += 1;
      note(r, `${result.status}: ${input.body.slice(0, 200)}`);
    }
  });
  agent.destroy();
  return r;
}
