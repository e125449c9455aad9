import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { effectiveTrigger } from '../registration/http-function.js';
import { loadFunctionApp, PACKAGE_ROOT, resolveMainModules } from './registry.js';

describe('loadFunctionApp', () => {
  it('maps package.json main (dist/functions/*.js) onto the running code and skips tests', async () => {
    const modules = await resolveMainModules(PACKAGE_ROOT);
    expect(modules.map((m) => path.relative(PACKAGE_ROOT, m))).toEqual([path.join('src', 'functions', 'allocate.ts')]);
  });

  it('collects what the modules register with app.http and the route prefix of host.json', async () => {
    const app = await loadFunctionApp();
    expect(app.routePrefix).toBe('api');
    expect(app.definitions.map(effectiveTrigger)).toEqual([
      { name: 'allocate', route: 'allocate', methods: ['POST'], authLevel: 'function' },
    ]);
  });

  it('returns the same definitions when loaded twice (modules are evaluated once)', async () => {
    const [a, b] = await Promise.all([loadFunctionApp(), loadFunctionApp()]);
    expect(a.definitions[0]).toBe(b.definitions[0]);
  });
});
