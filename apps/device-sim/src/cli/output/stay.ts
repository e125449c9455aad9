import type { HubEvent, HubSession } from '../../lib/hub.js';
import { CANCELLED_ERROR_NAME } from '../../lib/stats.js';
import { connectLines } from './tutorial.js';

// `register --stay`: one line per event as it happens (JSON lines with --json), and one at the end.
// Nothing here ever holds a key or token: the events carry what the hub sent and what was answered.

/** How much of a cloud-to-device message's body the text line shows (--json has it whole). */
const TEXT_BODY_CHARS = 200;

export function stayEventText(event: HubEvent): string {
  const at = event.atUtc;
  switch (event.event) {
    case 'connected': {
      const lines = connectLines(event);
      lines.push(
        event.transport === 'http'
          ? 'Listening for cloud-to-device messages over HTTPS (no direct methods or desired properties over HTTP) (Ctrl-C to leave)'
          : 'Listening for direct methods, desired property changes and cloud-to-device messages (Ctrl-C to leave)',
      );
      return lines.join('\n');
    }
    case 'method': {
      const call = `${at} method ${event.methodName} (request ${event.requestId}) payload ${JSON.stringify(event.payload)}`;
      if (event.status === undefined)
        return `${call} -> no answer (the caller gets 504101 when its response timeout ends)`;
      const answer = `${event.status} ${JSON.stringify(event.response ?? null)}`;
      return event.errorMessage === undefined
        ? `${call} -> ${answer}`
        : `${call} -> ${answer} not sent: ${event.errorMessage}`;
    }
    case 'desired':
      return `${at} desired${event.version !== undefined ? ` $version ${event.version}` : ''}: ${JSON.stringify(event.patch)}`;
    case 'reported':
      return event.errorMessage === undefined
        ? `${at} reported ${JSON.stringify(event.reported)}`
        : `${at} reported ${JSON.stringify(event.reported)} failed: ${event.errorMessage}`;
    case 'message': {
      const facts = [
        event.messageId !== undefined ? `id ${event.messageId}` : undefined,
        event.correlationId !== undefined ? `correlation ${event.correlationId}` : undefined,
        event.contentType !== undefined ? event.contentType : undefined,
        Object.keys(event.properties).length > 0 ? `properties ${JSON.stringify(event.properties)}` : undefined,
        `${event.bodyBytes} bytes${event.bodyEncoding === 'base64' ? ' (base64)' : ''}`,
      ].filter((f) => f !== undefined);
      const body =
        event.body.length > TEXT_BODY_CHARS
          ? `${JSON.stringify(event.body.slice(0, TEXT_BODY_CHARS))}…`
          : JSON.stringify(event.body);
      const done = event.completed ? 'completed' : `not completed: ${event.errorMessage ?? ''}`;
      return `${at} message ${facts.join(', ')}: ${body} (${done})`;
    }
    case 'telemetry':
      return event.errorMessage === undefined
        ? `${at} telemetry sent: seq ${event.seq}`
        : `${at} telemetry seq ${event.seq} not sent: ${event.errorMessage}`;
    case 'reconnecting':
      return `${at} connection lost (${event.errorName ?? 'Error'}: ${event.errorMessage ?? ''}): the SDK reconnects`;
    case 'reconnected':
      return `${at} reconnected`;
    case 'disconnected':
      return `${at} disconnected: ${event.errorName ?? 'Error'}: ${event.errorMessage ?? ''}`;
  }
}

/** A hub session stopped (the signal aborted) before the device listened: it left, nothing failed. */
export function isStopped(session: HubSession | undefined): boolean {
  return session?.status === 'error' && session.errorName === CANCELLED_ERROR_NAME;
}

/** The last line: how the stay ended and what it saw. */
export function stayEndText(session: HubSession): string {
  const counts = session.stay;
  if (isStopped(session)) return 'Left before listening on the hub (stopped while connecting)';
  if (session.status !== 'connected' || counts === undefined) {
    return `Failure on the hub: ${session.errorName ?? 'Error'}: ${session.errorMessage ?? ''}`;
  }
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  return `Left the hub after ${(counts.stayedMs / 1000).toFixed(1)} s: ${plural(counts.methods, 'method call')}, ${plural(counts.desiredChanges, 'desired property change')}, ${plural(counts.messages, 'cloud-to-device message')}, ${plural(session.telemetrySent, 'telemetry message')} sent`;
}

/** `--json`: the end as one object, `{"event":"left", ...the hub session[, "hint"]}`. */
export function stayEndJson(session: HubSession, hint?: string): string {
  return JSON.stringify({ event: 'left', atUtc: new Date().toISOString(), ...session, ...(hint ? { hint } : {}) });
}

/**
 * `fleet --stay`: one line per event, each naming its device (`connected` too, on one line: the twin
 * is in --json).
 */
export function stayFleetEventText(event: HubEvent): string {
  if (event.event === 'connected') {
    return `${event.atUtc} ${event.deviceId} connected to ${event.hub}, listening`;
  }
  const line = stayEventText(event);
  return `${event.atUtc} ${event.deviceId}${line.slice(event.atUtc.length)}`;
}
