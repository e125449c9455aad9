import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AllocatorHost, startAllocatorHost } from '../local-host/allocator-host.js';
import { executedMessage, executingMessage, startFunctionsHost } from '../local-host/server.js';
import { accept, reject } from '../policy/policy.js';
import { httpFunction } from '../registration/http-function.js';
import { requestFrom, TOASTER_BODY, TOASTERS_HUB } from '../testing/tutorial-requests.js';
import { logFields } from './fields.js';
import { fastJsonLine, forgetJsonTexts, isJsonOf, jsonLine, noteJsonString, noteJsonTexts } from './json-line.js';
import type { AllocatorLogRecord } from './record.js';

/** What JSON.stringify(record) does: its text, or the error it throws. */
function reference(record: unknown): string | [string, string] {
  try {
    return JSON.stringify(record);
  } catch (err) {
    return [(err as Error).constructor.name, (err as Error).message];
  }
}

function actual(record: unknown): string | [string, string] {
  try {
    return jsonLine(record as AllocatorLogRecord);
  } catch (err) {
    return [(err as Error).constructor.name, (err as Error).message];
  }
}

// Every character class JSON.stringify treats apart: quote, backslash, C0 controls, DEL (kept),
// U+2028/2029 (kept), non-ASCII, a surrogate pair (kept), lone surrogates (escaped as \udXXX).
const AWKWARD = [
  '',
  'plain',
  'quote " and backslash \\',
  'controls \u0000\u0001\b\t\n\u000b\f\r\u001f end',
  'DEL \u007f, line separators \u2028\u2029',
  'non-ASCII: ü é ß 中文 Ωmega',
  'emoji 😀 pair',
  'lone high \ud800 and low \udfff surrogates',
  'high at end \udbff',
  '\udc00 low at start',
  '</script><!-- -->',
];
const TIME = '2026-01-02T03:04:05.678Z';

function hostRecord(msg: string, data?: Record<string, unknown>): AllocatorLogRecord {
  const record: AllocatorLogRecord = { time: TIME, level: 'info', source: 'host', msg };
  if (data) record.data = data;
  return record;
}

function functionRecord(msg: string, data?: Record<string, unknown>): AllocatorLogRecord {
  const record: AllocatorLogRecord = {
    time: TIME,
    level: 'warn',
    source: 'function',
    msg,
    functionName: 'allocate',
    invocationId: '0b6c1e8e-7a52-4d2a-9a4e-2f1c5d3e4b6a',
  };
  if (data) record.data = data;
  return record;
}

