import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_DIR } from '../deploy/package.js';
import type { AllocatorLogRecord } from '../log/record.js';
import { type Spawned, spawnNode } from '../testing/process.js';
import { writeUserApp } from '../testing/user-app.js';

/**
 * The CLI queues its log lines and writes them once per event-loop turn (node-kit's line writer), so
 * a line must survive however the process ends: a stop signal right after the answers, user code
 * calling process.exit() in the middle of a turn, an uncaught exception. Each case checks that every
 * line logged before the end is in stdout, in order. (A SIGKILL can lose the lines of the turn it
 * interrupts; nothing in the process runs then.)
 */
describe('the CLI loses no log line when the process ends', () => {
  const cli = path.join(PACKAGE_DIR, 'dist', 'local-host', 'cli.js');
  // Lines of ~200 characters: a request's 400 lines (~80 KB) pass the writer's 64 Ki mark mid-turn.
  const LINES = 400;
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

  /** The CLI serving the app, its base URL, and a promise of its whole stdout read to the end. */
  async function start(): Promise<{ child: Spawned; url: string; ended: Promise<unknown> }> {
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
    const ended = once(child.child.stdout!, 'close');
    const line = await child.waitForLine((l) => l.includes('"msg":"Listening on'));
    return { child, url: String((JSON.parse(line) as AllocatorLogRecord).data?.url), ended };
  }

  function messages(child: Spawned): string[] {
    return child.lines.map((l) => (JSON.parse(l) as AllocatorLogRecord).msg);
  }

  function chatter(tag: string): string[] {
    return Array.from({ length: LINES }, (_, i) => `${tag} line ${i} ${PAD}`);
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
      const msgs = messages(child);
      for (const tag of tags) {
        expect(msgs.filter((m) => m.startsWith(`${tag} line `))).toEqual(chatter(tag));
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
      const msgs = messages(child);
      expect(msgs.filter((m) => m.startsWith('exit line '))).toEqual(chatter('exit'));
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
      const msgs = messages(child);
      expect(msgs.filter((m) => m.startsWith('crash line '))).toEqual(chatter('crash'));
      expect(msgs).toContain('last line before the uncaught exception');
    } finally {
      await child.stop();
    }
  });
});
