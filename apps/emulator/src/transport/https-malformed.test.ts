import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_A, ID_SCOPE } from '../testing/fixtures.js';
import { registryToken } from '../testing/raw-https.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

// HTTP that Node's parser refuses before the request reaches the listener's routes (headers over
// `limits.maxHeaderBytes`: 431; not HTTP: 400). Its answer was always in DPS's error shape; on a hub
// path it is now in IoT Hub's, as every other answer on a hub path, when the chunk it failed in
// (one TLS record, at most 16 KiB) begins with its request line.

let bed: TestBedWithWebhook;
// Below a TLS record, so that a head over it can fail in the record that carries its request line.
const MAX_HEADER_BYTES = 8192;

beforeAll(async () => {
  bed = await startTestBedWithWebhook({ limits: { maxHeaderBytes: MAX_HEADER_BYTES } });
});
afterAll(() => bed?.close());

/**
 * Writes each of `writes` on one TLS connection to the HTTPS listener (the next once the answers
 * to the one before have begun, if `waitForAnswer`) and returns all it answered until it closed.
 */
async function exchange(writes: string[], { waitForAnswer = false } = {}): Promise<string> {
  const socket = tls.connect({
    port: bed.emulator.endpoints.https?.port ?? 0,
    host: '127.0.0.1',
    servername: 'localhost',
    ca: bed.emulator.caCertPem,
  });
  let text = '';
  const closed = new Promise<void>((resolve) => {
    socket.on('error', () => {});
    socket.once('close', () => resolve());
  });
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  for (const [i, bytes] of writes.entries()) {
    if (i > 0 && waitForAnswer) {
      const before = text.length;
      await new Promise<void>((resolve) => {
        const check = () => {
          if (text.length > before && text.includes('\r\n\r\n', before)) resolve();
          else socket.once('data', () => setImmediate(check));
        };
        check();
      });
    }
    socket.write(bytes);
  }
  await closed;
  return text;
}

/** The last answer of a raw exchange: status, headers (lower-case names), JSON body. */
function lastAnswer(text: string) {
  // A status line, not "HTTP/1.1" in a message.
  const start = [...text.matchAll(/HTTP\/1\.1 \d{3} [A-Za-z ]+\r\n/g)].at(-1)?.index ?? 0;
  const [head = '', body = ''] = text.slice(start).split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, json: JSON.parse(body) as Record<string, unknown> };
}

const tooLarge = (path: string, host: string) =>
  // 10,000 bytes of one header: over the limit, within one TLS record.
  `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nX-Padding: ${'a'.repeat(10_000)}\r\n\r\n`;
const badHeader = (path: string, host: string) => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nBad Header: y\r\n\r\n`;

describe('HTTP Node refuses, on a hub path: IoT Hub’s error shape', () => {
  it('headers too large: 431 RequestHeaderFieldsTooLarge', async () => {
    const answer = lastAnswer(await exchange([tooLarge('/twins/malformed-1?api-version=2021-04-12', HUB_A)]));
    expect(answer).toMatchObject({
      status: 431,
      headers: { 'iothub-errorcode': 'RequestHeaderFieldsTooLarge', connection: 'close' },
      json: {
        Message: 'ErrorCode:RequestHeaderFieldsTooLarge;The request line and headers are larger than 8192 bytes.',
        ExceptionMessage: expect.stringMatching(/^Tracking ID:[0-9a-f]{32}-TimeStamp:/),
      },
    });
    expect(answer.headers['x-ms-error-code']).toBeUndefined();
  });

  it('a header Node cannot parse: 400 GenericBadRequest', async () => {
    const answer = lastAnswer(await exchange([badHeader('/devices/malformed-2/messages/events', HUB_A)]));
    expect(answer).toMatchObject({
      status: 400,
      headers: { 'iothub-errorcode': 'GenericBadRequest', connection: 'close' },
      json: {
        Message: expect.stringMatching(
          /^ErrorCode:GenericBadRequest;The request is not valid HTTP\/1\.1 \(HPE_INVALID_HEADER_TOKEN: /,
        ),
      },
    });
  });

  it('the second request of a kept-alive connection, its path a hub’s: IoT Hub’s shape', async () => {
    const served = `GET /twins/malformed-3?api-version=2021-04-12 HTTP/1.1\r\nHost: ${HUB_A}\r\nAuthorization: ${registryToken(HUB_A)}\r\n\r\n`;
    const text = await exchange([served, tooLarge('/twins/malformed-3?api-version=2021-04-12', HUB_A)], {
      waitForAnswer: true,
    });
    expect(text.startsWith('HTTP/1.1 404 Not Found')).toBe(true); // no such device: the first was served
    expect(lastAnswer(text)).toMatchObject({
      status: 431,
      headers: { 'iothub-errorcode': 'RequestHeaderFieldsTooLarge' },
    });
  });
});

describe('HTTP Node refuses, elsewhere or where the path is unknown: DPS’s error shape', () => {
  it('on a DPS path: 431 431001, 400 400001', async () => {
    const path = `/${ID_SCOPE}/registrations/malformed-4/register?api-version=2021-06-01`;
    expect(lastAnswer(await exchange([tooLarge(path, 'localhost')]))).toMatchObject({
      status: 431,
      headers: { 'x-ms-error-code': '431001' },
      json: { errorCode: 431001, message: 'The request line and headers are larger than 8192 bytes.' },
    });
    expect(lastAnswer(await exchange([badHeader(path, 'localhost')]))).toMatchObject({
      status: 400,
      json: { errorCode: 400001 },
    });
  });

  it('a head over the limit whose request line came in an earlier TLS record: 431 431001', async () => {
    // Two writes, two TLS records: the parser fails in the second, which holds no request line.
    const request = tooLarge('/twins/malformed-6?api-version=2021-04-12', HUB_A);
    const lineEnd = request.indexOf('\r\n') + 2;
    const answer = lastAnswer(await exchange([request.slice(0, lineEnd), request.slice(lineEnd)]));
    expect(answer).toMatchObject({ status: 431, json: { errorCode: 431001 } });
  });

  it('not HTTP at all, or a bad request sent in one write after a good one (pipelined): 400 400001', async () => {
    expect(lastAnswer(await exchange(['HELLO /twins/x\r\n\r\n']))).toMatchObject({
      status: 400,
      json: { errorCode: 400001 },
    });
    const served = `GET /twins/malformed-5?api-version=2021-04-12 HTTP/1.1\r\nHost: ${HUB_A}\r\nAuthorization: ${registryToken(HUB_A)}\r\n\r\n`;
    const text = await exchange([served + badHeader('/twins/malformed-5', HUB_A)]);
    expect(text.startsWith('HTTP/1.1 404 Not Found')).toBe(true);
    expect(lastAnswer(text)).toMatchObject({ status: 400, json: { errorCode: 400001 } });
  });
});
