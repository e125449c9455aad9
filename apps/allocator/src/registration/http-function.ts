import type { HttpFunctionOptions, HttpMethod, InvocationContextInit } from '@azure/functions';

const BRAND = Symbol.for('dpskit.allocator.httpFunction');

export type AuthLevel = 'anonymous' | 'function' | 'admin';

/**
 * An HTTP function as a module declares it: the exact options object the module passes to
 * `app.http(name, options)`. Outside the Functions host `app.http` registers nothing (the
 * `@azure/functions` package falls back to "test mode"), so function modules also export this
 * definition and the local host serves what they export.
 */
export interface HttpFunctionDefinition {
  readonly [BRAND]: true;
  readonly name: string;
  readonly options: HttpFunctionOptions;
}

export function httpFunction(name: string, options: HttpFunctionOptions): HttpFunctionDefinition {
  return { [BRAND]: true, name, options };
}

/** Brand check rather than `instanceof`-like identity, so that separately loaded copies still match. */
export function isHttpFunctionDefinition(value: unknown): value is HttpFunctionDefinition {
  return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true;
}

/** The trigger as the Functions host sees it, with the defaults `app.http` applies. */
export interface EffectiveHttpTrigger {
  name: string;
  route: string;
  methods: HttpMethod[];
  authLevel: AuthLevel;
}

export function effectiveTrigger(definition: HttpFunctionDefinition): EffectiveHttpTrigger {
  const { options, name } = definition;
  return {
    name,
    route: options.route ?? name,
    methods: (options.methods ?? ['GET', 'POST']).map((m) => m.toUpperCase() as HttpMethod),
    authLevel: options.authLevel ?? 'anonymous',
  };
}

/**
 * The options a Functions host gives an invocation's context for this trigger (`context.options`).
 * A new object for each invocation, as the host gives: a function may change its own.
 */
export function httpTriggerOptions(trigger: EffectiveHttpTrigger): NonNullable<InvocationContextInit['options']> {
  return {
    trigger: {
      type: 'httpTrigger',
      name: 'httpTrigger',
      authLevel: trigger.authLevel,
      methods: trigger.methods,
      route: trigger.route,
    },
  };
}
