import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// `keys derive` starts without the contracts' schema layer: the built CLI, run as a user runs it,
// with a module hook recording every ES module it resolves. A `keys` command line loads
// keys-args.ts alone and the keys entry of @dpskit/contracts, never zod (about 60 ms of CPU).

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli.js');
const GROUP_KEY = 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';

let dir: string;
let preload: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'device-sim-keys-start-'));
  writeFileSync(
    join(dir, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(file, resolved.url + '\\n');
  return resolved;
}
`,
  );
  preload = join(dir, 'register.mjs');
  writeFileSync(
    preload,
    `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)}, { data: { file: process.env.MODULES_FILE } });
`,
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The ES modules the CLI resolved for `args`, with `stdin` piped in, and its stdout. */
function modulesLoaded(args: string[], stdin: string): Promise<{ modules: string[]; stdout: string }> {
  const file = join(dir, `modules-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(file, '');
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['--import', pathToFileURL(preload).href, CLI, ...args],
      { env: { PATH: process.env.PATH ?? '', MODULES_FILE: file } },
      (err, stdout) => {
        if (err) reject(err);
        else resolve({ modules: readFileSync(file, 'utf8').split('\n').filter(Boolean), stdout });
      },
    );
    child.stdin?.end(stdin);
  });
}

const zod = (modules: string[]) => modules.filter((url) => /[\\/]zod[\\/]/.test(url));

describe('device-sim keys derive at start-up', () => {
  it('reads ids on stdin without loading zod', async () => {
    const { modules, stdout } = await modulesLoaded(
      ['keys', 'derive', '--group-key', GROUP_KEY],
      'contoso-toaster-007\n',
    );
    expect(stdout).toBe('contoso-toaster-007 NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI=\n');
    expect(modules.some((url) => url.endsWith('/cli/keys-args.js'))).toBe(true);
    expect(zod(modules)).toEqual([]);
  });

  it('derives keys for ids given as arguments without loading zod', async () => {
    const { modules, stdout } = await modulesLoaded(
      ['keys', 'derive', '--group-key', GROUP_KEY, 'contoso-toaster-007'],
      '',
    );
    expect(stdout).toBe('contoso-toaster-007 NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI=\n');
    expect(zod(modules)).toEqual([]);
  });

  it('(control) the hook sees zod where the CLI loads it: register --help', async () => {
    const { modules } = await modulesLoaded(['register', '--help'], '');
    expect(zod(modules).length).toBeGreaterThan(0);
  });
});
