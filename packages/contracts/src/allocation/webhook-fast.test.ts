import { describe, expect, it } from 'vitest';
import { HEATPUMP_REQUEST_2019_03_31, TOASTER_REQUEST_2021_10_01 } from '../fixtures/tutorial.js';
import { classicWebhookSchemas } from './webhook-classic.js';
import type { WebhookZod } from './webhook-definition.js';
import { defineWebhookSchemas } from './webhook-definition.js';
import {
  COMPILE_AFTER,
  fastCheck,
  fastWebhookFunctions,
  fastWebhookZod,
  type MakeFunction,
  UNSURE,
} from './webhook-fast.js';

// The fast checks answer for a request or answer only where zod (the main entry's schemas, which
// webhook.test.ts holds the built entry's zod/mini to) accepts it, with zod's value: the same
// keys in the same order, the same values. Compared over every valid fixture and over inputs
// made from full requests by seeded random changes, JSON ones and others (inherited, symbol,
// non-enumerable and __proto__ keys, class instances, NaN, unsafe integers, lone surrogates).

const fast = defineWebhookSchemas(fastWebhookZod);
const CHECKED = ['allocationRequestSchema', 'allocationResponseSchema', 'x509CertificateInfoSchema'] as const;

const info = {
  subjectName: 'CN=d',
  sha1Thumbprint: 'a',
  sha256Thumbprint: 'b',
  issuerName: 'CN=ca',
  notBeforeUtc: '2020-01-01T00:00:00Z',
  notAfterUtc: '2030-01-01T00:00:00Z',
  serialNumber: '01',
  version: 3,
};
const certs = { primary: { certificate: 'MII', info }, secondary: { certificate: null, info: null } };
const common = {
  attestation: {
    type: 'x509',
    symmetricKey: { primaryKey: 'k', secondaryKey: 'l' },
    x509: { clientCertificates: certs, signingCertificates: certs, caReferences: { primary: 'ca', secondary: null } },
    tpm: { endorsementKey: 'ek', storageRootKey: 'srk' },
  },
  capabilities: { iotEdge: false },
  iotHubHostName: 'h',
  initialTwin: { tags: { a: 1 }, properties: { desired: { b: 2 } } },
  etag: 'e',
  provisioningStatus: 'enabled',
  reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: false },
  createdDateTimeUtc: 'c',
  lastUpdatedDateTimeUtc: 'u',
  allocationPolicy: 'custom',
  iotHubs: ['h1', 'h2'],
  customAllocationDefinition: { webhookUrl: 'https://w', apiVersion: '2021-10-01' },
  extra: { kept: true },
};
const runtime = {
  registrationId: 'r',
  currentIotHubHostName: 'h',
  currentDeviceId: 'd',
  symmetricKey: {},
  x509: { clientCertificate: 'MII', certificateInfo: info, certificateChain: ['MIJ'], signingCertificateInfo: info },
  tpm: { endorsementKey: 'ek' },
  payload: { p: [1] },
};
const VALID: unknown[] = [
  JSON.parse(TOASTER_REQUEST_2021_10_01),
  JSON.parse(HEATPUMP_REQUEST_2019_03_31),
  { enrollmentGroup: { enrollmentGroupId: 'g', ...common }, deviceRuntimeContext: runtime, linkedHubs: ['h1'] },
  {
    individualEnrollment: {
      registrationId: 'r',
      deviceId: 'd',
      optionalDeviceInformation: { o: 1 },
      registrationState: { s: 1 },
      ...common,
    },
    deviceRuntimeContext: runtime,
    linkedHubs: [],
  },
  { iotHubHostName: 'h', initialTwin: { tags: { a: 1 }, properties: { desired: { b: 2 } } }, payload: { p: 1 } },
  {},
  { iotHubHostName: null, initialTwin: null, payload: null },
  info,
];

class Thing {
  registrationId = 'r';
}
const inherited = (): object => Object.create({ registrationId: 'inherited', enumerableOnPrototype: 1 });
const EDGES: Array<() => unknown> = [
  () => undefined,
  () => null,
  () => 0,
  () => -0,
  () => 1.5,
  () => Number.NaN,
  () => Number.POSITIVE_INFINITY,
  () => 2 ** 53,
  () => '',
  () => 'x',
  () => '\uD83D',
  () => '😀',
  () => true,
  () => [],
  () => ['a', 1],
  () => ['a'],
  () => [undefined],
  () => ({}),
  () => ({ k: 'v' }),
  () => Object.create(null),
  inherited,
  () => new Thing(),
  () => new Date(0),
  () => Symbol('s'),
  () => JSON.parse('{"__proto__":{"x":1},"k":2}'),
  () => 'symmetricKey',
  () => 'hashed',
  () => 'enabled',
  () => 'r',
];

