import { rm } from 'node:fs/promises';
import path from 'node:path';
import { PACKAGE_DIR } from '../deploy/package.js';
import type { AllocatorLogRecord } from '../log/record.js';
import { type Spawned, spawnNode } from './process.js';
import { writeUserApp } from './user-app.js';

const CLI = path.join(PACKAGE_DIR, 'dist', 'local-host', 'cli.js');
const PAD = 'x'.repeat(180);

/**
 * A user app whose functions each log `lines` lines of ~200 characters and then end differently:
 * `chatty` answers, `exit` calls process.exit(3) mid-turn, `crash` throws from process.nextTick. The
 * CLI tests of lost log lines (cli-log-exit, cli-log-stall) serve it with the built CLI.
 */
export interface ChattyApp {
  /** The app's folder (removed by `remove`). */
  readonly dir: string;
  /** The lines a request tagged `tag` logs, in order. */
  chatter(tag: string): string[];
  /** The built CLI serving the app's `chatty` function with JSON logs, and its base URL. */
  start(): Promise<{ child: Spawned; url: string }>;
  remove(): Promise<void>;
}

export async function writeChattyApp(lines: number): Promise<ChattyApp> {
  const dir = await writeUserApp({
    files: {
      'dist/src/functions/ends.js': `import { app } from '@azure/functions';
const chatter = (context, tag) => {
  for (let i = 0; i < ${lines}; i++) context.info(tag + ' line ' + i + ' ${PAD}');
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
  return {
    dir,
    chatter: (tag) => Array.from({ length: lines }, (_, i) => `${tag} line ${i} ${PAD}`),
    async start() {
      const child = spawnNode([
        CLI,
        'start',
        dir,
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
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** The `msg` of every JSON line the child wrote to stdout, in order. */
export function logMessages(child: Spawned): string[] {
  return child.lines.map((l) => (JSON.parse(l) as AllocatorLogRecord).msg);
}
