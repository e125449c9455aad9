import { describe, expect, it } from 'vitest';
import {
  COSMOS_ETAG_PATTERN,
  createCosmosEtag,
  createRegistrationEtag,
  DPS_TIMESTAMP_PATTERN,
  decodeRegistrationEtag,
  formatDpsErrorTimestamp,
  formatDpsTimestamp,
  parseDpsTimestamp,
} from './dps-format.js';

describe('DPS timestamps', () => {
  it('trims trailing zeros in records, as Json.NET writes them', () => {
    // Real: "lastUpdatedDateTimeUtc":"2022-07-04T08:28:36.154464Z" (7 digits, the last one zero).
    expect(formatDpsTimestamp(new Date('2022-07-04T08:28:36.154Z'), { subMillisecondTicks: 4640 })).toBe(
      '2022-07-04T08:28:36.154464Z',
    );
    expect(formatDpsTimestamp(new Date('2022-07-04T08:28:35.869Z'), { subMillisecondTicks: 4014 })).toBe(
      '2022-07-04T08:28:35.8694014Z',
    );
    expect(formatDpsTimestamp(new Date('2021-06-30T06:52:07.728Z'))).toBe('2021-06-30T06:52:07.728Z');
    expect(formatDpsTimestamp(new Date('2021-06-30T06:52:07.700Z'))).toBe('2021-06-30T06:52:07.7Z');
    expect(formatDpsTimestamp(new Date('2021-06-30T06:52:07.000Z'))).toBe('2021-06-30T06:52:07Z');
  });

  it('writes 7 digits in error bodies, as .NET round-trip format does', () => {
    expect(formatDpsErrorTimestamp(new Date('2019-11-19T21:39:05.157Z'), { subMillisecondTicks: 3304 })).toBe(
      '2019-11-19T21:39:05.1573304Z',
    );
    expect(formatDpsErrorTimestamp(new Date('2019-11-19T21:39:05Z'))).toBe('2019-11-19T21:39:05.0000000Z');
  });

  it('matches the pattern and parses back to the millisecond', () => {
    for (const ms of [0, 1, 10, 100, 999]) {
      const date = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, ms));
      for (const text of [formatDpsTimestamp(date), formatDpsErrorTimestamp(date)]) {
        expect(text).toMatch(DPS_TIMESTAMP_PATTERN);
        expect(parseDpsTimestamp(text)?.getTime()).toBe(date.getTime());
      }
    }
    expect(parseDpsTimestamp('2022-07-04T08:28:36.154464Z')?.toISOString()).toBe('2022-07-04T08:28:36.154Z');
    expect(parseDpsTimestamp('2022-07-04T08:28:36.12345678Z')).toBeUndefined();
    expect(parseDpsTimestamp('2022-07-04 08:28:36Z')).toBeUndefined();
    expect(parseDpsTimestamp('2022-13-04T08:28:36Z')).toBeUndefined();
  });

  it('refuses what it cannot format', () => {
    expect(() => formatDpsTimestamp(new Date(Number.NaN))).toThrow(/valid Date/);
    expect(() => formatDpsTimestamp(new Date(), { subMillisecondTicks: 10_000 })).toThrow(/0 to 9999/);
  });
});

describe('DPS etags', () => {
  it('are Cosmos etags whose last group is the write time', () => {
    const date = new Date('2022-07-04T08:28:36.154Z');
    expect(createCosmosEtag(date, { seed: '6000892c' })).toBe('"6000892c-0000-0100-0000-62c2a4b40000"');
    expect(createCosmosEtag(new Date('2022-08-03T17:15:10.846Z'), { seed: '0000f176', partition: '07' })).toBe(
      '"0000f176-0000-0700-0000-62eaad1e0000"',
    );
    const random = createCosmosEtag(date);
    expect(random).toMatch(COSMOS_ETAG_PATTERN);
    expect(random.endsWith('-62c2a4b40000"')).toBe(true);
  });

  it('are base64 of the quoted form in registration states, byte for byte as the capture', () => {
    // Real: "etag":"IjYwMDA4OTJjLTAwMDAtMDEwMC0wMDAwLTYyYzJhNGI0MDAwMCI=" (u-blox DPS README).
    const etag = createRegistrationEtag(new Date('2022-07-04T08:28:36.154Z'), { seed: '6000892c' });
    expect(etag).toBe('IjYwMDA4OTJjLTAwMDAtMDEwMC0wMDAwLTYyYzJhNGI0MDAwMCI=');
    expect(decodeRegistrationEtag(etag)).toBe('"6000892c-0000-0100-0000-62c2a4b40000"');
    // Another capture (azure-iot-sdk-node issue, MQTT assigned body).
    expect(decodeRegistrationEtag('IjFmMDU5Y2FmLTAwMDAtMjQwMC0wMDAwLTYwZGMxNDk3MDAwMCI=')).toBe(
      '"1f059caf-0000-2400-0000-60dc14970000"',
    );
    expect(decodeRegistrationEtag('IjEyMyI=')).toBeUndefined();
    expect(decodeRegistrationEtag('not base64!')).toBeUndefined();
  });

  it('keep the seed so that an unchanged record keeps its etag', () => {
    const date = new Date('2026-01-01T00:00:00Z');
    expect(createCosmosEtag(date, { seed: 'ABCDEF0123' })).toBe(createCosmosEtag(date, { seed: 'abcdef01ff' }));
    expect(() => createCosmosEtag(date, { seed: 'xyz' })).toThrow(/8 hex/);
    expect(() => createCosmosEtag(date, { partition: '1' })).toThrow(/2 hex/);
  });
});
