import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const packageDir = fileURLToPath(new URL('../..', import.meta.url));

// turbo builds the package before its tests run: these hold the built entry (the bundle), not the sources.
describe('@dpskit/contracts/allocation (the built entry)', () => {
  it('answers exactly as the main entry for valid, invalid and non-JSON requests and answers', () => {
    const script = `
      import * as main from '@dpskit/contracts';
      import * as hook from '@dpskit/contracts/allocation';
      import { HEATPUMP_REQUEST_2019_03_31, TOASTER_REQUEST_2021_10_01 } from '@dpskit/contracts/fixtures';
      const requests = [
        TOASTER_REQUEST_2021_10_01,
        HEATPUMP_REQUEST_2019_03_31,
        '{}',
        'not json',
        '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
        '{"deviceRuntimeContext":{"registrationId":5,"x509":{"certificateInfo":{"version":1.5}}},"linkedHubs":[1]}',
        '{"enrollmentGroup":{"enrollmentGroupId":"g","attestation":{"type":"bogus"}},"individualEnrollment":{},"deviceRuntimeContext":{"registrationId":"x"},"linkedHubs":[]}',
      ];
      const responses = [{ iotHubHostName: 'h', initialTwin: { tags: { a: 1 } } }, { iotHubHostName: null }, { payload: 5 }, { initialTwin: { tags: 3 } }, 'x'];
      const out = [];
      for (const text of requests) {
        const a = main.parseAllocationRequestJson(text);
        const b = hook.parseAllocationRequestJson(text);
        const c = hook.decodeJson(text);
        const d = c.ok ? hook.parseAllocationRequest(c.value) : b;
        out.push({ same: JSON.stringify([a, a]) === JSON.stringify([b, d]), ok: b.ok, sharedError: b.ok || b.error instanceof main.ContractValidationError });
      }
      for (const value of responses) {
        const a = main.parseAllocationResponse(value);
        const b = hook.parseAllocationResponse(value);
        out.push({ same: JSON.stringify(a) === JSON.stringify(b), ok: b.ok, sharedError: b.ok || b.error instanceof main.ContractValidationError });
      }
      console.log(JSON.stringify({ out, versions: hook.WEBHOOK_API_VERSIONS, depth: hook.DEFAULT_MAX_JSON_DEPTH === main.DEFAULT_MAX_JSON_DEPTH }));`;
    const result = JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: packageDir, encoding: 'utf8' }),
    ) as { out: Array<{ same: boolean; ok: boolean; sharedError: boolean }>; versions: string[]; depth: boolean };
    expect(result.out.map((r) => r.same)).toEqual(Array(12).fill(true));
    expect(result.out.map((r) => r.ok)).toEqual([
      true,
      true,
      false,
      false,
      false,
      false,
      false,
      true,
      true,
      false,
      false,
      false,
    ]);
    expect(result.out.every((r) => r.sharedError)).toBe(true);
    expect(result.versions).toEqual(['2019-03-31', '2021-10-01']);
    expect(result.depth).toBe(true);
  });

  it('is one module with zod inside: it imports only the main entry’s zod-free schema/ modules', () => {
    const pkg = JSON.parse(readFileSync(`${packageDir}/package.json`, 'utf8'));
    const file = `${packageDir}/${pkg.exports['./allocation'].import}`;
    const source = readFileSync(file, 'utf8');
    const specifiers = [...source.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);
    expect(new Set(specifiers)).toEqual(new Set(['../schema/parse.js', '../schema/json-bounds.js']));
    expect(source).not.toMatch(/from ["']zod/);
    expect(readFileSync(`${packageDir}/${pkg.exports['./allocation'].types}`, 'utf8')).toContain(
      'parseAllocationRequestJson',
    );
  });
});
