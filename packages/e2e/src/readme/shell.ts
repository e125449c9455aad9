import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { stablePorts } from '../harness/stable-ports.js';

// Running README lines as a reader does: in bash, one session per block (so `export`, `cd` and
// variables carry over), each command's exit status and output kept apart.

export interface CommandRun {
  text: string;
  code: number;
  output: string;
}

const MARK = '::dpskit-readme-exit';

/**
 * Runs `commands` one after another in one bash session (cwd, env), literally, and returns each
 * one's exit status and output (stdout and stderr together, in order). Nothing stops on a failure:
 * the caller judges each status. Background jobs (`&`) are stopped when the session ends, as
 * closing the reader's terminal would (the session runs in its own process group), or, with
 * `keepBackground`, by `stopBackground()`.
 */
export async function runSession(
  commands: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; keepBackground?: boolean },
): Promise<{ runs: CommandRun[]; stopBackground: () => void }> {
  // The marker line after each command carries its status; `$?` is read first thing.
  // One stream (stderr joined to stdout at the start), so that output and markers keep their order.
  const script = `exec 2>&1\n${commands.map((c, i) => `${c}\nprintf '\\n${MARK} %s ${i}\\n' "$?"\n`).join('')}`;
  // bash may exit before all its output is read, and background jobs may hold the pipes open after
  // it: done when the last command's marker is in, or the pipes close.
  const last = new RegExp(`${MARK} \\d+ ${commands.length - 1}\\n`);
  let finished: () => void = () => {};
  const { child, output: collected } = bash(script, options, () => {
    if (last.test(collected())) finished();
  });
  const complete = new Promise<void>((resolve) => {
    finished = resolve;
    child.on('close', () => resolve());
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (!last.test(collected())) await complete;
  const output = collected();
  const stopBackground = () => stopGroup(child.pid);
  if (!options.keepBackground) stopBackground();
  const runs: CommandRun[] = [];
  let rest = output;
  commands.forEach((text, i) => {
    const marker = new RegExp(`\\n?${MARK} (\\d+) ${i}\\n`);
    const found = marker.exec(rest);
    if (!found) {
      runs.push({ text, code: code ?? -1, output: rest });
      rest = '';
      return;
    }
    runs.push({ text, code: Number(found[1]), output: rest.slice(0, found.index) });
    rest = rest.slice(found.index + found[0].length);
  });
  return { runs, stopBackground };
}

/** `bash -c text` in a process group of its own, its stdout and stderr collected together. */
function bash(
  text: string,
  options: { cwd: string; env: NodeJS.ProcessEnv },
  onData: () => void = () => {},
): { child: ChildProcessByStdio<null, Readable, Readable>; output: () => string } {
  const child = spawn('bash', ['-c', text], {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      onData();
    });
  }
  return { child, output: () => output };
}

/** SIGTERM to a process group this script started (never anything else). */
function stopGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    // the group has already exited
  }
}

export interface Server {
  /** Everything it printed so far. */
  output(): string;
  /** Ctrl-C, as the reader stops it; resolves when it has exited. */
  stop(): Promise<void>;
}

/**
 * Starts a long-running README command ("in another terminal") in bash and resolves once its output
 * matches `ready`. Rejects with its output if it exits first.
 */
export async function startServer(
  text: string,
  options: { cwd: string; env: NodeJS.ProcessEnv; ready: RegExp },
): Promise<Server> {
  let ready: () => void = () => {};
  const { child, output } = bash(text, options, () => {
    if (options.ready.test(output())) ready();
  });
  const exited = once(child, 'exit');
  await new Promise<void>((resolve, reject) => {
    ready = resolve;
    if (options.ready.test(output())) resolve();
    exited.then(([code]) => reject(new Error(`exited ${code} before it was ready:\n$ ${text}\n${output()}`)));
  });
  return {
    output,
    async stop() {
      if (child.exitCode === null && child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGINT');
        } catch {
          // already gone
        }
      }
      await exited;
    },
  };
}

/**
 * A TCP port free right now (for lines the README lets the reader renumber), below the kernel's
 * ephemeral range: the command that listens on it starts seconds later (`npm run` builds first),
 * and a port-0 port could meanwhile become some connection's source port (see stablePorts).
 */
export async function freePort(): Promise<number> {
  const [port] = await stablePorts(1);
  if (port === undefined) throw new Error('no free port');
  return port;
}

/**
 * A one-line command without its trailing comment (two READMEs may show one command with different
 * notes; it then runs once). The comment starts at the first `#` after a blank outside quotes, so a
 * note may hold an apostrophe ("the policy's unit tests") and a quoted `#` stays. A command of
 * several lines is returned whole (trimmed): only the same text is the same command.
 */
export function withoutComment(text: string): string {
  if (text.includes('\n')) return text.trim();
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quote !== undefined) {
      if (char === quote) quote = undefined;
    } else if (char === "'" || char === '"') quote = char;
    else if (char === '#' && i > 0 && /\s/.test(text[i - 1] ?? '')) return text.slice(0, i).trim();
  }
  return text.trim();
}
