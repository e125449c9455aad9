#!/usr/bin/env node
/**
 * `dpskit-allocator`: `start [appDir]` serves a Functions app locally (the default command),
 * `package [appDir]` writes its deployment zip. Each command lives beside what it drives.
 */
const argv = process.argv.slice(2);
const args = argv[0] === '--' ? argv.slice(1) : argv;
if (args[0] === 'package') {
  const { runPackageCli } = await import('./deploy/app-package-cli.js');
  process.exitCode = await runPackageCli(args.slice(1));
} else {
  // Reads process.argv itself; a leading `start` is accepted there.
  await import('./local-host/cli.js');
}
