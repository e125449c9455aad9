import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_DIR } from '../deploy/package.js';
import type { AllocatorLogRecord } from '../log/record.js';
import { type Spawned, spawnNode } from '../testing/process.js';
import { writeUserApp } from '../testing/user-app.js';

/**
 * cli-log-exit.test.ts with a reader that stops reading the CLI's stdout for a while, as a paused
 * terminal pager or a busy log shipper does: the pipe fills, and the lines not yet written must
 * still reach the reader however the process ends. (Before node-kit's line writer wrote pipes
 * through their file descriptor, Node's stream queued them in memory, and process.exit() or an
 * uncaught exception dropped that queue: the output ended mid-line.)
 */
describe('the CLI loses no log line when its reader stalls and the process ends', () => {
  const cli = path.join(PACKAGE_DIR, 'dist', 'local-host', 'cli.js');
  // ~1 MB of lines a request: several times what a pipe holds.
  const LINES = 5000;
  const PAD = 'x'.repeat(180);
  let app: string;

  beforeAll(async () => {
    app = await writeUserApp({
      files: {
        'dist/src/functions/ends.js': `import { app } from '@azure/functions';
const chatter = (context, tag) => {
  for (let i = 0; i < ${LINES}; i++) context.info(tag + ' line ' + i + ' ${PAD}');
};
app.http('chatty', { methods: ['POST'], authLevel: 'anonymous', handler: (request, context) => {
  chatter(context, request.query.get('tag'));
  return { body: 'ok' };
} });
app.http('exit', { methods: ['POST'], authLevel: 'anonymous', handler: (request, context) => {
  chatter(context, 'exit');
  context.info('last line before process.exit');
  process.exit(3);
} });
app.http('crash', { methods: ['POST'], authLevel: 'anonymous', handler: (request, context) => {
  chatter(context, 'crash');
  context.info('last line before the uncaught exception');
  process.nextTick(() => { throw new Error('deliberate crash'); });
  return { body: 'ok' };
} });
`,
      },
    });
  });

  afterAll(async () => {
    if (app) await rm(app, { recursive: true, force: true });
  });

  /** The CLI serving the app, its base URL; its stdout is read (into `lines`) until `stall`. */
  async function start(): Promise<{ child: Spawned; url: string }> {
    const child = spawnNode([
      cli,
      'start',
      app,
      '--function',
      'chatty',
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--json',
    ]);
    const line = await child.waitForLine((l) => l.includes('"msg":"Listening on'));
    return { child, url: String((JSON.parse(line) as AllocatorLogRecord).data?.url) };
  }

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

  const messages = (child: Spawned): string[] => child.lines.map((l) => (JSON.parse(l) as AllocatorLogRecord).msg);
  const chatter = (tag: string): string[] => Array.from({ length: LINES }, (_, i) => `${tag} line ${i} ${PAD}`);

  it('writes every line logged before a function calls process.exit()', async () => {
    const { child, url } = await start();
    try {
      // Answered by no one: the process ends in the request.
      const code = await stalled(child, () => void fetch(`${url}/api/exit`, { method: 'POST' }).catch(() => undefined));
      expect(code).toBe(3);
      const msgs = messages(child);
      expect(msgs.filter((m) => m.startsWith('exit line '))).toEqual(chatter('exit'));
      expect(msgs.at(-1)).toBe('last line before process.exit');
    } finally {
      await child.stop();
    }
  });

  it('writes every line logged before an uncaught exception ends the process', async () => {
    const { child, url } = await start();
    try {
      const code = await stalled(
        child,
        () => void fetch(`${url}/api/crash`, { method: 'POST' }).catch(() => undefined),
      );
      expect(code).toBe(1);
      expect(child.stderr()).toContain('deliberate crash');
      const msgs = messages(child);
      expect(msgs.filter((m) => m.startsWith('crash line '))).toEqual(chatter('crash'));
      expect(msgs).toContain('last line before the uncaught exception');
    } finally {
      await child.stop();
    }
  });

  it('writes every line of the answered requests when stopped by SIGTERM', async () => {
    const { child, url } = await start();
    try {
      const code = await stalled(child, () => {
        void (async () => {
          for (const tag of ['a', 'b']) await fetch(`${url}/api/chatty?tag=${tag}`, { method: 'POST' });
          child.child.kill('SIGTERM');
        })();
      });
      expect(code).toBe(0);
      const msgs = messages(child);
      for (const tag of ['a', 'b']) expect(msgs.filter((m) => m.startsWith(`${tag} line `))).toEqual(chatter(tag));
      expect(msgs.at(-1)).toBe('Stopped');
    } finally {
      await child.stop();
    }
  });
});
