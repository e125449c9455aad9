import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import {
  type AttemptSummary,
  api,
  type Enrollments,
  followAttempts,
  type StreamState,
  type WebViewOverview,
} from './api.js';
import { EnrollmentsView } from './enrollments.js';
import { FleetView } from './fleet.js';
import { RegistrationsView } from './registrations.js';

/** Attempts the page holds (newest kept): enough for a 1,000-device fleet several times over. */
export const MAX_HELD = 5000;

type Tab = 'registrations' | 'fleet' | 'enrollments';

export function App() {
  const [overview, setOverview] = useState<WebViewOverview>();
  const [enrollments, setEnrollments] = useState<Enrollments>();
  const [attempts, setAttempts] = useState<AttemptSummary[]>([]);
  const [stream, setStream] = useState<StreamState>('connecting');
  const [error, setError] = useState<string>();
  const [tab, setTab] = useState<Tab>(() => tabFromHash());
  const lastSeq = useRef(0);
  const enrollmentsDue = useRef(false);

  const refreshEnrollments = useCallback(() => {
    api.enrollments().then(setEnrollments, (err: Error) => setError(err.message));
  }, []);

  useEffect(() => {
    let stop: (() => void) | undefined;
    let cancelled = false;
    api.overview().then(setOverview, (err: Error) => setError(err.message));
    refreshEnrollments();
    api.latestAttempts(MAX_HELD).then(
      (initial) => {
        if (cancelled) return;
        lastSeq.current = initial.at(-1)?.seq ?? 0;
        setAttempts(initial);
        stop = followAttempts(
          lastSeq.current,
          (batch) => {
            const fresh = batch.filter((a) => a.seq > lastSeq.current);
            if (fresh.length === 0) return;
            lastSeq.current = fresh[fresh.length - 1]?.seq ?? lastSeq.current;
            enrollmentsDue.current = true;
            setAttempts((held) => {
              const next = held.concat(fresh);
              return next.length > MAX_HELD ? next.slice(next.length - MAX_HELD) : next;
            });
          },
          setStream,
        );
      },
      (err: Error) => setError(err.message),
    );
    // Registration counts change with new attempts: refreshed at most every 3 s, only when they did.
    const timer = setInterval(() => {
      if (!enrollmentsDue.current) return;
      enrollmentsDue.current = false;
      refreshEnrollments();
    }, 3000);
    return () => {
      cancelled = true;
      stop?.();
      clearInterval(timer);
    };
  }, [refreshEnrollments]);

  useEffect(() => {
    const onHash = () => setTab(tabFromHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  return (
    <div class="page">
      <header class="top">
        <h1>
          DPS emulator <span class="scope">ID scope {overview?.idScope ?? '…'}</span>
        </h1>
        <div class="endpoints">
          {overview ? (
            <>
              <span>MQTT {overview.endpoints.mqtt}</span>
              <span>HTTPS {overview.endpoints.https ?? 'off'}</span>
              <span>hubs {overview.linkedHubs.map((h) => h.hostName).join(', ')}</span>
            </>
          ) : null}
        </div>
        <span class={`stream stream-${stream}`} data-testid="stream-state">
          {stream === 'live' ? '● live' : stream === 'connecting' ? '○ connecting' : '○ reconnecting'}
        </span>
      </header>
      <nav class="tabs">
        {(['registrations', 'fleet', 'enrollments'] as const).map((name) => (
          <a key={name} href={`#${name}`} class={tab === name ? 'tab active' : 'tab'} data-testid={`tab-${name}`}>
            {name === 'registrations'
              ? `Registrations (${attempts.length})`
              : name === 'fleet'
                ? 'Fleet'
                : 'Enrollments'}
          </a>
        ))}
      </nav>
      {error ? <p class="error">{error}</p> : null}
      <main>
        {tab === 'registrations' ? <RegistrationsView attempts={attempts} enrollments={enrollments} /> : null}
        {tab === 'fleet' ? <FleetView attempts={attempts} /> : null}
        {tab === 'enrollments' ? <EnrollmentsView enrollments={enrollments} /> : null}
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
  return hash === 'fleet' || hash === 'enrollments' ? hash : 'registrations';
}
