import type { Readable, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import {
  createDeviceKeyDeriver,
  linesHaveRegistrationIdCharacters,
  MAX_REGISTRATION_ID_LENGTH,
  registrationIdProblem,
} from '@dpskit/contracts/keys';

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
 * million ids cost a million HMACs and little else: the input is split a chunk at a time (not a
 * `readline` iteration per line). Lines end with LF, CRLF or a lone CR, as `readline` splits them.
 * Invalid ids are reported through `onInvalid` (with their 1-based line number) and skipped; blank
 * lines are ignored.
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
  let lineNumber = 0;

  const line = (raw: string): void => {
    lineNumber += 1;
    // trim() only when an end may be blank (ASCII space/control or any non-ASCII, where Unicode's
    // spaces are): most lines are bare ids.
    const first = raw.charCodeAt(0);
    const last = raw.charCodeAt(raw.length - 1);
    const registrationId = first > 0x20 && first < 0x7f && last > 0x20 && last < 0x7f ? raw : raw.trim();
    if (registrationId === '') return;
    const problem = registrationIdProblem(registrationId);
    if (problem) {
      report.invalid += 1;
      options.onInvalid?.(lineNumber, problem);
      return;
    }
    buffer += formatDerivedKey(registrationId, deriveKey(registrationId), json);
    report.derived += 1;
  };
  // A line of a chunk whose lines all have the rule's characters as they stand (nothing to trim, no
  // CR, not blank): only its length is left to check.
  const idLine = (registrationId: string): void => {
    if (registrationId.length > MAX_REGISTRATION_ID_LENGTH) {
      line(registrationId);
      return;
    }
    lineNumber += 1;
    buffer += formatDerivedKey(registrationId, deriveKey(registrationId), json);
    report.derived += 1;
  };
  // One LF-terminated segment: a CR before the LF belongs to it (CRLF); any other CR ends a line.
  const segment = (text: string): void => {
    if (text.indexOf('\r') === -1) {
      line(text);
      return;
    }
    const parts = (text.endsWith('\r') ? text.slice(0, -1) : text).split('\r');
    for (const part of parts) line(part);
  };
  const flush = async (): Promise<void> => {
    if (buffer === '') return;
    const chunk = buffer;
    buffer = '';
    if (!output.write(chunk)) await new Promise<void>((resolve) => output.once('drain', resolve));
  };

  const decoder = new StringDecoder('utf8');
  let pending = '';
  for await (const chunk of input) {
    const text = pending + (typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer));
    // The usual chunk, ids one a line and nothing else, is checked by one regex over its complete
    // lines (idLine); any other is checked line by line, which names the line. A chunk without CR
    // needs no CR check per line: `line` directly.
    const last = text.lastIndexOf('\n');
    const each =
      last !== -1 && linesHaveRegistrationIdCharacters(text.slice(0, last + 1))
        ? idLine
        : text.indexOf('\r') === -1
          ? line
          : segment;
    let start = 0;
    for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
      each(text.slice(start, end));
      start = end + 1;
      if (buffer.length >= FLUSH_AT) await flush();
    }
    pending = text.slice(start);
  }
  pending += decoder.end();
  if (pending !== '') segment(pending);
  await flush();
  return report;
}
