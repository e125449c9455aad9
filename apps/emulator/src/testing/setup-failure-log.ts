import { beforeEach } from 'vitest';
import { failureLogMark, failureLogSince } from './failure-log.js';

// Vitest setup file (vitest.config.ts): every test that fails prints the log its emulators wrote
// while it ran (those whose log is the default of testEmulatorOptions, or keepForFailure).
beforeEach(({ onTestFailed }) => {
  const mark = failureLogMark();
  onTestFailed(() => {
    const text = failureLogSince(mark);
    if (text !== '') process.stderr.write(`${text}\n`);
  });
});
