import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { findWorkspaceRoot } from '@dpskit/packaging';
import { describe, expect, it } from 'vitest';
import { placedCommands } from './commands.js';
import { jsonBlocks, readmeCommands } from './extract.js';
import { markdownFiles } from './links.js';
import { PLAN, READMES } from './plan.js';

const root = findWorkspaceRoot();

describe('README command extraction', () => {
  it('takes sh blocks (in lists too), joins continued lines, skips comments and output listings', () => {
    const markdown = [
      'Text `npm test` in prose is not a command.',
      '```sh',
      '# a comment',
      'npm run emulator -- start --mqtt-port 8883 \\',
      '  --webhook-url "http://localhost:7071/api/allocate?code=k"',
      '',
      "npm test   # trailing comment stays, it's fine",
      "curl -d '{",
      '  "a": 1}\'',
      '```',
      '1. A step:',
      '',
      '   ```sh',
      '   cp -r a b && cd b',
      '   ```',
      '```',
      'Provisioning Status: not a command',
      '```',
      '```json',
      '"dependencies": { "a": "1" }',
      '```',
    ].join('\n');
    expect(readmeCommands(markdown, 'X.md')).toEqual([
      {
        file: 'X.md',
        line: 4,
        block: 2,
        text: 'npm run emulator -- start --mqtt-port 8883 \\\n  --webhook-url "http://localhost:7071/api/allocate?code=k"',
      },
      { file: 'X.md', line: 7, block: 2, text: "npm test   # trailing comment stays, it's fine" },
      { file: 'X.md', line: 8, block: 2, text: 'curl -d \'{\n  "a": 1}\'' },
      { file: 'X.md', line: 14, block: 13, text: 'cp -r a b && cd b' },
    ]);
    expect(jsonBlocks(markdown, 'X.md')).toEqual([{ line: 19, value: { dependencies: { a: '1' } } }]);
  });

  it('refuses a block that is never closed or ends in a continued line', () => {
    expect(() => readmeCommands('```sh\nnpm test\n', 'X.md')).toThrow('X.md:1: code block never closed');
    expect(() => readmeCommands('```sh\nnpm test \\\n```\n', 'X.md')).toThrow(
      'X.md:2: a continued line or an open quote ends the block',
    );
  });
});

describe('the plan of README commands (packages/e2e/src/readme/plan.ts)', () => {
  it('places every command of every README: run by npm run readme-commands, elsewhere, or not here with a reason', async () => {
    const placed = await placedCommands(root);
    expect(placed.length).toBeGreaterThan(40);
    for (const { command, rule } of placed) {
      const reason = Object.values(rule.placement)[0] as string;
      expect(reason.length, `${command.file}:${command.line}`).toBeGreaterThan(3);
    }
  });

  it('reads every Markdown file of the repository that has shell commands (a page a README links to included)', async () => {
    const withCommands = [];
    for (const file of markdownFiles(root)) {
      if (readmeCommands(await readFile(path.join(root, file), 'utf8'), file).length > 0) withCommands.push(file);
    }
    expect(withCommands.filter((f) => !(READMES as readonly string[]).includes(f))).toEqual([]);
  });

  it('has no rule that matches nothing (a README line changed or went away)', async () => {
    const commands = (
      await Promise.all(READMES.map(async (f) => readmeCommands(await readFile(path.join(root, f), 'utf8'), f)))
    ).flat();
    const unused = PLAN.filter((rule) => !commands.some((c) => c.file === rule.file && rule.match.test(c.text)));
    expect(unused.map((r) => `${r.file} ${r.match}`)).toEqual([]);
  });
});
