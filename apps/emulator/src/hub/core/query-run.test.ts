import { describe, expect, it } from 'vitest';
import type { JsonValue } from './query.js';
import { QueryError } from './query.js';
import { DEFAULT_QUERY_PAGE_SIZE, MAX_QUERY_PAGE_SIZE, queryPageSize, queryText, runTwinQuery } from './query-run.js';
import { applyAssignment, MemoryHubStore } from './store.js';

const HUB = 'hub-q.net';
const keys = { primaryKey: 'cHJpbWFyeS1rZXktMTIzNDU2Nzg=', secondaryKey: 'c2Vjb25kYXJ5LWtleS0xMjM0NTY=' };
const now = new Date('2026-12-05T03:00:00.000Z');

function storeWith(count: number, tags: (i: number) => Record<string, unknown>): MemoryHubStore {
  const store = new MemoryHubStore();
  for (let i = 0; i < count; i++) {
    const deviceId = `dev-${String(i).padStart(4, '0')}`;
    applyAssignment(
      store,
      { registrationId: deviceId, hub: HUB, deviceId, keys, resetTwin: true, initialTwin: { tags: tags(i) } },
      now,
    );
  }
  return store;
}

const reader = (store: MemoryHubStore) => (after: string | undefined, limit: number) =>
  store.devicesAfter(HUB, after, limit);

/** Every page's items, following the continuation tokens. */
function allPages(store: MemoryHubStore, text: string, pageSize?: string): { pages: JsonValue[][]; tokens: number } {
  const pages: JsonValue[][] = [];
  let continuation: string | undefined;
  let tokens = 0;
  for (;;) {
    const page = runTwinQuery(reader(store), text, {
      ...(pageSize ? { pageSize } : {}),
      ...(continuation ? { continuation } : {}),
    });
    pages.push(page.items);
    if (!page.continuationToken) return { pages, tokens };
    tokens++;
    continuation = page.continuationToken;
  }
}

const idsOf = (items: JsonValue[]) => items.map((item) => (item as { deviceId: string }).deviceId);

describe('a twin query over a hub, page by page', () => {
  it('pages twins in device id order across the store batches; the last page has no continuation, even when it is full', () => {
    const store = storeWith(600, (i) => ({ even: i % 2 === 0 }));
    const { pages } = allPages(store, 'SELECT * FROM devices WHERE tags.even = true', '100');
    expect(pages.map((p) => p.length)).toEqual([100, 100, 100]);
    const ids = pages.flatMap(idsOf);
    expect(ids).toEqual([...ids].sort());
    expect(new Set(ids).size).toBe(300);
    const first = runTwinQuery(reader(store), 'SELECT * FROM devices', {});
    expect(first).toMatchObject({ itemType: 'twin', pageSize: DEFAULT_QUERY_PAGE_SIZE });
    expect((first.items[0] as { tags: unknown }).tags).toEqual({ even: true });
  });

  it('continues after the last device answered: one deleted or created meanwhile neither repeats nor skips another', () => {
    const store = storeWith(5, () => ({}));
    const first = runTwinQuery(reader(store), 'SELECT deviceId FROM devices', { pageSize: '2' });
    expect(first.items).toEqual([{ deviceId: 'dev-0000' }, { deviceId: 'dev-0001' }]);
    expect(first.itemType).toBe('raw');
    store.deleteDevice(HUB, 'dev-0001');
    store.deleteDevice(HUB, 'dev-0002');
    const second = runTwinQuery(reader(store), 'SELECT deviceId FROM devices', {
      pageSize: '2',
      continuation: first.continuationToken as string,
    });
    expect(second.items).toEqual([{ deviceId: 'dev-0003' }, { deviceId: 'dev-0004' }]);
    expect(second.continuationToken).toBeUndefined();
  });

  it('counts and groups over the whole hub, paging the rows', () => {
    const store = storeWith(7, (i) => ({ region: ['US', 'EU', 'APAC'][i % 3] }));
    expect(runTwinQuery(reader(store), 'SELECT COUNT() AS n FROM devices', {})).toMatchObject({
      items: [{ n: 7 }],
      itemType: 'raw',
    });
    const grouped = 'SELECT tags.region AS region, COUNT() AS n FROM devices GROUP BY tags.region';
    const { pages, tokens } = allPages(store, grouped, '2');
    expect(tokens).toBe(1);
    expect(pages).toEqual([
      [
        { region: 'US', n: 3 },
        { region: 'EU', n: 2 },
      ],
      [{ region: 'APAC', n: 2 }],
    ]);
  });

  it('cuts x-ms-max-item-count to 1000, takes -1 and none as the default, and refuses others naming the header', () => {
    expect(queryPageSize(undefined)).toBe(DEFAULT_QUERY_PAGE_SIZE);
    expect(queryPageSize('-1')).toBe(DEFAULT_QUERY_PAGE_SIZE);
    expect(queryPageSize('2147483647')).toBe(MAX_QUERY_PAGE_SIZE);
    expect(queryPageSize('7')).toBe(7);
    for (const bad of ['0', '-2', '1.5', 'ten', '2147483648']) {
      expect(() => queryPageSize(bad)).toThrow(new RegExp(`^Invalid x-ms-max-item-count "${bad.replace('.', '\\.')}"`));
    }
  });

  it('refuses a continuation token it did not give, and a body without a query text', () => {
    const store = storeWith(1, () => ({}));
    for (const token of ['nonsense', Buffer.from('dpskit-query1:{"after":3}').toString('base64url')]) {
      expect(() => runTwinQuery(reader(store), 'SELECT * FROM devices', { continuation: token })).toThrow(
        /^Invalid x-ms-continuation/,
      );
    }
    for (const body of [null, [], 'SELECT * FROM devices', { query: 5 }, {}]) {
      expect(() => queryText(body)).toThrow(QueryError);
    }
    expect(queryText({ query: 'SELECT * FROM devices' })).toBe('SELECT * FROM devices');
  });
});

