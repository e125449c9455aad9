import { useMemo, useState } from 'preact/hooks';
import type { AttemptSummary, Enrollments } from './api.js';
import { DetailPane } from './detail.js';
import { enrollmentLabel, outcomeText, time } from './format.js';

/** Rows drawn at once; the filters reach every attempt held. */
const MAX_ROWS = 300;

const OUTCOMES = ['assigned', 'failed', 'disabled', 'unauthorized'] as const;

export function RegistrationsView(props: { attempts: AttemptSummary[]; enrollments: Enrollments | undefined }) {
  const [outcome, setOutcome] = useState('');
  const [enrollment, setEnrollment] = useState('');
  const [id, setId] = useState('');
  const [selected, setSelected] = useState<number>();

  const enrollmentOptions = useMemo(() => {
    const keys = new Set<string>();
    for (const g of props.enrollments?.groups ?? []) keys.add(`group:${g.id}`);
    for (const i of props.enrollments?.individuals ?? []) keys.add(`individual:${i.id}`);
    for (const a of props.attempts) if (a.enrollment) keys.add(`${a.enrollment.kind}:${a.enrollment.id}`);
    return [...keys].sort();
  }, [props.enrollments, props.attempts]);

  const matching = useMemo(() => {
    const needle = id.trim().toLowerCase();
    const rows: AttemptSummary[] = [];
    let count = 0;
    for (let i = props.attempts.length - 1; i >= 0; i--) {
      const a = props.attempts[i] as AttemptSummary;
      if (outcome && a.status !== outcome) continue;
      if (enrollment && (!a.enrollment || `${a.enrollment.kind}:${a.enrollment.id}` !== enrollment)) continue;
      if (needle && !a.registrationId.toLowerCase().includes(needle)) continue;
      count++;
      if (rows.length < MAX_ROWS) rows.push(a);
    }
    return { rows, count };
  }, [props.attempts, outcome, enrollment, id]);

  return (
    <div class={selected === undefined ? 'registrations' : 'registrations with-detail'}>
      <section class="list">
        <form class="filters" onSubmit={(e) => e.preventDefault()}>
          <label>
            Outcome
            <select
              data-testid="filter-outcome"
              value={outcome}
              onChange={(e) => setOutcome((e.target as HTMLSelectElement).value)}
            >
              <option value="">all</option>
              {OUTCOMES.map((o) => (
                <option key={o} value={o}>
                  {o}
                </option>
              ))}
            </select>
          </label>
          <label>
            Enrollment
            <select
              data-testid="filter-enrollment"
              value={enrollment}
              onChange={(e) => setEnrollment((e.target as HTMLSelectElement).value)}
            >
              <option value="">all</option>
              {enrollmentOptions.map((key) => (
                <option key={key} value={key}>
                  {key.replace(':', ' ')}
                </option>
              ))}
            </select>
          </label>
          <label>
            Registration ID
            <input
              data-testid="filter-id"
              type="search"
              placeholder="contains…"
              value={id}
              onInput={(e) => setId((e.target as HTMLInputElement).value)}
            />
          </label>
          <span class="count" data-testid="match-count">
            {matching.count.toLocaleString('en')} of {props.attempts.length.toLocaleString('en')}
            {matching.count > MAX_ROWS ? ` (newest ${MAX_ROWS} shown)` : ''}
          </span>
        </form>
        <table class="attempts">
          <thead>
            <tr>
              <th>Time</th>
              <th>Registration ID</th>
              <th>Transport</th>
              <th>Enrollment</th>
              <th>Outcome</th>
              <th>Substatus</th>
              <th class="num">Latency</th>
            </tr>
          </thead>
          <tbody>
            {matching.rows.map((a) => (
              <tr
                key={a.seq}
                data-testid="attempt-row"
                data-registration-id={a.registrationId}
                data-status={a.status}
                class={`${a.status}${a.seq === selected ? ' selected' : ''}`}
                onClick={() => setSelected(a.seq)}
              >
                <td class="mono">{time(a.timestampUtc)}</td>
                <td class="mono">{a.registrationId}</td>
                <td>{a.transport}</td>
                <td class="enrollment" title={enrollmentLabel(a)}>
                  {a.enrollment?.id ?? '—'}
                </td>
                <td class="outcome">
                  <span class={`pill ${a.status}`}>{a.status}</span>{' '}
                  <span title={outcomeText(a)}>
                    {a.status === 'assigned' && a.assignedHub
                      ? (a.assignedHub.split('.')[0] ?? a.assignedHub)
                      : outcomeText(a)}
                  </span>
                </td>
                <td>{a.substatus ?? ''}</td>
                <td class="num">{a.durationMs} ms</td>
              </tr>
            ))}
          </tbody>
        </table>
        {props.attempts.length === 0 ? (
          <p class="empty">No registrations yet: register a device and it appears here as it happens.</p>
        ) : null}
      </section>
      {selected !== undefined ? <DetailPane seq={selected} onClose={() => setSelected(undefined)} /> : null}
    </div>
  );
}
