import type {
  EffectiveFunctionOptions,
  FunctionInput,
  FunctionOutput,
  HttpRequestParams,
  HttpRequestUser,
  InvocationContextInit,
  HttpRequest as LibraryHttpRequest,
  InvocationContext as LibraryInvocationContext,
  RetryContext,
  TraceContext,
  TriggerMetadata,
} from '@azure/functions';
import { functionsLibrary as functions } from '../functions-library.js';
import type { BufferedRequest } from './buffered-request.js';

/**
 * The `request` and `context` a function is called with: the host's own classes in place of the
 * library's `HttpRequest` and `InvocationContext`, with the same members, values and behaviour.
 *
 * Why: the library keeps every private field in a WeakMap (TypeScript's downlevel `#private`),
 * three per request and three per context plus one per extra-inputs/outputs object. Building them
 * and the garbage collector's work on those WeakMaps (ephemerons), with the generator-based
 * `__awaiter` behind each body method, made the two objects about half of what a call to the
 * allocation handler costs (13 -> 6 µs per call in a loop; issue #13 profile: WeakMap sets and
 * the ephemeron barrier were 5% of the host's CPU under load). These classes use native private
 * fields, answer `url`, `method`, `headers`, `query`, `params` and the body methods from the
 * `BufferedRequest` as the library forwards them to its native request, and hand the rest
 * (`user`, `clone()`) to a library object built on first use over the same native request, so
 * the rare members are the library's own code.
 *
 * Fidelity: the prototypes chain to the library's, so `instanceof HttpRequest` and
 * `instanceof InvocationContext` hold in the function as they do in Azure; own enumerable
 * properties are the library's, in its order; every member of the library's prototypes that is
 * not written out here (a newer library version) is forwarded to the library object (see
 * `forwardTheRest`). invocation-objects.test.ts holds both to the library's objects, call for call.
 */

const { HttpRequest, InvocationContext } = functions;
type LogHandler = NonNullable<InvocationContextInit['logHandler']>;

export class LocalHttpRequest implements LibraryHttpRequest {
  readonly query: URLSearchParams;
  readonly params: HttpRequestParams;
  readonly #native: BufferedRequest;
  #library: LibraryHttpRequest | undefined;

  /**
   * `query` is the searchParams of a URL of the request's own (the library parses `native.url`
   * again for it): the handler may change it, so the caller must not use that URL afterwards.
   */
  constructor(native: BufferedRequest, query: URLSearchParams, params: HttpRequestParams) {
    this.query = query;
    this.params = params;
    this.#native = native;
  }

  get method(): string {
    return this.#native.method;
  }

  get url(): string {
    return this.#native.url;
  }

  get headers(): Headers {
    return this.#native.headers;
  }

  get user(): HttpRequestUser | null {
    return this.#libraryRequest().user;
  }

  get body(): ReadableStream | null {
    return this.#native.body;
  }

  get bodyUsed(): boolean {
    return this.#native.bodyUsed;
  }

