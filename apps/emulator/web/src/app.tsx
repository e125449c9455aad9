import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import {
  type AttemptSummary,
  api,
  type Enrollments,
  followStream,
  type HubDeviceSummary,
  type HubList,
  type StreamState,
  type WebViewOverview,
} from './api.js';
import { EnrollmentsView } from './enrollments.js';
import { FleetView } from './fleet.js';
import { HubsView, hubDeviceKey } from './hubs.js';
import { RegistrationsView } from './registrations.js';

/** Attempts the page holds (newest kept): enough for a 1,000-device fleet several times over. */
export const MAX_HELD = 5000;

type Tab = 'registrations' | 'fleet' | 'enrollments' | 'hubs';
const TABS: readonly Tab[] = ['registrations', 'fleet', 'enrollments', 'hubs'];

/** The hub devices the page holds, by `hubDeviceKey`. */
type HubDevices = ReadonlyMap<string, HubDeviceSummary>;

function hubDevicesOf(list: HubList): Map<string, HubDeviceSummary> {
  const devices = new Map<string, HubDeviceSummary>();
  for (const hub of list.hubs) for (const d of hub.devices) devices.set(hubDeviceKey(d.hub, d.deviceId), d);
  return devices;
}

export function App() {
  const [overview, setOverview] = useState<WebViewOverview>();
  const [enrollments, setEnrollments] = useState<Enrollments>();
  const [attempts, setAttempts] = useState<AttemptSummary[]>([]);
  const [hubDevices, setHubDevices] = useState<HubDevices>(new Map());
  const [hubCounts, setHubCounts] = useState<Record<string, number>>({});
  const [stream, setStream] = useState<StreamState>('connecting');
  const [error, setError] = useState<string>();
  const [tab, setTab] = useState<Tab>(() => tabFromHash());
  // Counts the loads (the load effect depends on it): a server of another run (restarted, its state folder perhaps reset) starts a new one.
  const [generation, setGeneration] = useState(0);
  const lastSeq = useRef(0);
  const enrollmentsDue = useRef(false);
  const hubsDue = useRef(false);

  const refreshEnrollments = useCallback(() => {
    api.enrollments().then(setEnrollments, (err: Error) => setError(err.message));
  }, []);

  useEffect(() => {
    let stop: (() => void) | undefined;
    let cancelled = false;
    setError(undefined);
    const load = async () => {
      // The overview first: its epoch names the run everything after is read from.
      const first = await api.overview();
      const [initial, hubs] = await Promise.all([api.latestAttempts(MAX_HELD), api.hubs()]);
      if (cancelled) return;
      setOverview(first);
      refreshEnrollments();
      lastSeq.current = initial.at(-1)?.seq ?? 0;
      setAttempts(initial);
      setHubDevices(hubDevicesOf(hubs));
      setHubCounts(Object.fromEntries(hubs.hubs.map((h) => [h.hostName, h.deviceCount])));
      stop = followStream(
        { epoch: first.epoch, afterSeq: lastSeq.current, devicesAfter: hubs.seq },
        {
          onAttempts: (batch) => {
            const fresh = batch.filter((a) => a.seq > lastSeq.current);
            if (fresh.length === 0) return;
            lastSeq.current = fresh[fresh.length - 1]?.seq ?? lastSeq.current;
            enrollmentsDue.current = true;
            setAttempts((held) => {
              const next = held.concat(fresh);
              return next.length > MAX_HELD ? next.slice(next.length - MAX_HELD) : next;
            });
          },
          onHubDevices: ({ devices, counts }) => {
            setHubDevices((held) => {
              const next = new Map(held);
              for (const d of devices) {
                const key = hubDeviceKey(d.hub, d.deviceId);
                if ((next.get(key)?.seq ?? 0) < d.seq) next.set(key, d);
              }
              // More held than the hub has: some were deleted (no write to follow), so the list is read again.
              for (const [hub, count] of Object.entries(counts)) {
                let held = 0;
                for (const d of next.values()) if (d.hub.toLowerCase() === hub.toLowerCase()) held++;
                if (held > count) hubsDue.current = true;
              }
              return next;
            });
            setHubCounts(counts);
          },
          onNewEpoch: () => setGeneration((g) => g + 1),
          onState: setStream,
        },
      );
    };
    load().catch((err: Error) => {
      if (cancelled) return;
      setError(err.message);
      // The emulator may be restarting: try again, as the stream would.
      setTimeout(() => {
        if (!cancelled) setGeneration((g) => g + 1);
      }, 2000);
    });
    // Registration counts change with new attempts, hub lists with deletions: refreshed at most every 3 s, only when due.
    const timer = setInterval(() => {
      if (enrollmentsDue.current) {
        enrollmentsDue.current = false;
        refreshEnrollments();
      }
      if (hubsDue.current) {
        hubsDue.current = false;
        api.hubs().then(
          (hubs) => {
            if (cancelled) return;
            // What the stream brought after the list was read stays.
            setHubDevices((held) => {
              const next = hubDevicesOf(hubs);
              for (const [key, d] of held) if (d.seq > hubs.seq) next.set(key, d);
              return next;
            });
          },
          (err: Error) => setError(err.message),
        );
      }
    }, 3000);
    return () => {
      cancelled = true;
      stop?.();
      clearInterval(timer);
    };
  }, [refreshEnrollments, generation]);

  useEffect(() => {
    const onHash = () => setTab(tabFromHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  const hubNames = overview?.linkedHubs.map((h) => h.hostName) ?? [];
  return (
    <div class="page">
      <header class="top">
        <h1>
          DPS emulator <span class="scope">ID scope {overview?.idScope ?? '…'}</span>
        </h1>
        <div class="endpoints">
          {overview ? (
            <>
              <span data-testid="endpoint-mqtt">MQTT {overview.endpoints.mqtt}</span>
              <span>HTTPS {overview.endpoints.https ?? 'off'}</span>
              <span>hubs {hubNames.join(', ')}</span>
            </>
          ) : null}
        </div>
        <span class={`stream stream-${stream}`} data-testid="stream-state">
          {stream === 'live' ? '● live' : stream === 'connecting' ? '○ connecting' : '○ reconnecting'}
        </span>
      </header>
      <nav class="tabs">
        {TABS.map((name) => (
          <a key={name} href={`#${name}`} class={tab === name ? 'tab active' : 'tab'} data-testid={`tab-${name}`}>
            {name === 'registrations'
              ? `Registrations (${attempts.length})`
              : name === 'fleet'
                ? 'Fleet'
                : name === 'enrollments'
                  ? 'Enrollments'
                  : `Hubs (${hubDevices.size})`}
          </a>
        ))}
      </nav>
      {error ? <p class="error">{error}</p> : null}
      <main>
        {tab === 'registrations' ? <RegistrationsView attempts={attempts} enrollments={enrollments} /> : null}
        {tab === 'fleet' ? <FleetView attempts={attempts} /> : null}
        {tab === 'enrollments' ? <EnrollmentsView enrollments={enrollments} /> : null}
        {tab === 'hubs' ? <HubsView hubs={hubNames} devices={hubDevices} counts={hubCounts} /> : null}
      </main>
      <footer>
        Read-only view of the local emulator; keys and webhook codes are never sent to this page. Holds the newest{' '}
        {MAX_HELD.toLocaleString('en')} attempts; the store keeps {overview?.attemptHistory.toLocaleString('en') ?? '…'}
        .
      </footer>
    </div>
  );
}

function tabFromHash(): Tab {
  const hash = window.location.hash.slice(1);
  return (TABS as readonly string[]).includes(hash) ? (hash as Tab) : 'registrations';
}
