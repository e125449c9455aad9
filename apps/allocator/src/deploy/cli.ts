#!/usr/bin/env node
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createDeploymentPackage } from './package.js';

const USAGE = `Usage: pnpm --filter @dpskit/allocator package [-- --out <dir>] [--no-zip]

Writes the self-contained Azure Functions deployment package:
  <out>/app/           compiled code, host.json, package.json, production node_modules
  <out>/allocator.zip  the same, for zip deploy
Default <out>: apps/allocator/deploy`;

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let values: { out?: string | undefined; 'no-zip'?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv[0] === '--' ? argv.slice(1) : argv,
      options: { out: { type: 'string' }, 'no-zip': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const result = await createDeploymentPackage({
    ...(values.out !== undefined ? { outDir: path.resolve(process.env.INIT_CWD ?? process.cwd(), values.out) } : {}),
    zip: !values['no-zip'],
    log: (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(`\nDeployment package: ${result.appDir} (${result.fileCount} files)\n`);
  if (result.zipFile) process.stdout.write(`Zip: ${result.zipFile} (${result.zipBytes} bytes)\n`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
