import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
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

  // The entry builds the webhook's one definition (webhook-definition.ts) on zod/mini, the main entry
  // on zod classic: every field of full requests and answers, set to each wrong or edge value or
  // removed, must give the main entry's result (value or issues and messages), so that the two zod
  // APIs cannot give different answers.
  it('answers exactly as the main entry with every field of full requests and answers changed', () => {
    const script = `
      import * as main from '@dpskit/contracts';
      import * as hook from '@dpskit/contracts/allocation';
      const info = { subjectName: 'CN=d', sha1Thumbprint: 'a', sha256Thumbprint: 'b', issuerName: 'CN=ca',
        notBeforeUtc: '2020-01-01T00:00:00Z', notAfterUtc: '2030-01-01T00:00:00Z', serialNumber: '01', version: 3 };
      const certs = { primary: { certificate: 'MII', info }, secondary: { certificate: null, info: null } };
      const common = {
        attestation: { type: 'x509', symmetricKey: { primaryKey: 'k', secondaryKey: 'l' },
          x509: { clientCertificates: certs, signingCertificates: certs, caReferences: { primary: 'ca', secondary: null } },
          tpm: { endorsementKey: 'ek', storageRootKey: 'srk' } },
        capabilities: { iotEdge: false }, iotHubHostName: 'h', initialTwin: { tags: { a: 1 }, properties: { desired: { b: 2 } } },
        etag: 'e', provisioningStatus: 'enabled', reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: false },
        createdDateTimeUtc: 'c', lastUpdatedDateTimeUtc: 'u', allocationPolicy: 'custom', iotHubs: ['h1', 'h2'],
        customAllocationDefinition: { webhookUrl: 'https://w', apiVersion: '2021-10-01' }, extra: { kept: true } };
      const runtime = { registrationId: 'r', currentIotHubHostName: 'h', currentDeviceId: 'd', symmetricKey: {},
        x509: { clientCertificate: 'MII', certificateInfo: info, certificateChain: ['MIJ'], signingCertificateInfo: info },
        tpm: { endorsementKey: 'ek' }, payload: { p: [1] } };
      const requests = [
        { enrollmentGroup: { enrollmentGroupId: 'g', ...common }, deviceRuntimeContext: runtime, linkedHubs: ['h1'] },
        { individualEnrollment: { registrationId: 'r', deviceId: 'd', optionalDeviceInformation: { o: 1 },
          registrationState: { s: 1 }, ...common }, deviceRuntimeContext: runtime, linkedHubs: [] },
      ];
      const answers = [{ iotHubHostName: 'h', initialTwin: { tags: { a: 1 }, properties: { desired: { b: 2 } } }, payload: { p: 1 } }];
      const edges = [undefined, null, 0, 1.5, -1, '', 'x', true, [], ['a', 1], {}, { k: 'v' }, 'symmetricKey', 'hashed', 'disabled'];
      const variants = (value) => {
        const out = [value];
        if (value === null || typeof value !== 'object') return out;
        for (const key of Object.keys(value)) {
          for (const inner of variants(value[key]).slice(1)) out.push(Array.isArray(value) ? value.map((v, i) => (i === Number(key) ? inner : v)) : { ...value, [key]: inner });
          for (const edge of edges) {
            const copy = Array.isArray(value) ? [...value] : { ...value };
            if (edge === undefined && !Array.isArray(copy)) delete copy[key]; else copy[key] = edge;
            out.push(copy);
          }
        }
        return out;
      };
      let compared = 0, differ = [], valid = 0;
      const compare = (a, b, input) => {
        compared++;
        if (a.ok) valid++;
        const same = JSON.stringify(a) === JSON.stringify(b) && (b.ok || b.error instanceof main.ContractValidationError);
        if (!same && differ.length < 3) differ.push({ input, main: a, hook: b });
      };
      for (const request of requests) for (const v of variants(request)) {
        compare(main.parseAllocationRequest(v), hook.parseAllocationRequest(v), v);
        compare(main.parseAllocationRequest(v), hook.parseAllocationRequest(v), v); // the compiled parse after the first
      }
      for (const answer of answers) for (const v of variants(answer)) compare(main.parseAllocationResponse(v), hook.parseAllocationResponse(v), v);
      console.log(JSON.stringify({ compared, valid, differ }));`;
    const result = JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: packageDir, encoding: 'utf8' }),
    ) as { compared: number; valid: number; differ: unknown[] };
    expect(result.differ).toEqual([]);
    expect(result.compared).toBeGreaterThan(5000);
    expect(result.valid).toBeGreaterThan(100);
    expect(result.compared - result.valid).toBeGreaterThan(1000);
  });

  // What the entry is for, a webhook's cold start (issue #13; scripts/bundle-allocation.mjs): no
  // classic zod and no zod modules through the ES module loader. The entry imports only Node's
  // createRequire and the main entry's zod-free schema/ modules; its implementation is one
  // CommonJS script with zod/mini inside, which requires nothing, so that a host can preload that
  // one file with a code cache; and it is loaded on the first parse, not on import.
  it('loads no classic zod: a small ES module over one CommonJS script with zod/mini inside', () => {
    const pkg = JSON.parse(readFileSync(`${packageDir}/package.json`, 'utf8'));
    const file = `${packageDir}/${pkg.exports['./allocation'].import.default}`;
    const source = readFileSync(file, 'utf8');
    const specifiers = [...source.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);
    expect(new Set(specifiers)).toEqual(new Set(['node:module', '../schema/parse.js', '../schema/json-bounds.js']));
    expect(source).not.toMatch(/from ["']zod|\$constructor\(/);
    expect([...source.matchAll(/\brequire\(|\)\((["'][^"']+["'])\)\(/g)].map((m) => m[1])).toEqual([
      '"./webhook-impl.cjs"',
    ]);
    const implementation = readFileSync(`${packageDir}/dist/allocation/webhook-impl.cjs`, 'utf8');
    expect(implementation).toMatch(/^'use strict';\n/);
    expect(implementation).toContain('$constructor("ZodMiniString"');
    for (const classic of ['ZodType', 'ZodString', 'ZodObject']) {
      expect(implementation).not.toContain(`$constructor("${classic}"`);
    }
    expect(implementation.replace(/\brequire_[\w$]+\(/g, '')).not.toMatch(/\brequire\(|\bimport\(|\bimport\.meta/);
    expect(readFileSync(`${packageDir}/${pkg.exports['./allocation'].import.types}`, 'utf8')).toContain(
      'parseAllocationRequestJson',
    );
    // At run time: importing the entry loads nothing through require; the first parse loads the
    // implementation and only it (zod is inside it, not beside it).
    const script = `
      import { createRequire } from 'node:module';
      import * as hook from '@dpskit/contracts/allocation';
      const cache = createRequire(import.meta.url).cache;
      const before = Object.keys(cache);
      const ok = hook.parseAllocationResponse({ iotHubHostName: 'h' }).ok;
      console.log(JSON.stringify({ before, after: Object.keys(cache), ok }));`;
    const loaded = JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: packageDir, encoding: 'utf8' }),
    ) as { before: string[]; after: string[]; ok: boolean };
    expect(loaded).toEqual({
      before: [],
      after: [realpathSync(`${packageDir}/dist/allocation/webhook-impl.cjs`)],
      ok: true,
    });
  });
});
