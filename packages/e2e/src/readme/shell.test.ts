import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSession, startServer, withoutComment } from './shell.js';

describe('runSession: README lines in one bash session', () => {
  it("keeps each command's status and output apart, and what one line sets for the next", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dpskit-shell-'));
    try {
      const { runs } = await runSession(
        [
          'GREETING=hello && mkdir -p sub && cd sub',
          'echo "$GREETING from $(basename "$PWD")"',
          'echo oops >&2; exit_code=3; (exit $exit_code)',
          'printf "no newline"',
        ],
        { cwd: dir, env: { PATH: process.env.PATH } },
      );
      expect(runs.map((r) => [r.code, r.output])).toEqual([
        [0, ''],
        [0, 'hello from sub\n'],
        [3, 'oops\n'],
        [0, 'no newline'],
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stops background jobs with the session, or when told to', async () => {
    const kept = await runSession(['sleep 600 & echo "$!"'], {
      cwd: tmpdir(),
      env: { PATH: process.env.PATH },
      keepBackground: true,
    });
    const pid = Number(kept.runs[0]?.output.trim());
    // Gone, or a zombie nobody reaps yet (in a container, PID 1 may not): no longer running either way.
    const state = () => {
      try {
        return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] === 'Z' ? 'gone' : 'running';
      } catch {
        return 'gone';
      }
    };
    expect(state()).toBe('running');
    kept.stopBackground();
    await expect.poll(state, { timeout: 60_000 }).toBe('gone');
  });
});

describe('startServer', () => {
  it('resolves when the output says ready, and stops on Ctrl-C', async () => {
    const server = await startServer("echo starting; sleep 1; echo 'listening on 1234'; sleep 600", {
      cwd: tmpdir(),
      env: { PATH: process.env.PATH },
      ready: /listening on \d+/,
    });
    expect(server.output()).toContain('starting\nlistening on 1234');
    await server.stop();
  });

  it('rejects with the output when the command exits before it is ready', async () => {
    await expect(
      startServer('echo "port in use"; exit 1', { cwd: tmpdir(), env: { PATH: process.env.PATH }, ready: /listening/ }),
    ).rejects.toThrow(/exited 1 before it was ready:[\s\S]*port in use/);
  });
});

describe('withoutComment: one command shown with different notes', () => {
  it('leaves out a trailing comment, apostrophes in it included, and keeps quoted # and several lines', () => {
    expect(
      [
        "npm test           # the policy's unit tests, and the emulator, your app and devices end to end",
        'npm test                  # tsc, then node --test dist/test/',
        'npx pnpm --filter @dpskit/allocator package      # [-- --out <dir>] [--no-zip]',
        'echo \'a # b\' "c # d"   # note',
        'curl http://x/#frag',
        '  npm run package  ',
        'npm run a \\\n  --flag   # note',
      ].map(withoutComment),
    ).toEqual([
      'npm test',
      'npm test',
      'npx pnpm --filter @dpskit/allocator package',
      'echo \'a # b\' "c # d"',
      'curl http://x/#frag',
      'npm run package',
      'npm run a \\\n  --flag   # note',
    ]);
  });
});
