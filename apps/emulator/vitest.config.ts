import { availableParallelism } from 'node:os';
import { vitestConfig } from '@dpskit/vitest-config';

// At least two test files at once. Vitest's default is one worker fewer than the CPUs: one on the
// 2-core CI machine, where this package's 150-odd files then ran one after another and were the
// longest part of `npm test`. Its files spend much of their time waiting (on sockets, child
// processes, SQLite busy waits, the SDKs' timers), so a second file runs in those gaps: the whole
// suite 362 s -> 196 s on the same 2-core machine (see the commit). Every file starts its
// emulators on free ports and in its own temporary state folder, so two never meet.
export default vitestConfig({ test: { maxWorkers: Math.max(2, availableParallelism() - 1) } });
