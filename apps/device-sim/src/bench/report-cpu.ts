import { writeFileSync } from 'node:fs';

// Preloaded (`node --import dist/bench/report-cpu.js …`) into the keys bench's child processes: at
// exit, writes the process's own CPU time (user + system, ms) to $DPSKIT_BENCH_CPU_FILE. On a shared
// machine a child's wall time includes the time others' processes held the cores; its CPU time does not.
const file = process.env.DPSKIT_BENCH_CPU_FILE;
if (file) {
  process.on('exit', () => {
    const { user, system } = process.cpuUsage();
    writeFileSync(file, String((user + system) / 1000));
  });
}
