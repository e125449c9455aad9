import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChattyApp, logMessages, writeChattyApp } from '../testing/chatty-app.js';

/**
 * The host ends the answers of an event-loop turn together at its end (turn-end.ts). A process that
 * ends in the middle of that turn, by a function calling process.exit() or by an uncaught exception,
 * must still send the answers the turn had queued: the requests were answered by their functions,
 * and their clients (the emulator's webhook calls) are waiting on other connections. Several clients
 * wait in `park`; `release` lets them all return and ends the process in the same turn.
 */
describe('the CLI sends the answers its last turn had queued when the process ends abruptly', () => {
  const PARKED = 8;
  let app: ChattyApp;

  beforeAll(async () => {
    app = await writeChattyApp(1);
  });

  afterAll(async () => {
    await app?.remove();
  });

  /** Status and body of each answer, or the client's error when the connection went without one. */
  async function answer(response: Promise<Response>): Promise<string> {
    try {
      const res = await response;
      return `${res.status} ${await res.text()}`;
    } catch (err) {
      return `failed: ${err instanceof Error ? (err.cause ?? err.message) : String(err)}`;
    }
  }

  for (const [end, exitCode] of [
    ['exit', 3],
    ['crash', 1],
  ] as const) {
    it(`answers every parked request when the process ends by ${end === 'exit' ? 'process.exit()' : 'an uncaught exception'}`, async () => {
      const { child, url } = await app.start();
      try {
        const ended = once(child.child.stdout!, 'close');
        const tags = Array.from({ length: PARKED }, (_, i) => `p${i}`);
        // Each on its own connection: undici opens one per request in flight to the origin.
        const answers = tags.map((tag) => answer(fetch(`${url}/api/park?tag=${tag}`, { method: 'POST' })));
        // Every one of them inside its function before the release.
        for (;;) {
          const waiting = Number(await (await fetch(`${url}/api/parked`)).text());
          if (waiting === PARKED) break;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        void fetch(`${url}/api/release?end=${end}`, { method: 'POST' }).catch(() => undefined);
        expect(await Promise.all(answers)).toEqual(tags.map((tag) => `200 answer ${tag}`));
        expect(await child.exited).toBe(exitCode);
        await ended;
        // The functions' lines of that turn are written too (the CLI flushes its log on exit).
        const msgs = logMessages(child);
        expect(msgs.filter((m) => m.startsWith('answering ')).sort()).toEqual(tags.map((t) => `answering ${t}`).sort());
        expect(msgs).toContain(`released; ending with ${end}`);
        if (end === 'crash') expect(child.stderr()).toContain('deliberate crash after release');
      } finally {
        await child.stop();
      }
    });
  }
});
