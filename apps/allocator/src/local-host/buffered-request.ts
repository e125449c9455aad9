/**
 * The fetch `Request` that an `@azure/functions` `HttpRequest` delegates to, for a body the host has
 * already read into memory. The library's `HttpRequest` wraps a native `Request` (undici) and forwards
 * `url`, `method`, `headers`, `body`, `bodyUsed`, `text()`, `json()`, `arrayBuffer()`, `blob()`,
 * `formData()` and `clone()` to it; the Functions worker's streaming path hands it one ready-made
 * (`nativeRequest`), and so does the local host, with this class in its place.
 *
 * Why: building an undici `Request` (a web stream, an AbortSignal, transferable wrappers) and reading
 * its body back through the stream was a quarter of the local host's CPU per request (profile in
 * issue #13), for a body that is already a Buffer. Here `text()`, `json()` and `arrayBuffer()` answer
 * from the Buffer with undici's semantics: UTF-8 decoded with a leading BOM dropped, one read per
 * body (then `TypeError: Body is unusable: Body has already been read`), none of that for GET/HEAD
 * (no body: empty, readable again). Anything else (`body` as a stream, `blob()`, `formData()`) builds
 * the real `Request` on first use and delegates to it from then on, marked as read if the body was.
 * `server.test.ts`/`buffered-request.test.ts` hold it to the library-built request, call for call.
 */
export class BufferedRequest {
  readonly url: string;
  readonly method: string;
  /** The headers as given, or what gives them on first use (see the constructor). */
  #headerSource: Record<string, string> | (() => Record<string, string>);
  /** null: no body (GET, HEAD), as undici keeps it. */
  readonly #body: Buffer | null;
  #headers: Headers | undefined;
  #used = false;
  #real: Request | undefined;

  /**
   * `headers` may be a function giving them, called once, on first use: most functions never read
   * the headers (the allocation handler does not), and the host's copy of them without the
   * hop-by-hop ones was ~0.4 us of every request (issue #13). It must give what it would have given
   * at construction (the host's reads the request's `IncomingMessage.headers`, which nothing changes).
   */
  constructor(
    url: string,
    method: string,
    headers: Record<string, string> | (() => Record<string, string>),
    body: Buffer | null,
  ) {
    this.url = url;
    this.method = method;
    this.#headerSource = headers;
    this.#body = body;
  }

  get headers(): Headers {
    this.#headers ??= new Headers(this.#headerInit());
    return this.#headers;
  }

  get body(): ReadableStream<Uint8Array> | null {
    return this.#native().body;
  }

  get bodyUsed(): boolean {
    return this.#real ? this.#real.bodyUsed : this.#used;
  }

  async text(): Promise<string> {
    if (this.#real) return this.#real.text();
    return utf8Decode(this.#take());
  }

  async json(): Promise<unknown> {
    if (this.#real) return this.#real.json();
    return JSON.parse(utf8Decode(this.#take())) as unknown;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    if (this.#real) return this.#real.arrayBuffer();
    const bytes = this.#take();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  blob(): Promise<Blob> {
    return this.#native().blob();
  }

  formData(): Promise<FormData> {
    return this.#native().formData();
  }

  clone(): BufferedRequest | Request {
    if (this.#real) return this.#real.clone();
    if (this.#used) throw new TypeError('unusable');
    const copy = new BufferedRequest(this.url, this.method, this.#headerInit(), this.#body);
    if (this.#headers) copy.#headers = new Headers(this.#headers);
    return copy;
  }

  #headerInit(): Record<string, string> {
    if (typeof this.#headerSource === 'function') this.#headerSource = this.#headerSource();
    return this.#headerSource;
  }

  /** The body for one read, as undici allows it: once, unless there is none. */
  #take(): Buffer {
    if (this.#body === null) return EMPTY;
    if (this.#used) throw new TypeError('Body is unusable: Body has already been read');
    this.#used = true;
    return this.#body;
  }

  #native(): Request {
    if (!this.#real) {
      const real = new Request(this.url, {
        method: this.method,
        headers: this.#headers ?? this.#headerInit(),
        ...(this.#body !== null ? { body: this.#body } : {}),
      });
      // Read here already: the real request must refuse a second read too. Reading starts synchronously.
      if (this.#used) real.arrayBuffer().catch(() => {});
      this.#real = real;
    }
    return this.#real;
  }
}

const EMPTY = Buffer.alloc(0);
const decoder = new TextDecoder();

/**
 * undici's text(): it drops a leading BOM itself and then decodes with a default TextDecoder, which
 * drops one more; invalid sequences become U+FFFD.
 */
function utf8Decode(bytes: Buffer): string {
  if (bytes.length === 0) return '';
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
  return decoder.decode(bom ? bytes.subarray(3) : bytes);
}
