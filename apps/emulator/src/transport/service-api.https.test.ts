// The DPS service API on the HTTPS transport itself (startHttpsTransport over real TLS, raw
// node:https requests), with what an emulator does not let a test set: the clock its SAS checks use.

import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSasToken } from '@dpskit/contracts';
import { createLogger, type LogRecord } from '@dpskit/node-kit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DeviceApi } from '../core/device-api.js';
import { EnrollmentService } from '../core/enrollments/service.js';
import { MemoryEnrollmentStore } from '../core/enrollments/store.js';
import { enrollmentSet } from '../core/model.js';
import { RegistrationService } from '../core/registrations.js';
import { DEFAULT_SERVICE_POLICIES, WELL_KNOWN_SERVICE_KEY } from '../core/service-auth.js';
import { MemoryRegistrationStore } from '../core/store.js';
import { ensureCertificates } from '../tls/certificates.js';
import { startHttpsTransport } from './https.js';
import type { RunningTransport } from './mqtt.js';
import { handleServiceRequest } from './service-api.js';

/** A limiter's count lines added up: the count of each key (reason, status) and the total held. */
const countedTotals = (lines: readonly LogRecord[]) => {
  const byKey: Record<string, number> = {};
  let suppressed = 0;
  for (const line of lines) {
    for (const [key, n] of Object.entries(line.reasons as Record<string, number>)) byKey[key] = (byKey[key] ?? 0) + n;
    suppressed += line.suppressed as number;
  }
  return { byKey, suppressed };
};

const HUB = 'hub-a.azure-devices.net';
const SCOPE = '0ne00000A0A';

interface Bed {
  transport: RunningTransport;
  ca: string;
  logs: LogRecord[];
  /** The clock the service API's SAS checks read; tests move it. */
  clock: { now: Date };
  close(): Promise<void>;
}

async function startBed(): Promise<Bed> {
  const dir = mkdtempSync(join(tmpdir(), 'dpskit-service-https-'));
  const tls = await ensureCertificates({ dir });
  const logs: LogRecord[] = [];
  const clock = { now: new Date() };
  const registrations = new MemoryRegistrationStore();
  const service = new RegistrationService({
    model: {
      idScope: SCOPE,
      defaultAllocationPolicy: 'hashed',
      linkedHubs: [{ hostName: HUB, allocationWeight: 1, applyAllocationPolicy: true }],
      enrollments: enrollmentSet([]),
    },
    store: registrations,
    callWebhook: async () => ({ kind: 'timeout', timeoutMs: 1, latencyMs: 1 }),
    webhookRetry: { count: 0, initialIntervalMs: 0, incrementMs: 0 },
  });
  const enrollments = new EnrollmentService({
    store: new MemoryEnrollmentStore(),
    registrations: { get: () => undefined, delete: () => false, listByGroup: () => ({ items: [] }) },
    linkedHubs: [HUB],
  });
  const transport = await startHttpsTransport({
    api: new DeviceApi(service, { retryAfterSeconds: 0 }),
    service: { enrollments, policies: () => DEFAULT_SERVICE_POLICIES, now: () => clock.now },
    tls: { cert: tls.serverCertPem, key: tls.serverKeyPem },
    host: '127.0.0.1',
    port: 0,
    log: createLogger((record) => logs.push(record), 'debug'),
  });
  return {
    transport,
    ca: tls.caCertPem,
    logs,
    clock,
    async close() {
      await transport.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The owner policy's token for `localhost`, valid until `expiresAt` (seconds). */
const ownerToken = (expiresAt: number) =>
  createSasToken({
    resource: 'localhost',
    key: WELL_KNOWN_SERVICE_KEY,
    keyName: 'provisioningserviceowner',
    expiresAt,
  });

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/**
 * A request over real TLS. With `beforeBody`, its body is sent only once the server said
 * `100 Continue`, i.e. once it has its headers (Node answers 100 right before it runs the request
 * handler, which decides on them synchronously): `beforeBody` runs in between.
 */
function request(
  bed: Bed,
  options: { method: string; path: string; headers: Record<string, string>; body: string; beforeBody?: () => void },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: 'localhost',
      port: bed.transport.port,
      method: options.method,
      path: options.path,
      ca: bed.ca,
      agent: false,
      headers: {
        ...options.headers,
        ...(options.beforeBody ? { Expect: '100-continue' } : {}),
        'Content-Length': Buffer.byteLength(options.body),
      },
    });
    const { beforeBody } = options;
    if (beforeBody) {
      req.on('continue', () => {
        beforeBody();
        req.end(options.body);
      });
      req.flushHeaders();
    } else {
      req.end(options.body);
    }
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.on('error', reject);
  });
}

