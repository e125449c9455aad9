import { describe, expect, it } from 'vitest';
import { type HubAssignment, planAssignment } from './assignment.js';
import { HubService } from './hub-service.js';
import type { HubDevice } from './identity.js';
import { applyAssignment, MemoryHubStore } from './store.js';
import { applyReportedPatch } from './twin.js';

const now = new Date('2026-12-02T12:00:00.000Z');
const keys = { primaryKey: 'cHJpbWFyeS1rZXktMTIzNDU2Nzg=', secondaryKey: 'c2Vjb25kYXJ5LWtleS0xMjM0NTY=' };
const initialTwin = { tags: { kind: 'toaster' }, properties: { desired: { temp: 180 } } };

function assignment(overrides: Partial<HubAssignment> = {}): HubAssignment {
  return {
    registrationId: 'dev-1',
    hub: 'hub-a.net',
    deviceId: 'dev-1',
    keys,
    resetTwin: true,
    initialTwin,
    ...overrides,
  };
}

/** A store holding dev-1 on hub-a with a reported property, as after an initial assignment and a report. */
function provisioned(): { store: MemoryHubStore; device: HubDevice } {
  const store = new MemoryHubStore();
  applyAssignment(store, assignment(), now);
  const device = store.getDevice('hub-a.net', 'dev-1') as HubDevice;
  device.twin = applyReportedPatch(device.twin, { fw: '1.0' }, now);
  store.putDevice(device);
  return { store, device };
}

describe('hub writes of a DPS assignment', () => {
  it('initial assignment creates the identity with the attested keys and the initial twin', () => {
    const store = new MemoryHubStore();
    const plan = applyAssignment(store, assignment(), now);
    expect(plan.action).toBe('created');
    const device = store.getDevice('HUB-A.net', 'dev-1');
    expect(device?.identity).toMatchObject({ hub: 'hub-a.net', deviceId: 'dev-1', ...keys, status: 'enabled' });
    expect(device?.identity.generationId).toMatch(/^\d{18}$/);
    expect(device?.twin).toMatchObject({ tags: { kind: 'toaster' }, desired: { temp: 180 }, reported: {} });
  });

  it('migrateDeviceData true, new hub: the twin moves and the old identity is removed', () => {
    const { store } = provisioned();
    const plan = applyAssignment(
      store,
      assignment({ hub: 'hub-b.net', previous: { hub: 'hub-a.net', deviceId: 'dev-1' }, resetTwin: false }),
      now,
    );
    expect(plan.action).toBe('moved');
    expect(store.getDevice('hub-a.net', 'dev-1')).toBeUndefined();
    expect(store.getDevice('hub-b.net', 'dev-1')?.twin).toMatchObject({
      reported: { fw: '1.0' },
      tags: { kind: 'toaster' },
    });
  });

  it('migrateDeviceData false: the twin resets to the initial twin, on the new hub or the same one', () => {
    const moved = provisioned();
    applyAssignment(
      moved.store,
      assignment({ hub: 'hub-b.net', previous: { hub: 'hub-a.net', deviceId: 'dev-1' }, resetTwin: true }),
      now,
    );
    expect(moved.store.getDevice('hub-a.net', 'dev-1')).toBeUndefined();
    expect(moved.store.getDevice('hub-b.net', 'dev-1')?.twin).toMatchObject({ reported: {}, desired: { temp: 180 } });

    const stayed = provisioned();
    const plan = applyAssignment(
      stayed.store,
      assignment({ previous: { hub: 'hub-a.net', deviceId: 'dev-1' }, resetTwin: true }),
      now,
    );
    expect(plan.action).toBe('reset');
    const device = stayed.store.getDevice('hub-a.net', 'dev-1');
    expect(device?.twin.reported).toEqual({});
    // Same identity (generation), and a twin version past the old one: stale etags fail.
    expect(device?.identity.generationId).toBe(stayed.device.identity.generationId);
    expect(device?.twin.version).toBeGreaterThan(stayed.device.twin.version);
  });

  it('re-registration on the same hub with migration keeps the twin untouched', () => {
    const { store, device } = provisioned();
    applyAssignment(store, assignment({ previous: { hub: 'hub-a.net', deviceId: 'dev-1' }, resetTwin: false }), now);
    expect(store.getDevice('hub-a.net', 'dev-1')?.twin).toEqual(device.twin);
  });

  it('a device deleted from its hub meanwhile is created again from the initial twin', () => {
    const { store } = provisioned();
    store.deleteDevice('hub-a.net', 'dev-1');
    const plan = planAssignment(
      assignment({ hub: 'hub-b.net', previous: { hub: 'hub-a.net', deviceId: 'dev-1' }, resetTwin: false }),
      {},
      now,
    );
    expect(plan.writes).toHaveLength(1);
    expect(plan.writes[0]).toMatchObject({
      kind: 'put',
      device: { twin: { tags: { kind: 'toaster' }, reported: {} } },
    });
  });
});

