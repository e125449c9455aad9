import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { modulesResolved } from '@dpskit/vitest-config/module-trace';
import { describe, expect, it } from 'vitest';
import { PACKAGE_DIR } from './deploy/package.js';

// What a Functions app that imports '@dpskit/allocator' (registerAllocationFunction, a policy) loads at
// its cold start, locally and on Azure: the built library entry, imported under a module hook that records
// every ES module Node resolves. The contracts' main entry (zod and every wire schema) is not among them:
// certificatePolicy reads distinguished names through '@dpskit/contracts/x509' (issue #13: the import
// took 63-70 ms less CPU, paired both orders, 20 of 20 each, load 13).
describe("the library entry's start", () => {
  it("imports neither zod nor the contracts' main entry", async () => {
    const library = pathToFileURL(path.join(PACKAGE_DIR, 'dist', 'index.js')).href;
    const { modules, stdout, code } = await modulesResolved([
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(library)}); console.log(typeof m.registerAllocationFunction, typeof m.certificatePolicy);`,
    ]);
    expect([code, stdout.trim()]).toEqual([0, 'function function']);
    // The control: the library's own modules and the contract's allocation entry were traced.
    expect(modules).toContain(library);
    expect(modules.some((url) => url.endsWith('/contracts/dist/allocation/webhook.js'))).toBe(true);
    expect(modules.filter((url) => /\/zod\/|\/contracts\/dist\/index\.js$/.test(url))).toEqual([]);
  });
});