describe('the service API on the HTTPS transport', () => {
  let bed: Bed;
  beforeAll(async () => {
    bed = await startBed();
  });
  afterAll(() => bed?.close());

  it('checks a SAS once, when the headers arrive: a token that expires while the body is sent is not refused after it', async () => {
    const start = new Date('2026-12-04T18:00:00Z');
    bed.clock.now = start;
    const expiresAt = start.getTime() / 1000 + 60;
    const group = JSON.stringify({ enrollmentGroupId: 'slow-body-group', attestation: { type: 'symmetricKey' } });
    const authLogs = () => bed.logs.filter((l) => l.event === 'service.auth').length;
    const before = authLogs();
    const answer = await request(bed, {
      method: 'PUT',
      path: '/enrollmentGroups/slow-body-group?api-version=2021-10-01',
      headers: { Authorization: ownerToken(expiresAt), 'Content-Type': 'application/json' },
      body: group,
      // The headers were checked (the server answered 100 Continue after deciding on them); the
      // token expires before the body is sent. Checked again after the body, it was refused: 401.
      beforeBody: () => {
        bed.clock.now = new Date(start.getTime() + 120_000);
      },
    });
    expect(answer.status, answer.text).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({ enrollmentGroupId: 'slow-body-group' });
    expect(authLogs()).toBe(before);

    // The same token presented after its expiry is refused at the headers, body unread.
    const late = await request(bed, {
      method: 'PUT',
      path: '/enrollmentGroups/slow-body-group?api-version=2021-10-01',
      headers: { Authorization: ownerToken(expiresAt), 'Content-Type': 'application/json' },
      body: group,
    });
    expect(late.status).toBe(401);
    expect(late.headers.connection).toBe('close');
    expect(bed.logs.findLast((l) => l.event === 'service.auth')).toMatchObject({ reason: 'expired', status: 401 });
  });

  it('logs refused tokens at most once a second: the first in full, the rest counted by reason; never a signature', async () => {
    const own = await startBed();
    const start = new Date('2026-12-04T18:00:00Z');
    own.clock.now = start;
    const inAnHour = start.getTime() / 1000 + 3600;
    const wrongKey = createSasToken({
      resource: 'localhost',
      key: Buffer.alloc(32, 7).toString('base64'),
      keyName: 'provisioningserviceowner',
      expiresAt: inAnHour,
    });
    const expired = ownerToken(start.getTime() / 1000 - 60);
    const authLines = () => own.logs.filter((l) => l.event === 'service.auth');
    const full = () => authLines().filter((l) => l.reason !== undefined);
    const counted = () => authLines().filter((l) => l.suppressed !== undefined);
    const refuse = async (authorization: string | undefined) => {
      const answer = await request(own, {
        method: 'GET',
        path: '/enrollmentGroups/flood?api-version=2021-10-01',
        headers: authorization ? { Authorization: authorization } : {},
        body: '',
      });
      expect(answer.status).toBe(401);
    };
    try {
      // A flood within one second (the service API's clock stands still): one line.
      for (let i = 0; i < 20; i++) await refuse(wrongKey);
      for (let i = 0; i < 5; i++) await refuse(expired);
      for (let i = 0; i < 5; i++) await refuse(undefined);
      expect(full()).toMatchObject([{ level: 'warn', reason: 'signature-mismatch', status: 401 }]);
      // A second later: the next refusal in full, after the count (logged by then, or by a timer a
      // second after the first one held: this test does not depend on when).
      own.clock.now = new Date(start.getTime() + 1000);
      await refuse(expired);
      expect(full()).toMatchObject([
        { reason: 'signature-mismatch' },
        { reason: 'expired', path: '/enrollmentGroups/flood' },
      ]);
      expect(authLines().at(-1)).toMatchObject({ reason: 'expired' });
      // Refusals counted when the listener closes are logged then, if no timer did.
      await refuse(undefined);
      await refuse(undefined);
    } finally {
      await own.close();
    }
    for (const line of counted()) {
      expect(line).toMatchObject({
        level: 'warn',
        status: 401,
        msg: expect.stringMatching(
          /^\d+ more service API request\(s\) refused with 401 since 2026-12-04T18:00:0[01]\.000Z, not logged one by one \(/,
        ),
      });
    }
    expect(countedTotals(counted())).toEqual({
      byKey: { 'signature-mismatch': 19, expired: 5, 'missing-token': 7 },
      suppressed: 31,
    });
    // One line in full for each second of the service API's clock, whatever the flood.
    expect(full()).toHaveLength(2);
    const text = JSON.stringify(own.logs);
    for (const token of [wrongKey, expired]) {
      expect(text).not.toContain(decodeURIComponent(/sig=([^&]+)/.exec(token)?.[1] ?? 'no sig'));
      expect(text).not.toContain(/sig=([^&]+)/.exec(token)?.[1] ?? 'no sig');
    }
  });

  it('logs unrouted requests (404/405 of both APIs) at most once a second: the first in full, the rest counted by status', async () => {
    const own = await startBed();
    const start = new Date('2026-12-04T18:00:00Z');
    own.clock.now = start;
    const secret = 'c2VjcmV0LXNpZy1ub3QtdG8tYmUtbG9nZ2Vk';
    const unrouted = () => own.logs.filter((l) => l.event === 'https.unrouted');
    const full = () => unrouted().filter((l) => l.suppressed === undefined);
    const counted = () => unrouted().filter((l) => l.suppressed !== undefined);
    const send = async (method: string, path: string, status: number) => {
      const answer = await request(own, { method, path, headers: {}, body: '' });
      expect(answer.status, answer.text).toBe(status);
    };
    try {
      // A flood within one second of the listener's clock: 20 device API 404s (one carrying a sig=
      // in its query), 5 service API 404s, 5 device API 405s.
      for (let i = 0; i < 20; i++) await send('GET', `/nowhere/${i}?sig=${secret}`, 404);
      for (let i = 0; i < 5; i++) await send('GET', '/enrollmentGroups/a/b/c?api-version=2021-10-01', 404);
      for (let i = 0; i < 5; i++)
        await send('GET', `/${SCOPE}/registrations/dev-${i}/register?api-version=2021-06-01`, 405);
      expect(full()).toMatchObject([{ level: 'warn', status: 404, path: '/nowhere/0' }]);
      // A second later: the next one in full, after the count of the second before.
      own.clock.now = new Date(start.getTime() + 1000);
      await send('DELETE', `/${SCOPE}/registrations/late/register?api-version=2021-06-01`, 405);
      expect(full()).toMatchObject([{ path: '/nowhere/0' }, { status: 405 }]);
      expect(unrouted().at(-1)).toMatchObject({ status: 405, method: 'DELETE' });
      // Counted before close, logged at close if no timer did.
      await send('GET', '/nowhere/at-close', 404);
    } finally {
      await own.close();
    }
    for (const line of counted()) {
      expect(line).toMatchObject({
        level: 'warn',
        msg: expect.stringMatching(
          /^\d+ more request\(s\) to no resource of the listener \(404\/405\) since 2026-12-04T18:00:0[01]\.000Z, not logged one by one \(/,
        ),
      });
    }
    expect(countedTotals(counted())).toEqual({ byKey: { '404': 25, '405': 5 }, suppressed: 30 });
    expect(full()).toHaveLength(2);
    expect(JSON.stringify(own.logs)).not.toContain(secret);
  });

  it('logs clients not speaking TLS on the HTTPS port at most once a second, the rest counted', async () => {
    const own = await startBed();
    own.clock.now = new Date('2026-12-04T18:00:00Z');
    const protocol = () => own.logs.filter((l) => l.event === 'https.protocol');
    try {
      // Plain HTTP on the TLS port, 10 connections: each was a warning of its own.
      for (let i = 0; i < 10; i++) {
        await new Promise<void>((resolve) => {
          const socket = net.connect(own.transport.port, '127.0.0.1', () =>
            socket.write('GET /enrollmentGroups/x HTTP/1.1\r\nHost: localhost\r\n\r\n'),
          );
          socket.on('error', () => resolve());
          socket.on('close', () => resolve());
          socket.resume();
        });
      }
      await vi.waitFor(() => expect(protocol().length).toBeGreaterThan(0), { timeout: 30_000, interval: 20 });
    } finally {
      await own.close();
    }
    const full = protocol().filter((l) => l.suppressed === undefined);
    expect(full).toHaveLength(1);
    expect(full[0]?.msg).toMatch(/did not speak TLS/);
    const suppressed = protocol()
      .filter((l) => l.suppressed !== undefined)
      .reduce((sum, l) => sum + (l.suppressed as number), 0);
    expect(suppressed).toBe(9);
  });

  it('takes a handed-over authorization only for the method and path it was granted for', () => {
    const options = {
      enrollments: new EnrollmentService({
        store: new MemoryEnrollmentStore(),
        registrations: { get: () => undefined, delete: () => false, listByGroup: () => ({ items: [] }) },
        linkedHubs: [HUB],
      }),
      policies: () => DEFAULT_SERVICE_POLICIES,
      log: createLogger(() => {}),
    };
    const policy = DEFAULT_SERVICE_POLICIES[0];
    if (!policy) throw new Error('no default policy');
    const authorized = { method: 'GET', path: '/enrollmentGroups/a', policy };
    const ask = (method: string, path: string) =>
      handleServiceRequest(options, {
        method,
        url: new URL(`https://localhost${path}?api-version=2021-10-01`),
        headers: { host: 'localhost' },
        body: Buffer.alloc(0),
        authorized,
      }).status;
    expect(ask('GET', '/enrollmentGroups/a')).toBe(404); // authorized: the group does not exist
    expect(ask('DELETE', '/enrollmentGroups/a')).toBe(401); // no token: checked, refused
    expect(ask('GET', '/enrollmentGroups/b')).toBe(401);
  });
});
