import { describe, expect, it } from 'vitest';
import { clientErrorResponse, rawHttpResponse } from './https-client-errors.js';

const limits = { maxHeaderSize: 16384, headersTimeoutMs: 60_000, requestTimeoutMs: 300_000 };

describe('answers to requests Node could not parse', () => {
  it('keeps Node’s status (431, 408, 400) and names the limit or the parse error', () => {
    expect(clientErrorResponse({ code: 'HPE_HEADER_OVERFLOW', message: 'Header overflow' }, limits)).toMatchObject({
      status: 431,
      body: { errorCode: 431001, message: 'The request line and headers are larger than 16384 bytes.' },
    });
    expect(clientErrorResponse({ code: 'ERR_HTTP_REQUEST_TIMEOUT', message: 'Request timeout' }, limits)).toMatchObject(
      {
        status: 408,
        body: {
          errorCode: 408001,
          message: expect.stringContaining('headers within 60 s, the whole request within 300 s'),
        },
      },
    );
    expect(
      clientErrorResponse({ code: 'HPE_INVALID_METHOD', message: 'Parse Error: Invalid method encountered' }, limits),
    ).toMatchObject({
      status: 400,
      body: { errorCode: 400001, message: expect.stringContaining('HPE_INVALID_METHOD: Parse Error: Invalid method') },
    });
    expect(clientErrorResponse({ code: 'ECONNRESET', message: 'read ECONNRESET' }, limits)).toBeUndefined();
  });

  it('writes a complete response that closes the connection', () => {
    const text = rawHttpResponse({ status: 431, body: { errorCode: 431001, trackingId: 't-1', message: 'é' } });
    const [head, body] = text.split('\r\n\r\n');
    expect(head?.split('\r\n')).toEqual([
      'HTTP/1.1 431 Request Header Fields Too Large',
      'Content-Type: application/json; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body ?? '')}`,
      'x-ms-request-id: t-1',
      'x-ms-error-code: 431001',
      'Connection: close',
    ]);
    expect(JSON.parse(body ?? '')).toEqual({ errorCode: 431001, trackingId: 't-1', message: 'é' });
  });
});