describe('jsonLine', () => {
  it('writes the bytes of JSON.stringify for awkward strings in every field and key', () => {
    for (const text of AWKWARD) {
      const records: AllocatorLogRecord[] = [
        hostRecord(text),
        hostRecord('HTTP', { method: 'POST', path: text, status: 200, durationMs: 1.3 }),
        functionRecord(text, { [text]: text, nested: { [text]: [text, { text }] } }),
        { ...functionRecord('m'), functionName: text, invocationId: text },
        { time: text, level: text as 'info', source: text as 'host', msg: text },
      ];
      for (const record of records) {
        expect(fastJsonLine(record)).toBe(JSON.stringify(record));
        expect(jsonLine(record)).toBe(JSON.stringify(record));
      }
    }
  });

  it('writes numbers, booleans, null and omitted values as JSON.stringify does', () => {
    const holes: unknown[] = [1];
    holes[3] = 'x';
    const data = {
      zero: 0,
      negativeZero: -0,
      fraction: 0.1 + 0.2,
      big: 1e21,
      small: 1.5e-7,
      notANumber: Number.NaN,
      infinite: Number.NEGATIVE_INFINITY,
      yes: true,
      no: false,
      nothing: null,
      missing: undefined,
      symbol: Symbol('s'),
      list: [1, undefined, () => 1, Symbol('t'), null, 'x'],
      holes,
    };
    const record = functionRecord('Numbers', data);
    expect(fastJsonLine(record)).toBe(JSON.stringify(record));
  });

  it('gives way to JSON.stringify for every shape it does not prove, with the same text or error', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const withToJson = { toJSON: (key: string) => `key ${key}` };
    class Fields {
      a = 1;
    }
    const nullPrototype = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1, b: 'two' });
    const records: unknown[] = [
      { level: 'info', time: TIME, source: 'host', msg: 'order' },
      { ...hostRecord('extra'), extra: 1 },
      { ...hostRecord('data first'), data: { a: 1 }, functionName: 'f', invocationId: 'i' },
      { time: 1, level: 'info', source: 'host', msg: 'number time' },
      { ...hostRecord('m'), msg: undefined },
      { ...hostRecord('m'), data: undefined },
      { ...hostRecord('m'), data: null },
      { ...hostRecord('m'), data: 'text' },
      { ...hostRecord('m'), data: [1, 2] },
      { ...hostRecord('m'), data: new Fields() },
      { ...hostRecord('m'), data: nullPrototype },
      { ...hostRecord('m'), data: withToJson },
      hostRecord('m', { when: new Date(0), inner: withToJson }),
      hostRecord('m', { deep: { when: new Date(0), inner: withToJson } }),
      hostRecord('m', { fn: Object.assign(() => 1, { toJSON: () => 'called' }) }),
      hostRecord('m', { big: 1n }),
      hostRecord('m', { cyclic }),
      hostRecord('m', { map: new Map([[1, 2]]), set: new Set([1]), boxed: new String('s') }),
      { ...functionRecord('m'), functionName: undefined },
      { ...functionRecord('m'), toJSON: () => 'record' },
      { ...hostRecord('m'), ['__proto__' as string]: 1 },
      hostRecord('m', JSON.parse('{"__proto__":{"a":1},"2":"index","b":1,"1":"first"}') as Record<string, unknown>),
    ];
    for (const record of records) expect(actual(record)).toEqual(reference(record));
  });

  it('matches JSON.stringify on generated records (any UTF-16 code units, any values)', () => {
    const codeUnits = fc.string({ unit: fc.nat({ max: 0xffff }).map((n) => String.fromCharCode(n)) });
    const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), codeUnits, fc.constantFrom(...AWKWARD));
    const value = fc.oneof(
      fc.jsonValue(),
      fc.anything({
        key: text,
        withBigInt: true,
        withBoxedValues: true,
        withDate: true,
        withMap: true,
        withNullPrototype: true,
        withObjectString: true,
        withSet: true,
        withSparseArray: true,
        withTypedArray: true,
      }),
      text,
    );
    const record = fc.record(
      {
        time: fc.oneof(fc.constant(TIME), text),
        level: fc.constantFrom('debug', 'info', 'warn', 'error'),
        source: fc.constantFrom('host', 'function'),
        msg: text,
        functionName: text,
        invocationId: fc.oneof(fc.uuid(), text),
        data: fc.dictionary(text, value, { maxKeys: 6 }),
      },
      { requiredKeys: ['time', 'level', 'source', 'msg'] },
    );
    fc.assert(
      fc.property(record, (generated) => {
        expect(actual(generated)).toEqual(reference(generated));
      }),
      { numRuns: 3000, seed: 1313 },
    );
  });
});

