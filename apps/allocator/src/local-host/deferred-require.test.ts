import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { DEFERRED_BY_AZURE_FUNCTIONS, deferredModule, deferringRequire } from './deferred-require.js';

/** The part of `cookie` (no types installed) that @azure/functions uses. */
type Cookie = { serialize(name: string, value: string, options?: { httpOnly?: boolean }): string };

// Node's own require, from where @azure/functions requires its dependencies (pnpm's layout: its
// dependencies resolve only from there), with each call counted.
const libraryFile = createRequire(import.meta.url).resolve('@azure/functions');
function countingRequire(): { require: NodeJS.Require; calls: string[] } {
  const real = createRequire(libraryFile);
  const calls: string[] = [];
  const require = Object.assign((id: string): unknown => {
    calls.push(id);
    return real(id);
  }, real) as NodeJS.Require;
  return { require, calls };
}

describe('deferringRequire', () => {
  it("requires @azure/functions' two deferred dependencies on first use: then the very module Node gives", () => {
    const { require, calls } = countingRequire();
    const deferring = deferringRequire(require, DEFERRED_BY_AZURE_FUNCTIONS);
    const cookie = deferring('cookie') as Cookie;
    const base = deferring('@azure/functions-extensions-base') as {
      ResourceFactoryResolver: { getInstance(): unknown };
    };
    expect(calls).toEqual([]);

    const real = createRequire(libraryFile);
    expect(cookie.serialize).toBe((real('cookie') as Cookie).serialize);
    expect(cookie.serialize('a', 'b', { httpOnly: true })).toBe('a=b; HttpOnly');
    // One instance: the extensions' singleton registry is the one an extension package registers in.
    const realBase = real('@azure/functions-extensions-base') as typeof base;
    expect(base.ResourceFactoryResolver.getInstance()).toBe(realBase.ResourceFactoryResolver.getInstance());
    expect(calls).toEqual(['cookie', '@azure/functions-extensions-base']);
  });

  it('passes every other id to require at once, and keeps resolve and the cache', () => {
    const { require, calls } = countingRequire();
    const deferring = deferringRequire(require, DEFERRED_BY_AZURE_FUNCTIONS);
    expect(deferring('node:path')).toBe(createRequire(libraryFile)('node:path'));
    expect(calls).toEqual(['node:path']);
    expect(deferring.resolve('cookie')).toBe(require.resolve('cookie'));
    expect(deferring.cache).toBe(require.cache);
  });
});

describe('deferredModule', () => {
  it('loads once, on the first read, and answers reads, in, keys, descriptors and writes from the module', () => {
    let loads = 0;
    const module = { exported: 1 };
    // What a CommonJS module compiled by TypeScript has: a non-configurable __esModule marker.
    Object.defineProperty(module, '__esModule', { value: true });
    const standIn = deferredModule(() => {
      loads += 1;
      return module;
    }) as typeof module & { __esModule: boolean; added?: number };
    expect(loads).toBe(0);

    expect(standIn.exported).toBe(1);
    expect(standIn.__esModule).toBe(true);
    expect('exported' in standIn).toBe(true);
    expect(Reflect.ownKeys(standIn)).toEqual(['exported', '__esModule']);
    expect(Object.keys(standIn)).toEqual(['exported']);
    expect(Object.getOwnPropertyDescriptor(standIn, '__esModule')?.value).toBe(true);
    expect(Object.getPrototypeOf(standIn)).toBe(Object.prototype);
    standIn.added = 2;
    expect((module as { added?: number }).added).toBe(2);
    expect(loads).toBe(1);
  });

  it('throws where the module fails to load: at first use, every use', () => {
    const standIn = deferredModule(() => {
      throw new Error("Cannot find module 'gone'");
    }) as { f?: unknown };
    expect(() => standIn.f).toThrow("Cannot find module 'gone'");
    expect(() => standIn.f).toThrow("Cannot find module 'gone'");
  });
});
