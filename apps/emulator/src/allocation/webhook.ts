import http from 'node:http';
import https from 'node:https';
import { urlToHttpOptions } from 'node:url';
import type { WebhookCallOutcome } from '../core/allocation/custom.js';

export interface WebhookClientOptions {
  /** Whole-exchange deadline: connect, send, and read the answer (default 30 s). */
  timeoutMs: number;
  /** Largest answer read (default 4 MiB); DPS caps messages at 96 KB. */
  maxResponseBytes?: number;
  userAgent?: string;
}

/**
 * The HTTP client DPS uses to call a custom allocation webhook: a POST of the allocation request
 * to the enrollment's `webhookUrl`, query (`?code=` function key) kept, JSON body. Redirects are
 * not followed (a 3xx is an answer like any other). It never throws: every result, including a
 * timeout or a refused connection, is an outcome the allocation maps to a registration result.
 * HTTPS webhooks are verified against Node's trusted CAs (add yours with NODE_EXTRA_CA_CERTS).
 */
export class WebhookClient {
  readonly #options: Required<WebhookClientOptions>;
  readonly #httpAgent = new http.Agent({ keepAlive: true });
  readonly #httpsAgent = new https.Agent({ keepAlive: true });
  /**
   * Each webhook URL's request options, as `http.request(new URL(url), ...)` derives them
   * (`urlToHttpOptions`, Node's own), or why the URL cannot be called. Why: every registration of a
   * custom enrollment calls the same few URLs, and parsing the URL again and handing Node a URL
   * object cost 5-11 us of the ~75 us a call costs the emulator (issue #13, in-process pairs). Bounded: emptied
   * when full.
   */
  readonly #targets = new Map<string, WebhookTarget | string>();

  constructor(options: WebhookClientOptions) {
    this.#options = { maxResponseBytes: 4 * 1024 * 1024, userAgent: 'dpskit-emulator', ...options };
  }

  call(url: string, body: string, signal?: AbortSignal): Promise<WebhookCallOutcome & { latencyMs: number }> {
    const started = performance.now();
    const latency = () => Math.round(performance.now() - started);
    return new Promise((resolve) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      const finish = (outcome: WebhookCallOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (onAbort) signal?.removeEventListener('abort', onAbort);
        resolve({ ...outcome, latencyMs: latency() });
      };

      const target = this.#target(url);
      if (typeof target === 'string') return finish({ kind: 'connection-error', reason: target });
      const { secure } = target;

      const payload = Buffer.from(body, 'utf8');
      let request: http.ClientRequest;
      timer = setTimeout(() => {
        finish({ kind: 'timeout', timeoutMs: this.#options.timeoutMs });
        request.destroy();
      }, this.#options.timeoutMs);
      onAbort = () => {
        finish({ kind: 'connection-error', reason: 'aborted: the emulator is stopping' });
        request.destroy();
      };

      const send = (fresh: boolean) => {
        // A fresh object each time: Node writes into the options it is given.
        request = (secure ? https : http).request({
          ...target.options,
          method: 'POST',
          // A fresh connection of its own when a kept-alive one turned out dead (below).
          agent: fresh ? false : secure ? this.#httpsAgent : this.#httpAgent,
          headers: {
            'Content-Type': 'application/json; charset=utf-8',
            Accept: 'application/json',
            'Content-Length': payload.length,
            'User-Agent': this.#options.userAgent,
          },
        });
        const sent = request;
        let answered = false;
        sent.on('error', (err: NodeJS.ErrnoException) => {
          // The keep-alive race: the webhook closed an idle connection just as the agent reused it.
          // Nothing of the request was processed (no answer began), so DPS's caller would simply
          // retry; here the retry goes out on a connection of its own, once, and the dead socket
          // never becomes the device's failure.
          if (!fresh && !answered && !settled && sent.reusedSocket && isDeadSocketError(err)) {
            send(true);
            return;
          }
          finish({ kind: 'connection-error', reason: err.message || err.code || 'unknown error' });
        });
        sent.on('response', (response) => {
          answered = true;
          onResponse(response);
        });
        sent.end(payload);
      };

      const onResponse = (response: http.IncomingMessage) => {
        const status = response.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.#options.maxResponseBytes) {
            finish({
              kind: 'response',
              status,
              body: '',
              bodyError: `the body is larger than ${this.#options.maxResponseBytes} bytes`,
            });
            response.destroy();
            return;
          }
          chunks.push(chunk);
        });
        response.on('end', () => finish({ kind: 'response', status, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', (err) =>
          finish({ kind: 'connection-error', reason: `the answer was cut off (${err.message})` }),
        );
        response.on('aborted', () => finish({ kind: 'connection-error', reason: 'the answer was cut off' }));
      };

      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      send(false);
    });
  }

  /** The URL's request options, or the reason it cannot be called (same texts as ever). */
  #target(url: string): WebhookTarget | string {
    let target = this.#targets.get(url);
    if (target === undefined) {
      target = parseTarget(url);
      if (this.#targets.size >= MAX_KEPT_TARGETS) this.#targets.clear();
      this.#targets.set(url, target);
    }
    return target;
  }

  /** Closes idle keep-alive connections so the process (and test servers) can exit. */
  close(): void {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }
}

interface WebhookTarget {
  secure: boolean;
  /** `urlToHttpOptions(new URL(url))`: what http.request takes from a URL. Never handed to Node itself. */
  options: http.RequestOptions;
}

/** The most webhook URLs whose options are kept (a config has a handful; any more only costs a parse). */
const MAX_KEPT_TARGETS = 256;

function parseTarget(url: string): WebhookTarget | string {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return `"${url}" is not a valid URL`;
  }
  const secure = target.protocol === 'https:';
  if (!secure && target.protocol !== 'http:') return `unsupported protocol "${target.protocol}"`;
  return { secure, options: urlToHttpOptions(target) };
}

/** Errors of a request written to a connection the server had already closed. */
function isDeadSocketError(err: NodeJS.ErrnoException): boolean {
  return err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ECONNABORTED';
}
