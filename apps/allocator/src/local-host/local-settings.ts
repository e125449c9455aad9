import { readFile } from 'node:fs/promises';
import path from 'node:path';

export interface AppliedSettings {
  /** The settings file, when the app has one. */
  file: string | undefined;
  /** Names set from `Values`. */
  applied: string[];
  /** Names already set in the environment, which wins (as with Core Tools). */
  skipped: string[];
}

/**
 * Core Tools' `func start` puts the `Values` of the app's local.settings.json into the
 * environment of the worker, so function code reads its app settings from `process.env` as it
 * does in Azure. Variables already set in the environment are kept, as Core Tools keeps them.
 * Values are never logged: they are often secrets.
 */
export async function applyLocalSettings(
  appDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<AppliedSettings> {
  const file = path.join(appDir, 'local.settings.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { file: undefined, applied: [], skipped: [] };
    throw new Error(`${file} could not be read: ${err instanceof Error ? err.message : String(err)}`);
  }
  let settings: unknown;
  try {
    settings = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const values = (settings as { Values?: unknown } | null)?.Values;
  if (values === undefined) return { file, applied: [], skipped: [] };
  if (typeof values !== 'object' || values === null || Array.isArray(values)) {
    throw new Error(`${file}: "Values" must be an object of setting names to strings.`);
  }
  const applied: string[] = [];
  const skipped: string[] = [];
  for (const [name, value] of Object.entries(values)) {
    if (typeof value !== 'string') {
      throw new Error(`${file}: Values.${name} must be a string, not ${value === null ? 'null' : typeof value}.`);
    }
    if (env[name] !== undefined) {
      skipped.push(name);
      continue;
    }
    env[name] = value;
    applied.push(name);
  }
  return { file, applied, skipped };
}
