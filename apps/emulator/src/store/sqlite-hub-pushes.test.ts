import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@dpskit/node-kit';
import { afterEach, describe, expect, it } from 'vitest';
import { HubError, HubService } from '../hub/core/hub-service.js';
import type { HubPush } from '../hub/core/pushes.js';
import { applyAssignment } from '../hub/core/store.js';
import { followHubPushes } from '../hub/push-follower.js';
import { SqliteStore } from './sqlite.js';
import { HUB_METHOD_PUSHES_KEPT, HUB_PUSHES_KEPT, UncommittedHubPushes } from './sqlite-hub-pushes.js';

// Two connections on one database file stand for two processes of `dps-emulator start --workers`.

const dirs: string[] = [];
const stores: SqliteStore[] = [];
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function twoProcesses(): [SqliteStore, SqliteStore] {
  const dir = mkdtempSync(join(tmpdir(), 'dpskit-hub-pushes-'));
  dirs.push(dir);
  const a = SqliteStore.open(join(dir, 'emulator.db'));
  const b = SqliteStore.open(join(dir, 'emulator.db'));
  stores.push(a, b);
  return [a, b];
}

const HUB = 'hub-a.azure-devices.net';
const log = createLogger(() => {}, 'error');

describe('hub pushes through the store', () => {
  it("delivers the pushes of another process's registry calls, in order, and skips its own", () => {
    const [a, b] = twoProcesses();
    const outboxA = a.hubPushes('a');
    const outboxB = b.hubPushes('b');
    const hubA = new HubService({ store: a.hub, hubs: [HUB], outbox: outboxA });
    const hubB = new HubService({ store: b.hub, hubs: [HUB], outbox: outboxB });
    hubA.putDevice(HUB, 'dev-1', {}, undefined);
    hubA.putDevice(HUB, 'dev-2', {}, undefined);

    const delivered: HubPush[] = [];
    const follower = followHubPushes({ feed: outboxB, deliver: (push) => delivered.push(push), log, everyMs: 60_000 });
    try {
      // While no device is connected to B, the follower is stopped: what it owes nobody is skipped.
      hubA.updateTwin(HUB, 'dev-1', { properties: { desired: { state: 'zero' } } }, '*');
      follower.start();
      hubA.updateTwin(HUB, 'dev-1', { properties: { desired: { state: 'one' } } }, '*');
      hubB.updateTwin(HUB, 'dev-1', { properties: { desired: { state: 'own' } } }, '*');
      hubA.updateTwin(HUB, 'dev-1', { tags: { only: 'tags' } }, '*'); // no desired change: nothing to push
      hubA.updateTwin(HUB, 'dev-1', { properties: { desired: { state: 'two' } } }, '*');
      hubA.deleteDevice(HUB, 'dev-2', '*');
      // Refused calls change nothing and owe nothing.
      expect(() => hubA.updateTwin(HUB, 'dev-1', { properties: { desired: { x: 1 } } }, '"stale"')).toThrow(HubError);
      expect(() => hubA.deleteDevice(HUB, 'dev-2', '*')).toThrow(HubError);
      follower.poll();
      expect(delivered).toEqual([
        { kind: 'desired', hub: HUB, deviceId: 'dev-1', desired: { state: 'one', $version: 3 } },
        { kind: 'desired', hub: HUB, deviceId: 'dev-1', desired: { state: 'two', $version: 5 } },
        { kind: 'deleted', hub: HUB, deviceId: 'dev-2' },
      ]);
      follower.poll();
      expect(delivered).toHaveLength(3);
    } finally {
      follower.close();
    }
  });

  it('a disabled device, a device moved away by DPS and a device connected again owe the other process a close', () => {
    const [a, b] = twoProcesses();
    const outboxA = a.hubPushes('a');
    const outboxB = b.hubPushes('b');
    const hubA = new HubService({ store: a.hub, hubs: [HUB, 'hub-b.azure-devices.net'], outbox: outboxA });
    const hubB = new HubService({ store: b.hub, hubs: [HUB], outbox: outboxB });
    hubA.putDevice(HUB, 'dev-1', {}, undefined);
    hubA.putDevice(HUB, 'dev-2', {}, undefined);
    const delivered: { push: HubPush; seq: number }[] = [];
    const follower = followHubPushes({
      feed: outboxB,
      deliver: (push, seq) => delivered.push({ push, seq }),
      log,
      everyMs: 60_000,
    });
    try {
      follower.start();
      // B holds dev-1's connection; A gets a newer one of the same device.
      const heldSeq = hubB.setConnected(HUB, 'dev-1', true, 'mqtt', 'conn-b');
      const newerSeq = hubA.setConnected(HUB, 'dev-1', true, 'mqtt', 'conn-a');
      expect(heldSeq).toBeTypeOf('number');
      expect(newerSeq).toBeGreaterThan(heldSeq as number);
      // The older connection's close, recorded after the newer one connected, leaves it Connected.
      hubB.setConnected(HUB, 'dev-1', false, 'mqtt', 'conn-b');
      expect(a.hub.getDevice(HUB, 'dev-1')?.connectionState).toBe('Connected');
      hubA.setConnected(HUB, 'dev-1', false, 'mqtt', 'conn-a');
      expect(a.hub.getDevice(HUB, 'dev-1')?.connectionState).toBe('Disconnected');

      hubA.putDevice(HUB, 'dev-2', { status: 'disabled' }, '*');
      hubA.putDevice(HUB, 'dev-2', { status: 'disabled' }, '*'); // already disabled: nothing more owed
      // A DPS re-provisioning that moves dev-1 to another hub, in the registration's transaction.
      a.transaction(() =>
        applyAssignment(
          a.hub,
          {
            registrationId: 'dev-1',
            hub: 'hub-b.azure-devices.net',
            deviceId: 'dev-1',
            previous: { hub: HUB, deviceId: 'dev-1' },
            resetTwin: false,
          },
          new Date(),
          outboxA,
        ),
      );
      follower.poll();
      expect(delivered).toEqual([
        { push: { kind: 'connected', hub: HUB, deviceId: 'dev-1' }, seq: newerSeq },
        { push: { kind: 'disabled', hub: HUB, deviceId: 'dev-2' }, seq: expect.any(Number) },
        { push: { kind: 'deleted', hub: HUB, deviceId: 'dev-1' }, seq: expect.any(Number) },
      ]);
    } finally {
      follower.close();
    }
  });

  it('starts after the pushes already in the store and keeps the newest HUB_PUSHES_KEPT', () => {
    const [a, b] = twoProcesses();
    const outboxA = a.hubPushes('a');
    const push: HubPush = { kind: 'deleted', hub: HUB, deviceId: 'gone' };
    a.transaction(() => {
      for (let i = 0; i < HUB_PUSHES_KEPT + 200; i++) outboxA.add(push);
    });
    const outboxB = b.hubPushes('b');
    expect(outboxB.after(0, HUB_PUSHES_KEPT * 2).length).toBeLessThanOrEqual(HUB_PUSHES_KEPT + 64);
    const delivered: HubPush[] = [];
    const follower = followHubPushes({ feed: outboxB, deliver: (p) => delivered.push(p), log, everyMs: 60_000 });
    try {
      follower.start();
      follower.poll();
      expect(delivered).toEqual([]);
      // A backlog longer than one query's batch is read to its end in one poll.
      a.transaction(() => {
        for (let i = 0; i < 600; i++) outboxA.add({ kind: 'deleted', hub: HUB, deviceId: `d-${i}` });
      });
      follower.poll();
      expect(delivered.map((p) => p.deviceId)).toEqual(Array.from({ length: 600 }, (_, i) => `d-${i}`));
    } finally {
      follower.close();
    }
  });
});

