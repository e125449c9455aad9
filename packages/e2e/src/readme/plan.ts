import type { ReadmeCommand } from './extract.js';

// What becomes of every command line of the READMEs: run by `npm run readme-commands` (in which
// scenario), run elsewhere, or not runnable here, and why. plan.test.ts fails when a README gains a
// command this table does not place, or when a rule no longer matches anything.

/**
 * The READMEs whose commands are checked, relative to the repository root, and the reference pages
 * they link to that hold commands (every Markdown file with an `sh` block is here: readme/plan.test.ts).
 */
export const READMES = [
  'README.md',
  'apps/allocator/README.md',
  'apps/device-sim/README.md',
  'apps/emulator/README.md',
  'apps/emulator/docs/testing.md',
  'examples/custom-policy/README.md',
  'packages/e2e/README.md',
] as const;

export type Scenario =
  | 'tutorial-by-hand'
  | 'own-policy'
  | 'in-your-app'
  | 'devices-in-your-app'
  | 'in-the-repository'
  | 'az-show-to-config';

export type Placement =
  | { run: Scenario }
  | { elsewhere: string }
  | { notHere: string }
  /** Runnable here but not yet run by the script: listed in its output as a gap, never silently. */
  | { notYet: string };

export interface PlanRule {
  file: (typeof READMES)[number];
  /** Matched against the command's text (continuation lines included). */
  match: RegExp;
  placement: Placement;
}

const AZURE = 'Azure CLI against a real subscription (Azure is unreachable here)';
const AGAINST_AZURE = 'registers against real DPS (global.azure-devices-provisioning.net; unreachable here)';
const NOT_PUBLISHED =
  'installs @dpskit/* from the npm registry, where dpskit is not published yet (the packaging test installs the packed tarballs instead)';

