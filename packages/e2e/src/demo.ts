#!/usr/bin/env node
/**
 * `npm run demo`: the custom allocation tutorial on this machine. Starts the emulator and the
 * allocator on free ports, registers the tutorial's two devices with device-sim (the toaster then
 * connects to its hub, finds the enrollment's initial twin, reports and sends telemetry), prints
 * each device's output, the allocator's log and the toaster's twin as the registry shows it, then
 * a three-line verdict. Exits 0 when every outcome is the tutorial's.
 */
import { commandLine, logsPane, section, styler } from './demo/format.js';
import { runDeviceSim } from './harness/device-sim.js';
import { emulatorRegistry } from './harness/registry.js';
import { startTutorialStack } from './harness/stack.js';
import { TUTORIAL } from './harness/tutorial.js';

interface DeviceResult {
  registrationId: string;
  exitCode: number | null;
  status?: string;
  assignedHub?: string;
  errorCode?: number;
  errorMessage?: string;
}

async function main(): Promise<number> {
  const style = styler(Boolean(process.stdout.isTTY) && !process.env.NO_COLOR);
  const out = (line = '') => process.stdout.write(`${line}\n`);
  // The web view on its usual port (8090, or a free one when taken), to watch the run in a browser.
  const stack = await startTutorialStack({ retryAfterSeconds: 1, webView: {} });
  try {
    const { emulator, allocator } = stack;
    out(style.heading('dpskit demo: "Use custom allocation policies with DPS", locally'));
    out(
      `  emulator   mqtts://localhost:${emulator.endpoints.mqtt.port}  https://localhost:${emulator.endpoints.https?.port}`,
    );
    out(`             ID scope ${emulator.idScope}, CA ${emulator.caCertPath}`);
    out(`  allocator  ${allocator.url}/api/allocate?code=****`);
    out(
      `  web view   ${emulator.webViewUrl}  (registrations live, webhook exchanges, fleet charts, the toaster on its hub)`,
    );
    out(`  enrollment group ${TUTORIAL.enrollmentGroupId}: custom allocation, linked hub ${TUTORIAL.toasterHub}`);
    out(`             initial twin ${JSON.stringify(TUTORIAL.initialTwin)}`);

    const results: DeviceResult[] = [];
    for (const registrationId of [TUTORIAL.toaster, TUTORIAL.heatpump]) {
      const args = [
        'register',
        ...stack.connectionArgs('mqtt'),
        '--registration-id',
        registrationId,
        '--payload',
        JSON.stringify(TUTORIAL.payload),
        // After provisioning the device connects to its hub (the emulator's) and sends 3 messages.
        '--telemetry',
        '3',
      ];
      out(section(style, `Device ${registrationId}`));
      out(style.dim(`$ DPS_GROUP_KEY=<group key> ${commandLine(args)}`));
      const text = await runDeviceSim(args, { DPS_GROUP_KEY: TUTORIAL.groupKey, NO_COLOR: '1' });
      process.stdout.write(text.stdout);
      if (text.stderr.trim()) process.stdout.write(text.stderr);
      // The verdict needs both sides to agree: device-sim's exit code (0 only when assigned) and the
      // emulator's record of the same registration.
      const event = stack.registrations.findLast((e) => e.registrationId === registrationId);
      results.push({ registrationId, exitCode: text.code, ...event?.outcome });
    }

    out(section(style, "Allocator log (as the portal's Logs pane shows it)"));
    for (const line of logsPane(stack.allocatorLog)) out(line);

    out(section(style, "The toaster's twin on its hub (azure-iothub Registry.getTwin)"));
    const twin = await emulatorRegistry(emulator)
      .getTwin(TUTORIAL.toaster)
      .then((r) => r.responseBody as unknown as TwinView)
      .catch(() => undefined);
    const messages = emulator.telemetry(TUTORIAL.toasterHub, TUTORIAL.toaster);
    if (twin) {
      out(`  tags      ${JSON.stringify(twin.tags)}`);
      out(`  desired   ${JSON.stringify(withoutMetadata(twin.properties.desired))}`);
      out(`  reported  ${JSON.stringify(withoutMetadata(twin.properties.reported))}`);
    } else {
      out('  (no such device)');
    }
    out(
      `  telemetry ${messages.length} message(s) received${messages.length ? `, last: ${messages.at(-1)?.body.toString()}` : ''}`,
    );

    out(section(style, 'Verdict'));
    const [toaster, heatpump] = results;
    const configured =
      twin !== undefined &&
      JSON.stringify(twin.tags) === JSON.stringify(TUTORIAL.initialTwin.tags) &&
      Object.entries(TUTORIAL.initialTwin.properties.desired).every(([k, v]) => twin.properties.desired[k] === v) &&
      twin.properties.reported.deviceSim !== undefined &&
      messages.length === 3;
    const toasterOk =
      toaster?.exitCode === 0 && toaster.status === 'assigned' && toaster.assignedHub === TUTORIAL.toasterHub;
    const heatpumpOk =
      heatpump?.exitCode === 1 &&
      heatpump.status === 'failed' &&
      heatpump.errorCode === 400207 &&
      heatpump.errorMessage === 'Custom allocation failed with status code: 400';
    out(
      toasterOk
        ? style.ok(`✔ ${TUTORIAL.toaster} was assigned to ${TUTORIAL.toasterHub}, as in the tutorial.`)
        : style.bad(`✘ ${TUTORIAL.toaster} should be assigned to ${TUTORIAL.toasterHub}; it got ${describe(toaster)}.`),
    );
    out(
      heatpumpOk
        ? style.ok(
            `✔ ${TUTORIAL.heatpump} was rejected: Custom allocation failed with status code: 400 (400207), as in the tutorial.`,
          )
        : style.bad(`✘ ${TUTORIAL.heatpump} should be rejected with 400207; it got ${describe(heatpump)}.`),
    );
    out(
      configured
        ? style.ok(
            `✔ ${TUTORIAL.toaster} connected to ${TUTORIAL.toasterHub}, found its initial twin, reported and sent 3 messages.`,
          )
        : style.bad(
            `✘ ${TUTORIAL.toaster} should be on its hub with the initial twin and 3 messages; see its twin above.`,
          ),
    );
    if (process.stdin.isTTY && process.stdout.isTTY) {
      out();
      out(`The web view stays up at ${emulator.webViewUrl}: open a row to see the webhook exchange.`);
      out(style.dim('Press Enter (or Ctrl+C) to stop.'));
      await untilEnterOrInterrupt();
    }
    return toasterOk && heatpumpOk && configured ? 0 : 1;
  } finally {
    await stack.close();
  }
}

/** Resolves on Enter or Ctrl+C at the terminal. */
function untilEnterOrInterrupt(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.stdin.off('data', done);
      process.off('SIGINT', done);
      process.stdin.pause();
      resolve();
    };
    process.stdin.on('data', done);
    process.once('SIGINT', done);
  });
}

interface TwinView {
  tags: Record<string, unknown>;
  properties: { desired: Record<string, unknown>; reported: Record<string, unknown> };
}

function withoutMetadata(section: Record<string, unknown>): Record<string, unknown> {
  const { $metadata: _metadata, ...rest } = section;
  return rest;
}

function describe(result: DeviceResult | undefined): string {
  if (!result?.status) return `no answer (device-sim exit code ${result?.exitCode})`;
  return [`exit code ${result.exitCode}`, result.status, result.assignedHub, result.errorCode, result.errorMessage]
    .filter(Boolean)
    .join(', ');
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
