import type { HttpHandler } from '@azure/functions';
import functions from '@azure/functions';
import { recordFromContextLog } from '../log/from-context.js';
import type { AllocatorLogRecord } from '../log/record.js';

const { HttpRequest, HttpResponse, InvocationContext } = functions;

export interface Invocation {
  status: number;
  contentType: string | null;
  text: string;
  logs: AllocatorLogRecord[];
}

/** Calls a handler the way the worker does: real `HttpRequest` and `InvocationContext` objects. */
export async function invoke(handler: HttpHandler, body: string | undefined): Promise<Invocation> {
  const logs: AllocatorLogRecord[] = [];
  const origin = { functionName: 'allocate', invocationId: 'test-invocation' };
  const context = new InvocationContext({
    ...origin,
    logHandler: (level, ...args) => {
      if (level !== 'none') logs.push(recordFromContextLog(level, args, origin));
    },
  });
  const request = new HttpRequest({
    method: 'POST',
    url: 'http://localhost:7071/api/allocate?code=k',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: { string: body } }),
  });
  const result = await handler(request, context);
  const response = result instanceof HttpResponse ? result : new HttpResponse(result);
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    text: await response.text(),
    logs,
  };
}
