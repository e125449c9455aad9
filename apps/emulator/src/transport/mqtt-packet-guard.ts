/**
 * Watches the bytes of an MQTT connection for packet sizes (pure; no socket). aedes' parser
 * buffers a whole packet before it looks at it, and MQTT allows packets of up to 256 MB, so
 * without a bound one connection could make the emulator hold that much per packet. The guard
 * reads only the fixed headers: packet type byte, then the "remaining length" (1–4 bytes of 7-bit
 * groups, least significant first), then skips that many bytes.
 */
export class MqttPacketSizeGuard {
  readonly #maxRemainingLength: number;
  #state: 'type' | 'length' | 'body' | 'off' = 'type';
  #length = 0;
  #multiplier = 1;
  #lengthBytes = 0;
  #toSkip = 0;
  #oversizedAt = 0;

  constructor(maxRemainingLength: number) {
    this.#maxRemainingLength = maxRemainingLength;
  }

  /**
   * Whether the bytes fed so far end exactly between packets (a parser fed the same bytes then
   * holds nothing of a next packet).
   */
  get atPacketBoundary(): boolean {
    return this.#state === 'type';
  }

  /**
   * Where, in the bytes last fed, the packet over the limit starts (0 when its header began in
   * earlier bytes): the bytes before it are whole packets a connection can still serve.
   */
  get oversizedAt(): number {
    return this.#oversizedAt;
  }

  /** Feeds the next bytes; returns the announced size of the first packet over the limit, if any. */
  push(chunk: Uint8Array): number | undefined {
    let i = 0;
    let packetStart = 0;
    while (i < chunk.length && this.#state !== 'off') {
      if (this.#state === 'body') {
        const skipped = Math.min(this.#toSkip, chunk.length - i);
        this.#toSkip -= skipped;
        i += skipped;
        if (this.#toSkip === 0) this.#state = 'type';
        continue;
      }
      if (this.#state === 'type') packetStart = i;
      const byte = chunk[i++] as number;
      if (this.#state === 'type') {
        this.#state = 'length';
        this.#length = 0;
        this.#multiplier = 1;
        this.#lengthBytes = 0;
        continue;
      }
      this.#length += (byte & 0x7f) * this.#multiplier;
      this.#multiplier *= 128;
      this.#lengthBytes++;
      if (byte & 0x80) {
        // More than four length bytes is malformed; aedes' parser reports that itself.
        if (this.#lengthBytes === 4) this.#state = 'off';
        continue;
      }
      if (this.#length > this.#maxRemainingLength) {
        this.#state = 'off';
        this.#oversizedAt = packetStart;
        return this.#length;
      }
      this.#toSkip = this.#length;
      this.#state = this.#toSkip === 0 ? 'type' : 'body';
    }
    return undefined;
  }
}
