import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findWorkspaceRoot } from '@dpskit/packaging';
import { afterAll, describe, expect, it } from 'vitest';
import { anchorsOf, brokenLinks, brokenReason, markdownFiles, markdownLinks } from './links.js';

const root = findWorkspaceRoot();

describe('Markdown links', () => {
  it('finds inline links and images outside code, and the anchors GitHub gives headings', () => {
    const markdown = [
      '# Title',
      'See [the hub](#the-linked-iot-hubs) and ![a](docs/a.png "A") and `[not](a-link)`.',
      '```sh',
      '# not a heading [nor](a-link)',
      '```',
      '## The linked IoT hubs',
      '### Your own tests with the official SDKs: `emulatorAgent`',
      '### Certificate issuance (`csr` → `issuedCertificateChain`)',
      '### Serving across cores (`--workers n`)',
      '## The linked IoT hubs',
      '<a id="answers-from-the-headers"></a>**Answers from the headers.**',
      '## [Linked](https://example.com) heading',
    ].join('\n');
    expect(markdownLinks(markdown, 'X.md').map((l) => [l.line, l.target])).toEqual([
      [2, '#the-linked-iot-hubs'],
      [2, 'docs/a.png'],
      [12, 'https://example.com'],
    ]);
    expect([...anchorsOf(markdown)]).toEqual([
      'title',
      'the-linked-iot-hubs',
      'your-own-tests-with-the-official-sdks-emulatoragent',
      'certificate-issuance-csr--issuedcertificatechain',
      'serving-across-cores---workers-n',
      'the-linked-iot-hubs-1',
      'answers-from-the-headers',
      'linked-heading',
    ]);
  });

  const tree = mkdtempSync(path.join(tmpdir(), 'dpskit-links-'));
  afterAll(() => rmSync(tree, { recursive: true, force: true }));

  it('resolves relative links and github.com/dpskit/dpskit/blob/main links in the tree, fragments included', () => {
    mkdirSync(path.join(tree, 'apps/x/docs'), { recursive: true });
    writeFileSync(path.join(tree, 'apps/x/README.md'), '# X\n## Quick start\n');
    writeFileSync(path.join(tree, 'apps/x/docs/limits.md'), '# Limits\n');
    const from = (target: string) => brokenReason(tree, { file: 'apps/x/docs/limits.md', line: 1, target });
    expect(from('../README.md#quick-start')).toBeUndefined();
    expect(from('#limits')).toBeUndefined();
    expect(from('https://github.com/dpskit/dpskit/blob/main/apps/x/README.md#quick-start')).toBeUndefined();
    expect(from('https://github.com/dpskit/dpskit/tree/main/apps/x/docs')).toBeUndefined();
    expect(from('https://example.com/nowhere')).toBeUndefined();
    expect(from('https://raw.githubusercontent.com/dpskit/dpskit/main/apps/x/docs/limits.md')).toBeUndefined();
    expect(from('https://raw.githubusercontent.com/dpskit/dpskit/main/docs/images/gone.png')).toBe(
      'docs/images/gone.png does not exist',
    );
    expect(from('../README.md#limits')).toBe('apps/x/README.md has no heading #limits');
    expect(from('https://github.com/dpskit/dpskit/blob/main/apps/x/docs/gone.md')).toBe(
      'apps/x/docs/gone.md does not exist',
    );
    expect(from('../../../../outside.md')).toBe('../../../../outside.md leaves the repository');
  });

  it('every link of the repository Markdown resolves (relative, or to this repository on GitHub)', () => {
    expect(markdownFiles(root)).toContain('apps/emulator/README.md');
    expect(brokenLinks(root)).toEqual([]);
  });
});
