import type { AttemptEntry, AttemptSummary } from '../../src/core/attempts.js';
import type { EnrollmentView, WebViewOverview } from '../../src/web/views.js';

export type { AttemptEntry, AttemptSummary, EnrollmentView, WebViewOverview };

export interface Enrollments {
  groups: EnrollmentView[];
  individuals: EnrollmentView[];
}

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: { Accept: 'application/json' } });
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { error?: string };
    throw new Error(body.error ?? `${path}: HTTP ${response.status}`);
  }
  return (await response.json()) as T;
}

export const api = {
  overview: () => getJson<WebViewOverview>('/api/overview'),
  enrollments: () => getJson<Enrollments>('/api/enrollments'),
  latestAttempts: (limit: number) => getJson<AttemptSummary[]>(`/api/attempts?limit=${limit}`),
  attempt: (seq: number) => getJson<AttemptEntry>(`/api/attempts/${seq}`),
};

export type StreamState = 'connecting' | 'live' | 'reconnecting';

/**
 * Follows `/api/stream` from `afterSeq`: new attempts in batches. EventSource reconnects on its own
 * and resumes with the last event id it saw, so nothing is missed or repeated across a drop.
 */
export function followAttempts(
  afterSeq: number,
  onAttempts: (attempts: AttemptSummary[]) => void,
  onState: (state: StreamState) => void,
): () => void {
  const source = new EventSource(`/api/stream?after=${afterSeq}`);
  onState('connecting');
  source.addEventListener('ready', () => onState('live'));
  source.addEventListener('attempts', (event) => {
    onState('live');
    onAttempts(JSON.parse((event as MessageEvent<string>).data) as AttemptSummary[]);
  });
  source.onerror = () => onState(source.readyState === EventSource.CLOSED ? 'reconnecting' : 'connecting');
  return () => source.close();
}
