import http from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

// The web view's live streams are bounded (docs/web-view.md: at most 16 open streams); each holds
// a poll timer and a response buffer. A bed of its own: no stream of another test still closing.
let bed: TestBedWithWebhook;
beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

/** GET /api/stream: the status and body (read to its end unless it is the stream), and a way to close it. */
function openStream(): Promise<{ status: number; type: string; body: Promise<string>; close(): void }> {
  const base = new URL(bed.emulator.webViewUrl ?? '');
  return new Promise((resolve, reject) => {
    const req = http.get({ host: base.hostname, port: base.port, path: '/api/stream' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      resolve({
        status: res.statusCode ?? 0,
        type: res.headers['content-type'] ?? '',
        body: new Promise((done) => res.on('end', () => done(Buffer.concat(chunks).toString('utf8')))),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}

it('serves at most 16 live streams: the next gets 503 saying so, and a closed stream frees its slot', async () => {
  const held = [];
  for (let i = 0; i < 16; i++) held.push(await openStream());
  expect(held.map((s) => s.status)).toEqual(Array(16).fill(200));
  const refused = await openStream();
  if (refused.status === 200) refused.close(); // a stream never ends: its body is not awaited
  expect({ status: refused.status, type: refused.type }).toEqual({
    status: 503,
    type: 'application/json; charset=utf-8',
  });
  expect(JSON.parse(await refused.body)).toEqual({ error: 'At most 16 live streams are served.' });
  held.pop()?.close();
  // Served again once the server has seen that stream close.
  await expect
    .poll(
      async () => {
        const next = await openStream();
        next.close();
        return next.status;
      },
      { timeout: 60_000 },
    )
    .toBe(200);
  for (const stream of held) stream.close();
});
