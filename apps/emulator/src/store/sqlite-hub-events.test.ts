// The built-in endpoint's events in SQLite answer as the memory store does: the telemetry messages
// added with event fields, numbered per partition from 0, offsets counting the bytes before each,
// kept as the telemetry is (the hub's newest 1000, each device's newest 10), found by offset and
// enqueued time; and the numbering goes on across a reopen of the file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EMPTY_PARTITION, type HubEventFields } from '../hub/core/eventhub.js';
import {
  type HubStore,
  MAX_TELEMETRY_KEPT,
  MAX_TELEMETRY_PER_DEVICE,
  MemoryHubStore,
  type TelemetryRecord,
} from '../hub/core/store.js';
import { SqliteStore } from './sqlite.js';

const dirs: string[] = [];
const stores: SqliteStore[] = [];
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function sqlite(dir = mkdtempSync(join(tmpdir(), 'dpskit-event-store-'))): { hub: HubStore; dir: string } {
  if (!dirs.includes(dir)) dirs.push(dir);
  const store = SqliteStore.open(join(dir, 'emulator.db'));
  stores.push(store);
  return { hub: store.hub, dir };
}

const HUB = 'Toaster-Hub.azure-devices.net';
/** Telemetry message `n` of device `d{device}` and its event fields (partition `partition`). */
function add(hub: HubStore, n: number, partition = 1, body = `body-${n}`, device = n): void {
  const message: TelemetryRecord = {
    hub: HUB,
    deviceId: `d${device}`,
    body: Buffer.from(body),
    properties: { '$.mid': `m${n}`, n: String(n) },
    transport: 'mqtt',
    receivedUtc: new Date(1_000 + n).toISOString(),
  };
  const event: HubEventFields = { partition, enqueuedMs: 1_000 + n, authenticationType: 'sas', generationId: 'g' };
  hub.addTelemetry(message, event);
}

describe.each([
  ['memory', () => ({ hub: new MemoryHubStore() as HubStore, dir: '' })],
  ['SQLite', () => sqlite()],
])('the %s store', (_name, make) => {
  it('numbers events per partition from 0, offsets by bytes (an empty body counts one), and finds positions', () => {
    const { hub } = make();
    expect(hub.partitionState(HUB, 1)).toEqual(EMPTY_PARTITION);
    add(hub, 0, 1, 'abc');
    add(hub, 1, 1, '');
    add(hub, 2, 1, 'z');
    add(hub, 3, 2);
    const events = hub.eventsFrom(HUB.toLowerCase(), 1, 0, 10);
    expect(events.map((e) => [e.sequenceNumber, e.offset, e.body.toString()])).toEqual([
      [0, 0, 'abc'],
      [1, 3, ''],
      [2, 4, 'z'],
    ]);
    expect(events[0]).toMatchObject({
      hub: HUB,
      deviceId: 'd0',
      enqueuedMs: 1000,
      properties: { '$.mid': 'm0', n: '0' },
    });
    expect(hub.eventsFrom(HUB, 2, 0, 10).map((e) => e.sequenceNumber)).toEqual([0]);
    expect(hub.eventsFrom(HUB, 1, 1, 1).map((e) => e.sequenceNumber)).toEqual([1]);
    expect(hub.partitionState(HUB, 1)).toEqual({
      beginSequenceNumber: 0,
      lastSequenceNumber: 2,
      lastOffset: 4,
      lastEnqueuedMs: 1002,
      empty: false,
    });
    expect(hub.firstSequenceWhere(HUB, 1, { offset: 3, inclusive: true })).toBe(1);
    expect(hub.firstSequenceWhere(HUB, 1, { offset: 3, inclusive: false })).toBe(2);
    expect(hub.firstSequenceWhere(HUB, 1, { offset: 4, inclusive: false })).toBeUndefined();
    expect(hub.firstSequenceWhere(HUB, 1, { enqueuedAfterMs: 1000 })).toBe(1);
    expect(hub.firstSequenceWhere(HUB, 1, { enqueuedAfterMs: 5000 })).toBeUndefined();
  });

  it('keeps what the telemetry keeps: the hub newest, each device newest, numbering on without gaps above', () => {
    const { hub } = make();
    // Device d0 sends once first (partition 0), then d1 floods the same partition past the hub's window.
    add(hub, 0, 0, 'q', 0);
    for (let n = 1; n <= MAX_TELEMETRY_KEPT + 20; n++) add(hub, n, 0, 'x', 1);
    const kept = hub.eventsFrom(HUB, 0, 0, 5).map((e) => [e.sequenceNumber, e.deviceId]);
    // d0's only message stays (its device's newest); d1's oldest beyond the hub's window went.
    expect(kept[0]).toEqual([0, 'd0']);
    expect(kept[1]?.[0]).toBe(MAX_TELEMETRY_KEPT + 20 - MAX_TELEMETRY_KEPT + 1);
    expect(hub.partitionState(HUB, 0)).toMatchObject({
      beginSequenceNumber: 0,
      lastSequenceNumber: MAX_TELEMETRY_KEPT + 20,
      lastOffset: MAX_TELEMETRY_KEPT + 20,
    });
    expect(hub.telemetry(HUB).length).toBe(MAX_TELEMETRY_KEPT + 1);
    expect(MAX_TELEMETRY_PER_DEVICE).toBeGreaterThan(0);
  });

  it('a message added without event fields is no event', () => {
    const { hub } = make();
    hub.addTelemetry({
      hub: HUB,
      deviceId: 'plain',
      body: Buffer.from('x'),
      properties: {},
      transport: 'https',
      receivedUtc: new Date(0).toISOString(),
    });
    expect(hub.telemetry(HUB).length).toBe(1);
    for (let p = 0; p < 4; p++) expect(hub.partitionState(HUB, p)).toEqual(EMPTY_PARTITION);
  });
});

describe('the SQLite store', () => {
  it('goes on numbering after a reopen of the file', () => {
    const { hub, dir } = sqlite();
    add(hub, 0, 3, 'abcd');
    for (const store of stores.splice(0)) store.close();
    const again = sqlite(dir).hub;
    add(again, 1, 3, 'e');
    expect(again.eventsFrom(HUB, 3, 0, 10).map((e) => [e.sequenceNumber, e.offset])).toEqual([
      [0, 0],
      [1, 4],
    ]);
  });
});
