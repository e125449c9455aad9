import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChattyApp, logMessages, writeChattyApp } from '../testing/chatty-app.js';
import type { Spawned } from '../testing/process.js';

/**
 * cli-log-exit.test.ts with a reader that stops reading the CLI's stdout for a while, as a paused
 * terminal pager or a busy log shipper does: the pipe fills, and the lines not yet written must
 * still reach the reader however the process ends. (Before node-kit's line writer wrote pipes
 * through their file descriptor, Node's stream queued them in memory, and process.exit() or an
 * uncaught exception dropped that queue: the output ended mid-line.)
 */
describe('the CLI loses no log line when its reader stalls and the process ends', () => {
  // ~1 MB of lines a request: several times what a pipe holds.
  const LINES = 5000;
  let app: ChattyApp;

  beforeAll(async () => {
    app = await writeChattyApp(LINES);
  });

  afterAll(async () => {
    await app?.remove();
  });

  /**
   * Stops reading the child's stdout while `during` runs and until the child has exited or a
   * second has passed (an ending child waits for room), then reads on; resolves with its exit code.
   */
  async function stalled(child: Spawned, during: () => void): Promise<number | string> {
    const stdout = child.child.stdout;
    if (!stdout) throw new Error('no stdout');
    stdout.pause();
    const exit = once(child.child, 'exit');
    during();
    await Promise.race([exit, new Promise((resolve) => setTimeout(resolve, 1_000))]);
    stdout.resume();
    return child.exited;
  }

  it('writes every line logged before a function calls process.exit()', async () => {
    const { child, url } = await app.start();
    try {
      // Answered by no one: the process ends in the request.
      const code = await stalled(child, () => void fetch(`${url}/api/exit`, { method: 'POST' }).catch(() => undefined));
      expect(code).toBe(3);
      const msgs = logMessages(child);
      expect(msgs.filter((m) => m.startsWith('exit line '))).toEqual(app.chatter('exit'));
      expect(msgs.at(-1)).toBe('last line before process.exit');
    } finally {
      await child.stop();
    }
  });

  it('writes every line logged before an uncaught exception ends the process', async () => {
    const { child, url } = await app.start();
    try {
      const code = await stalled(
        child,
        () => void fetch(`${url}/api/crash`, { method: 'POST' }).catch(() => undefined),
      );
      expect(code).toBe(1);
      expect(child.stderr()).toContain('deliberate crash');
      const msgs = logMessages(child);
      expect(msgs.filter((m) => m.startsWith('crash line '))).toEqual(app.chatter('crash'));
      expect(msgs).toContain('last line before the uncaught exception');
    } finally {
      await child.stop();
    }
  });

  it('writes every line of the answered requests when stopped by SIGTERM', async () => {
    const { child, url } = await app.start();
    try {
      const code = await stalled(child, () => {
        void (async () => {
          for (const tag of ['a', 'b']) await fetch(`${url}/api/chatty?tag=${tag}`, { method: 'POST' });
          child.child.kill('SIGTERM');
        })();
      });
      expect(code).toBe(0);
      const msgs = logMessages(child);
      for (const tag of ['a', 'b']) expect(msgs.filter((m) => m.startsWith(`${tag} line `))).toEqual(app.chatter(tag));
      expect(msgs.at(-1)).toBe('Stopped');
    } finally {
      await child.stop();
    }
  });
});
