import { availableParallelism } from 'node:os';
import { vitestConfig } from '@dpskit/vitest-config';

// At least two test files at once. Vitest's default is one worker fewer than the CPUs: one on the
// 2-core CI machine, where this package's 150-odd files then ran one after another and were the
// longest part of `npm test`. Its files spend much of their time waiting (on sockets, child
// processes, SQLite busy waits, the SDKs' timers), so a second file runs in those gaps: the whole
// suite 362 s -> 196 s on the same 2-core machine (see the commit). Every file starts its
// emulators on free ports and in its own temporary state folder, so two never meet.
//
// isolate: false: each worker process runs file after file instead of a fresh process per file.
// The files import the emulator, the official SDKs, rhea and better-sqlite3, and with isolation
// every file paid that load again: vitest's `import` time was 270 s of a 359 s run, against 11 s
// without (the suite 341 s -> 106/85 s, see the commit). What isolation guarded against is kept
// out by the files themselves: each makes its own emulators (ports, state folder, log), restores
// the fake timers and spies it installs and the one SDK constant it raises (the fleet test's
// request timeout), and none changes process.env or the working folder; module state shared
// across files (a decoder, caches keyed by object) holds nothing of a test's.
//
// setupFiles: a failed test prints the log its emulators wrote meanwhile (src/testing/failure-log.ts).
export default vitestConfig({
  test: {
    maxWorkers: Math.max(2, availableParallelism() - 1),
    isolate: false,
    setupFiles: ['src/testing/setup-failure-log.ts'],
  },
});
