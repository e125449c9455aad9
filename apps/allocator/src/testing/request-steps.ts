import functions from '@azure/functions';

/**
 * The test kit that holds the local host's request objects to the library's, call for call
 * (buffered-request.test.ts: a BufferedRequest under the library's HttpRequest;
 * invocation-objects.test.ts: the host's LocalHttpRequest): a request as the library builds it,
 * the body-reading steps a function may take, and a recorder of what each step gave. Each test
 * runs the same steps on both requests and compares the recordings.
 */

const { HttpRequest } = functions;
export type HttpRequest = InstanceType<typeof HttpRequest>;

export const REQUEST_URL = 'http://localhost:7071/api/allocate/dev-1?code=k&q=1&q=2';
export const REQUEST_PARAMS: Readonly<Record<string, string>> = { id: 'dev-1' };

export interface RequestCase {
  method: string;
  body: Buffer;
  headers?: Record<string, string>;
}

/** The request as @azure/functions builds it from an init (the undici Request inside). */
export function libraryRequest(c: RequestCase): HttpRequest {
  return new HttpRequest({
    method: c.method,
    url: REQUEST_URL,
    headers: c.headers ?? {},
    params: { ...REQUEST_PARAMS },
    body: { bytes: new Uint8Array(c.body) },
  });
}

export type Step = (request: HttpRequest) => Promise<unknown> | unknown;

/** Runs the steps in order and records each outcome: a value, or the error's class and message. */
export async function outcomes(request: HttpRequest, steps: readonly Step[]): Promise<unknown[]> {
  const seen: unknown[] = [];
  for (const step of steps) {
    try {
      const value = await step(request);
      seen.push(value instanceof ArrayBuffer ? ['ArrayBuffer', [...new Uint8Array(value)]] : value);
    } catch (err) {
      seen.push(['threw', (err as Error).constructor.name, (err as Error).message]);
    }
    seen.push(['bodyUsed', request.bodyUsed]);
  }
  return seen;
}

export const text: Step = (r) => r.text();
export const json: Step = (r) => r.json();
export const arrayBuffer: Step = (r) => r.arrayBuffer();
export const blob: Step = async (r) => {
  const b = await r.blob();
  return [b.type, await b.text()];
};
export const formData: Step = async (r) => [...(await r.formData()).entries()];
export const readStream: Step = async (r) => {
  const stream = r.body;
  if (stream === null) return null;
  let out = '';
  for await (const chunk of stream) out += Buffer.from(chunk).toString('utf8');
  return out;
};
