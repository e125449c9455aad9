import { randomBytes } from 'node:crypto';

/**
 * How DPS writes timestamps and etags, in one place: the emulator's records, error bodies and
 * webhook bodies and the service API's objects all format through here.
 *
 * Timestamps. DPS is a .NET service; its clock has 100 ns ticks (7 fractional digits).
 * - Objects (registration states, enrollments, webhook bodies) go through Json.NET, whose default
 *   format is `yyyy-MM-ddTHH:mm:ss.FFFFFFFZ`: up to 7 digits, trailing zeros trimmed, and no `.`
 *   at all when the fraction is zero. Real captures: `2022-07-04T08:28:36.154464Z`,
 *   `2022-07-04T08:28:35.8694014Z` (u-blox u-connectXpress DPS README).
 * - Error bodies' `timestampUtc` is the round-trip `o` format: always 7 digits
 *   (`2019-11-19T21:39:05.1573304Z`, MicrosoftDocs/azure-docs#43157;
 *   `2020-04-10T05:24:22.4718526Z`, azure-sdk-for-c `az_iot_provisioning_client.c`).
 * JavaScript clocks have milliseconds, so the digits below the millisecond are zero unless a
 * caller passes them (`subMillisecondTicks`).
 *
 * Etags. DPS stores its records in Cosmos DB and hands out Cosmos `_etag`s:
 * `"6000892c-0000-0100-0000-62c2a4b40000"`. The last group is the write time in Unix seconds
 * (0x62c2a4b4 = 2022-07-04T08:28:36Z, the record's `lastUpdatedDateTimeUtc`) followed by `0000`;
 * the first group varies per write; the third is `xx00` (`0100`, `0300`, `0700`, `2400` seen).
 * - Enrollments (and the enrollment inside a webhook body) carry the quoted form itself:
 *   `"etag":"\"0000f176-0000-0700-0000-62eaad1e0000\""` (azure-docs custom allocation how-to).
 * - Registration states carry base64 of the quoted form:
 *   `IjYwMDA4OTJjLTAwMDAtMDEwMC0wMDAwLTYyYzJhNGI0MDAwMCI=` decodes to `"6000892c-…-62c2a4b40000"`.
 */

/** A DPS timestamp as the SDKs receive it: `YYYY-MM-DDTHH:mm:ss[.f{1,7}]Z`. */
export const DPS_TIMESTAMP_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,7})?Z$/;

/** A quoted Cosmos DB etag: `"xxxxxxxx-0000-xx00-0000-<unix seconds, 8 hex>0000"`. */
export const COSMOS_ETAG_PATTERN = /^"[0-9a-f]{8}-0000-[0-9a-f]{2}00-0000-[0-9a-f]{8}0000"$/;

export interface DpsTimestampOptions {
  /** 100 ns ticks below the millisecond (0–9999), for callers with a finer clock. */
  subMillisecondTicks?: number;
}

function fractionDigits(date: Date, options: DpsTimestampOptions): { base: string; fraction: string } {
  if (Number.isNaN(date.getTime())) throw new RangeError('Invalid date: a DPS timestamp needs a valid Date');
  const iso = date.toISOString(); // YYYY-MM-DDTHH:mm:ss.sssZ
  const ticks = options.subMillisecondTicks ?? 0;
  if (!Number.isInteger(ticks) || ticks < 0 || ticks > 9999) {
    throw new RangeError(`subMillisecondTicks must be an integer from 0 to 9999, not ${ticks}`);
  }
  return { base: iso.slice(0, 19), fraction: iso.slice(20, 23) + String(ticks).padStart(4, '0') };
}

/**
 * Timestamps in registration states, enrollments and webhook bodies (Json.NET's default):
 * up to 7 fractional digits, trailing zeros trimmed, no `.` for a whole second.
 */
export function formatDpsTimestamp(date: Date, options: DpsTimestampOptions = {}): string {
  const { base, fraction } = fractionDigits(date, options);
  const trimmed = fraction.replace(/0+$/, '');
  return trimmed ? `${base}.${trimmed}Z` : `${base}Z`;
}

/** `timestampUtc` in DPS error bodies (.NET's round-trip `o` format): always 7 fractional digits. */
export function formatDpsErrorTimestamp(date: Date, options: DpsTimestampOptions = {}): string {
  const { base, fraction } = fractionDigits(date, options);
  return `${base}.${fraction}Z`;
}

/**
 * Reads a DPS timestamp (any form above) back to a Date, or undefined when the text is not one.
 * Digits below the millisecond are dropped: a Date cannot hold them.
 */
export function parseDpsTimestamp(text: string): Date | undefined {
  if (!DPS_TIMESTAMP_PATTERN.test(text)) return undefined;
  const dot = text.indexOf('.');
  const ms =
    dot === -1
      ? '000'
      : text
          .slice(dot + 1, -1)
          .padEnd(3, '0')
          .slice(0, 3);
  const date = new Date(`${text.slice(0, 19)}.${ms}Z`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

export interface CosmosEtagOptions {
  /**
   * Hex that fixes the first group (its first 8 digits are used), e.g. a content hash so that an
   * unchanged record keeps its etag; random when absent.
   */
  seed?: string;
  /** The `xx` of the third group (`xx00`), two hex digits; default `01`. */
  partition?: string;
}

/** A quoted Cosmos-style etag for a record written at `date`: `"6000892c-0000-0100-0000-62c2a4b40000"`. */
export function createCosmosEtag(date: Date, options: CosmosEtagOptions = {}): string {
  const seconds = Math.floor(date.getTime() / 1000);
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > 0xffffffff) {
    throw new RangeError(`A Cosmos etag needs a date between 1970 and 2106, not ${date.toString()}`);
  }
  const seed = options.seed ?? randomBytes(4).toString('hex');
  if (!/^[0-9a-fA-F]{8}/.test(seed)) throw new RangeError('seed must start with 8 hex digits');
  const partition = options.partition ?? '01';
  if (!/^[0-9a-fA-F]{2}$/.test(partition)) throw new RangeError('partition must be 2 hex digits');
  const time = seconds.toString(16).padStart(8, '0');
  return `"${seed.slice(0, 8).toLowerCase()}-0000-${partition.toLowerCase()}00-0000-${time}0000"`;
}

/** A registration state's etag: base64 of the quoted Cosmos etag (UTF-8). */
export function createRegistrationEtag(date: Date, options: CosmosEtagOptions = {}): string {
  return Buffer.from(createCosmosEtag(date, options), 'utf8').toString('base64');
}

/** The quoted Cosmos etag inside a registration etag, or undefined when it is not one. */
export function decodeRegistrationEtag(etag: string): string | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(etag)) return undefined;
  const quoted = Buffer.from(etag, 'base64').toString('utf8');
  return COSMOS_ETAG_PATTERN.test(quoted) ? quoted : undefined;
}
