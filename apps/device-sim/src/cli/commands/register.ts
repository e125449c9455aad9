import { registerDevice } from '../../lib/register.js';
import { sdkVersion } from '../../lib/sdk/modules.js';
import { CANCELLED_ERROR_NAME } from '../../lib/stats.js';
import type { RegisterConfig } from '../args.js';
import { type CliIo, EXIT, interruptible } from '../io.js';
import { hintFor } from '../output/hints.js';
import { outcomeJson } from '../output/json.js';
import { TutorialPrinter } from '../output/tutorial.js';
import { sharedOptions } from './shared-options.js';

/** `device-sim register`: one device, printed as the tutorial's device sample prints it (or as JSON). */
export async function runRegister(config: RegisterConfig, io: CliIo): Promise<number> {
  const controller = new AbortController();
  const unsubscribe = interruptible(io, () => controller.abort());
  const printer = config.json ? undefined : new TutorialPrinter((text) => io.stdout.write(text));
  printer?.banner(sdkVersion());
  try {
    const outcome = await registerDevice({
      ...sharedOptions(config, controller.signal),
      registrationId: config.registrationId,
      deviceKey: config.deviceKey,
      certificate: config.certificate,
      onStatus: printer ? (s) => printer.status(s) : undefined,
    });
    const hint = hintFor(outcome, {
      provisioningHost: config.provisioningHost,
      transport: config.transport,
      caGiven: config.ca !== undefined,
    });
    if (printer) printer.result(outcome, hint);
    else io.stdout.write(outcomeJson(outcome, hint));
    if (outcome.status === 'assigned') return outcome.hubSession?.status === 'error' ? EXIT.notAssigned : EXIT.ok;
    return outcome.errorName === CANCELLED_ERROR_NAME ? EXIT.interrupted : EXIT.notAssigned;
  } finally {
    unsubscribe();
  }
}
