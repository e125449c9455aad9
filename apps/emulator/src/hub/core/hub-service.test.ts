import { createSasToken, deriveDeviceKey, generateSymmetricKey } from '@dpskit/contracts';
import { describe, expect, it } from 'vitest';
import { HUB_OWNER_POLICY_NAME, type HubEvent, HubService, WELL_KNOWN_HUB_KEY } from './hub-service.js';
import { applyAssignment, MemoryHubStore } from './store.js';

const HUB = 'hub-a.azure-devices.net';
const now = new Date('2026-12-02T12:00:00.000Z');
const key = deriveDeviceKey(generateSymmetricKey(), 'dev-1');
const expiresAt = Math.floor(now.getTime() / 1000) + 3600;

function setup() {
  const store = new MemoryHubStore();
  const events: HubEvent[] = [];
  const hub = new HubService({
    store,
    hubs: [HUB, 'hub-b.azure-devices.net'],
    now: () => now,
    onEvent: (e) => events.push(e),
  });
  applyAssignment(
    store,
    {
      registrationId: 'dev-1',
      hub: HUB,
      deviceId: 'dev-1',
      keys: { primaryKey: key, secondaryKey: generateSymmetricKey(32) },
      resetTwin: true,
      initialTwin: { tags: { kind: 'toaster' }, properties: { desired: { temp: 180 } } },
    },
    now,
  );
  return { hub, store, events };
}

const deviceToken = (resource: string, signingKey = key, at = expiresAt) =>
  createSasToken({ resource, key: signingKey, expiresAt: at, keyName: 'unused' }).replace(/&skn=unused/, '');