describe('X.509 devices', () => {
  const thumbprint = 'AB'.repeat(32);

  it('are created selfSigned with the attested certificate thumbprint, no keys; the hub refuses their SAS', () => {
    const store = new MemoryHubStore();
    const { keys: _keys, ...x509 } = assignment();
    applyAssignment(
      store,
      { ...x509, x509Thumbprint: { primaryThumbprint: thumbprint, secondaryThumbprint: thumbprint } },
      now,
    );
    const device = store.getDevice('hub-a.net', 'dev-1');
    expect(device?.identity).toMatchObject({ authenticationType: 'selfSigned', primaryThumbprint: thumbprint });
    expect(device?.identity.primaryKey).toBeUndefined();
    expect(device?.twin.desired).toEqual({ temp: 180 });
    const hub = new HubService({ store, hubs: ['hub-a.net'] });
    expect(
      hub.authenticateDevice({ hub: 'hub-a.net', deviceId: 'dev-1', token: 'SharedAccessSignature sr=x' }),
    ).toMatchObject({ ok: false, reason: 'certificate-missing' });
    expect(hub.getDevice('hub-a.net', 'dev-1')).toMatchObject({
      authentication: {
        type: 'selfSigned',
        symmetricKey: { primaryKey: null, secondaryKey: null },
        x509Thumbprint: { primaryThumbprint: thumbprint, secondaryThumbprint: thumbprint },
      },
    });
    expect(hub.getTwin('hub-a.net', 'dev-1')).toMatchObject({
      authenticationType: 'selfSigned',
      x509Thumbprint: { primaryThumbprint: thumbprint },
    });
  });

  it('a device that re-provisions with keys after a certificate (or the reverse) keeps only the new credential', () => {
    const store = new MemoryHubStore();
    applyAssignment(store, assignment(), now);
    const { keys: _keys, ...x509 } = assignment({ previous: { hub: 'hub-a.net', deviceId: 'dev-1' } });
    applyAssignment(
      store,
      { ...x509, x509Thumbprint: { primaryThumbprint: thumbprint, secondaryThumbprint: thumbprint } },
      now,
    );
    const identity = store.getDevice('hub-a.net', 'dev-1')?.identity;
    expect(identity).toMatchObject({ authenticationType: 'selfSigned', primaryThumbprint: thumbprint });
    expect(identity?.primaryKey).toBeUndefined();
    applyAssignment(store, assignment({ previous: { hub: 'hub-a.net', deviceId: 'dev-1' } }), now);
    const back = store.getDevice('hub-a.net', 'dev-1')?.identity;
    expect(back).toMatchObject({ authenticationType: 'sas', ...keys });
    expect(back?.primaryThumbprint).toBeUndefined();
  });

  it('identities stored as certificateAuthority by an earlier version are refused with the reason', () => {
    const store = new MemoryHubStore();
    const { keys: _keys, ...neither } = assignment();
    applyAssignment(store, neither, now);
    expect(store.getDevice('hub-a.net', 'dev-1')?.identity.authenticationType).toBe('certificateAuthority');
    const hub = new HubService({ store, hubs: ['hub-a.net'] });
    expect(hub.authenticateDevice({ hub: 'hub-a.net', deviceId: 'dev-1', token: undefined })).toMatchObject({
      ok: false,
      reason: 'certificate-authority-not-emulated',
    });
  });
});
