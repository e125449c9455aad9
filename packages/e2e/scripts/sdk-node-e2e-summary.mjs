#!/usr/bin/env node
// The counts of sdk-node-e2e.sh: mocha's JSON results of each azure-iot-sdk-node test file, per
// file and, for _provisioning_e2e.js, per enrollment kind and transport (the test titles name the
// transport: "… register it using Mqtt, …"), then every failure with its message. Exit status 1 when
// a file has a failure (a failed hook included), ran no test, or left no results (mocha crashed or
// was stopped by the script's timeout).
//
//   node sdk-node-e2e-summary.mjs <label>=<mocha JSON file> …
import { readFileSync } from 'node:fs';

/** @param {string} file */
function readResults(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** @param {{ fullTitle: string }} test */
function transportOf(test) {
  return /\busing (\w+),/.exec(test.fullTitle)?.[1];
}

/** @param {{ fullTitle: string, title: string }} test */
function suiteOf(test) {
  const suite = test.fullTitle.slice(0, test.fullTitle.length - test.title.length).trim();
  return suite.replace(/^E2E Device Provisioning /, '');
}

let failed = false;
for (const arg of process.argv.slice(2)) {
  const at = arg.indexOf('=');
  const label = arg.slice(0, at);
  const results = readResults(arg.slice(at + 1));
  if ('error' in results) {
    console.log(`${label}: no results (${results.error})`);
    failed = true;
    continue;
  }
  const { passes, failures, pending } = results.stats;
  console.log(
    `${label}: ${passes} passed, ${failures} failed, ${pending} pending${passes + failures === 0 ? ' (no test ran)' : ''}`,
  );
  /** @type {Map<string, { passed: number, failed: number }>} */
  const rows = new Map();
  for (const [list, outcome] of [
    [results.passes, 'passed'],
    [results.failures, 'failed'],
  ]) {
    for (const test of list) {
      const transport = transportOf(test);
      if (!transport) continue;
      const key = `${suiteOf(test)} | ${transport}`;
      const row = rows.get(key) ?? { passed: 0, failed: 0 };
      row[outcome] += 1;
      rows.set(key, row);
    }
  }
  for (const [key, row] of rows) {
    console.log(`  ${row.failed ? 'FAIL' : 'pass'}  ${key}${row.failed ? ` (${row.failed} failed)` : ''}`);
  }
  for (const test of results.failures) {
    console.log(`  failed: ${test.fullTitle}\n    ${String(test.err?.message ?? '').replace(/\n/g, '\n    ')}`);
  }
  if (failures > 0 || passes === 0) failed = true;
}
process.exitCode = failed ? 1 : 0;
