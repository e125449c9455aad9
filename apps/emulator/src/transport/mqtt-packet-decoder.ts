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
  // The packets of a registration after its CONNECT (SUBSCRIBE, PUBLISH, PUBACK, DISCONNECT) are
  // decoded here; from the first packet this does not take, the rest goes to mqtt-packet.
  let at = 0;
  while (at < bytes.length) {
    const packet = decodeCommonPacket(bytes, at);
    if (!packet) break;
    at = packet.end;
    to.onPacket(packet.packet);
  }
  if (at >= bytes.length) return undefined;
  return decodeWithParser(at === 0 ? bytes : bytes.subarray(at), to);
}

function decodeWithParser(bytes: Buffer, to: PacketSink): Error | undefined {
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

/** Takes the packet `decodeFirstPacket` decodes. */
let firstPacket: mqttPacket.Packet | undefined;
const firstPacketSink: PacketSink = {
  onPacket(packet) {
    firstPacket ??= packet;
  },
};

/**
 * The packet at the start of `bytes` and its length, when `bytes` start with a whole packet whose
 * remaining length is at most `maxRemainingLength` and that decodes (as a fresh parser would, see
 * `decodeWholePackets`); otherwise undefined (its header or body is not all there, it is too large,
 * or malformed). What follows the packet is not read.
 */
export function decodeFirstPacket(
  bytes: Buffer,
  maxRemainingLength: number,
): { packet: mqttPacket.Packet; length: number } | undefined {
  let remaining = 0;
  let multiplier = 1;
  let i = 1;
  for (; ; i++) {
    if (i > 4 || i >= bytes.length) return undefined;
    const byte = bytes[i] as number;
    remaining += (byte & 0x7f) * multiplier;
    multiplier *= 128;
    if ((byte & 0x80) === 0) break;
  }
  const length = i + 1 + remaining;
  if (remaining > maxRemainingLength || length > bytes.length) return undefined;
  firstPacket = undefined;
  const error = decodeWholePackets(length === bytes.length ? bytes : bytes.subarray(0, length), firstPacketSink);
  const packet = firstPacket;
  firstPacket = undefined;
  return error || !packet ? undefined : { packet, length };
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

/**
 * The packet at `at` when it is one of those a DPS device sends for every registration, well
 * formed, and whole in `bytes`: CONNECT (MQTT 3.1 or 3.1.1, without a will), PUBLISH (QoS 0 or 1),
 * PUBACK, SUBSCRIBE, PINGREQ or DISCONNECT, decoded into what mqtt-packet's parser makes of it (the same fields and values;
 * mqtt-packet-decoder.test.ts compares them). Anything else, or anything the parser would refuse
 * or read in its own way (flags, lengths, QoS 2 or 3, a topic or id beyond the packet), is left to
 * the parser: undefined.
 *
 * Why not the parser for these too: it runs for four packets of every registration, reads each
 * field through a buffer list, and makes a debug() call per field that allocates its arguments
 * even with debugging off (mqtt-packet's debug calls were 9 % of the bytes the emulator allocated,
 * bench:server); these packets are a few fixed fields.
 */
function decodeCommonPacket(bytes: Buffer, at: number): { packet: mqttPacket.Packet; end: number } | undefined {
  if (bytes.length - at < 2) return undefined;
  const type = bytes[at] as number;
  // Remaining lengths of one or two bytes (up to 16,383 bytes): a device's requests.
  let length = bytes[at + 1] as number;
  let start = at + 2;
  if (length & 0x80) {
    if (bytes.length - at < 3) return undefined;
    const high = bytes[at + 2] as number;
    if (high & 0x80 || high === 0) return undefined;
    length = (length & 0x7f) + high * 128;
    start = at + 3;
  }
  const end = start + length;
  if (end > bytes.length) return undefined;
  // The header fields mqtt-packet's parser sets on every packet (retain, qos, dup from the first
  // byte; only PUBLISH has other flags than 0 here, and SUBSCRIBE's fixed 2, QoS 1).
  if (type >> 4 === 3) {
    // PUBLISH, QoS 0 or 1.
    const qos = (type >> 1) & 3;
    if (qos > 1 || length < 2) return undefined;
    const topicEnd = start + 2 + bytes.readUInt16BE(start);
    const idEnd = qos > 0 ? topicEnd + 2 : topicEnd;
    if (idEnd > end) return undefined;
    const packet = {
      cmd: 'publish',
      retain: (type & 1) !== 0,
      qos,
      dup: (type & 8) !== 0,
      length,
      topic: bytes.toString('utf8', start + 2, topicEnd),
      payload: bytes.subarray(idEnd, end),
    } as mqttPacket.IPublishPacket;
    if (qos > 0) packet.messageId = bytes.readUInt16BE(topicEnd);
    return { packet, end };
  }
  if (type === 0x10) return decodeConnect(bytes, start, end, length);
  if (type === 0x40 && length === 2) {
    const messageId = bytes.readUInt16BE(start);
    const packet = { cmd: 'puback', retain: false, qos: 0, dup: false, length, topic: null, payload: null, messageId };
    return { packet: packet as unknown as mqttPacket.IPubackPacket, end };
  }
  if ((type === 0xc0 || type === 0xe0) && length === 0) {
    const cmd = type === 0xc0 ? 'pingreq' : 'disconnect';
    const packet = { cmd, retain: false, qos: 0, dup: false, length, topic: null, payload: null };
    return { packet: packet as unknown as mqttPacket.Packet, end };
  }
  if (type === 0x82 && length > 2) {
    const subscriptions: { topic: string; qos: 0 | 1 | 2 }[] = [];
    let pos = start + 2;
    while (pos < end) {
      if (pos + 2 > end) return undefined;
      const topicEnd = pos + 2 + bytes.readUInt16BE(pos);
      // The topic, then its options byte (bits 7-2 zero, QoS 0, 1 or 2), inside the packet.
      if (topicEnd + 1 > end) return undefined;
      const options = bytes[topicEnd] as number;
      if (options > 2) return undefined;
      subscriptions.push({ topic: bytes.toString('utf8', pos + 2, topicEnd), qos: options as 0 | 1 | 2 });
      pos = topicEnd + 1;
    }
    const packet = {
      cmd: 'subscribe',
      retain: false,
      qos: 1,
      dup: false,
      length,
      topic: null,
      payload: null,
      subscriptions,
      messageId: bytes.readUInt16BE(start),
    };
    return { packet: packet as unknown as mqttPacket.ISubscribePacket, end };
  }
  return undefined;
}

/** CONNECT flags: bit 0 is reserved (0); will, will QoS and will retain are left to the parser. */
const CONNECT_USERNAME = 0x80;
const CONNECT_PASSWORD = 0x40;
const CONNECT_WILL_BITS = 0x3c;
const CONNECT_CLEAN = 0x02;
const CONNECT_RESERVED = 0x01;

/**
 * A CONNECT as the device SDKs send it (protocol `MQTT` or `MQIsdp`, level 3 or 4, no will, client
 * id, username and password each inside the packet, nothing after them), decoded as mqtt-packet's
 * parser does; anything else (a will, MQTT 5, a bridge, a field beyond the packet, bytes after the
 * password) is left to the parser, which also gives the errors. Every registration starts with one,
 * and the parser spent more on it than on the rest of the registration's packets together
 * (bench:server: its buffer-list copies and debug() argument arrays).
 */
function decodeConnect(
  bytes: Buffer,
  start: number,
  end: number,
  length: number,
): { packet: mqttPacket.Packet; end: number } | undefined {
  if (end - start < 2) return undefined;
  const idEnd = start + 2 + bytes.readUInt16BE(start);
  // The protocol name, level, flags and keepalive: four bytes after the name.
  if (idEnd + 4 > end) return undefined;
  const protocolId = bytes.toString('latin1', start + 2, idEnd);
  if (protocolId !== 'MQTT' && protocolId !== 'MQIsdp') return undefined;
  const protocolVersion = bytes[idEnd] as number;
  if (protocolVersion !== 3 && protocolVersion !== 4) return undefined;
  const flags = bytes[idEnd + 1] as number;
  if (flags & (CONNECT_RESERVED | CONNECT_WILL_BITS)) return undefined;
  const keepalive = bytes.readUInt16BE(idEnd + 2);
  // Each field: a two-byte length, then its bytes, inside the packet.
  const clientIdEnd = fieldEnd(bytes, idEnd + 4, end);
  if (clientIdEnd < 0) return undefined;
  const packet = {
    cmd: 'connect',
    retain: false,
    qos: 0,
    dup: false,
    length,
    topic: null,
    payload: null,
    protocolId,
    protocolVersion,
    clean: (flags & CONNECT_CLEAN) !== 0,
    keepalive,
    clientId: bytes.toString('utf8', idEnd + 6, clientIdEnd),
  } as unknown as mqttPacket.IConnectPacket;
  let pos = clientIdEnd;
  if (flags & CONNECT_USERNAME) {
    const usernameEnd = fieldEnd(bytes, pos, end);
    if (usernameEnd < 0) return undefined;
    packet.username = bytes.toString('utf8', pos + 2, usernameEnd);
    pos = usernameEnd;
  }
  if (flags & CONNECT_PASSWORD) {
    const passwordEnd = fieldEnd(bytes, pos, end);
    if (passwordEnd < 0) return undefined;
    packet.password = bytes.subarray(pos + 2, passwordEnd);
    pos = passwordEnd;
  }
  if (pos !== end) return undefined;
  return { packet, end };
}

/** The end of the length-prefixed field at `pos`, or -1 when its length or bytes go past `end`. */
function fieldEnd(bytes: Buffer, pos: number, end: number): number {
  if (pos + 2 > end) return -1;
  const to = pos + 2 + bytes.readUInt16BE(pos);
  return to > end ? -1 : to;
}