  // A failure is a rejected promise, never a throw, as with the library's `__awaiter` wrappers. The
  // body reads hand over the BufferedRequest's own promise (its methods are async) rather than wrap
  // it in one more async function: a promise and two microtask hops fewer per read.
  arrayBuffer(): Promise<ArrayBuffer> {
    try {
      return this.#native.arrayBuffer();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async blob(): Promise<Blob> {
    return this.#native.blob();
  }

  async formData(): Promise<FormData> {
    return this.#native.formData();
  }

  json(): Promise<unknown> {
    try {
      return this.#native.json();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  text(): Promise<string> {
    try {
      return this.#native.text();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  clone(): LibraryHttpRequest {
    return this.#libraryRequest().clone();
  }

  /** The library's request over the same native request (and so the same body state). */
  #libraryRequest(): LibraryHttpRequest {
    if (!this.#library) {
      // `nativeRequest`: the library's own init field for a ready-made request (not in its public types).
      const init = { nativeRequest: this.#native as unknown as Request, params: this.params };
      this.#library = new HttpRequest(init as ConstructorParameters<typeof HttpRequest>[0]);
    }
    return this.#library;
  }

  static {
    Object.setPrototypeOf(LocalHttpRequest.prototype, HttpRequest.prototype);
    Object.defineProperty(LocalHttpRequest, 'name', { value: HttpRequest.name });
    forwardTheRest(LocalHttpRequest.prototype, HttpRequest.prototype, (self) =>
      (self as LocalHttpRequest).#libraryRequest(),
    );
  }
}

/** `context.extraInputs` / `context.extraOutputs`: values by binding name, as the library keeps them. */
class ExtraValues {
  readonly #values: Record<string, unknown> = {};

  get(inputOrName: FunctionInput | FunctionOutput | string): unknown {
    return this.#values[typeof inputOrName === 'string' ? inputOrName : inputOrName.name];
  }

  set(inputOrName: FunctionInput | FunctionOutput | string, value: unknown): void {
    this.#values[typeof inputOrName === 'string' ? inputOrName : inputOrName.name] = value;
  }
}

export class LocalInvocationContext implements LibraryInvocationContext {
  // Declared in the order the library's constructor assigns them (own enumerable properties).
  invocationId: string;
  functionName: string;
  extraInputs = new ExtraValues();
  extraOutputs = new ExtraValues();
  retryContext?: RetryContext;
  traceContext?: TraceContext;
  triggerMetadata?: TriggerMetadata;
  options: EffectiveFunctionOptions;
  readonly #logHandler: LogHandler;
  readonly #init: InvocationContextInit;
  #library: LibraryInvocationContext | undefined;

  /** The library constructor's defaults, except that a log handler is required here. */
  constructor(init: InvocationContextInit & { logHandler: LogHandler }) {
    this.#init = init;
    this.invocationId = init.invocationId || 'unknown';
    this.functionName = init.functionName || 'unknown';
    this.retryContext = init.retryContext;
    this.traceContext = init.traceContext;
    this.triggerMetadata = init.triggerMetadata;
    this.options = {
      trigger: init.options?.trigger || { name: 'unknown', type: 'unknown' },
      return: init.options?.return,
      extraInputs: init.options?.extraInputs || [],
      extraOutputs: init.options?.extraOutputs || [],
    };
    this.#logHandler = init.logHandler;
  }

  log(...args: unknown[]): void {
    this.#logHandler.call(this, 'information', ...args);
  }

  trace(...args: unknown[]): void {
    this.#logHandler.call(this, 'trace', ...args);
  }

  debug(...args: unknown[]): void {
    this.#logHandler.call(this, 'debug', ...args);
  }

  info(...args: unknown[]): void {
    this.#logHandler.call(this, 'information', ...args);
  }

  warn(...args: unknown[]): void {
    this.#logHandler.call(this, 'warning', ...args);
  }

  error(...args: unknown[]): void {
    this.#logHandler.call(this, 'error', ...args);
  }

  static {
    Object.setPrototypeOf(LocalInvocationContext.prototype, InvocationContext.prototype);
    Object.defineProperty(LocalInvocationContext, 'name', { value: InvocationContext.name });
    forwardTheRest(LocalInvocationContext.prototype, InvocationContext.prototype, (self) => {
      const context = self as LocalInvocationContext;
      context.#library ??= new InvocationContext(context.#init);
      return context.#library;
    });
  }
}

/**
 * Defines on `local` every member of `library` that `local` does not define itself, forwarding to
 * the library object `target` returns: the library's own prototype methods would otherwise be
 * inherited, and they throw on any object the library did not construct (its WeakMap fields).
 */
export function forwardTheRest(local: object, library: object, target: (self: object) => object): void {
  for (const key of Reflect.ownKeys(library)) {
    if (key === 'constructor' || Object.hasOwn(local, key)) continue;
    const descriptor = Object.getOwnPropertyDescriptor(library, key)!;
    if (typeof descriptor.value === 'function') {
      const method = descriptor.value as (...args: unknown[]) => unknown;
      Object.defineProperty(local, key, {
        ...descriptor,
        value(this: object, ...args: unknown[]) {
          return method.apply(target(this), args);
        },
      });
    } else if (descriptor.get || descriptor.set) {
      const { get, set } = descriptor;
      Object.defineProperty(local, key, {
        configurable: descriptor.configurable ?? true,
        enumerable: descriptor.enumerable ?? false,
        ...(get
          ? {
              get: function (this: object) {
                return get.call(target(this));
              },
            }
          : {}),
        ...(set
          ? {
              set: function (this: object, value: unknown) {
                set.call(target(this), value);
              },
            }
          : {}),
      });
    }
  }
}
