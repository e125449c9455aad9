import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '@dpskit/emulator';
import { userEnv, workspaceNativePrebuilds } from '@dpskit/packaging';
import { firmwareAllocationBody, serveAppFolder } from '../harness/app-host.js';
import { extractZip } from '../harness/unzip.js';
import type { ReadmeCommand } from './extract.js';
import { jsonBlocks } from './extract.js';
import { type CommandRun, freePort, runSession, startServer, withoutComment } from './shell.js';

/** What a scenario is handed: its README commands, in README order, and where to report. */
export interface ScenarioContext {
  root: string;
  commands: readonly ReadmeCommand[];
  /** Records that a README command ran, and whether it did what the README says. */
  report(command: ReadmeCommand, ok: boolean, detail: string): void;
  /** A folder outside the repository for this run, removed afterwards. */
  work: string;
}

/** The commands of `ctx` matching `pattern` (at least one, or the README changed under the plan). */
function pick(ctx: ScenarioContext, pattern: RegExp, file = 'README.md'): ReadmeCommand[] {
  const found = ctx.commands.filter((c) => c.file === file && pattern.test(c.text));
  if (found.length === 0) throw new Error(`no command in ${file} matches ${pattern}: the README changed`);
  return found;
}

function one(ctx: ScenarioContext, pattern: RegExp, file = 'README.md'): ReadmeCommand {
  const [first, ...more] = pick(ctx, pattern, file);
  if (more.length > 0) throw new Error(`${more.length + 1} commands in ${file} match ${pattern}`);
  return first as ReadmeCommand;
}

function judge(
  ctx: ScenarioContext,
  command: ReadmeCommand,
  run: CommandRun | undefined,
  expected: { code?: number; output?: RegExp[] } = {},
): void {
  if (!run) {
    ctx.report(command, false, 'did not run');
    return;
  }
  const code = expected.code ?? 0;
  const missing = (expected.output ?? []).filter((p) => !p.test(run.output));
  const ok = run.code === code && missing.length === 0;
  ctx.report(
    command,
    ok,
    ok
      ? `exit ${run.code}`
      : `exit ${run.code} (expected ${code})${missing.length ? `, output lacks ${missing.join(', ')}` : ''}\n${run.output.slice(-4000)}`,
  );
}

/** Lines the README lets the reader renumber ("pick free ones if 7071, 8883, 5671 or 8443 are taken"). */
function renumber(text: string, ports: Record<string, number>): string {
  return text.replace(/\b(7071|8883|5671|8443)\b/g, (port) => String(ports[port] ?? port));
}

/** Root README, "The tutorial by hand, in three terminals". */
export async function tutorialByHand(ctx: ScenarioContext): Promise<void> {
  const ports = {
    '7071': await freePort(),
    '8883': await freePort(),
    '5671': await freePort(),
    '8443': await freePort(),
  };
  const env = userEnv();
  const allocatorCommand = one(ctx, /npm run allocator/);
  const emulatorCommand = one(ctx, /npm run emulator -- start/);
  const allocator = await startServer(renumber(allocatorCommand.text, ports), {
    cwd: ctx.root,
    env,
    ready: /api\/allocate/,
  });
  try {
    ctx.report(allocatorCommand, true, `serving on ${ports['7071']}`);
    const emulator = await startServer(renumber(emulatorCommand.text, ports), {
      cwd: ctx.root,
      env,
      ready: /"event":"started"|DPS emulator running/,
    });
    try {
      ctx.report(emulatorCommand, true, `serving on ${ports['8883']} (MQTT) and ${ports['8443']} (HTTPS)`);
      const devices = ctx.commands.filter(
        (c) => c.file === 'README.md' && c !== allocatorCommand && c !== emulatorCommand,
      );
      const { runs } = await runSession(
        devices.map((c) => renumber(c.text, ports)),
        { cwd: ctx.root, env },
      );
      devices.forEach((command, i) => {
        const run = runs[i];
        if (/contoso-toaster-007/.test(command.text)) {
          judge(ctx, command, run, {
            output: [/Registration Information received from service: contoso-toasters-hub-1098/],
          });
        } else if (/contoso-heatpump-088/.test(command.text)) {
          judge(ctx, command, run, { code: 1, output: [/Custom allocation failed with status code: 400/] });
        } else if (/ fleet /.test(command.text)) {
          judge(ctx, command, run, {
            output: [/1000 requested, 1000 completed/, /assigned +500/, /failed +400207 +500/],
          });
        } else judge(ctx, command, run);
      });
    } finally {
      await emulator.stop();
    }
  } finally {
    await allocator.stop();
  }
}

