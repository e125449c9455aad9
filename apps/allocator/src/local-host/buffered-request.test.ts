import functions from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BufferedRequest } from './buffered-request.js';

const { HttpRequest } = functions;
type HttpRequest = InstanceType<typeof HttpRequest>;

interface Case {
  method: string;
  body: Buffer;
  headers?: Record<string, string>;
}

const URL_TEXT = 'http://localhost:7071/api/allocate/dev-1?code=k&q=1&q=2';
const PARAMS = { id: 'dev-1' };

/** The request as @azure/functions builds it from an init (the undici Request inside). */
function libraryRequest(c: Case): HttpRequest {
  return new HttpRequest({
    method: c.method,
    url: URL_TEXT,
    headers: c.headers ?? {},
    params: PARAMS,
    body: { bytes: new Uint8Array(c.body) },
  });
}

/** The request as the local host builds it: the same class over a BufferedRequest. */
function hostRequest(c: Case): HttpRequest {
  const native = new BufferedRequest(
    URL_TEXT,
    c.method,
    c.headers ?? {},
    c.method === 'GET' || c.method === 'HEAD' ? null : Buffer.from(c.body),
  );
  return new HttpRequest({ nativeRequest: native, params: PARAMS } as ConstructorParameters<typeof HttpRequest>[0]);
}

type Step = (request: HttpRequest) => Promise<unknown> | unknown;

/** Runs the steps in order and records each outcome: a value, or the error's class and message. */
async function outcomes(request: HttpRequest, steps: Step[]): Promise<unknown[]> {
  const seen: unknown[] = [];
  for (const step of steps) {
    try {
      const value = await step(request);
      seen.push(value instanceof ArrayBuffer ? ['ArrayBuffer', [...new Uint8Array(value)]] : value);
    } catch (err) {
      seen.push(['threw', (err as Error).constructor.name, (err as Error).message]);
    }
    seen.push(['bodyUsed', request.bodyUsed]);
  }
  return seen;
}

const text: Step = (r) => r.text();
const json: Step = (r) => r.json();
const arrayBuffer: Step = (r) => r.arrayBuffer();
const blob: Step = async (r) => {
  const b = await r.blob();
  return [b.type, await b.text()];
};
const formData: Step = async (r) => [...(await r.formData()).entries()];
const readStream: Step = async (r) => {
  const stream = r.body;
  if (stream === null) return null;
  let out = '';
  for await (const chunk of stream) out += Buffer.from(chunk).toString('utf8');
  return out;
};
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

  it('is an instance of the library HttpRequest', () => {
    expect(hostRequest({ method: 'POST', body: Buffer.from('x') })).toBeInstanceOf(HttpRequest);
  });
});
