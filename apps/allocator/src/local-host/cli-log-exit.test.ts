import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChattyApp, logMessages, writeChattyApp } from '../testing/chatty-app.js';
import type { Spawned } from '../testing/process.js';

/**
 * The CLI queues its log lines and writes them once per event-loop turn (node-kit's line writer), so
 * a line must survive however the process ends: a stop signal right after the answers, user code
 * calling process.exit() in the middle of a turn, an uncaught exception. Each case checks that every
 * line logged before the end is in stdout, in order. (A SIGKILL can lose the lines of the turn it
 * interrupts; nothing in the process runs then.)
 */
describe('the CLI loses no log line when the process ends', () => {
  // Lines of ~200 characters: a request's 400 lines (~80 KB) pass the writer's 64 Ki mark mid-turn.
  const LINES = 400;
  let app: ChattyApp;

  beforeAll(async () => {
    app = await writeChattyApp(LINES);
  });

  afterAll(async () => {
    await app?.remove();
  });

  /** The CLI serving the app, its base URL, and a promise of its whole stdout read to the end. */
  async function start(): Promise<{ child: Spawned; url: string; ended: Promise<unknown> }> {
    const { child, url } = await app.start();
    return { child, url, ended: once(child.child.stdout!, 'close') };
  }

  it('writes every line of the answered requests when stopped by SIGTERM right after the answers', async () => {
    const { child, url, ended } = await start();
    try {
      const tags = ['a', 'b', 'c', 'd', 'e', 'f'];
      const answers = await Promise.all(
        tags.map((tag) => fetch(`${url}/api/chatty?tag=${tag}`, { method: 'POST' }).then((r) => r.text())),
      );
      expect(answers).toEqual(tags.map(() => 'ok'));
      child.child.kill('SIGTERM');
      expect(await child.exited).toBe(0);
      await ended;
      const msgs = logMessages(child);
      for (const tag of tags) {
        expect(msgs.filter((m) => m.startsWith(`${tag} line `))).toEqual(app.chatter(tag));
      }
      expect(msgs.filter((m) => m.startsWith("Executed 'Functions.chatty' (Succeeded"))).toHaveLength(tags.length);
      expect(msgs.at(-1)).toBe('Stopped');
    } finally {
      await child.stop();
    }
  });

  it('writes every line logged before a function calls process.exit()', async () => {
    const { child, url, ended } = await start();
    try {
      await fetch(`${url}/api/exit`, { method: 'POST' }).catch(() => undefined);
      expect(await child.exited).toBe(3);
      await ended;
      const msgs = logMessages(child);
      expect(msgs.filter((m) => m.startsWith('exit line '))).toEqual(app.chatter('exit'));
      expect(msgs.at(-1)).toBe('last line before process.exit');
    } finally {
      await child.stop();
    }
  });

  it('writes every line logged before an uncaught exception ends the process', async () => {
    const { child, url, ended } = await start();
    try {
      await fetch(`${url}/api/crash`, { method: 'POST' }).catch(() => undefined);
      expect(await child.exited).toBe(1);
      await ended;
      expect(child.stderr()).toContain('deliberate crash');
      const msgs = logMessages(child);
      expect(msgs.filter((m) => m.startsWith('crash line '))).toEqual(app.chatter('crash'));
      expect(msgs).toContain('last line before the uncaught exception');
    } finally {
      await child.stop();
    }
  });
});
