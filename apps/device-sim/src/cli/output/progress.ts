import type { FleetProgress } from '../../lib/fleet.js';

/** One progress line: bar, counts by status, rate. Pure, so it is tested without a terminal. */
export function renderProgress(p: FleetProgress, barWidth = 24): string {
  const fraction = p.requested === 0 ? 1 : p.finished / p.requested;
  const filled = Math.min(barWidth, Math.floor(fraction * barWidth));
  const bar = `${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}`;
  const seconds = p.elapsedMs / 1000;
  const rate = seconds > 0 ? p.finished / seconds : 0;
  const parts = [
    `[${bar}] ${p.finished}/${p.requested} ${Math.floor(fraction * 100)}%`,
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
