import type { HubSession } from '../../lib/hub.js';
import type { RegistrationOutcome, StatusUpdate } from '../../lib/types.js';

/**
 * The device output of the tutorial's C sample (`prov_dev_client_sample`), rebuilt from the Node
 * SDK's responses: the API version, "Registering Device", one `Provisioning Status:` line each time
 * the status changes, then the registration information or the failure.
 */
export function bannerLines(sdkVersion: string): string[] {
  return [`Provisioning API Version: ${sdkVersion}`, '', 'Registering Device', ''];
}

/** The final phases are shown by `resultLines`, as the sample does. */
export function statusLine(update: StatusUpdate): string | undefined {
  if (update.phase === 'connected' || update.phase === 'registering' || update.phase === 'assigning') {
    return `Provisioning Status: ${update.sdkStatus}`;
  }
  return undefined;
}

/** `afterStatus`: a blank line separates the result from status lines above it, as in the sample. */
export function resultLines(outcome: RegistrationOutcome, hint?: string, afterStatus = true): string[] {
  const lines: string[] = afterStatus ? [''] : [];
  const operation = outcome.operationId ?? 'unknown';
  const date = outcome.registrationState?.lastUpdatedDateTimeUtc ?? 'unknown';
  switch (outcome.status) {
    case 'assigned':
      lines.push(
        `Registration Information received from service: ${outcome.assignedHub ?? '(none)'}, deviceId: ${outcome.deviceId ?? '(none)'}`,
      );
      if (outcome.payload !== undefined) {
        lines.push(`Payload received from service: ${JSON.stringify(outcome.payload)}`);
      }
      if (outcome.hubSession) lines.push('', ...hubLines(outcome.hubSession));
      break;
    case 'failed':
    case 'disabled':
      lines.push(
        `Provisioning Failure: OperationId: ${operation} - Date: ${date} - Msg: ${outcome.errorMessage ?? '(no message)'}`,
      );
      lines.push(
        `Failure registering device: status ${outcome.status}${outcome.errorCode !== undefined ? `, error code ${outcome.errorCode}` : ''}`,
      );
      break;
    case 'error':
      if (outcome.errorName === 'AbortError') {
        lines.push('Registration cancelled before the service gave a final answer');
        break;
      }
      lines.push(
        `Failure registering device: ${outcome.errorName ?? 'Error'}${outcome.errorCode !== undefined ? ` (error code ${outcome.errorCode})` : ''}: ${outcome.errorMessage ?? ''}`,
      );
      break;
  }
  if (hint) lines.push(`Hint: ${hint}`);
  return lines;
}

/**
 * The device's first steps on its hub: the twin it found, what it reported and sent. Shared by the
 * hub session (`--connect`) and a staying device's `connected` (`--stay`).
 */
export function connectLines(
  steps: Pick<HubSession, 'hub' | 'deviceId' | 'desired' | 'reportedFound' | 'reported' | 'telemetrySent'>,
): string[] {
  const lines = [`Connecting to IoT hub ${steps.hub} as ${steps.deviceId}`];
  if (steps.desired !== undefined) {
    lines.push('Device twin received (tags are not visible to devices):');
    lines.push(`  desired:  ${JSON.stringify(steps.desired)}`);
    lines.push(`  reported: ${JSON.stringify(steps.reportedFound ?? {})}`);
  }
  if (steps.reported !== undefined) lines.push(`Reported properties sent: ${JSON.stringify(steps.reported)}`);
  if (steps.telemetrySent > 0) {
    lines.push(`Telemetry sent: ${steps.telemetrySent} message${steps.telemetrySent === 1 ? '' : 's'}`);
  }
  return lines;
}

/** What the device did on its hub after provisioning (`register --connect`). */
export function hubLines(session: HubSession): string[] {
  const lines = connectLines(session);
  lines.push(
    session.status === 'connected'
      ? `Hub session done in ${session.durationMs} ms`
      : `Failure on the hub: ${session.errorName ?? 'Error'}: ${session.errorMessage ?? ''}`,
  );
  return lines;
}

/** Prints status lines as they happen, skipping repeats (the SDK polls while `assigning`). */
export class TutorialPrinter {
  private last: string | undefined;

  constructor(private readonly write: (text: string) => void) {}

  banner(sdkVersion: string): void {
    this.write(`${bannerLines(sdkVersion).join('\n')}\n`);
  }

  status(update: StatusUpdate): void {
    const line = statusLine(update);
    if (line === undefined || line === this.last) return;
    this.last = line;
    this.write(`${line}\n`);
  }

  result(outcome: RegistrationOutcome, hint?: string): void {
    this.write(`${resultLines(outcome, hint, this.last !== undefined).join('\n')}\n`);
  }
}
