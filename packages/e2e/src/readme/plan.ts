import type { ReadmeCommand } from './extract.js';

// What becomes of every command line of the READMEs: run by `npm run readme-commands` (in which
// scenario), run elsewhere, or not runnable here, and why. plan.test.ts fails when a README gains a
// command this table does not place, or when a rule no longer matches anything.

/** The READMEs whose commands are checked, relative to the repository root. */
export const READMES = [
  'README.md',
  'apps/allocator/README.md',
  'apps/device-sim/README.md',
  'apps/emulator/README.md',
  'examples/custom-policy/README.md',
] as const;

export type Scenario = 'tutorial-by-hand' | 'own-policy' | 'in-your-app' | 'az-show-to-config';

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
        '.ci/run runs the quick start in a fresh clone with a clean environment (and npm test would run this script recursively)',
    },
  },
  {
    file: 'README.md',
    match: /^ALLOCATOR_FUNCTION_KEY=local-key npm run allocator/,
    placement: { run: 'tutorial-by-hand' },
  },
  { file: 'README.md', match: /^npm run emulator -- start --mqtt-port 8883/, placement: { run: 'tutorial-by-hand' } },
  { file: 'README.md', match: /^export DPS_GROUP_KEY=|^PAYLOAD=/, placement: { run: 'tutorial-by-hand' } },
  {
    file: 'README.md',
    match: /^npm run device-sim -- (register|fleet) .*--provisioning-host localhost/s,
    placement: { run: 'tutorial-by-hand' },
  },
  {
    file: 'README.md',
    match: /^npx pnpm --filter @dpskit\/allocator package/,
    placement: { notYet: "the tutorial app's own deployment package; apps/allocator's deploy test packs and loads it" },
  },
  { file: 'README.md', match: /^(KEY|URL)=\$\(az |^az (?![\s\S]*\| jq )/, placement: { notHere: AZURE } },
  {
    file: 'README.md',
    match: /^export DPS_ID_SCOPE=<|^npm run device-sim -- register --registration-id/,
    placement: { notHere: AGAINST_AZURE },
  },
  {
    file: 'README.md',
    match: /^az iot dps enrollment-group show .* \| jq /s,
    placement: { run: 'az-show-to-config' },
  },
  {
    file: 'README.md',
    match:
      /^APPS=|^npm run build$|^npx pnpm --filter "@dpskit\/allocator\.\.\."|^cp -r examples\/custom-policy|^npm (install|test|run package) +#|^npm start -- --port 7071/,
    placement: { run: 'own-policy' },
  },
  {
    file: 'README.md',
    match: /^npx (dps-emulator|dpskit-allocator) start --.*--ready-file|^timeout 120 sh -c|^node -p 'require/,
    placement: { run: 'in-your-app' },
  },
  { file: 'README.md', match: /^npm install --save-dev @dpskit\//, placement: { notHere: NOT_PUBLISHED } },
  {
    file: 'README.md',
    match: /^npx (dps-emulator start|device-sim|dpskit-allocator) --help$/,
    placement: { run: 'in-your-app' },
  },

  // apps/allocator/README.md
  {
    file: 'apps/allocator/README.md',
    match:
      /pnpm --filter @dpskit\/allocator (start|package|test|bench)|^pnpm --filter @dpskit\/allocator\.\.\. run build/,
    placement: { notYet: 'the tutorial app from its package; `npm run allocator` (root README) runs the same CLI' },
  },
  {
    file: 'apps/allocator/README.md',
    match: /^curl -i -X POST/,
    placement: { notYet: 'needs the allocator started with ALLOCATOR_FUNCTION_KEY and KEY set' },
  },
  {
    file: 'apps/allocator/README.md',
    match: /^cd apps\/allocator$|^cp local\.settings/,
    placement: { notYet: 'preparation for func start' },
  },
  {
    file: 'apps/allocator/README.md',
    match: /^func start/,
    placement: { notHere: 'Azure Functions Core Tools (func) is not installed here' },
  },
  { file: 'apps/allocator/README.md', match: /^RG=|^az |^(KEY|URL)=\$\(az |^WEBHOOK=/, placement: { notHere: AZURE } },

  // apps/device-sim/README.md
  {
    file: 'apps/device-sim/README.md',
    match:
      /^export DPS_(ID_SCOPE|GROUP_KEY|CA_FILE)=[^$]|^npx device-sim (register --provisioning-host|register --transport http --provisioning-host|fleet)/,
    placement: {
      notYet: 'needs the emulator and the allocator on 8883/8443/7071 in the folder where device-sim is installed',
    },
  },
  {
    file: 'apps/device-sim/README.md',
    match: /^export DPS_(ID_SCOPE|GROUP_KEY)=\$\(az /,
    placement: { notHere: AZURE },
  },
  {
    file: 'apps/device-sim/README.md',
    match: /^npx device-sim register --registration-id contoso-(toaster|heatpump)-0\d\d[\s\\]+(--payload|--transport)/,
    placement: { notHere: AGAINST_AZURE },
  },
  {
    file: 'apps/device-sim/README.md',
    match: /^npx device-sim keys derive/,
    placement: { notYet: 'needs DPS_GROUP_KEY exported' },
  },
  {
    file: 'apps/device-sim/README.md',
    match: /^npx device-sim register --registration-id contoso-toaster-007 --device-key/,
    placement: { notHere: AGAINST_AZURE },
  },

  // apps/emulator/README.md
  {
    file: 'apps/emulator/README.md',
    match: /^(npx dps-emulator|npm run emulator --) start --https-port 8443/,
    placement: { notYet: 'MQTT on the default 8883, which the README does not let the reader change' },
  },
  {
    file: 'apps/emulator/README.md',
    match: /^npx dps-emulator start --mqtt-port 0 --https-port 0 --ready-file|^timeout 120 sh -c|^MQTT_PORT=/,
    placement: { run: 'in-your-app' },
  },
  {
    file: 'apps/emulator/README.md',
    match: /^npx dps-emulator (registrations|enrollments) /,
    placement: { run: 'in-your-app' },
  },
  {
    file: 'apps/emulator/README.md',
    match:
      /^dps-emulator start --https-port 443|^export (NODE_EXTRA_CA_CERTS|IOT_PROVISIONING_SERVICE_CONNECTION_STRING)=|^npx mocha/,
    placement: {
      notHere:
        "azure-iot-sdk-node's provisioning/e2e checkout and port 443 (a privileged port); the emulator's service-API tests run those SDK calls instead",
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
