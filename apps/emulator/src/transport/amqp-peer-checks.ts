/**
 * What rhea would print to the console about a peer's frame, checked before rhea sees it (pure;
 * no socket). rhea tolerates these and tells stderr once per occurrence, so a client repeating
 * one could fill the emulator's stderr: `message.decode` warns per message section it does not
 * know ("did not recognise message section" / "expected described message section"),
 * `unwrap_outcome` errors per DISPOSITION state that is no delivery state it knows ("unrecognised
 * outcome"), `terminus.unwrap` warns per ATTACH whose source or target is neither ("Unknown
 * terminus"). Each check mirrors rhea's own lookup (the same descriptor values, read the same way)
 * so that nothing rhea takes quietly, such as everything the SDKs send, is refused.
 */
import rhea from 'rhea';

/** rhea's AMQP type reader (its typings declare the class but leave it off `rhea.types`). */
const AmqpReader = (
  rhea.types as unknown as { Reader: new (buffer: Buffer) => { remaining(): number; read(): unknown } }
).Reader;

/** A value rhea decoded with a descriptor (`types.described_nc`): its descriptor's `value`. */
interface Described {
  descriptor?: { value?: unknown };
}

/**
 * rhea's message sections (message.js `define_section`): header 0x70 … footer 0x78, by code
 * (as rhea keys them, `Number(code).toString(10)`) and by symbolic name.
 */
const SECTION_CODES = [0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78];
const KNOWN_SECTIONS = new Set<string>([
  ...SECTION_CODES.map((code) => String(code)),
  'amqp:header:list',
  'amqp:delivery-annotations:map',
  'amqp:message-annotations:map',
  'amqp:properties:list',
  'amqp:application-properties:map',
  'amqp:data:binary',
  'amqp:amqp-sequence:list',
  'amqp:value:*',
  'amqp:footer:map',
]);

/** rhea's termini (terminus.js): source 0x28 and target 0x29. */
const KNOWN_TERMINI = new Set<string>([String(0x28), String(0x29), 'amqp:source:list', 'amqp:target:list']);

/** rhea's delivery states (message.js `define_outcome`): received, accepted, rejected, released, modified. */
const OUTCOME_TESTS = [
  rhea.message.is_received,
  rhea.message.is_accepted,
  rhea.message.is_rejected,
  rhea.message.is_released,
  rhea.message.is_modified,
] as ((outcome: unknown) => boolean)[];

/**
 * The first section of a format-0 message's bytes that rhea's `message.decode` would warn about,
 * described for a log line; undefined when every section is one it knows, or when the bytes do not
 * decode at all (rhea then throws, which closes the connection as `amqp:decode-error`).
 *
 * Every request is checked, so the sections rhea-based clients write (`0x00 0x53 0x70…0x78` and a
 * value) are walked without decoding them; anything else is read with rhea's own reader.
 */
export function unknownMessageSection(payload: Buffer): string | undefined {
  return knownSectionsByScan(payload) ? undefined : unknownSectionByReader(payload);
}

/** True when every section is a small-ulong descriptor 0x70–0x78 with a value whose size is in its constructor. */
function knownSectionsByScan(payload: Buffer): boolean {
  let at = 0;
  while (at < payload.length) {
    if (payload[at] !== 0x00 || payload[at + 1] !== 0x53) return false;
    const code = payload[at + 2] ?? 0;
    if (code < 0x70 || code > 0x78) return false;
    const next = skipValue(payload, at + 3);
    if (next === undefined) return false;
    at = next;
  }
  return true;
}

/** Where the value whose constructor is at `at` ends (AMQP 1.0 part 1 §1.6: the width is in the constructor's high nibble). */
function skipValue(bytes: Buffer, at: number): number | undefined {
  const code = bytes[at];
  if (code === undefined) return undefined;
  let end: number;
  switch (code >> 4) {
    case 0x4:
      end = at + 1;
      break;
    case 0x5:
      end = at + 2;
      break;
    case 0x6:
      end = at + 3;
      break;
    case 0x7:
      end = at + 5;
      break;
    case 0x8:
      end = at + 9;
      break;
    case 0x9:
      end = at + 17;
      break;
    case 0xa:
    case 0xc:
    case 0xe: {
      const size = bytes[at + 1];
      if (size === undefined) return undefined;
      end = at + 2 + size;
      break;
    }
    case 0xb:
    case 0xd:
    case 0xf:
      if (at + 5 > bytes.length) return undefined;
      end = at + 5 + bytes.readUInt32BE(at + 1);
      break;
    default:
      // 0x00 (a described value inside) and codes AMQP does not define: left to rhea's reader.
      return undefined;
  }
  return end <= bytes.length ? end : undefined;
}

/** message.decode's loop without its unwrapping and its console. */
function unknownSectionByReader(payload: Buffer): string | undefined {
  try {
    const reader = new AmqpReader(payload);
    while (reader.remaining()) {
      const section = reader.read() as Described;
      if (!section.descriptor) return 'a message section without a descriptor';
      if (!KNOWN_SECTIONS.has(String(section.descriptor.value))) {
        return `a message section with the descriptor ${printable(section.descriptor.value)}`;
      }
    }
    return undefined;
  } catch {
    // Not decodable at all: rhea throws on it too, and that closes the connection as amqp:decode-error.
    return undefined;
  }
}

/** Whether rhea's `unwrap_outcome` takes a DISPOSITION's `state` quietly (it is called only for a set one). */
export function isKnownDeliveryState(state: unknown): boolean {
  return OUTCOME_TESTS.some((test) => test(state));
}

/** Whether rhea's `terminus.unwrap` takes an ATTACH's `source` or `target` quietly: absent, undescribed, or a source or target. */
export function isKnownTerminus(field: unknown): boolean {
  const descriptor = (field as Described | null | undefined)?.descriptor;
  return !descriptor || KNOWN_TERMINI.has(String(descriptor.value));
}

/** A descriptor value for a log line or a description: short, printable. */
export function printable(value: unknown): string {
  const text = typeof value === 'number' ? `0x${value.toString(16)}` : String(value);
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
}
