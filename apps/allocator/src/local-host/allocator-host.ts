import { type LogLevel, levelEnabled } from '@dpskit/node-kit';
import { createAllocateHandler } from '../handler/allocate.js';
import { isoNow } from '../log/clock.js';
import { fromFunctionsLevel } from '../log/from-context.js';
import type { AllocatorLogRecord } from '../log/record.js';
import type { AllocationPolicy } from '../policy/policy.js';
import { effectiveTrigger } from '../registration/http-function.js';
import { functionKeyProblem, generateFunctionKey } from './function-key.js';
import { applyLocalSettings } from './local-settings.js';
import { FunctionAppError, loadFunctionApp, PACKAGE_ROOT } from './registry.js';
import { type HostLimits, startFunctionsHost } from './server.js';

export const DEFAULT_PORT = 7071;
/** The name (and route) the tutorial's webhook function is registered under. */
export const ALLOCATE_FUNCTION = 'allocate';

export interface AllocatorHostOptions {
  /**
   * The Functions app folder to serve (its package.json `main`, host.json, local.settings.json),
   * as `func start` serves the current folder. Default: the allocator's own tutorial app.
   */
  appDir?: string;
  /**
   * The function whose URL is `webhookUrl`: default `allocate` when the app has it, else the
   * app's only HTTP function that takes POST.
   */
  functionName?: string;
  /** Default 7071 like `func start`; 0 picks a free port. */
  port?: number;
  /** Interface to listen on; default both loopback addresses (see README). */
  host?: string;
  /** The function key; generated when absent. */
  functionKey?: string;
  /**
   * Put local.settings.json `Values` into `process.env` (variables already set win), as Core
   * Tools does. Default: true when `appDir` is given.
   */
  localSettings?: boolean;
  /** Receives every structured log line, from the host and from the functions, at `logLevel` or above. */
  log?: (record: AllocatorLogRecord) => void;
  /**
   * The least severe lines `log` receives (default `info`, as the Functions host logs Information
   * and above by default). Lines below it are not even built.
   */
  logLevel?: LogLevel;
  /** Serve the webhook function with this policy instead of the app's own. */
  policy?: AllocationPolicy;
  /** Connection bounds (headers and request timeouts, keep-alive, connection cap); see README "Limits". */
  limits?: Partial<HostLimits>;
}

export interface ServedFunction {
  name: string;
  methods: string[];
  authLevel: string;
  /** `http://localhost:PORT/{routePrefix}/{route}` (route parameters as written). */
  url: string;
}

export interface AllocatorHost {
  /** `http://localhost:PORT` */
  url: string;
  /** `${functionUrl}?code=KEY`: what an enrollment group's `webhookUrl` needs. */
  webhookUrl: string;
  functionKey: string;
  port: number;
  /** Every HTTP function the app registered. */
  functions: ServedFunction[];
  close(): Promise<void>;
}

/**
 * Serves a Functions app locally, without Core Tools: the modules named by its package.json
 * `main`, on host.json's route prefix, with the function key enforced.
 */
export async function startAllocatorHost(options: AllocatorHostOptions = {}): Promise<AllocatorHost> {
  const port = options.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Invalid port ${String(port)}: expected an integer from 0 to 65535.`);
  }
  const functionKey = options.functionKey ?? generateFunctionKey();
  const problem = functionKeyProblem(functionKey);
  if (problem) throw new TypeError(`Invalid functionKey: ${problem}.`);
  const log = options.log ?? (() => {});
  const logLevel = options.logLevel ?? 'info';
  const hostLog = (level: LogLevel, msg: string, data?: Record<string, unknown>): void => {
    if (!levelEnabled(level, logLevel)) return;
    const record: AllocatorLogRecord = { time: isoNow(), level, source: 'host', msg };
    if (data) record.data = data;
    try {
      log(record);
    } catch {
      // a broken sink must not stop the host
    }
  };

  const appDir = options.appDir ?? PACKAGE_ROOT;
  if (options.localSettings ?? options.appDir !== undefined) {
    const settings = await applyLocalSettings(appDir);
    if (settings.file) {
      hostLog('info', `App settings from ${settings.file}`, {
        applied: settings.applied,
        keptFromEnvironment: settings.skipped,
      });
    }
  }
  const app = await loadFunctionApp(appDir, (level, _category, message) => hostLog(fromFunctionsLevel(level), message));
  for (const { name, reason } of app.skipped) hostLog('warn', `Function '${name}' is not served: ${reason}.`);
  if (app.definitions.length === 0) {
    throw new FunctionAppError(
      `${app.root} registers no HTTP function: its modules (${app.modules.join(', ')}) must call app.http() or registerAllocationFunction() when they load.`,
    );
  }
  const webhook = pickWebhookFunction(app.definitions.map(effectiveTrigger), options.functionName, app.root);
  const running = await startFunctionsHost({
    definitions: app.definitions,
    routePrefix: app.routePrefix,
    functionKey,
    port,
    ...(options.host !== undefined ? { host: options.host } : {}),
    log,
    logLevel,
    ...(options.policy ? { handlers: { [webhook.name]: createAllocateHandler(options.policy) } } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
  });
  const functionUrl = (route: string): string =>
    `${running.url}/${[app.routePrefix, route].filter((p) => p !== '').join('/')}`;
  const trigger = running.triggers.find((t) => t.name === webhook.name)!;
  return {
    url: running.url,
    webhookUrl: `${functionUrl(trigger.route)}?code=${encodeURIComponent(functionKey)}`,
    functionKey,
    port: running.port,
    functions: running.triggers.map((t) => ({
      name: t.name,
      methods: t.methods,
      authLevel: t.authLevel,
      url: functionUrl(t.route),
    })),
    close: () => running.close(),
  };
}

function pickWebhookFunction(
  triggers: ReadonlyArray<{ name: string; methods: string[] }>,
  wanted: string | undefined,
  root: string,
): { name: string } {
  const names = triggers.map((t) => t.name).join(', ');
  if (wanted !== undefined) {
    const found = triggers.find((t) => t.name.toLowerCase() === wanted.toLowerCase());
    if (!found) throw new FunctionAppError(`${root} has no function "${wanted}" (it has: ${names}).`);
    return found;
  }
  const allocate = triggers.find((t) => t.name.toLowerCase() === ALLOCATE_FUNCTION);
  if (allocate) return allocate;
  const posts = triggers.filter((t) => t.methods.includes('POST'));
  if (posts.length === 1) return posts[0]!;
  throw new FunctionAppError(
    `${root} has ${posts.length === 0 ? 'no function that takes POST' : `several functions that take POST (${posts.map((t) => t.name).join(', ')})`}: name the webhook with functionName (--function). Functions: ${names}.`,
  );
}
