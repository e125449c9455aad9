import { createRequire } from 'node:module';
import rhea, { type Message } from 'rhea';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { isKnownDeliveryState, isKnownTerminus, unknownMessageSection } from './amqp-peer-checks.js';

// Each check against the rhea code it stands in front of, on generated input: it must say "unknown"
// exactly when rhea would print about it (so nothing rhea takes quietly is refused, and nothing it
// prints about gets through).

const require = createRequire(import.meta.url);
const rheaLib = require.resolve('rhea').replace(/container\.js$/, '');
const terminus = require(`${rheaLib}terminus.js`) as { unwrap(field: unknown): unknown };
const rheaMessage = rhea.message as unknown as {
  decode(buffer: Buffer): unknown;
  unwrap_outcome(outcome: unknown): unknown;
};
const types = rhea.types as unknown as {
  Writer: new () => { write(value: unknown): void; toBuffer(): Buffer };
  Reader: new (buffer: Buffer) => { read(): unknown };
} & typeof rhea.types;

// rhea's console, counted (and kept off the test output) while this file runs.
let printedSoFar = 0;
beforeAll(() => {
  vi.spyOn(console, 'warn').mockImplementation(() => {
    printedSoFar += 1;
  });
  vi.spyOn(console, 'error').mockImplementation(() => {
    printedSoFar += 1;
  });
});
afterAll(() => {
  vi.restoreAllMocks();
});

/** A deterministic pseudo-random source (mulberry32), so a failure can be replayed. */
function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What rhea prints (console.warn and console.error) while `run` runs, and whether it threw. */
function printedBy(run: () => unknown): { printed: number; threw: boolean } {
  const before = printedSoFar;
  let threw = false;
  try {
    run();
  } catch {
    threw = true;
  }
  return { printed: printedSoFar - before, threw };
}

const KNOWN_SYMBOLS = [
  'amqp:header:list',
  'amqp:delivery-annotations:map',
  'amqp:message-annotations:map',
  'amqp:properties:list',
  'amqp:application-properties:map',
  'amqp:data:binary',
  'amqp:amqp-sequence:list',
  'amqp:value:*',
  'amqp:footer:map',
];

function generatedMessage(next: () => number): Message {
  const pick = <T>(values: T[]): T => values[Math.floor(next() * values.length)] as T;
  const message: Record<string, unknown> = {};
  if (next() < 0.3) message.header = { durable: next() < 0.5, priority: Math.floor(next() * 9) };
  if (next() < 0.3) message.delivery_annotations = { 'x-opt-d': Math.floor(next() * 1000) };
  if (next() < 0.3) message.message_annotations = { 'x-opt-m': pick(['a', 'b', 7]) };
  if (next() < 0.6) message.correlation_id = pick(['c1', 'a-much-longer-correlation-id', 42]);
  if (next() < 0.3) message.message_id = pick(['m', 'x'.repeat(300)]);
  if (next() < 0.8) {
    message.application_properties = {
      'iotdps-operation-type': pick(['iotdps-register', 'iotdps-get-operationstatus', 'x'.repeat(400)]),
      ...(next() < 0.5 ? { 'iotdps-forceRegistration': next() < 0.5 } : {}),
    };
  }
  const body = next();
  if (body < 0.4) message.body = rhea.message.data_section(Buffer.alloc(Math.floor(next() * 600), 0x61));
  else if (body < 0.6) message.body = pick(['', 'text', 'y'.repeat(300)]);
  else if (body < 0.7) message.body = rhea.message.sequence_section([1, 'two', [3]]);
  else if (body < 0.8) message.body = { a: [1, 2], b: 'c' };
  if (next() < 0.2) message.footer = { f: 1 };
  return message as unknown as Message;
}

/** An extra section (or a value that is none): described by small ulong, ulong, symbol, or undescribed. */
function generatedSection(next: () => number): Buffer {
  const writer = new types.Writer();
  const value = next() < 0.5 ? types.wrap_list([]) : types.wrap_map({ k: 1 });
  const kind = next();
  if (kind < 0.4) {
    // Around and in the section codes, incl. the termini and outcomes.
    writer.write(types.wrap_described(value, Math.floor(next() * 0x90)));
  } else if (kind < 0.55) {
    // A ulong written in 8 bytes: rhea reads it to the same number.
    const code = 0x6c + Math.floor(next() * 16);
    const bytes = Buffer.alloc(8);
    bytes.writeUInt32BE(code, 4);
    writer.write(types.wrap_described(value, types.wrap_ulong(bytes)));
  } else if (kind < 0.8) {
    const symbol = next() < 0.6 ? (KNOWN_SYMBOLS[Math.floor(next() * KNOWN_SYMBOLS.length)] as string) : 'x:other:list';
    writer.write(types.described(types.wrap_symbol(symbol), value));
  } else {
    writer.write(next() < 0.5 ? types.wrap_string('not a section') : types.wrap_uint(7));
  }
  return writer.toBuffer();
}

