import functions from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  arrayBuffer,
  blob,
  formData,
  json,
  libraryRequest,
  outcomes,
  REQUEST_PARAMS,
  REQUEST_URL,
  type RequestCase,
  readStream,
  type Step,
  text,
} from '../testing/request-steps.js';
import { BufferedRequest } from './buffered-request.js';

const { HttpRequest } = functions;
type HttpRequest = InstanceType<typeof HttpRequest>;

/**
 * The request as the local host builds it: the library's HttpRequest over a BufferedRequest, its
 * headers given at once or, with `headerSource`, by a function on first use (as the host does).
 */
function hostRequest(c: RequestCase, headerSource?: () => Record<string, string>): HttpRequest {
  const native = new BufferedRequest(
    REQUEST_URL,
    c.method,
    headerSource ?? c.headers ?? {},
    c.method === 'GET' || c.method === 'HEAD' ? null : Buffer.from(c.body),
  );
  return new HttpRequest({ nativeRequest: native, params: REQUEST_PARAMS } as ConstructorParameters<
    typeof HttpRequest
  >[0]);
}

const cloneThenText: Step = async (r) => {
  const copy = r.clone();
  return [await copy.text(), copy.bodyUsed];
};
const describeRequest: Step = (r) => ({
  url: r.url,
  method: r.method,
  headers: [...r.headers],
  query: [...r.query],
  params: r.params,
  user: r.user,
});

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const bodies: Array<[string, Buffer]> = [
  ['JSON', Buffer.from('{"registrationId":"contoso-toaster-007"}')],
  ['empty', Buffer.alloc(0)],
  ['one BOM', Buffer.concat([BOM, Buffer.from('{"a":1}')])],
  ['two BOMs', Buffer.concat([BOM, BOM, Buffer.from('x')])],
  ['invalid UTF-8', Buffer.from([0x61, 0xc3, 0x28, 0xff, 0xe2, 0x82, 0x62])],
  ['not JSON', Buffer.from('plain text ü')],
  ['form', Buffer.from('a=1&b=two+words&a=3')],
];
const sequences: Array<[string, Step[]]> = [
  ['describe', [describeRequest]],
  ['text twice', [text, text]],
  ['json then text', [json, text]],
  ['arrayBuffer then json', [arrayBuffer, json]],
  ['stream then text', [readStream, text]],
  ['text then stream', [text, readStream]],
  ['blob then arrayBuffer', [blob, arrayBuffer]],
  ['text then blob', [text, blob]],
  ['formData', [formData, text]],
  ['text then formData', [text, formData]],
  ['clone, then both read', [cloneThenText, text]],
  ['read, then clone', [text, cloneThenText]],
];
const headerSets: Array<Record<string, string>> = [
  { 'content-type': 'application/x-www-form-urlencoded', 'x-test': ' padded ', host: 'localhost:7071' },
  {
    'content-type': 'text/plain; charset=utf-8',
    'x-ms-client-principal': Buffer.from('{"identityProvider":"aad","userId":"u","userDetails":"d"}').toString(
      'base64',
    ),
  },
];

describe('BufferedRequest under the library HttpRequest', () => {
  // Outside a worker the library warns on the console when it drops a GET/HEAD body; not news here.
  beforeAll(() => {
    vi.spyOn(console, 'warn').mockImplementation(() => {});
  });
  afterAll(() => {
    vi.restoreAllMocks();
  });

  for (const method of ['POST', 'GET', 'HEAD', 'PUT']) {
    for (const [bodyName, body] of bodies) {
      it(`behaves as the library-built request: ${method}, ${bodyName} body`, async () => {
        for (const headers of headerSets) {
          for (const [name, steps] of sequences) {
            const c = { method, body, headers };
            const expected = await outcomes(libraryRequest(c), steps);
            const actual = await outcomes(hostRequest(c), steps);
            expect({ sequence: name, headers, outcomes: actual }).toEqual({
              sequence: name,
              headers,
              outcomes: expected,
            });
          }
        }
      });
    }
  }

  it('takes its headers from a function once, on first use, with the same outcomes', async () => {
    let calls = 0;
    let withoutHeaders = 0;
    for (const method of ['POST', 'GET']) {
      for (const [, body] of bodies) {
        for (const headers of headerSets) {
          for (const [name, steps] of [
            ...sequences,
            ['headers twice, then clone', [describeRequest, describeRequest, cloneThenText]] as const,
          ]) {
            const c = { method, body, headers };
            let given = 0;
            const source = () => {
              given++;
              calls++;
              return { ...headers };
            };
            const expected = await outcomes(libraryRequest(c), steps);
            const actual = await outcomes(hostRequest(c, source), steps);
            expect({ sequence: name, outcomes: actual }).toEqual({ sequence: name, outcomes: expected });
            expect(given).toBeLessThanOrEqual(1);
            if (given === 0) withoutHeaders++;
          }
        }
      }
    }
    // Reading a body alone never asks for the headers; describing the request, a stream, a blob do.
    expect(calls).toBeGreaterThan(50);
    expect(withoutHeaders).toBeGreaterThan(50);
  });

  it('is an instance of the library HttpRequest', () => {
    expect(hostRequest({ method: 'POST', body: Buffer.from('x') })).toBeInstanceOf(HttpRequest);
  });
});