describe('jsonLine with short lists and objects in data (written without JSON.stringify)', () => {
  it('writes them as JSON.stringify does, and gives way for every item it does not write itself', () => {
    const holes: unknown[] = ['a'];
    holes[2] = 'c';
    class Hubs extends Array<string> {}
    const hubs = Hubs.from(['h1', 'h2']);
    const getters = {
      get hub() {
        return 'from a getter';
      },
    };
    const values: unknown[] = [
      [],
      {},
      ['contoso-toasters-hub-1098.azure-devices.net'],
      { iotHubHostName: 'contoso-toasters-hub-1098.azure-devices.net' },
      [1, -0, 0.1, 1e21, 5e-7, -1.5, true, false, null, 'x'].slice(0, 8),
      [1, -0, 0.1, 1e21, 5e-7, -1.5, true, false, null, 'x'].slice(8),
      { zero: -0, t: true, f: false, n: null, s: 'x', '1': 'index first', ['__proto__']: 'own' },
      JSON.parse('{"__proto__":"own","b":1,"0":"zero"}'),
      AWKWARD.slice(0, 8),
      Object.fromEntries(AWKWARD.slice(0, 8).map((text, i) => [text, i])),
      Object.fromEntries(AWKWARD.slice(0, 8).map((text) => ['k', text])),
      AWKWARD,
      Array.from({ length: 9 }, (_, i) => i),
      Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, i])),
      holes,
      [undefined],
      ['a', Symbol('s')],
      ['a', () => 1],
      [Number.NaN],
      [Number.POSITIVE_INFINITY],
      { a: undefined, b: 1 },
      { a: Symbol('s'), b: 1 },
      { a: Number.NaN },
      { a: () => 1 },
      [['nested']],
      { a: { nested: true } },
      [new Date(0)],
      [1n],
      hubs,
      getters,
      Object.assign(Object.create(null) as object, { a: 1 }),
      Object.assign(['a'], { extra: 'ignored by JSON.stringify' }),
      { toJSON: () => 'own toJSON' },
      Object.assign(['a'], { toJSON: () => 'array toJSON' }),
    ];
    for (const value of values) {
      for (const data of [{ value }, { first: 'x', value }, { value, last: [value] }]) {
        const record = functionRecord('Shallow', data);
        expect(actual(record)).toEqual(reference(record));
        const host = hostRecord('Shallow', data);
        expect(actual(host)).toEqual(reference(host));
      }
    }
  });

  it('writes repeated string values as JSON.stringify does (kept quoted for the next two values)', () => {
    const uuid = '0b6c1e8e-7a52-4d2a-9a4e-2f1c5d3e4b6a';
    // Same lengths, other characters: a kept value must not stand in for another of its length.
    const sameLength = ['0b6c1e8e-7a52-4d2a-9a4e-2f1c5d3e4b6b', 'quote " and \\ x', 'quote " and \\ y'];
    const sequence = [uuid, ...sameLength, uuid, ...AWKWARD, ...AWKWARD.slice().reverse(), ...sameLength, uuid];
    for (let i = 0; i < sequence.length; i++) {
      const a = sequence[i] as string;
      const b = sequence[(i * 7) % sequence.length] as string;
      const record = functionRecord('Repeated', { a, list: [b, a], object: { b, a }, b });
      expect(fastJsonLine(record)).toBe(JSON.stringify(record));
    }
  });
});

describe('jsonLine with strings whose JSON was noted (noteJsonString)', () => {
  // Names a function could be registered with: anything JSON escapes, next to the message's own text.
  const NAMES = [...AWKWARD, 'allocate', "it's", '\\', '"', '\\ud800', '\udbff', '\udc00x', 'x\ud83d', '\ude00x'];

  it("writes the host's Executing and Executed lines and the function's origin as JSON.stringify does", () => {
    const names = [...NAMES, ...fc.sample(fc.string({ unit: 'binary' }), { numRuns: 300, seed: 1310 })];
    for (const name of names) {
      const nameJson = JSON.stringify(name).slice(1, -1);
      const invocationId = randomUUID();
      const executing = hostRecord(executingMessage(name, nameJson, invocationId));
      const line = { ...functionRecord('Request.Body', { body: { a: name } }), functionName: name, invocationId };
      const executed = hostRecord(executedMessage(name, nameJson, invocationId, 12));
      for (const record of [executing, line, line, executed]) {
        expect(fastJsonLine(record)).toBe(JSON.stringify(record));
      }
    }
  });

  it('uses a note only for its own string: other strings, and replaced notes, are checked as ever', () => {
    noteJsonString('noted "text"', '"noted \\"text\\""');
    const record = hostRecord('noted "text" but another string', { a: 'noted "text"x', b: 'noted "text"' });
    expect(fastJsonLine(record)).toBe(JSON.stringify(record));
    // A wrong note (never made by the host) replaced by four newer ones is no longer used.
    noteJsonString('"replaced"', 'wrong');
    for (let i = 0; i < 4; i++) noteJsonString(`filler ${i}`, `"filler ${i}"`);
    const replaced = hostRecord('"replaced"', { value: '"replaced"' });
    expect(fastJsonLine(replaced)).toBe(JSON.stringify(replaced));
  });
});

