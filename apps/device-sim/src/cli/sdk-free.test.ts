import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const DIST = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist');

/** The Azure IoT SDK modules a fresh Node process has loaded after importing `module` (a dist path). */
async function sdkModulesLoadedBy(module: string): Promise<string[]> {
  // The SDK packages are CommonJS: whatever of them is loaded, even through `import`, is in require.cache.
  const script = `
    import { createRequire } from 'node:module';
    await import(${JSON.stringify(pathToFileURL(join(DIST, module)).href)});
    const cache = createRequire(import.meta.url).cache;
    console.log(JSON.stringify(Object.keys(cache).filter((p) => /[\\\\/]azure-iot-/.test(p))));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
  return JSON.parse(stdout) as string[];
}

describe('the command line layer', () => {
  it('parses arguments and reports usage errors without loading the SDK', async () => {
    expect(await sdkModulesLoadedBy('cli/args.js')).toEqual([]);
    expect(await sdkModulesLoadedBy('cli/main.js')).toEqual([]);
  });

  it('(control) the library does load it', async () => {
    expect((await sdkModulesLoadedBy('index.js')).length).toBeGreaterThan(0);
  });
});
