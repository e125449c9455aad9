import type { Enrollments, EnrollmentView } from './api.js';

export function EnrollmentsView({ enrollments }: { enrollments: Enrollments | undefined }) {
  if (!enrollments) return <p class="empty">Loading enrollments…</p>;
  return (
    <div class="enrollments">
      <EnrollmentTable title="Enrollment groups" rows={enrollments.groups} />
      <EnrollmentTable title="Individual enrollments" rows={enrollments.individuals} />
    </div>
  );
}

function EnrollmentTable({ title, rows }: { title: string; rows: EnrollmentView[] }) {
  return (
    <section>
      <h2>
        {title} ({rows.length})
      </h2>
      {rows.length === 0 ? (
        <p class="empty">None.</p>
      ) : (
        <table class="enrollment-table">
          <thead>
            <tr>
              <th>ID</th>
              <th>Attestation</th>
              <th>Allocation</th>
              <th>Hubs</th>
              <th>Initial twin</th>
              <th>Status</th>
              <th class="num">Registrations</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((e) => (
              <tr key={`${e.kind}:${e.id}`} data-testid="enrollment-row" data-enrollment-id={e.id}>
                <td class="mono">
                  {e.id}
                  {e.deviceId ? <div class="meta">device id {e.deviceId}</div> : null}
                </td>
                <td>{e.attestationType}</td>
                <td>
                  {e.allocationPolicy ?? 'instance default'}
                  {e.webhookUrl ? (
                    <div class="meta mono" data-testid="webhook-url">
                      {e.webhookUrl} (api {e.webhookApiVersion})
                    </div>
                  ) : null}
                </td>
                <td>{e.iotHubs?.join(', ') ?? e.iotHubHostName ?? 'all linked hubs'}</td>
                <td>{e.initialTwin ? <pre class="body small">{JSON.stringify(e.initialTwin, null, 2)}</pre> : '—'}</td>
                <td>
                  <span class={`pill ${e.provisioningStatus === 'enabled' ? 'assigned' : 'disabled'}`}>
                    {e.provisioningStatus}
                  </span>
                </td>
                <td class="num">{e.registrations}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
