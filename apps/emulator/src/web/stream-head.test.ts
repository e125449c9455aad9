import http from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

// HEAD on the live stream: its headers, then the end. A bed of its own, so that its count of open
// streams is this file's alone (stream-limit.test.ts fills all 16).
let bed: TestBedWithWebhook;
beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

function send(method: 'GET' | 'HEAD'): Promise<{ status: number; type: string; close(): void }> {
  const base = new URL(bed.emulator.webViewUrl ?? '');
  return new Promise((resolve, reject) => {
    const req = http.request({ host: base.hostname, port: base.port, path: '/api/stream', method }, (res) => {
      const answer = {
        status: res.statusCode ?? 0,
        type: res.headers['content-type'] ?? '',
        close: () => req.destroy(),
      };
      if (method === 'GET') resolve(answer); // a stream never ends
      res.resume();
      res.on('end', () => resolve(answer));
    });
    req.on('error', reject);
    req.end();
  });
}

it('answers HEAD /api/stream with the stream headers and ends: no stream is held for it', async () => {
  // Before, a HEAD opened a stream that never sent even its headers (Node sends a HEAD answer's
  // headers with its end), each holding one of the 16 stream slots until its client gave up.
  for (let i = 0; i < 16; i++) {
    expect(await send('HEAD')).toMatchObject({ status: 200, type: 'text/event-stream; charset=utf-8' });
  }
  const stream = await send('GET');
  expect(stream).toMatchObject({ status: 200, type: 'text/event-stream; charset=utf-8' });
  stream.close();
});