describe('jsonLine with the texts values were parsed from (noteJsonTexts)', () => {
  /** The body's line as written with the text noted, and JSON.stringify's. */
  function bodyLines(text: string): [string | undefined, string] {
    const body = JSON.parse(text) as unknown;
    const record = functionRecord('Request.Body', { body });
    noteJsonTexts(record.data!, { body: text });
    try {
      return [fastJsonLine(record), JSON.stringify(record)];
    } finally {
      forgetJsonTexts();
    }
  }

  // Texts JSON.stringify would not write as they are: each must take the long way.
  const ODD = [
    '{"a":1,"a":2}',
    '{"a":{"b":1,"b":1},"c":"x"}',
    '{"a":"x","b":"y","a":"xy"}',
    '[{"k":"v","k":"v"}]',
    '{"a": 1}',
    '{"a":1}\n',
    '{"a":"\\/"}',
    '{"a":"\\u0041"}',
    '{"a":"\\\\"}',
    '{"a":"\\n"}',
    '{"a":"\\ud800"}',
    '{"a":"\ud800"}',
    '{"a":"x\udc00","b":"\udbff"}',
    '{"a":"\\u001F"}',
    '{"a":"\\u001f"}',
    '{"a":"\\b\\f\\n\\r\\t\\"\\\\"}',
    '{"a":"\\b\\f\\n\\r\\t\\"\\\\","a":"\\/"}',
    '{ "a" : [ 1 , 2 ] }',
    '{"a b":"c d","e":" "}',
    ' {"a":1}',
    '{"a":"\ud83d\ude00"}',
    '{"a":1.0}',
    '{"a":1.5}',
    '{"a":1e2}',
    '{"a":1E2}',
    '{"a":1e21}',
    '{"a":-0}',
    '[-0]',
    '{"a":12345678901234567}',
    '{"a":9007199254740993}',
    '{"2":"b","1":"a"}',
    '{"b":1,"0":"a"}',
    '{"01":"x"}',
    '{"__proto__":{"a":1},"b":[]}',
    '{"a":"12.0.2.5","t":"2022-08-03T17:15:10.8464255Z","n":-12,"z":0}',
    '{"a":[1,2,{"b":null,"c":true,"d":false}],"e":{},"f":[]}',
    '{"quote":"\\"x\\"","k\\"ey":"v"}',
    '{"a":"ü é ß 中文","b":"\u2028\u2029"}',
    '[]',
    '{}',
  ];

  it('writes the line as JSON.stringify does, for canonical and odd texts alike', () => {
    for (const text of [TOASTER_BODY, ...ODD]) {
      const [fast, reference] = bodyLines(text);
      expect(fast).toBe(reference);
    }
  });

  it('uses a text only when it is JSON.stringify’s own (over generated values and their texts)', () => {
    let used = 0;
    const value = fc.oneof(fc.jsonValue(), fc.object());
    fc.assert(
      fc.property(value, fc.nat(5), (generated, variant) => {
        const canonical = JSON.stringify(generated);
        if (canonical === undefined || !/^[[{]/.test(canonical)) return;
        // The canonical text and texts that parse to the same value but are written otherwise.
        const texts = [
          canonical,
          JSON.stringify(generated, null, variant),
          canonical.replace(/"([^"\\]*)":/, '"$1":null,"$1":'),
          canonical.replace(/:(-?\d+)([,}\]])/, ':$1.0$2'),
          canonical.replace(/"a/, '"\\u0061'),
        ];
        for (const text of texts) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            continue;
          }
          const same = JSON.stringify(parsed) === text;
          if (isJsonOf(parsed, text)) {
            expect(same).toBe(true);
            used++;
          }
          const [fast, reference] = bodyLines(text);
          expect(fast).toBe(reference);
        }
      }),
      { numRuns: 3000, seed: 1311 },
    );
    // Not vacuous: most canonical texts are used as they are.
    expect(used).toBeGreaterThan(1000);
  });

  it('is used for the toaster request, and not for a value that is not the parse of its text', () => {
    expect(isJsonOf(JSON.parse(TOASTER_BODY), TOASTER_BODY)).toBe(true);
    // A different value of the same length: only the length is compared, hence the contract.
    expect(isJsonOf({ a: 'y', b: 1 }, '{"a":"x","b":1}')).toBe(true);
    expect(isJsonOf({ a: 'x' }, '{"a":"x","b":1}')).toBe(false);
    expect(isJsonOf('{}', '{}')).toBe(false);
    expect(isJsonOf([new Date(0)], '[1]')).toBe(false);
  });

  it('is used for the noted data only: other data with the same field is serialised', () => {
    const noted = functionRecord('Request.Body', { body: { a: 'x' } });
    const other = functionRecord('Request.Body', { body: { a: 'x' } });
    noteJsonTexts(noted.data!, { body: '{"a":"y"}' });
    try {
      expect(fastJsonLine(other)).toBe(JSON.stringify(other));
    } finally {
      forgetJsonTexts();
    }
  });

  it('is forgotten after the record: the same data later is serialised', () => {
    const body = JSON.parse('{"a":"x"}') as Record<string, unknown>;
    const record = functionRecord('Request.Body', { body });
    noteJsonTexts(record.data!, { body: '{"a":"x"}' });
    forgetJsonTexts();
    body.a = 'y';
    expect(fastJsonLine(record)).toBe(JSON.stringify(record));
  });
});

