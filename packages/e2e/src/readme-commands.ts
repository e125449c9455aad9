// `npm run readme-commands`: the READMEs' command lines, run as written (see readme/plan.ts for
// what runs where and what cannot run here, and why). Exit 1 if any command run does not do what
// its README says. .ci/run runs it after npm test.
import { rm } from 'node:fs/promises';
import { findWorkspaceRoot } from '@dpskit/packaging';
import { placedCommands } from './readme/commands.js';
import type { ReadmeCommand } from './readme/extract.js';
import type { Scenario } from './readme/plan.js';
import {
  azShowToConfig,
  devicesInYourApp,
  inTheRepository,
  inYourApp,
  newWorkFolder,
  ownPolicy,
  type ScenarioContext,
  tutorialByHand,
} from './readme/scenarios.js';

const root = findWorkspaceRoot();
const placed = await placedCommands(root);
const results = new Map<ReadmeCommand, { ok: boolean; detail: string }>();
const where = (c: ReadmeCommand) => `${c.file}:${c.line}`;
const firstLine = (c: ReadmeCommand) => c.text.split('\n')[0]?.replace(/\s*\\$/, ' …');

const work = await newWorkFolder();
const context = (scenario: Scenario): ScenarioContext => ({
  root,
  work,
  commands: placed.filter((p) => 'run' in p.rule.placement && p.rule.placement.run === scenario).map((p) => p.command),
  report(command, ok, detail) {
    results.set(command, { ok, detail });
    console.log(
      `${ok ? '✔' : '✘'} ${where(command)}  ${firstLine(command)}${ok ? '' : `\n    ${detail.replace(/\n/g, '\n    ')}`}`,
    );
  },
});

let failure: unknown;
try {
  console.log('── The tutorial by hand (root README; ports renumbered to free ones, as it allows)');
  await tutorialByHand(context('tutorial-by-hand'));
  console.log('── Your own policy (root README, examples/custom-policy README), APPS in a temporary folder');
  const app = await ownPolicy(context('own-policy'));
  console.log('── In your app (dpskit installed from the tarballs): --help, ready files, state commands');
  await inYourApp(context('in-your-app'), app);
  console.log('── Devices in your app: the emulator and device-sim READMEs (ports renumbered to free ones)');
  await devicesInYourApp(context('devices-in-your-app'), app);
  console.log('── In the repository: the allocator and emulator READMEs');
  await inTheRepository(context('in-the-repository'));
  console.log('── az … show | jq into the emulator config');
  await azShowToConfig(context('az-show-to-config'));
} catch (err) {
  failure = err;
} finally {
  await rm(work, { recursive: true, force: true });
}

const toRun = placed.filter((p) => 'run' in p.rule.placement);
const notRun = toRun.filter((p) => !results.has(p.command));
const failed = [...results.values()].filter((r) => !r.ok).length;
console.log('\n── Not run here');
for (const { command, rule } of placed) {
  const p = rule.placement;
  const why =
    'elsewhere' in p
      ? `run by ${p.elsewhere}`
      : 'notHere' in p
        ? `cannot run here: ${p.notHere}`
        : 'notYet' in p
          ? `not run yet: ${p.notYet}`
          : undefined;
  if (why) console.log(`- ${where(command)}  ${firstLine(command)}\n    ${why}`);
}
console.log(
  `\n${results.size - failed} of ${toRun.length} commands run as written did what their README says; ${failed} failed; ${notRun.length} planned but not reached; ${placed.length - toRun.length} not run here (listed above).`,
);
if (failure) console.error(`\nreadme-commands stopped: ${(failure as Error).stack ?? String(failure)}`);
process.exit(failure || failed > 0 || notRun.length > 0 ? 1 : 0);
