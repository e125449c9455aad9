import type { AllocatorLogRecord } from '@dpskit/allocator';

/** Back to the level names the portal shows (the allocator's records use dpskit's). */
const LEVEL: Record<AllocatorLogRecord['level'], string> = {
  debug: 'Debug',
  info: 'Information',
  warn: 'Warning',
  error: 'Error',
};

/**
 * The allocator's log as the portal's Logs pane shows a Function's: the host's Executing/Executed
 * lines around what the function logged, `time [Level] message: fields`.
 */
export function logsPane(records: readonly AllocatorLogRecord[]): string[] {
  return records
    .filter((r) => r.source === 'function' || r.msg.startsWith('Executing ') || r.msg.startsWith('Executed '))
    .map((r) => {
      const keys = r.data ? Object.keys(r.data) : [];
      // A single field is shown bare, as `Request.Body: {...}` is in the tutorial's log.
      const shown = keys.length === 1 ? r.data?.[keys[0] as string] : r.data;
      const fields = keys.length > 0 ? `: ${typeof shown === 'string' ? shown : JSON.stringify(shown)}` : '';
      return `${r.time.replace('Z', '')} [${LEVEL[r.level]}] ${r.msg}${fields}`;
    });
}

export interface Styler {
  heading(text: string): string;
  ok(text: string): string;
  bad(text: string): string;
  dim(text: string): string;
}

export function styler(color: boolean): Styler {
  const wrap = (open: string, close: string) => (text: string) => (color ? `\x1b[${open}m${text}\x1b[${close}m` : text);
  return { heading: wrap('1', '22'), ok: wrap('32', '39'), bad: wrap('31', '39'), dim: wrap('2', '22') };
}

export function section(style: Styler, title: string): string {
  const rule = '─'.repeat(Math.max(4, 78 - title.length - 4));
  return `\n${style.heading(`── ${title} ${rule}`)}`;
}

/** The command a user would type, with the group key left in an environment variable. */
export function commandLine(args: readonly string[]): string {
  return ['device-sim', ...args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`))].join(
    ' ',
  );
}