/** mulberry32: the same inputs on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A copy of `value` (objects and arrays copied, keeping their prototype, symbol and hidden keys). */
function copy(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(copy);
  const out = Object.create(Object.getPrototypeOf(value)) as Record<PropertyKey, unknown>;
  for (const key of Reflect.ownKeys(value)) {
    const descriptor = Object.getOwnPropertyDescriptor(value, key) as PropertyDescriptor;
    Object.defineProperty(out, key, { ...descriptor, value: copy(descriptor.value) });
  }
  return out;
}

/** The objects and arrays inside `value` (itself included). */
function containers(
  value: unknown,
  out: Array<Record<PropertyKey, unknown>> = [],
): Array<Record<PropertyKey, unknown>> {
  if (typeof value !== 'object' || value === null || value instanceof Date) return out;
  out.push(value as Record<PropertyKey, unknown>);
  for (const key of Reflect.ownKeys(value)) containers((value as Record<PropertyKey, unknown>)[key], out);
  return out;
}

function mutate(value: unknown, next: () => number): unknown {
  const out = copy(value);
  const changes = 1 + Math.floor(next() * 3);
  for (let i = 0; i < changes; i++) {
    const all = containers(out);
    const target = all[Math.floor(next() * all.length)];
    if (target === undefined) break;
    const keys = Reflect.ownKeys(target).filter((k) => !(Array.isArray(target) && k === 'length'));
    const key = keys.length > 0 && next() < 0.8 ? keys[Math.floor(next() * keys.length)] : `new${i}`;
    const edge = (EDGES[Math.floor(next() * EDGES.length)] as () => unknown)();
    const action = next();
    if (action < 0.2) delete target[key as string];
    else if (action < 0.8) target[key as string] = edge;
    else if (action < 0.87) target[Symbol('k')] = edge;
    else if (action < 0.94)
      Object.defineProperty(target, 'hidden', { value: edge, enumerable: false, configurable: true, writable: true });
    else
      Object.defineProperty(target, '__proto__', { value: edge, enumerable: true, configurable: true, writable: true });
  }
  return out;
}

/** Every object's own keys in order, by path: what toStrictEqual does not compare. */
function keyOrder(value: unknown, path = '', out: string[] = []): string[] {
  if (typeof value !== 'object' || value === null) return out;
  out.push(`${path}: ${Reflect.ownKeys(value).map(String).join(',')}`);
  for (const key of Reflect.ownKeys(value)) {
    keyOrder((value as Record<PropertyKey, unknown>)[key], `${path}.${String(key)}`, out);
  }
  return out;
}

/** The fast answer for `input`: UNSURE, or zod's value (checked); counts what it vouched for. */
function compare(name: (typeof CHECKED)[number], input: unknown): boolean {
  const value = fastCheck(fast[name])(input);
  if (value === UNSURE) return false;
  const zod = classicWebhookSchemas[name].safeParse(input);
  expect(zod.success, `zod refused what the fast check vouched for: ${String(zod.error)}`).toBe(true);
  expect(value).toStrictEqual(zod.data);
  expect(keyOrder(value)).toEqual(keyOrder(zod.data));
  return true;
}

describe('webhook-fast: the definition on plain checks', () => {
  it('vouches for every valid fixture with zod’s value, key order included', () => {
    for (const input of VALID) {
      expect(CHECKED.some((name) => compare(name, input))).toBe(true);
    }
    expect(compare('allocationRequestSchema', JSON.parse(TOASTER_REQUEST_2021_10_01))).toBe(true);
  });

  it('never vouches where zod refuses, and gives zod’s value where it vouches (seeded random changes)', () => {
    const next = random(13);
    let vouched = 0;
    let unsure = 0;
    for (let i = 0; i < 6000; i++) {
      const input = mutate(VALID[i % VALID.length], next);
      for (const name of CHECKED) {
        if (compare(name, input)) vouched++;
        else unsure++;
      }
    }
    // Both sides of the comparison are exercised: many inputs stay valid, many do not.
    expect(vouched).toBeGreaterThan(4000);
    expect(unsure).toBeGreaterThan(8000);
  });

  it('answers UNSURE for what zod refuses in ways a JSON body cannot show', () => {
    const request = JSON.parse(TOASTER_REQUEST_2021_10_01);
    const check = fastCheck(fast.allocationRequestSchema);
    const cases: unknown[] = [
      { ...request, deviceRuntimeContext: { ...request.deviceRuntimeContext, payload: new Thing() } },
      { ...request, deviceRuntimeContext: { ...request.deviceRuntimeContext, payload: { [Symbol('s')]: 1 } } },
      { ...request, enrollmentGroup: { ...request.enrollmentGroup, enrollmentGroupId: '' } },
      { ...request, individualEnrollment: { registrationId: 'r', attestation: { type: 'none' } } },
      { ...request, enrollmentGroup: undefined },
      { ...request, linkedHubs: ['a', undefined] },
    ];
    for (const input of cases) {
      expect(check(input)).toBe(UNSURE);
      expect(classicWebhookSchemas.allocationRequestSchema.safeParse(input).success).toBe(false);
    }
  });
});

