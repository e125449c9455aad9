/**
 * The packages `@azure/functions` requires when it loads but uses only inside functions that the
 * local host never calls on the way to its first answer: `cookie` (the worker-side HTTP proxy's
 * `setCookies`; the host writes cookies itself, node-http.ts) and `@azure/functions-extensions-base`
 * (SDK-type bindings' `ResourceFactoryResolver`, read when such a binding's data is converted). Node
 * resolving them through pnpm's links (`@azure/functions-extensions-base` through its `exports`) and
 * loading them was ~3 ms of main-thread CPU of each cold start on the 2-core machine (issue #13).
 */
export const DEFERRED_BY_AZURE_FUNCTIONS: ReadonlySet<string> = new Set(['cookie', '@azure/functions-extensions-base']);

/**
 * `require`, except that each id in `deferred` answers a stand-in for the module that requires it
 * (from the same place, with the same `require`) the first time anything of it is read. The module
 * is then the one Node's `require` gives anyone else (one instance: its singletons are shared). Only
 * for a library that reads its dependency's exports when it calls them, not when it loads: what it
 * keeps is the stand-in. A dependency that is missing then fails at first use, not at load.
 */
export function deferringRequire(require: NodeJS.Require, deferred: ReadonlySet<string>): NodeJS.Require {
  const wrapped = (id: string): unknown =>
    deferred.has(id) ? deferredModule(() => require(id) as object) : require(id);
  return Object.assign(wrapped, require);
}

/**
 * A stand-in for the object `load()` returns, loaded on first use. Property reads, `in`, key listing,
 * descriptors and writes go to the loaded object. The stand-in's own target stays empty, so that no
 * descriptor it reports can break a Proxy invariant (each is reported configurable).
 */
export function deferredModule(load: () => object): object {
  let loaded: object | undefined;
  const target = (): object => {
    loaded ??= load();
    return loaded;
  };
  return new Proxy(
    {},
    {
      get: (_, key) => Reflect.get(target(), key),
      has: (_, key) => Reflect.has(target(), key),
      ownKeys: () => Reflect.ownKeys(target()),
      getOwnPropertyDescriptor: (_, key) => {
        const descriptor = Reflect.getOwnPropertyDescriptor(target(), key);
        return descriptor && { ...descriptor, configurable: true };
      },
      set: (_, key, value) => Reflect.set(target(), key, value),
      getPrototypeOf: () => Reflect.getPrototypeOf(target()),
    },
  );
}
