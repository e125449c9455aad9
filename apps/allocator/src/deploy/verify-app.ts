/**
 * `node verify-app.js <appDir>`: loads a Functions app as the Node worker would (package.json
 * `main`, each module imported while `@azure/functions-core` records registrations) and prints
 * what it registered as one JSON line. Exit 1 with the reason when a module does not load.
 * The packager runs it in a child process against the staged package.
 */
import { loadFunctionApp } from '../local-host/registry.js';
import { effectiveTrigger } from '../registration/http-function.js';

export interface VerifiedApp {
  functions: Array<{ name: string; methods: string[]; authLevel: string; path: string }>;
  skipped: Array<{ name: string; reason: string }>;
}

async function main(): Promise<void> {
  const appDir = process.argv[2];
  if (!appDir) throw new Error('usage: verify-app.js <appDir>');
  const app = await loadFunctionApp(appDir);
  const result: VerifiedApp = {
    functions: app.definitions.map(effectiveTrigger).map((t) => ({
      name: t.name,
      methods: t.methods,
      authLevel: t.authLevel,
      path: [app.routePrefix, t.route].filter((p) => p !== '').join('/'),
    })),
    skipped: app.skipped,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// Only ever run as a script (the packager imports nothing but the type above).
main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