describe('UncommittedHubPushes', () => {
  const push = (deviceId: string): HubPush => ({ kind: 'deleted', hub: 'hub-a.net', deviceId });

  it("hands over a committed transaction's pushes in order, drops a rolled back one's and a failed savepoint's alone", () => {
    const pushes = new UncommittedHubPushes();
    pushes.add(push('a'));
    expect(() =>
      pushes.within(() => {
        pushes.add(push('rolled-back'));
        throw new Error('savepoint fails');
      }),
    ).toThrow('savepoint fails');
    expect(pushes.within(() => pushes.add(push('b')))).toBeUndefined();
    expect(pushes.committed().map((p) => p.deviceId)).toEqual(['a', 'b']);
    expect(pushes.committed()).toEqual([]);
    pushes.add(push('c'));
    pushes.rolledBack();
    expect(pushes.committed()).toEqual([]);
  });
});

describe('relayed direct method calls through the store', () => {
  it('carries a request and its end between processes, fields checked; a malformed row is skipped', () => {
    const [a, b] = twoProcesses();
    const outboxA = a.hubPushes('a');
    const outboxB = b.hubPushes('b');
    const request = {
      rid: '1f',
      hub: HUB,
      deviceId: 'dev-1',
      methodName: 'reboot',
      payloadJson: '{"delay":1}',
      connectDeadlineMs: 1_000,
      connectTimeoutInSeconds: 0,
      responseTimeoutInSeconds: 30,
    };
    const before = outboxB.latest();
    outboxA.add({ kind: 'method', ...request });
    const answered = {
      rid: '1f',
      hub: HUB,
      deviceId: 'dev-1',
      kind: 'answered' as const,
      status: 200,
      payloadJson: '[]',
    };
    outboxB.add({ kind: 'method-end', hub: HUB, deviceId: 'dev-1', end: answered });
    const failed = {
      rid: '20',
      hub: HUB,
      deviceId: 'dev-1',
      kind: 'failed' as const,
      outcome: 'timeout' as const,
      status: 504,
      errorCode: 504101,
      code: 'GatewayTimeout',
      message: 'Timed out waiting for the response from device.',
      info: { timeout: '00:00:30' },
    };
    outboxB.add({ kind: 'method-end', hub: HUB, deviceId: 'dev-1', end: failed });
    // Written by hand: an end naming another device than its row, and a request without its rid.
    outboxB.add({ kind: 'method-end', hub: HUB, deviceId: 'dev-2', end: answered });
    const { rid: _rid, ...noRid } = request;
    outboxB.add({ kind: 'method', ...noRid } as never);
    expect(outboxA.after(before, 10).map((row) => row.push)).toEqual([
      { kind: 'method', ...request },
      { kind: 'method-end', hub: HUB, deviceId: 'dev-1', end: answered },
      { kind: 'method-end', hub: HUB, deviceId: 'dev-1', end: failed },
    ]);
  });
});

