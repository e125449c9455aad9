import type { FleetSummary } from '../../lib/stats.js';
import { renderTable } from './table.js';

function ms(value: number): string {
  return `${Math.round(value)} ms`;
}

function share(count: number, total: number): string {
  return total === 0 ? '' : `${((count / total) * 100).toFixed(1)} %`;
}

/** `register`'s `Hint:` line for each hint of the rows, once each (two rows may share one). */
function hintLines(rows: ReadonlyArray<{ hint?: string }>): string[] {
  const hints = new Set(rows.flatMap((row) => (row.hint ? [row.hint] : [])));
  return [...hints].map((hint) => `Hint: ${hint}`);
}

/** The end-of-run table of `device-sim fleet`, for people. `--json` prints the `FleetSummary` itself. */
export function formatSummary(summary: FleetSummary): string {
  const out: string[] = [];
  out.push(`Fleet summary (${summary.transport}, concurrency ${summary.concurrency})`);
  out.push(`  devices    ${summary.requested} requested, ${summary.completed} completed`);
  out.push(
    `  duration   ${(summary.durationMs / 1000).toFixed(1)} s, ${summary.registrationsPerSecond.toFixed(1)} registrations/s`,
  );
  const l = summary.latencyMs;
  out.push(
    l
      ? `  latency    p50 ${ms(l.p50)}, p95 ${ms(l.p95)}, p99 ${ms(l.p99)}, max ${ms(l.max)} (min ${ms(l.min)}, mean ${ms(l.mean)})`
      : '  latency    no completed registrations',
  );
  out.push('');
  out.push('Outcomes');
  if (summary.outcomes.length === 0) {
    out.push('  (none)');
  } else {
    const rows = summary.outcomes.map((g) => [
      g.status,
      g.errorCode === undefined ? '' : String(g.errorCode),
      String(g.count),
      share(g.count, summary.completed),
      g.status === 'assigned'
        ? ''
        : `${[g.errorName, g.errorMessage].filter((x) => x).join(': ')}${g.otherMessages ? ' (and other messages)' : ''}`,
    ]);
    for (const line of renderTable(['status', 'error code', 'devices', 'share', 'detail'], rows, [
      'left',
      'left',
      'right',
      'right',
      'left',
    ])) {
      out.push(`  ${line}`);
    }
  }
  out.push(...hintLines(summary.outcomes));
  out.push('');
  out.push('Devices per hub');
  if (summary.hubs.length === 0) {
    out.push('  (no device assigned)');
  } else {
    const rows = summary.hubs.map((h) => [h.hub, String(h.count)]);
    for (const line of renderTable(['hub', 'devices'], rows, ['left', 'right'])) out.push(`  ${line}`);
  }
  if (summary.hub) {
    out.push('');
    const errors = summary.hub.errors.map((e) => `${e.errorName} × ${e.count}`).join(', ');
    out.push(
      `Connected to their hub: ${summary.hub.connected} of ${summary.byStatus.assigned} assigned devices, ${summary.hub.telemetrySent} telemetry messages sent${errors ? ` (failed: ${errors})` : ''}`,
    );
    out.push(...hintLines(summary.hub.errors));
    const stay = summary.hub.stay;
    if (stay) {
      out.push(
        `While staying: ${stay.methods} method calls answered or heard, ${stay.desiredChanges} desired property changes, ${stay.messages} cloud-to-device messages`,
      );
    }
  }
  if (summary.stoppedEarly) {
    out.push('');
    out.push(
      `stopped early: ${summary.completed} of ${summary.requested} devices completed (${summary.cancelled} cancelled in flight, ${summary.notStarted} not started)`,
    );
  }
  return `${out.join('\n')}\n`;
}
