import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { ClippedText } from '../../src/core/attempts.js';
import { type AttemptEntry, api } from './api.js';
import { enrollmentLabel, outcomeText, pretty, time } from './format.js';

/** One attempt opened: outcome, the webhook exchange as sent and answered, payload and state. */
export function DetailPane(props: { seq: number; onClose: () => void }) {
  const [entry, setEntry] = useState<AttemptEntry>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    setEntry(undefined);
    setError(undefined);
    api.attempt(props.seq).then(setEntry, (err: Error) => setError(err.message));
  }, [props.seq]);

  return (
    <Pane title={entry?.registrationId ?? '…'} testId="detail" error={error} onClose={props.onClose}>
      {entry ? <Detail entry={entry} /> : null}
    </Pane>
  );
}

/** The side pane an opened row shows in: its title, a close button, an error if loading failed. */
export function Pane(props: {
  title: string;
  testId: string;
  error: string | undefined;
  onClose: () => void;
  children: ComponentChildren;
}) {
  return (
    <aside class="detail" data-testid={props.testId}>
      <div class="detail-head">
        <h2 class="mono">{props.title}</h2>
        <button type="button" onClick={props.onClose} aria-label="Close">
          ×
        </button>
      </div>
      {props.error ? <p class="error">{props.error}</p> : null}
      {props.children}
    </aside>
  );
}

function Detail({ entry }: { entry: AttemptEntry }) {
  const { detail, webhook } = entry;
  return (
    <>
      <dl class="facts" data-testid="detail-outcome">
        <dt>Outcome</dt>
        <dd>
          <span class={`pill ${entry.status}`}>{entry.status}</span> {outcomeText(entry)}
        </dd>
        {entry.substatus ? (
          <>
            <dt>Substatus</dt>
            <dd>{entry.substatus}</dd>
          </>
        ) : null}
        <dt>Time</dt>
        <dd>
          {time(entry.timestampUtc)} ({entry.durationMs} ms)
        </dd>
        <dt>Transport</dt>
        <dd>{entry.transport}</dd>
        <dt>Enrollment</dt>
        <dd>
          {enrollmentLabel(entry)}
          {entry.policy ? `, ${entry.policy} allocation` : ''}
        </dd>
        {entry.operationId ? (
          <>
            <dt>Operation</dt>
            <dd class="mono">{entry.operationId}</dd>
          </>
        ) : null}
      </dl>
      {detail.webhook ? (
        <>
          <Section title={`Webhook request: POST ${detail.webhook.request.url}`} testId="webhook-request">
            <Body text={detail.webhook.request.body} />
          </Section>
          <Section
            title={
              detail.webhook.response
                ? `Webhook response: ${detail.webhook.response.status}`
                : `Webhook response: none (${webhook?.failure ?? 'no answer'}${webhook?.failureReason ? `: ${webhook.failureReason}` : ''})`
            }
            testId="webhook-response"
          >
            {webhook ? (
              <p class="meta">
                {webhook.latencyMs} ms, {webhook.attempts} call{webhook.attempts === 1 ? '' : 's'}
                {webhook.attempts > 1 ? ' (answers ≥ 429 are retried on DPS schedule)' : ''}
              </p>
            ) : null}
            {detail.webhook.response ? <Body text={detail.webhook.response.body} /> : null}
            {detail.webhook.response?.bodyError ? <p class="error">{detail.webhook.response.bodyError}</p> : null}
          </Section>
        </>
      ) : entry.policy ? (
        <p class="meta">No webhook: {entry.policy} allocation decides in the emulator.</p>
      ) : null}
      {detail.devicePayload ? (
        <Section title="Device payload" testId="device-payload">
          <Body text={detail.devicePayload} />
        </Section>
      ) : null}
      {detail.registrationState ? (
        <Section title="Registration state the device got" testId="registration-state">
          <Body text={detail.registrationState} />
        </Section>
      ) : null}
      {detail.initialTwin ? (
        <Section title="Initial twin" testId="initial-twin">
          <Body text={detail.initialTwin} />
        </Section>
      ) : null}
    </>
  );
}

export function Section(props: { title: string; testId: string; children: ComponentChildren }) {
  return (
    <section class="detail-section" data-testid={props.testId}>
      <h3>{props.title}</h3>
      {props.children}
    </section>
  );
}

function Body({ text }: { text: ClippedText }) {
  return (
    <pre class="body">
      {pretty(text.text)}
      {text.omitted ? `\n… ${text.omitted.toLocaleString('en')} more characters not kept` : ''}
    </pre>
  );
}
