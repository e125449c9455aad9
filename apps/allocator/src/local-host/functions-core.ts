import Module from 'node:module';
import type { HttpFunctionOptions, HttpHandler, HttpMethod } from '@azure/functions';
import { type AuthLevel, type HttpFunctionDefinition, httpFunction } from '../registration/http-function.js';

/**
 * The `@azure/functions` package registers functions through `@azure/functions-core`, a module
 * that only the Functions worker provides (it answers `require('@azure/functions-core')` itself).
 * Without it, `app.http()` runs in "test mode" and registers nothing. The local host provides the
 * same module the same way, so that it sees exactly what an app registers with `app.http`,
 * `app.get`, `app.post`, … whether or not the app exports anything.
 */

/** One `registerFunction` call, as the worker receives it. */
export interface CoreRegistration {
  name: string;
  bindings: Record<string, CoreBinding>;
  callback: (...args: unknown[]) => unknown;
}

export interface CoreBinding {
  type?: string;
  direction?: string;
  route?: string;
  methods?: string[];
  authLevel?: string;
  [key: string]: unknown;
}

export type CoreLog = (level: string, category: string, message: string) => void;

interface Collector {
  registrations: CoreRegistration[];
  log: CoreLog;
}

/**
 * What every copy of this module in a process shares (on `globalThis`): the package has an ES module
 * build and a CommonJS one (dist/cjs), and a process can load both, say an ES module test starting
 * a host whose app `require`s `@dpskit/allocator`, or two hosts of either build. `@azure/functions`
 * keeps the first core API it is given, and Node evaluates an app's module once per process, so the
 * collector, the queue of loads and what each module registered must be one for all copies
 * (the dual package hazard: Node's docs, "Dual CommonJS/ES module packages").
 */
interface ProcessState {
  collector: Collector | undefined;
  installed: boolean;
  queue: Promise<unknown>;
  coreApi: object;
  /** Registrations by entry module (registry.ts). */
  registrationsByModule: Map<string, Promise<CoreRegistration[]>>;
}
const STATE = Symbol.for('@dpskit/allocator: local host functions-core 1');
const shared = globalThis as { [STATE]?: ProcessState };
shared[STATE] ??= {
  collector: undefined,
  installed: false,
  queue: Promise.resolve(),
  coreApi: createCoreApi(),
  registrationsByModule: new Map(),
};
const state: ProcessState = shared[STATE];

/** Registrations by entry module, for the process's lifetime, shared by every copy of the host (see ProcessState). */
export const registrationsByModule = state.registrationsByModule;

function createCoreApi(): object {
  return {
    version: '3.10.1-dpskit-local-host',
    hostVersion: '4.0.0-dpskit-local-host',
    setProgrammingModel(_model: unknown): void {
      // The local host calls handlers with its own HttpRequest/InvocationContext (invocation-objects.ts).
    },
    getProgrammingModel(): undefined {
      return undefined;
    },
    registerFunction(
      metadata: { name: string; bindings?: Record<string, CoreBinding> },
      callback: CoreRegistration['callback'],
    ) {
      // Outside an app load (e.g. a test importing a function module itself) there is nothing to serve it.
      state.collector?.registrations.push({ name: metadata.name, bindings: metadata.bindings ?? {}, callback });
      return { dispose() {} };
    },
    registerHook(hookName: string, _callback: unknown) {
      state.collector?.log(
        'warning',
        'system',
        `The local host does not run app.hook.${hookName} hooks; the hook is ignored.`,
      );
      return { dispose() {} };
    },
    log(level: string, category: string, message: string): void {
      state.collector?.log(level, category, message);
    },
    Disposable: class {
      readonly #dispose: () => void;
      constructor(dispose: () => void) {
        this.#dispose = dispose;
      }
      dispose(): void {
        this.#dispose();
      }
    },
  };
}

/**
 * Jest's `jest` object: Jest's module loader runs every module (packages too) in a wrapper function
 * with `jest` among its parameters; anywhere else the name is not defined.
 */
declare const jest:
  | { doMock?: (moduleName: string, factory: () => unknown, options: { virtual: boolean }) => unknown }
  | undefined;

/**
 * Makes `require('@azure/functions-core')` answer the local host's core API, as the worker does.
 * Under Node, by wrapping `Module.prototype.require`. Under Jest (the CommonJS build, which Jest's
 * loader runs), the app and `@azure/functions` are required through Jest's own loader, which never
 * calls Node's: there the same answer is a virtual mock of the module (`jest.doMock(name, factory,
 * { virtual: true })`, Jest's documented way to provide a module that does not exist), which holds
 * for every module of the test file's registry. Without it `@azure/functions` finds no worker and
 * registers nothing ("test mode").
 */
export function installFunctionsCore(): void {
  if (typeof jest !== 'undefined' && typeof jest?.doMock === 'function') {
    jest.doMock('@azure/functions-core', () => state.coreApi, { virtual: true });
  }
  if (state.installed) return;
  state.installed = true;
  const proto = Module.prototype as unknown as { require: (id: string) => unknown };
  proto.require = new Proxy(proto.require, {
    apply(target, thisArg, args: unknown[]) {
      if (args[0] === '@azure/functions-core') return state.coreApi;
      return Reflect.apply(target, thisArg, args);
    },
  });
}

/**
 * Runs `load` (which imports an app's modules) and returns what it registered. Loads are
 * serialized: registrations go to whichever load is running.
 */
export function collectRegistrations(log: CoreLog, load: () => Promise<void>): Promise<CoreRegistration[]> {
  installFunctionsCore();
  const run = async (): Promise<CoreRegistration[]> => {
    const own: Collector = { registrations: [], log };
    state.collector = own;
    try {
      await load();
    } finally {
      state.collector = undefined;
    }
    return own.registrations;
  };
  const result = state.queue.then(run, run);
  state.queue = result.catch(() => {});
  return result;
}

/** The HTTP trigger of a registration in the shape `app.http` was given, or a reason it is not one. */
export function toHttpDefinition(registration: CoreRegistration): HttpFunctionDefinition | { skipped: string } {
  const trigger = Object.values(registration.bindings).find(
    (b) => b.direction === 'in' && typeof b.type === 'string' && b.type.toLowerCase().endsWith('trigger'),
  );
  if (!trigger) return { skipped: 'it has no trigger binding' };
  if (trigger.type?.toLowerCase() !== 'httptrigger') {
    return { skipped: `its trigger is ${trigger.type} (the local host serves HTTP triggers only)` };
  }
  const options: HttpFunctionOptions = {
    handler: registration.callback as HttpHandler,
    ...(typeof trigger.route === 'string' ? { route: trigger.route } : {}),
    ...(Array.isArray(trigger.methods) ? { methods: trigger.methods as HttpMethod[] } : {}),
    ...(isAuthLevel(trigger.authLevel) ? { authLevel: trigger.authLevel } : {}),
  };
  return httpFunction(registration.name, options);
}

function isAuthLevel(value: unknown): value is AuthLevel {
  return value === 'anonymous' || value === 'function' || value === 'admin';
}
