#!/usr/bin/env node
import { runCli } from './cli/run.js';

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`dps-emulator: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
