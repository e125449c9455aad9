import { runFleet } from '../../lib/fleet.js';
import type { HubEvent } from '../../lib/hub.js';
import type { FleetConfig } from '../args.js';
import { expandIdTemplate, readCertificateFiles } from '../certificate-files.js';
import { type CliIo, EXIT, interruptible } from '../io.js';
import { withHints } from '../output/fleet-hints.js';
import { ProgressLine, ProgressLog } from '../output/progress.js';
import { stayFleetEventText } from '../output/stay.js';
import { formatSummary } from '../output/summary.js';
import { sharedOptions, stayOptions } from './shared-options.js';

/** `device-sim fleet`: many devices, a progress bar on a terminal, the summary at the end (also on Ctrl-C). */
export async function runFleetCommand(config: FleetConfig, io: CliIo): Promise<number> {
  const controller = new AbortController();
  let interrupted = false;
  let staying = 0;
  const stop = () => {
    if (interrupted) return;
    interrupted = true;
    io.stderr.write(
      `${io.stderr.isTTY ? '\n' : ''}device-sim: ${
        config.stay && staying === config.count
          ? 'leaving: every device disconnects from its hub'
          : 'stopping: no new devices, cancelling those in flight'
      } (Ctrl-C again to quit at once)\n`,
    );
    controller.abort();
  };
  const unsubscribe = interruptible(io, stop);
  // SIGTERM stops a fleet as Ctrl-C does, summary included: `timeout 600 device-sim fleet …`, a CI
  // job cancelled, a container stopped would otherwise end it without a word. fleet --stay: once
  // every device stays, either is the way to end (exit 0).
  const unsubscribeTerm = io.onTerminate?.(stop) ?? (() => {});
  const shared = sharedOptions(config, controller.signal);
  const terminal = io.stderr.isTTY === true;
  const progress = config.progress && terminal ? new ProgressLine(io.stderr) : undefined;
  // Not with --json: a script reading `fleet --json 2>&1` gets the one JSON document it always got.
  const progressLog =
    config.progress && !terminal && !config.json ? new ProgressLog(io.stderr, io.progressLogIntervalMs) : undefined;
  let last: Parameters<ProgressLine['update']>[0] | undefined;
  try {
    const summary = await runFleet({
      ...shared,
      ...(config.stay && shared.connect
        ? {
            connect: {
              ...shared.connect,
              stay: stayOptions(config.stay, (event: HubEvent) => {
                if (event.event === 'connected') staying += 1;
                io.stdout.write(`${config.json ? JSON.stringify(event) : stayFleetEventText(event)}\n`);
              }),
            },
          }
        : {}),
      ...(config.payloads ? { payload: config.payloads } : {}),
      groupKey: config.groupKey,
      certificate: certificateFiles(config),
      count: config.count,
      concurrency: config.concurrency,
      workers: config.workers,
      registrationIdTemplates: config.templates,
      start: config.start,
      onProgress: progress
        ? (p) => {
            last = p;
            progress.update(p);
          }
        : progressLog
          ? (p) => progressLog.update(p)
          : undefined,
    });
    progress?.finish(last);
    const hinted = withHints(
      summary,
      { provisioningHost: config.provisioningHost, transport: config.transport, caGiven: config.ca !== undefined },
      config.connect
        ? {
            hubHost: config.connect.gatewayHost,
            hubTransport: config.connect.transport,
            caGiven: config.ca !== undefined,
          }
        : undefined,
    );
    io.stdout.write(config.json ? `${JSON.stringify(hinted)}\n` : formatSummary(hinted));
    const failed = summary.byStatus.error > 0 || (summary.hub?.failed ?? 0) > 0;
    // A staying fleet is meant to end by a signal: 0 when every device was on its hub by then.
    if (config.stay && staying === config.count && !failed) return EXIT.ok;
    if (interrupted) return EXIT.interrupted;
    return failed ? EXIT.notAssigned : EXIT.ok;
  } finally {
    unsubscribe();
    unsubscribeTerm();
  }
}

/** X.509 fleets: each device's files, read as it starts (`{id}` = its registration id). */
function certificateFiles(
  config: FleetConfig,
): ((registrationId: string) => { cert: string; key: string }) | undefined {
  const templates = config.certificates;
  if (!templates) return undefined;
  return (id) =>
    readCertificateFiles(expandIdTemplate(templates.certTemplate, id), expandIdTemplate(templates.keyTemplate, id));
}
