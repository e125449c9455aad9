import type { HttpResponseInit } from '@azure/functions';
import functions from '@azure/functions';
import { describe, expect, it } from 'vitest';
import { libraryResponseParts, plainResponseParts, type ResponseParts } from './node-http.js';

const { HttpResponse } = functions;

function comparable(parts: ResponseParts) {
  return {
    status: parts.status,
    headers: parts.headers.map(([name, value]) => [name, value]),
    cookies: parts.cookies,
    body: Buffer.from(parts.body).toString('hex'),
  };
}

/** The outcome of a way of answering: the parts, or the error's class and message. */
async function outcome(answer: () => Promise<ResponseParts | undefined> | ResponseParts | undefined) {
  try {
    const parts = await answer();
    return parts === undefined ? 'not handled' : comparable(parts);
  } catch (err) {
    return ['threw', (err as Error).constructor.name, (err as Error).message];
  }
}

const inits: Array<[string, HttpResponseInit | undefined]> = [
  ['nothing', undefined],
  ['empty init', {}],
  [
    'the allocator answer',
    { status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"a":1}' },
  ],
  ['a refusal', { status: 400, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'Unrecognized.' }],
  ['string, no content type', { body: 'hello ü \ud800 lone surrogate' }],
  ['empty string', { status: 201, body: '' }],
  ['bytes', { body: new Uint8Array([0, 1, 2, 255]) }],
  ['a Buffer view', { body: Buffer.from('abcdef').subarray(2, 4) }],
  ['jsonBody', { jsonBody: { id: 'dev-1', n: [1, 2] } }],
  ['jsonBody with its own type', { jsonBody: 'text', headers: { 'Content-Type': 'application/vnd.x+json' } }],
  ['jsonBody wins over body', { jsonBody: 0, body: 'ignored' }],
  ['jsonBody null falls back to body', { jsonBody: null, body: 'kept' }],
  ['jsonBody that stringifies to nothing', { jsonBody: () => 1 }],
  [
    'headers as pairs, mixed case, padded, repeated',
    {
      headers: [
        ['X-A', ' 1 '],
        ['x-a', '2'],
        ['Set-Cookie', 'a=1'],
        ['set-cookie', 'b=2'],
      ],
      body: 'x',
    },
  ],
  ['a Headers object', { headers: new Headers({ 'x-b': 'y' }), body: 'x' }],
  [
    'plain lower-case headers, unsorted',
    { headers: { 'x-z': '1', 'content-type': 'text/html', 'x-a': 'a\tb c' }, body: 'x' },
  ],
  ['an empty header value', { headers: { 'x-empty': '' }, body: 'x' }],
  ['a value with a trailing space', { headers: { 'x-pad': 'v ' }, jsonBody: {} }],
  ['a non-ASCII value', { headers: { 'x-u': 'é' }, body: 'x' }],
  ['a value beyond Latin-1', { headers: { 'x-u': '€' }, body: 'x' }],
  ['set-cookie in a plain object', { headers: { 'set-cookie': 'a=1' }, body: 'x' }],
  ['an upper-case name in a plain object', { headers: { 'X-Up': '1' }, body: 'x' }],
  [
    'a header object with a prototype',
    { headers: Object.assign(Object.create({ inherited: 'x' }), { 'x-own': '1' }), body: 'x' },
  ],
  ['cookies', { body: 'x', cookies: [{ name: 'c', value: 'v', path: '/', httpOnly: true, sameSite: 'Lax' }] }],
  ['status 599', { status: 599 }],
  ['status 204 with a body', { status: 204, body: 'dropped' }],
  ['status 304', { status: 304 }],
  ['status 199', { status: 199 }],
  ['status 600', { status: 600 }],
  ['status 200.5', { status: 200.5 }],
  ['status as text', { status: '201' as unknown as number }],
  ['an invalid header name', { headers: { 'bad name': 'x' }, body: 'x' }],
  ['an invalid header value', { headers: { 'x-c': 'a\nb' }, body: 'x' }],
  ['URLSearchParams', { body: new URLSearchParams('a=1&b=2') }],
  ['a Blob', { body: new Blob(['blob'], { type: 'text/x-blob' }) }],
  ['an ArrayBuffer', { body: new Uint8Array([9, 8]).buffer }],
];

describe('plainResponseParts', () => {
  it.each(inits)('answers %s as new HttpResponse(init) does, or leaves it to the library', async (_name, init) => {
    const library = await outcome(() => libraryResponseParts(init));
    const plain = await outcome(() => plainResponseParts(init));
    if (plain !== 'not handled') expect(plain).toEqual(library);
  });

  it('handles what handlers return nearly always, and leaves an HttpResponse to the library', () => {
    const handled = inits.filter(([, init]) => {
      try {
        return plainResponseParts(init) !== undefined;
      } catch {
        return true;
      }
    });
    expect(handled.map(([name]) => name)).toEqual(
      expect.arrayContaining(['nothing', 'the allocator answer', 'a refusal', 'jsonBody', 'bytes', 'cookies']),
    );
    expect(plainResponseParts(new HttpResponse({ body: 'x' }))).toBeUndefined();
  });
});
