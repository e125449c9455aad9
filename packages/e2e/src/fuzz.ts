import { formatFuzzSummary, fuzzProblems, memoryProblems, runFuzz } from './fuzz/run.js';

// `npm run fuzz [-- --runs N --seed S]`: long malformed-input runs against every surface, outside
// CI (`npm test` runs a bounded sample of the same generators). Exit 1 if anything was found.
const args = process.argv.slice(2);
const value = (flag: string, fallback: number) => {
  const i = args.indexOf(flag);
  const n = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`fuzz: ${flag} must be a whole number >= 1\n`);
    process.exit(2);
  }
  return n;
};
if (!(globalThis as { gc?: unknown }).gc) {
  process.stderr.write('fuzz: run with node --expose-gc (npm run fuzz does) to measure memory\n');
}
const summary = await runFuzz({
  runs: value('--runs', 10_000),
  seed: value('--seed', Date.now() % 1_000_000),
  log: (line) => process.stderr.write(`${line}\n`),
});
process.stdout.write(`${formatFuzzSummary(summary)}\n`);
const problems = [...fuzzProblems(summary), ...memoryProblems(summary)];
for (const problem of problems) process.stdout.write(`PROBLEM: ${problem}\n`);
process.exit(problems.length ? 1 : 0);
