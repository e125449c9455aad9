import { describe, expect, it } from 'vitest';
import {
  Aggregation,
  type JsonValue,
  MAX_QUERY_DEPTH,
  MAX_QUERY_LENGTH,
  matches,
  parseTwinQuery,
  project,
  QueryError,
} from './query.js';

// The twins of azure-docs query-twins' examples, cut down.
const twins: JsonValue[] = [
  {
    deviceId: 'd1',
    status: 'enabled',
    version: 2,
    tags: { location: { region: 'US', plant: 'Redmond43' } },
    properties: {
      desired: { telemetryConfig: { sendFrequencyInSecs: 300 }, $version: 4 },
      reported: { connectivity: { type: 'cellular' }, telemetryConfig: { status: 'Success' }, $version: 7 },
    },
  },
  {
    deviceId: 'd2',
    status: 'disabled',
    version: 1,
    tags: { location: { region: 'EU', plant: 'Dublin1' } },
    properties: { desired: { $version: 1 }, reported: { connectivity: { type: 'wired' }, $version: 2 } },
  },
  {
    deviceId: 'toaster-3',
    status: 'enabled',
    version: 3,
    tags: {},
    properties: {
      desired: { $version: 1 },
      reported: { telemetryConfig: { status: 'Pending' }, $version: 1, n: null },
    },
  },
];

const ids = (sql: string) => {
  const query = parseTwinQuery(sql);
  return twins.filter((t) => matches(query, t)).map((t) => (t as { deviceId: string }).deviceId);
};

const refusal = (sql: string) => {
  try {
    parseTwinQuery(sql);
  } catch (err) {
    if (err instanceof QueryError) return err.message;
    throw err;
  }
  throw new Error(`parsed: ${sql}`);
};

