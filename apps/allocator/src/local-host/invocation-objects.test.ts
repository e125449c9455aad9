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
import { forwardTheRest, LocalHttpRequest, LocalInvocationContext } from './invocation-objects.js';

const { HttpRequest, InvocationContext } = functions;
type HttpRequest = InstanceType<typeof HttpRequest>;

/** The request as the local host hands it to a function. */
function localRequest(c: RequestCase): LocalHttpRequest {
  const hasBody = c.method !== 'GET' && c.method !== 'HEAD';
  const native = new BufferedRequest(REQUEST_URL, c.method, c.headers ?? {}, hasBody ? Buffer.from(c.body) : null);
  return new LocalHttpRequest(native, new URL(REQUEST_URL).searchParams, { ...REQUEST_PARAMS });
}

const cloneThenText: Step = async (r) => {
  const copy = r.clone();
  return [copy instanceof HttpRequest, await copy.text(), copy.bodyUsed, [...copy.query], copy.params];
};
const describeRequest: Step = (r) => ({
  url: r.url,
  method: r.method,
  headers: [...r.headers],
  query: [...r.query],
  params: r.params,
  user: r.user,
  keys: Object.keys(r),
  json: JSON.stringify(r),
});
// A function that changes the query it was given sees its change, as with the library's own URL.
const changeQuery: Step = (r) => {
  r.query.append('added', 'yes');
  return [...r.query];
};

const bodies: Array<[string, Buffer]> = [
  ['JSON', Buffer.from('{"registrationId":"contoso-toaster-007"}')],
  ['empty', Buffer.alloc(0)],
  ['BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')])],
  ['invalid UTF-8', Buffer.from([0x61, 0xc3, 0x28, 0xff])],
  ['form', Buffer.from('a=1&b=two+words&a=3')],
];
const sequences: Array<[string, Step[]]> = [
  ['describe', [describeRequest]],
  ['change the query', [changeQuery, describeRequest]],
  ['text twice', [text, text]],
  ['json then text', [json, text]],
  ['arrayBuffer then json', [arrayBuffer, json]],
  ['stream then text', [readStream, text]],
  ['blob then arrayBuffer', [blob, arrayBuffer]],
  ['formData', [formData, text]],
  ['clone, then both read', [cloneThenText, text]],
  ['read, then clone', [text, cloneThenText]],
];
const headerSets: Array<Record<string, string>> = [
  { 'content-type': 'application/x-www-form-urlencoded', host: 'localhost:7071' },
  {
    'content-type': 'text/plain; charset=utf-8',
    'x-ms-client-principal': Buffer.from('{"identityProvider":"aad","userId":"u","userDetails":"d"}').toString(
      'base64',
    ),
  },
];

describe('LocalHttpRequest', () => {
  // Outside a worker the library warns on the console when it drops a GET/HEAD body; not news here.
  beforeAll(() => {
    vi.spyOn(console, 'warn').mockImplementation(() => {});
  });
  afterAll(() => {
    vi.restoreAllMocks();
  });

  for (const method of ['POST', 'GET']) {
    for (const [bodyName, body] of bodies) {
      it(`behaves as the library's HttpRequest: ${method}, ${bodyName} body`, async () => {
        for (const headers of headerSets) {
          for (const [name, steps] of sequences) {
            const c = { method, body, headers };
            const expected = await outcomes(libraryRequest(c), steps);
            const actual = await outcomes(localRequest(c) as unknown as HttpRequest, steps);
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

  it('is an instance of the library HttpRequest, named as it', () => {
    const request = localRequest({ method: 'POST', body: Buffer.from('x'), headers: {} });
    expect(request).toBeInstanceOf(HttpRequest);
    expect(request.constructor.name).toBe('HttpRequest');
  });

  it("defines every member of the library's prototype itself (none is left to throw on a private field)", () => {
    for (const key of Reflect.ownKeys(HttpRequest.prototype)) {
      expect([key, Object.hasOwn(LocalHttpRequest.prototype, key)]).toEqual([key, true]);
    }
  });
});

describe('LocalInvocationContext', () => {
  const trigger = { type: 'httpTrigger', name: 'httpTrigger', authLevel: 'function', methods: ['POST'] };

  function both(init: Omit<functions.InvocationContextInit, 'logHandler'>) {
    const calls: Array<{ from: string; level: string; args: unknown[]; self: boolean }> = [];
    const library: functions.InvocationContext = new InvocationContext({
      ...init,
      logHandler(level, ...args) {
        calls.push({ from: 'library', level, args, self: (this as unknown) === library });
      },
    });
    const local: LocalInvocationContext = new LocalInvocationContext({
      ...init,
      logHandler(level, ...args) {
        calls.push({ from: 'local', level, args, self: (this as unknown) === local });
      },
    });
    return { library, local, calls };
  }

  it("has the library context's own properties, in its order, with its values and defaults", () => {
    for (const init of [{ invocationId: 'id-1', functionName: 'allocate', options: { trigger } }, {}]) {
      const { library, local } = both(init);
      expect(Object.keys(local)).toEqual(Object.keys(library));
      expect(JSON.stringify(local)).toBe(JSON.stringify(library));
      expect(local.options).toEqual(library.options);
    }
  });

  it('hands each log call to the log handler with the level the library names, called on the context', () => {
    const { library, local, calls } = both({ invocationId: 'id-1', functionName: 'allocate' });
    for (const context of [library, local]) {
      context.log('a', 1);
      context.trace('b');
      context.debug('c');
      context.info('d', { x: 1 });
      context.warn('e');
      context.error('f');
    }
    const of = (from: string) =>
      calls.filter((c) => c.from === from).map(({ level, args, self }) => [level, args, self]);
    expect(of('local')).toEqual(of('library'));
    expect(of('local')[0]).toEqual(['information', ['a', 1], true]);
  });

  it('keeps extra inputs and outputs by name, given as a string or a binding', () => {
    const { library, local } = both({});
    for (const context of [library, local]) {
      context.extraInputs.set('blob', 1);
      context.extraOutputs.set({ name: 'queue', type: 'queue' }, 2);
    }
    for (const context of [library, local]) {
      expect([context.extraInputs.get({ name: 'blob', type: 'blob' }), context.extraOutputs.get('queue')]).toEqual([
        1, 2,
      ]);
      expect(context.extraInputs.get('missing')).toBeUndefined();
    }
  });

  it('is an instance of the library InvocationContext and defines every member of its prototype', () => {
    const { local } = both({});
    expect(local).toBeInstanceOf(InvocationContext);
    expect(local.constructor.name).toBe('InvocationContext');
    for (const key of Reflect.ownKeys(InvocationContext.prototype)) {
      expect([key, Object.hasOwn(LocalInvocationContext.prototype, key)]).toEqual([key, true]);
    }
  });
});

describe('forwardTheRest', () => {
  it("forwards a library member the host does not define (a newer library's) to a library object", () => {
    class Library {
      #secret = 'library';
      reveal(suffix: string): string {
        return this.#secret + suffix;
      }
      get secret(): string {
        return this.#secret;
      }
      own(): string {
        return 'library own';
      }
    }
    class Local {
      own(): string {
        return 'local own';
      }
    }
    const backing = new Library();
    forwardTheRest(Local.prototype, Library.prototype, () => backing);
    const local = new Local() as Local & Pick<Library, 'reveal' | 'secret'>;
    expect([local.reveal('!'), local.secret, local.own()]).toEqual(['library!', 'library', 'local own']);
  });
});
