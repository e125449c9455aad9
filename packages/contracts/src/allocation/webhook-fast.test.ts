import { describe, expect, it } from 'vitest';
import { HEATPUMP_REQUEST_2019_03_31, TOASTER_REQUEST_2021_10_01 } from '../fixtures/tutorial.js';
import { classicWebhookSchemas } from './webhook-classic.js';
import { defineWebhookSchemas } from './webhook-definition.js';
import { fastCheck, fastWebhookZod, UNSURE } from './webhook-fast.js';

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
