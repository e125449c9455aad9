import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
    expect(readFileSync(`${packageDir}/${pkg.exports['.'].types}`, 'utf8')).toContain("from './keys.js'");
    expect(readFileSync(`${packageDir}/dist/keys.d.ts`, 'utf8')).toContain('export declare function deriveDeviceKey');
  });

  it('depends on nothing but its schema library', () => {
    const pkg = JSON.parse(readFileSync(`${packageDir}/package.json`, 'utf8'));
    expect(Object.keys(pkg.dependencies)).toEqual(['zod']);
  });
});
