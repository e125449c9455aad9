import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_DIR } from '../deploy/package.js';

/**
 * The build bundles the allocator's own app (scripts/bundle-app.mjs): each module package.json `main`
 * names is one ES module, so that the local host's cold start imports one module of the app instead
 * of eight. cli-bundle.test.ts serves it through the built CLI; this holds its shape.
 */
describe('the tutorial app as built (dist/functions/*.js)', () => {
  const file = path.join(PACKAGE_DIR, 'dist', 'functions', 'allocate.js');

  it("is one module: only packages and Node's modules are imported", async () => {
    const source = await readFile(file, 'utf8');
    const specifiers = [...source.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["'];?$/gm)].map(
      (m) => m[1]!,
    );
    expect(specifiers).toContain('@dpskit/contracts/allocation');
    expect(specifiers.filter((s) => s.startsWith('.'))).toEqual([]);
    // No import(): the app's code is all inside.
    expect(source).not.toMatch(/\bimport\(/);
    // One @azure/functions for the host and the app: the package is required, never bundled in.
    expect(source).toContain('createRequire(import.meta.url)("@azure/functions")');
  });

  it('maps back to the TypeScript sources', async () => {
    const source = await readFile(file, 'utf8');
    expect(source.trimEnd().endsWith('//# sourceMappingURL=allocate.js.map')).toBe(true);
    const map = JSON.parse(await readFile(`${file}.map`, 'utf8')) as { sources: string[] };
    expect(map.sources).toEqual(
      expect.arrayContaining([
        '../../src/functions/allocate.ts',
        '../../src/handler/allocate.ts',
        '../../src/policy/tutorial.ts',
      ]),
    );
  });
});
