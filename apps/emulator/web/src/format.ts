import type { AttemptSummary } from './api.js';

export function time(iso: string): string {
  const date = new Date(iso);
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

/** What a row's outcome cell says: the hub, or the error code and message. */
export function outcomeText(attempt: AttemptSummary): string {
  if (attempt.status === 'assigned') return attempt.assignedHub ?? 'assigned';
  if (attempt.status === 'disabled') return 'enrollment disabled';
  const code = attempt.errorCode !== undefined ? `${attempt.errorCode} ` : '';
  return `${code}${attempt.errorMessage ?? attempt.status}`;
}

/** JSON text pretty-printed; anything else as it is. */
export function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function enrollmentLabel(attempt: Pick<AttemptSummary, 'enrollment'>): string {
  return attempt.enrollment
    ? `${attempt.enrollment.kind === 'group' ? 'group' : 'individual'} ${attempt.enrollment.id}`
    : '—';
}
