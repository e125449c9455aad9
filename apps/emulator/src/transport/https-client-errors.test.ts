import { describe, expect, it } from 'vitest';
import { clientErrorResponse, rawHttpResponse } from './https-client-errors.js';
import type { HttpAnswer } from './service-api.js';

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

  it('in IoT Hub’s error shape for a hub path: 431, 408 and 400 with its error code header and body', () => {
    const hub = (code: string) => clientErrorResponse({ code, message: 'Parse Error: x' }, limits, 'hub');
    expect(hub('HPE_HEADER_OVERFLOW')).toMatchObject({
      status: 431,
      headers: { 'iothub-errorcode': 'RequestHeaderFieldsTooLarge' },
      body: {
        Message: 'ErrorCode:RequestHeaderFieldsTooLarge;The request line and headers are larger than 16384 bytes.',
      },
    });
    expect(hub('ERR_HTTP_REQUEST_TIMEOUT')).toMatchObject({
      status: 408,
      headers: { 'iothub-errorcode': 'RequestTimeout' },
      body: {
        Message: expect.stringContaining(
          'ErrorCode:RequestTimeout;The request did not arrive in time (headers within 60 s',
        ),
      },
    });
    expect(hub('HPE_INVALID_HEADER_TOKEN')).toMatchObject({
      status: 400,
      headers: { 'iothub-errorcode': 'GenericBadRequest' },
      body: {
        Message:
          'ErrorCode:GenericBadRequest;The request is not valid HTTP/1.1 (HPE_INVALID_HEADER_TOKEN: Parse Error: x).',
      },
    });
    expect(hub('ECONNRESET')).toBeUndefined();
    // Written whole, with IoT Hub's headers.
    const answer = hub('HPE_HEADER_OVERFLOW') as HttpAnswer;
    const head = rawHttpResponse(answer).split('\r\n\r\n')[0]?.split('\r\n');
    expect(head).toContain('iothub-errorcode: RequestHeaderFieldsTooLarge');
    expect(head).toContain(`x-ms-request-id: ${answer.headers?.['x-ms-request-id']}`);
    expect(head).toContain('Connection: close');
    expect(head?.some((line) => line.startsWith('x-ms-error-code'))).toBe(false);
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
