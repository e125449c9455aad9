import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSymmetricKey, parseAllocationRequestJson } from '@dpskit/contracts';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SqliteStore } from '../store/sqlite.js';
import { groupEnrollment } from '../testing/enrollments.js';
import type { WebhookCallOutcome } from './allocation/custom.js';
import { enrollmentSet } from './model.js';
import { ABANDONED_AFTER_MS, type AttestedDevice, RegistrationService } from './registrations.js';

// Two register requests of one registration id reaching two processes on one store
// (`dps-emulator start --workers`): two RegistrationServices on two connections to one SQLite file.

const group = groupEnrollment(
  'custom',
  { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() },
  {
    allocationPolicy: 'custom',
    customAllocationDefinition: { webhookUrl: 'http://hook.test/api', apiVersion: '2021-10-01' },
  },
);
const device = (registrationId: string): AttestedDevice => ({
  ok: true,
  registrationId,
  enrollment: group,
  keyUsed: 'primary',
});

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const step of cleanup.splice(0).reverse()) step();
});

/** A process on the store: its webhook calls wait until the test answers them (`answer`). */
function processOn(path: string, now?: () => Date) {
  const store = SqliteStore.open(path);
  const calls: { body: string; answer: (outcome: WebhookCallOutcome) => void }[] = [];
  const service = new RegistrationService({
    model: {
      idScope: '0ne00000A0A',
      defaultAllocationPolicy: 'hashed',
      linkedHubs: [
        { hostName: 'a.net', allocationWeight: 1, applyAllocationPolicy: true },
        { hostName: 'b.net', allocationWeight: 1, applyAllocationPolicy: true },
      ],
      enrollments: enrollmentSet([group]),
    },
    store,
    sharedStore: true,
    storePollMs: 5,
    ...(now ? { now } : {}),
    callWebhook: (_url, body) =>
      new Promise((resolve) => calls.push({ body, answer: (outcome) => resolve({ ...outcome, latencyMs: 1 }) })),
    webhookRetry: { count: 0, initialIntervalMs: 0, incrementMs: 0 },
  });
  cleanup.push(() => store.close());
  return { store, service, calls };
}

function twoProcesses(now?: () => Date) {
  const dir = mkdtempSync(join(tmpdir(), 'dpskit-shared-store-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'emulator.db');
  return [processOn(path, now), processOn(path, now)] as const;
}

const toHub = (hub: string): WebhookCallOutcome => ({
  kind: 'response',
  status: 200,
  body: JSON.stringify({ iotHubHostName: hub }),
});

/** Event-loop turns and a few store polls: long enough for a process that does not wait to call its webhook. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe("a wait for another process's operation (settled)", () => {
  it('ends with its bound however the wall clock moves (set back an hour: no store reads after)', async () => {
    const [first, second] = twoProcesses();
    const earlier = first.service.register(device('waited'), undefined, 'mqtt');
    await settle();
    expect(first.calls).toHaveLength(1);
    const reads = vi.spyOn(second.store, 'getOperation');
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const waiting = second.service.settled(earlier.operationId, 50);
      vi.setSystemTime(Date.now() - 3_600_000);
      await waiting;
      await settle();
      const after = reads.mock.calls.length;
      await settle();
      expect(reads.mock.calls.length).toBe(after);
    } finally {
      vi.useRealTimers();
      reads.mockRestore();
      first.calls[0]?.answer(toHub('a.net'));
      await first.service.whenIdle();
    }
  });
});

describe('one registration id on two processes sharing the store', () => {
  it("runs the later register request's allocation after the earlier one's, which it then sees", async () => {
    const [first, second] = twoProcesses();
    const earlier = first.service.register(device('twice'), undefined, 'mqtt');
    const later = second.service.register(device('TWICE'), undefined, 'https');
    await settle();
    // The second process waits for the first one's operation in the store.
    expect(first.calls).toHaveLength(1);
    expect(second.calls).toHaveLength(0);
    expect(second.service.operation('twice', later.operationId).state).toBe('assigning');

    first.calls[0]?.answer(toHub('b.net'));
    await first.service.whenIdle();
    while (second.calls.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    // The second allocation's webhook request names the first one's assignment as the device's current hub.
    const request = parseAllocationRequestJson(second.calls[0]?.body ?? '');
    expect(request.ok && request.value.deviceRuntimeContext).toMatchObject({
      currentIotHubHostName: 'b.net',
      currentDeviceId: 'twice',
    });
    second.calls[0]?.answer(toHub('a.net'));
    await second.service.whenIdle();

    const firstAnswer = first.service.operation('twice', earlier.operationId);
    const secondAnswer = second.service.operation('twice', later.operationId);
    expect(firstAnswer).toMatchObject({ state: 'done', body: { registrationState: { assignedHub: 'b.net' } } });
    expect(secondAnswer).toMatchObject({
      state: 'done',
      body: { registrationState: { assignedHub: 'a.net', substatus: 'deviceDataMigrated' } },
    });
    // One record, the later one's, created when the first registration was.
    const record = second.store.get('twice');
    expect(record?.assignment).toMatchObject({ hub: 'a.net' });
    expect(record?.result.createdDateTimeUtc).toBe(
      firstAnswer.state === 'done' ? firstAnswer.body.registrationState?.createdDateTimeUtc : 'missing',
    );
    // The device moved: its identity left b.net for a.net, under the device id as the later request
    // presented it (IoT Hub device ids are case-sensitive; DPS's registration ids are not).
    expect(second.store.hub.getDevice('b.net', 'twice')).toBeUndefined();
    expect(second.store.hub.getDevice('a.net', 'TWICE')).toBeDefined();
  });

  it('runs different registration ids side by side', async () => {
    const [first, second] = twoProcesses();
    first.service.register(device('one'), undefined, 'mqtt');
    second.service.register(device('two'), undefined, 'mqtt');
    while (first.calls.length + second.calls.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    for (const call of [...first.calls, ...second.calls]) call.answer(toHub('a.net'));
    await Promise.all([first.service.whenIdle(), second.service.whenIdle()]);
  });

  it(`waits no longer for an operation left unfinished for ${ABANDONED_AFTER_MS / 60_000} minutes (its process was killed)`, async () => {
    let clock = Date.parse('2026-12-02T12:00:00Z');
    const [killed, alive] = twoProcesses(() => new Date(clock));
    killed.service.register(device('left'), undefined, 'mqtt');
    await settle();
    expect(killed.calls).toHaveLength(1); // never answered: the process is gone
    clock += ABANDONED_AFTER_MS;
    const later = alive.service.register(device('left'), undefined, 'mqtt');
    while (alive.calls.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    alive.calls[0]?.answer(toHub('a.net'));
    await alive.service.whenIdle();
    expect(alive.service.operation('left', later.operationId)).toMatchObject({ state: 'done' });
    killed.calls[0]?.answer(toHub('a.net'));
    await killed.service.close();
  });
});
