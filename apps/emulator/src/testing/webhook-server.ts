import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type AllocationRequest, parseAllocationRequestJson } from '@dpskit/contracts';

export interface ReceivedWebhookCall {
  method: string;
  /** Path and query as received (the `?code=` must survive). */
  url: string;
  headers: http.IncomingHttpHeaders;
  rawBody: string;
  body: AllocationRequest;
}

export interface WebhookAnswer {
  status?: number;
  /** An object is sent as JSON; a string is sent as is. */
  body?: unknown;
  contentType?: string;
  delayMs?: number;
}

export interface TestWebhook {
  url: string;
  calls: ReceivedWebhookCall[];
  callsFor(registrationId: string): ReceivedWebhookCall[];
  close(): Promise<void>;
}

/**
 * A node:http server playing the custom allocation webhook. Requests are validated with the
 * contracts' schema (a malformed request from the emulator fails the test with a 599 status that
 * the emulator maps to a retry and then a failure, visible in assertions).
 */
export async function startWebhook(
  answer: (request: AllocationRequest, call: ReceivedWebhookCall) => WebhookAnswer,
): Promise<TestWebhook> {
  const calls: ReceivedWebhookCall[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const parsed = parseAllocationRequestJson(rawBody);
      if (!parsed.ok) {
        res.writeHead(599, { 'Content-Type': 'text/plain' }).end(parsed.error.message);
        return;
      }
      const call: ReceivedWebhookCall = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawBody,
        body: parsed.value,
      };
      calls.push(call);
      const reply = answer(parsed.value, call);
      const send = () => {
        if (res.destroyed) return;
        const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body ?? {});
        res.writeHead(reply.status ?? 200, { 'Content-Type': reply.contentType ?? 'application/json' }).end(text);
      };
      if (reply.delayMs) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          send();
        }, reply.delayMs);
        timers.add(timer);
      } else {
        send();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/api/allocate?code=test-function-key`,
    calls,
    callsFor: (registrationId) => calls.filter((c) => c.body.deviceRuntimeContext.registrationId === registrationId),
    async close() {
      for (const timer of timers) clearTimeout(timer);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
