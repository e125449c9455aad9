import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChattyApp, outputLines, writeChattyApp } from '../testing/chatty-app.js';
import type { Spawned } from '../testing/process.js';

/**
 * What a function writes to stdout itself (console.log, process.stdout.write) and the host's lines
 * (its own and the function's context.* records, written once per event-loop turn by node-kit's line
 * writer) come out in the order they were written, every line whole: with a reader that keeps up,
 * with one that stalls (the pipe full, the rest kept by the process), and when the process ends by
 * process.exit() behind a stalled reader. The `mixed` function alternates context.info and console.log.
 */
describe("the CLI keeps a function's console.log lines in order with the host's lines", () => {
  // ~170 KB of host lines and ~110 KB of console lines a request: more than a pipe holds.
  const LINES = 500;
  let app: ChattyApp;

  beforeAll(async () => {
    app = await writeChattyApp(LINES);
  });

  afterAll(async () => {
    await app?.remove();
  });

  /** The output lines from the request's `Executing` line to its `Executed` line, both included. */
  function requestLines(child: Spawned): string[] {
    const lines = outputLines(child);
    const from = lines.findIndex((l) => l.startsWith("Executing 'Functions.mixed'"));
    const to = lines.findIndex((l) => l.startsWith("Executed 'Functions.mixed'"));
    return lines.slice(from, to === -1 ? undefined : to + 1);
  }

  it('in order with a reader that keeps up', async () => {
    const { child, url } = await app.start();
    try {
      const ended = once(child.child.stdout!, 'close');
      expect((await fetch(`${url}/api/mixed?tag=a`, { method: 'POST' })).status).toBe(200);
      child.child.kill('SIGTERM');
      expect(await child.exited).toBe(0);
      await ended;
      const lines = requestLines(child);
      expect(lines.slice(1, -1)).toEqual(app.mixedChatter('a'));
      expect(lines.at(-1)).toMatch(/^Executed 'Functions.mixed' \(Succeeded/);
    } finally {
      await child.stop();
    }
  });

  it('in order, every line whole, with a reader that stalls while the function logs', async () => {
    const { child, url } = await app.start();
    try {
      const stdout = child.child.stdout!;
      const ended = once(stdout, 'close');
      stdout.pause();
      expect((await fetch(`${url}/api/mixed?tag=s`, { method: 'POST' })).status).toBe(200);
      stdout.resume();
      await child.waitForLine((l) => l.includes("Executed 'Functions.mixed'"), 60_000);
      child.child.kill('SIGTERM');
      expect(await child.exited).toBe(0);
      await ended;
      const lines = requestLines(child);
      expect(lines.slice(1, -1)).toEqual(app.mixedChatter('s'));
      expect(outputLines(child).at(-1)).toBe('Stopped');
    } finally {
      await child.stop();
    }
  });

  it('in order and complete when the function calls process.exit() behind a stalled reader', async () => {
    const { child, url } = await app.start();
    try {
      const stdout = child.child.stdout!;
      stdout.pause();
      const exit = once(child.child, 'exit');
      void fetch(`${url}/api/mixed?tag=x&end=exit`, { method: 'POST' }).catch(() => undefined);
      // An ending child waits for its reader (at most 10 s): read on once it has exited or after a second.
      await Promise.race([exit, new Promise((resolve) => setTimeout(resolve, 1_000))]);
      stdout.resume();
      expect(await child.exited).toBe(3);
      expect(requestLines(child).slice(1)).toEqual(app.mixedChatter('x'));
    } finally {
      await child.stop();
    }
  });
});