/** Root README, "Your own policy" (and the example README's commands run in the same app). Returns the app folder. */
export async function ownPolicy(ctx: ScenarioContext): Promise<string> {
  const apps = path.join(ctx.work, 'apps');
  const app = path.join(apps, 'my-allocator');
  // APPS: the README's "any folder outside this repository"; the native binding the workspace built,
  // offered to better-sqlite3's own install script (prebuild-install's local prebuilds) instead of a compile.
  const prebuilds = workspaceNativePrebuilds(path.join(ctx.work, 'prebuilds'), ctx.root);
  const env = userEnv({ APPS: apps, ...prebuilds.env });

  const setup = pick(ctx, /^APPS=|^npm run build$|^npx pnpm --filter-prod "@dpskit\/allocator\.\.\."|^cp -r examples/);
  const first = await runSession(
    setup.map((c) => c.text),
    { cwd: ctx.root, env },
  );
  for (const [i, command] of setup.entries()) judge(ctx, command, first.runs[i]);

  // The README's package.json change, pasted as it says.
  const readme = await readFile(path.join(ctx.root, 'README.md'), 'utf8');
  const change = jsonBlocks(readme, 'README.md').find((b) => JSON.stringify(b.value).includes('dpskit-packs'));
  if (!change) throw new Error('README.md: the package.json change (a JSON block naming dpskit-packs) is gone');
  const manifestFile = path.join(app, 'package.json');
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as Record<string, unknown>;
  await writeFile(manifestFile, `${JSON.stringify({ ...manifest, ...(change.value as object) }, null, 2)}\n`);

  // Both READMEs show `npm test` and `npm run package` for this app (with different notes): each
  // runs once, in README order, and is judged for both.
  const steps = [
    ...pick(ctx, /^npm (install|test|run package)\b/),
    ...pick(ctx, /^npm (test|run package)\b/, 'examples/custom-policy/README.md'),
  ];
  const distinct = [...new Set(steps.map((c) => withoutComment(c.text)))];
  const second = await runSession(distinct, { cwd: app, env });
  for (const command of steps) {
    const expected = /^npm test/.test(command.text)
      ? { output: [/^# fail 0$/m, /assigns firmware 2\.x to the current hub/] }
      : /^npm run package/.test(command.text)
        ? { output: [/allocate: \[POST\] \/api\/allocate \(function\)/] }
        : {};
    judge(ctx, command, second.runs[distinct.indexOf(withoutComment(command.text))], expected);
  }

  // "a deployable package that loads its functions under plain Node": the zip, unpacked as zip
  // deploy does into an empty folder, served by the app's installed dpskit-allocator.
  const wwwroot = path.join(ctx.work, 'wwwroot');
  await mkdir(wwwroot);
  await extractZip(path.join(app, 'deploy', 'app.zip'), wwwroot);
  const served = await serveAppFolder(
    path.join(app, 'node_modules', '@dpskit', 'allocator', 'dist', 'cli.js'),
    wwwroot,
    'readme-key',
  );
  try {
    const answer = await fetch(served.url, { method: 'POST', body: firmwareAllocationBody('2.1.0') });
    const body = await answer.text();
    if (answer.status !== 200 || !body.includes('contoso-fw-current.azure-devices.net')) {
      throw new Error(`deploy/app.zip unpacked and served answered ${answer.status} ${body}`);
    }
  } finally {
    await served.stop();
  }

  // `npm start` as both READMEs show it (once for each distinct command).
  const starts = [
    one(ctx, /^npm start -- --port 7071/),
    one(ctx, /^npm start -- --port 7071/, 'examples/custom-policy/README.md'),
  ];
  for (const text of new Set(starts.map((c) => withoutComment(c.text)))) {
    const port = await freePort();
    const server = await startServer(renumber(text, { '7071': port }), {
      cwd: app,
      env,
      ready: /\?code=[^\s"*]+/,
    });
    try {
      const url = /https?:\/\/\S+\?code=[^\s"*]+/.exec(server.output())?.[0] as string;
      const answer = await fetch(url, { method: 'POST', body: firmwareAllocationBody('2.1.0') });
      const body = await answer.text();
      for (const command of starts.filter((c) => withoutComment(c.text) === text)) {
        ctx.report(
          command,
          answer.status === 200 && body.includes('contoso-fw-current.azure-devices.net'),
          `POST ${url.replace(/code=.*/, 'code=…')} → ${answer.status} ${body}`,
        );
      }
    } finally {
      await server.stop();
    }
  }
  return app;
}

/** Commands for a project where dpskit is installed (the app from `ownPolicy`). */
export async function inYourApp(ctx: ScenarioContext, app: string): Promise<void> {
  const env = userEnv();
  const help = pick(ctx, /^npx (dps-emulator start|device-sim|dpskit-allocator) --help$/);
  const helped = await runSession(
    help.map((c) => c.text),
    { cwd: app, env },
  );
  for (const [i, command] of help.entries()) judge(ctx, command, helped.runs[i], { output: [/usage/i] });

  // "Scripts and CI": both servers in the background, waited for through their ready files.
  const scripts = pick(
    ctx,
    /--ready-file \.dpskit\/(emulator|allocator)\.ready\.json|^timeout 120 sh -c 'until \[ -f \.dpskit\/emulator|^node -p 'require\("\.\/\.dpskit\/emulator/,
  );
  const session = await runSession(
    scripts.map((c) => c.text),
    { cwd: app, env, keepBackground: true },
  );
  try {
    for (const [i, command] of scripts.entries()) {
      judge(ctx, command, session.runs[i], /^node -p/.test(command.text) ? { output: [/^localhost:\d+$/m] } : {});
    }
    const ready = JSON.parse(await readFile(path.join(app, '.dpskit', 'emulator.ready.json'), 'utf8')) as {
      idScope: string;
      mqtt: { provisioningHost: string };
      caCertPath: string;
    };
    // Not a README line: a device for the registrations commands below to find.
    const device = await runSession(
      [
        `npx device-sim register --provisioning-host ${ready.mqtt.provisioningHost} --ca ${ready.caCertPath} --id-scope ${ready.idScope} --registration-id contoso-toaster-007 --group-key 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA=='`,
      ],
      { cwd: app, env },
    );
    if (device.runs[0]?.code !== 0)
      throw new Error(`registering contoso-toaster-007 failed:\n${device.runs[0]?.output}`);

    // The emulator README's state commands, while the emulator runs.
    const state = pick(ctx, /^npx dps-emulator (registrations|enrollments) /, 'apps/emulator/README.md');
    const stated = await runSession(
      state.map((c) => c.text),
      { cwd: app, env },
    );
    state.forEach((command, i) => {
      const expected = /registrations list/.test(command.text)
        ? { output: [/contoso-toaster-007 +assigned/] }
        : /registrations show/.test(command.text)
          ? { output: [/status +assigned/] }
          : /enrollments list/.test(command.text)
            ? { output: [/group +contoso-custom-allocated-devices/] }
            : /enrollments show .* --json/.test(command.text)
              ? { output: [/"enrollmentGroupId": "contoso-custom-allocated-devices"/] }
              : { output: [/Deleted/] };
      judge(ctx, command, stated.runs[i], expected);
    });
  } finally {
    session.stopBackground();
  }

  // The emulator README's variant with one ready file.
  const alone = pick(ctx, /\.dpskit\/ready\.json|^MQTT_PORT=/, 'apps/emulator/README.md');
  const second = await runSession([...alone.map((c) => c.text)], { cwd: app, env });
  for (const [i, command] of alone.entries()) judge(ctx, command, second.runs[i]);
}

/** A realistic `az iot dps enrollment-group show --show-keys -o json` record (see fixtures/). */
export async function azShowToConfig(ctx: ScenarioContext): Promise<void> {
  const command = one(ctx, /\| jq /s);
  const fixture = path.join(
    import.meta.dirname,
    '..',
    '..',
    'src',
    'readme',
    'fixtures',
    'az-enrollment-group-show.json',
  );
  // The pipeline as written, with the recorded az output in place of the az call (Azure is unreachable).
  const pipeline = command.text.slice(command.text.indexOf('| jq ') + 2);
  const { runs } = await runSession([`${pipeline} < '${fixture}'`], { cwd: ctx.root, env: userEnv() });
  const run = runs[0];
  if (run?.code !== 0) {
    ctx.report(command, false, `jq failed: ${run?.output}`);
    return;
  }
  const group = JSON.parse(run.output) as { customAllocationDefinition?: { webhookUrl?: string } };
  // Pastes into the emulator's config file: the config schema accepts it, nulls gone, URL real.
  const config = parseConfig({
    idScope: '0ne00000A0A',
    iotHubs: [{ hostName: 'contoso-toasters-hub-1098.azure-devices.net' }],
    enrollmentGroups: [group],
  });
  const ok =
    !run.output.includes('null') &&
    group.customAllocationDefinition?.webhookUrl === 'http://localhost:7071/api/allocate?code=local-key' &&
    config.enrollmentGroups.length === 1;
  ctx.report(command, ok, `az part replaced by a recorded az output; jq result accepted by the config schema: ${ok}`);
}

export async function newWorkFolder(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'dpskit-readme-'));
}

/** Allocator and emulator READMEs' commands for this repository, run from its root. */
export async function inTheRepository(ctx: ScenarioContext): Promise<void> {
  const env = userEnv();
  // The allocator's start lines (7071 renumbered, as its README allows), one after the other.
  const [plain, keyed] = [
    one(ctx, /^npm run allocator -- --port 7071/, 'apps/allocator/README.md'),
    one(ctx, /^ALLOCATOR_FUNCTION_KEY=my-key npm run allocator/, 'apps/allocator/README.md'),
  ] as const;
  const port = await freePort();
  const first = await startServer(renumber(plain.text, { '7071': port }), {
    cwd: ctx.root,
    env,
    ready: /\?code=[A-Za-z0-9_-]{20,}/,
  });
  await first.stop();
  ctx.report(plain, true, 'served with a generated key, printed in the webhook URL');
  const second = await startServer(renumber(keyed.text, { '7071': port }), {
    cwd: ctx.root,
    env,
    ready: /api\/allocate\?code=\*\*\*\*/,
  });
  try {
    ctx.report(keyed, true, 'served with the key from ALLOCATOR_FUNCTION_KEY (masked in its output)');
    const request = pick(ctx, /^KEY=my-key|^curl -i -X POST/, 'apps/allocator/README.md');
    const { runs } = await runSession(
      request.map((c) => renumber(c.text, { '7071': port })),
      { cwd: ctx.root, env },
    );
    for (const [i, command] of request.entries()) {
      judge(
        ctx,
        command,
        runs[i],
        /^curl/.test(command.text)
          ? { output: [/HTTP\/1\.1 200 OK/, /\{"iotHubHostName":"contoso-toasters-hub-1098\.azure-devices\.net"\}/] }
          : {},
      );
    }
  } finally {
    await second.stop();
  }

  // The emulator from the repository root (ports renumbered, as its README allows).
  const emulatorCommand = one(ctx, /^npm run emulator -- start/, 'apps/emulator/README.md');
  const emulator = await startServer(
    renumber(emulatorCommand.text, { '8883': await freePort(), '5671': await freePort(), '8443': await freePort() }),
    { cwd: ctx.root, env, ready: /"event":"started"|DPS emulator running/ },
  );
  await emulator.stop();
  ctx.report(emulatorCommand, true, 'started and stopped');

  // Builds and the tutorial app's deployment package (the same command in two READMEs runs once).
  const builds = pick(ctx, /^npx pnpm --filter/, 'apps/allocator/README.md');
  const packageCommands = [...pick(ctx, /^npx pnpm --filter @dpskit\/allocator package/), ...builds];
  const distinct = [...new Set(packageCommands.map((c) => withoutComment(c.text)))];
  const { runs } = await runSession(distinct, { cwd: ctx.root, env });
  for (const command of packageCommands) {
    const run = runs[distinct.indexOf(withoutComment(command.text))];
    judge(ctx, command, run, /package/.test(command.text) ? { output: [/allocator\.zip/] } : {});
  }
}

/** The emulator and device-sim READMEs' device commands, where dpskit is installed (the app). */
export async function devicesInYourApp(ctx: ScenarioContext, app: string): Promise<void> {
  const ports = {
    '7071': await freePort(),
    '8883': await freePort(),
    '5671': await freePort(),
    '8443': await freePort(),
  };
  const env = userEnv();
  const [plainStart, webhookStart] = [
    one(
      ctx,
      /^npx dps-emulator start --mqtt-port 8883 --amqp-port 5671 --https-port 8443 +#/,
      'apps/emulator/README.md',
    ),
    one(ctx, /^npx dps-emulator start [\s\S]*--webhook-url/, 'apps/emulator/README.md'),
  ] as const;
  const plain = await startServer(renumber(plainStart.text, ports), {
    cwd: app,
    env,
    ready: /"event":"started"|DPS emulator running/,
  });
  await plain.stop();
  ctx.report(plainStart, true, 'started and stopped');

  // Not a README line: the tutorial allocator the emulator README's webhook URL points at.
  const allocator = await startServer(`npx dpskit-allocator start --port ${ports['7071']}`, {
    cwd: app,
    env: { ...env, ALLOCATOR_FUNCTION_KEY: 'local-key' },
    ready: /api\/allocate/,
  });
  try {
    const emulator = await startServer(renumber(webhookStart.text, ports), {
      cwd: app,
      env,
      ready: /"event":"started"|DPS emulator running/,
    });
    try {
      ctx.report(webhookStart, true, 'started with the tutorial webhook');
      const devices = ctx.commands.filter((c) => c.file === 'apps/device-sim/README.md');
      const { runs } = await runSession(
        devices.map((c) => renumber(c.text, ports)),
        { cwd: app, env },
      );
      for (const [i, command] of devices.entries()) {
        const expected = /keys derive/.test(command.text)
          ? {
              output: [
                /^contoso-toaster-007 NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI=$/m,
                /^contoso-heatpump-088 NI9dUEI2tga168Qi1U\/HKuMmFHewrvaqI1MPTEU1A5w=$/m,
              ],
            }
          : /fleet/.test(command.text)
            ? { output: [/1000 requested, 1000 completed/, /assigned +500/, /failed +400207 +500/] }
            : /contoso-heatpump-088/.test(command.text)
              ? { code: 1, output: [/Custom allocation failed with status code: 400/] }
              : /certs (create|thumbprint)/.test(command.text)
                ? { output: [/certs\/intermediate\.pem/, /SHA-1 [0-9A-F]{40} +SHA-256 [0-9A-F]{64}/] }
                : /contoso-toaster-007/.test(command.text)
                  ? { output: [/Registration Information received from service: contoso-toasters-hub-1098/] }
                  : {};
        judge(ctx, command, runs[i], expected);
      }
    } finally {
      await emulator.stop();
    }
  } finally {
    await allocator.stop();
  }
}
