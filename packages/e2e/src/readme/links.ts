import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import GithubSlugger from 'github-slugger';

// The links of the repository's Markdown, checked as a reader follows them: relative links and links
// to this repository on GitHub (the published READMEs link to pages outside their package's `files`
// that way, so that they work on npm too) must name a file of this tree, and a `#fragment` a heading
// or an `<a id>` of that file. Other sites are not fetched (no network in CI for them).

/** Links into this repository written as absolute GitHub URLs (pages, raw files), checked against the working tree. */
const GITHUB_TREE =
  /^https:\/\/(?:github\.com\/dpskit\/dpskit\/(?:blob|tree)\/main|raw\.githubusercontent\.com\/dpskit\/dpskit\/main)\/([^#?]*)(?:#(.*))?$/;

export interface MarkdownLink {
  /** The Markdown file, relative to the repository root. */
  file: string;
  line: number;
  target: string;
}

/** The Markdown files of the tree (tracked or new, not ignored), relative to `root`. */
export function markdownFiles(root: string): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z', '--', '*.md'], {
    cwd: root,
    encoding: 'utf8',
  });
  return out
    .split('\0')
    .filter((f) => f !== '' && existsSync(path.join(root, f)))
    .sort();
}

/** The text lines outside fenced code blocks, with their 1-based numbers. */
function proseLines(markdown: string): { line: number; text: string }[] {
  const lines: { line: number; text: string }[] = [];
  let fence: string | undefined;
  markdown.split(/\r?\n/).forEach((text, index) => {
    const marker = /^\s*(```+|~~~+)/.exec(text)?.[1];
    if (marker) {
      if (fence === undefined) fence = marker;
      else if (marker.startsWith(fence)) fence = undefined;
      return;
    }
    if (fence === undefined) lines.push({ line: index + 1, text });
  });
  return lines;
}

/** Every inline link and image target of a Markdown text: `[text](target)`, `![alt](target "title")`. */
export function markdownLinks(markdown: string, file: string): MarkdownLink[] {
  const links: MarkdownLink[] = [];
  for (const { line, text } of proseLines(markdown)) {
    // A link's brackets inside a code span are code, not a link.
    const prose = text.replace(/(`+)[^`]*?\1/g, '``');
    for (const match of prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      links.push({ file, line, target: match[1] as string });
    }
  }
  return links;
}

/** The fragments a Markdown file answers to: its headings' GitHub slugs and its `<a id>`/`<a name>`s. */
export function anchorsOf(markdown: string): Set<string> {
  const slugger = new GithubSlugger();
  const anchors = new Set<string>();
  for (const { text } of proseLines(markdown)) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(text)?.[1];
    if (heading !== undefined) {
      // GitHub slugs the heading as rendered: a link's text, no HTML tags.
      const rendered = heading.replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/<[^>]+>/g, '');
      anchors.add(slugger.slug(rendered));
    }
    for (const match of text.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(match[1] as string);
  }
  return anchors;
}

/** What is wrong with `link` in the tree at `root`, or undefined when it resolves. */
export function brokenReason(
  root: string,
  link: MarkdownLink,
  anchorCache = new Map<string, Set<string>>(),
): string | undefined {
  const { target } = link;
  let file: string;
  let fragment: string | undefined;
  const onGithub = GITHUB_TREE.exec(target);
  if (onGithub) {
    file = decodeURIComponent(onGithub[1] ?? '');
    fragment = onGithub[2];
  } else if (/^[a-z][a-z0-9+.-]*:/i.test(target)) {
    return undefined; // another site, or mailto: not checked
  } else {
    const hash = target.indexOf('#');
    const pathPart = hash === -1 ? target : target.slice(0, hash);
    fragment = hash === -1 ? undefined : target.slice(hash + 1);
    file =
      pathPart === ''
        ? link.file
        : path.posix.normalize(path.posix.join(path.posix.dirname(link.file), decodeURIComponent(pathPart)));
    if (file.startsWith('..')) return `${pathPart} leaves the repository`;
  }
  const absolute = path.join(root, file);
  if (!existsSync(absolute)) return `${file} does not exist`;
  if (fragment === undefined || fragment === '') return undefined;
  if (statSync(absolute).isDirectory() || !file.endsWith('.md')) return `#${fragment} on ${file}, not a Markdown file`;
  let anchors = anchorCache.get(file);
  if (!anchors) {
    anchors = anchorsOf(readFileSync(absolute, 'utf8'));
    anchorCache.set(file, anchors);
  }
  return anchors.has(decodeURIComponent(fragment).toLowerCase()) ? undefined : `${file} has no heading #${fragment}`;
}

/** Every broken link of the tree's Markdown, as `file:line: target (reason)`. */
export function brokenLinks(root: string): string[] {
  const anchorCache = new Map<string, Set<string>>();
  const broken: string[] = [];
  for (const file of markdownFiles(root)) {
    for (const link of markdownLinks(readFileSync(path.join(root, file), 'utf8'), file)) {
      const reason = brokenReason(root, link, anchorCache);
      if (reason) broken.push(`${file}:${link.line}: ${link.target} (${reason})`);
    }
  }
  return broken;
}
