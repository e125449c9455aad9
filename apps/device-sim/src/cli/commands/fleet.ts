import { runFleet } from '../../lib/fleet.js';
import type { FleetConfig } from '../args.js';
import { expandIdTemplate, readCertificateFiles } from '../certificate-files.js';
import { type CliIo, EXIT, interruptible } from '../io.js';
import { ProgressLine } from '../output/progress.js';
import { formatSummary } from '../output/summary.js';
import { sharedOptions } from './shared-options.js';

/** `device-sim fleet`: many devices, a progress bar on a terminal, the summary at the end (also on Ctrl-C). */
export async function runFleetCommand(config: FleetConfig, io: CliIo): Promise<number> {
  const controller = new AbortController();
  let interrupted = false;
  const unsubscribe = interruptible(io, () => {
    if (interrupted) return;
    interrupted = true;
    io.stderr.write(
      `${io.stderr.isTTY ? '\n' : ''}device-sim: stopping: no new devices, cancelling those in flight (Ctrl-C again to quit at once)\n`,
    );
    controller.abort();
  });
  const progress = config.progress && io.stderr.isTTY === true ? new ProgressLine(io.stderr) : undefined;
  let last: Parameters<ProgressLine['update']>[0] | undefined;
  try {
    const summary = await runFleet({
      ...sharedOptions(config, controller.signal),
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
        : undefined,
    });
    progress?.finish(last);
    io.stdout.write(config.json ? `${JSON.stringify(summary)}\n` : formatSummary(summary));
    if (interrupted) return EXIT.interrupted;
    return summary.byStatus.error > 0 || (summary.hub?.failed ?? 0) > 0 ? EXIT.notAssigned : EXIT.ok;
  } finally {
    unsubscribe();
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
