import { createHash } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A custom allocation webhook for the crash test: it assigns each device to a hub derived from its
 * registration id and returns `{ device: <id> }` as the payload, so that an answer given to the
 * wrong device is visible. It refuses (400) a request whose device payload names another device.
 * After `answerFirst` answers it holds every further request unanswered, until `release()`, so
 * that the emulator can be killed with allocations known to be in flight.
 */
export interface HoldingWebhook {
  url: string;
  /** Requests received, by registration id. */
  calls: Map<string, number>;
  /** Requests held unanswered right now. */
  readonly held: number;
  /** Resolves once `count` requests are held. */
  whenHeld(count: number): Promise<void>;
  /** Answers every request from now on; held requests are dropped (their emulator is gone). */
  release(): void;
  close(): Promise<void>;
}

export function hubFor(registrationId: string, hubs: readonly string[]): string {
  const digest = createHash('sha256').update(registrationId).digest();
  return hubs[digest.readUInt32BE(0) % hubs.length] as string;
}

export async function startHoldingWebhook(options: {
  hubs: readonly string[];
  answerFirst: number;
}): Promise<HoldingWebhook> {
  const calls = new Map<string, number>();
  const held: ServerResponse[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  let answered = 0;
  let holding = true;

  const server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      text += chunk;
    });
    req.on('end', () => {
      let body: {
        deviceRuntimeContext?: { registrationId?: string; payload?: { device?: string } };
      };
      try {
        body = JSON.parse(text);
      } catch {
        res.writeHead(400).end('not JSON');
        return;
      }
      const registrationId = body.deviceRuntimeContext?.registrationId ?? '';
      calls.set(registrationId, (calls.get(registrationId) ?? 0) + 1);
      if (body.deviceRuntimeContext?.payload?.device !== registrationId) {
        res.writeHead(400).end(`the payload does not name ${registrationId}`);
        return;
      }
      if (holding && answered >= options.answerFirst) {
        held.push(res);
        for (const waiter of waiters.filter((w) => held.length >= w.count)) waiter.resolve();
        return;
      }
      answered += 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ iotHubHostName: hubFor(registrationId, options.hubs), payload: { device: registrationId } }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/api/allocate`,
    calls,
    get held() {
      return held.length;
    },
    whenHeld(count) {
      if (held.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    release() {
      holding = false;
      for (const res of held.splice(0)) res.destroy();
    },
    close() {
      return new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