describe('the twin query subset', () => {
  it('filters by tags, reported properties, deviceId and status, with AND, OR, NOT and parentheses', () => {
    expect(
      ids(
        "SELECT * FROM devices WHERE tags.location.region = 'US' AND properties.reported.connectivity.type = 'cellular'",
      ),
    ).toEqual(['d1']);
    expect(ids("select * from devices where tags.location.region = 'US' or status = 'disabled'")).toEqual(['d1', 'd2']);
    expect(ids("SELECT * FROM devices WHERE NOT (status = 'enabled')")).toEqual(['d2']);
    expect(ids("SELECT * FROM devices WHERE deviceId = 'toaster-3'")).toEqual(['toaster-3']);
    expect(ids('SELECT * FROM devices')).toEqual(['d1', 'd2', 'toaster-3']);
    expect(ids('SELECT * FROM devices WHERE properties.desired.$version >= 4')).toEqual(['d1']);
    expect(ids('SELECT * FROM devices WHERE version < 3 AND version <> 1')).toEqual(['d1']);
  });

  it('leaves out twins without the property, whatever the comparison (undefined is neither true nor false)', () => {
    expect(ids("SELECT * FROM devices WHERE tags.location.region != 'US'")).toEqual(['d2']);
    expect(ids("SELECT * FROM devices WHERE NOT (tags.location.region = 'US')")).toEqual(['d2']);
    // A comparison of different types is undefined too, not false.
    expect(ids("SELECT * FROM devices WHERE version != '2'")).toEqual([]);
    // OR with one side undefined is the other side.
    expect(ids("SELECT * FROM devices WHERE tags.location.region = 'EU' OR status = 'enabled'")).toEqual([
      'd1',
      'd2',
      'toaster-3',
    ]);
  });

  it('serves IN and NIN lists in brackets, IS_DEFINED and the other type checks, STARTSWITH and ENDSWITH', () => {
    expect(ids("SELECT * FROM devices WHERE tags.location.region IN ['US', 'EU']")).toEqual(['d1', 'd2']);
    expect(ids("SELECT * FROM devices WHERE tags.location.region NIN ['US']")).toEqual(['d2']);
    expect(ids("SELECT * FROM devices WHERE tags.location.region NOT IN ['US']")).toEqual(['d2']);
    expect(ids('SELECT * FROM devices WHERE IS_DEFINED(tags.location)')).toEqual(['d1', 'd2']);
    expect(ids('SELECT * FROM devices WHERE NOT IS_DEFINED(tags.location)')).toEqual(['toaster-3']);
    expect(ids('SELECT * FROM devices WHERE is_null(properties.reported.n)')).toEqual(['toaster-3']);
    expect(
      ids('SELECT * FROM devices WHERE IS_NUMBER(properties.desired.telemetryConfig.sendFrequencyInSecs)'),
    ).toEqual(['d1']);
    expect(
      ids('SELECT * FROM devices WHERE IS_OBJECT(tags) AND IS_STRING(deviceId) AND IS_PRIMITIVE(version)'),
    ).toEqual(['d1', 'd2', 'toaster-3']);
    expect(ids("SELECT * FROM devices WHERE STARTSWITH(deviceId, 'toaster-')")).toEqual(['toaster-3']);
    expect(ids("SELECT * FROM devices WHERE ENDSWITH(tags.location.plant, '43')")).toEqual(['d1']);
    expect(ids('SELECT * FROM devices WHERE version IN [1, 3]')).toEqual(['d2', 'toaster-3']);
    expect(ids('SELECT * FROM devices WHERE true')).toEqual(['d1', 'd2', 'toaster-3']);
    expect(ids(`SELECT * FROM devices WHERE deviceId = "d2"`)).toEqual(['d2']);
    expect(ids(`SELECT * FROM devices WHERE deviceId = 'it\\'s'`)).toEqual([]);
  });

  it('projects fields (by their last name or alias, absent ones left out)', () => {
    const query = parseTwinQuery('SELECT deviceId, tags.location.region AS region, properties.reported.n FROM devices');
    expect(twins.map((t) => project(query, t))).toEqual([
      { deviceId: 'd1', region: 'US' },
      { deviceId: 'd2', region: 'EU' },
      { deviceId: 'toaster-3', n: null },
    ]);
  });

  it('counts (SELECT COUNT() AS n) and groups (GROUP BY) the twins kept', () => {
    const count = (sql: string) => {
      const query = parseTwinQuery(sql);
      const aggregation = new Aggregation(query, 10);
      for (const twin of twins) if (matches(query, twin)) aggregation.add(twin);
      return aggregation.rows();
    };
    expect(count('SELECT COUNT() AS numberOfDevices FROM devices')).toEqual([{ numberOfDevices: 3 }]);
    expect(count("SELECT COUNT() AS n FROM devices WHERE status = 'enabled'")).toEqual([{ n: 2 }]);
    expect(count("SELECT COUNT() AS n FROM devices WHERE status = 'unknown'")).toEqual([{ n: 0 }]);
    expect(count('SELECT COUNT() FROM devices')).toEqual([{ $1: 3 }]);
    expect(
      count(
        'SELECT properties.reported.telemetryConfig.status AS status, COUNT() AS numberOfDevices FROM devices GROUP BY properties.reported.telemetryConfig.status',
      ),
    ).toEqual([
      { status: 'Success', numberOfDevices: 1 },
      { numberOfDevices: 1 },
      { status: 'Pending', numberOfDevices: 1 },
    ]);
    const few = parseTwinQuery('SELECT deviceId FROM devices GROUP BY deviceId');
    const bounded = new Aggregation(few, 2);
    bounded.add(twins[0] as JsonValue);
    bounded.add(twins[1] as JsonValue);
    expect(() => bounded.add(twins[2] as JsonValue)).toThrow(/more than 2 groups/);
  });

  it('reads FROM devices (device twins) and FROM devices.modules (module twins)', () => {
    expect(parseTwinQuery('SELECT * FROM devices').from).toBe('devices');
    expect(parseTwinQuery("SELECT * FROM devices.modules WHERE moduleId = '$edgeAgent'").from).toBe('devices.modules');
    expect(parseTwinQuery('select deviceId from DEVICES.Modules').from).toBe('devices.modules');
  });

  it('refuses what it does not serve with a message naming it and where', () => {
    expect(refusal('')).toBe('The query is empty.');
    expect(refusal('SELECT TOP 10 * FROM devices')).toMatch(/^TOP \(position 8\) is not served/);
    expect(refusal('SELECT * FROM devices ORDER BY deviceId')).toMatch(/^ORDER \(position 23\) is not served/);
    expect(refusal('SELECT * FROM devices.jobs')).toMatch(
      /^FROM devices\.jobs: only device and module twins \(FROM devices, FROM devices\.modules\) are served; jobs are not emulated/,
    );
    expect(refusal('SELECT * FROM enrollments')).toBe(
      'Expected the collection devices at position 15, found "enrollments".',
    );
    expect(refusal("SELECT * FROM devices WHERE tags.x IN ('a')")).toMatch(/IN \['a', 'b'\]/);
    expect(refusal("SELECT * FROM devices WHERE LOWER(deviceId) = 'a'")).toMatch(
      /^The function LOWER \(position 29\) is not served; .*IS_DEFINED/,
    );
    expect(refusal('SELECT * FROM devices WHERE IS_DEFINED(a, b)')).toBe('IS_DEFINED takes 1 argument, not 2.');
    expect(refusal("SELECT * FROM devices WHERE deviceId = 'open")).toBe(
      'The string that begins at position 40 is not closed.',
    );
    expect(refusal('SELECT * FROM devices WHERE deviceId = ?')).toBe('Unexpected character "?" at position 40.');
    expect(refusal('SELECT * FROM devices WHERE')).toMatch(
      /^Expected a property .* at position 28, found the end of the query\.$/,
    );
    expect(refusal("SELECT * FROM devices WHERE deviceId = 'a' status")).toMatch(
      /^Expected WHERE, GROUP BY or the end at position 44/,
    );
    expect(refusal('SELECT * FROM devices GROUP BY status')).toMatch(/^SELECT \* cannot be grouped/);
    expect(refusal('SELECT deviceId, COUNT() AS n FROM devices')).toBe(
      'deviceId is selected beside COUNT() without GROUP BY.',
    );
    expect(refusal('SELECT deviceId, status FROM devices GROUP BY status')).toBe(
      'deviceId is selected but not in GROUP BY.',
    );
    expect(refusal('SELECT deviceId, tags.deviceId FROM devices')).toMatch(/both named "deviceId"/);
    expect(refusal("SELECT * FROM devices WHERE tags['a'] = 1")).toMatch(/indexing is not served/);
    expect(refusal(`SELECT * FROM devices WHERE deviceId = '${'x'.repeat(MAX_QUERY_LENGTH)}'`)).toMatch(
      new RegExp(`at most ${MAX_QUERY_LENGTH} are taken`),
    );
    const deep = `SELECT * FROM devices WHERE ${'('.repeat(MAX_QUERY_DEPTH + 1)}true${')'.repeat(MAX_QUERY_DEPTH + 1)}`;
    expect(refusal(deep)).toMatch(/nests deeper than 32/);
    const nots = `SELECT * FROM devices WHERE ${'NOT '.repeat(1000)}true`;
    expect(refusal(nots)).toMatch(/nests deeper than 32/);
    expect(
      ids(`SELECT * FROM devices WHERE ${'('.repeat(MAX_QUERY_DEPTH)}true${')'.repeat(MAX_QUERY_DEPTH)}`),
    ).toHaveLength(3);
  });
});

