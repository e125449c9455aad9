import mqttPacket from 'mqtt-packet';

/**
 * Decodes bytes that hold whole MQTT packets only with one mqtt-packet parser shared by every
 * connection. A parser costs an event emitter and a buffer-list stream to build; a device's
 * packets almost always arrive one or more whole ones to a read, and a parser fed whole packets
 * holds nothing afterwards, so one parser serves every connection (its settings reset to a fresh
 * parser's before each use). Bytes that end inside a packet need a parser of the connection's own
 * that keeps the part until the rest comes: the callers use one then.
 */
type Parser = ReturnType<typeof mqttPacket.parser> & { settings: object };

/** Takes the decoded packets (an object, not a closure: a connection passes itself). */
export interface PacketSink {
  onPacket(packet: mqttPacket.Packet): void;
}

let shared: Parser | undefined;
/** The packet handler of the decode running now (the shared parser's one listener calls it). */
let sink: PacketSink | undefined;
let failure: Error | undefined;

function sharedParser(): Parser {
  const parser = mqttPacket.parser(FRESH_SETTINGS) as Parser;
  parser.on('packet', (packet: mqttPacket.Packet) => sink?.onPacket(packet));
  parser.on('error', (err: Error) => {
    failure = err;
  });
  return parser;
}

/** What `mqttPacket.parser({ protocolVersion: 4 })` starts with; the parser replaces (never changes) it on a CONNECT. */
const FRESH_SETTINGS = { protocolVersion: 4 };

/**
 * Hands each packet in `bytes` to `to.onPacket`, in order, as a fresh `mqttPacket.parser({ protocolVersion: 4 })`
 * fed the same bytes would. `bytes` must end at a packet boundary (`MqttPacketSizeGuard.atPacketBoundary`).
 * Returns the parser's error, after the packets before it were handed over.
 */
export function decodeWholePackets(bytes: Buffer, to: PacketSink): Error | undefined {
  if (sink) {
    // Called again from a packet handler: that decode still owns the shared parser.
    let error: Error | undefined;
    const own = mqttPacket.parser({ protocolVersion: 4 });
    own.on('packet', (packet: mqttPacket.Packet) => to.onPacket(packet));
    own.on('error', (err: Error) => {
      error ??= err;
    });
    own.parse(bytes);
    return error;
  }
  const parser = shared ?? sharedParser();
  shared = parser;
  parser.settings = FRESH_SETTINGS;
  sink = to;
  failure = undefined;
  try {
    parser.parse(bytes);
  } catch (err) {
    // A handler threw in the middle of the bytes: the parser may hold the rest.
    shared = undefined;
    throw err;
  } finally {
    sink = undefined;
  }
  const error = failure;
  // After an error the parser keeps the bytes it did not read (it drops them on its next parse;
  // a new one is simpler to reason about, and errors are rare).
  if (error) shared = undefined;
  return error;
}

/**
 * The length in bytes of the MQTT packet at the start of `bytes` (fixed header plus remaining
 * length), which must hold that whole packet's fixed header.
 */
export function firstPacketLength(bytes: Uint8Array): number {
  let remaining = 0;
  let multiplier = 1;
  let i = 1;
  for (; i <= 4; i++) {
    const byte = bytes[i] as number;
    remaining += (byte & 0x7f) * multiplier;
    multiplier *= 128;
    if ((byte & 0x80) === 0) break;
  }
  return i + 1 + remaining;
}