it('finds an unknown message section exactly when rhea would warn about one (12,000 generated messages)', () => {
  const next = random(4101);
  let unknown = 0;
  let known = 0;
  for (let i = 0; i < 12_000; i++) {
    const encoded = rhea.message.encode(generatedMessage(next)) as Buffer;
    const extra = next() < 0.5 ? generatedSection(next) : Buffer.alloc(0);
    // Anywhere between the sections: at the end, or first.
    const payload = next() < 0.5 ? Buffer.concat([encoded, extra]) : Buffer.concat([extra, encoded]);
    const ours = unknownMessageSection(payload);
    const rheas = printedBy(() => rheaMessage.decode(payload));
    if (rheas.threw) continue;
    expect({ i, ours: ours !== undefined }).toEqual({ i, ours: rheas.printed > 0 });
    if (ours) unknown += 1;
    else known += 1;
  }
  // Both kinds were met often.
  expect(Math.min(unknown, known)).toBeGreaterThan(2_000);
});

it('leaves bytes that do not decode to rhea (it throws, closing the connection as amqp:decode-error)', () => {
  const next = random(4102);
  for (let i = 0; i < 3_000; i++) {
    const encoded = rhea.message.encode(generatedMessage(next)) as Buffer;
    const cut = encoded.subarray(0, Math.floor(next() * encoded.length));
    const ours = unknownMessageSection(cut);
    const rheas = printedBy(() => rheaMessage.decode(cut));
    if (!rheas.threw) expect({ i, ours: ours !== undefined }).toEqual({ i, ours: rheas.printed > 0 });
  }
});

/** A value as rhea's frame decoder hands it on: written and read back. */
function asDecoded(value: unknown): unknown {
  const writer = new types.Writer();
  writer.write(value);
  return new types.Reader(writer.toBuffer()).read();
}

function generatedDescribed(next: () => number): unknown {
  const kind = next();
  if (kind < 0.6) return asDecoded(types.wrap_described(types.wrap_list([]), Math.floor(next() * 0x50)));
  if (kind < 0.85) {
    const symbol = [
      'amqp:received:list',
      'amqp:accepted:list',
      'amqp:rejected:list',
      'amqp:released:list',
      'amqp:modified:list',
      'amqp:source:list',
      'amqp:target:list',
      'amqp:coordinator:list',
      'x:other:list',
    ][Math.floor(next() * 9)] as string;
    return asDecoded(types.described(types.wrap_symbol(symbol), types.wrap_list([])));
  }
  return asDecoded(types.wrap_list([types.wrap_string('not described')]));
}

it('takes a DISPOSITION state exactly when rhea unwraps it quietly (3,000 generated)', () => {
  const next = random(4103);
  let refused = 0;
  for (let i = 0; i < 3_000; i++) {
    const state = generatedDescribed(next);
    const rheas = printedBy(() => rheaMessage.unwrap_outcome(state));
    expect({ i, known: isKnownDeliveryState(state) }).toEqual({ i, known: rheas.printed === 0 });
    if (!isKnownDeliveryState(state)) refused += 1;
  }
  expect(refused).toBeGreaterThan(500);
  expect(
    isKnownDeliveryState(
      asDecoded((rhea.message as unknown as { accepted(): { described(): unknown } }).accepted().described()),
    ),
  ).toBe(true);
});

it('takes an ATTACH terminus exactly when rhea unwraps it quietly (3,000 generated)', () => {
  const next = random(4104);
  let refused = 0;
  for (let i = 0; i < 3_000; i++) {
    const field = next() < 0.05 ? undefined : generatedDescribed(next);
    const rheas = printedBy(() => terminus.unwrap(field));
    if (rheas.threw) continue;
    expect({ i, known: isKnownTerminus(field) }).toEqual({ i, known: rheas.printed === 0 });
    if (!isKnownTerminus(field)) refused += 1;
  }
  expect(refused).toBeGreaterThan(500);
});