describe('the relayed method rows kept', () => {
  it('keeps the newest HUB_METHOD_PUSHES_KEPT method rows (their payloads are large), the other pushes as before', () => {
    const [a] = twoProcesses();
    const outbox = a.hubPushes('a');
    const before = outbox.latest();
    outbox.add({ kind: 'connected', hub: HUB, deviceId: 'dev-1' });
    const payloadJson = JSON.stringify('x'.repeat(1024));
    for (let i = 0; i < HUB_METHOD_PUSHES_KEPT + 200; i++) {
      outbox.add({
        kind: 'method',
        rid: i.toString(16),
        hub: HUB,
        deviceId: 'dev-1',
        methodName: 'm',
        payloadJson,
        connectDeadlineMs: 0,
        connectTimeoutInSeconds: 0,
        responseTimeoutInSeconds: 30,
      });
    }
    const rows = outbox.after(before, 10_000);
    const methods = rows.filter((row) => row.push.kind === 'method');
    // Pruned every 64 writes: at most that many over the bound, the newest kept.
    expect(methods.length).toBeGreaterThanOrEqual(HUB_METHOD_PUSHES_KEPT);
    expect(methods.length).toBeLessThan(HUB_METHOD_PUSHES_KEPT + 64);
    expect(methods.at(-1)?.push).toMatchObject({ rid: (HUB_METHOD_PUSHES_KEPT + 199).toString(16) });
    // The connected push, older than every method row, is still there (the table keeps 10,000).
    expect(rows[0]?.push).toEqual({ kind: 'connected', hub: HUB, deviceId: 'dev-1' });
  });
});
