/**
 * Watches the bytes of an AMQP 1.0 connection before rhea parses them (pure; no socket). rhea
 * buffers a frame until the size its header announces has arrived (up to 4 GB) and trusts the
 * size field (a size below 8 is not a frame at all). The guard reads only the framing: the two
 * 8-byte protocol headers DPS takes (`AMQP` + protocol id 3 + version 1.0.0 for SASL first, then
 * `AMQP` + 0 + 1.0.0 once SASL is done) and each frame's size, data offset and type, then skips
 * the frame body. With `saslOptional` (a TLS connection that carries a client certificate) the
 * connection may also start with the AMQP header and no SASL layer at all, as the SDKs' X.509
 * devices do (azure-iot-amqp-base connects without SASL when it has no username; the C# SDK's
 * X.509 strategy has no SASL provider).
 */

/** `at`: how many bytes of the chunk came before the problem (framing that was fine, to pass on). */
export type AmqpStreamProblem = AmqpStreamProblemKind & { at?: number };

type AmqpStreamProblemKind =
  /** The first bytes are no AMQP protocol header: another protocol on the AMQP port. */
  | { kind: 'not-amqp'; protocol: 'http' | 'mqtt' | 'unknown'; firstBytes: string }
  /** An AMQP protocol header for a protocol id or version that AMQP 1.0 does not have. */
  | { kind: 'unsupported-header'; header: string }
  | { kind: 'frame-too-large'; size: number }
  | { kind: 'malformed-frame'; reason: string };

const HEADER_SIZE = 8;
/** `AMQP` read as a frame size: what a protocol header looks like where a frame could start. */
const AMQP_MAGIC = 0x414d5150;

export class AmqpFrameGuard {
  readonly #maxFrameBytes: number;
  #state: 'preamble' | 'frame-header' | 'body' | 'off' = 'preamble';
  /** The bytes of the current 8-byte protocol or frame header gathered so far. */
  #head = Buffer.alloc(HEADER_SIZE);
  #headLength = 0;
  #toSkip = 0;
  #seenHeader = false;
  /** The protocol id the next protocol header must carry: SASL (3) first, then AMQP (0), then none. */
  #nextProtocolId: number | undefined = 3;
  readonly #saslOptional: boolean;
  #withoutSasl = false;

  constructor(maxFrameBytes: number, options: { saslOptional?: boolean } = {}) {
    this.#maxFrameBytes = maxFrameBytes;
    this.#saslOptional = options.saslOptional ?? false;
  }

  /** True once the connection opened with the AMQP header (protocol id 0) and no SASL layer. */
  get withoutSasl(): boolean {
    return this.#withoutSasl;
  }

  /** Feeds the next bytes; returns the first problem found (then the guard stops looking). */
  push(chunk: Uint8Array): AmqpStreamProblem | undefined {
    let i = 0;
    while (i < chunk.length && this.#state !== 'off') {
      if (this.#state === 'body') {
        const skipped = Math.min(this.#toSkip, chunk.length - i);
        this.#toSkip -= skipped;
        i += skipped;
        if (this.#toSkip === 0) this.#state = 'frame-header';
        continue;
      }
      const take = Math.min(HEADER_SIZE - this.#headLength, chunk.length - i);
      this.#head.set(chunk.subarray(i, i + take), this.#headLength);
      this.#headLength += take;
      i += take;
      // Another protocol shows in its first bytes; say so without waiting for eight of them.
      if (!this.#seenHeader) {
        const early = this.#notAmqp(chunk.subarray(i));
        if (early) return this.#stop({ ...early, at: 0 });
      }
      if (this.#headLength < HEADER_SIZE) continue;
      this.#headLength = 0;
      const problem =
        this.#state === 'preamble' || this.#head.readUInt32BE(0) === AMQP_MAGIC ? this.#header() : this.#frame();
      if (problem) return this.#stop({ ...problem, at: Math.max(0, i - HEADER_SIZE) });
    }
    return undefined;
  }

  #stop(problem: AmqpStreamProblem): AmqpStreamProblem {
    this.#state = 'off';
    return problem;
  }

  /** `rest`: the bytes of the chunk after the header bytes, to name the protocol by. */
  #notAmqp(rest: Uint8Array): AmqpStreamProblemKind | undefined {
    const seen = this.#head.subarray(0, this.#headLength);
    const magic = Buffer.from('AMQP', 'latin1');
    const prefix = Math.min(seen.length, magic.length);
    if (seen.subarray(0, prefix).equals(magic.subarray(0, prefix))) return undefined;
    const first = Buffer.concat([seen, rest.subarray(0, 24)]);
    let protocol: 'http' | 'mqtt' | 'unknown' = 'unknown';
    if (/^(GET|POST|PUT|HEAD|DELETE|OPTIONS|PATCH|CONNECT|TRACE) /.test(first.toString('latin1'))) protocol = 'http';
    // MQTT CONNECT: packet type 1, then (after the remaining length) the protocol name MQTT or MQIsdp.
    else if (first[0] === 0x10 && /MQTT|MQIsdp/.test(first.toString('latin1'))) protocol = 'mqtt';
    return { kind: 'not-amqp', protocol, firstBytes: printable(first.subarray(0, 16)) };
  }

  #header(): AmqpStreamProblemKind | undefined {
    const h = this.#head;
    const version = h.readUInt32BE(0) === AMQP_MAGIC && h[5] === 1 && h[6] === 0 && h[7] === 0;
    const first = !this.#seenHeader;
    if (version && first && this.#saslOptional && h[4] === 0) {
      this.#withoutSasl = true;
      this.#nextProtocolId = undefined;
      this.#seenHeader = true;
      this.#state = 'frame-header';
      return undefined;
    }
    const ok = version && h[4] === this.#nextProtocolId;
    if (!ok) return { kind: 'unsupported-header', header: printable(h) };
    this.#nextProtocolId = this.#nextProtocolId === 3 ? 0 : undefined;
    this.#seenHeader = true;
    this.#state = 'frame-header';
    return undefined;
  }

  #frame(): AmqpStreamProblemKind | undefined {
    const size = this.#head.readUInt32BE(0);
    const doff = this.#head[4] ?? 0;
    const type = this.#head[5] ?? 0;
    if (size < HEADER_SIZE) return { kind: 'malformed-frame', reason: `frame size ${size} is below the minimum of 8` };
    if (size > this.#maxFrameBytes) return { kind: 'frame-too-large', size };
    if (doff < 2 || doff * 4 > size) {
      return { kind: 'malformed-frame', reason: `data offset ${doff} does not fit a ${size}-byte frame` };
    }
    if (type !== 0 && type !== 1)
      return { kind: 'malformed-frame', reason: `frame type ${type} is neither AMQP (0) nor SASL (1)` };
    if (type === 1 && this.#withoutSasl)
      return { kind: 'malformed-frame', reason: 'a SASL frame on a connection that opened without SASL' };
    this.#toSkip = size - HEADER_SIZE;
    this.#state = this.#toSkip === 0 ? 'frame-header' : 'body';
    return undefined;
  }
}

/** Bytes as text for a log line: printable ASCII kept, the rest as \xNN. */
function printable(bytes: Uint8Array): string {
  return Array.from(bytes, (b) =>
    b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`,
  ).join('');
}
