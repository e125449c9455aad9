/**
 * Cuts a connection's bytes into whole MQTT packets by their fixed headers alone (pure; no socket,
 * no decoding): the packet type byte, then the "remaining length" (1–4 bytes of 7-bit groups,
 * least significant first), then that many bytes. What the packets say is left to the broker's
 * parser; the framer only bounds their size and keeps them apart, so that the hub can hand the
 * broker one packet at a time (paced-stream.ts).
 */
export type Framed =
  | { kind: 'packets'; packets: Buffer[] }
  /**
   * The packets before a packet whose header announces more than the bound (`size`), or whose
   * remaining length runs past four bytes (`size` undefined: malformed, MQTT 3.1.1 2.2.3). The
   * framer reads nothing after it: the connection is to be closed once the packets before it
   * are answered.
   */
  | { kind: 'refused'; packets: Buffer[]; size: number | undefined };

export class MqttPacketFramer {
  readonly #maxRemainingLength: number;
  /** The start of a packet not yet whole, in pieces (concatenated once, when it is whole). */
  #partial: Buffer[] = [];
  #partialBytes = 0;
  /** The whole size of the partial packet once its header is read, else 0. */
  #partialNeeds = 0;
  #refused = false;

  constructor(maxRemainingLength: number) {
    this.#maxRemainingLength = maxRemainingLength;
  }

  /** Bytes held of a packet not yet whole (at most the bound plus its header). */
  get heldBytes(): number {
    return this.#partialBytes;
  }

  push(chunk: Buffer): Framed {
    const packets: Buffer[] = [];
    if (this.#refused) return { kind: 'packets', packets };
    let bytes = chunk;
    if (this.#partialBytes > 0) {
      if (this.#partialNeeds > 0 && this.#partialBytes + chunk.length < this.#partialNeeds) {
        // Still not whole (a large packet over many reads): kept, not copied yet.
        this.#partial.push(chunk);
        this.#partialBytes += chunk.length;
        return { kind: 'packets', packets };
      }
      bytes = Buffer.concat([...this.#partial, chunk]);
      this.#partial = [];
      this.#partialBytes = 0;
      this.#partialNeeds = 0;
    }
    let start = 0;
    while (start < bytes.length) {
      const header = readHeader(bytes, start);
      if (header.kind === 'incomplete') break;
      if (header.kind === 'malformed') {
        this.#refused = true;
        return { kind: 'refused', packets, size: undefined };
      }
      if (header.remainingLength > this.#maxRemainingLength) {
        this.#refused = true;
        return { kind: 'refused', packets, size: header.remainingLength };
      }
      const end = start + header.headerBytes + header.remainingLength;
      if (end > bytes.length) {
        this.#partialNeeds = end - start;
        break;
      }
      packets.push(bytes.subarray(start, end));
      start = end;
    }
    if (start < bytes.length) {
      const rest = bytes.subarray(start);
      this.#partial.push(rest);
      this.#partialBytes = rest.length;
    }
    return { kind: 'packets', packets };
  }
}

type Header =
  | { kind: 'incomplete' }
  | { kind: 'malformed' }
  | { kind: 'header'; headerBytes: number; remainingLength: number };

function readHeader(bytes: Buffer, start: number): Header {
  let remainingLength = 0;
  let multiplier = 1;
  for (let i = 1; i <= 4; i++) {
    if (start + i >= bytes.length) return { kind: 'incomplete' };
    const byte = bytes[start + i] as number;
    remainingLength += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return { kind: 'header', headerBytes: i + 1, remainingLength };
    multiplier *= 128;
  }
  return { kind: 'malformed' };
}