export const PLAN: readonly PlanRule[] = [
  // README.md
  {
    file: 'README.md',
    match: /^npm run setup && npm run demo$|^npm test$/,
    placement: {
      elsewhere:
        '.ci/run, which runs the quick start in a fresh clone with a clean environment (and npm test would run this script recursively)',
    },
  },
  {
    file: 'README.md',
    match:
      /^ALLOCATOR_FUNCTION_KEY=local-key npm run allocator|^npm run emulator -- start --mqtt-port 8883|^export DPS_GROUP_KEY=|^PAYLOAD=|^npm run device-sim -- (register|fleet) .*--provisioning-host localhost/s,
    placement: { run: 'tutorial-by-hand' },
  },
  {
    file: 'README.md',
    match: /^npx pnpm --filter @dpskit\/allocator package/,
    placement: { run: 'in-the-repository' },
  },
  { file: 'README.md', match: /^(KEY|URL)=\$\(az |^az (?![\s\S]*\| jq )/, placement: { notHere: AZURE } },
  {
    file: 'README.md',
    match: /^export DPS_ID_SCOPE=<|^npm run device-sim -- register --registration-id/,
    placement: { notHere: AGAINST_AZURE },
  },
  { file: 'README.md', match: /^az iot dps enrollment-group show .* \| jq /s, placement: { run: 'az-show-to-config' } },
  {
    file: 'README.md',
    match:
      /^APPS=|^npm run build$|^npx pnpm --filter-prod "@dpskit\/allocator\.\.\."|^cp -r examples\/custom-policy|^npm (install|test|run package) +#|^npm start -- --port 7071/,
    placement: { run: 'own-policy' },
  },
  {
    file: 'README.md',
    match:
      /^npx (dps-emulator|dpskit-allocator) start --.*--ready-file|^timeout 120 sh -c|^node -p 'require|^npx (dps-emulator start|device-sim|dpskit-allocator) --help$/,
    placement: { run: 'in-your-app' },
  },
  { file: 'README.md', match: /^npm install --save-dev @dpskit\//, placement: { notHere: NOT_PUBLISHED } },

  // apps/allocator/README.md
  {
    file: 'apps/allocator/README.md',
    match:
      /^(ALLOCATOR_FUNCTION_KEY=my-key )?npm run allocator -- --port 7071|^KEY=my-key|^curl -i -X POST|^npx pnpm --filter "@dpskit\/allocator\.\.\." run build|^npx pnpm --filter @dpskit\/allocator package/,
    placement: { run: 'in-the-repository' },
  },
  {
    file: 'apps/allocator/README.md',
    match: /^cd apps\/allocator$|^cp local\.settings|^func start/,
    placement: {
      notHere: 'Azure Functions Core Tools (func) is not installed here; these lines prepare and run func start',
    },
  },
  {
    file: 'apps/allocator/README.md',
    match: /^npx pnpm --filter @dpskit\/allocator (test|bench)/,
    placement: { elsewhere: 'npm test (the tests) and npm run bench (the benchmark, kept out of CI by design)' },
  },
  { file: 'apps/allocator/README.md', match: /^RG=|^az |^(KEY|URL)=\$\(az |^WEBHOOK=/, placement: { notHere: AZURE } },

  // apps/device-sim/README.md
  {
    file: 'apps/device-sim/README.md',
    match:
      /^export DPS_(ID_SCOPE|GROUP_KEY|CA_FILE)=[^$]|^npx device-sim (register (--transport [\w-]+ )?--provisioning-host|fleet --count 1000|keys derive|certs (create|thumbprint))/,
    placement: { run: 'devices-in-your-app' },
  },
  {
    file: 'apps/device-sim/README.md',
    match: /^npx device-sim (register|fleet) --stay /,
    placement: {
      elsewhere:
        'packages/e2e/src/stay.test.ts: register --stay and fleet --stay against the emulator, called with azure-iothub (the devices stay until Ctrl-C, which this script does not send)',
    },
  },
  {
    file: 'apps/device-sim/README.md',
    match: /^export DPS_(ID_SCOPE|GROUP_KEY)=\$\(az /,
    placement: { notHere: AZURE },
  },
  {
    file: 'apps/device-sim/README.md',
    match: /^npx device-sim (register|fleet) [\s\S]*--cert /,
    placement: {
      notYet:
        'needs an emulator config enrolling certs/intermediate.pem, a step the README gives in prose (config file or service API), not as a command; the emulator and device-sim X.509 tests provision those certificates',
    },
  },
  {
    file: 'apps/device-sim/README.md',
    match:
      /^npx device-sim register --registration-id contoso-(toaster|heatpump)-0\d\d[\s\\]+(--payload|--transport|--device-key)/,
    placement: { notHere: AGAINST_AZURE },
  },

  // apps/emulator/README.md
  {
    file: 'apps/emulator/README.md',
    match: /^npx dps-emulator start --mqtt-port 8883 --amqp-port 5671 --https-port 8443/,
    placement: { run: 'devices-in-your-app' },
  },
  {
    file: 'apps/emulator/README.md',
    match: /^npm run emulator -- start --mqtt-port 8883 --amqp-port 5671 --https-port 8443/,
    placement: { run: 'in-the-repository' },
  },
  {
    file: 'apps/emulator/README.md',
    match:
      /^npx dps-emulator start --mqtt-port 0 --amqp-port 0 --https-port 0 --ready-file|^timeout 120 sh -c|^MQTT_PORT=|^npx dps-emulator (registrations|enrollments) /,
    placement: { run: 'in-your-app' },
  },
  {
    file: 'apps/emulator/docs/testing.md',
    match: /^packages\/e2e\/scripts\/sdk-node-e2e\.sh /,
    placement: {
      notHere:
        "needs root (unshare --net --mount --pid for ports 8883/443/5671 and a private /etc/hosts), azure-iot-sdk-node's source and the npm registry; run by hand (in npm test the emulator's own tests drive the same SDK packages)",
    },
  },

  // examples/custom-policy/README.md
  {
    file: 'examples/custom-policy/README.md',
    match: /^npm install (--save-dev )?@/,
    placement: { notHere: NOT_PUBLISHED },
  },
  {
    file: 'examples/custom-policy/README.md',
    match: /^npm (start -- --port 7071|test|run package)\b/,
    placement: { run: 'own-policy' },
  },
  { file: 'examples/custom-policy/README.md', match: /^az functionapp/, placement: { notHere: AZURE } },

  // packages/e2e/README.md
  {
    file: 'packages/e2e/README.md',
    match: /^pnpm --filter @dpskit\/e2e test\b/,
    placement: { elsewhere: 'npm test (and this script runs from the same package)' },
  },
];

/** The rule that places `command`, or undefined. Throws when two rules place it. */
export function placementOf(command: ReadmeCommand): PlanRule | undefined {
  const rules = PLAN.filter((rule) => rule.file === command.file && rule.match.test(command.text));
  if (rules.length > 1) {
    throw new Error(
      `${command.file}:${command.line}: placed by ${rules.length} rules (${rules.map((r) => r.match).join(', ')})`,
    );
  }
  return rules[0];
}
