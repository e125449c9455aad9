import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

// turbo builds the package before its tests run; this proves the published shape, not the sources.
describe('the compiled package', () => {
  it('is importable from plain Node by its name, with declarations', () => {
    const script = `
      import { deriveDeviceKey, parseAllocationRequest, DpsErrorCode } from '@dpskit/contracts';
      console.log(JSON.stringify({
        key: deriveDeviceKey('oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==', 'contoso-toaster-007'),
        ok: parseAllocationRequest({}).ok,
        code: DpsErrorCode.CustomAllocationFailed,
      }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: packageDir,
      encoding: 'utf8',
    });
    expect(JSON.parse(out)).toEqual({ key: 'NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI=', ok: false, code: 400207 });
    const pkg = JSON.parse(readFileSync(`${packageDir}/package.json`, 'utf8'));
    expect(readFileSync(`${packageDir}/${pkg.exports['.'].import.types}`, 'utf8')).toContain("from './keys.js'");
    expect(readFileSync(`${packageDir}/dist/keys.d.ts`, 'utf8')).toContain('export declare function deriveDeviceKey');
  });

  it('serves key derivation and id rules from @dpskit/contracts/keys: the same objects as the main entry', () => {
    const script = `
      import * as keys from '@dpskit/contracts/keys';
      import * as main from '@dpskit/contracts';
      const derive = keys.createDeviceKeyDeriver('oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==');
      console.log(JSON.stringify({
        key: derive('contoso-toaster-007'),
        problem: keys.registrationIdProblem('a b'),
        names: Object.keys(keys),
        same: Object.keys(keys).every((name) => keys[name] === main[name]),
      }));`;
    const out = JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: packageDir, encoding: 'utf8' }),
    );
    expect(out.key).toBe('NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI=');
    expect(out.problem).toContain('may only contain');
    expect(out.names).toEqual(
      expect.arrayContaining(['createDeviceKeyDeriver', 'deriveDeviceKey', 'KeyError', 'registrationIdProblem']),
    );
    expect(out.names).toEqual(
      expect.arrayContaining(['createRegistrationSasToken', 'createDeviceSasToken', 'verifySasToken', 'SasTokenError']),
    );
    expect(out.same).toBe(true);
  });

  it('serves the distinguished-name helpers from @dpskit/contracts/x509: the same objects as the main entry', () => {
    const script = `
      import * as x509 from '@dpskit/contracts/x509';
      import * as main from '@dpskit/contracts';
      console.log(JSON.stringify({
        ou: x509.distinguishedNameAttribute('CN=device-1, OU=toasters, O=Contoso', 'OU'),
        names: Object.keys(x509).sort(),
        same: Object.keys(x509).every((name) => x509[name] === main[name]),
      }));`;
    const out = JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: packageDir, encoding: 'utf8' }),
    );
    expect(out).toEqual({
      ou: 'toasters',
      names: ['distinguishedNameAttribute', 'parseDistinguishedName'],
      same: true,
    });
  });

  it('loads no zod through @dpskit/contracts/keys and /x509: their files run where zod cannot be found', () => {
    // dist copied where no node_modules is above it: the keys entry still runs; the main entry
    // (control) fails on its zod import.
    const pkg = JSON.parse(readFileSync(`${packageDir}/package.json`, 'utf8'));
    const work = mkdtempSync(path.join(tmpdir(), 'dpskit-contracts-keys-'));
    try {
      cpSync(path.join(packageDir, 'dist'), path.join(work, 'dist'), { recursive: true });
      const run = (entry: string, name = 'deriveDeviceKey') =>
        execFileSync(
          process.execPath,
          entry.endsWith('.cjs') || entry.includes('/cjs/')
            ? ['-e', `console.log(typeof require(${JSON.stringify(path.join(work, entry))}).${name});`]
            : [
                '--input-type=module',
                '-e',
                `const m = await import(${JSON.stringify(path.join(work, entry))}); console.log(typeof m.${name});`,
              ],
          // Without NODE_PATH, which pnpm's bin shims set to its store: require() would search it (import() does not).
          { cwd: work, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_PATH: '' } },
        );
      // Both builds: the ES modules (import) and the CommonJS ones (require, dist/cjs).
      for (const build of ['import', 'require'] as const) {
        expect(run(pkg.exports['./keys'][build].default).trim(), build).toBe('function');
        expect(run(pkg.exports['./x509'][build].default, 'distinguishedNameAttribute').trim(), build).toBe('function');
        expect(() => run(pkg.exports['.'][build].default), build).toThrow(/zod/);
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('depends on nothing but its schema library', () => {
    const pkg = JSON.parse(readFileSync(`${packageDir}/package.json`, 'utf8'));
    expect(Object.keys(pkg.dependencies)).toEqual(['zod']);
  });
});
