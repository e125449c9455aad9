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
 *
 * `mixed?tag=<tag>[&end=exit]` logs the same number of lines alternately with context.info and with
 * console.log (plain text lines, `<tag> host <i> …` and `<tag> console <i> …`; `mixedChatter` lists
 * them in order), then answers or calls process.exit(3).
 *
 * And three functions for answers queued when the process ends (cli-exit-answers): `park` waits
 * until `release` is called and then answers `answer <tag>`; `parked` says how many are waiting;
 * `release?end=exit|crash` lets them all return and, in the same event-loop turn, ends the process
 * (process.exit(3), or an exception thrown from process.nextTick). The parked functions return in
 * the microtasks of that turn, before its next tick runs, so the host has queued their answers
 * (turn-end.ts) when the process ends; `release` itself never answers.
 */
export interface ChattyApp {
  /** The app's folder (removed by `remove`). */
  readonly dir: string;
  /** The lines a request tagged `tag` logs, in order. */
  chatter(tag: string): string[];
  /** The lines `mixed?tag=<tag>` logs, in order: context.info's messages and console.log's lines alternately. */
  mixedChatter(tag: string): string[];
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
app.http('mixed', { methods: ['POST'], authLevel: 'anonymous', handler: (request, context) => {
  const tag = request.query.get('tag');
  for (let i = 0; i < ${lines}; i++) {
    context.info(tag + ' host ' + i + ' ${PAD}');
    console.log(tag + ' console ' + i + ' ${PAD}');
  }
  if (request.query.get('end') === 'exit') process.exit(3);
  return { body: 'ok' };
} });
const parked = [];
app.http('park', { methods: ['POST'], authLevel: 'anonymous', handler: async (request, context) => {
  const tag = request.query.get('tag');
  await new Promise((resolve) => parked.push(resolve));
  context.info('answering ' + tag);
  return { body: 'answer ' + tag };
} });
app.http('parked', { methods: ['GET'], authLevel: 'anonymous', handler: () => ({ body: String(parked.length) }) });
app.http('release', { methods: ['POST'], authLevel: 'anonymous', handler: (request, context) => {
  const end = request.query.get('end');
  for (const resolve of parked.splice(0)) resolve();
  context.info('released; ending with ' + end);
  process.nextTick(() => {
    if (end === 'exit') process.exit(3);
    throw new Error('deliberate crash after release');
  });
  return new Promise(() => {});
} });
`,
    },
  });
  return {
    dir,
    chatter: (tag) => Array.from({ length: lines }, (_, i) => `${tag} line ${i} ${PAD}`),
    mixedChatter: (tag) =>
      Array.from({ length: lines }, (_, i) => [`${tag} host ${i} ${PAD}`, `${tag} console ${i} ${PAD}`]).flat(),
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

/**
 * Every stdout line of the child in order: a JSON line's `msg`, any other line (console.log's) as it is.
 * A line cut by another write in its middle is neither JSON nor an expected text line.
 */
export function outputLines(child: Spawned): string[] {
  return child.lines.map((l) => (l.startsWith('{') ? (JSON.parse(l) as AllocatorLogRecord).msg : l));
}

/** The `msg` of every JSON line the child wrote to stdout, in order. */
export function logMessages(child: Spawned): string[] {
  return child.lines.map((l) => (JSON.parse(l) as AllocatorLogRecord).msg);
}