describe('jsonLine on the records of real requests', () => {
  let host: AllocatorHost;
  const records: AllocatorLogRecord[] = [];
  const KEY = 'json-line-test-key';
  const formatted: [string | undefined, string][] = [];

  beforeAll(async () => {
    host = await startAllocatorHost({
      port: 0,
      functionKey: KEY,
      logLevel: 'debug',
      // Formatted at once as well, as the CLI does: the request body's line with its text noted.
      log: (record) => {
        records.push(record);
        formatted.push([fastJsonLine(record), JSON.stringify(record)]);
      },
      // Echoes the device's payload into the answer, so that it is in the Response line too.
      policy: (request) => {
        const payload = request.deviceRuntimeContext.payload;
        if (payload?.reject === true) return reject(`Rejected: ${String(payload.reason)}`);
        return accept({ iotHubHostName: TOASTERS_HUB, payload: payload ?? null, initialTwin: { tags: { payload } } });
      },
    });
  });
  afterAll(async () => {
    await host?.close();
  });

  function post(body: string | Uint8Array, query = `?code=${KEY}`, path = '/api/allocate'): Promise<number> {
    return fetch(`${host.url}${path}${query}`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    }).then(async (res) => {
      await res.arrayBuffer();
      return res.status;
    });
  }

  it('writes every line of the host and the function as JSON.stringify does, by its fast path', async () => {
    const statuses: number[] = [];
    for (const text of AWKWARD) {
      const accepted = requestFrom(TOASTER_BODY, (r) => {
        r.deviceRuntimeContext.payload = { text, [text]: [text, 1.5, -0, null, true], nested: { text } };
      });
      const rejected = requestFrom(TOASTER_BODY, (r) => {
        r.deviceRuntimeContext.payload = { reject: true, reason: text };
      });
      statuses.push(await post(JSON.stringify(accepted)));
      statuses.push(await post(JSON.stringify(rejected)));
      // The same request with whitespace and escapes JSON.stringify would not write (\/, \u0041, 1.0).
      statuses.push(await post(JSON.stringify(accepted, null, 2).replace('"linkedHubs"', '"\\u006cinkedHubs"')));
      statuses.push(await post(`not JSON: ${text}`));
    }
    statuses.push(await post(''));
    statuses.push(await post(new Uint8Array([0x7b, 0xc3, 0x28, 0xff, 0x7d])));
    statuses.push(await post('{"linkedHubs": 1.0, "a": "\\/"}'));
    statuses.push(await post(TOASTER_BODY, '?code=wrong'));
    statuses.push(await post(TOASTER_BODY, `?code=${KEY}&x=%22%5C%F0%9F%98%80`, '/api/ALLOCATE/'));
    statuses.push(await post(TOASTER_BODY, '', '/api/nothing-here'));
    expect(statuses).toContain(200);
    expect(statuses).toContain(400);
    expect(statuses).toContain(401);
    expect(statuses).toContain(404);

    const messages = new Set(records.map((r) => r.msg));
    for (const msg of ['Request.Body', 'Linked hubs', 'Selected hub', 'Rejected', 'Response', 'HTTP']) {
      expect(messages).toContain(msg);
    }
    for (const record of records) {
      expect(fastJsonLine(record)).toBe(JSON.stringify(record));
      expect(jsonLine(record)).toBe(JSON.stringify(record));
    }
    for (const [fast, reference] of formatted) expect(fast).toBe(reference);
  });

  it("writes the lines of functions with awkward names as JSON.stringify does (the host's noted JSON)", async () => {
    const names = ['quote " backslash \\ end', 'lone \ud800', '\udc00 first', 'emoji 😀', 'controls \u0001\n'];
    const lines: AllocatorLogRecord[] = [];
    const functionsHost = await startFunctionsHost({
      port: 0,
      host: '127.0.0.1',
      routePrefix: 'api',
      functionKey: 'k',
      log: (record) => lines.push(record),
      definitions: names.map((name, i) =>
        httpFunction(name, {
          route: `f${i}`,
          authLevel: 'anonymous',
          handler: async (_request, context) => {
            context.info('In', logFields({ name, id: context.invocationId }));
            return { status: 200, body: name };
          },
        }),
      ),
    });
    try {
      for (let i = 0; i < names.length; i++) {
        const res = await fetch(`${functionsHost.url}/api/f${i}`, { method: 'POST', body: '{}' });
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      }
    } finally {
      await functionsHost.close();
    }
    const executing = lines.filter((r) => r.msg.startsWith('Executing '));
    expect(executing.map((r) => r.msg.slice(21, r.msg.indexOf("' (Reason")))).toEqual(names);
    expect(lines.filter((r) => r.msg.startsWith('Executed ')).length).toBe(names.length);
    for (const record of lines) expect(fastJsonLine(record)).toBe(JSON.stringify(record));
  });

  it('hands a function’s noted texts to the line of that record only, while the sink has it', async () => {
    const atOnce: string[] = [];
    const kept: AllocatorLogRecord[] = [];
    const functionsHost = await startFunctionsHost({
      port: 0,
      host: '127.0.0.1',
      routePrefix: 'api',
      functionKey: 'k',
      log: (record) => {
        if (record.source !== 'function') return;
        atOnce.push(fastJsonLine(record)!);
        kept.push(record);
      },
      definitions: [
        httpFunction('texts', {
          authLevel: 'anonymous',
          handler: async (_request, context) => {
            // Not the parse of the text (same length): breaks the contract on purpose, to see the text used.
            context.info('Noted', logFields({ body: { a: 'x' } }, { body: '{"a":"y"}' }));
            context.info('Not noted', logFields({ body: { a: 'x' } }));
            return { status: 200 };
          },
        }),
      ],
    });
    try {
      const res = await fetch(`${functionsHost.url}/api/texts`, { method: 'POST' });
      expect(res.status).toBe(200);
    } finally {
      await functionsHost.close();
    }
    expect(atOnce.map((line) => JSON.parse(line).data.body.a)).toEqual(['y', 'x']);
    // Formatted later, after the host has forgotten the text: the value's own JSON.
    expect(kept.map((record) => fastJsonLine(record))).toEqual(kept.map((record) => JSON.stringify(record)));
  });
});
