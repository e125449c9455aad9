// Plain JavaScript, as index.js (Node 20 cannot import TypeScript from a dependency); types in
// module-trace.d.ts. A test helper shared by the apps' start-up tests (device-sim's keys-start, the
// allocator's library-start): which modules a program loads is what decides its cold start (issue #13).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Runs `node --import <a module hook> ...args` and resolves with the URL of every ES module the
 * process resolved (Node's `module.register` resolve hook, in order), its stdout and its exit code;
 * `stdin` is piped in. `env` is the child's environment (default this process's).
 */
export function modulesResolved(args, { stdin = '', env = process.env } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'dpskit-module-trace-'));
  const file = join(dir, 'modules.txt');
  writeFileSync(file, '');
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
  const register = join(dir, 'register.mjs');
  writeFileSync(
    register,
    `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)}, { data: { file: ${JSON.stringify(file)} } });
`,
  );
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['--import', pathToFileURL(register).href, ...args],
      { env },
      (err, stdout) => {
        const code = err ? err.code : 0;
        try {
          if (typeof code !== 'number') reject(err);
          else resolve({ modules: readFileSync(file, 'utf8').split('\n').filter(Boolean), stdout, code });
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
    child.stdin?.end(stdin);
  });
}
