import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type ReadmeCommand, readmeCommands } from './extract.js';
import { type PlanRule, placementOf, READMES } from './plan.js';

export interface PlacedCommand {
  command: ReadmeCommand;
  rule: PlanRule;
}

/** Every command of the READMEs with its rule; throws, naming them, for commands no rule places. */
export async function placedCommands(root: string): Promise<PlacedCommand[]> {
  const placed: PlacedCommand[] = [];
  const unplaced: ReadmeCommand[] = [];
  for (const file of READMES) {
    const markdown = await readFile(path.join(root, file), 'utf8');
    for (const command of readmeCommands(markdown, file)) {
      const rule = placementOf(command);
      if (rule) placed.push({ command, rule });
      else unplaced.push(command);
    }
  }
  if (unplaced.length > 0) {
    throw new Error(
      `README commands without a place in packages/e2e/src/readme/plan.ts:\n${unplaced
        .map((c) => `  ${c.file}:${c.line}: ${c.text}`)
        .join('\n')}`,
    );
  }
  return placed;
}
