import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AllocatorLogRecord } from '../log/record.js';
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

describe('the CLI keeps at most 4 MiB of log lines for a reader that has stopped reading', () => {
  // ~1.6 MB of JSON lines a request: four requests are well over the 4 MiB kept.
  const LINES = 5000;
  let app: ChattyApp;

  beforeAll(async () => {
    app = await writeChattyApp(LINES);
  });

  afterAll(async () => {
    await app?.remove();
  });

  it('drops whole lines past it and, once the reader catches up, says how many in one JSON warning', async () => {
    const { child, url } = await app.start();
    try {
      const stdout = child.child.stdout;
      if (!stdout) throw new Error('no stdout');
      // The reader takes nothing while four requests log: the requests are still answered.
      stdout.pause();
      const tags = ['a', 'b', 'c', 'd'];
      for (const tag of tags)
        expect((await fetch(`${url}/api/chatty?tag=${tag}`, { method: 'POST' })).status).toBe(200);
      stdout.resume();
      // The warning once the kept lines are read (or, with nothing dropped, the last line logged).
      await child.waitForLine((l) => l.includes('log lines dropped') || l.includes('"d line 4999 '), 60_000);
      expect((await fetch(`${url}/api/chatty?tag=e`, { method: 'POST' })).status).toBe(200);
      child.child.kill('SIGTERM');
      expect(await child.exited).toBe(0);

      // Every line whole (JSON), the chatter of the stalled requests in order up to where lines
      // were dropped, then the one warning, then every line of the request after it.
      const records = child.lines.map((l) => JSON.parse(l) as AllocatorLogRecord);
      const warnings = records.flatMap((r, at) => (r.msg.includes('log lines dropped') ? [at] : []));
      expect(warnings).toHaveLength(1);
      const at = warnings[0] as number;
      const warning = records[at] as AllocatorLogRecord;
      const dropped = Number(warning.data?.droppedLines);
      expect(warning).toMatchObject({
        level: 'warn',
        source: 'host',
        msg: `${dropped} log lines dropped: the reader of this output fell more than 4 MiB behind`,
      });
      const stalledChatter = records
        .slice(0, at)
        .map((r) => r.msg)
        .filter((m) => /^[abcd] line /.test(m));
      const allChatter = tags.flatMap((tag) => app.chatter(tag));
      expect(stalledChatter.length).toBeLessThan(allChatter.length);
      expect(stalledChatter).toEqual(allChatter.slice(0, stalledChatter.length));
      // Dropped: the rest of that chatter and the host's own lines among it.
      expect(dropped).toBeGreaterThanOrEqual(allChatter.length - stalledChatter.length);
      const after = records.slice(at + 1).map((r) => r.msg);
      expect(after.filter((m) => /^[abcd] line /.test(m))).toEqual([]);
      expect(after.filter((m) => m.startsWith('e line '))).toEqual(app.chatter('e'));
      expect(after.at(-1)).toBe('Stopped');
    } finally {
      await child.stop();
    }
  });
});