// The object checks compiled for their shapes (compiledLooseObject) against the general code they
// write out: the same answer, value and key order, and the same reads of the input in the same order
// (every proxy trap logged), on the same seeded inputs; and the general code kept where code cannot
// be generated, and used until an object schema has been checked COMPILE_AFTER times.
const general = defineWebhookSchemas(fastWebhookFunctions(Number.POSITIVE_INFINITY) as unknown as WebhookZod);
const compiled = defineWebhookSchemas(fastWebhookFunctions(0) as unknown as WebhookZod);

/** `value` with every object and array inside it behind a proxy that logs each trap with its path. */
function traced(value: unknown, log: string[], path = '$'): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const target = value as Record<PropertyKey, unknown>;
  const step = (key: PropertyKey) => `${path}.${String(key)}`;
  return new Proxy(target, {
    get(t, key, receiver) {
      log.push(`get ${step(key)}`);
      return traced(Reflect.get(t, key, receiver), log, step(key));
    },
    has(t, key) {
      log.push(`has ${step(key)}`);
      return Reflect.has(t, key);
    },
    ownKeys(t) {
      log.push(`ownKeys ${path}`);
      return Reflect.ownKeys(t);
    },
    getOwnPropertyDescriptor(t, key) {
      log.push(`descriptor ${step(key)}`);
      return Reflect.getOwnPropertyDescriptor(t, key);
    },
    getPrototypeOf(t) {
      log.push(`prototype ${path}`);
      return Reflect.getPrototypeOf(t);
    },
  });
}

/** Both checks of `name` on `input` (and on a traced copy each): asserts they agree; true if vouched. */
function sameAnswer(name: (typeof CHECKED)[number], input: unknown): boolean {
  const a = fastCheck(general[name])(input);
  const b = fastCheck(compiled[name])(input);
  if (a === UNSURE || b === UNSURE) {
    expect(b === UNSURE, 'one way vouched, the other not').toBe(a === UNSURE);
  } else {
    expect(b).toStrictEqual(a);
    expect(keyOrder(b)).toEqual(keyOrder(a));
  }
  const generalLog: string[] = [];
  const compiledLog: string[] = [];
  const ta = fastCheck(general[name])(traced(input, generalLog));
  const tb = fastCheck(compiled[name])(traced(input, compiledLog));
  expect(compiledLog).toEqual(generalLog);
  expect(tb === UNSURE).toBe(ta === UNSURE);
  return a !== UNSURE;
}

describe('webhook-fast: object checks compiled for their shape', () => {
  it('answer as the general code does, read for read (fixtures and seeded random changes)', () => {
    for (const input of VALID) expect(CHECKED.some((name) => sameAnswer(name, input))).toBe(true);
    const next = random(29);
    let vouched = 0;
    let unsure = 0;
    for (let i = 0; i < 4000; i++) {
      const input = mutate(VALID[i % VALID.length], next);
      for (const name of CHECKED) {
        if (sameAnswer(name, input)) vouched++;
        else unsure++;
      }
    }
    expect(vouched).toBeGreaterThan(2500);
    expect(unsure).toBeGreaterThan(5000);
  });

  it('are not compiled where code generation is refused: the general code answers', () => {
    let asked = 0;
    const refusing = (): never => {
      asked++;
      throw new EvalError('Code generation from strings disallowed for this context');
    };
    const schemas = defineWebhookSchemas(fastWebhookFunctions(0, refusing) as unknown as WebhookZod);
    expect(asked).toBeGreaterThan(10);
    const toaster = JSON.parse(TOASTER_REQUEST_2021_10_01);
    expect(fastCheck(schemas.allocationRequestSchema)(toaster)).toStrictEqual(
      fastCheck(general.allocationRequestSchema)(toaster),
    );
    expect(fastCheck(schemas.allocationRequestSchema)({ linkedHubs: [] })).toBe(UNSURE);
  });

  it('are compiled after COMPILE_AFTER checks of their schema, not before', () => {
    const made: string[] = [];
    const making: MakeFunction = (...args) => {
      made.push(args.at(-1) as string);
      return (Function as unknown as MakeFunction)(...args);
    };
    const schemas = defineWebhookSchemas(fastWebhookFunctions(COMPILE_AFTER, making) as unknown as WebhookZod);
    const check = fastCheck(schemas.allocationRequestSchema);
    const toaster = JSON.parse(TOASTER_REQUEST_2021_10_01);
    const expected = fastCheck(general.allocationRequestSchema)(toaster);
    for (let i = 1; i < COMPILE_AFTER; i++) expect(check(toaster)).toStrictEqual(expected);
    expect(made).toEqual([]);
    expect(check(toaster)).toStrictEqual(expected);
    // The request, its enrollment group and what the toaster has inside it: each compiled once.
    expect(made.length).toBeGreaterThanOrEqual(5);
    expect(made.some((body) => body.includes('"enrollmentGroupId"'))).toBe(true);
    for (let i = 0; i < 10; i++) expect(check(toaster)).toStrictEqual(expected);
    expect(new Set(made).size).toBe(made.length);
    expect(keyOrder(check(toaster))).toEqual(keyOrder(expected));
  });
});