describe('HubService', () => {
  it('authenticates a device by its key and sr={hub}/devices/{id}, and says why not otherwise', () => {
    const { hub } = setup();
    expect(hub.authenticateDevice({ hub: HUB, deviceId: 'dev-1', token: deviceToken(`${HUB}/devices/dev-1`) })).toEqual(
      {
        ok: true,
        hub: HUB,
        deviceId: 'dev-1',
        // The verified token's se: the transports time the connection's end by it.
        tokenExpiresAt: expiresAt,
      },
    );
    const reason = (input: Parameters<HubService['authenticateDevice']>[0]) => {
      const result = hub.authenticateDevice(input);
      return result.ok ? 'ok' : result.reason;
    };
    expect(
      reason({
        hub: 'hub-b.azure-devices.net',
        deviceId: 'dev-1',
        token: deviceToken(`hub-b.azure-devices.net/devices/dev-1`),
      }),
    ).toBe('device-not-found');
    expect(reason({ hub: 'elsewhere.net', deviceId: 'dev-1', token: deviceToken(`${HUB}/devices/dev-1`) })).toBe(
      'unknown-hub',
    );
    expect(
      reason({ hub: HUB, deviceId: 'dev-1', token: deviceToken(`${HUB}/devices/dev-1`, generateSymmetricKey()) }),
    ).toBe('signature-mismatch');
    expect(reason({ hub: HUB, deviceId: 'dev-1', token: deviceToken(`${HUB}/devices/dev-2`) })).toBe(
      'resource-mismatch',
    );
    expect(
      reason({ hub: HUB, deviceId: 'dev-1', token: deviceToken(`${HUB}/devices/dev-1`, key, expiresAt - 7200) }),
    ).toBe('expired');
    // No credential: missing-token, as DPS's attestation and the registry say (was 'malformed').
    expect(reason({ hub: HUB, deviceId: 'dev-1', token: undefined })).toBe('missing-token');
    expect(reason({ hub: HUB, deviceId: 'dev-1', token: '' })).toBe('missing-token');
    expect(reason({ hub: HUB, deviceId: 'dev-1', token: 'Bearer abc' })).toBe('malformed');
  });

  it('serves the twin to the device and the registry, and pushes desired changes with their $version', () => {
    const { hub, events } = setup();
    expect(hub.deviceTwin(HUB, 'dev-1')).toEqual({ desired: { temp: 180, $version: 1 }, reported: { $version: 1 } });
    expect(hub.reportProperties(HUB, 'dev-1', { fw: '1.0' })).toBe(2);
    const twin = hub.getTwin(HUB, 'dev-1') as { etag: string; properties: { reported: object }; tags: object };
    expect(twin.properties.reported).toMatchObject({ fw: '1.0', $version: 2 });
    expect(twin.tags).toEqual({ kind: 'toaster' });
    hub.updateTwin(HUB, 'dev-1', { properties: { desired: { temp: 200 } } }, `"${twin.etag}"`);
    expect(events.at(-1)).toMatchObject({ kind: 'twin-updated', desired: { temp: 200, $version: 2 } });
    // The old etag no longer matches.
    expect(() => hub.updateTwin(HUB, 'dev-1', { tags: { a: 1 } }, `"${twin.etag}"`)).toThrow(/Precondition failed/);
  });

  it('authorizes the registry with iothubowner and the well-known key', () => {
    const { hub } = setup();
    const token = createSasToken({ resource: HUB, key: WELL_KNOWN_HUB_KEY, expiresAt, keyName: HUB_OWNER_POLICY_NAME });
    expect(hub.authorizeRegistry(HUB, token, 'RegistryWrite')).toMatchObject({
      ok: true,
      policy: HUB_OWNER_POLICY_NAME,
    });
    expect(hub.authorizeRegistry('hub-b.azure-devices.net', token, 'RegistryRead')).toMatchObject({
      ok: false,
      reason: 'resource-mismatch',
    });
    const forged = createSasToken({
      resource: HUB,
      key: generateSymmetricKey(32),
      expiresAt,
      keyName: HUB_OWNER_POLICY_NAME,
    });
    expect(hub.authorizeRegistry(HUB, forged, 'RegistryRead')).toMatchObject({
      ok: false,
      reason: 'signature-mismatch',
    });
  });

  it('creates, updates and deletes devices through the registry; deleted devices cannot connect', () => {
    const { hub } = setup();
    const created = hub.putDevice(HUB, 'manual-1', { deviceId: 'manual-1' }, undefined) as {
      etag: string;
      authentication: { symmetricKey: { primaryKey: string } };
    };
    expect(created.authentication.symmetricKey.primaryKey).toMatch(/=$/);
    expect(() => hub.putDevice(HUB, 'manual-1', { deviceId: 'manual-1' }, undefined)).toThrow(/already registered/);
    expect(hub.putDevice(HUB, 'manual-1', { status: 'disabled' }, `"${created.etag}"`)).toMatchObject({
      status: 'disabled',
    });
    expect(() => hub.putDevice(HUB, 'bad/id', {}, undefined)).toThrow(/Invalid device id/);
    expect(() => hub.putDevice(HUB, 'x509-1', { authentication: { type: 'certificateAuthority' } }, undefined)).toThrow(
      /not emulated/,
    );
    hub.deleteDevice(HUB, 'dev-1', '*');
    expect(() => hub.getTwin(HUB, 'dev-1')).toThrow(/not found/);
    const result = hub.authenticateDevice({ hub: HUB, deviceId: 'dev-1', token: deviceToken(`${HUB}/devices/dev-1`) });
    expect(result).toMatchObject({ ok: false, reason: 'device-not-found' });
  });

  it('creates selfSigned devices by thumbprint (as azure-iothub sends x509Thumbprint) and checks the thumbprints', () => {
    const { hub } = setup();
    const primary = 'ab'.repeat(32);
    const created = hub.putDevice(
      HUB,
      'x509-1',
      { deviceId: 'x509-1', authentication: { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: primary } } },
      undefined,
    );
    expect(created).toMatchObject({
      authentication: {
        type: 'selfSigned',
        symmetricKey: { primaryKey: null, secondaryKey: null },
        x509Thumbprint: { primaryThumbprint: primary.toUpperCase(), secondaryThumbprint: primary.toUpperCase() },
      },
    });
    expect(() =>
      hub.putDevice(
        HUB,
        'x509-2',
        { authentication: { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: 'nope' } } },
        undefined,
      ),
    ).toThrow(/x509Thumbprint.primaryThumbprint must be a SHA-1 or SHA-256 thumbprint/);
    expect(() => hub.putDevice(HUB, 'x509-2', { authentication: { type: 'selfSigned' } }, undefined)).toThrow(
      /primaryThumbprint is required/,
    );
    // Back to keys: the thumbprints go.
    const updated = hub.putDevice(HUB, 'x509-1', { authentication: { type: 'sas' } }, '*') as {
      authentication: { symmetricKey: { primaryKey: string }; x509Thumbprint: { primaryThumbprint: null } };
    };
    expect(updated.authentication.symmetricKey.primaryKey).toMatch(/=$/);
    expect(updated.authentication.x509Thumbprint.primaryThumbprint).toBeNull();
  });

  it('keeps telemetry per hub, bounded, and records activity', () => {
    const { hub, events } = setup();
    hub.receiveTelemetry(HUB, 'dev-1', { body: Buffer.from('{"t":1}'), properties: { a: 'b' }, transport: 'mqtt' });
    expect(hub.telemetry(HUB, 'dev-1')).toMatchObject([
      { deviceId: 'dev-1', properties: { a: 'b' }, transport: 'mqtt' },
    ]);
    expect(hub.telemetry('hub-b.azure-devices.net')).toEqual([]);
    expect(events.at(-1)).toMatchObject({ kind: 'telemetry', bytes: 7, body: '{"t":1}' });
    expect(() =>
      hub.receiveTelemetry(HUB, 'ghost', { body: Buffer.alloc(0), properties: {}, transport: 'mqtt' }),
    ).toThrow(/not found/);
  });
});