describe('hostile queries', () => {
  it('parses any text into a query or a QueryError, and evaluates what it parses without throwing (seeded, 3,000 texts)', () => {
    const pieces = [
      'SELECT',
      '*',
      'FROM',
      'devices',
      'WHERE',
      'GROUP',
      'BY',
      'COUNT()',
      'AS',
      'n',
      'AND',
      'OR',
      'NOT',
      'IN',
      'NIN',
      '[',
      ']',
      '(',
      ')',
      ',',
      '.',
      '=',
      '!=',
      '<',
      '>=',
      "'US'",
      '"x"',
      '3',
      '-1.5e3',
      'true',
      'null',
      'tags',
      'location',
      'region',
      'deviceId',
      'IS_DEFINED',
      'STARTSWITH',
      'TOP',
      "'",
      '\\',
      '$version',
      'properties',
      '\u0000',
    ];
    let seed = 12345;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    let parsed = 0;
    for (let i = 0; i < 3000; i++) {
      // A third are well-formed conditions, grown at random from the grammar served.
      const condition = (depth: number): string => {
        const operand = () =>
          ["'US'", '3', 'true', 'null', 'tags.location.region', 'version', 'properties.reported.n'][
            random(7)
          ] as string;
        switch (depth > 3 ? 0 : random(6)) {
          case 0:
            return `${operand()} ${['=', '!=', '<', '>='][random(4)]} ${operand()}`;
          case 1:
            return `(${condition(depth + 1)}) ${random(2) ? 'AND' : 'OR'} ${condition(depth + 1)}`;
          case 2:
            return `NOT ${condition(depth + 1)}`;
          case 3:
            return `${operand()} ${random(2) ? 'IN' : 'NIN'} ['US', 1, null]`;
          case 4:
            return `IS_DEFINED(${operand()})`;
          default:
            return `STARTSWITH(${operand()}, 'U')`;
        }
      };
      if (i % 3 === 0) {
        const query = parseTwinQuery(`SELECT * FROM devices WHERE ${condition(0)}`);
        for (const twin of twins) matches(query, twin);
        parsed++;
        continue;
      }
      const words = ['SELECT', '*', 'FROM', 'devices', 'WHERE'].slice(0, random(6));
      for (let n = random(20); n > 0; n--) words.push(pieces[random(pieces.length)] as string);
      const text = words.join(random(2) ? ' ' : '');
      let query: ReturnType<typeof parseTwinQuery>;
      try {
        query = parseTwinQuery(text);
      } catch (err) {
        expect(err, text).toBeInstanceOf(QueryError);
        continue;
      }
      parsed++;
      for (const twin of twins) {
        matches(query, twin);
        project(query, twin);
      }
    }
    expect(parsed).toBeGreaterThanOrEqual(1000);
  });

  it('evaluates the longest chain of conditions a query can hold', () => {
    const chain = Array.from({ length: 1300 }, () => "status = 'enabled'").join(' AND ');
    const text = `SELECT * FROM devices WHERE ${chain}`.slice(0, MAX_QUERY_LENGTH);
    expect(ids(text.slice(0, text.lastIndexOf(' AND ')))).toEqual(['d1', 'toaster-3']);
  });
});
