import type { FleetProgress } from '../../lib/fleet.js';

/** One progress line: bar, counts by status, rate. Pure, so it is tested without a terminal. */
export function renderProgress(p: FleetProgress, barWidth = 24): string {
  const fraction = p.requested === 0 ? 1 : p.finished / p.requested;
  const filled = Math.min(barWidth, Math.floor(fraction * barWidth));
  const bar = `${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}`;
  const seconds = p.elapsedMs / 1000;
  const rate = seconds > 0 ? p.finished / seconds : 0;
  const parts = [
    `${barWidth > 0 ? `[${bar}] ` : ''}${p.finished}/${p.requested} ${Math.floor(fraction * 100)}%`,
    `assigned ${p.byStatus.assigned}`,
    `failed ${p.byStatus.failed}`,
  ];
  if (p.byStatus.disabled > 0) parts.push(`disabled ${p.byStatus.disabled}`);
  parts.push(`error ${p.byStatus.error}`, `in flight ${p.inFlight}`, `${rate.toFixed(1)}/s`, `${seconds.toFixed(1)} s`);
  return parts.join('  ');
}

interface TtyLike {
  write(text: string): boolean;
}

/**
 * Redraws the progress line in place on a terminal (carriage return + clear line), at most every
 * `intervalMs`. Only used when stderr is a TTY: piped output stays free of control characters.
 */
export class ProgressLine {
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly stream: TtyLike,
    private readonly intervalMs = 100,
  ) {}

  update(progress: FleetProgress, force = false): void {
    const now = performance.now();
    if (!force && now - this.lastDraw < this.intervalMs) return;
    this.lastDraw = now;
    this.drawn = true;
    this.stream.write(`\r\x1b[2K${renderProgress(progress)}`);
  }

  /** Leaves the last state on screen and moves to a fresh line. */
  finish(progress?: FleetProgress): void {
    if (progress) this.update(progress, true);
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}

/** Every this often (of the fleet's own elapsed time) a line when stderr is not a terminal. */
export const PROGRESS_LOG_INTERVAL_MS = 15_000;

/**
 * Progress where stderr is not a terminal (CI logs, `2> file`): a plain line, no bar and no control
 * characters, once per interval of the fleet's elapsed time, so a long fleet is not silent until its
 * summary (a 100,000-device fleet runs for most of an hour). A fleet shorter than one interval prints
 * none. Driven by the progress events' own `elapsedMs`, so it reads no clock.
 */
export class ProgressLog {
  private next: number;

  constructor(
    private readonly stream: TtyLike,
    private readonly intervalMs = PROGRESS_LOG_INTERVAL_MS,
  ) {
    this.next = intervalMs;
  }

  update(progress: FleetProgress): void {
    if (progress.elapsedMs < this.next) return;
    // The next line one interval after this one: a pause with no outcomes prints no catch-up lines.
    this.next = progress.elapsedMs + this.intervalMs;
    this.stream.write(`device-sim: ${renderProgress(progress, 0)}\n`);
  }
}
