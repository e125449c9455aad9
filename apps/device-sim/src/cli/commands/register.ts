import type { HubEvent, HubSession } from '../../lib/hub.js';
import { registerDevice } from '../../lib/register.js';
import { sdkVersion } from '../../lib/sdk/modules.js';
import { CANCELLED_ERROR_NAME } from '../../lib/stats.js';
import type { RegistrationOutcome } from '../../lib/types.js';
import type { RegisterConfig } from '../args.js';
import { type CliIo, EXIT, interruptible } from '../io.js';
import { hintFor, hubHintFor } from '../output/hints.js';
import { outcomeJson } from '../output/json.js';
import { isStopped, stayEndJson, stayEndText, stayEventText } from '../output/stay.js';
import { TutorialPrinter } from '../output/tutorial.js';
import { sharedOptions, stayOptions } from './shared-options.js';

/** `device-sim register`: one device, printed as the tutorial's device sample prints it (or as JSON). */
export async function runRegister(config: RegisterConfig, io: CliIo): Promise<number> {
  const controller = new AbortController();
  // Ctrl-C cancels a registration (exit 130); once the device stays on its hub, Ctrl-C or SIGTERM
  // is how it is meant to leave (exit 0).
  const unsubscribe = interruptible(io, () => controller.abort());
  const unsubscribeTerm = config.stay ? (io.onTerminate?.(() => controller.abort()) ?? (() => {})) : () => {};
  const printer = config.json ? undefined : new TutorialPrinter((text) => io.stdout.write(text));
  printer?.banner(sdkVersion());
  const hubHintOf = (session: HubSession | undefined) =>
    session && config.connect
      ? hubHintFor(session, {
          hubHost: config.connect.gatewayHost,
          hubTransport: config.connect.transport,
          caGiven: config.ca !== undefined,
        })
      : undefined;
  const hintOf = (outcome: RegistrationOutcome) =>
    hintFor(outcome, {
      provisioningHost: config.provisioningHost,
      transport: config.transport,
      caGiven: config.ca !== undefined,
    }) ?? hubHintOf(outcome.hubSession);
  const shared = sharedOptions(config, controller.signal);
  const print = (outcome: RegistrationOutcome) => {
    if (printer) printer.result(outcome, hintOf(outcome));
    else io.stdout.write(outcomeJson(outcome, hintOf(outcome)));
  };
  try {
    let printed = false;
    const outcome = await registerDevice({
      ...shared,
      ...(config.stay && shared.connect
        ? {
            connect: {
              ...shared.connect,
              stay: stayOptions(config.stay, (event: HubEvent) => {
                if (printer) io.stdout.write(`${event.event === 'connected' ? '\n' : ''}${stayEventText(event)}\n`);
                else io.stdout.write(`${JSON.stringify(event)}\n`);
              }),
            },
            // The outcome is printed as soon as the device is assigned; the stay's lines follow.
            onAssigned: (assigned: RegistrationOutcome) => {
              printed = true;
              print(assigned);
            },
          }
        : {}),
      registrationId: config.registrationId,
      deviceKey: config.deviceKey,
      certificate: config.certificate,
      onStatus: printer ? (s) => printer.status(s) : undefined,
    });
    if (!printed) print(outcome);
    else if (outcome.hubSession) {
      const hint = hubHintOf(outcome.hubSession);
      io.stdout.write(
        `${printer ? `${stayEndText(outcome.hubSession)}${hint ? `\nHint: ${hint}` : ''}` : stayEndJson(outcome.hubSession, hint)}\n`,
      );
    }
    if (outcome.status === 'assigned') {
      // Stopped (Ctrl-C, SIGTERM) after the assignment but before the device listened on its hub:
      // a staying device leaving, as it would a moment later (exit 0), not a hub failure.
      const leftEarly = config.stay !== undefined && controller.signal.aborted && isStopped(outcome.hubSession);
      return outcome.hubSession?.status === 'error' && !leftEarly ? EXIT.notAssigned : EXIT.ok;
    }
    return outcome.errorName === CANCELLED_ERROR_NAME ? EXIT.interrupted : EXIT.notAssigned;
  } finally {
    unsubscribe();
    unsubscribeTerm();
  }
}
