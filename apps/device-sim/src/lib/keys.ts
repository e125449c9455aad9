import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { createDeviceKeyDeriver, registrationIdProblem } from '@dpskit/contracts';

export interface DeriveKeysOptions {
  groupKey: string;
  /** One JSON object per line (`{"registrationId":…,"derivedKey":…}`) instead of `<id> <key>`. */
  json?: boolean;
}

export interface DeriveKeysReport {
  derived: number;
  /** Lines skipped because they are not valid registration ids. */
  invalid: number;
}

export function formatDerivedKey(registrationId: string, derivedKey: string, json: boolean): string {
  return json ? `${JSON.stringify({ registrationId, derivedKey })}\n` : `${registrationId} ${derivedKey}\n`;
}

const FLUSH_AT = 64 * 1024;

/**
 * The tutorial's key step (PowerShell/openssl HMAC) for any number of ids: reads ids one a line and
 * streams `<id> <derived key>` lines. Output is written in 64 KiB chunks with backpressure, so a
 * million ids cost a million HMACs and little else. Invalid ids are reported through `onInvalid`
 * (with their 1-based line number) and skipped; blank lines are ignored.
 */
export async function deriveKeysFromLines(
  input: Readable,
  output: Writable,
  options: DeriveKeysOptions & { onInvalid?: (line: number, problem: string) => void },
): Promise<DeriveKeysReport> {
  const deriveKey = createDeviceKeyDeriver(options.groupKey);
  const json = options.json ?? false;
  const report: DeriveKeysReport = { derived: 0, invalid: 0 };
  let buffer = '';
  const flush = async () => {
    if (buffer === '') return;
    const chunk = buffer;
    buffer = '';
    if (!output.write(chunk)) await new Promise<void>((resolve) => output.once('drain', resolve));
  };
  let lineNumber = 0;
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  for await (const raw of lines) {
    lineNumber += 1;
    const registrationId = raw.trim();
    if (registrationId === '') continue;
    const problem = registrationIdProblem(registrationId);
    if (problem) {
      report.invalid += 1;
      options.onInvalid?.(lineNumber, problem);
      continue;
    }
    buffer += formatDerivedKey(registrationId, deriveKey(registrationId), json);
    report.derived += 1;
    if (buffer.length >= FLUSH_AT) await flush();
  }
  await flush();
  return report;
}
