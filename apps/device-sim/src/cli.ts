#!/usr/bin/env node
import { main } from './cli/main.js';

// First Ctrl-C: the command stops cleanly (fleet prints its summary). Second: leave at once.
const handlers = new Set<() => void>();
let interrupts = 0;
process.on('SIGINT', () => {
  interrupts += 1;
  if (interrupts > 1) process.exit(130);
  for (const handler of handlers) handler();
});
// SIGTERM is listened to only while a command asks (register --stay: leave the hub, exit 0); a
// second one, or one with nobody listening, ends the process as SIGTERM's default would.
const terminateHandlers = new Set<() => void>();
let terminations = 0;
const onSigterm = () => {
  terminations += 1;
  if (terminations > 1 || terminateHandlers.size === 0) process.exit(143);
  for (const handler of terminateHandlers) handler();
};
// `device-sim keys derive ... | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

try {
  process.exitCode = await main(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    onInterrupt: (handler) => {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    onTerminate: (handler) => {
      if (terminateHandlers.size === 0) process.on('SIGTERM', onSigterm);
      terminateHandlers.add(handler);
      return () => {
        terminateHandlers.delete(handler);
        if (terminateHandlers.size === 0 && terminations === 0) process.off('SIGTERM', onSigterm);
      };
    },
  });
} catch (err) {
  process.stderr.write(
    `device-sim: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
}
// SDK timers of a cancelled registration may outlive the command; do not wait for them.
setTimeout(() => process.exit(), 1000).unref();
