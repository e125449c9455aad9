import { createAllocateHandler } from '../handler/allocate.js';
import type { AllocatorLogRecord } from '../log/record.js';
import type { AllocationPolicy } from '../policy/policy.js';
import { functionKeyProblem, generateFunctionKey } from './function-key.js';
import { loadFunctionApp } from './registry.js';
import { startFunctionsHost } from './server.js';

export const DEFAULT_PORT = 7071;
/** The name (and route) the webhook function is registered under. */
export const ALLOCATE_FUNCTION = 'allocate';

export interface AllocatorHostOptions {
  /** Default 7071 like `func start`; 0 picks a free port. */
  port?: number;
  /** Interface to listen on; default both loopback addresses (see README). */
  host?: string;
  /** The function key; generated when absent. */
  functionKey?: string;
  /** Receives every structured log line, from the host and from the function. */
  log?: (record: AllocatorLogRecord) => void;
  /** Serve the `allocate` function with this policy instead of the tutorial's. */
  policy?: AllocationPolicy;
}

export interface AllocatorHost {
  /** `http://localhost:PORT` */
  url: string;
  /** `${url}/api/allocate?code=KEY`: what an enrollment group's `webhookUrl` needs. */
  webhookUrl: string;
  functionKey: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Serves the allocator's registered functions locally, without Core Tools: the modules named by
 * package.json `main`, on host.json's route prefix, with the function key enforced.
 */
export async function startAllocatorHost(options: AllocatorHostOptions = {}): Promise<AllocatorHost> {
  const port = options.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Invalid port ${String(port)}: expected an integer from 0 to 65535.`);
  }
  const functionKey = options.functionKey ?? generateFunctionKey();
  const problem = functionKeyProblem(functionKey);
  if (problem) throw new TypeError(`Invalid functionKey: ${problem}.`);

  const app = await loadFunctionApp();
  const allocate = app.definitions.find((d) => d.name === ALLOCATE_FUNCTION);
  if (!allocate) throw new Error(`No "${ALLOCATE_FUNCTION}" function is exported by ${app.modules.join(', ')}.`);

  const running = await startFunctionsHost({
    definitions: app.definitions,
    routePrefix: app.routePrefix,
    functionKey,
    port,
    ...(options.host !== undefined ? { host: options.host } : {}),
    log: options.log ?? (() => {}),
    ...(options.policy ? { handlers: { [ALLOCATE_FUNCTION]: createAllocateHandler(options.policy) } } : {}),
  });
  const trigger = running.triggers.find((t) => t.name === ALLOCATE_FUNCTION)!;
  const path = [app.routePrefix, trigger.route].filter((p) => p !== '').join('/');
  return {
    url: running.url,
    webhookUrl: `${running.url}/${path}?code=${encodeURIComponent(functionKey)}`,
    functionKey,
    port: running.port,
    close: () => running.close(),
  };
}
