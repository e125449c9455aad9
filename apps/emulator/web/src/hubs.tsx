import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, type HubDeviceDetail, type HubDeviceSummary, type HubModuleView, type TelemetryView } from './api.js';
import { Pane, Section } from './detail.js';
import { pretty, time } from './format.js';

/** Rows drawn per hub at once (the most recently active first). */
const MAX_ROWS = 300;
/** An open device's detail is fetched again at most this often while it changes. */
const DETAIL_REFRESH_MS = 1000;

/** The key a hub device is held under: hub and device ids compare case-insensitively. */
export const hubDeviceKey = (hub: string, deviceId: string) => `${hub.toLowerCase()}\n${deviceId.toLowerCase()}`;

export function HubsView(props: {
  hubs: string[];
  devices: ReadonlyMap<string, HubDeviceSummary>;
  counts: Record<string, number>;
}) {
  const [selected, setSelected] = useState<{ hub: string; deviceId: string }>();
  const byHub = useMemo(() => {
    const lists = new Map<string, HubDeviceSummary[]>(props.hubs.map((hub) => [hub.toLowerCase(), []]));
    for (const device of props.devices.values()) lists.get(device.hub.toLowerCase())?.push(device);
    for (const list of lists.values()) list.sort((a, b) => b.seq - a.seq);
    return lists;
  }, [props.hubs, props.devices]);
  const open = selected ? props.devices.get(hubDeviceKey(selected.hub, selected.deviceId)) : undefined;

  return (
    <div class={selected ? 'registrations with-detail' : 'registrations'}>
      <section class="list hubs">
        <p class="meta">
          The linked IoT hubs as the emulator runs them: each device DPS (or the registry API) created, its twin and the
          last messages it sent. Keys are never sent to this page.
        </p>
        {props.hubs.map((hub) => {
          const devices = byHub.get(hub.toLowerCase()) ?? [];
          const connected = devices.filter((d) => d.connectionState === 'Connected').length;
          const count = props.counts[hub] ?? devices.length;
          return (
            <section key={hub} data-testid="hub" data-hub={hub}>
              <h2 class="mono">
                {hub}{' '}
                <span class="meta" data-testid="hub-counts">
                  {count.toLocaleString('en')} device{count === 1 ? '' : 's'}, {connected.toLocaleString('en')}{' '}
                  connected
                  {devices.length > MAX_ROWS ? ` (the ${MAX_ROWS} most recently active shown)` : ''}
                </span>
              </h2>
              {devices.length === 0 ? (
                <p class="empty">No devices yet: a device assigned to this hub appears here.</p>
              ) : (
                <table class="attempts hub-devices">
                  <thead>
                    <tr>
                      <th>Device ID</th>
                      <th>Auth</th>
                      <th>Status</th>
                      <th>Connection</th>
                      <th>Last activity</th>
                      <th class="num">Twin version</th>
                      <th class="num">Desired $version</th>
                      <th class="num">Reported $version</th>
                      <th>Modules</th>
                    </tr>
                  </thead>
                  <tbody>
                    {devices.slice(0, MAX_ROWS).map((d) => (
                      <tr
                        key={d.deviceId}
                        data-testid="hub-device-row"
                        data-hub={d.hub}
                        data-device-id={d.deviceId}
                        data-connection={d.connectionState}
                        class={
                          selected && hubDeviceKey(selected.hub, selected.deviceId) === hubDeviceKey(d.hub, d.deviceId)
                            ? 'selected'
                            : ''
                        }
                        onClick={() => setSelected({ hub: d.hub, deviceId: d.deviceId })}
                      >
                        <td class="mono">{d.deviceId}</td>
                        <td>{authLabel(d.authenticationType)}</td>
                        <td>
                          <span class={`pill ${d.status === 'enabled' ? 'assigned' : 'disabled'}`}>{d.status}</span>
                        </td>
                        <td>
                          <span class={`pill ${d.connectionState === 'Connected' ? 'assigned' : ''}`}>
                            {d.connectionState}
                          </span>
                        </td>
                        <td class="mono">{d.lastActivityUtc ? time(d.lastActivityUtc) : '—'}</td>
                        <td class="num">{d.twinVersion}</td>
                        <td class="num">{d.desiredVersion}</td>
                        <td class="num">{d.reportedVersion}</td>
                        <td data-testid="hub-device-modules">{modulesLabel(d)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </section>
          );
        })}
      </section>
      {selected ? (
        <HubDevicePane
          hub={selected.hub}
          deviceId={selected.deviceId}
          seq={open?.seq}
          onClose={() => setSelected(undefined)}
        />
      ) : null}
    </div>
  );
}

/** One device opened: identity facts, its twin as the device reads it, its last messages; refreshed as it changes. */
function HubDevicePane(props: { hub: string; deviceId: string; seq: number | undefined; onClose: () => void }) {
  const [detail, setDetail] = useState<HubDeviceDetail>();
  const [error, setError] = useState<string>();
  const lastFetch = useRef(0);
  const { hub, deviceId, seq } = props;

  useEffect(() => {
    setDetail(undefined);
    setError(undefined);
    lastFetch.current = 0;
  }, [hub, deviceId]);

  // Fetched on opening and again when the device changes (a new `seq`), at most once a second.
  // `seq` is in the dependencies as the trigger; it is not read inside.
  useEffect(() => {
    let cancelled = false;
    const fetchNow = () => {
      lastFetch.current = Date.now();
      api.hubDevice(hub, deviceId).then(
        (value) => {
          if (cancelled) return;
          setDetail(value);
          setError(undefined);
        },
        (err: Error) => {
          if (!cancelled) setError(err.message);
        },
      );
    };
    const wait = lastFetch.current + DETAIL_REFRESH_MS - Date.now();
    if (wait <= 0) {
      fetchNow();
      return () => {
        cancelled = true;
      };
    }
    const timer = setTimeout(fetchNow, wait);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [hub, deviceId, seq]);

  return (
    <Pane title={deviceId} testId="hub-device-detail" error={error} onClose={props.onClose}>
      {detail ? <DeviceDetail detail={detail} /> : null}
    </Pane>
  );
}

function DeviceDetail({ detail }: { detail: HubDeviceDetail }) {
  return (
    <>
      <dl class="facts" data-testid="hub-device-facts">
        <dt>Hub</dt>
        <dd class="mono">{detail.hub}</dd>
        <dt>Authentication</dt>
        <dd>{authLabel(detail.authenticationType)}</dd>
        <dt>Status</dt>
        <dd>
          {detail.status}
          {detail.statusReason ? ` (${detail.statusReason})` : ''}
        </dd>
        <dt>Connection</dt>
        <dd data-testid="hub-device-connection">
          {detail.connectionState}
          {detail.connectionStateUpdatedUtc ? ` since ${time(detail.connectionStateUpdatedUtc)}` : ''}
        </dd>
        <dt>Last activity</dt>
        <dd>{detail.lastActivityUtc ? time(detail.lastActivityUtc) : 'none yet'}</dd>
        {detail.registrationId ? (
          <>
            <dt>DPS registration</dt>
            <dd class="mono">{detail.registrationId}</dd>
          </>
        ) : null}
        <dt>Twin version</dt>
        <dd>{detail.twinVersion}</dd>
      </dl>
      <Section title="Tags" testId="twin-tags">
        <pre class="body">{JSON.stringify(detail.twin.tags, null, 2)}</pre>
      </Section>
      <Section title={`Desired properties ($version ${detail.desiredVersion})`} testId="twin-desired">
        <pre class="body">{JSON.stringify(detail.twin.desired, null, 2)}</pre>
      </Section>
      <Section title={`Reported properties ($version ${detail.reportedVersion})`} testId="twin-reported">
        <pre class="body">{JSON.stringify(detail.twin.reported, null, 2)}</pre>
      </Section>
      <Section title={`Modules (${detail.modules.length})`} testId="hub-modules">
        {detail.modules.length === 0 ? <p class="meta">No module identities.</p> : null}
        {detail.modules.map((m) => (
          <Module key={m.moduleId} module={m} />
        ))}
      </Section>
      <Section title={`Last telemetry (${detail.telemetry.length}, newest first)`} testId="telemetry">
        {detail.telemetry.length === 0 ? <p class="meta">No messages yet.</p> : null}
        {[...detail.telemetry].reverse().map((m, index) => (
          <Telemetry key={index} message={m} />
        ))}
      </Section>
    </>
  );
}

/** One module identity of the open device: its connection and its module twin. */
function Module({ module }: { module: HubModuleView }) {
  return (
    <details
      class="module"
      data-testid="hub-module"
      data-module-id={module.moduleId}
      data-connection={module.connectionState}
    >
      <summary>
        <span class="mono">{module.moduleId}</span>{' '}
        <span class={`pill ${module.connectionState === 'Connected' ? 'assigned' : ''}`}>{module.connectionState}</span>
        <span class="meta">
          {' '}
          {module.lastActivityUtc ? `last activity ${time(module.lastActivityUtc)}` : 'no activity yet'}
          {module.managedBy ? ` · managed by ${module.managedBy}` : ''} · twin version {module.twinVersion}
        </span>
      </summary>
      <dl class="facts">
        <dt>Authentication</dt>
        <dd>{authLabel(module.authenticationType)}</dd>
        <dt>Connection</dt>
        <dd>
          {module.connectionState}
          {module.connectionStateUpdatedUtc ? ` since ${time(module.connectionStateUpdatedUtc)}` : ''}
        </dd>
      </dl>
      <h4>Tags</h4>
      <pre class="body" data-testid="module-tags">
        {JSON.stringify(module.twin.tags, null, 2)}
      </pre>
      <h4>Desired properties ($version {module.desiredVersion})</h4>
      <pre class="body" data-testid="module-desired">
        {JSON.stringify(module.twin.desired, null, 2)}
      </pre>
      <h4>Reported properties ($version {module.reportedVersion})</h4>
      <pre class="body" data-testid="module-reported">
        {JSON.stringify(module.twin.reported, null, 2)}
      </pre>
    </details>
  );
}

function Telemetry({ message }: { message: TelemetryView }) {
  const properties = Object.entries(message.properties);
  return (
    <div class="telemetry" data-testid="telemetry-message">
      <p class="meta">
        {time(message.receivedUtc)}
        {message.moduleId ? ` from module ${message.moduleId}` : ''} over {message.transport.toUpperCase()},{' '}
        {message.bytes.toLocaleString('en')} bytes
        {message.encoding === 'base64' ? ' (not UTF-8: base64)' : ''}
        {properties.length > 0 ? ` · ${properties.map(([k, v]) => `${k}=${v}`).join(', ')}` : ''}
      </p>
      <pre class="body small">
        {message.encoding === 'utf-8' ? pretty(message.body) : message.body}
        {message.omittedBytes ? `\n… ${message.omittedBytes.toLocaleString('en')} more bytes not shown` : ''}
      </pre>
    </div>
  );
}

/** A device row's module column: how many module identities, how many connected. */
function modulesLabel(device: HubDeviceSummary): string {
  const count = device.moduleCount ?? 0;
  return count === 0 ? '—' : `${count} (${device.modulesConnected ?? 0} connected)`;
}

function authLabel(type: HubDeviceSummary['authenticationType']): string {
  if (type === 'sas') return 'SAS (symmetric key)';
  return type === 'selfSigned' ? 'X.509 (thumbprint)' : 'X.509 (certificate authority)';
}
