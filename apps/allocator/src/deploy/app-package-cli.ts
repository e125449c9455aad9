import path from 'node:path';
import { parseCommandLine, parseOptions, UsageError } from '@dpskit/node-kit';
import { createAppPackage } from './app-package.js';

export const PACKAGE_USAGE = `Usage: dpskit-allocator package [appDir] [--out <dir>] [--no-zip]

Writes the zip-deploy package of an Azure Functions app (Node.js v4 model), default appDir ".":
  <out>/app/     the app's files (minus .funcignore), production node_modules as real folders
  <out>/app.zip  the same, for az functionapp deployment source config-zip
Build the app first (e.g. npm run build): package.json "main" must match the built files.
Before writing, the package is loaded under plain Node from an empty folder; a package whose
modules fail to load or that registers no HTTP function is refused (exit 1).

Options:
      --out <dir>  where to write (default <appDir>/deploy)
      --no-zip     write <out>/app only
  -h, --help       show this help`;

const OPTIONS = {
  out: { type: 'string' },
  'no-zip': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parsePackageArgs(argv: readonly string[]) {
  const parsed = parseOptions(argv, { options: OPTIONS, allowPositionals: true, command: 'package' });
  if (parsed.positionals.length > 1) {
    throw new UsageError(`unexpected argument '${parsed.positionals[1]}'`, { command: 'package' });
  }
  return parsed;
}

/** `dpskit-allocator package …`; returns the exit code (0 ok, 1 failed, 2 bad usage). */
export async function runPackageCli(argv: readonly string[]): Promise<number> {
  const parsed = parseCommandLine('dpskit-allocator', process.stderr, () => parsePackageArgs(argv));
  if (!parsed.ok) return parsed.exitCode;
  const { values, positionals } = parsed.value;
  if (values.help) {
    process.stdout.write(`${PACKAGE_USAGE}\n`);
    return 0;
  }
  const cwd = process.cwd();
  try {
    const result = await createAppPackage({
      appDir: path.resolve(cwd, positionals[0] ?? '.'),
      ...(values.out !== undefined ? { outDir: path.resolve(cwd, values.out) } : {}),
      zip: !values['no-zip'],
      log: (line) => process.stdout.write(`${line}\n`),
    });
    process.stdout.write(`\nDeployment package: ${result.appDir} (${result.fileCount} files)\n`);
    if (result.zipFile) process.stdout.write(`Zip: ${result.zipFile} (${result.zipBytes} bytes)\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`dpskit-allocator package: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
