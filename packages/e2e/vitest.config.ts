import { vitestConfig } from '@dpskit/vitest-config';

// isolate: false: the one worker (on 2 cores) runs file after file instead of a fresh process per
// file, so the emulator, the SDKs, playwright-core and better-sqlite3 are imported once, not per
// file: vitest's summed `import` time 38-42 s -> 8-13 s (ABBA, load 18-26, 78/78 every run; see the
// commit). What isolation guarded against is kept out by the files themselves, as in the emulator's
// suite: each starts its own emulators, allocators and child processes on its own ports and state
// folders and stops them; none changes process.env, the working folder, fake timers or a spy; the
// harness modules hold no state of a test's.
export default vitestConfig({ test: { isolate: false } });
