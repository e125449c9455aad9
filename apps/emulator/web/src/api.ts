import type { AttemptEntry, AttemptSummary } from '../../src/core/attempts.js';
import type { HubDeviceDetail, HubDeviceSummary, HubModuleView, TelemetryView } from '../../src/web/hub-view-types.js';
import type { EnrollmentView, WebViewOverview as Overview } from '../../src/web/views.js';

export type {
  AttemptEntry,
  AttemptSummary,
  EnrollmentView,
  HubDeviceDetail,
  HubDeviceSummary,
  HubModuleView,
  TelemetryView,
};

/** The overview with the run's epoch (the server adds it). */
export type WebViewOverview = Overview & { epoch: string };

export interface HubList {
  /** The hubs' change feed position the list was read at: the stream goes on from there. */
  seq: number;
  hubs: { hostName: string; deviceCount: number; devices: HubDeviceSummary[] }[];
}

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
  hubs: () => getJson<HubList>('/api/hubs'),
  hubDevice: (hub: string, deviceId: string) =>
    getJson<HubDeviceDetail>(`/api/hubs/${encodeURIComponent(hub)}/devices/${encodeURIComponent(deviceId)}`),
};

export type StreamState = 'connecting' | 'live' | 'reconnecting';

export interface StreamHandlers {
  onAttempts(attempts: AttemptSummary[]): void;
  onHubDevices(change: { devices: HubDeviceSummary[]; counts: Record<string, number> }): void;
  /** The server is another run than the page loaded from (restarted, state perhaps reset): load afresh. */
  onNewEpoch(): void;
  onState(state: StreamState): void;
}

/** Waits before opening a stream again once the browser has given up on one. */
const REOPEN_MS = 2000;

/**
 * Follows `/api/stream` of run `epoch` from the given positions: new attempts and hub device
 * changes. EventSource reconnects on its own after a drop and resumes with the last event id it
 * saw (which names the run), so nothing is missed or repeated; when the browser gives up (an
 * answer that is not a stream, e.g. while the emulator restarts), a new one is opened from the
 * positions reached. A `ready` event of another run calls `onNewEpoch` and stops.
 */
export function followStream(
  start: { epoch: string; afterSeq: number; devicesAfter: number },
  handlers: StreamHandlers,
): () => void {
  let { afterSeq, devicesAfter } = start;
  let source: EventSource | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const stop = () => {
    stopped = true;
    source?.close();
    if (timer !== undefined) clearTimeout(timer);
  };
  const open = () => {
    const query = new URLSearchParams({
      after: String(afterSeq),
      devicesAfter: String(devicesAfter),
      epoch: start.epoch,
    });
    const current = new EventSource(`/api/stream?${query}`);
    source = current;
    handlers.onState('connecting');
    current.addEventListener('ready', (event) => {
      const { epoch } = JSON.parse((event as MessageEvent<string>).data) as { epoch: string };
      if (epoch !== start.epoch) {
        stop();
        handlers.onNewEpoch();
        return;
      }
      handlers.onState('live');
    });
    current.addEventListener('attempts', (event) => {
      const batch = JSON.parse((event as MessageEvent<string>).data) as AttemptSummary[];
      afterSeq = batch.at(-1)?.seq ?? afterSeq;
      handlers.onAttempts(batch);
    });
    current.addEventListener('hub-devices', (event) => {
      const change = JSON.parse((event as MessageEvent<string>).data) as {
        devices: HubDeviceSummary[];
        counts: Record<string, number>;
      };
      for (const device of change.devices) devicesAfter = Math.max(devicesAfter, device.seq);
      handlers.onHubDevices(change);
    });
    current.onerror = () => {
      handlers.onState('reconnecting');
      if (current.readyState !== EventSource.CLOSED || stopped) return;
      timer = setTimeout(() => {
        if (!stopped) open();
      }, REOPEN_MS);
    };
  };
  open();
  return stop;
}