describe('a module twin query (FROM devices.modules)', () => {
  it('pages module twins in (device id, module id) order across the store batches, filtered by deviceId and moduleId', () => {
    const store = storeWith(150, () => ({}));
    // Two modules a device, 300 in all: more than a store batch (256).
    for (const device of store.listDevices(HUB))
      for (const moduleId of ['$edgeAgent', 'filter'])
        store.putModule({
          ...device,
          identity: { ...device.identity, moduleId },
          twin: { ...device.twin, tags: { role: moduleId } },
        });
    const readModules = (after: readonly [string, string] | undefined, limit: number) =>
      store.modulesAfter(HUB, after, limit);
    const pages: JsonValue[][] = [];
    let continuation: string | undefined;
    for (;;) {
      const page = runTwinQuery(reader(store), 'SELECT * FROM devices.modules', {
        pageSize: '128',
        readModules,
        ...(continuation ? { continuation } : {}),
      });
      expect(page.itemType).toBe('twin');
      pages.push(page.items);
      if (!page.continuationToken) break;
      continuation = page.continuationToken;
    }
    expect(pages.map((p) => p.length)).toEqual([128, 128, 44]);
    const all = pages.flat() as { deviceId: string; moduleId: string }[];
    expect(all.slice(0, 3).map((t) => `${t.deviceId}/${t.moduleId}`)).toEqual([
      'dev-0000/$edgeAgent',
      'dev-0000/filter',
      'dev-0001/$edgeAgent',
    ]);
    expect(new Set(all.map((t) => `${t.deviceId}/${t.moduleId}`)).size).toBe(300);

    const edge = runTwinQuery(
      reader(store),
      "SELECT deviceId, moduleId FROM devices.modules WHERE moduleId = '$edgeAgent' AND deviceId IN ['dev-0007', 'dev-0100']",
      { readModules },
    );
    expect(edge.items).toEqual([
      { deviceId: 'dev-0007', moduleId: '$edgeAgent' },
      { deviceId: 'dev-0100', moduleId: '$edgeAgent' },
    ]);
    expect(
      runTwinQuery(reader(store), "SELECT COUNT() AS n FROM devices.modules WHERE tags.role = 'filter'", {
        readModules,
      }).items,
    ).toEqual([{ n: 150 }]);
    // The device query is unchanged: device twins only.
    expect(runTwinQuery(reader(store), 'SELECT COUNT() AS n FROM devices', { readModules }).items).toEqual([
      { n: 150 },
    ]);
  });
});
