import mqttPacket from 'mqtt-packet';

/**
 * Encodes the packets a DPS device session sends (CONNACK, SUBACK, UNSUBACK, PINGRESP, PUBACK,
 * PUBREC, PUBCOMP, PUBLISH) in MQTT 3.1.1, byte for byte as `mqttPacket.generate` does
 * (mqtt-encode.test.ts compares them); any other packet goes to `mqttPacket.generate`.
 *
 * Why not `generate` itself: it runs for every answer of every registration (four or five per
 * device), and builds each packet through a stream-like accumulator with a `debug` call per
 * field, each of which allocates its argument array even when debugging is off. In the
 * emulator's allocation profile (bench:server) mqtt-packet's `debug` calls alone were 9 % of all
 * bytes allocated and `generate` another 4 %; these packets are a handful of fixed fields, written
 * here into one buffer each. Their validity is the session's to keep (message ids 1…65535, granted
 * QoS 0, 1 or 0x80), as it does.
 */
export function encodeServerPacket(packet: mqttPacket.Packet): Buffer {
  switch (packet.cmd) {
    case 'connack':
      return Buffer.from([0x20, 2, packet.sessionPresent ? 1 : 0, packet.returnCode ?? 0]);
    case 'puback':
      return acknowledgement(0x40, packet.messageId);
    case 'pubrec':
      return acknowledgement(0x50, packet.messageId);
    case 'pubcomp':
      return acknowledgement(0x70, packet.messageId);
    case 'unsuback':
      return acknowledgement(0xb0, packet.messageId);
    case 'pingresp':
      return Buffer.from([0xd0, 0]);
    case 'suback':
      return suback(packet);
    case 'publish':
      return publish(packet);
    default:
      return mqttPacket.generate(packet);
  }
}

function acknowledgement(type: number, messageId: number | undefined): Buffer {
  const id = messageId ?? 0;
  return Buffer.from([type, 2, id >> 8, id & 0xff]);
}

function suback(packet: mqttPacket.ISubackPacket): Buffer {
  const id = packet.messageId ?? 0;
  const { granted } = packet;
  const remaining = 2 + granted.length;
  const head = headerLength(remaining);
  const out = Buffer.allocUnsafe(head + remaining);
  let at = writeHeader(out, 0x90, remaining);
  out[at++] = id >> 8;
  out[at++] = id & 0xff;
  for (const qos of granted) out[at++] = typeof qos === 'number' ? qos : 0x80;
  return out;
}

function publish(packet: mqttPacket.IPublishPacket): Buffer {
  const { topic, payload, qos = 0 } = packet;
  const topicBytes = Buffer.byteLength(topic, 'utf8');
  const payloadBytes = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.length;
  const remaining = 2 + topicBytes + (qos > 0 ? 2 : 0) + payloadBytes;
  const out = Buffer.allocUnsafe(headerLength(remaining) + remaining);
  const type = 0x30 | (packet.dup ? 0x08 : 0) | (qos << 1) | (packet.retain ? 0x01 : 0);
  let at = writeHeader(out, type, remaining);
  out[at++] = topicBytes >> 8;
  out[at++] = topicBytes & 0xff;
  at += out.write(topic, at, 'utf8');
  if (qos > 0) {
    const id = packet.messageId ?? 0;
    out[at++] = id >> 8;
    out[at++] = id & 0xff;
  }
  if (typeof payload === 'string') out.write(payload, at, 'utf8');
  else out.set(payload, at);
  return out;
}

/** The fixed header's size: the type byte and the remaining length's 1–4 bytes. */
function headerLength(remaining: number): number {
  return remaining < 128 ? 2 : remaining < 16_384 ? 3 : remaining < 2_097_152 ? 4 : 5;
}

/** Writes the fixed header (type byte, then the remaining length in 7-bit groups, least significant first). */
function writeHeader(out: Buffer, type: number, remaining: number): number {
  out[0] = type;
  let at = 1;
  let rest = remaining;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    out[at++] = byte;
  } while (rest > 0);
  return at;
}
