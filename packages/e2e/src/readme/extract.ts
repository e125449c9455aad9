// The command lines of a README: what a reader copies from its shell code blocks.

export interface ReadmeCommand {
  /** README path relative to the repository root. */
  file: string;
  /** 1-based line of the command's first line in the README. */
  line: number;
  /** 1-based line of the block's opening fence (commands of one block share it). */
  block: number;
  /** The command as a shell reads it: continuation lines joined with their `\` and newline kept. */
  text: string;
}

export interface FencedBlock {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  /** The block's lines, the indentation common to them removed. */
  lines: string[];
}

const SHELL_LANGS = new Set(['sh', 'bash', 'shell']);

/** Every fenced code block of a Markdown text (``` fences, indented ones in lists included). */
export function fencedBlocks(markdown: string, file: string): FencedBlock[] {
  const blocks: FencedBlock[] = [];
  const lines = markdown.split(/\r?\n/);
  let open: { line: number; lang: string; indent: number; body: string[] } | undefined;
  lines.forEach((text, index) => {
    const fence = /^(\s*)```\s*([\w-]*)\s*$/.exec(text);
    if (!open) {
      if (fence) open = { line: index + 1, lang: fence[2] ?? '', indent: fence[1]?.length ?? 0, body: [] };
      return;
    }
    if (fence && (fence[2] ?? '') === '') {
      blocks.push({ file, line: open.line, lang: open.lang, lines: dedent(open.body) });
      open = undefined;
      return;
    }
    open.body.push(text);
  });
  if (open) throw new Error(`${file}:${open.line}: code block never closed`);
  return blocks;
}

function dedent(lines: string[]): string[] {
  const indents = lines.filter((l) => l.trim() !== '').map((l) => /^\s*/.exec(l)?.[0].length ?? 0);
  const common = indents.length ? Math.min(...indents) : 0;
  return lines.map((l) => l.slice(common));
}

/**
 * The commands of a README's `sh`/`bash`/`shell` blocks: one per logical line (a line ending in `\`
 * continues on the next), comment-only and blank lines left out. Output listings (untagged blocks)
 * are not commands.
 */
export function readmeCommands(markdown: string, file: string): ReadmeCommand[] {
  const commands: ReadmeCommand[] = [];
  for (const block of fencedBlocks(markdown, file)) {
    if (!SHELL_LANGS.has(block.lang)) continue;
    let current: { line: number; parts: string[] } | undefined;
    block.lines.forEach((text, index) => {
      const line = block.line + 1 + index;
      if (!current) {
        if (text.trim() === '' || text.trim().startsWith('#')) return;
        current = { line, parts: [] };
      }
      current.parts.push(text);
      if (!/\\$/.test(text) && !insideQuotes(current.parts.join('\n'))) {
        commands.push({ file, line: current.line, block: block.line, text: current.parts.join('\n') });
        current = undefined;
      }
    });
    if (current) throw new Error(`${file}:${current.line}: a continued line or an open quote ends the block`);
  }
  return commands;
}

/** Whether a shell text ends inside '…' or "…" (the command then goes on on the next line). */
function insideQuotes(text: string): boolean {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote === "'") {
      if (c === "'") quote = undefined;
    } else if (quote === '"') {
      if (c === '\\') i++;
      else if (c === '"') quote = undefined;
    } else if (c === '\\') i++;
    else if (c === "'" || c === '"') quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(text[i - 1] ?? ''))) {
      // a comment runs to the end of its line
      const end = text.indexOf('\n', i);
      if (end === -1) return false;
      i = end;
    }
  }
  return quote !== undefined;
}

/** The JSON blocks of a README, parsed as the reader pastes them (a bare member list gets its braces). */
export function jsonBlocks(markdown: string, file: string): { line: number; value: unknown }[] {
  return fencedBlocks(markdown, file)
    .filter((b) => b.lang === 'json')
    .map((b) => {
      const text = b.lines.join('\n').trim();
      return { line: b.line, value: JSON.parse(text.startsWith('{') || text.startsWith('[') ? text : `{${text}}`) };
    });
}
