import { expect, it } from 'vitest';
import { failureLogMark, failureLogSince, keepForFailure } from './failure-log.js';

const record = (n: number) => ({ time: '2026-12-05T00:00:00.000Z', level: 'info' as const, event: 'x', msg: `r${n}` });
const printed = (text: string) =>
  text
    .split('\n')
    .slice(1)
    .map((line) => JSON.parse(line).msg);

it('prints the records written since the mark, the last 400 of many, and nothing for none', () => {
  const mark = failureLogMark();
  expect(failureLogSince(mark)).toBe('');
  for (let n = 0; n < 3; n++) keepForFailure(record(n));
  expect(failureLogSince(mark)).toMatch(/^The test emulators' log during this test \(3 records\):\n/);
  expect(printed(failureLogSince(mark))).toEqual(['r0', 'r1', 'r2']);

  // More than the buffer keeps (it trims itself): the newest 400 are printed, the rest counted.
  const many = failureLogMark();
  for (let n = 0; n < 20_000; n++) keepForFailure(record(n));
  const text = failureLogSince(many);
  expect(text.split('\n')[0]).toBe("The test emulators' log during this test (the last 400; 19600 earlier not shown):");
  expect(printed(text)).toEqual(Array.from({ length: 400 }, (_, i) => `r${19_600 + i}`));
});
