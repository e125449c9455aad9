// The cloud-to-device queue and feedback queue in SQLite answer as the memory store does (the rules
// are hub/core/c2d.ts's, run over each), and keep across a reopen of the file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type C2dFeedbackRecord, enqueue, MAX_C2D_FEEDBACK_KEPT, receive, releaseConnection } from '../hub/core/c2d.js';
import { type HubStore, MemoryHubStore } from '../hub/core/store.js';
import { SqliteStore } from './sqlite.js';

const dirs: string[] = [];
const stores: SqliteStore[] = [];
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function sqlite(dir = mkdtempSync(join(tmpdir(), 'dpskit-c2d-store-'))): { hub: HubStore; dir: string } {
  if (!dirs.includes(dir)) dirs.push(dir);
  const store = SqliteStore.open(join(dir, 'emulator.db'));
  stores.push(store);
  return { hub: store.hub, dir };
}

const HUB = 'Toaster-Hub.azure-devices.net';
const record = (n: number): C2dFeedbackRecord => ({
  originalMessageId: `m${n}`,
  enqueuedTimeUtc: '2026-12-05T04:00:00.000Z',
  statusCode: 'Success',
  description: 'Success',
  deviceId: 'd1',
  deviceGenerationId: '1',
});

describe.each([
  ['memory', () => ({ hub: new MemoryHubStore() as HubStore, dir: '' })],
  ['SQLite', () => sqlite()],
])('the %s store', (_name, make) => {
  it('keeps a queue in order with its bodies and locks, per device', () => {
    const { hub } = make();
    hub.transaction(() => {
      enqueue(hub, HUB, 'd1', { body: Buffer.from([0, 1, 2]), messageId: 'a', properties: { k: 'v' } }, 0);
      enqueue(hub, HUB, 'd1', { body: Buffer.from('b') }, 0);
      enqueue(hub, HUB, 'D1', { body: Buffer.from('other device') }, 0);
      receive(hub, HUB, 'd1', { connection: 'c1' }, 0);
    });
    const queue = hub.c2dMessages(HUB.toLowerCase(), 'd1');
    expect(queue.map((m) => [m.seq, m.messageId, [...m.body], m.properties, m.lock?.connection])).toEqual([
      [1, 'a', [0, 1, 2], { k: 'v' }, 'c1'],
      [2, undefined, [98], {}, undefined],
    ]);
    expect(hub.c2dLockedTo('c1').map((m) => m.deviceId)).toEqual(['d1']);
    expect(hub.transaction(() => releaseConnection(hub, undefined)).length).toBe(1);
    expect(hub.c2dLockedTo(undefined)).toEqual([]);
  });

  it('hands feedback records out once, in order, until completed or released; keeps the newest', () => {
    const { hub } = make();
    for (let n = 1; n <= 3; n++) hub.addC2dFeedback(HUB, record(n));
    const first = hub.takeC2dFeedback(HUB, 'link-1', 2);
    expect(first.map((f) => f.record.originalMessageId)).toEqual(['m1', 'm2']);
    expect(hub.takeC2dFeedback(HUB, 'link-2', 10).map((f) => f.record.originalMessageId)).toEqual(['m3']);
    hub.settleC2dFeedback([first[0]?.seq ?? 0], true);
    hub.settleC2dFeedback([first[1]?.seq ?? 0], false);
    hub.releaseC2dFeedback('link-2');
    expect(hub.takeC2dFeedback(HUB.toLowerCase(), 'link-3', 10).map((f) => f.record.originalMessageId)).toEqual([
      'm2',
      'm3',
    ]);
    expect(hub.takeC2dFeedback('other-hub.azure-devices.net', 'link-3', 10)).toEqual([]);
    for (let n = 4; n <= MAX_C2D_FEEDBACK_KEPT + 10; n++) hub.addC2dFeedback(HUB, record(n));
    hub.releaseC2dFeedback('link-3');
    const kept = hub.takeC2dFeedback(HUB, 'link-4', 2 * MAX_C2D_FEEDBACK_KEPT);
    expect(kept).toHaveLength(MAX_C2D_FEEDBACK_KEPT);
    expect(kept.at(-1)?.record.originalMessageId).toBe(`m${MAX_C2D_FEEDBACK_KEPT + 10}`);
  });
});

it('SQLite keeps the queue across a reopen of the file', () => {
  const { hub, dir } = sqlite();
  hub.transaction(() => enqueue(hub, HUB, 'd1', { body: Buffer.from('kept') }, 0));
  for (const store of stores.splice(0)) store.close();
  const again = sqlite(dir).hub;
  expect(again.c2dMessages(HUB, 'd1').map((m) => m.body.toString())).toEqual(['kept']);
});
